"""Every image of every workload kind is found, with the path of its field."""

from __future__ import annotations

from typing import Any

import pytest

from trustgate.manifests.images import find_images

POD_SPEC: dict[str, Any] = {
    "initContainers": [{"name": "init", "image": "registry.example.com/init:1"}],
    "containers": [{"name": "app", "image": "registry.example.com/app:2"}, {"name": "side", "image": " "}],
    "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
}


@pytest.mark.parametrize(
    ("obj", "prefix"),
    [
        ({"apiVersion": "v1", "kind": "Pod", "spec": POD_SPEC}, ("spec",)),
        (
            {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": POD_SPEC}}},
            ("spec", "template", "spec"),
        ),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "spec": {"jobTemplate": {"spec": {"template": {"spec": POD_SPEC}}}},
            },
            ("spec", "jobTemplate", "spec", "template", "spec"),
        ),
        ({"apiVersion": "v1", "kind": "PodTemplate", "template": {"spec": POD_SPEC}}, ("template", "spec")),
        (
            {
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Rollout",
                "spec": {"template": {"spec": POD_SPEC}},
            },
            ("spec", "template", "spec"),
        ),
    ],
    ids=["pod", "deployment", "cronjob", "podtemplate", "custom-resource"],
)
def test_every_container_list_is_found(obj: dict[str, Any], prefix: tuple[str, ...]) -> None:
    found = find_images(obj)
    assert [(u.reference, u.path, u.container) for u in found] == [
        ("registry.example.com/init:1", (*prefix, "initContainers", 0, "image"), "init"),
        ("registry.example.com/app:2", (*prefix, "containers", 0, "image"), "app"),
        ("busybox", (*prefix, "ephemeralContainers", 0, "image"), "debug"),
    ]


def test_tekton_steps_in_lists_of_objects_are_found() -> None:
    obj = {
        "apiVersion": "tekton.dev/v1",
        "kind": "Pipeline",
        "spec": {"tasks": [{"taskSpec": {"sidecars": [], "containers": [{"image": "alpine:3"}]}}]},
    }
    assert [u.path for u in find_images(obj)] == [("spec", "tasks", 0, "taskSpec", "containers", 0, "image")]


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ({"tag": "1.2.3"}, "ghcr.io/acme/manifests:1.2.3"),
        ({"digest": "sha256:" + "a" * 64, "tag": "x"}, "ghcr.io/acme/manifests@sha256:" + "a" * 64),
        ({}, "ghcr.io/acme/manifests"),
    ],
)
def test_flux_oci_repository_sources_are_images(ref: dict[str, str], expected: str) -> None:
    obj = {
        "apiVersion": "source.toolkit.fluxcd.io/v1beta2",
        "kind": "OCIRepository",
        "spec": {"url": "oci://ghcr.io/acme/manifests", "ref": ref},
    }
    assert [(u.reference, u.path) for u in find_images(obj)] == [(expected, ("spec", "url"))]


def test_objects_without_pods_have_no_images() -> None:
    assert find_images({"apiVersion": "v1", "kind": "ConfigMap", "data": {"image": "x"}}) == []
    assert find_images({"apiVersion": "v1", "kind": "Service", "spec": {"containers": "not a list"}}) == []
