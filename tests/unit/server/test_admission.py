"""The AdmissionReview mapping: parse, plan, respond, failure answers; and a fuzz test over the shape."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trustgate.config import AdmissionSettings, Config, load_config, parse_config
from trustgate.errors import ConfigError
from trustgate.gate import Gate
from trustgate.model import Decision, DocumentResult, Finding, Mode, Severity, Source
from trustgate.server import admission
from trustgate.server.webhookconfig import webhook_configuration

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p"},
    "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
}


def _body(request: dict[str, Any] | None = None, **top: Any) -> bytes:
    value: dict[str, Any] = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}
    if request is not None:
        value["request"] = request
    value.update(top)
    return json.dumps(value).encode()


def _request(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "uid": "u-1",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "namespace": "shop",
        "name": "p",
        "operation": "CREATE",
        "object": POD,
    }
    base.update(fields)
    return base


def _review(**fields: Any) -> admission.Review:
    parsed = admission.parse(_body(_request(**fields)))
    assert isinstance(parsed, admission.Review)
    return parsed


def test_parse_reads_the_request() -> None:
    review = _review(dryRun=True, userInfo={"username": "alice"})
    assert (review.uid, review.operation, review.kind, review.namespace, review.name) == (
        "u-1", "CREATE", "Pod", "shop", "p",
    )  # fmt: skip
    assert review.dry_run and review.user == {"username": "alice"}
    assert review.input_hash.startswith("sha256:")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xc3\x28", "not UTF-8"),
        (b"{", "not JSON"),
        (b"null", "got a JSON null"),
        (_body(None), "no `request`"),
        (
            json.dumps(
                {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": [1]}
            ).encode(),
            "no `request`",
        ),
        (_body({"operation": "CREATE"}), "request.uid"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}).encode(), "v1"),
        (b" " * (admission.MAX_BODY_BYTES + 1), "16 MiB"),
    ],
)
def test_parse_rejects_what_it_cannot_answer(body: bytes, reason: str) -> None:
    with pytest.raises(admission.BadReview, match=reason.replace("`", ".").replace("(", ".")):
        admission.parse(body)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"object": "a string"}, "request.object is a JSON string, not an object"),
        ({"oldObject": 7}, "request.oldObject is a JSON number"),
        ({"operation": "WATCH"}, "request.operation 'WATCH'"),
        ({"namespace": 5}, "request.namespace is not a string"),
        ({"userInfo": "alice"}, "request.userInfo is a JSON string, not an object"),
        ({"userInfo": {"username": 7}}, "request.userInfo.username is a JSON number, not a string"),
        ({"userInfo": {"uid": ["u"]}}, "request.userInfo.uid is a JSON array, not a string"),
        (
            {"userInfo": {"username": "mallory", "groups": "system:masters"}},
            "request.userInfo.groups is a JSON string, not a list of strings",
        ),
        ({"userInfo": {"groups": [1, 2]}}, "request.userInfo.groups holds a JSON number, not a string"),
        ({"userInfo": {"extra": ["x"]}}, "request.userInfo.extra is a JSON array"),
        (
            {"userInfo": {"extra": {"scopes": "a"}}},
            "request.userInfo.extra['scopes'] is not a list of strings",
        ),
    ],
)
def test_parse_denies_a_request_it_has_the_uid_of(fields: dict[str, Any], reason: str) -> None:
    answer = admission.parse(_body(_request(**fields)))
    assert isinstance(answer, dict)
    response = answer["response"]
    assert response["uid"] == "u-1" and response["allowed"] is False
    assert reason in response["status"]["message"]
    assert response["status"]["code"] == 400


def test_parse_takes_the_null_lists_go_writes_in_a_real_user_info() -> None:
    """A token webhook's `"extra": {"scopes": null}` reaches admission as the API server got it (Go
    writes a nil []string in a map as null); it is that user, with an empty list, not a bad review."""
    user = {"username": "bob", "uid": "b-1", "groups": None, "extra": {"scopes": None, "team": ["a"]}}
    review = admission.parse(_body(_request(userInfo=user)))
    assert isinstance(review, admission.Review)
    assert review.user == {
        "username": "bob",
        "uid": "b-1",
        "groups": [],
        "extra": {"scopes": [], "team": ["a"]},
    }
    assert review.request["userInfo"] == review.user  # what admission policies see as request.userInfo


def _ephemeral(containers: list[dict[str, Any]]) -> dict[str, Any]:
    """pods/ephemeralcontainers' object before Kubernetes 1.22."""
    return {
        "apiVersion": "v1",
        "kind": "EphemeralContainers",
        "metadata": {"name": "p", "namespace": "shop", "uid": "9d1c", "resourceVersion": "7"},
        "ephemeralContainers": containers,
    }


DEBUGGER = {"name": "debugger", "image": "evil:latest", "securityContext": {"privileged": True}}
EPHEMERAL_KIND = {"group": "", "version": "v1", "kind": "EphemeralContainers"}


