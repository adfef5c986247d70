"""Records built from decisions: redaction, images, exceptions, verdicts, index terms, actors."""

from __future__ import annotations

import json
import subprocess
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest

from trustgate.decisions.actor import ci_context, ci_environment, git_commit, strip_credentials
from trustgate.decisions.canonical import content_hash
from trustgate.decisions.record import (
    REDACTED,
    DecisionContext,
    ImageEvidence,
    RecordOptions,
    RedactionRule,
    build_record,
    index_terms,
    needs_redaction,
    redact,
)
from trustgate.errors import ConfigError
from trustgate.model import AppliedException, Decision, DocumentResult, Finding, Mode, Severity, Source

SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {
        "name": "db",
        "namespace": "shop",
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": '{"data":{"password":"aHVudGVyMg=="}}'
        },
    },
    "data": {"password": "aHVudGVyMg=="},
    "stringData": {"token": "s3cr3t"},
}
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
PINNED = "registry.example.com/shop/web:1.4@sha256:" + "0" * 64
DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "template": {
            "spec": {
                "initContainers": [{"name": "init", "image": "busybox:1.36"}],
                "containers": [
                    {
                        "name": "web",
                        "image": PINNED,
                        "env": [{"name": "A", "value": "x"}, {"name": "B", "value": "y"}],
                    }
                ],
            }
        }
    },
}


def _result(obj: dict[str, object], findings: list[Finding]) -> DocumentResult:
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    return DocumentResult(
        Source("deploy.yaml", 3),
        str(obj["apiVersion"]),
        str(obj["kind"]),
        meta["namespace"],
        meta["name"],
        findings,
        obj,
    )


