"""Every image of every workload kind is found, with the path of its field."""

from __future__ import annotations

from typing import Any

import pytest

from trustgate.manifests.images import (
    TOO_DEEP,
    UNKNOWN_CHART_SOURCE,
    UNREADABLE_PATCH,
    chart_repository,
    find_images,
    resolve_charts,
)

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


TASK_SPEC: dict[str, Any] = {
    "stepTemplate": {"image": "registry.example.com/base:1", "env": [{"name": "HOME", "value": "/w"}]},
    "steps": [
        {"name": "build", "image": "registry.example.com/kaniko:1", "script": "build"},
        {"name": "defaults", "script": "echo from the stepTemplate image"},
    ],
    "sidecars": [{"name": "docker", "image": "registry.example.com/dind:2"}],
}
TASK_IMAGES = [
    ("registry.example.com/base:1", ("stepTemplate", "image"), ""),
    ("registry.example.com/kaniko:1", ("steps", 0, "image"), "build"),
    ("registry.example.com/dind:2", ("sidecars", 0, "image"), "docker"),
]
WORKFLOW_SPEC: dict[str, Any] = {
    "entrypoint": "main",
    "templates": [
        {
            "name": "main",
            "steps": [[{"name": "a", "template": "build"}], [{"name": "b", "template": "test"}]],
        },
        {
            "name": "build",
            "initContainers": [{"name": "fetch", "image": "registry.example.com/git:1"}],
            "container": {"image": "registry.example.com/builder:1", "command": ["make"]},
            "sidecars": [{"name": "cache", "image": "registry.example.com/redis:7"}],
        },
        {"name": "test", "script": {"image": "registry.example.com/python:3", "source": "print(1)"}},
        {
            "name": "set",
            "containerSet": {"containers": [{"name": "one", "image": "registry.example.com/one:1"}]},
        },
    ],
}


def _workflow_images(prefix: tuple[str | int, ...]) -> list[tuple[str, tuple[str | int, ...], str]]:
    t = (*prefix, "templates")
    return [
        ("registry.example.com/git:1", (*t, 1, "initContainers", 0, "image"), "fetch"),
        ("registry.example.com/builder:1", (*t, 1, "container", "image"), "build"),
        ("registry.example.com/redis:7", (*t, 1, "sidecars", 0, "image"), "cache"),
        ("registry.example.com/python:3", (*t, 2, "script", "image"), "test"),
        ("registry.example.com/one:1", (*t, 3, "containerSet", "containers", 0, "image"), "one"),
    ]


def _tekton(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "tekton.dev/v1", "kind": kind, "metadata": {"name": "x"}, "spec": spec}


def _argo(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": kind, "metadata": {"name": "x"}, "spec": spec}


def _under(prefix: tuple[str | int, ...]) -> list[tuple[str, tuple[str | int, ...], str]]:
    return [(image, (*prefix, *path), name) for image, path, name in TASK_IMAGES]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (_tekton("Task", TASK_SPEC), _under(("spec",))),
        ({**_tekton("ClusterTask", TASK_SPEC), "apiVersion": "tekton.dev/v1beta1"}, _under(("spec",))),
        (_tekton("TaskRun", {"taskSpec": TASK_SPEC}), _under(("spec", "taskSpec"))),
        (
            _tekton(
                "Pipeline",
                {
                    "tasks": [
                        {"name": "a", "taskRef": {"name": "elsewhere"}},
                        {"name": "b", "taskSpec": TASK_SPEC},
                    ],
                    "finally": [{"name": "c", "taskSpec": {"steps": [{"name": "n", "image": "notify:1"}]}}],
                },
            ),
            [
                *_under(("spec", "tasks", 1, "taskSpec")),
                ("notify:1", ("spec", "finally", 0, "taskSpec", "steps", 0, "image"), "n"),
            ],
        ),
        (
            _tekton("PipelineRun", {"pipelineSpec": {"tasks": [{"name": "b", "taskSpec": TASK_SPEC}]}}),
            _under(("spec", "pipelineSpec", "tasks", 0, "taskSpec")),
        ),
        (_argo("Workflow", WORKFLOW_SPEC), _workflow_images(("spec",))),
        (_argo("WorkflowTemplate", WORKFLOW_SPEC), _workflow_images(("spec",))),
        (_argo("ClusterWorkflowTemplate", WORKFLOW_SPEC), _workflow_images(("spec",))),
        (
            _argo("CronWorkflow", {"schedule": "0 * * * *", "workflowSpec": WORKFLOW_SPEC}),
            _workflow_images(("spec", "workflowSpec")),
        ),
    ],
    ids=[
        "tekton-task",
        "tekton-clustertask",
        "tekton-taskrun",
        "tekton-pipeline",
        "tekton-pipelinerun",
        "argo-workflow",
        "argo-workflowtemplate",
        "argo-clusterworkflowtemplate",
        "argo-cronworkflow",
    ],
)
def test_tekton_and_argo_workflow_images_are_found(obj: dict[str, Any], expected: list[Any]) -> None:
    assert [(u.reference, u.path, u.container) for u in find_images(obj)] == expected


