"""`trustgate serve` runs ValidatingAdmissionPolicies on the DELETEs and CONNECTs their rules name, as
the API server does: on a DELETE `object` null and `oldObject` the object deleted; on a CONNECT
(`kubectl exec`) `object` its options. Over real HTTPS against a real `trustgate serve`, with a
SQLite decision log.

The reviews are shaped as the Kubernetes 1.20 API server built for the tests sends them (captured
there: a DELETE's `oldObject` the stored object, `options` a DeleteOptions, a Namespace's own
`request.namespace` its name, `dryRun` true and `options.dryRun: [All]` for `--dry-run=server`; an
exec's kind PodExecOptions, resource pods, subResource exec, `options` null, `object` the
PodExecOptions).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.vap import binding, denying, manifests, policy, rule
from support.webhook import TRUSTGATE, CertSet, Server, make_certs, review, start_server

PROD_DELETES = manifests(
    policy(
        "prod-deletes-need-break-glass",
        [rule(["DELETE"], ["namespaces", "configmaps"])],
        [
            {
                "expression": "object == null && request.operation == 'DELETE'"
                " && request.options.kind == 'DeleteOptions'"
                " && (oldObject.metadata.?labels.?env.orValue('') != 'prod'"
                "\n    || 'break-glass' in request.userInfo.groups)",
                "messageExpression": "'deleting ' + request.kind.kind + ' ' + oldObject.metadata.name"
                " + ' (env: prod) needs break-glass'",
            }
        ],
        failure_policy="Fail",
    ),
    binding("prod-deletes-need-break-glass"),
    # Only CREATE and UPDATE: it reads `object`, which a DELETE does not have; never asked on a DELETE.
    policy(
        "configmaps-have-an-owner",
        [rule(["CREATE", "UPDATE"], ["configmaps"])],
        [
            {
                "expression": "has(object.metadata.labels) && 'owner' in object.metadata.labels",
                "message": "a ConfigMap needs an owner label",
            }
        ],
        failure_policy="Fail",
    ),
    binding("configmaps-have-an-owner"),
)

ASKS_AUTHORIZER = denying(
    "secrets-deleted-by-those-allowed-to",
    [rule(["*"], ["secrets"], versions=["*"])],
    [
        {
            "expression": "authorizer.group('').resource('secrets').check('purge').allowed()",
            "message": "only those allowed to purge secrets delete them",
        }
    ],
    failure_policy="Fail",
)

NO_SHELL = denying(
    "no-shell-without-break-glass",
    [rule(["CONNECT"], ["pods/exec"])],
    [
        {
            "expression": "oldObject == null && request.options == null && object.kind == 'PodExecOptions'"
            " && request.subResource == 'exec' && request.resource.resource == 'pods'",
            "message": "not the CONNECT the API server sends",
        },
        {
            "expression": "!object.command.exists(c, c in ['sh', 'bash', '/bin/sh', '/bin/bash'])"
            " || 'break-glass' in request.userInfo.groups",
            "messageExpression": "'no shell in ' + request.namespace + '/' + request.name"
            " + ' without break-glass'",
        },
    ],
    failure_policy="Fail",
)

APPROVED = {"trustgate.dev/allow-delete": "true"}


def _namespace(
    name: str, labels: dict[str, str], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "uid": f"uid-{name}",
        "resourceVersion": "181",
        "labels": labels,
    }
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": metadata,
        "spec": {"finalizers": ["kubernetes"]},
    }


def _config_map(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "payments", "uid": f"uid-{name}", "labels": labels},
        "data": {"a": "b"},
    }


def _delete(
    old: dict[str, Any], uid: str, *, groups: tuple[str, ...] = (), user: str = "alice@example.com",
    dry_run: bool = False, resource: str = "",
) -> dict[str, Any]:  # fmt: skip
    """A DELETE review as the API server sends it (see the module's docstring)."""
    namespace = old["metadata"].get("namespace") or old["metadata"]["name"]  # a Namespace: its name
    body = review(None, operation="DELETE", old=old, uid=uid, namespace=namespace, dry_run=dry_run)
    request = body["request"]
    request["userInfo"] = {"username": user, "groups": [*groups, "system:authenticated"]}
    request["options"] = {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}
    if dry_run:
        request["options"]["dryRun"] = ["All"]
    if resource:
        request["resource"]["resource"] = resource
    return body


def _records(db: Path) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT record FROM decisions").fetchall()
    return {record["subject"]["uid"]: record for record in (json.loads(raw) for (raw,) in rows)}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def served(certs: CertSet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    yield from _serving(
        certs,
        tmp_path_factory.mktemp("deletes"),
        PROD_DELETES + "---\n" + ASKS_AUTHORIZER + "---\n" + NO_SHELL,
    )


def _serving(certs: CertSet, directory: Path, policies: str) -> Iterator[tuple[Server, Path]]:
    """`trustgate serve` with `policies` as its admission policies and a SQLite decision log."""
    policy = directory / "policies.yaml"
    policy.write_text(policies)
    config = directory / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\n"
        f"manifests:\n  admissionPolicies: [{policy}]\nkubernetes:\n  schemas: false\n"
    )
    db = directory / "decisions.db"
    srv = start_server(certs, "-c", str(config), "--decision-log", f"sqlite:///{db}", workers=1)
    try:
        yield srv, db
    finally:
        srv.stop()


def _answer(srv: Server, body: dict[str, Any]) -> dict[str, Any]:
    status, answer = srv.post(body)
    assert status == 200, answer
    assert answer["response"]["uid"] == body["request"]["uid"]
    result: dict[str, Any] = answer["response"]
    return result


def test_a_policy_on_delete_denies_deleting_an_unprotected_kind(served: tuple[Server, Path]) -> None:
    """A ConfigMap is no protected kind: its DELETE was answered `skipped: DELETE`, whatever the
    admission policies said of deletions."""
    srv, db = served
    denied = _answer(srv, _delete(_config_map("settings", {"env": "prod"}), "uid-cm-prod"))
    assert denied["allowed"] is False, denied
    assert denied["status"]["code"] == 403
    message = denied["status"]["message"]
    assert (
        "[prod-deletes-need-break-glass/0] deleting ConfigMap settings (env: prod) needs break-glass"
        in message
    )
    glass = _answer(
        srv, _delete(_config_map("settings", {"env": "prod"}), "uid-cm-glass", groups=("break-glass",))
    )
    assert glass["allowed"] is True, glass
    # Not prod: allowed; the CREATE/UPDATE-only policy, which reads `object`, is not asked.
    other = _answer(srv, _delete(_config_map("scratch", {"env": "dev"}), "uid-cm-dev"))
    assert other["allowed"] is True, other
    assert "skipped" not in other.get("auditAnnotations", {}), other
    records = _records(db)
    for uid, verdict in (("uid-cm-prod", "deny"), ("uid-cm-glass", "allow"), ("uid-cm-dev", "allow")):
        record = records[uid]
        assert record["subject"]["operation"] == "DELETE", record["subject"]
        assert record["verdict"] == verdict, record
    assert [f["rule"] for f in records["uid-cm-prod"]["findings"]] == ["prod-deletes-need-break-glass/0"]
    assert denied["auditAnnotations"]["record"] and glass["auditAnnotations"]["record"]


def test_a_protected_delete_needs_both_its_approval_and_the_policies(served: tuple[Server, Path]) -> None:
    """The approval annotation decided a protected kind's DELETE alone: an approved prod Namespace
    was deleted by anyone, though an admission policy forbade it."""
    srv, db = served
    approved = _namespace("payments", {"env": "prod"}, APPROVED)
    denied = _answer(srv, _delete(approved, "uid-ns-approved"))
    assert denied["allowed"] is False, denied
    assert "deleting Namespace payments (env: prod) needs break-glass" in denied["status"]["message"]
    assert "needs approval" not in denied["status"]["message"]
    glass = _answer(srv, _delete(approved, "uid-ns-glass", groups=("break-glass",)))
    assert glass["allowed"] is True, glass
    # The approval logic stays: unapproved, it is denied for that too, and an allowed controller
    # needs no approval, but the policy still applies to it, as in the API server.
    unapproved = _answer(srv, _delete(_namespace("payments", {"env": "prod"}), "uid-ns-unapproved"))
    assert unapproved["allowed"] is False, unapproved
    assert "needs approval" in unapproved["status"]["message"]
    assert "needs break-glass" in unapproved["status"]["message"]
    controller = "system:serviceaccount:kube-system:namespace-controller"
    dev = _answer(srv, _delete(_namespace("scratch", {"env": "dev"}), "uid-ns-controller", user=controller))
    assert dev["allowed"] is True, dev
    records = _records(db)
    assert {f["rule"] for f in records["uid-ns-unapproved"]["findings"]} == {
        "admission-protected-delete",
        "prod-deletes-need-break-glass/0",
    }
    assert records["uid-ns-glass"]["verdict"] == "allow"
    assert any("approved by trustgate.dev/allow-delete" in n for n in records["uid-ns-glass"]["notes"])
    assert any("an allowed controller" in n for n in records["uid-ns-controller"]["notes"])


def test_a_dry_run_delete_is_judged_and_recorded_as_a_dry_run(served: tuple[Server, Path]) -> None:
    srv, db = served
    answer = _answer(srv, _delete(_config_map("settings", {"env": "prod"}), "uid-cm-dry", dry_run=True))
    assert answer["allowed"] is False, answer
    assert answer["auditAnnotations"]["dry-run"] == "true"
    record = _records(db)["uid-cm-dry"]
    assert record["subject"]["operation"] == "DELETE"
    assert record["subject"]["dryRun"] is True, record["subject"]
    assert any("dryRun" in n for n in record["notes"]), record["notes"]


def test_a_policy_that_cannot_be_evaluated_on_a_delete_fails_closed(served: tuple[Server, Path]) -> None:
    """`authorizer` asks the cluster: trustgate cannot, so the DELETE is denied with the reason."""
    srv, db = served
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "payments"}}
    answer = _answer(srv, _delete(secret, "uid-secret"))
    assert answer["allowed"] is False, answer
    message = answer["status"]["message"]
    assert "could not be evaluated" in message and "`authorizer`" in message, message
    assert "failure policy closed: denied" in message
    assert _records(db)["uid-secret"]["subject"]["operation"] == "DELETE"