def test_secret_values_are_never_stored_nor_hashed_in_the_clear() -> None:
    decision = Decision("ci", Mode.ENFORCE, [_result(SECRET, [])])
    record = build_record(decision)
    text = str(record)
    assert "aHVudGVyMg" not in text and "s3cr3t" not in text
    stored = record["subject"]["objects"][0]
    assert stored["object"]["data"] == {"password": REDACTED}
    assert stored["object"]["stringData"] == {"token": REDACTED}
    assert "data" in stored["redacted"] and "stringData" in stored["redacted"]
    assert (
        stored["object"]["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        == REDACTED
    )


def test_configured_paths_are_redacted_for_their_kinds_only() -> None:
    rules = (RedactionRule.parse("spec.template.spec.containers[*].env[*].value", ["Deployment"]),)
    redacted, paths = redact(DEPLOYMENT, rules)
    env = redacted["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["value"] for e in env] == [REDACTED, REDACTED]
    assert paths == ["spec.template.spec.containers[*].env[*].value"]
    assert DEPLOYMENT["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] == "x"  # type: ignore[index]
    other = (RedactionRule.parse("spec.template.spec.containers[*].env[*].value", ["StatefulSet"]),)
    assert redact(DEPLOYMENT, other)[1] == []


def test_redaction_paths_with_quoted_keys_and_indexes() -> None:
    obj = {
        "kind": "ConfigMap",
        "metadata": {"annotations": {"example.com/token": "t", "keep": "k"}},
        "x": [1, 2],
    }
    rules = (RedactionRule.parse('metadata.annotations["example.com/token"]'), RedactionRule.parse("x[1]"))
    redacted, _ = redact(obj, rules)
    assert redacted["metadata"]["annotations"] == {"example.com/token": REDACTED, "keep": "k"}
    assert redacted["x"] == [1, REDACTED]


def _stored(decision: Decision, rules: tuple[RedactionRule, ...] = ()) -> dict[str, Any]:
    record = build_record(decision, options=RecordOptions(redact=rules))
    entry = record["subject"]["objects"][0]
    assert isinstance(entry, dict)
    return entry


@pytest.mark.parametrize(
    "rules",
    [
        (),
        (RedactionRule.parse("spec.template.spec.containers[*].env[*].value", ["StatefulSet"]),),
        (RedactionRule.parse("spec.template.spec.containers[*].secret"),),  # finds nothing
        (RedactionRule.parse("spec.template.spec.containers[5].env"),),
        (RedactionRule.parse("metadata.annotations[*]"),),
    ],
)
def test_an_object_nothing_is_redacted_in_is_stored_as_it_is_hashed_as_its_copy_would_be(
    rules: tuple[RedactionRule, ...],
) -> None:
    """Not copied (12 us a bench object): the object holds JSON's own types, so a copy equals it."""
    obj = json.loads(json.dumps(DEPLOYMENT))
    entry = _stored(Decision("ci", Mode.ENFORCE, [_result(obj, [])]), rules)
    assert entry["object"] is obj and "redacted" not in entry
    assert entry["inputHash"] == content_hash(redact(obj, rules)[0])
    assert obj == DEPLOYMENT  # and left as it was


@pytest.mark.parametrize(
    ("obj", "rules"),
    [
        (SECRET, ()),
        (DEPLOYMENT, (RedactionRule.parse("spec.template.spec.containers[*].env[*].value"),)),
        (DEPLOYMENT, (RedactionRule.parse("spec.template.spec.containers[0].env[1]", ["Deployment"]),)),
        (DEPLOYMENT, (RedactionRule.parse("metadata.*"),)),
    ],
)
def test_an_object_something_is_redacted_in_is_a_redacted_copy(
    obj: dict[str, Any], rules: tuple[RedactionRule, ...]
) -> None:
    before = json.dumps(obj)
    entry = _stored(Decision("ci", Mode.ENFORCE, [_result(obj, [])]), rules)
    expected, paths = redact(obj, rules)
    assert entry["object"] is not obj and entry["object"] == expected and entry["redacted"] == paths
    assert REDACTED in json.dumps(entry["object"])
    assert entry["inputHash"] == content_hash(expected)
    assert json.dumps(obj) == before


@pytest.mark.parametrize(
    "value",
    [2**60, 2.0, 1e-7, OrderedDict(a=1)],
    ids=["big int", "whole float", "tiny float", "a Mapping"],
)
def test_an_object_off_the_fast_path_is_stored_as_a_json_copy_as_before(value: object) -> None:
    obj = json.loads(json.dumps(DEPLOYMENT)) | {"extra": value}
    entry = _stored(Decision("ci", Mode.ENFORCE, [_result(obj, [])]))
    copied, _ = redact(obj, ())
    assert entry["object"] == copied and entry["inputHash"] == content_hash(copied)
    assert entry["object"] is not obj


@pytest.mark.parametrize("bad", ["", "a..b", "a[x]", 'a["unterminated]'])
def test_unparseable_redaction_paths_are_config_errors(bad: str) -> None:
    with pytest.raises(ConfigError):
        RedactionRule.parse(bad)


def test_images_come_from_pod_specs_findings_and_explicit_evidence() -> None:
    finding = Finding(
        "supply-chain-latest-tag", Severity.ERROR, "latest", "rego", metadata={"image": "nginx:latest"}
    )
    decision = Decision("ci", Mode.ENFORCE, [_result(DEPLOYMENT, [finding])])
    verified = ImageEvidence("busybox:1.36", "sha256:" + "b" * 64, "verified", {"signer": "ci@example.com"})
    record = build_record(decision, DecisionContext(commit="ABC123", images=[verified]))
    images = {i["reference"]: i for i in record["subject"]["images"]}
    assert images[PINNED]["digest"] == "sha256:" + "0" * 64 and images[PINNED]["source"] == "manifest"
    assert images["nginx:latest"] == {"reference": "nginx:latest", "digest": None, "source": "finding"}
    assert images["busybox:1.36"]["source"] == "verified" and images["busybox:1.36"]["details"]["signer"]
    terms = index_terms(record)
    assert ("digest", "sha256:" + "b" * 64) in terms and ("digest", "sha256:" + "0" * 64) in terms
    assert ("image", PINNED) in terms and ("image", "registry.example.com/shop/web:1.4") in terms
    assert ("commit", "abc123") in terms and ("namespace", "shop") in terms
    assert ("rule", "supply-chain-latest-tag") in terms
    assert record["verdict"] == "deny" and record["exitCode"] == 1


def test_exceptions_applied_are_listed_with_their_findings() -> None:
    waived = Finding(
        "pss-restricted-run-as-non-root",
        Severity.INFO,
        "runs as root",
        "rego",
        exception=AppliedException("legacy", "dba@example.com", "vendor image", "2030-01-01"),
    )
    decision = Decision("ci", Mode.ENFORCE, [_result(DEPLOYMENT, [waived])])
    record = build_record(decision)
    assert record["verdict"] == "allow"
    assert record["exceptions"] == [
        {
            "name": "legacy",
            "owner": "dba@example.com",
            "reason": "vendor image",
            "expires": "2030-01-01",
            "expired": False,
            "findings": 1,
        }
    ]
    assert ("rule", "pss-restricted-run-as-non-root") in index_terms(record)  # waived findings stay findable


def test_inputs_beyond_the_limit_are_kept_as_hashes_only() -> None:
    decision = Decision("ci", Mode.ENFORCE, [_result(DEPLOYMENT, []), _result(SECRET, [])])
    record = build_record(decision, options=RecordOptions(max_input_bytes=400))
    objects = record["subject"]["objects"]
    assert all(o["inputHash"].startswith("sha256:") for o in objects)
    assert sum("object" in o for o in objects) < 2
    assert any("hash only" in n for n in record["notes"])


def test_ci_environment_of_github_and_gitlab() -> None:
    github = ci_environment(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": "acme/shop",
            "GITHUB_RUN_ID": "42",
            "GITHUB_SHA": "abc",
        }
    )
    assert github == {
        "provider": "github",
        "repository": "acme/shop",
        "runId": "42",
        "sha": "abc",
        "runUrl": "https://github.com/acme/shop/actions/runs/42",
    }
    gitlab = ci_environment({"GITLAB_CI": "true", "CI_PROJECT_PATH": "acme/shop", "GITLAB_USER_LOGIN": "ann"})
    assert gitlab == {"provider": "gitlab", "repository": "acme/shop", "actor": "ann"}
    assert ci_environment({}) is None


def test_credentials_are_stripped_from_urls() -> None:
    assert (
        strip_credentials("https://x-token:ghp_abc@github.com/acme/shop.git")
        == "https://github.com/acme/shop.git"
    )


def test_git_commit_names_author_committer_branch_and_remote(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "ann@example.com")
    git("config", "user.name", "Ann")
    git("remote", "add", "origin", "https://bot:secret@git.example.com/acme/shop.git")
    (tmp_path / "a.yaml").write_text("a: 1\n")
    git("add", "a.yaml")
    git("commit", "-q", "-m", "first")
    info = git_commit(tmp_path)
    assert info is not None and len(info.commit) == 40
    assert info.author.email == "ann@example.com" and info.ref == "refs/heads/main"
    assert info.remote == "https://git.example.com/acme/shop.git" and info.signer is None
    context = ci_context({"GITHUB_ACTIONS": "true", "GITHUB_SHA": "f" * 40}, tmp_path)
    assert context.commit == "f" * 40  # the CI system's commit wins
    assert git_commit(tmp_path.parent / "definitely-missing") is None


def test_records_match_the_published_json_schema() -> None:
    import json
    from importlib import resources

    import jsonschema

    schema = json.loads((resources.files("trustgate") / "schemas" / "decision-v1.json").read_text("utf-8"))
    finding = Finding(
        "no-priv", Severity.ERROR, "privileged", "rego", path=("spec",), metadata={"image": "x:1"}
    )
    decision = Decision(
        "ci", Mode.ENFORCE, [_result(DEPLOYMENT, [finding]), _result(SECRET, [])], "sha256:ab"
    )
    context = ci_context(
        {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "a/b", "GITHUB_RUN_ID": "1"}, Path("/")
    )
    record = build_record(decision, context)
    jsonschema.Draft202012Validator(schema).validate(record)
    broken = dict(record, verdict="maybe")
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(broken))


def test_presync_records_are_indexed_by_scope_and_older_ones_are_not() -> None:
    import json
    from importlib import resources

    import jsonschema

    presync = {
        "gatedRef": "refs/heads/trustgate/verified",
        "paths": ["clusters/prod"],
        "protectedKinds": ["Namespace"],
        "scope": "sha256:" + "c" * 64,
        "pathsTree": "sha256:" + "D" * 64,
        "gatedBefore": "E" * 40,
        "fastForward": True,
    }
    decision = Decision("presync", Mode.ENFORCE, [])
    record = build_record(decision, DecisionContext(commit="f" * 40, tree="a" * 40, presync=presync))
    assert record["subject"]["presync"] == presync
    terms = index_terms(record)
    scope = "sha256:" + "c" * 64
    assert ("presync-to", f"{scope}:sha256:{'d' * 64}") in terms
    assert ("presync-from", f"{scope}:{'e' * 40}") in terms
    schema = json.loads((resources.files("trustgate") / "schemas" / "decision-v1.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(schema).validate(record)

    # A record from before `subject.presync` (only `tree`) never names a scope: it cannot approve a rollback.
    old = build_record(decision, DecisionContext(commit="f" * 40, tree="a" * 40))
    assert not [t for t in index_terms(old) if t[0].startswith("presync")]
    assert ("tree", "a" * 40) in index_terms(old)


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        (
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenReview",
                "metadata": {"name": "", "namespace": ""},
                "spec": {"token": "tg-bearer-1"},
            },
            ("spec", "token"),
        ),
        (
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "metadata": {"name": "builder", "namespace": "ci"},
                "spec": {"audiences": ["api"]},
                "status": {"token": "tg-bearer-1", "expirationTimestamp": "2026-01-01T00:00:00Z"},
            },
            ("status", "token"),
        ),
    ],
)
def test_tokens_of_authentication_objects_are_never_stored(
    obj: dict[str, Any], path: tuple[str, str]
) -> None:
    """A wildcard before Kubernetes 1.28 sends TokenReviews, bearer token and all: a token is kept out
    of the log as Secret data is, whatever the redaction rules."""
    record = build_record(Decision("admission", Mode.ENFORCE, [_result(obj, [])]))
    assert "tg-bearer-1" not in json.dumps(record)
    stored = record["subject"]["objects"][0]
    assert stored["object"][path[0]][path[1]] == REDACTED and ".".join(path) in stored["redacted"]
    redacted, paths = redact(obj)
    assert redacted[path[0]][path[1]] == REDACTED and paths == [".".join(path)]
    assert obj[path[0]][path[1]] == "tg-bearer-1"  # the object judged is left as it is