def test_steps_and_sidecars_are_containers_only_where_the_kind_says_so() -> None:
    """Another group's `steps` or `container` is its own business (e.g. data that names an image)."""
    other = {
        "apiVersion": "example.com/v1",
        "kind": "Thing",
        "spec": {"steps": [{"image": "x:1"}], "container": {"image": "y:1"}},
    }
    assert find_images(other) == []


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ({"digest": "sha256:" + "a" * 64, "tag": "x"}, "ghcr.io/acme/manifests@sha256:" + "a" * 64),
        ({"digest": "sha256:" + "a" * 64, "semver": "*"}, "ghcr.io/acme/manifests@sha256:" + "a" * 64),
    ],
)
def test_flux_oci_repository_sources_are_images(ref: dict[str, str], expected: str) -> None:
    obj = {
        "apiVersion": "source.toolkit.fluxcd.io/v1beta2",
        "kind": "OCIRepository",
        "spec": {"url": "oci://ghcr.io/acme/manifests", "ref": ref},
    }
    assert [(u.reference, u.path, u.unresolvable) for u in find_images(obj)] == [
        (expected, ("spec", "url"), "")
    ]


@pytest.mark.parametrize(
    ("spec", "reference", "path", "words"),
    [
        (
            {"ref": {"tag": "1.2.3"}},
            "ghcr.io/acme/manifests:1.2.3",
            ("spec", "ref", "tag"),
            "ref.tag '1.2.3'",
        ),
        (
            {"ref": {"tag": "v1", "digest": ""}},
            "ghcr.io/acme/manifests:v1",
            ("spec", "ref", "tag"),
            "ref.tag 'v1'",
        ),
        ({"ref": {}}, "ghcr.io/acme/manifests", ("spec", "url"), "the tag latest"),
        ({}, "ghcr.io/acme/manifests", ("spec", "url"), "the tag latest"),
        ({"ref": "v1"}, "ghcr.io/acme/manifests", ("spec", "url"), "the tag latest"),
    ],
)
def test_a_flux_tag_ref_is_never_verified_as_the_digest_it_points_at_now(
    spec: dict[str, Any], reference: str, path: tuple[str, ...], words: str
) -> None:
    """Flux re-reads the tag at every sync and nothing checks what it pulls then: a tag re-pointed
    after the check deploys an artifact never verified, as with ref.semver (ADR 5)."""
    obj = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "spec": {"url": "oci://ghcr.io/acme/manifests", **spec},
    }
    (use,) = find_images(obj)
    assert (use.reference, use.path) == (reference, path)
    assert words in use.unresolvable and "re-point" in use.unresolvable
    assert ("without spec.ref" in use.unresolvable) is not isinstance(spec.get("ref"), dict)