def _exec(
    command: list[str], uid: str, *, namespace: str = "payments", groups: tuple[str, ...] = ()
) -> dict[str, Any]:
    """`kubectl exec` as the API server sends it (see the module's docstring)."""
    kind = {"group": "", "version": "v1", "kind": "PodExecOptions"}
    request = {
        "uid": uid,
        "kind": kind,
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "subResource": "exec",
        "requestKind": kind,
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "requestSubResource": "exec",
        "name": "web-0",
        "namespace": namespace,
        "operation": "CONNECT",
        "userInfo": {"username": "alice@example.com", "groups": [*groups, "system:authenticated"]},
        "object": {"kind": "PodExecOptions", "apiVersion": "v1", "stdin": True, "stdout": True, "tty": True,
                   "container": "web", "command": command},
        "oldObject": None,
        "dryRun": False,
        "options": None,
    }  # fmt: skip
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def test_a_policy_on_connect_judges_kubectl_exec(served: tuple[Server, Path]) -> None:
    """CONNECT was answered `skipped` (a subresource): an admission policy on pods/exec was not enforced."""
    srv, db = served
    shell = _answer(srv, _exec(["/bin/sh"], "uid-exec-shell"))
    assert shell["allowed"] is False, shell
    assert "no shell in payments/web-0 without break-glass" in shell["status"]["message"]
    assert "not the CONNECT" not in shell["status"]["message"]
    for uid, command, groups in (("uid-exec-ls", ["ls"], ()), ("uid-exec-glass", ["bash"], ("break-glass",))):
        allowed = _answer(srv, _exec(command, uid, groups=groups))
        assert allowed["allowed"] is True, allowed
        assert "skipped" not in allowed.get("auditAnnotations", {}), allowed
    records = _records(db)
    assert records["uid-exec-shell"]["subject"]["operation"] == "CONNECT"
    assert records["uid-exec-shell"]["verdict"] == "deny"
    assert records["uid-exec-ls"]["verdict"] == "allow"
    # The excluded namespaces stay excluded, as for every other request.
    system = _answer(srv, _exec(["/bin/sh"], "uid-exec-system", namespace="kube-system"))
    assert system["allowed"] is True and "skipped" in system["auditAnnotations"], system