def test_ephemeral_containers_object_of_kubernetes_1_20_is_judged_as_a_pod() -> None:
    review = _review(
        operation="UPDATE",
        kind=EPHEMERAL_KIND,
        subResource="ephemeralcontainers",
        object=_ephemeral([DEBUGGER]),
        oldObject=_ephemeral([]),
    )
    plan = admission.plan(review, AdmissionSettings())
    assert plan.response is None and plan.skipped == ""
    (doc,) = plan.documents
    assert doc.obj == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "shop", "uid": "9d1c", "resourceVersion": "7"},
        "spec": {"containers": [], "ephemeralContainers": [DEBUGGER]},
    }
    assert (
        plan.old is not None and plan.old["kind"] == "Pod" and plan.old["spec"]["ephemeralContainers"] == []
    )
    assert plan.verify_images  # evil:latest came in
    assert admission.EPHEMERAL_NOTE in plan.notes
    # The same containers again (an UPDATE that adds no image): as for any Pod, images are not verified.
    again = _review(
        operation="UPDATE",
        kind=EPHEMERAL_KIND,
        subResource="ephemeralcontainers",
        object=_ephemeral([DEBUGGER]),
        oldObject=_ephemeral([DEBUGGER]),
    )
    assert not admission.plan(again, AdmissionSettings()).verify_images


def test_ephemeral_containers_object_with_the_old_pod_keeps_the_pod_settings() -> None:
    pod = {**POD, "spec": {**POD["spec"], "securityContext": {"runAsNonRoot": True}}}
    review = _review(
        operation="UPDATE",
        kind=EPHEMERAL_KIND,
        subResource="ephemeralcontainers",
        object=_ephemeral([DEBUGGER]),
        oldObject=pod,
    )
    (doc,) = admission.plan(review, AdmissionSettings()).documents
    assert doc.obj["spec"] == {**pod["spec"], "ephemeralContainers": [DEBUGGER]}


def test_ephemeral_containers_of_another_kind_are_refused() -> None:
    review = _review(
        operation="UPDATE",
        subResource="ephemeralcontainers",
        kind={"group": "", "version": "v1", "kind": "ConfigMap"},
        object={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "p"}},
    )
    plan = admission.plan(review, AdmissionSettings())
    assert plan.skipped == "invalid" and plan.response is not None
    response = plan.response["response"]
    assert response["allowed"] is False and response["status"]["code"] == 400
    assert "'ConfigMap', not a Pod or EphemeralContainers" in response["status"]["message"]


def test_an_object_without_apiversion_and_kind_is_judged_as_request_kind_says() -> None:
    untyped = {"metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": []}}}}
    review = _review(kind={"group": "apps", "version": "v1", "kind": "Deployment"}, object=untyped)
    (doc,) = admission.plan(review, AdmissionSettings()).documents
    assert (doc.obj["apiVersion"], doc.obj["kind"]) == ("apps/v1", "Deployment")
    core = _review(object={k: v for k, v in POD.items() if k != "kind"})
    (doc,) = admission.plan(core, AdmissionSettings()).documents
    assert (doc.obj["apiVersion"], doc.obj["kind"]) == ("v1", "Pod")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"object": {**POD, "kind": "ConfigMap"}},
            "request.object.kind is 'ConfigMap', but request.kind says 'Pod'",
        ),
        (
            {"object": {**POD, "apiVersion": "apps/v1"}},
            "request.object.apiVersion is 'apps/v1', but request.kind says 'v1'",
        ),
        (
            {"kind": None, "object": {"metadata": {"name": "p"}}},
            "request.object has no apiVersion and kind, and request.kind does not name them",
        ),
    ],
)
def test_an_object_of_another_kind_than_request_kind_is_refused(fields: dict[str, Any], reason: str) -> None:
    plan = admission.plan(_review(**fields), AdmissionSettings())
    assert plan.skipped == "invalid" and plan.response is not None and not plan.documents
    response = plan.response["response"]
    assert response["allowed"] is False and response["status"]["code"] == 400
    assert response["status"]["message"].startswith(reason)