@pytest.mark.parametrize(
    ("ref", "path", "words"),
    [
        ({"tag": "6.6.2"}, ("spec", "ref", "tag"), "ref.tag '6.6.2'"),
        ({}, ("spec", "url"), "with no ref.tag/semver/digest Flux resolves the tag latest"),
    ],
)
def test_a_flux_tag_ref_with_spec_verify_is_not_said_to_be_checked_by_nothing(
    ref: dict[str, str], path: tuple[str, ...], words: str
) -> None:
    """With spec.verify Flux's source-controller checks the signatures of what it pulls, by its own
    keys: the source stays unverifiable to the rule, which says so without claiming nothing checks it."""
    obj = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "spec": {
            "url": "oci://ghcr.io/acme/manifests",
            "ref": ref,
            "verify": {"provider": "cosign", "secretRef": {"name": "cosign-pub"}},
        },
    }
    (use,) = find_images(obj)
    assert use.path == path
    assert words in use.unresolvable
    assert "spec.verify is Flux's own check, not this rule's" in use.unresolvable
    assert "never verified" not in use.unresolvable


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ({"semver": ">=1.0.0"}, "ref.semver '>=1.0.0'"),
        ({"tag": "stable", "semver": ">=1.0.0"}, "ref.semver '>=1.0.0', over ref.tag 'stable'"),
        ({"tag": "stable", "semver": "*", "semverFilter": ".*-rc"}, "matching semverFilter '.*-rc'"),
    ],
)
def test_a_flux_semver_ref_is_never_verified_as_its_tag(ref: dict[str, str], words: str) -> None:
    obj = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "spec": {"url": "oci://ghcr.io/acme/manifests", "ref": ref},
    }
    (use,) = find_images(obj)
    assert (use.reference, use.path) == ("ghcr.io/acme/manifests", ("spec", "ref", "semver"))
    assert words in use.unresolvable and "cannot be known" in use.unresolvable


def test_objects_without_pods_have_no_images() -> None:
    assert find_images({"apiVersion": "v1", "kind": "ConfigMap", "data": {"image": "x"}}) == []
    assert find_images({"apiVersion": "v1", "kind": "Service", "spec": {"containers": "not a list"}}) == []


def test_inline_templates_of_argo_steps_step_actions_and_trigger_templates_are_read() -> None:
    """Argo's `steps` is a list of lists; a Tekton StepAction's spec is the step; a TriggerTemplate
    embeds tekton.dev resources under another group."""
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "w"},
        "spec": {
            "templates": [
                {"name": "main", "steps": [[{"name": "a", "inline": {"container": {"image": "evil:1"}}}]]}
            ]
        },
    }
    action = {
        "apiVersion": "tekton.dev/v1alpha1",
        "kind": "StepAction",
        "metadata": {"name": "s"},
        "spec": {"image": "evil:2"},
    }
    trigger = {
        "apiVersion": "triggers.tekton.dev/v1beta1",
        "kind": "TriggerTemplate",
        "metadata": {"name": "t"},
        "spec": {
            "resourcetemplates": [
                {
                    "apiVersion": "tekton.dev/v1",
                    "kind": "TaskRun",
                    "spec": {"taskSpec": {"steps": [{"name": "s", "image": "evil:3"}]}},
                }
            ]
        },
    }
    assert [u.path for u in find_images(workflow)] == [
        ("spec", "templates", 0, "steps", 0, 0, "inline", "container", "image")
    ]
    assert [(u.reference, u.path, u.container) for u in find_images(action)] == [
        ("evil:2", ("spec", "image"), "s")
    ]
    assert [u.reference for u in find_images(trigger)] == ["evil:3"]


def test_an_argo_cd_applications_helm_values_are_not_steps() -> None:
    application = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "a"},
        "spec": {"source": {"helm": {"valuesObject": {"script": {"image": "not-an-image"}}}}},
    }
    assert find_images(application) == []


