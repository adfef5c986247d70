"""The gate finds images in manifests and reports image problems where they are used."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

from memory_registry import CosignKey, MemoryRegistry

from trustgate.config import AuthorityConfig, Config, ExceptionRule, ImageRule, ImagesSettings
from trustgate.gate import Gate
from trustgate.model import ExitCode, Mode, Severity
from trustgate.oci.reference import Reference

REPO = Reference.parse("registry.test/shop/api")

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      initContainers:
        - name: migrate
          image: registry.test/shop/api:v1
      containers:
        - name: api
          image: registry.test/shop/api:v1
        - name: proxy
          image: registry.test/shop/proxy:v3
"""


def config(key: CosignKey, **changes: object) -> Config:
    images = ImagesSettings(
        authorities=(AuthorityConfig(name="release", key_pem=key.pem, key_origin="release.pub"),),
        rules=(ImageRule(name="shop", images=("registry.test/shop/**",), authorities=("release",)),),
    )
    base = dataclasses.replace(Config.default(), policies=(), images=images)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def setup(tmp_path: Path) -> tuple[MemoryRegistry, CosignKey, Path]:
    registry, key = MemoryRegistry(), CosignKey()
    api = registry.image(REPO, "v1")
    registry.attach_cosign(REPO, api, ".sig", [key.signature_layer(REPO.name, api)])
    proxy_ref = Reference.parse("registry.test/shop/proxy")
    registry.image(proxy_ref, "v3", content=b"proxy")  # never signed
    path = tmp_path / "deploy.yaml"
    path.write_text(DEPLOYMENT)
    return registry, key, path


def test_unsigned_images_fail_at_the_line_of_the_field(tmp_path: Path) -> None:
    registry, key, path = setup(tmp_path)
    decision = Gate(config=config(key), registry=registry).check([str(path)])
    (result,) = decision.results
    (finding,) = [f for f in result.findings if f.rule.startswith("image-")]
    assert finding.rule == "image-signature" and finding.severity == Severity.ERROR
    assert finding.line == 16 and finding.metadata["container"] == "proxy"
    assert decision.exit_code() == ExitCode.POLICY_FAILURE
    statuses = {i.reference: i.status for i in decision.images}
    assert statuses == {"registry.test/shop/api:v1": "verified", "registry.test/shop/proxy:v3": "failed"}
    report = decision.to_json()
    assert [i["status"] for i in report["images"]] == ["verified", "failed"]
    assert report["images"][0]["signatures"][0]["authority"] == "release"
    json.dumps(report)  # the evidence is plain JSON


def test_warn_mode_and_exceptions_apply_to_image_findings(tmp_path: Path) -> None:
    registry, key, path = setup(tmp_path)
    decision = Gate(config=config(key, mode=Mode.WARN), registry=registry).check([str(path)])
    assert decision.exit_code() == ExitCode.PASS
    assert [f.severity for f in decision.results[0].findings if f.rule == "image-signature"] == [
        Severity.WARNING
    ]
    waiver = ExceptionRule(
        name="proxy-unsigned",
        rules=("image-signature",),
        owner="platform@example.com",
        reason="vendor image, signed from 2027",
        expires=dt.date(2099, 1, 1),
        images=("registry.test/shop/proxy:*",),
    )
    decision = Gate(config=config(key, exceptions=(waiver,)), registry=registry).check([str(path)])
    (finding,) = [f for f in decision.results[0].findings if f.rule == "image-signature"]
    assert finding.severity == Severity.INFO and finding.exception is not None
    assert decision.exit_code() == ExitCode.PASS


def test_an_unreachable_registry_means_not_evaluated(tmp_path: Path) -> None:
    registry, key, path = setup(tmp_path)
    registry.fail = "connection"
    decision = Gate(config=config(key), registry=registry).check([str(path)])
    rules = sorted(f.rule for f in decision.results[0].findings)
    assert rules == ["image-unverifiable", "image-unverifiable", "image-unverifiable"]
    assert decision.exit_code() == ExitCode.NOT_EVALUATED
    # in warn mode an outage warns instead of blocking the pipeline
    decision = Gate(config=config(key, mode=Mode.WARN), registry=registry).check([str(path)])
    assert decision.exit_code() == ExitCode.PASS