def test_the_old_object_of_an_update_is_typed_from_request_kind_too() -> None:
    """Untyped, oldObject would not be the Deployment as it is, and the UPDATE would be judged as
    a CREATE by the policies that compare with it."""
    deployment = {"metadata": {"name": "p", "labels": {"team": "a"}}, "spec": {}}
    review = _review(
        operation="UPDATE",
        kind={"group": "apps", "version": "v1", "kind": "Deployment"},
        object=deployment,
        oldObject=deployment,
    )
    plan = admission.plan(review, AdmissionSettings())
    assert plan.response is None and plan.old is not None
    assert (plan.old["apiVersion"], plan.old["kind"]) == ("apps/v1", "Deployment")
    assert "apiVersion" not in deployment  # the request is not changed in place


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"operation": "UPDATE", "oldObject": {**POD, "kind": "ConfigMap"}},
            "request.oldObject.kind is 'ConfigMap', but request.kind says 'Pod'",
        ),
        (
            {"operation": "UPDATE", "kind": None, "oldObject": {"metadata": {"name": "p"}}},
            "request.oldObject has apiVersion None and kind None, but request.object has 'v1' and 'Pod'",
        ),
    ],
)
def test_an_old_object_of_another_kind_is_refused(fields: dict[str, Any], reason: str) -> None:
    plan = admission.plan(_review(**fields), AdmissionSettings())
    assert plan.skipped == "invalid" and plan.response is not None and not plan.documents
    response = plan.response["response"]
    assert response["allowed"] is False and response["status"]["code"] == 400
    assert response["status"]["message"].startswith(reason)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"namespace": "prod", "object": {**POD, "metadata": {"name": "p", "namespace": "legacy"}}},
            "request.object.metadata.namespace is 'legacy', but request.namespace is 'prod'",
        ),
        (
            {"namespace": "", "object": {**POD, "metadata": {"name": "p", "namespace": "legacy"}}},
            "request.object.metadata.namespace is 'legacy', but request.namespace is ''",
        ),
        (
            {
                "namespace": "kube-system",  # excluded: still unusable, never allowed unjudged
                "operation": "UPDATE",
                "oldObject": {**POD, "metadata": {"name": "p", "namespace": "prod"}},
            },
            "request.oldObject.metadata.namespace is 'prod', but request.namespace is 'kube-system'",
        ),
        (
            {"object": {**POD, "metadata": {"name": "p", "namespace": 7}}},
            "request.object.metadata.namespace is a JSON number, not a string",
        ),
    ],
)
def test_an_object_in_another_namespace_than_the_request_is_unusable(
    fields: dict[str, Any], reason: str
) -> None:
    """The API server refuses such a mismatch before webhooks run; exclusions would read one
    namespace and exceptions and policies the other."""
    parsed = admission.parse(_body(_request(**fields)))
    assert isinstance(parsed, dict)
    response = parsed["response"]
    assert response["allowed"] is False and response["status"]["code"] == 400
    assert response["status"]["message"].startswith(reason)
    same = _review(object={**POD, "metadata": {"name": "p", "namespace": "shop"}})
    assert admission.plan(same, AdmissionSettings()).response is None


def test_plan_skips_subresources_excluded_namespaces_and_connect() -> None:
    settings = AdmissionSettings(exclude_namespaces=("team-*",))
    assert admission.plan(_review(subResource="status"), settings).skipped == "subresource"
    for namespace in ("kube-system", "trustgate", "team-a"):
        assert admission.plan(_review(namespace=namespace), settings).skipped == "excluded"
    assert admission.plan(_review(operation="CONNECT"), settings).skipped == "operation"
    plan = admission.plan(_review(), settings)
    assert plan.response is None and plan.documents[0].obj["metadata"]["namespace"] == "shop"


def test_ephemeral_containers_added_by_kubectl_debug_are_judged_as_the_pod() -> None:
    settings = AdmissionSettings()
    debugged = {
        **POD,
        "spec": {
            **POD["spec"],
            "ephemeralContainers": [
                {"name": "debugger", "image": "busybox:latest", "securityContext": {"privileged": True}}
            ],
        },
    }
    review = _review(operation="UPDATE", subResource="ephemeralcontainers", oldObject=POD, object=debugged)
    plan = admission.plan(review, settings)
    assert plan.response is None and plan.skipped == ""
    assert plan.documents[0].obj["spec"]["ephemeralContainers"][0]["image"] == "busybox:latest"
    assert plan.verify_images  # a new image came in
    from trustgate.server.webhookconfig import webhook_configuration

    rules = webhook_configuration(settings)["webhooks"][0]["rules"]
    assert any("pods/ephemeralcontainers" in r["resources"] and "UPDATE" in r["operations"] for r in rules)


def test_plan_skips_image_verification_when_update_keeps_the_images() -> None:
    settings = AdmissionSettings()
    scaled = {**POD, "metadata": {"name": "p", "labels": {"x": "y"}}}
    assert (
        admission.plan(_review(operation="UPDATE", oldObject=POD, object=scaled), settings).verify_images
        is False
    )
    changed = {**POD, "spec": {"containers": [{"name": "c", "image": "nginx:1.28"}]}}
    assert admission.plan(_review(operation="UPDATE", oldObject=POD, object=changed), settings).verify_images
    no_skip = AdmissionSettings(skip_unchanged_images=False)
    assert admission.plan(_review(operation="UPDATE", oldObject=POD, object=scaled), no_skip).verify_images