def test_argo_events_pods_and_the_workflows_they_submit_are_read() -> None:
    sensor = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Sensor",
        "metadata": {"name": "s"},
        "spec": {
            "template": {"container": {"image": "evil.example/sensor:latest"}},
            "triggers": [
                {
                    "template": {
                        "name": "t",
                        "argoWorkflow": {
                            "operation": "submit",
                            "source": {
                                "resource": {
                                    "apiVersion": "argoproj.io/v1alpha1",
                                    "kind": "Workflow",
                                    "spec": {
                                        "templates": [
                                            {"name": "m", "container": {"image": "evil.example/wf:1"}}
                                        ]
                                    },
                                }
                            },
                        },
                    }
                }
            ],
        },
    }
    source = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "EventSource",
        "metadata": {"name": "e"},
        "spec": {"template": {"container": {"image": "evil.example/es:1"}}},
    }
    assert sorted(u.reference for u in find_images(sensor)) == [
        "evil.example/sensor:latest",
        "evil.example/wf:1",
    ]
    assert [u.reference for u in find_images(source)] == ["evil.example/es:1"]


def test_a_pod_spec_embedded_deep_in_a_custom_resource_is_read() -> None:
    """A custom resource may carry a whole workload manifest that its controller creates (Crossplane's
    provider-kubernetes `Object` inside a composition's pipeline input, wrapped again by a template
    engine): its images are verified like any other, however deep (the walk had stopped at 12
    levels, so such an image was never verified)."""
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "evil.io/miner:1"}]}}},
    }
    node: dict[str, Any] = {"manifest": deployment}
    for level in range(10):
        node = {f"wrapper{level}": node}
    composition = {
        "apiVersion": "apiextensions.crossplane.io/v1",
        "kind": "Composition",
        "spec": {
            "pipeline": [{"step": "s", "input": {"resources": [{"base": {"spec": {"forProvider": node}}}]}}]
        },
    }
    found = find_images(composition)
    assert [u.reference for u in found] == ["evil.io/miner:1"]
    assert len(found[0].path) > 20


_VOLUMES: dict[str, Any] = {
    "containers": [{"name": "app", "image": "registry.example.com/app:2"}],
    "volumes": [
        {"name": "cache", "emptyDir": {}},
        {
            "name": "tools",
            "image": {"reference": "registry.example.com/tools:1", "pullPolicy": "IfNotPresent"},
        },
        {"name": "empty", "image": {"reference": " "}},
    ],
}


@pytest.mark.parametrize(
    ("obj", "prefix"),
    [
        ({"apiVersion": "v1", "kind": "Pod", "spec": _VOLUMES}, ("spec",)),
        *(
            (
                {"apiVersion": "apps/v1", "kind": kind, "spec": {"template": {"spec": _VOLUMES}}},
                ("spec", "template", "spec"),
            )
            for kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
        ),
        (
            {"apiVersion": "batch/v1", "kind": "Job", "spec": {"template": {"spec": _VOLUMES}}},
            ("spec", "template", "spec"),
        ),
        (
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "spec": {"jobTemplate": {"spec": {"template": {"spec": _VOLUMES}}}},
            },
            ("spec", "jobTemplate", "spec", "template", "spec"),
        ),
        ({"apiVersion": "v1", "kind": "PodTemplate", "template": {"spec": _VOLUMES}}, ("template", "spec")),
    ],
)
def test_image_volumes_are_images(obj: dict[str, Any], prefix: tuple[str, ...]) -> None:
    """KEP-4639: `volumes[].image.reference` is pulled by the kubelet and its files are run by the
    containers mounting it (found in review: never verified)."""
    found = [(u.reference, u.path, u.container) for u in find_images(obj)]
    assert found == [
        ("registry.example.com/app:2", (*prefix, "containers", 0, "image"), "app"),
        ("registry.example.com/tools:1", (*prefix, "volumes", 1, "image", "reference"), "volume tools"),
    ]


_PATCH = '{"containers": [{"name": "main", "image": "registry.example.com/patched:1"}]}'


