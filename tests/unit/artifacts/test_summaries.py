"""Verification summaries: the format against the SLSA VSA v1 spec's example, signing and judging,
the policy digest, and revocations read at most every refresh interval."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustgate.artifacts import summaries
from trustgate.artifacts.policy import ImagePolicy
from trustgate.config import (
    AuthorityConfig,
    ImageRule,
    ImagesSettings,
    SummaryAcceptance,
    SummaryVerifier,
)
from trustgate.revocations import Revocations

EXAMPLE = Path(__file__).parent / "data" / "slsa-vsa-v1-example.json"
IMAGE = "sha256:" + "1f" * 32
POLICY = "sha256:" + "2e" * 32
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
VERIFIER = "https://ci.acme.example/trustgate"


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


KEY = ec.generate_private_key(ec.SECP256R1())
STRANGER = ec.generate_private_key(ec.SECP256R1())
ACCEPT = summaries.Acceptance.from_config(
    SummaryAcceptance(
        verifiers=(SummaryVerifier(VERIFIER, _pem(KEY), "test"),), max_age_seconds=3600, clock_skew_seconds=60
    )
)


def statement(**changes: Any) -> dict[str, Any]:
    return summaries.build_statement(
        subjects=[("registry.example/shop/api", IMAGE)],
        resource_uri=f"oci://registry.example/shop/api@{IMAGE}",
        verifier_id=changes.pop("verifier_id", VERIFIER),
        policy_uri="trustgate:images/rules/shop",
        policy_digest=changes.pop("policy_digest", POLICY),
        input_attestations=[
            {"uri": "oci://registry.example/shop/api@sha256:ab", "digest": {"sha256": "ab" * 32}}
        ],
        verified_levels=["SLSA_BUILD_LEVEL_3"],
        decision_id="01a249ca-b789-732c-8c3c-a3215fb3e7c6",
        time_verified=changes.pop("time_verified", NOW - dt.timedelta(minutes=5)),
    )


def judge(payload: bytes, **kwargs: Any) -> summaries.Accepted:
    options: dict[str, Any] = {
        "bundle_digest": summaries.bundle_digest(payload),
        "image_digest": IMAGE,
        "image_name": "registry.example/shop/api",
        "acceptance": ACCEPT,
        "policy_digest": POLICY,
        "now": NOW,
    } | kwargs
    return summaries.judge(payload, **options)


def shape(value: Any) -> Any:
    """Field names and JSON types, recursively (lists by the shape of their first item)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def test_the_statement_has_the_field_names_and_types_of_the_spec_example() -> None:
    example = json.loads(EXAMPLE.read_text())
    example.pop("_comment")
    ours = statement()
    expected, got = shape(example), shape(ours)
    expected["predicate"].pop("dependencyLevels")  # optional: trustgate does not verify dependencies
    extensions = {k for k in got["predicate"] if k.startswith("https://")}
    assert extensions == {summaries.DECISION_FIELD, summaries.LEVELS_FIELD}  # named by URIs (the spec)
    for key in extensions:
        got["predicate"].pop(key)
    assert got == expected
    assert ours["predicateType"] == example["predicateType"]
    assert ours["_type"] == example["_type"]
    assert ours["predicate"]["verificationResult"] in ("PASSED", "FAILED")
    assert dt.datetime.fromisoformat(ours["predicate"]["timeVerified"].replace("Z", "+00:00")).tzinfo