def test_plan_guards_protected_deletes() -> None:
    settings = AdmissionSettings(protected_kinds=("PersistentVolumeClaim",))
    pvc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"}}
    kind = {"group": "", "version": "v1", "kind": "PersistentVolumeClaim"}
    denied = admission.plan(_review(operation="DELETE", object=None, oldObject=pvc, kind=kind), settings)
    assert denied.response is None and denied.decision is not None  # decided here, to be recorded
    answer = admission.respond(denied.review, denied.decision)["response"]
    assert answer["allowed"] is False and answer["status"]["code"] == 403
    assert "[admission-protected-delete]" in answer["status"]["message"]
    approved = {**pvc, "metadata": {"name": "data", "annotations": {settings.approval_annotation: "true"}}}
    allowed = admission.plan(
        _review(operation="DELETE", object=None, oldObject=approved, kind=kind), settings
    )
    assert allowed.decision is not None and allowed.decision.allowed
    assert any("approved" in n for n in allowed.decision.notes)
    pod_delete = admission.plan(_review(operation="DELETE", object=None, oldObject=POD), settings)
    assert pod_delete.response is not None and pod_delete.response["response"]["allowed"] is True


PVC = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "shop"}}
PVC_KIND = {"group": "", "version": "v1", "kind": "PersistentVolumeClaim"}


@pytest.mark.parametrize(
    "username",
    [
        "system:serviceaccount:kube-system:namespace-controller",
        "system:serviceaccount:kube-system:generic-garbage-collector",
        "system:serviceaccount:kube-system:statefulset-controller",
        "system:serviceaccount:kube-system:ephemeral-volume-controller",
        "system:kube-controller-manager",
    ],
)
def test_kube_system_controllers_delete_protected_kinds(username: str) -> None:
    review = _review(
        operation="DELETE", object=None, oldObject=PVC, kind=PVC_KIND, userInfo={"username": username}
    )
    plan = admission.plan(review, AdmissionSettings())
    assert plan.decision is not None and plan.decision.allowed
    assert any(username in n for n in plan.decision.notes)
    assert admission.respond(review, plan.decision)["response"]["allowed"] is True


def test_allowed_deleters_are_configurable_and_matched_exactly() -> None:
    def plan(username: str, actors: tuple[str, ...]) -> admission.Plan:
        review = _review(
            operation="DELETE", object=None, oldObject=PVC, kind=PVC_KIND, userInfo={"username": username}
        )
        return admission.plan(review, AdmissionSettings(), delete_actors=actors)

    # A look-alike of a controller's name is not the controller.
    lookalike = plan("system:serviceaccount:shop:namespace-controller", admission.CONTROLLER_DELETERS)
    assert lookalike.decision is not None and not lookalike.decision.allowed
    argo = plan(
        "system:serviceaccount:argocd:argocd-application-controller", ("system:serviceaccount:argocd:*",)
    )
    assert argo.decision is not None and argo.decision.allowed
    nobody = plan("system:serviceaccount:kube-system:namespace-controller", ())
    assert nobody.decision is not None and not nobody.decision.allowed


def test_allowed_deleters_come_from_the_configuration_unless_given(tmp_path: Path) -> None:
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nadmission:\n  protectedDeletes:\n"
        "    allowedActors: ['system:serviceaccount:argocd:*']\n"
    )
    settings = load_config(config).admission
    assert settings.allowed_actors == ("system:serviceaccount:argocd:*",)
    assert AdmissionSettings().allowed_actors == admission.CONTROLLER_DELETERS  # the default

    def allowed(username: str, actors: tuple[str, ...] | None = None) -> bool:
        review = _review(
            operation="DELETE", object=None, oldObject=PVC, kind=PVC_KIND, userInfo={"username": username}
        )
        decision = admission.plan(review, settings, delete_actors=actors).decision
        assert decision is not None
        return decision.allowed

    argo = "system:serviceaccount:argocd:argocd-application-controller"
    assert allowed(argo)
    # The key replaces the default list: the namespace controller is no longer allowed.
    assert not allowed("system:serviceaccount:kube-system:namespace-controller")
    # `serve --allow-delete-by` replaces the key's list (no merge); () allows nobody.
    flux = "system:serviceaccount:flux-system:kustomize-controller"
    assert allowed(flux, ("system:serviceaccount:flux-system:*",))
    assert not allowed(argo, ("system:serviceaccount:flux-system:*",))
    assert not allowed(argo, ())


@pytest.mark.parametrize("value", ["[]", "['']", "'system:*'", "[1]"])
def test_allowed_actors_must_be_a_list_of_usernames(tmp_path: Path, value: str) -> None:
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nadmission:\n  protectedDeletes:\n"
        f"    allowedActors: {value}\n"
    )
    if value == "[]":  # an empty list is legal: nobody deletes protected kinds without the annotation
        assert load_config(config).admission.allowed_actors == ()
        return
    with pytest.raises(ConfigError, match="allowedActors"):
        load_config(config)


