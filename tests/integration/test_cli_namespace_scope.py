"""The namespace `trustgate check` judges an object in is the one the API server gives it.

A cluster-scoped kind has none, whatever its metadata.namespace says: the API server clears it
before admission, so neither Gatekeeper's match nor an exception for a namespace may see it. A
namespaced kind's object that names no namespace lands in one that `kubectl -n`, a Flux
targetNamespace or an Argo CD destination picks: a constraint applies to it as if it were in a
namespace the constraint selects. Each case was a false allow; the controls show what must not
become a deny.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from trustgate.cli.main import main

Write = Callable[[str, str], Path]


def check(*args: str, builtin: bool = False) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(
        main,
        ["check", "--no-schemas", "--format", "json", *([] if builtin else ["--no-builtin"]), *args],
        catch_exceptions=False,
    )
    return result.exit_code, json.loads(result.stdout)


def errors(report: dict[str, Any]) -> list[str]:
    return [f["message"] for r in report["results"] for f in r["findings"] if f["severity"] == "error"]


NO_CLUSTER_ADMIN = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8snoclusteradmin}
spec:
  crd: {spec: {names: {kind: K8sNoClusterAdmin}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package k8snoclusteradmin
      violation[{"msg": "no cluster-admin bindings"}] {
        input.review.object.roleRef.name == "cluster-admin"
      }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sNoClusterAdmin
metadata: {name: no-cluster-admin}
spec:
  match:
    kinds: [{apiGroups: ["rbac.authorization.k8s.io"], kinds: ["ClusterRoleBinding", "RoleBinding"]}]
"""

NO_PRIVILEGED = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8snoprivileged}
spec:
  crd: {spec: {names: {kind: K8sNoPrivileged}}}
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package k8snoprivileged
      violation[{"msg": "privileged"}] {
        input.review.object.spec.containers[_].securityContext.privileged
      }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sNoPrivileged
metadata: {name: no-privileged}
spec:
  match:
    kinds: [{apiGroups: ["", "example.com"], kinds: ["Pod", "Sandbox"]}]
"""


def binding(kind: str, namespace: str = "") -> str:
    ns = f", namespace: {namespace}" if namespace else ""
    return f"""\
