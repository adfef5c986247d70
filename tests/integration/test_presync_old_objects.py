"""`trustgate presync` judges a change to an object of the gated tree as the API server judges the UPDATE
it becomes: ValidatingAdmissionPolicies see it as `oldObject`, CRD transition rules as `oldSelf`.

`trustgate check` has no old tree: the same files are judged as CREATEs.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from click.testing import CliRunner
from support.crds import IMMUTABLE_SIZE, vap_binding, widget_crd
from support.gitrepo import Repo

from trustgate.cli.main import main

GATED = "refs/heads/trustgate/verified"

# An immutable field, as the Kubernetes documentation's ValidatingAdmissionPolicy examples compare
# `object` with `oldObject` on UPDATE.
POLICY = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: tier-is-immutable}
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: [v1]
      operations: [UPDATE]
      resources: [configmaps]
  validations:
  - expression: "object.data.tier == oldObject.data.tier"
    messageExpression: "'tier cannot change from ' + oldObject.data.tier"
---
""" + vap_binding("tier-is-immutable")

# The CRD documentation's transition rule: `self == oldSelf` makes a field immutable.
CRD = widget_crd(IMMUTABLE_SIZE)

CONFIGMAP = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: app, namespace: shop}}\ndata: {{tier: {tier}}}\n"
)
WIDGET = (
    "apiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: w, namespace: shop}}\n"
    "spec: {{size: {size}}}\n"
)


def _setup(tmp_path: Path) -> tuple[Repo, Path]:
    (tmp_path / "vap.yaml").write_text(POLICY)
    (tmp_path / "crd.yaml").write_text(CRD)
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        textwrap.dedent(
            """\
            apiVersion: trustgate.dev/v1alpha1
            kind: Config
            kubernetes:
              crds: [crd.yaml]
            manifests:
              admissionPolicies: [vap.yaml]
            presync:
              paths: [deploy]
            """
        )
    )
    repo = Repo.create(tmp_path / "fleet")
    repo.write("deploy/app.yaml", CONFIGMAP.format(tier="gold"))
    repo.write("deploy/widget.yaml", WIDGET.format(size="small"))
    repo.commit("initial")
    return repo, config


def _presync(repo: Repo, config: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        ["presync", "--repo", str(repo.path), "--ref", "main", "--gated-ref", "trustgate/verified",
         "-c", str(config), "--no-color"],
        catch_exceptions=False,
    )  # fmt: skip
    return result.exit_code, result.output


def _check(repo: Repo, config: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["check", "-c", str(config), "--no-builtin", "--no-color", str(repo.path / "deploy")],
        catch_exceptions=False,
    )  # fmt: skip
    return result.exit_code, result.output


def test_a_change_to_an_object_of_the_gated_tree_is_judged_as_an_update(tmp_path: Path) -> None:
    repo, config = _setup(tmp_path)
    code, output = _presync(repo, config)
    assert code == 0, output  # the first tip: every object is new (a CREATE)
    gated = repo.ref(GATED)

    repo.write("deploy/app.yaml", CONFIGMAP.format(tier="silver"))
    repo.write("deploy/widget.yaml", WIDGET.format(size="large"))
    repo.commit("change the tier and the size")
    code, output = _presync(repo, config)
    assert code == 1, output
    assert "tier cannot change from gold" in output
    assert "size is immutable" in output
    assert repo.ref(GATED) == gated  # refused: the gated ref stays

    # `check` has no gated tree: the same files are CREATEs, which neither rule judges.
    code, output = _check(repo, config)
    assert code == 0, output


def test_an_unchanged_object_and_a_new_one_pass(tmp_path: Path) -> None:
    repo, config = _setup(tmp_path)
    assert _presync(repo, config)[0] == 0
    repo.write("deploy/other.yaml", CONFIGMAP.format(tier="bronze").replace("name: app", "name: other"))
    repo.commit("a new config map")
    code, output = _presync(repo, config)
    assert code == 0, output