def test_dry_run_decisions_are_marked_in_the_record_and_others_unchanged() -> None:
    from importlib import resources

    import jsonschema

    from trustgate.decisions.record import build_record
    from trustgate.server.evaluation import context_of

    schema = json.loads((resources.files("trustgate") / "schemas" / "decision-v1.json").read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    decision = Decision("admission", Mode.ENFORCE, [])
    dry = build_record(decision, context_of(_review(dryRun=True)))
    assert dry["subject"]["dryRun"] is True  # a query can tell it apart: `subject.dryRun`
    validator.validate(dry)
    real = build_record(decision, context_of(_review(dryRun=False)))
    assert "dryRun" not in real["subject"]  # records of real requests are as they were before the field
    validator.validate(real)
    assert list(validator.iter_errors({**dry, "subject": {**dry["subject"], "dryRun": False}}))


@pytest.mark.parametrize(
    ("mode", "allowed", "severity"),
    [
        (Mode.ENFORCE, False, Severity.ERROR),
        (Mode.WARN, True, Severity.WARNING),
        (Mode.AUDIT, True, Severity.INFO),
    ],
)
def test_protected_deletes_follow_the_mode(mode: Mode, allowed: bool, severity: Severity) -> None:
    review = _review(
        operation="DELETE", object=None, oldObject=PVC, kind=PVC_KIND, userInfo={"username": "bob"}
    )
    plan = admission.plan(review, AdmissionSettings(), mode=mode)
    assert plan.decision is not None and plan.decision.mode == mode
    (finding,) = plan.decision.results[0].findings
    assert finding.rule == "admission-protected-delete" and finding.severity == severity
    answer = admission.respond(review, plan.decision)["response"]
    assert answer["allowed"] is allowed
    if mode == Mode.WARN:
        assert any("[admission-protected-delete]" in w for w in answer["warnings"])


def test_dry_run_is_noted_for_the_record() -> None:
    assert admission.DRY_RUN_NOTE in admission.plan(_review(dryRun=True), AdmissionSettings()).notes
    assert admission.plan(_review(), AdmissionSettings()).notes == []
    review = _review(operation="DELETE", object=None, oldObject=PVC, kind=PVC_KIND, dryRun=True)
    plan = admission.plan(review, AdmissionSettings())
    assert plan.decision is not None and admission.DRY_RUN_NOTE in plan.decision.notes


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","x":' + b"9" * 5000 + b"}",
            "5000 digits",
        ),
        (b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","x":1e400}', "range of a double"),
        (b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","x":NaN}', "NaN is not a JSON value"),
        (
            b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","x":'
            + b"[" * 300
            + b"]" * 300
            + b"}",
            "levels deep",
        ),
    ],
)
def test_numbers_and_nesting_beyond_the_limits_are_bad_requests(body: bytes, expected: str) -> None:
    with pytest.raises(admission.BadReview, match=expected):
        admission.parse(body)


def test_large_integers_within_the_digit_limit_are_read() -> None:
    pod = {**POD, "spec": {**POD["spec"], "terminationGracePeriodSeconds": 9007199254740993}}
    review = _review(object=pod)
    assert review.obj is not None and review.obj["spec"]["terminationGracePeriodSeconds"] == 2**53 + 1


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ("p", "request.object.metadata is a JSON string, not an object"),
        ([1], "request.object.metadata is a JSON array, not an object"),
        ({"name": "p", "labels": "x"}, "request.object.metadata.labels is a JSON string"),
        ({"name": "p", "annotations": 3}, "request.object.metadata.annotations is a JSON number"),
    ],
)
def test_metadata_that_is_not_an_object_is_denied_with_400(metadata: Any, expected: str) -> None:
    answer = admission.parse(_body(_request(object={**POD, "metadata": metadata})))
    assert isinstance(answer, dict)
    assert answer["response"]["allowed"] is False and answer["response"]["status"]["code"] == 400
    assert expected in answer["response"]["status"]["message"]


def _decision(*findings: Finding) -> Decision:
    result = DocumentResult(Source("admission"), "v1", "Pod", "shop", "p", list(findings))
    return Decision(gate="admission", mode=Mode.ENFORCE, results=[result], policy_revision="sha256:x")


def test_respond_lists_rules_and_reasons_and_warnings() -> None:
    review = _review()
    decision = _decision(
        Finding("r-deny", Severity.ERROR, "bad thing", "rego"),
        Finding("r-warn", Severity.WARNING, "meh", "rego"),
        Finding("r-info", Severity.INFO, "waived", "rego"),
    )
    response = admission.respond(review, decision)["response"]
    assert response == {
        "uid": "u-1",
        "allowed": False,
        "status": {
            "code": 403,
            "message": "trustgate denied Pod/shop/p: [r-deny] bad thing",
            "reason": "Forbidden",
        },
        "warnings": ["[r-warn] meh"],
        "auditAnnotations": {"decision": "denied", "policy-revision": "sha256:x", "rules": "r-deny"},
    }


