"""ExpansionTemplates: reading them and the resultants they make, as Gatekeeper's expansion system does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from trustgate.config import Config, GatekeeperSettings, KubernetesSettings
from trustgate.errors import PolicyError
from trustgate.gate import Gate
from trustgate.model import Document, Source
from trustgate.policy import gatekeeper as gk


def expansion(name: str = "expand-deployments", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "expansion.gatekeeper.sh/v1beta1",
        "kind": "ExpansionTemplate",
        "metadata": {"name": name},
        "spec": {
            "applyTo": [{"groups": ["apps"], "kinds": ["Deployment"], "versions": ["v1"]}],
            "templateSource": "spec.template",
            "generatedGVK": {"group": "", "version": "v1", "kind": "Pod"},
        }
        | spec,
    }


DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "nginx-deployment", "namespace": "shop"},
    "spec": {
        "template": {
            "metadata": {"labels": {"app": "nginx"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2"}]},
        }
    },
}


def test_resultant_is_gatekeepers_mock_resource() -> None:
    template = gk.parse_expansion(expansion(), file="e.yaml")
    [resultant] = gk.expand(DEPLOYMENT, [template])
    assert resultant.obj == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "labels": {"app": "nginx"},
            "name": "nginx-deployment-pod",
            "namespace": "shop",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx-deployment"}],
        },
        "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2"}]},
    }
    assert resultant.path == ("spec", "template")
    assert DEPLOYMENT["spec"]["template"]["metadata"] == {
        "labels": {"app": "nginx"}
    }  # the parent is untouched
    review = gk.resultant_review(resultant, gk.review_of(DEPLOYMENT))
    assert review["kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert (review["name"], review["namespace"], review["operation"]) == (
        "nginx-deployment-pod",
        "shop",
        "CREATE",
    )


def test_apply_to_compares_group_version_kind_exactly_and_expands_creates_and_updates() -> None:
    other_version = gk.parse_expansion(
        expansion(applyTo=[{"groups": ["apps"], "kinds": ["Deployment"], "versions": ["v1beta1"]}]), file="e"
    )
    assert gk.expand(DEPLOYMENT, [other_version]) == []
    template = gk.parse_expansion(expansion(), file="e")
    assert [len(gk.expand(DEPLOYMENT, [template], operation=op)) for op in ("CREATE", "UPDATE")] == [1, 1]
    assert gk.expand(DEPLOYMENT, [template], operation="DELETE") == []


@pytest.mark.parametrize("field", ["operations", "kind", "version"])
def test_an_apply_to_field_gatekeeper_does_not_have_is_refused_naming_it(field: str) -> None:
    # The API server prunes it (match.ApplyTo has groups, versions and kinds): honouring
    # `operations` skipped expansion the cluster does, and a misspelt `kind` matched nothing.
    entry = {"groups": ["apps"], "kinds": ["Deployment"], "versions": ["v1"], field: ["UPDATE"]}
    with pytest.raises(
        PolicyError, match=rf"spec\.applyTo\[0\]: {field} is not a field of applyTo"
    ) as raised:
        gk.parse_expansion(expansion(applyTo=[entry]), file="exp.yaml", line=4)
    assert raised.value.where == "exp.yaml:4"


def test_nested_expansion_comes_deepest_first_with_its_path_in_the_parent() -> None:
    cronjobs = gk.parse_expansion(
        expansion(
            "expand-cronjobs",
            applyTo=[{"groups": ["batch"], "kinds": ["CronJob"], "versions": ["v1"]}],
            templateSource="spec.jobTemplate",
            generatedGVK={"group": "batch", "version": "v1", "kind": "Job"},
        ),
        file="e",
    )
    jobs = gk.parse_expansion(
        expansion("expand-jobs", applyTo=[{"groups": ["batch"], "kinds": ["Job"], "versions": ["v1"]}]),
        file="e",
    )
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}},
    }
    pod, job = gk.expand(cronjob, [cronjobs, jobs])
    assert (job.template.name, job.obj["kind"], job.obj["metadata"]["name"]) == (
        "expand-cronjobs",
        "Job",
        "nightly-job",
    )
    assert (pod.template.name, pod.obj["metadata"]["name"]) == ("expand-jobs", "nightly-job-pod")
    assert pod.path == ("spec", "jobTemplate", "spec", "template")
    assert "namespace" not in pod.obj["metadata"]


def test_missing_source_field_cannot_be_expanded() -> None:
    template = gk.parse_expansion(expansion(), file="e")
    with pytest.raises(gk.ExpansionError, match=r"could not find source field 'spec\.template'"):
        gk.expand({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}, [template])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"templateSource": ""}, "has empty source field"),
        ({"generatedGVK": {}}, "has empty generatedGVK field"),
        ({"applyTo": []}, "must specify ApplyTo"),
        ({"enforcementAction": "block"}, "is not deny, warn or dryrun"),
        (  # a string would match nothing and expand nothing: refused, as the API server would
            {"applyTo": [{"groups": "apps", "kinds": ["Deployment"], "versions": ["v1"]}]},
            r"spec.applyTo\[0\].groups must be a list of strings",
        ),
        (
            {"applyTo": [{"groups": ["apps"], "kinds": "Deployment", "versions": ["v1"]}]},
            r"spec.applyTo\[0\].kinds must be a list of strings",
        ),
        ({"applyTo": {"groups": ["apps"]}}, "spec.applyTo must be a list"),
        (
            {"applyTo": [{"groups": [""], "kinds": ["Pod"], "versions": ["v1"]}]},
            "but also applies to that same kind",
        ),
    ],
)
def test_invalid_expansion_templates_are_rejected_as_gatekeeper_does(
    spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(PolicyError, match=message):
        gk.parse_expansion(expansion(**spec), file="e")


CONSTRAINT_TEMPLATE: dict[str, Any] = {
    "apiVersion": "templates.gatekeeper.sh/v1",
    "kind": "ConstraintTemplate",
    "metadata": {"name": "k8snolatest"},
    "spec": {
        "crd": {"spec": {"names": {"kind": "K8sNoLatest"}}},
        "targets": [
            {
                "target": "admission.k8s.gatekeeper.sh",
                "rego": "package k8snolatest\n\n"
                'violation[{"msg": "no"}] {\n  input.review.object.spec.containers\n}\n',
            }
        ],
    },
}


@pytest.mark.parametrize(("source", "expected"), [("All", 2), ("Original", 1), ("Generated", 1)])
def test_match_source_chooses_original_or_generated_objects(
    tmp_path: Path, source: str, expected: int
) -> None:
    constraint = {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": "K8sNoLatest",
        "metadata": {"name": "c"},
        "spec": {"match": {"source": source}},
    }
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}
    path = tmp_path / "gk.yaml"
    path.write_text(yaml.safe_dump_all([CONSTRAINT_TEMPLATE, constraint, expansion()]))
    config = Config(
        policies=(),
        kubernetes=KubernetesSettings(schemas=False),
        gatekeeper=GatekeeperSettings(paths=(path,)),
    )
    docs = [Document(source=Source("d.yaml"), obj=o) for o in (DEPLOYMENT, pod)]
    decision = Gate(config=config).evaluate(docs)
    # The Deployment itself has no spec.containers; its Pod and the Pod do.
    messages = [f.message for r in decision.results for f in r.findings]
    assert len(messages) == expected
    if source != "All":
        assert messages == ["[Implied by expand-deployments] no" if source == "Generated" else "no"]
