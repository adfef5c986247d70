"""`trustgate check --gatekeeper` after the second review of the Gatekeeper support: Configs of other
namespaces, the ValidatingAdmissionPolicy Gatekeeper generates, manifests that name no namespace,
v0 rule names, schema references, `every` queries, name-only volumes and a Config under review."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.gatekeeper import ALWAYS_DENY_TEMPLATE as DENY_TEMPLATE
from support.gatekeeper import SCHEMA_BODY
from support.serving import serving

from trustgate.cli.main import main

Write = Callable[[str, str], Path]

DENY_CONSTRAINT = """\
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sAlwaysDeny
metadata: {name: c}
spec:
  match:
    kinds: [{apiGroups: ["", "rbac.authorization.k8s.io"], kinds: [Pod, ClusterRole]}]
"""
CEL_TEMPLATE = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8sceldeny}
spec:
  crd: {spec: {names: {kind: K8sCelDeny}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      code:
        - engine: K8sNativeValidation
          source:
            validations: [{expression: "false", message: "denied by CEL"}]
"""
VAP_CONSTRAINT = """\
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sCelDeny
metadata: {name: c}
spec:
  enforcementAction: scoped
  scopedEnforcementActions:
    - action: deny
      enforcementPoints: [{name: vap.k8s.io}]
  match:
    kinds: [{apiGroups: [""], kinds: [Pod]}]
"""


def config(namespace: str, excluded: str = '["prod"]', processes: str = '["*"]') -> str:
    return (
        "apiVersion: config.gatekeeper.sh/v1alpha1\nkind: Config\n"
        f"metadata: {{name: config, namespace: {namespace}}}\n"
        f"spec:\n  match:\n    - excludedNamespaces: {excluded}\n      processes: {processes}\n"
    )


def pod(namespace: str | None = "prod", name: str = "p") -> str:
    meta = f"{{name: {name}, namespace: {namespace}}}" if namespace else f"{{name: {name}}}"
    return f"apiVersion: v1\nkind: Pod\nmetadata: {meta}\nspec:\n  containers: [{{name: c, image: nginx}}]\n"


CLUSTER_ROLE = (
    "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: cr}\nrules: []\n"
)


def gatekeeper(write: Write, files: dict[str, str]) -> Path:
    for name, text in files.items():
        write(f"gk/{name}", text)
    return write("gk/.keep", "").parent


def check(write: Write, gk: Path | str, *manifests: str, extra: tuple[str, ...] = ()) -> Any:
    paths = [str(write(f"m/{i}.yaml", text)) for i, text in enumerate(manifests)]
    return CliRunner().invoke(
        main,
        ["check", *paths, "--no-schemas", "--no-cache", "--format", "json", "--gatekeeper", str(gk), *extra],
        catch_exceptions=False,
    )


def rules(result: Any) -> list[list[tuple[str, str]]]:
    report = json.loads(result.stdout)
    return [[(f["rule"], f["severity"]) for f in r["findings"]] for r in report["results"]]


def no_builtin(write: Write, gk: Path | str, *manifests: str) -> Any:
    return check(write, gk, *manifests, extra=("--no-builtin",))


# -- F1 ---------------------------------------------------------------------------------


def test_a_config_in_another_namespace_excludes_nothing(write: Write) -> None:
    gk = gatekeeper(
        write,
        {"t.yaml": DENY_TEMPLATE, "c.yaml": DENY_CONSTRAINT, "config.yaml": config("attacker-ns")},
    )
    result = no_builtin(write, gk, pod("prod"))
    assert result.exit_code == 1
    assert rules(result) == [[("K8sAlwaysDeny/c", "error")]]
    notes = json.loads(result.stdout)["notes"]
    assert any("attacker-ns/config" in n and "is ignored" in n for n in notes)