@pytest.mark.parametrize(
    ("obj", "at"),
    [
        (_argo("Workflow", {"podSpecPatch": _PATCH}), ("spec", "podSpecPatch")),
        (
            _argo("WorkflowTemplate", {"templates": [{"name": "t", "podSpecPatch": _PATCH}]}),
            ("spec", "templates", 0, "podSpecPatch"),
        ),
        (
            _argo(
                "CronWorkflow",
                {
                    "workflowSpec": {
                        "podSpecPatch": "containers:\n- {name: main, image: registry.example.com/patched:1}"
                    }
                },
            ),
            ("spec", "workflowSpec", "podSpecPatch"),
        ),
    ],
    ids=["workflow", "template", "cron-yaml"],
)
def test_an_argo_pod_spec_patch_is_read_for_the_images_it_writes(
    obj: dict[str, Any], at: tuple[str | int, ...]
) -> None:
    """Argo merges podSpecPatch into each pod it creates (containers by name): the image it writes
    is what runs, found at the patch's field."""
    assert [(u.reference, u.path, u.container) for u in find_images(obj)] == [
        ("registry.example.com/patched:1", at, "main")
    ]


@pytest.mark.parametrize(
    ("patch", "found"),
    [
        (
            '{"containers": [{"name": "main", "resources": {"limits": {"cpu": "{{inputs.parameters.c}}"}}}]}',
            [],
        ),
        ("", []),
        ("null", []),
        ("{{inputs.parameters.patch}}", ["{{inputs.parameters.patch}}"]),
        ('"{{inputs.parameters.patch}}"', ['"{{inputs.parameters.patch}}"']),
        ("[1, 2]", ["[1, 2]"]),
    ],
)
def test_a_pod_spec_patch_without_images_adds_none_and_an_unreadable_one_is_reported(
    patch: str, found: list[str]
) -> None:
    obj = _argo(
        "Workflow", {"templates": [{"name": "t", "container": {"image": "a:1"}, "podSpecPatch": patch}]}
    )
    uses = [u for u in find_images(obj) if u.path[-1] == "podSpecPatch"]
    assert [u.reference for u in uses] == found
    assert all(u.unresolvable == UNREADABLE_PATCH for u in uses)


def test_an_argo_cd_application_s_pod_spec_patch_is_not_read() -> None:
    """Argo CD's kinds hold Helm values, not Argo Workflows' fields."""
    app = {**_argo("Application", {"source": {"helm": {"valuesObject": {"podSpecPatch": _PATCH}}}})}
    assert find_images(app) == []


def test_what_is_nested_too_deep_is_reported_once_at_the_first_place_not_read() -> None:
    """Past the depth read, a pod spec may hold any image: never skipped without a word."""
    pod = {"containers": [{"name": "app", "image": "evil.io/miner:1"}]}
    left: dict[str, Any] = {"pod": pod}
    right: list[Any] = [pod]
    for _ in range(250):
        left, right = {"l": left}, [right]
    found = find_images({"apiVersion": "example.com/v1", "kind": "Wrapper", "spec": {"a": left, "b": right}})
    assert [u.unresolvable for u in found] == [TOO_DEEP]
    assert found[0].path[:3] == ("spec", "a", "l") and len(found[0].path) > 150
    shallow = {"apiVersion": "example.com/v1", "kind": "Wrapper", "spec": {"a": {"l": {"pod": pod}}}}
    assert [(u.reference, u.unresolvable) for u in find_images(shallow)] == [("evil.io/miner:1", "")]


def _chart(spec: dict[str, Any], kind: str = "HelmChart") -> dict[str, Any]:
    group = "helm.toolkit.fluxcd.io/v2" if kind == "HelmRelease" else "source.toolkit.fluxcd.io/v1"
    body = {"chart": {"spec": spec}} if kind == "HelmRelease" else spec
    return {"apiVersion": group, "kind": kind, "metadata": {"name": "app"}, "spec": body}


