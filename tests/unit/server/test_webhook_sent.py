"""What `trustgate webhook-config` sends and leaves out, read from its output as the API server reads
it: what a policy names is never left out, nothing is guessed, reviews and heartbeats stay out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from trustgate.cli.main import main
from trustgate.config import load_config
from trustgate.errors import ConfigError

TEMPLATE = """apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8sdenylabel}
spec:
  crd:
    spec:
      names: {kind: K8sDenyLabel}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sdenylabel
        violation[{"msg": "label evil is not allowed"}] {
          input.review.object.metadata.labels.evil
        }
"""
DENY_LOAD_BALANCERS = """package main

deny contains msg if {
\tinput.kind == "Service"
\tinput.spec.type == "LoadBalancer"
\tmsg := "no LoadBalancer Services"
}
"""
REDIS_CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: redis.redis.redis.opstreelabs.in}
spec:
  group: redis.redis.redis.opstreelabs.in
  names: {kind: Redis, plural: redis, singular: redis}
  scope: Namespaced
  versions: [{name: v1beta2, served: true, storage: true}]
"""
HOUSEKEEPING = (
    "coordination.k8s.io/leases",
    "/events",
    "events.k8s.io/events",
    "/nodes",
    "certificates.k8s.io/certificatesigningrequests",
)


def _library(tmp_path: Path, kinds: str) -> Path:
    path = tmp_path / "gatekeeper.yaml"
    path.write_text(
        TEMPLATE + "---\napiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sDenyLabel\n"
        f"metadata: {{name: no-evil}}\nspec:\n  match:\n    kinds: {kinds}\n"
    )
    return path


def _file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "trustgate.yaml"
    path.write_text("apiVersion: trustgate.dev/v1alpha1\nkind: Config\n" + body)
    return path


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, ["webhook-config", *args])


def _hook(*args: str) -> dict[str, Any]:
    result = _run(*args)
    assert result.exit_code == 0, result.stderr
    hook: dict[str, Any] = yaml.safe_load(result.stdout)["webhooks"][0]
    return hook