def test_a_signed_summary_is_accepted_with_what_the_decision_records() -> None:
    payload = summaries.sign_statement(statement(), KEY)
    accepted = judge(payload)
    assert accepted.verifier == VERIFIER and accepted.policy_digest == POLICY
    assert accepted.decision == "01a249ca-b789-732c-8c3c-a3215fb3e7c6"
    assert accepted.to_json()["path"] == "summary"
    assert accepted.digest == summaries.summary_digest(payload)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (
            lambda: summaries.sign_statement(statement(policy_digest="sha256:" + "00" * 32), KEY),
            "another policy",
        ),
        (
            lambda: summaries.sign_statement(statement(time_verified=NOW - dt.timedelta(hours=2)), KEY),
            "maxAge",
        ),
        (
            lambda: summaries.sign_statement(statement(time_verified=NOW + dt.timedelta(minutes=2)), KEY),
            "future",
        ),
        (lambda: summaries.sign_statement(statement(), STRANGER), "signature"),
        (lambda: summaries.sign_statement(statement(verifier_id="https://evil"), STRANGER), "not trusted"),
        (lambda: b"", "malformed"),
        (lambda: b"[]", "malformed"),
        (lambda: b"\xff\xfe garbage", "malformed"),
        (lambda: b'{"dsseEnvelope": {"payload": 7}}', "malformed"),
    ],
)
def test_summaries_that_do_not_count_raise_a_reason(payload: Any, reason: str) -> None:
    with pytest.raises(summaries.SummaryError) as caught:
        judge(payload())
    assert reason in caught.value.message and caught.value.message.startswith("VSA from ")


def _resigned(mutate: Any) -> bytes:
    """A validly signed bundle over a statement changed by `mutate` (signing what it says)."""
    stmt = statement()
    mutate(stmt)
    return summaries.sign_statement(stmt, KEY)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s["predicate"].update(timeVerified=17),
        lambda s: s["predicate"].update(timeVerified="yesterday"),
        lambda s: s["predicate"].update(timeVerified="2026-03-01T11:00:00"),
        lambda s: s["predicate"].update(policy="p"),
        lambda s: s["predicate"].update(policy={"uri": "x"}),
        lambda s: s["predicate"].update(verifiedLevels="SLSA_BUILD_LEVEL_3"),
        lambda s: s["predicate"].update(resourceUri=None),
        lambda s: s["predicate"].update(verificationResult="FAILED"),
        lambda s: s.update(_type="https://in-toto.io/Statement/v0.1"),
        lambda s: s.update(subject=[]),
    ],
)
def test_malformed_predicates_are_reasons_never_crashes(mutate: Any) -> None:
    with pytest.raises(summaries.SummaryError):
        judge(_resigned(mutate))


def test_revoked_digests_of_the_summary_or_the_image() -> None:
    payload = summaries.sign_statement(statement(), KEY)
    # The summary's name, the bundle as stored (revocations recorded before names), the image.
    for revoked in ({summaries.summary_digest(payload)}, {summaries.bundle_digest(payload)}, {IMAGE}):
        with pytest.raises(summaries.SummaryError, match="revoked"):
            judge(payload, revoked=revoked)


def test_a_revoked_summary_stays_revoked_however_its_bundle_is_encoded() -> None:
    payload = summaries.sign_statement(statement(), KEY)
    revoked = {summaries.summary_digest(payload)}
    respun = json.dumps(json.loads(payload), indent=1).encode()  # same signature, other bytes
    assert summaries.bundle_digest(respun) != summaries.bundle_digest(payload)
    assert summaries.summary_digest(respun) == summaries.summary_digest(payload)
    assert judge(respun).digest == summaries.summary_digest(payload)
    with pytest.raises(summaries.SummaryError, match="revoked"):
        judge(respun, bundle_digest=summaries.bundle_digest(respun), revoked=revoked)


PLATFORM = "sha256:" + "3d" * 32


def _index_summary(**changes: Any) -> bytes:
    """A summary of an index whose platform manifest the rule also looked at (as `Issuer` signs it)."""
    stmt = statement()
    stmt["subject"] = [
        {"name": "registry.example/shop/api", "digest": {"sha256": d.split(":")[1]}}
        for d in (IMAGE, PLATFORM)
    ]
    stmt["predicate"].update(changes)
    return summaries.sign_statement(stmt, KEY)


def test_revoking_any_digest_a_summary_lists_revokes_it_for_all_its_subjects() -> None:
    payload = _index_summary()
    for revoked, admitted in ((IMAGE, IMAGE), (PLATFORM, IMAGE), (IMAGE, PLATFORM)):
        with pytest.raises(summaries.SummaryError, match="revoked"):
            judge(payload, image_digest=admitted, revoked={revoked})


