"""ValidatingAdmissionPolicies on a DELETE, as the API server runs them (`review(None, old=...)`).

The reference is k8s.io/apiserver: a DELETE's attributes hold no object (`object` null in CEL), the
object deleted as `oldObject`; rules match the operation DELETE; an objectSelector matches by the
labels of the object or the old object (`matchObject` of a nil object selects nothing); the
namespaceSelector of a Namespace's own DELETE reads the Namespace as stored (namespace
`Matcher.GetNamespaceLabels`: "if the request is deleting a namespace, then get the label from the
namespace in the namespaceLister"); `request.options` is a DeleteOptions. A review captured from the
Kubernetes 1.20 API server built for the tests gives a Namespace's DELETE its own name as
`request.namespace`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.vap import binding, denying, manifests, policy, rule

from trustgate.policy import vap

Write = Callable[[str, str], Path]

SEES_THE_DELETE = denying(
    "sees-the-delete",
    [rule(["DELETE"], ["configmaps", "namespaces"])],
    [
        {"expression": "object == null", "message": "object is not null"},
        {
            "expression": "request.operation == 'DELETE' && request.options.kind == 'DeleteOptions'",
            "message": "not a DELETE",
        },
        {
            "expression": "request.namespace =="
            " (request.kind.kind == 'Namespace' ? oldObject.metadata.name : 'shop')",
            "message": "request.namespace is wrong",
        },
        {
            "expression": "oldObject.metadata.?labels.?locked.orValue('') != 'true'",
            "messageExpression": "'locked: ' + oldObject.metadata.name",
        },
    ],
)

KEEP_NOT_SET = {"matchExpressions": [{"key": "keep", "operator": "DoesNotExist"}]}

SELECTED = manifests(
    policy(
        "selected",
        [rule(["*"], ["configmaps", "namespaces"])],
        [{"expression": "false", "message": "selected"}],
    ),
    binding(
        "selected-by-object",
        policy="selected",
        match={"resourceRules": [rule(["*"], ["configmaps"])], "objectSelector": KEEP_NOT_SET},
    ),
    binding(
        "selected-by-namespace",
        policy="selected",
        match={
            "resourceRules": [rule(["DELETE"], ["namespaces"])],
            "namespaceSelector": {"matchLabels": {"env": "prod"}},
        },
    ),
)

ADMISSION: dict[str, Any] = {
    "uid": "u-1",
    "operation": "DELETE",
    "userInfo": {"username": "alice"},
    "options": {"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions"},
}


def _cm(labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "shop", "labels": labels},
    }


def _ns(labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "payments", "labels": labels}}


def _messages(outcomes: list[vap.Outcome]) -> list[str]:
    return sorted(o.message for o in outcomes)


def test_a_delete_is_reviewed_with_object_null_and_the_object_deleted_as_old(write: Write) -> None:
    policies = vap.load([write("p.yaml", SEES_THE_DELETE)])
    assert _messages(policies.review(None, old=_cm({}))) == []  # offline
    assert _messages(policies.review(None, old=_cm({}), admission={**ADMISSION, "namespace": "shop"})) == []
    assert _messages(policies.review(None, old=_cm({"locked": "true"}))) == ["locked: c"]
    ns = {**ADMISSION, "namespace": "payments"}  # as the API server sends a Namespace's DELETE
    assert _messages(policies.review(None, old=_ns({}), admission=ns)) == []
    assert _messages(policies.review(None, old=_ns({"locked": "true"}), admission=ns)) == ["locked: payments"]
    # Its rules name DELETE only: a CREATE of the same object is not matched.
    assert policies.review(_cm({"locked": "true"})) == []


def test_selectors_on_a_delete_read_the_object_deleted(write: Write) -> None:
    policies = vap.load([write("p.yaml", SELECTED)])
    # objectSelector: a DELETE has no object, whose empty labels a DoesNotExist would select.
    assert _messages(policies.review(None, old=_cm({"keep": "yes"}))) == []
    assert _messages(policies.review(None, old=_cm({}))) == ["selected"]
    # namespaceSelector of a Namespace's own DELETE: the Namespace deleted, as stored.
    ns = {**ADMISSION, "namespace": "payments"}
    assert _messages(policies.review(None, old=_ns({"env": "prod"}), admission=ns)) == ["selected"]
    assert _messages(policies.review(None, old=_ns({"env": "dev"}), admission=ns)) == []


def test_the_rules_for_delete_are_those_of_bound_policies_naming_it(write: Write) -> None:
    policies = vap.load([write("p.yaml", SEES_THE_DELETE + "---\n" + SELECTED)])
    rules = policies.rules_for("DELETE")
    assert rules == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["DELETE"],
            "resources": ["configmaps", "namespaces"],
            "scope": "*",
        }
    ]  # the `*` of `selected` gives the same rule: not repeated
    unbound = vap.load([write("u.yaml", SEES_THE_DELETE.split("---")[0])])
    assert unbound.rules_for("DELETE") == []  # the API server enforces no policy without a binding


NO_SHELL = manifests(
    policy(
        "no-shell",
        [rule(["CONNECT"], ["pods/exec"])],
        [
            {
                "expression": "oldObject == null && request.options == null"
                " && request.operation == 'CONNECT'",
                "message": "not a CONNECT",
            },
            {
                "expression": "!('sh' in object.command)",
                "messageExpression": "'no shell in ' + request.namespace + '/' + request.name",
            },
        ],
    ),
    binding("no-shell"),
    binding("no-shell-unless-kept", policy="no-shell", match={"objectSelector": KEEP_NOT_SET}),
)

CONNECT: dict[str, Any] = {
    "uid": "u-2",
    "operation": "CONNECT",
    "kind": {"group": "", "version": "v1", "kind": "PodExecOptions"},
    "resource": {"group": "", "version": "v1", "resource": "pods"},
    "subResource": "exec",
    "name": "web-0",
    "namespace": "shop",
    "userInfo": {"username": "alice"},
    "options": None,
}


def test_a_connect_is_reviewed_with_its_options_as_the_object(write: Write) -> None:
    """As the API server's CONNECT (captured from the 1.20 API server): object the PodExecOptions,
    no options; the request names the Pod; an objectSelector selects nothing (matchObject cannot
    read the metadata of options, which have none), so only the unselected binding applies."""
    policies = vap.load([write("p.yaml", NO_SHELL)])
    shell = {"apiVersion": "v1", "kind": "PodExecOptions", "command": ["sh"], "stdout": True}
    outcomes = policies.review(shell, admission=CONNECT)
    assert [(o.binding.name, o.message) for o in outcomes] == [("no-shell", "no shell in shop/web-0")]
    assert policies.review({**shell, "command": ["ls"]}, admission=CONNECT) == []
    # Not a CONNECT (an offline check): its rules do not match.
    assert policies.review(shell) == []
    assert policies.rules_for("CONNECT") == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CONNECT"],
            "resources": ["pods/exec"],
            "scope": "*",
        }
    ]