def _sent(hook: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (g, r)
        for rule in hook["rules"]
        if "CREATE" in rule["operations"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }


def _left_out(hook: dict[str, Any]) -> str:
    """The expression leaving housekeeping out ("" when there is none)."""
    found = [c["expression"] for c in hook.get("matchConditions", []) if c["name"].endswith("housekeeping")]
    return found[0] if found else ""


def _valid_rules(hook: dict[str, Any]) -> None:
    """As the API server validates rules: `*` admits no other resource without a subresource."""
    for rule in hook["rules"]:
        if "*" in rule["resources"]:
            assert all("/" in r for r in rule["resources"] if r != "*"), rule


# -- what a policy names is never left out ------------------------------------------------------


def _covered(hook: dict[str, Any], resource: str) -> bool:
    group, _, plural = resource.partition("/")
    return any(
        {group, "*"} & set(r["apiGroups"]) and {plural, "*"} & set(r["resources"]) for r in hook["rules"]
    )


@pytest.mark.parametrize(
    ("kinds", "resources", "named", "still_left_out"),
    [
        (
            '[{apiGroups: ["*"], kinds: [Node, Event, Lease]}]',
            None,
            ["/nodes", "/events", "events.k8s.io/events", "coordination.k8s.io/leases"],
            [],
        ),
        ("[{apiGroups: [], kinds: [Node]}]", None, ["/nodes"], []),
        (None, '["*/events"]', ["/events", "events.k8s.io/events"], []),
        (None, '["*", events]', ["/events", "events.k8s.io/events"], ["/nodes"]),
        (None, '["*", events.k8s.io/events]', ["/events", "events.k8s.io/events"], ["/nodes"]),
        (
            '[{apiGroups: [""], kinds: ["*"]}, {apiGroups: [""], kinds: [Event]}]',
            None,
            ["/events"],
            ["/nodes"],
        ),
        (
            '[{apiGroups: ["*"], kinds: [Lease]}]',
            '["*"]',
            ["coordination.k8s.io/leases"],
            ["/nodes", "/events"],
        ),
    ],
)
def test_housekeeping_a_policy_names_is_not_left_out(
    tmp_path: Path, kinds: str | None, resources: str | None, named: list[str], still_left_out: list[str]
) -> None:
    """Housekeeping is left out only where a `*` resource alone sends it: a kind a constraint or
    admission.resources names, in its group or in any, is judged (an Event in either group)."""
    args = ["--no-builtin", "--kubernetes-version", "1.30"]
    if kinds is not None:
        args += ["--gatekeeper", str(_library(tmp_path, kinds))]
    if resources is not None:
        args += ["-c", str(_file(tmp_path, f"admission:\n  resources: {resources}\n"))]
    hook = _hook(*args)
    _valid_rules(hook)
    expression = _left_out(hook)
    for resource in named:
        assert f"'{resource}'" not in expression, (resource, expression)
        assert _covered(hook, resource) or resource == "events.k8s.io/events"  # Equivalent: as /events
    for resource in still_left_out:
        assert f"'{resource}'" in expression, (resource, expression)


def test_a_wildcard_leaves_out_certificate_signing_requests_and_reviews(tmp_path: Path) -> None:
    """kubelets bootstrap and rotate their certificates through CSRs: under failurePolicy Fail an
    unanswering webhook would keep new nodes out."""
    config = _file(tmp_path, "admission:\n  resources: ['*']\n")
    expression = _left_out(_hook("-c", str(config), "--kubernetes-version", "1.30"))
    for resource in (
        *HOUSEKEEPING,
        "authentication.k8s.io/tokenreviews",
        "authorization.k8s.io/subjectaccessreviews",
    ):
        assert f"'{resource}'" in expression


# -- reviews are never sent --------------------------------------------------------------------


@pytest.mark.parametrize(
    "kinds",
    [
        "[{apiGroups: [authentication.k8s.io], kinds: [TokenReview]}]",
        '[{apiGroups: ["*"], kinds: [SubjectAccessReview]}]',
        '[{apiGroups: [authorization.k8s.io], kinds: ["*"]}]',
        '[{apiGroups: ["*"], kinds: [TokenRequest]}]',
    ],
)
def test_a_constraint_on_token_and_access_reviews_is_refused(tmp_path: Path, kinds: str) -> None:
    """Reviews are never sent (a TokenReview carries a bearer token): a constraint naming them
    would be silently unenforced at admission, so webhook-config refuses and says what to do."""
    result = _run(
        "--no-builtin", "--gatekeeper", str(_library(tmp_path, kinds)), "--kubernetes-version", "1.27"
    )
    assert result.exit_code == 3, result.stdout
    assert "would not be enforced at admission" in result.stderr
    assert "ValidatingAdmissionPolicy" in result.stderr and not result.stdout


def test_a_constraint_on_every_kind_sends_no_review(tmp_path: Path) -> None:
    hook = _hook(
        "--no-builtin", "--gatekeeper", str(_library(tmp_path, '[{apiGroups: ["*"], kinds: ["*"]}]')),
        "--kubernetes-version", "1.27",
    )  # fmt: skip
    sent = _sent(hook)
    assert ("*", "*") in sent
    assert not any(g in ("authentication.k8s.io", "authorization.k8s.io") for g, _ in sent)


def test_admission_resources_refuse_reviews(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as bad:
        load_config(_file(tmp_path, "admission:\n  resources: [authentication.k8s.io/tokenreviews]\n"))
    assert "never sent" in bad.value.diagnostics()


# -- node heartbeats ---------------------------------------------------------------------------


def test_node_heartbeats_are_left_out_where_leases_are_named(tmp_path: Path) -> None:
    library = str(_library(tmp_path, "[{apiGroups: [coordination.k8s.io], kinds: [Lease]}]"))
    new = _hook("--no-builtin", "--gatekeeper", library, "--kubernetes-version", "1.30")
    assert ("coordination.k8s.io", "leases") in _sent(new)
    heartbeats = [c["expression"] for c in new["matchConditions"] if "kube-node-lease" in c["expression"]]
    assert len(heartbeats) == 1 and "leases" in heartbeats[0]
    # Not the whole namespace where a condition can say Leases alone.
    assert "kube-node-lease" not in new["namespaceSelector"]["matchExpressions"][0]["values"]
    old = _hook("--no-builtin", "--gatekeeper", library, "--kubernetes-version", "1.27")
    assert "kube-node-lease" in old["namespaceSelector"]["matchExpressions"][0]["values"]
    plain = _hook(
        "--no-builtin", "--gatekeeper", str(_library(tmp_path, "[{apiGroups: [''], kinds: [Service]}]"))
    )
    assert not any("kube-node-lease" in c["expression"] for c in plain["matchConditions"])


# -- no plural is guessed ----------------------------------------------------------------------


def test_a_custom_kind_of_any_group_without_its_crd_is_refused(tmp_path: Path) -> None:
    library = str(_library(tmp_path, '[{apiGroups: ["*"], kinds: [Redis]}]'))
    refused = _run("--no-builtin", "--gatekeeper", library)
    assert refused.exit_code == 3 and refused.stdout == ""
    assert "Redis" in refused.stderr and "--crd" in refused.stderr and "Traceback" not in refused.stderr
    crd = tmp_path / "crd.yaml"
    crd.write_text(REDIS_CRD)
    sent = _sent(_hook("--no-builtin", "--gatekeeper", library, "--crd", str(crd)))
    assert sent == {("redis.redis.redis.opstreelabs.in", "redis")}
    everything = _file(tmp_path, "admission:\n  resources: ['*']\n")
    assert ("*", "*") in _sent(_hook("--no-builtin", "--gatekeeper", library, "-c", str(everything)))
    # A built-in kind's resource is known in every group that serves it.
    builtin = str(_library(tmp_path, '[{apiGroups: ["*"], kinds: [NetworkPolicy]}]'))
    assert _sent(_hook("--no-builtin", "--gatekeeper", builtin)) == {("*", "networkpolicies")}


# -- admission.resources that match nothing ----------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("service", "(write services)"),
        ("ingresses.networking.k8s.io", "networking.k8s.io/ingresses"),
        ("networking.k8s.io/ingress", "(write networking.k8s.io/ingresses)"),
        ("apps/services", "write services"),
        ("example.com", "example.com/* is every resource"),
        ("deployments.apps", "apps/deployments"),
        ("apps/deploymnts", "deployments"),
        ("*/ingress", "*/ingresses"),
        ("example.com/wid.gets", "no dot"),
        ("core/services", "write services (without a group)"),
    ],
)
def test_admission_resources_that_match_nothing_are_refused_with_what_was_meant(
    tmp_path: Path, entry: str, says: str
) -> None:
    with pytest.raises(ConfigError) as bad:
        load_config(_file(tmp_path, f"admission:\n  resources:\n    - {entry!r}\n"))
    text = bad.value.diagnostics()
    assert f"{tmp_path / 'trustgate.yaml'}:5" in text and "admission.resources[0]" in text and says in text