def test_a_summary_counts_only_for_its_primary_subject() -> None:
    payload = _index_summary()
    assert judge(payload).digest == summaries.summary_digest(payload)
    # The platform manifest was judged only through its index: admitted by its own digest, the
    # rule would check that manifest's own signatures, which the summary never vouched for.
    with pytest.raises(summaries.SummaryError, match="primary subject"):
        judge(payload, image_digest=PLATFORM)
    # The first subject and resourceUri must agree on which image was judged.
    other = _index_summary(resourceUri=f"oci://registry.example/shop/api@{PLATFORM}")
    for digest in (IMAGE, PLATFORM):
        with pytest.raises(summaries.SummaryError, match="primary subject"):
            judge(other, image_digest=digest)


@pytest.mark.parametrize(
    ("resource", "admitted", "counts"),
    [
        ("registry.example/shop/api", "registry.example/shop/api", True),
        # Default ports and Docker Hub's forms are one name, on either side.
        ("registry.example:443/shop/api", "registry.example/shop/api", True),
        ("registry.example/shop/api", "registry.example:0443/shop/api", True),
        ("index.docker.io/nginx", "docker.io/library/nginx", True),
        ("registry-1.docker.io:443/library/nginx", "docker.io/library/nginx", True),
        ("docker.io/library/nginx", "registry-1.docker.io:443/library/nginx", True),
        # The same digest in another repository, registry or port was never judged there.
        ("registry.example/shop/api", "registry.example/shop/payments", False),
        ("registry.example/shop/api", "mirror.example/shop/api", False),
        ("registry.example/shop/api", "registry.example:5000/shop/api", False),
        ("shop", "registry.example/shop/api", False),  # docker.io/library/shop
    ],
)
def test_a_summary_counts_only_in_the_repository_its_resource_uri_names(
    resource: str, admitted: str, counts: bool
) -> None:
    payload = _resigned(lambda s: s["predicate"].update(resourceUri=f"oci://{resource}@{IMAGE}"))
    if counts:
        assert judge(payload, image_name=admitted).verifier == VERIFIER
        return
    with pytest.raises(summaries.SummaryError, match="counts only in the repository it names") as caught:
        judge(payload, image_name=admitted)
    assert admitted in caught.value.message


@pytest.mark.parametrize(
    "uri", [f"https://registry.example/shop/api@{IMAGE}", f"oci://@{IMAGE}", f"oci://Bad Name@{IMAGE}"]
)
def test_a_resource_uri_naming_no_image_repository_does_not_count(uri: str) -> None:
    with pytest.raises(summaries.SummaryError, match="counts only in the repository it names"):
        judge(_resigned(lambda s: s["predicate"].update(resourceUri=uri)))


def test_every_key_listed_for_one_verifier_id_is_tried() -> None:
    rotated = ec.generate_private_key(ec.SECP256R1())
    accept = summaries.Acceptance.from_config(
        SummaryAcceptance(
            verifiers=(
                SummaryVerifier(VERIFIER, _pem(KEY), "old"),
                SummaryVerifier(VERIFIER, _pem(rotated), "new"),
            ),
            max_age_seconds=3600,
        )
    )
    for key in (KEY, rotated):
        assert judge(summaries.sign_statement(statement(), key), acceptance=accept).verifier == VERIFIER
    with pytest.raises(summaries.SummaryError, match="signature"):
        judge(summaries.sign_statement(statement(), STRANGER), acceptance=accept)


def test_revocations_are_read_again_only_after_the_refresh_interval() -> None:
    now = [0.0]
    reads: list[str] = []
    state = [frozenset({"sha256:a"})]

    def reader(url: str) -> frozenset[str]:
        reads.append(url)
        return state[0]

    revocations = Revocations("sqlite:///x.db", refresh_seconds=30, clock=lambda: now[0], reader=reader)
    assert revocations() == {"sha256:a"}
    state[0] = frozenset({"sha256:a", "sha256:b"})
    now[0] = 29.0
    assert revocations() == {"sha256:a"} and len(reads) == 1
    now[0] = 30.0
    assert revocations() == {"sha256:a", "sha256:b"} and len(reads) == 2