apiVersion: rbac.authorization.k8s.io/v1
kind: {kind}
metadata: {{name: me-admin{ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}}
subjects: [{{kind: User, name: mallory, apiGroup: rbac.authorization.k8s.io}}]
"""


def pod(namespace: str = "", *, kind: str = "Pod", api_version: str = "v1") -> str:
    ns = f", namespace: {namespace}" if namespace else ""
    return f"""\
apiVersion: {api_version}
kind: {kind}
metadata: {{name: bad{ns}}}
spec:
  containers: [{{name: c, image: nginx, securityContext: {{privileged: true}}}}]
"""


def sandbox_crd(scope: str) -> str:
    return f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: sandboxes.example.com}}
spec:
  group: example.com
  scope: {scope}
  names: {{kind: Sandbox, plural: sandboxes}}
  versions: [{{name: v1, served: true, storage: true}}]
"""


def constraint_with(policy: str, match: str) -> str:
    """`policy` with `match` (YAML lines at the indent of spec.match's keys) added to its match."""
    return policy + "".join(f"    {line}\n" for line in match.strip().splitlines())


# -- a cluster-scoped kind that names a namespace --------------------------------------------------


def test_scope_cluster_applies_to_a_cluster_scoped_kind_that_names_a_namespace(write: Write) -> None:
    policy = write("gk.yaml", constraint_with(NO_CLUSTER_ADMIN, "scope: Cluster"))
    for name, namespace in (("stray.yaml", "whatever"), ("plain.yaml", "")):
        code, report = check(
            str(write(name, binding("ClusterRoleBinding", namespace))), "--gatekeeper", str(policy)
        )
        assert (code, errors(report)) == (1, ["no cluster-admin bindings"]), name
        assert report["results"][0]["namespace"] is None  # the API server clears it
    rolebinding = write("rb.yaml", binding("RoleBinding", "shop"))
    assert check(str(rolebinding), "--gatekeeper", str(policy))[0] == 0  # namespaced: not Cluster


def test_excluded_namespaces_do_not_exclude_a_cluster_scoped_kind(write: Write) -> None:
    policy = write("gk.yaml", constraint_with(NO_CLUSTER_ADMIN, "excludedNamespaces: [sandbox]"))
    crb = write("crb.yaml", binding("ClusterRoleBinding", "sandbox"))
    code, report = check(str(crb), "--gatekeeper", str(policy))
    assert (code, errors(report)) == (1, ["no cluster-admin bindings"])
    rolebinding = write("rb.yaml", binding("RoleBinding", "sandbox"))
    assert check(str(rolebinding), "--gatekeeper", str(policy))[0] == 0  # the exclusion still holds


def test_namespaces_select_a_cluster_scoped_kind_whatever_it_names(write: Write) -> None:
    """Gatekeeper's namespacesMatch: an object in no namespace is matched by `namespaces`."""
    policy = write("gk.yaml", constraint_with(NO_CLUSTER_ADMIN, "namespaces: [prod]"))
    crb = write("crb.yaml", binding("ClusterRoleBinding", "dev"))
    code, report = check(str(crb), "--gatekeeper", str(policy))
    assert (code, errors(report)) == (1, ["no cluster-admin bindings"])
    rolebinding = write("rb.yaml", binding("RoleBinding", "dev"))
    assert check(str(rolebinding), "--gatekeeper", str(policy))[0] == 0  # namespaced, not in prod


def test_the_review_of_a_cluster_scoped_kind_names_no_namespace(write: Write) -> None:
    exempt = NO_CLUSTER_ADMIN.replace(
        'input.review.object.roleRef.name == "cluster-admin"',
        'input.review.object.roleRef.name == "cluster-admin"\n'
        '        not input.review.namespace == "sandbox"\n'
        '        not input.review.object.metadata.namespace == "sandbox"',
    )
    policy = write("gk.yaml", exempt)
    crb = write("crb.yaml", binding("ClusterRoleBinding", "sandbox"))
    assert check(str(crb), "--gatekeeper", str(policy))[0] == 1
    assert (
        check(str(write("rb.yaml", binding("RoleBinding", "sandbox"))), "--gatekeeper", str(policy))[0] == 0
    )


def test_a_custom_kind_takes_its_scope_from_the_crd_given(write: Write) -> None:
    policy = write("gk.yaml", constraint_with(NO_PRIVILEGED, "excludedNamespaces: [sandbox]"))
    sandbox = write("sandbox.yaml", pod("sandbox", kind="Sandbox", api_version="example.com/v1"))
    cluster = write("crd/cluster.yaml", sandbox_crd("Cluster"))
    code, report = check(str(sandbox), "--gatekeeper", str(policy), "--crd", str(cluster))
    assert (code, errors(report)) == (1, ["privileged"])
    namespaced = write("crd2/namespaced.yaml", sandbox_crd("Namespaced"))
    assert check(str(sandbox), "--gatekeeper", str(policy), "--crd", str(namespaced))[0] == 0


def test_an_exception_for_a_namespace_does_not_waive_a_cluster_scoped_kind(write: Write) -> None:
    write(
        "policy/rbac.rego",
        """\
        package platform.rbac
        import rego.v1
        deny contains {"msg": "binding to cluster-admin is forbidden", "rule": "rbac-no-cluster-admin"} if {
          input.roleRef.name == "cluster-admin"
        }
        """,
    )
    config = write(
        "trustgate.yaml",
        """\
        apiVersion: trustgate.dev/v1alpha1
        kind: Config
        manifests:
          policies: [{path: policy/}]
        exceptions:
          - {name: sandbox, rules: ["*"], namespaces: [sandbox], owner: platform, reason: experiments,
             expires: "2099-12-31"}
        """,
    )
    crb = write("deploy/crb.yaml", binding("ClusterRoleBinding", "sandbox"))
    code, report = check("-c", str(config), str(crb))
    assert (code, errors(report)) == (1, ["binding to cluster-admin is forbidden"])
    rolebinding = write("deploy/rb.yaml", binding("RoleBinding", "sandbox"))
    code, report = check("-c", str(config), str(rolebinding))
    assert code == 0  # in the sandbox: waived
    assert report["results"][0]["findings"][0]["exception"]["name"] == "sandbox"


# -- a namespaced kind that names no namespace -------------------------------------------------------


def test_scope_namespaced_applies_to_a_pod_that_names_no_namespace(write: Write) -> None:
    policy = write("gk.yaml", constraint_with(NO_PRIVILEGED, "scope: Namespaced"))
    for manifest in (pod(), pod("shop")):
        code, report = check(str(write("pod.yaml", manifest)), "--gatekeeper", str(policy))
        assert (code, errors(report)) == (1, ["privileged"])
    cluster = write("gk2.yaml", constraint_with(NO_PRIVILEGED, "scope: Cluster"))
    assert check(str(write("pod.yaml", pod())), "--gatekeeper", str(cluster))[0] == 0  # never cluster-scoped


def test_namespace_conditions_apply_to_a_pod_that_names_no_namespace_and_say_so(write: Write) -> None:
    note = "(no metadata.namespace: judged as if applied in a namespace the constraint selects"
    namespace = "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: prod, labels: {env: prod}}\n"
    for match in (
        "namespaces: [prod]",
        "excludedNamespaces: [sandbox]",
        "namespaceSelector: {matchLabels: {env: prod}}",
    ):
        policy = write("gk.yaml", constraint_with(NO_PRIVILEGED, match))
        code, report = check(str(write("pod.yaml", pod() + namespace)), "--gatekeeper", str(policy))
        assert code == 1, match
        [message] = errors(report)
        assert message.startswith("privileged ") and note in message, match
    # Where the manifest names its namespace, the conditions decide as written: no deny, no note.
    policy = write("gk.yaml", constraint_with(NO_PRIVILEGED, "namespaces: [prod]"))
    assert check(str(write("pod.yaml", pod("dev"))), "--gatekeeper", str(policy))[0] == 0
    code, report = check(str(write("pod.yaml", pod("prod"))), "--gatekeeper", str(policy))
    assert (code, errors(report)) == (1, ["privileged"])


def test_a_kind_of_unknown_scope_without_a_namespace_is_matched_by_either_scope(write: Write) -> None:
    sandbox = write("sandbox.yaml", pod(kind="Sandbox", api_version="example.com/v1"))
    for scope in ("Cluster", "Namespaced"):
        policy = write("gk.yaml", constraint_with(NO_PRIVILEGED, f"scope: {scope}"))
        code, report = check(str(sandbox), "--gatekeeper", str(policy))
        assert code == 1, scope
        [message] = errors(report)
        assert "the scope of its kind is unknown" in message and "--crd" in message
    # Its CRD decides it: a cluster-scoped Sandbox is not matched by scope Namespaced.
    policy = write("gk.yaml", constraint_with(NO_PRIVILEGED, "scope: Namespaced"))
    crd = write("crd/cluster.yaml", sandbox_crd("Cluster"))
    assert check(str(sandbox), "--gatekeeper", str(policy), "--crd", str(crd))[0] == 0


UNKNOWN_SCOPE_NOTE = "the scope of its kind is unknown: judged as cluster-scoped"


@pytest.mark.parametrize("match", ["excludedNamespaces: [sandbox]", "scope: Cluster", "namespaces: [prod]"])
def test_a_kind_of_unknown_scope_that_names_a_namespace_is_judged_in_no_namespace_too(
    write: Write, match: str
) -> None:
    """kustomize's `namespace:` gives a namespace to every custom kind; if the kind is
    cluster-scoped, the API server clears it and Gatekeeper reviews the object in none."""
    policy = write("gk.yaml", constraint_with(NO_PRIVILEGED, match))
    sandbox = write("sandbox.yaml", pod("sandbox", kind="Sandbox", api_version="example.com/v1"))
    code, report = check(str(sandbox), "--gatekeeper", str(policy))
    assert code == 1
    [message] = errors(report)
    assert message.startswith("privileged (") and UNKNOWN_SCOPE_NOTE in message and "--crd" in message
    # Its CRD decides it: namespaced, the object is judged in its namespace only.
    crd = write("crd/namespaced.yaml", sandbox_crd("Namespaced"))
    assert check(str(sandbox), "--gatekeeper", str(policy), "--crd", str(crd))[0] == 0
    crd = write("crd2/cluster.yaml", sandbox_crd("Cluster"))
    assert check(str(sandbox), "--gatekeeper", str(policy), "--crd", str(crd))[0] == 1


def test_a_kind_of_unknown_scope_is_not_judged_cluster_scoped_where_scope_namespaced_excludes_it(
    write: Write,
) -> None:
    """The other reading adds only what it finds: scope Namespaced does not match it cluster-scoped,
    and a finding both readings make is made once, without the note."""
    sandbox = write("sandbox.yaml", pod("sandbox", kind="Sandbox", api_version="example.com/v1"))
    policy = write(
        "gk.yaml", constraint_with(NO_PRIVILEGED, "scope: Namespaced\nexcludedNamespaces: [sandbox]")
    )
    assert check(str(sandbox), "--gatekeeper", str(policy))[0] == 0
    policy = write("gk.yaml", NO_PRIVILEGED)
    code, report = check(str(sandbox), "--gatekeeper", str(policy))
    assert (code, errors(report)) == (1, ["privileged"])


def test_an_exception_for_a_namespace_does_not_waive_a_kind_of_unknown_scope(write: Write) -> None:
    write(
        "policy/sandbox.rego",
        """\
        package platform.sandbox
        import rego.v1
        deny contains {"msg": "privileged", "rule": "no-privileged"} if {
          input.spec.containers[_].securityContext.privileged
        }
        """,
    )
    config = write(
        "trustgate.yaml",
        """\
        apiVersion: trustgate.dev/v1alpha1
        kind: Config
        manifests:
          policies: [{path: policy/}]
        exceptions:
          - {name: sandbox, rules: ["*"], namespaces: [sandbox], owner: platform, reason: experiments,
             expires: "2099-12-31"}
        """,
    )
    sandbox = write("deploy/sandbox.yaml", pod("sandbox", kind="Sandbox", api_version="example.com/v1"))
    code, report = check("-c", str(config), str(sandbox))
    assert (code, errors(report)) == (1, ["privileged"])
    [finding] = [f for f in report["results"][0]["findings"] if f["severity"] == "error"]
    assert "exception 'sandbox' does not apply: the scope of Sandbox is unknown" in finding["note"]
    assert "--crd" in finding["note"]
    crd = write("crd/namespaced.yaml", sandbox_crd("Namespaced"))
    code, report = check("-c", str(config), "--crd", str(crd), str(sandbox))
    assert code == 0  # namespaced, in the sandbox: waived
    assert report["results"][0]["findings"][0]["exception"]["name"] == "sandbox"


def test_cel_that_reads_namespace_object_is_not_evaluated_for_a_pod_that_names_no_namespace(
    write: Write,
) -> None:
    """As for a Namespace not given: the Namespace it lands in is unknown, so is the decision."""
    policy = write(
        "gk.yaml",
        """\
        apiVersion: templates.gatekeeper.sh/v1
        kind: ConstraintTemplate
        metadata: {name: notfrozen}
        spec:
          crd: {spec: {names: {kind: NotFrozen}}}
          targets:
          - target: admission.k8s.gatekeeper.sh
            code:
            - engine: K8sNativeValidation
              source:
                validations:
                - expression: "namespaceObject == null || namespaceObject.metadata.labels.tier != 'frozen'"
                  message: frozen
        ---
        apiVersion: constraints.gatekeeper.sh/v1beta1
        kind: NotFrozen
        metadata: {name: c}
        spec:
          match: {kinds: [{apiGroups: [""], kinds: [ConfigMap]}]}
        """,
    )
    cm = write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    code, report = check(str(cm), "--gatekeeper", str(policy))
    assert code == 3
    assert any("names no namespace" in m for m in errors(report))
    # A cluster-scoped object has no Namespace: null, as Gatekeeper gives it.
    policy.write_text(policy.read_text().replace("kinds: [ConfigMap]", "kinds: [ConfigMap, Namespace]"))
    namespace = write("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")
    assert check(str(namespace), "--gatekeeper", str(policy))[0] == 0


# -- a CRD for a built-in kind ---------------------------------------------------------------------


def crd_for(group: str, kind: str, plural: str, scope: str) -> str:
    return f"""\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {plural}.{group}}}
spec:
  group: "{group}"
  scope: {scope}
  names: {{kind: {kind}, plural: {plural}}}
  versions: [{{name: v1, served: true, storage: true}}]
"""


def test_a_crd_does_not_change_the_scope_of_a_built_in_kind(write: Write) -> None:
    """The API server serves networking.k8s.io Ingress from its own handler, whatever a CRD of
    the same group and kind says: scope Namespaced still applies to an Ingress in a namespace."""
    policy = write(
        "gk.yaml",
        constraint_with(NO_PRIVILEGED, "scope: Namespaced").replace(
            '["", "example.com"], kinds: ["Pod", "Sandbox"]', '["networking.k8s.io"], kinds: ["Ingress"]'
        ),
    )
    ingress = write("ing.yaml", pod("prod", kind="Ingress", api_version="networking.k8s.io/v1"))
    crd = write("crd/ingress.yaml", crd_for("networking.k8s.io", "Ingress", "ingresses", "Cluster"))
    for extra in ((), ("--crd", str(crd))):
        code, report = check(str(ingress), "--gatekeeper", str(policy), *extra)
        assert (code, errors(report)) == (1, ["privileged"]), extra
        assert report["results"][0]["namespace"] == "prod"


def test_a_crd_for_a_group_without_a_dot_is_refused_as_the_api_server_refuses_it(write: Write) -> None:
    policy = write("gk.yaml", constraint_with(NO_PRIVILEGED, "scope: Namespaced"))
    crd = write("crd/pods.yaml", crd_for("", "Pod", "pods", "Cluster"))
    result = CliRunner().invoke(
        main,
        [
            "check",
            "--no-builtin",
            "--gatekeeper",
            str(policy),
            "--crd",
            str(crd),
            str(write("p.yaml", pod("prod"))),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 3  # as for any CRD trustgate cannot use
    assert "spec.group is empty" in result.output and "pods.yaml" in result.output
    crd.write_text(crd_for("extensions", "Ingress", "ingresses", "Cluster"))
    result = CliRunner().invoke(
        main, ["check", "--no-builtin", "--crd", str(crd), str(write("p.yaml", pod()))]
    )
    assert result.exit_code == 3 and "'extensions' has no dot" in result.output