def test_respond_caps_long_messages_and_many_warnings() -> None:
    findings = [Finding(f"r{i}", Severity.ERROR, "x" * 300, "rego") for i in range(40)]
    findings += [Finding(f"w{i}", Severity.WARNING, "y" * 1000, "rego") for i in range(40)]
    response = admission.respond(_review(), _decision(*findings))["response"]
    assert len(response["status"]["message"]) <= admission.MAX_MESSAGE_CHARS
    assert response["status"]["message"].endswith("more")
    assert len(response["warnings"]) == admission.MAX_WARNINGS
    assert all(len(w) <= admission.MAX_WARNING_CHARS for w in response["warnings"])


def test_failure_answers_say_which_policy_applied() -> None:
    closed = admission.failure(_review(), reason="no decision in time", fail_open=False)["response"]
    assert closed["allowed"] is False and "failure policy closed: denied" in closed["status"]["message"]
    opened = admission.failure(_review(), reason="no decision in time", fail_open=True)["response"]
    assert opened["allowed"] is True and "failure policy open" in opened["warnings"][0]


def test_admission_config_section() -> None:
    config = parse_config(
        {
            "apiVersion": "trustgate.dev/v1alpha1",
            "kind": "Config",
            "admission": {
                "failurePolicy": "open",
                "deadlineSeconds": 4,
                "timeoutSeconds": 5,
                "namespace": "policy",
                "excludeNamespaces": ["monitoring"],
                "failOpen": {"namespaces": ["dev-*"], "namespaceLabel": "tier=dev"},
                "protectedDeletes": {"kinds": ["Namespace"], "approvalAnnotation": "example.com/ok"},
                "skipUnchangedImages": False,
            },
        },
        origin="t.yaml",
        base=__import__("pathlib").Path("."),
    )
    a = config.admission
    assert (a.failure_policy, a.deadline_seconds, a.timeout_seconds) == ("open", 4, 5)
    assert a.excluded == ("kube-system", "policy", "monitoring")
    assert a.fail_open_namespaces == ("dev-*",) and a.fail_open_label == "tier=dev"
    assert a.protected_kinds == ("Namespace",) and a.approval_annotation == "example.com/ok"
    assert a.skip_unchanged_images is False
    assert Config.default().admission.failure_policy == "closed"


def test_deadline_must_be_below_the_webhook_timeout() -> None:
    with pytest.raises(ConfigError, match="deadlineSeconds"):
        parse_config(
            {"apiVersion": "trustgate.dev/v1alpha1", "kind": "Config", "admission": {"deadlineSeconds": 10}},
            origin="t.yaml",
            base=__import__("pathlib").Path("."),
        )


def test_webhook_configuration_excludes_the_system_namespaces() -> None:
    manifest = webhook_configuration(AdmissionSettings(), ca_bundle=b"PEM")
    closed, opened = manifest["webhooks"]
    assert closed["failurePolicy"] == "Fail" and opened["failurePolicy"] == "Ignore"
    assert opened["clientConfig"]["service"]["path"] == "/validate/fail-open"
    for webhook in manifest["webhooks"]:
        names = webhook["namespaceSelector"]["matchExpressions"][0]
        assert names == {
            "key": "kubernetes.io/metadata.name",
            "operator": "NotIn",
            "values": ["kube-system", "trustgate"],
        }
        assert (
            "request.namespace in ['kube-system', 'trustgate']" in webhook["matchConditions"][0]["expression"]
        )
        assert webhook["sideEffects"] == "NoneOnDryRun" and webhook["admissionReviewVersions"] == ["v1"]
        assert webhook["clientConfig"]["caBundle"] == "UEVN"
    assert closed["namespaceSelector"]["matchExpressions"][1]["operator"] == "NotIn"
    assert opened["namespaceSelector"]["matchExpressions"][1]["operator"] == "In"
    deletes = [r for r in closed["rules"] if r["operations"] == ["DELETE"]]
    assert {res for r in deletes for res in r["resources"]} == {
        "namespaces", "persistentvolumeclaims", "customresourcedefinitions",
    }  # fmt: skip


# -- fuzz: any JSON shape in the AdmissionReview is a 400 or an answer, never an exception ---------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
_object = st.fixed_dictionaries(
    {},
    optional={
        "apiVersion": st.sampled_from(["v1", "apps/v1", "batch/v1"]) | _json,
        "kind": st.sampled_from(["Pod", "Deployment", "CronJob", "Namespace"]) | _json,
        "metadata": st.fixed_dictionaries(
            {}, optional={"name": st.text(max_size=10) | _json, "namespace": _json}
        )
        | _json,
        "spec": st.fixed_dictionaries(
            {},
            optional={
                "containers": st.lists(
                    st.fixed_dictionaries({}, optional={"name": _json, "image": _json}) | _json, max_size=3
                )
            },
        )
        | _json,
    },
)
_request_shape = st.fixed_dictionaries(
    {},
    optional={
        "uid": st.text(max_size=8) | _json,
        "operation": st.sampled_from(["CREATE", "UPDATE", "DELETE", "CONNECT"]) | _json,
        "kind": st.fixed_dictionaries({"kind": st.sampled_from(["Pod", "Namespace"]) | _json}) | _json,
        "namespace": st.sampled_from(["shop", "kube-system", ""]) | _json,
        "name": _json,
        "subResource": st.sampled_from(["", "status"]) | _json,
        "object": _object | _json,
        "oldObject": _object | _json,
        "dryRun": _json,
        "userInfo": _json,
    },
)
_review_shape = st.fixed_dictionaries(
    {},
    optional={
        "apiVersion": st.just("admission.k8s.io/v1") | _json,
        "kind": st.just("AdmissionReview") | _json,
        "request": _request_shape | _json,
    },
)