@pytest.mark.parametrize(
    ("version", "reference", "moving"),
    [
        ("1.2.3", "registry.example.com/charts/app:1.2.3", "tag '1.2.3'"),
        ("1.2.3+build.4", "registry.example.com/charts/app:1.2.3_build.4", "tag '1.2.3+build.4'"),
        ("1.x", "registry.example.com/charts/app", "version '1.x'"),
        (">=1.0.0 <2.0.0", "registry.example.com/charts/app", "version '>=1.0.0 <2.0.0'"),
        ("v1.2.3", "registry.example.com/charts/app", "version 'v1.2.3'"),  # not strict: a constraint
        (None, "registry.example.com/charts/app", "version '*'"),
    ],
)
def test_a_flux_chart_of_an_oci_helm_repository_is_the_artifact_flux_pulls(
    version: str | None, reference: str, moving: str
) -> None:
    spec: dict[str, Any] = {"chart": "app", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}
    if version is not None:
        spec["version"] = version
    repository = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "spec": {"type": "oci", "url": "oci://registry.example.com/charts/"},
    }
    repositories = {("flux", "charts"): [chart_repository(repository) or ""]}
    for kind, at in (("HelmChart", ("spec",)), ("HelmRelease", ("spec", "chart", "spec"))):
        (use,) = resolve_charts(find_images(_chart(spec, kind)), "flux", repositories)
        assert use.reference == reference
        assert moving in use.unresolvable
        assert use.path == (*at, "version" if version is not None else "chart")


def test_a_flux_chart_is_resolved_only_against_its_own_helm_repository() -> None:
    source = {"kind": "HelmRepository", "name": "charts", "namespace": "other"}
    release = _chart({"chart": "app", "sourceRef": source}, "HelmRelease")
    chart = _chart({"chart": "app", "sourceRef": source})  # a HelmChart's sourceRef is in its namespace
    http = {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "spec": {"url": "https://x"},
    }
    assert chart_repository(http) == ""
    assert chart_repository({"apiVersion": "v1", "kind": "ConfigMap"}) is None
    repositories = {("other", "charts"): ["r.example.com/c"], ("flux", "charts"): [""]}
    assert [u.reference for u in resolve_charts(find_images(release), "flux", repositories)] == [
        "r.example.com/c/app"
    ]
    assert resolve_charts(find_images(chart), "flux", repositories) == []  # an HTTP index: no artifact
    (lost,) = resolve_charts(find_images(release), "flux", {})
    assert (lost.reference, lost.path, lost.unresolvable) == (
        "HelmRepository other/charts",
        ("spec", "chart", "spec", "sourceRef"),
        UNKNOWN_CHART_SOURCE + "; no HelmRepository was checked with it",
    )
    git = _chart({"chart": "./app", "sourceRef": {"kind": "GitRepository", "name": "charts"}})
    assert find_images(git) == []


def test_a_chart_whose_helm_repository_is_not_checked_names_the_ones_that_were() -> None:
    """A HelmRelease naming no sourceRef.namespace looks in its own namespace: a HelmRepository of
    that name in another one is named first, so the slip is seen, with the others after it."""
    source = {"kind": "HelmRepository", "name": "charts"}
    release = _chart({"chart": "app", "sourceRef": source}, "HelmRelease")
    repositories: dict[tuple[str, str], list[str]] = {("flux-system", f"r{i}"): [""] for i in range(7)} | {
        ("flux-system", "charts"): ["r.example.com/c"]
    }
    (lost,) = resolve_charts(find_images(release), "apps", repositories)
    assert lost.reference == "HelmRepository apps/charts"
    assert lost.unresolvable == (
        UNKNOWN_CHART_SOURCE + "; the HelmRepositories checked were flux-system/charts, flux-system/r0, "
        "flux-system/r1, flux-system/r2, flux-system/r3 and 3 more"
    )
    (unnamed,) = resolve_charts(find_images(release), "", {("", "web"): [""]})
    assert unnamed.reference == "HelmRepository charts"
    assert unnamed.unresolvable.endswith("; the HelmRepositories checked were web")