def test_verify_images_directly(tmp_path: Path) -> None:
    registry, key, _ = setup(tmp_path)
    gate = Gate(config=config(key), registry=registry)
    decision = gate.verify_images(["registry.test/shop/api:v1", "registry.test/shop/proxy:v3"], gate="verify")
    assert [r.status.value for r in decision.results] == ["passed", "failed"]
    assert decision.exit_code() == ExitCode.POLICY_FAILURE


def test_without_image_rules_no_registry_is_asked(tmp_path: Path) -> None:
    registry, _, path = setup(tmp_path)
    registry.fail, registry.calls = "connection", 0
    decision = Gate(config=dataclasses.replace(Config.default(), policies=()), registry=registry).check(
        [str(path)]
    )
    assert decision.images == [] and registry.calls == 0


TEKTON_AND_ARGO = """apiVersion: tekton.dev/v1
kind: Task
metadata: {name: build, namespace: ci}
spec:
  steps:
    - name: build
      image: registry.test/shop/api:v1
  sidecars:
    - name: registry
      image: registry.test/shop/proxy:v3
---
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: nightly, namespace: ci}
spec:
  entrypoint: main
  templates:
    - name: main
      script:
        image: registry.test/shop/proxy:v3
        source: echo
"""


def test_tekton_and_argo_workflow_images_are_verified_at_their_fields(tmp_path: Path) -> None:
    registry, key, _ = setup(tmp_path)
    path = tmp_path / "ci.yaml"
    path.write_text(TEKTON_AND_ARGO)
    decision = Gate(config=config(key), registry=registry).check([str(path)])
    failed = [
        (r.kind, f.path, f.line, f.metadata.get("container"))
        for r in decision.results
        for f in r.findings
        if f.rule == "image-signature"
    ]
    assert failed == [
        ("Task", ("spec", "sidecars", 0, "image"), 10, "registry"),
        ("Workflow", ("spec", "templates", 0, "script", "image"), 20, "main"),
    ]
    assert decision.exit_code() == ExitCode.POLICY_FAILURE
    assert {i.reference: i.status for i in decision.images} == {
        "registry.test/shop/api:v1": "verified",
        "registry.test/shop/proxy:v3": "failed",
    }


def test_a_single_label_registry_fails_at_admission_unless_listed_as_reached_as_the_nodes_do(
    tmp_path: Path,
) -> None:
    """`registry:5000` is resolved by trustgate's pod and by the node each their own way: an
    `image-registry` failure at admission, nothing asked; listed under images.registries.nodeLocal
    (both resolve it to one registry), verified as any other. CI (`check`) verifies it as before."""
    registry, key = MemoryRegistry(), CosignKey()
    ref = Reference.parse("registry:5000/shop/api")
    digest = registry.image(ref, "v1")
    registry.attach_cosign(ref, digest, ".sig", [key.signature_layer(ref.name, digest)])
    path = tmp_path / "pod.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\n"
        f"spec:\n  containers: [{{name: c, image: 'registry:5000/shop/api@{digest}'}}]\n"
    )
    rules = (ImageRule(name="label", images=("registry:5000/**",), authorities=("release",)),)
    plain = config(key)
    plain = dataclasses.replace(plain, images=dataclasses.replace(plain.images, rules=rules))
    asked = registry.calls
    decision = Gate(config=plain, registry=registry).check([str(path)], gate="admission")
    ((problem, *_),) = [i.problems for i in decision.images]
    assert problem.rule == "image-registry" and "single-label name" in problem.message
    assert "images.registries.nodeLocal" in problem.fix and "fully qualified" in problem.fix
    assert decision.exit_code() == ExitCode.POLICY_FAILURE and registry.calls == asked
    assert Gate(config=plain, registry=registry).check([str(path)]).exit_code() == ExitCode.PASS
    listed = dataclasses.replace(
        plain,
        images=dataclasses.replace(
            plain.images,
            registries=dataclasses.replace(plain.images.registries, node_local=("registry:5000",)),
        ),
    )
    assert Gate(config=listed, registry=registry).check([str(path)], gate="admission").exit_code() == 0