_GATE: list[Gate] = []


def _gate() -> Gate:
    if not _GATE:
        _GATE.append(Gate(config=Config.default()))
    return _GATE[0]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_review_shape)
def test_fuzz_admission_review_shape(value: dict[str, Any]) -> None:
    body = json.dumps(value).encode()
    try:
        parsed = admission.parse(body)
    except admission.BadReview as e:
        assert str(e)
        return
    if isinstance(parsed, dict):
        assert parsed["response"]["allowed"] is False and parsed["response"]["status"]["message"]
        return
    plan = admission.plan(parsed, AdmissionSettings())
    if plan.response is not None:
        assert plan.response["response"]["uid"] == parsed.uid
        return
    decision = _gate().evaluate(plan.documents, gate="admission", verify_images=plan.verify_images)
    answer = admission.respond(parsed, decision)
    assert answer["response"]["uid"] == parsed.uid
    assert isinstance(answer["response"]["allowed"], bool)
    json.dumps(answer)


def test_unverifiable_images_follow_the_failure_policy_and_violations_still_deny() -> None:
    unverifiable = Finding("image-unverifiable", Severity.ERROR, "registry did not answer", "registry")
    closed = admission.respond(_review(), _decision(unverifiable))["response"]
    assert closed["allowed"] is False
    assert closed["status"]["message"].endswith("failure policy closed: denied")
    assert (
        "[image-unverifiable] could not be evaluated: registry did not answer" in closed["status"]["message"]
    )
    opened = admission.respond(_review(), _decision(unverifiable), fail_open=True)["response"]
    assert opened["allowed"] is True and opened["auditAnnotations"]["failure-policy"] == "open"
    assert "[image-unverifiable] registry did not answer" in opened["warnings"]
    violation = Finding("r-deny", Severity.ERROR, "bad", "rego")
    both = admission.respond(_review(), _decision(unverifiable, violation), fail_open=True)["response"]
    assert both["allowed"] is False and "failure-policy" not in both["auditAnnotations"]


def test_a_restarted_worker_keeps_its_counters_but_not_its_gauges() -> None:
    from trustgate.server.metrics import Metrics

    metrics = Metrics(2)
    metrics.bind(0)
    metrics.observe("denied", 0.001)
    metrics.observe("denied", 0.002)
    metrics.bind(0)  # the worker's process was replaced
    text = metrics.render()
    assert 'trustgate_admission_requests_total{verdict="denied"} 2' in text


def test_an_object_nested_too_deep_for_the_validator_is_a_schema_finding() -> None:
    from trustgate.policy.schema import SchemaSet

    deep: list[object] = []
    cursor = deep
    for _ in range(900):
        child: list[object] = []
        cursor.append(child)
        cursor = child
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "binaryData": deep}
    (violation,) = SchemaSet(version="1.35", strict=True).validate(obj)
    assert violation.rule == "schema-invalid" and "cannot be validated" in violation.message


@pytest.mark.parametrize(
    ("version", "emitted"),
    [("1.27", False), ("v1.27.9-eks-1234", False), ("1.20", False), ("1.28", True), ("1.31.2", True)],
)
def test_match_conditions_only_for_api_servers_that_have_them(version: str, emitted: bool) -> None:
    manifest = webhook_configuration(AdmissionSettings(), kubernetes_version=version)
    assert all(("matchConditions" in w) is emitted for w in manifest["webhooks"])
    # The other exclusions stay whatever the version.
    assert all(w["namespaceSelector"]["matchExpressions"] for w in manifest["webhooks"])


def test_a_kubernetes_version_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="not a Kubernetes version"):
        webhook_configuration(AdmissionSettings(), kubernetes_version="latest")


def test_the_api_servers_user_info_is_read() -> None:
    user = {
        "username": "alice",
        "uid": "42",
        "groups": ["dev", "system:authenticated"],
        "extra": {"k": ["v"]},
    }
    review = admission.parse(_body(_request(userInfo=user)))
    assert not isinstance(review, dict) and review.user == user