NESTED_SECRETS = {
    "crossplane-object": (
        {
            "apiVersion": "kubernetes.crossplane.io/v1alpha2",
            "kind": "Object",
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {"forProvider": {"manifest": SECRET}},
        },
        "spec.forProvider.manifest.data",
    ),
    "kyverno-generate": (
        {
            "apiVersion": "kyverno.io/v1",
            "kind": "ClusterPolicy",
            "metadata": {"name": "p", "namespace": ""},
            "spec": {
                "rules": [
                    {
                        "name": "r",
                        "generate": {"apiVersion": "v1", "kind": "Secret", "data": {"data": SECRET["data"]}},
                    }
                ]
            },
        },
        "spec.rules[0].generate.data",
    ),
    "v1-list": (
        {
            "apiVersion": "v1",
            "kind": "List",
            "metadata": {"name": "l", "namespace": "shop"},
            "items": [SECRET],
        },
        "items[0].data",
    ),
}


@pytest.mark.parametrize("case", sorted(NESTED_SECRETS))
def test_secrets_nested_in_other_objects_are_never_stored_nor_hashed_in_the_clear(case: str) -> None:
    obj, path = NESTED_SECRETS[case]
    wrapped = {**obj, "metadata": {**obj["metadata"], "annotations": {LAST_APPLIED: json.dumps(obj)}}}
    record = build_record(Decision("ci", Mode.ENFORCE, [_result(wrapped, [])]))
    stored = record["subject"]["objects"][0]
    text = json.dumps(record)
    assert "aHVudGVyMg" not in text and "s3cr3t" not in text
    assert path in stored["redacted"]
    assert stored["object"]["metadata"]["annotations"][LAST_APPLIED] == REDACTED
    assert stored["inputHash"] == content_hash(redact(wrapped)[0])
    assert obj == NESTED_SECRETS[case][0] and SECRET["data"] == {"password": "aHVudGVyMg=="}  # not changed


def test_a_nested_mapping_of_another_group_s_secret_kind_is_kept() -> None:
    obj = {
        "apiVersion": "example.com/v1",
        "kind": "Vault",
        "metadata": {"name": "v", "namespace": "shop"},
        "spec": {"ref": {"apiVersion": "vault.example.com/v1", "kind": "Secret", "data": {"path": "kv/db"}}},
    }
    assert redact(obj) == (obj, [])


def test_a_nested_secret_is_found_where_orjson_cannot_encode_the_object() -> None:
    """The quick look for the string "Secret" encodes the object; an integer beyond 64 bits makes
    that fail, and the object is walked instead."""
    obj, path = NESTED_SECRETS["v1-list"]
    huge = {**obj, "metadata": {**obj["metadata"], "labels": {}}, "extra": 2**70}
    assert needs_redaction(huge)
    assert path in redact(huge)[1]
    plain = {**obj, "items": [{"apiVersion": "v1", "kind": "ConfigMap", "data": {"Secret": "no"}}]}
    assert not needs_redaction(plain) and redact(plain)[1] == []