def test_webhook_config_sends_the_deletes_and_connects_the_policies_judge(tmp_path: Path) -> None:
    """The generated ValidatingWebhookConfiguration sent DELETE for the protected kinds only, and no
    CONNECT."""
    policy = tmp_path / "deletes.yaml"
    policy.write_text(PROD_DELETES + "---\n" + NO_SHELL)
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        f"apiVersion: trustgate.dev/v1alpha1\nkind: Config\nmanifests:\n  admissionPolicies: [{policy}]\n"
    )
    for args in (["-c", str(config)], ["--admission-policy", str(policy)]):
        done = subprocess.run(
            [str(TRUSTGATE), "webhook-config", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        manifest = yaml.safe_load(done.stdout)
        for hook in manifest["webhooks"]:
            deletes = [r for r in hook["rules"] if "DELETE" in r["operations"]]
            sent = {(g, res) for r in deletes for g in r["apiGroups"] for res in r["resources"]}
            assert ("", "configmaps") in sent, deletes  # the policy's
            assert ("", "persistentvolumeclaims") in sent, deletes  # a protected kind's, as before
            connects = [r for r in hook["rules"] if "CONNECT" in r["operations"]]
            assert connects == [
                {
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "operations": ["CONNECT"],
                    "resources": ["pods/exec"],
                    # The fail-open webhook sends namespaced objects only (cluster-scoped: the main one).
                    "scope": "Namespaced" if hook["name"].startswith("validate-fail-open") else "*",
                }
            ]
            creates = [r for r in hook["rules"] if "CREATE" in r["operations"]]
            assert all("DELETE" not in r["operations"] for r in creates)


# The cluster's own controllers delete through the policies too: a policy whose matchConditions
# exempt them must not deny them for what its validations read (`authorizer`, `namespaceObject`),
# nor a namespaceSelector on a Namespace trustgate was not given, under failurePolicy Ignore.
CONTROLLER = "system:serviceaccount:kube-system:namespace-controller"
GARBAGE_COLLECTOR = "system:serviceaccount:kube-system:generic-garbage-collector"


def _lockout_policy(name: str, resource: str, validation: str, extra: str, failure: str = "Fail") -> str:
    return f"""\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {name}}}
spec:
  failurePolicy: {failure}
  matchConstraints:
    resourceRules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["DELETE"]
        resources: ["{resource}"]
{extra}  validations:
    - expression: "{validation}"
      message: {name} denies
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {name}}}
spec:
  policyName: {name}
  validationActions: [Deny]
"""


NOT_SYSTEM = (
    "  matchConditions:\n"
    "    - name: not-system\n"
    "      expression: \"!request.userInfo.username.startsWith('system:serviceaccount:kube-system:')\"\n"
)
IN_PROD = "    namespaceSelector: {matchLabels: {env: prod}}\n"
LOCKOUTS = "---\n".join(
    [
        _lockout_policy(
            "secrets-purge",
            "secrets",
            "authorizer.group('').resource('secrets').check('purge').allowed()",
            NOT_SYSTEM,
        ),
        _lockout_policy(
            "endpoints-not-in-prod",
            "endpoints",
            "namespaceObject.metadata.?labels.?env.orValue('') != 'prod'",
            NOT_SYSTEM,
        ),
        _lockout_policy("services-in-prod", "services", "false", IN_PROD, failure="Ignore"),
        _lockout_policy("claims-in-prod", "persistentvolumeclaims", "false", IN_PROD),
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: payments, labels: {env: prod}}\n",
    ]
)


@pytest.fixture(scope="module")
def served_lockouts(
    certs: CertSet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Path]]:
    yield from _serving(certs, tmp_path_factory.mktemp("lockouts"), LOCKOUTS)