@pytest.mark.parametrize(
    "entry",
    ["services", "networking.k8s.io/ingresses", "gateway.networking.k8s.io/httproutes", "*/redis", "apps/*"],
)
def test_admission_resources_of_real_resources_are_taken(tmp_path: Path, entry: str) -> None:
    config = load_config(_file(tmp_path, f"admission:\n  resources: [{entry!r}]\n"))
    group, _, resource = entry.rpartition("/")
    assert config.admission.resources == ((group, resource),)


# -- image rules judge Flux OCIRepositories -------------------------------------------------


def test_image_rules_send_flux_oci_repositories(tmp_path: Path) -> None:
    oci = ("source.toolkit.fluxcd.io", "ocirepositories")
    images = _file(tmp_path, "manifests:\n  policies: []\nimages:\n  unmatched: deny\n")
    assert oci in _sent(_hook("-c", str(images)))
    assert oci not in _sent(_hook())  # the bundled policies judge workloads only


# -- what the refusal says, and which version ---------------------------------------------------


def test_the_refusal_for_rego_given_by_flag_says_where_to_set_the_resources(tmp_path: Path) -> None:
    rego = tmp_path / "svc.rego"
    rego.write_text(DENY_LOAD_BALANCERS)
    for args in (["-p", str(rego)], ["--no-builtin", "-p", str(rego)]):
        result = _run(*args)
        assert result.exit_code == 3 and "Traceback" not in result.stderr
        text = " ".join(result.stderr.split())
        assert "<embedded default>" not in text and "bundled workloads only" not in text
        assert "admission.resources" in text and "-c to both" in text and str(rego) in text


def test_the_configurations_kubernetes_version_is_the_default(tmp_path: Path) -> None:
    config = _file(tmp_path, "kubernetes:\n  version: '1.27'\nadmission:\n  resources: ['*']\n")
    old = _hook("-c", str(config))
    assert "matchConditions" not in old
    assert "kube-node-lease" in old["namespaceSelector"]["matchExpressions"][0]["values"]
    assert "matchConditions" in _hook("-c", str(config), "--kubernetes-version", "1.30")  # the flag wins