@pytest.mark.parametrize(
    ("group", "kind", "namespace"),
    [
        ("authentication.k8s.io", "TokenReview", ""),
        ("authorization.k8s.io", "SubjectAccessReview", ""),
        ("authorization.k8s.io", "LocalSubjectAccessReview", "shop"),
    ],
)
def test_token_and_access_reviews_are_answered_without_being_judged(
    group: str, kind: str, namespace: str
) -> None:
    """Only a wildcard before Kubernetes 1.28 sends them: they store nothing, and a TokenReview's
    bearer token must reach neither a policy nor the decision log."""
    obj = {"apiVersion": f"{group}/v1", "kind": kind, "spec": {"token": "tg-bearer-1", "user": "a"}}
    review = _review(
        kind={"group": group, "version": "v1", "kind": kind}, namespace=namespace, name="", object=obj
    )
    plan = admission.plan(review, AdmissionSettings())
    assert plan.documents == [] and plan.decision is None and plan.skipped == "review"
    assert plan.response is not None and plan.response["response"]["allowed"] is True
    assert "tg-bearer-1" not in json.dumps(plan.response)
    pod = admission.plan(_review(), AdmissionSettings())  # any other kind is judged
    assert pod.response is None and pod.documents


def test_the_answer_names_where_each_finding_points() -> None:
    """The same message at two pod templates of one custom resource (Kubeflow names the container
    `pytorch` in Master and Worker) read as one thing twice in the denial `kubectl` prints; each part
    now says where it points, denials and warnings alike."""
    master = ("spec", "pytorchReplicaSpecs", "Master", "template", "spec", "containers", 0)
    worker = ("spec", "pytorchReplicaSpecs", "Worker", "template", "spec", "containers", 0)
    decision = _decision(
        Finding(
            "pss-baseline-privileged",
            Severity.ERROR,
            'container "pytorch" runs privileged',
            "rego",
            path=master,
        ),
        Finding(
            "pss-baseline-privileged",
            Severity.ERROR,
            'container "pytorch" runs privileged',
            "rego",
            path=worker,
        ),
        Finding(
            "probes-liveness", Severity.WARNING, "no liveness probe", "rego", path=(*worker, "livenessProbe")
        ),
        Finding("r-deny", Severity.ERROR, "no path here", "rego"),
    )
    response = admission.respond(_review(), decision)["response"]
    message = response["status"]["message"]
    assert (
        '[pss-baseline-privileged] container "pytorch" runs privileged '
        "(at spec.pytorchReplicaSpecs.Master.template.spec.containers[0])" in message
    )
    assert "(at spec.pytorchReplicaSpecs.Worker.template.spec.containers[0])" in message
    assert "[r-deny] no path here" in message and "no path here (at" not in message
    assert response["warnings"] == [
        "[probes-liveness] no liveness probe "
        "(at spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].livenessProbe)"
    ]


LEASE = {
    "apiVersion": "coordination.k8s.io/v1",
    "kind": "Lease",
    "metadata": {"name": "node-1", "namespace": "kube-node-lease"},
    "spec": {"holderIdentity": "node-1"},
}


@pytest.mark.parametrize(
    ("namespace", "sub_resource", "skipped"),
    [("kube-node-lease", "", True), ("shop", "", False), ("kube-node-lease", "status", False)],
)
def test_node_heartbeats_are_answered_without_being_judged(
    namespace: str, sub_resource: str, skipped: bool
) -> None:
    """Before 1.21 the webhook that judges Namespaces posing as left-out ones is sent kube-node-lease
    too: every kubelet's Lease renewal there is answered unjudged and unrecorded, no other Lease."""
    lease = {**LEASE, "metadata": {**LEASE["metadata"], "namespace": namespace}}
    review = _review(
        kind={"group": "coordination.k8s.io", "version": "v1", "kind": "Lease"},
        namespace=namespace,
        name="node-1",
        operation="UPDATE",
        subResource=sub_resource,
        object=lease,
        oldObject=lease,
    )
    out = admission.plan(review, AdmissionSettings(), subresources=True)
    assert (out.skipped == "housekeeping") is skipped
    assert (out.response is not None and out.response["response"]["allowed"]) is skipped
    assert bool(out.documents) is not skipped


def test_a_custom_kind_named_namespace_is_not_left_out_by_its_name() -> None:
    # Only a core v1 Namespace is excluded by its own name: a cluster-scoped custom resource of kind
    # Namespace named kube-system is judged like any other object of its kind.
    custom = {"apiVersion": "tenancy.example.io/v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}
    review = _review(
        kind={"group": "tenancy.example.io", "version": "v1", "kind": "Namespace"},
        namespace="",
        name="kube-system",
        object=custom,
    )
    plan = admission.plan(review, AdmissionSettings())
    assert plan.skipped == "" and plan.response is None
    core = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}
    excluded = admission.plan(
        _review(
            kind={"group": "", "version": "v1", "kind": "Namespace"},
            namespace="",
            name="kube-system",
            object=core,
        ),
        AdmissionSettings(),
    )
    assert excluded.skipped == "excluded"