def _object(kind: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x", "namespace": namespace}}


def test_match_conditions_exempting_the_controllers_decide_before_what_cannot_be_evaluated(
    served_lockouts: tuple[Server, Path],
) -> None:
    """A policy reading `authorizer` or an unknown `namespaceObject` denied the namespace
    controller's and the garbage collector's DELETEs though its matchConditions exempt them: the
    API server evaluates matchConditions first, and a false one skips the policy."""
    srv, db = served_lockouts
    for user in (CONTROLLER, GARBAGE_COLLECTOR):
        for kind, resource in (("Secret", "secrets"), ("Endpoints", "endpoints")):
            uid = f"uid-{user.rsplit(':', 1)[1]}-{resource}"
            answer = _answer(srv, _delete(_object(kind, "team-a"), uid, user=user, resource=resource))
            assert answer["allowed"] is True, answer
            assert _records(db)[uid]["verdict"] == "allow"
    # Anyone else: the policy applies, and trustgate cannot evaluate it: fail closed.
    for kind, resource, what in (
        ("Secret", "secrets", "`authorizer`"),
        ("Endpoints", "endpoints", "`namespaceObject`"),
    ):
        answer = _answer(srv, _delete(_object(kind, "team-a"), f"uid-alice-{resource}", resource=resource))
        assert answer["allowed"] is False, answer
        message = answer["status"]["message"]
        assert "could not be evaluated" in message and what in message, message


def test_a_namespace_selector_on_an_unknown_namespace_follows_the_policys_failure_policy(
    served_lockouts: tuple[Server, Path],
) -> None:
    """The namespace controller deleting a Service in a Namespace trustgate was not given was
    denied for a namespaceSelector under failurePolicy Ignore: now the policy does not apply. Under
    Fail it stays fail-closed, and says how to give trustgate the Namespace."""
    srv, db = served_lockouts
    service = _object("Service", "scratch")
    answer = _answer(srv, _delete(service, "uid-svc-scratch", user=CONTROLLER, resource="services"))
    assert answer["allowed"] is True, answer
    assert _records(db)["uid-svc-scratch"]["verdict"] == "allow"
    # A Namespace in the policy files is decided: prod is selected, and the policy denies.
    prod = _answer(srv, _delete(_object("Service", "payments"), "uid-svc-prod", resource="services"))
    assert prod["allowed"] is False, prod
    assert "services-in-prod denies" in prod["status"]["message"]
    claim = _object("PersistentVolumeClaim", "scratch")
    closed = _answer(
        srv, _delete(claim, "uid-pvc-scratch", user=CONTROLLER, resource="persistentvolumeclaims")
    )
    assert closed["allowed"] is False, closed
    message = closed["status"]["message"]
    assert "Namespace 'scratch' is not in the change set or the admission policy files" in message, message
    assert "list Namespace 'scratch' in the admission policy files" in message, message