def test_a_later_config_elsewhere_does_not_replace_gatekeepers(write: Write) -> None:
    gk = gatekeeper(
        write,
        {
            "t.yaml": DENY_TEMPLATE,
            "c.yaml": DENY_CONSTRAINT,
            "a-config.yaml": config("gatekeeper-system", '["kube-system"]'),
            "z-team-config.yaml": config("team-a"),
        },
    )
    result = no_builtin(write, gk, pod("prod"), pod("kube-system", "k"))
    assert result.exit_code == 1
    assert rules(result) == [[("K8sAlwaysDeny/c", "error")], [("gatekeeper/config-excluded", "info")]]


def test_two_gatekeeper_configs_are_exit_3(write: Write) -> None:
    gk = gatekeeper(
        write,
        {
            "t.yaml": DENY_TEMPLATE,
            "c.yaml": DENY_CONSTRAINT,
            "a-config.yaml": config("gatekeeper-system", '["kube-system"]'),
            "b-config.yaml": config("gatekeeper-system"),
        },
    )
    result = no_builtin(write, gk, pod("prod"))
    assert result.exit_code == 3
    assert "gatekeeper-system/config is given twice" in result.stderr and "b-config.yaml:1" in result.stderr


# -- F2 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("processes", ['["webhook"]', '["*"]'])
def test_webhook_exclusions_do_not_reach_the_generated_vap(write: Write, processes: str) -> None:
    gk = gatekeeper(
        write,
        {
            "t.yaml": CEL_TEMPLATE,
            "c.yaml": VAP_CONSTRAINT,
            "config.yaml": config("gatekeeper-system", processes=processes),
        },
    )
    result = no_builtin(write, gk, pod("prod"))
    assert result.exit_code == 1
    assert rules(result) == [[("K8sCelDeny/c", "error"), ("gatekeeper/config-excluded", "info")]]
    finding = json.loads(result.stdout)["results"][0]["findings"][0]
    assert "vap.k8s.io" in finding["message"]


# -- F3 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("excluded", ['[""]', '["*"]'])
def test_a_manifest_without_a_namespace_is_never_excluded_by_namespace(write: Write, excluded: str) -> None:
    gk = gatekeeper(
        write,
        {
            "t.yaml": DENY_TEMPLATE,
            "c.yaml": DENY_CONSTRAINT,
            "config.yaml": config("gatekeeper-system", excluded),
        },
    )
    result = no_builtin(write, gk, pod(None), CLUSTER_ROLE)
    assert result.exit_code == 1
    # The Pod lands in some namespace (judged); the ClusterRole is in none, which Gatekeeper excludes.
    assert rules(result) == [[("K8sAlwaysDeny/c", "error")], [("gatekeeper/config-excluded", "info")]]


def test_a_config_whose_spec_is_not_a_mapping_is_exit_3(write: Write) -> None:
    bad = "apiVersion: config.gatekeeper.sh/v1alpha1\nkind: Config\n"
    bad += "metadata: {name: config, namespace: gatekeeper-system}\nspec: []\n"
    gk = gatekeeper(write, {"t.yaml": DENY_TEMPLATE, "c.yaml": DENY_CONSTRAINT, "config.yaml": bad})
    result = no_builtin(write, gk, pod("prod"))
    assert result.exit_code == 3
    assert "config.yaml:1" in result.stderr and "spec must be a mapping" in result.stderr


# -- F4 and F6 ----------------------------------------------------------------------------