def test_the_policy_digest_names_what_is_verified_not_names_or_acceptance() -> None:
    pem = _pem(KEY)
    other = _pem(STRANGER)

    def digest(
        *, key: bytes = pem, name: str = "release", rule: str = "shop", data: Any = None, accept: bool = False
    ) -> str:
        settings = ImagesSettings(
            authorities=(AuthorityConfig(name=name, key_pem=key, key_origin="test"),),
            rules=(
                ImageRule(
                    name=rule,
                    images=("registry.example/**",),
                    authorities=(name,),
                    summaries=SummaryAcceptance(verifiers=(SummaryVerifier(VERIFIER, pem),))
                    if accept
                    else None,
                ),
            ),
        )
        return ImagePolicy(settings, data=data or {}).rules[0].policy_digest

    base = digest()
    assert base.startswith("sha256:") and len(base) == 71
    assert digest(name="other-name", rule="renamed", accept=True) == base
    assert digest(key=other) != base
    assert digest(data={"trustgate": {"slsa": {"builders": ["x"]}}}) != base


def test_the_envelope_is_dsse_over_an_in_toto_statement() -> None:
    bundle = json.loads(summaries.sign_statement(statement(), KEY))
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    envelope = bundle["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert json.loads(base64.b64decode(envelope["payload"])) == statement()
    assert ACCEPT.verifiers[0].id == VERIFIER


def test_a_verifier_naming_an_undefined_authority_is_a_config_error(tmp_path: Path) -> None:
    from trustgate.config import load_config
    from trustgate.errors import ConfigError

    (tmp_path / "release.pub").write_bytes(_pem(KEY))
    config = tmp_path / "trustgate.yaml"
    config.write_text(
        "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nimages:\n"
        "  authorities: [{name: release, key: {path: release.pub}}]\n"
        "  rules:\n    - name: shop\n      images: ['registry.example/**']\n"
        "      signatures: {authorities: [release]}\n"
        f"      summaries: {{accept: {{verifiers: [{{id: '{VERIFIER}', authority: {{name}}}}]}}}}\n"
    )
    config.write_text(config.read_text().replace("{name}", "verify-workflow"))
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert "'verify-workflow', which is not defined" in caught.value.message
    assert caught.value.where.endswith("trustgate.yaml:9") and "release" in caught.value.hint
    # Named as an authority that exists (here a key), it is that authority's signature that counts.
    config.write_text(config.read_text().replace("authority: verify-workflow", "authority: release"))
    (rule,) = ImagePolicy(load_config(config).images).rules
    assert rule.acceptance is not None and rule.acceptance.verifiers[0].authority.name == "release"
    payload = summaries.sign_statement(statement(policy_digest=rule.policy_digest), KEY)
    assert judge(payload, acceptance=rule.acceptance, policy_digest=rule.policy_digest).verifier == VERIFIER
    # Both a key and an authority: the schema refuses it (which one would sign?).
    config.write_text(
        config.read_text().replace("authority: release", "authority: release, key: release.pub")
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert "summaries.accept.verifiers.0" in caught.value.message


def test_after_a_failed_read_the_log_is_asked_again_only_after_the_retry_interval() -> None:
    from trustgate.errors import DecisionLogError

    now = [0.0]
    reads: list[float] = []
    down = [True]

    def reader(url: str) -> frozenset[str]:
        reads.append(now[0])
        if down[0]:
            raise DecisionLogError("could not connect (test)")
        return frozenset({"sha256:a"})

    revocations = Revocations("sqlite:///x.db", refresh_seconds=30, clock=lambda: now[0], reader=reader)
    for t in (0.0, 1.0, 4.9):
        now[0] = t
        with pytest.raises(DecisionLogError, match="could not connect"):
            revocations()
    assert reads == [0.0]  # one request paid for the failure, the others were answered at once
    down[0] = False
    now[0] = 5.0
    assert revocations() == {"sha256:a"} and reads == [0.0, 5.0]


def test_the_statement_parses_under_in_totos_own_statement_and_vsa_v1_schemas() -> None:
    """in-toto's Python bindings (`in-toto-attestation`): the Statement v1 and the SLSA VSA v1
    predicate protobufs, parsed strictly (an unknown or mistyped field fails), and the Statement's
    own `validate()`."""
    from google.protobuf import json_format
    from in_toto_attestation.predicates.vsa.v1 import vsa_pb2
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement

    ours = statement()
    pb = json_format.ParseDict(ours, statement_pb2.Statement())
    Statement.copy_from_pb(pb).validate()
    predicate = dict(ours["predicate"])
    assert predicate.pop(summaries.DECISION_FIELD)  # extension fields the schema cannot know
    assert predicate.pop(summaries.LEVELS_FIELD)
    # Known divergence: the bindings' vsa.proto has `verifiedLevels` as one string, where the SLSA
    # spec (authoritative, say in-toto's maintainers: in-toto/attestation#425, fix in #429) and its
    # own example have an array; the spec's example fails the bindings the same way.
    example = json.loads(EXAMPLE.read_text())["predicate"]
    for levels in (predicate, example):
        assert isinstance(levels["verifiedLevels"], list)
        with pytest.raises(json_format.ParseError, match="verifiedLevels"):
            json_format.ParseDict(levels, vsa_pb2.VerificationSummary())
    levels = predicate.pop("verifiedLevels")
    assert levels == ["SLSA_BUILD_LEVEL_3"] and all(isinstance(v, str) for v in levels)
    vsa = json_format.ParseDict(predicate, vsa_pb2.VerificationSummary())
    assert vsa.verifier.id == VERIFIER and vsa.verification_result == "PASSED"
    assert vsa.time_verified.ToDatetime(tzinfo=dt.UTC) == NOW - dt.timedelta(minutes=5)
    assert vsa.policy.digest["sha256"] == POLICY.split(":")[1]
    assert vsa.resource_uri == ours["predicate"]["resourceUri"] and vsa.slsa_version == "1.0"
    # The bindings do check: a mistyped field does not parse.
    with pytest.raises(json_format.ParseError):
        json_format.ParseDict(predicate | {"timeVerified": "yesterday"}, vsa_pb2.VerificationSummary())


def test_a_prune_carries_over_each_revocation_it_removes_once_unless_a_kept_record_repeats_it(
    tmp_path: Path,
) -> None:
    from trustgate.decisions.canonical import timestamp
    from trustgate.decisions.log import DecisionLog, open_store
    from trustgate.revocations import read_revoked, revocation_record, to_carry_over

    url = f"sqlite:///{tmp_path / 'log.db'}"
    a, b, c = ("sha256:" + h * 64 for h in "abc")
    with DecisionLog.open(url) as log:
        log.append(revocation_record(a, reason="leaked"))
        log.append(revocation_record(b, reason=""))
        log.append(revocation_record(a, reason="again"))
        cutoff = timestamp()
        log.append(revocation_record(b, reason="still"))
        log.append(revocation_record(c, reason="later"))
    store = open_store(url, create=False)
    try:
        carry = to_carry_over(store, cutoff)
        assert [digest for digest, _ in carry] == [a]  # b is revoked again by a record kept; c is kept
        ((_, why),) = carry
        assert why.startswith("carried over from revocation ") and why.endswith(": again"), why
        assert to_carry_over(store, "2000-01-01T00:00:00.000000Z") == []  # nothing removed
    finally:
        store.close()
    assert read_revoked(url) == {a, b, c}


def test_revocations_are_not_read_from_a_log_that_is_not_there(tmp_path: Path) -> None:
    """A missing SQLite file, or one without the log's tables, revokes what is not known: an error
    naming it (it read as revoking nothing), and the reader makes no log there."""
    from trustgate.errors import DecisionLogError
    from trustgate.revocations import read_revoked

    missing = tmp_path / "volume" / "decisions.db"
    missing.parent.mkdir()
    with pytest.raises(DecisionLogError) as raised:
        read_revoked(f"sqlite:///{missing}")
    assert str(missing) in raised.value.message and "no decision log here" in raised.value.message
    assert "decisionLog.url" in raised.value.hint
    assert not missing.exists()
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(DecisionLogError) as raised:
        read_revoked(f"sqlite:///{empty}")
    assert str(empty) in raised.value.message and "none of its tables" in raised.value.message
    assert empty.read_bytes() == b""