REGO_TEMPLATE = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {{name: k8sv0}}
spec:
  crd: {{spec: {{names: {{kind: K8sV0}}}}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
{rego}
"""
V0_CONSTRAINT = (
    "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sV0\nmetadata: {name: c}\n"
    'spec: {match: {kinds: [{apiGroups: [""], kinds: [Pod]}]}}\n'
)


def rego_template(rego: str) -> str:
    return REGO_TEMPLATE.format(rego="\n".join(f"        {line}" for line in rego.splitlines()))


def test_a_rule_named_if_is_exit_3_naming_its_line(write: Write) -> None:
    rego = (
        'package k8sv0\nexempt(c) {\n  c.name == "a"\n}\nif(c) {\n  c.x\n} {\n  c.name == "b"\n}\n'
        'violation[{"msg": c.name}] { c := input.review.object.spec.containers[_]; not exempt(c) }'
    )
    gk = gatekeeper(write, {"t.yaml": rego_template(rego), "c.yaml": V0_CONSTRAINT})
    result = no_builtin(write, gk, pod("prod"))
    assert result.exit_code == 3
    assert "t.yaml:13" in result.stderr and "starts with `if`" in result.stderr


def test_a_paren_line_inside_every_is_evaluated(write: Write) -> None:
    rego = (
        "package k8sv0\nimport future.keywords.every\nimport future.keywords.in\n"
        'violation[{"msg": "all named and short"}] {\n  cs := input.review.object.spec.containers\n'
        "  every c in cs {\n    c.name\n    (count(c.name) + 1) < 3\n  }\n}"
    )
    gk = gatekeeper(write, {"t.yaml": rego_template(rego), "c.yaml": V0_CONSTRAINT})
    result = no_builtin(write, gk, pod("prod"))
    assert result.exit_code == 1, result.stderr
    assert rules(result) == [[("K8sV0/c", "error")]]


# -- F5 ---------------------------------------------------------------------------------


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    with serving(SCHEMA_BODY) as served:
        yield served


@pytest.mark.parametrize("ref", ["{url}/x.json", "#/definitions/x"])
def test_a_schema_reference_is_exit_3_and_never_fetched(
    write: Write, http_server: tuple[str, list[str]], ref: str
) -> None:
    url, asked = http_server
    template = DENY_TEMPLATE.replace(
        "  crd: {spec: {names: {kind: K8sAlwaysDeny}}}\n",
        "  crd:\n    spec:\n      names: {kind: K8sAlwaysDeny}\n      validation:\n"
        f'        openAPIV3Schema: {{properties: {{a: {{$ref: "{ref.format(url=url)}"}}}}}}\n',
    )
    constraint = DENY_CONSTRAINT + "  parameters: {a: zzz}\n"
    gk = gatekeeper(write, {"t.yaml": template, "c.yaml": constraint})
    result = no_builtin(write, gk, pod("prod"))
    assert result.exit_code == 3
    assert "t.yaml:1" in result.stderr and "properties.a.$ref: $ref is not supported" in result.stderr
    assert "Traceback" not in result.stderr
    assert asked == []


# -- F7 ---------------------------------------------------------------------------------

NAME_ONLY_VOLUME = """\
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: prod}
spec:
  securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: c
      image: nginx@sha256:0000000000000000000000000000000000000000000000000000000000000000
      securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
      volumeMounts: [{name: scratch, mountPath: /tmp}]
  volumes:
    - name: scratch
"""


def test_a_volume_with_only_a_name_is_an_empty_dir_for_both_pss_sets(write: Write) -> None:
    result = check(write, "builtin:pss-restricted", NAME_ONLY_VOLUME)
    found = {rule for rule, _ in rules(result)[0]}
    assert "K8sPSSVolumeTypes/pss-volume-types" not in found
    assert "pss-restricted-volume-types" not in found


# -- F8 ---------------------------------------------------------------------------------


def test_a_gatekeeper_config_among_the_manifests_is_a_warning(write: Write) -> None:
    gk = gatekeeper(write, {"t.yaml": DENY_TEMPLATE, "c.yaml": DENY_CONSTRAINT.replace("Pod, ", "")})
    result = no_builtin(write, gk, config("gatekeeper-system"), pod("prod"))
    assert result.exit_code == 0  # a warning, never a deny
    assert rules(result) == [[("gatekeeper/config-in-manifests", "warning")], []]
    finding = json.loads(result.stdout)["results"][0]["findings"][0]
    assert "gatekeeper-system/config" in finding["message"] and finding["path"] == "spec.match"
