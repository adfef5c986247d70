"""Verification summaries: the levels a summary must claim when it may come from another policy
(`requireLevels`, required with `samePolicy: false`), the level an issued summary claims, the date
it carries (when the evidence was verified, not when a cached result was served), and a
`maxAgeSeconds` that no date can hold (ADR 12)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from memory_registry import CosignKey
from support.keys import write_p256_key
from test_summaries_cache import Registry

from trustgate.artifacts import issuing, summaries
from trustgate.artifacts.policy import ImagePolicy
from trustgate.artifacts.verifier import ImageVerifier
from trustgate.config import (
    BUILTIN_ATTESTATION_POLICIES,
    AttestationRequirement,
    AuthorityConfig,
    ImageRule,
    ImagesSettings,
    SummaryAcceptance,
    SummaryIssuing,
    SummaryVerifier,
    builtin_policy_dir,
    load_config,
)
from trustgate.errors import ConfigError
from trustgate.gate import Gate
from trustgate.oci.reference import Reference

IMAGE = "sha256:" + "1f" * 32
POLICY = "sha256:" + "2e" * 32
NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
VERIFIER = "https://ci.acme.example/trustgate"
KEY = ec.generate_private_key(ec.SECP256R1())
PEM = KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)
REPO = Reference.parse("registry.test/shop/api")
SLSA = "https://slsa.dev/provenance/v1"
BUILDER = "https://ci.test/release"


def _summary(levels: list[str], *, when: dt.datetime | None = None, policy: str = POLICY) -> bytes:
    statement = summaries.build_statement(
        subjects=[("registry.example/shop/api", IMAGE)],
        resource_uri=f"oci://registry.example/shop/api@{IMAGE}",
        verifier_id=VERIFIER,
        policy_uri="trustgate:images/rules/staging",
        policy_digest=policy,
        input_attestations=[],
        verified_levels=levels,
        decision_id=None,
        time_verified=when or NOW - dt.timedelta(minutes=5),
    )
    return summaries.sign_statement(statement, KEY)


def _judge(payload: bytes, **acceptance: Any) -> summaries.Accepted:
    accept = summaries.Acceptance.from_config(
        SummaryAcceptance(verifiers=(SummaryVerifier(VERIFIER, PEM, "test"),), **acceptance)
    )
    return summaries.judge(
        payload,
        image_digest=IMAGE,
        image_name="registry.example/shop/api",
        acceptance=accept,
        policy_digest=POLICY,
        now=NOW,
    )


# -- requireLevels ----------------------------------------------------------------------------------


def test_a_summary_lacking_a_required_level_does_not_count_under_another_policy() -> None:
    """samePolicy false: a summary issued under a signature-only rule (no level) must not stand in
    for a rule requiring Build L3 provenance; the spec has consumers check verifiedLevels."""
    other = "sha256:" + "3d" * 32
    weak = _summary([], policy=other)
    with pytest.raises(summaries.SummaryError, match=r"lacks SLSA_BUILD_LEVEL_3.*requireLevels"):
        _judge(weak, same_policy=False, require_levels=("SLSA_BUILD_LEVEL_3",))
    with pytest.raises(summaries.SummaryError, match="lacks SLSA_BUILD_LEVEL_3"):
        _judge(
            _summary(["SLSA_BUILD_LEVEL_1"], policy=other),
            same_policy=False,
            require_levels=("SLSA_BUILD_LEVEL_3",),
        )
    accepted = _judge(
        _summary(["SLSA_BUILD_LEVEL_3"], policy=other),
        same_policy=False,
        require_levels=("SLSA_BUILD_LEVEL_3",),
    )
    assert accepted.verified_levels == ("SLSA_BUILD_LEVEL_3",)


def test_a_higher_level_of_the_same_track_meets_a_lower_requirement() -> None:
    """The VSA spec: each level implies those below it in its track, and a producer lists one."""
    l3 = _summary(["SLSA_BUILD_LEVEL_3"])
    assert _judge(l3, require_levels=("SLSA_BUILD_LEVEL_2",)).verified_levels == ("SLSA_BUILD_LEVEL_3",)
    with pytest.raises(summaries.SummaryError, match="lacks SLSA_SOURCE_LEVEL_1"):
        _judge(l3, require_levels=("SLSA_BUILD_LEVEL_2", "SLSA_SOURCE_LEVEL_1"))


def _config(tmp_path: Path, accept: str) -> Path:
    write_p256_key(tmp_path / "vsa.pem")
    (tmp_path / "vsa.pub").write_bytes(PEM)
    path = tmp_path / "trustgate.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: trustgate.dev/v1alpha1
            kind: Config
            images:
              rules:
                - name: shop
                  images: ["registry.example/shop/**"]
                  summaries: {{accept: {{verifiers: [{{id: '{VERIFIER}', key: vsa.pub}}], {accept}}}}}
            """
        )
    )
    return path


def test_same_policy_false_without_required_levels_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="samePolicy is false but requireLevels is not set") as e:
        load_config(_config(tmp_path, "samePolicy: false"))
    assert "requireLevels" in (e.value.hint or "")
    config = load_config(_config(tmp_path, "samePolicy: false, requireLevels: [SLSA_BUILD_LEVEL_3]"))
    (rule,) = config.images.rules
    assert rule.summaries is not None and rule.summaries.require_levels == ("SLSA_BUILD_LEVEL_3",)
    assert not rule.summaries.same_policy


def test_required_levels_are_a_non_empty_list_of_names(tmp_path: Path) -> None:
    for bad in ("requireLevels: []", "requireLevels: SLSA_BUILD_LEVEL_3", "requireLevels: ['']"):
        with pytest.raises(ConfigError):
            load_config(_config(tmp_path, bad))


# -- maxAgeSeconds ----------------------------------------------------------------------------------


def test_max_age_beyond_ten_years_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="maxAgeSeconds"):
        load_config(_config(tmp_path, "maxAgeSeconds: 1e12"))
    config = load_config(_config(tmp_path, "maxAgeSeconds: 315360000"))
    (rule,) = config.images.rules
    assert rule.summaries is not None and rule.summaries.max_age_seconds == 315360000


@pytest.mark.parametrize("max_age", [1e12, float("inf"), float("nan")])
def test_a_max_age_no_date_can_hold_is_a_reason_never_a_crash(max_age: float) -> None:
    """What the schema refuses, the code does not crash on either (it judged OverflowError)."""
    with pytest.raises(summaries.SummaryError, match="maxAgeSeconds"):
        _judge(_summary([]), max_age_seconds=max_age)


# -- issuing: levels and dates ----------------------------------------------------------------------


def _settings(release: CosignKey, builder: CosignKey, *, build_level: int | None = None) -> ImagesSettings:
    """The image signed by the release workflow, its provenance by the builder (an authority of
    its own: a level above 1 is refused at load otherwise)."""
    return ImagesSettings(
        authorities=(
            AuthorityConfig(name="release", key_pem=release.pem, key_origin="release.pub"),
            AuthorityConfig(name="builder", key_pem=builder.pem, key_origin="builder.pub"),
        ),
        rules=(
            ImageRule(
                name="shop",
                images=("registry.test/shop/**",),
                authorities=("release",),
                attestations=(
                    AttestationRequirement(
                        "provenance",
                        SLSA,
                        ("builder",),
                        policy_path=builtin_policy_dir()
                        / BUILTIN_ATTESTATION_POLICIES["builtin:slsa-provenance"],
                        builtin="builtin:slsa-provenance",
                    ),
                ),
                summary_build_level=build_level,
            ),
        ),
    )


def _verified(
    tmp_path: Path, data: dict[str, Any], *, build_level: int | None = None, builder: str = BUILDER
) -> tuple[ImagePolicy, Any, Registry]:
    registry = Registry()
    release, builder_key = CosignKey(), CosignKey()
    digest = registry.image(REPO, "v1")
    registry.attach_cosign(REPO, digest, ".sig", [release.signature_layer(REPO.name, digest)])
    predicate = {"runDetails": {"builder": {"id": builder}}}
    registry.attach_cosign(
        REPO, digest, ".att", [builder_key.attestation_layer(REPO.name, digest, SLSA, predicate)]
    )
    policy = ImagePolicy(_settings(release, builder_key, build_level=build_level), data=data)
    verified = ImageVerifier(policy, registry).verify(f"{REPO.name}@{digest}")
    assert verified.status == "verified", verified.problems
    write_p256_key(tmp_path / "vsa.pem")
    return policy, verified, registry


def _predicate(signed: issuing.Signed | None) -> dict[str, Any]:
    assert signed is not None
    predicate: dict[str, Any] = json.loads(
        base64.b64decode(json.loads(signed.bundle)["dsseEnvelope"]["payload"])
    )["predicate"]
    return predicate


def _issuer(tmp_path: Path) -> issuing.Issuer:
    return issuing.Issuer.from_config(SummaryIssuing(verifier_id=VERIFIER, key_path=tmp_path / "vsa.pem"))


def _levels(tmp_path: Path, data: dict[str, Any], **kwargs: Any) -> list[str]:
    policy, verified, _ = _verified(tmp_path, data, **kwargs)
    levels: list[str] = _predicate(_issuer(tmp_path).prepare(policy, verified, decision_id=None))[
        "verifiedLevels"
    ]
    return levels


def test_build_level_3_is_claimed_only_where_the_operator_asserts_it_for_a_listed_builder(
    tmp_path: Path,
) -> None:
    """Passing the built-in provenance policy is Build L1. Whether the builder itself signed the
    provenance (not a release workflow naming it) trustgate cannot tell from a builder id: L3 only
    where the rule says its builders reach it (`summaries.issue.buildLevel`), with builders listed
    (found in review: L3 was claimed for provenance the builder never signed)."""
    listed = {"trustgate": {"slsa": {"builders": [BUILDER]}}}
    assert _levels(tmp_path, {}) == ["SLSA_BUILD_LEVEL_1"]
    assert _levels(tmp_path, {"trustgate": {"slsa": {"builders": []}}}) == ["SLSA_BUILD_LEVEL_1"]
    assert _levels(tmp_path, listed) == ["SLSA_BUILD_LEVEL_1"]
    assert _levels(tmp_path, {}, build_level=3) == ["SLSA_BUILD_LEVEL_1"]
    assert _levels(tmp_path, listed, build_level=3) == ["SLSA_BUILD_LEVEL_3"]
    assert _levels(tmp_path, listed, build_level=2) == ["SLSA_BUILD_LEVEL_2"]


def test_a_policy_file_of_the_operators_is_not_the_built_in_whatever_its_path(tmp_path: Path) -> None:
    """The built-in policy is the one the rule names `builtin:slsa-provenance`, not any file whose
    path ends like the bundled one (found in review: a permissive policy there was claimed L3)."""
    own = tmp_path / "mypolicies" / "attestations" / "slsa_provenance.rego"
    own.parent.mkdir(parents=True)
    own.write_text('package acme.prov\nimport rego.v1\ndeny contains "never" if { false }\n')
    registry = Registry()
    release, builder = CosignKey(), CosignKey()
    digest = registry.image(REPO, "v1")
    registry.attach_cosign(REPO, digest, ".sig", [release.signature_layer(REPO.name, digest)])
    predicate = {"runDetails": {"builder": {"id": "https://anything.example/not-listed"}}}
    registry.attach_cosign(
        REPO, digest, ".att", [builder.attestation_layer(REPO.name, digest, SLSA, predicate)]
    )
    settings = _settings(release, builder, build_level=3)
    (rule,) = settings.rules
    att = dataclasses.replace(rule.attestations[0], policy_path=own, builtin=None)
    settings = dataclasses.replace(settings, rules=(dataclasses.replace(rule, attestations=(att,)),))
    policy = ImagePolicy(settings, data={"trustgate": {"slsa": {"builders": [BUILDER]}}})
    verified = ImageVerifier(policy, registry).verify(f"{REPO.name}@{digest}")
    assert verified.status == "verified", verified.problems
    write_p256_key(tmp_path / "vsa.pem")
    assert _predicate(_issuer(tmp_path).prepare(policy, verified, decision_id=None))["verifiedLevels"] == []


_LEVEL_CONFIG = textwrap.dedent(
    """\
    apiVersion: trustgate.dev/v1alpha1
    kind: Config
    manifests: {policies: [], data: %(data)s}
    kubernetes: {schemas: false}
    images:
      authorities: [{name: release, key: {path: vsa.pub}}, {name: builder, key: {path: vsa.pub}}]
      rules:
        - name: shop
          images: ["registry.test/shop/**"]
          signatures: {authorities: [release]}
          attestations: [{name: provenance, predicateType: slsaprovenance1, policy: %(policy)s%(own)s}]
          summaries: {issue: {buildLevel: %(level)s}}
      %(issue)s
    """
)


def _level_config(
    tmp_path: Path,
    *,
    policy: str = '"builtin:slsa-provenance"',
    level: str = "3",
    own: str = "[builder]",
    data: str = '{trustgate: {slsa: {builders: ["https://b.test"]}}}',
    issue: bool = False,
) -> Path:
    (tmp_path / "own.rego").write_text("package own\n")
    (tmp_path / "vsa.pub").write_bytes(PEM)
    issuing_section = "summaries: {issue: {verifierId: 'https://v.test', key: vsa.pem}}" if issue else ""
    (tmp_path / "c.yaml").write_text(
        _LEVEL_CONFIG
        % {
            "policy": policy,
            "level": level,
            "own": f", authorities: {own}" if own else "",
            "data": data,
            "issue": issuing_section,
        }
    )
    return tmp_path / "c.yaml"


def test_build_level_is_validated_and_needs_the_built_in_provenance_policy(tmp_path: Path) -> None:
    for policy, level, error in (
        ('"builtin:slsa-provenance"', "4", "buildLevel"),
        ('"builtin:slsa-provenance"', '"3"', "buildLevel"),
        ("own.rego", "3", "built-in provenance policy"),
    ):
        with pytest.raises(ConfigError, match=error):
            load_config(_level_config(tmp_path, policy=policy, level=level))
    (rule,) = load_config(_level_config(tmp_path)).images.rules
    assert rule.summary_build_level == 3
    assert rule.attestations[0].builtin == "builtin:slsa-provenance"


@pytest.mark.parametrize(
    ("own", "said"),
    [
        ("", "lists no authorities of its own"),
        ("[release]", "lists release, the rule's signature authorities"),
        ("[builder, release]", "lists release, the rule's signature authorities"),
    ],
)
def test_a_level_above_1_needs_provenance_authorities_of_its_own(tmp_path: Path, own: str, said: str) -> None:
    """Provenance that inherits the rule's signature authorities (or shares one) is signed by the
    tenant's release workflow, not a builder: a level above 1 claimed for it let a gate requiring
    L3 admit what no builder signed (found in review: the README's example had that shape)."""
    with pytest.raises(ConfigError, match=said) as raised:
        load_config(_level_config(tmp_path, own=own))
    assert "set `authorities` on attestation 'provenance'" in raised.value.hint
    (rule,) = load_config(_level_config(tmp_path, own=own, level="1")).images.rules  # L1: nothing asserted
    assert rule.summary_build_level == 1


@pytest.mark.parametrize(
    "data", ["{}", "{trustgate: {slsa: {builders: []}}}", "{trustgate: {slsa: {builders: ['']}}}"]
)
def test_a_level_above_1_without_builders_listed_is_refused(tmp_path: Path, data: str) -> None:
    """`buildLevel: 3` with no builders listed used to load and then claim L1 in silence: refused
    where the config's own data says so (an empty list: a data file cannot set it too), and else
    where the gate starts, once the data files are merged."""
    write_p256_key(tmp_path / "vsa.pem")
    if data != "{}":
        with pytest.raises(ConfigError, match=r"data\.trustgate\.slsa\.builders is empty"):
            load_config(_level_config(tmp_path, data=data, issue=True))
        load_config(_level_config(tmp_path, data=data))  # not issuing: the level is never claimed
        return
    config = load_config(_level_config(tmp_path, data=data, issue=True))  # data files may list them
    with pytest.raises(ConfigError, match=r"no builders under data\.trustgate\.slsa\.builders"):
        Gate(config=config)
    (tmp_path / "builders.yaml").write_text("trustgate: {slsa: {builders: ['https://b.test']}}\n")
    Gate(config=dataclasses.replace(config, data_files=(tmp_path / "builders.yaml",))).close()


def test_a_rule_asserting_a_level_without_builders_is_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An issuer built without the gate's check claims L1 and says why, once per rule."""
    monkeypatch.setattr(issuing, "_WARNED", set())
    with caplog.at_level("WARNING", logger="trustgate.images"):
        assert _levels(tmp_path, {}, build_level=3) == ["SLSA_BUILD_LEVEL_1"]
        assert _levels(tmp_path, {}, build_level=3) == ["SLSA_BUILD_LEVEL_1"]
    warned = [r for r in caplog.records if "lists no builders" in r.getMessage()]
    assert len(warned) == 1, caplog.records


# -- summaries issued before the levels' semantics changed ------------------------------------------


def test_a_summary_without_the_levels_marker_never_meets_require_levels() -> None:
    """Summaries an older trustgate issued claimed Build L3 for any listed builder: they count
    where no level is required (samePolicy), never towards requireLevels."""
    old = json.loads(
        base64.b64decode(json.loads(_summary(["SLSA_BUILD_LEVEL_3"]))["dsseEnvelope"]["payload"])
    )
    old["predicate"].pop(summaries.LEVELS_FIELD)
    payload = summaries.sign_statement(old, KEY)
    with pytest.raises(
        summaries.SummaryError, match=r"lacks https://trustgate.dev/verification_summary/levels"
    ):
        _judge(payload, same_policy=False, require_levels=("SLSA_BUILD_LEVEL_3",))
    with pytest.raises(summaries.SummaryError, match=r"lacks https://trustgate\.dev"):
        _judge(payload, require_levels=("SLSA_BUILD_LEVEL_1",))
    assert _judge(payload).verified_levels == ("SLSA_BUILD_LEVEL_3",)
    # Issued now: it carries the marker.
    assert _judge(
        _summary(["SLSA_BUILD_LEVEL_3"]), same_policy=False, require_levels=("SLSA_BUILD_LEVEL_3",)
    ).verified_levels == ("SLSA_BUILD_LEVEL_3",)


def test_a_summary_of_a_cached_result_is_dated_when_it_was_verified(tmp_path: Path) -> None:
    """A cache hit serves evidence verified earlier (deleted since, perhaps): its summary carries
    that time, so maxAgeSeconds counts from the verification, not from the hit."""
    policy, verified, _ = _verified(tmp_path, {})
    assert verified.verified_at is not None
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    stamp = earlier.strftime("%Y-%m-%dT%H:%M:%SZ")
    hit = dataclasses.replace(verified, cache="hit", verified_at=stamp)
    assert _predicate(_issuer(tmp_path).prepare(policy, hit, decision_id=None))["timeVerified"] == stamp
    # A cached result that does not say when it was verified (an older trustgate's) is not vouched for.
    unknown = dataclasses.replace(verified, cache="hit", verified_at=None)
    assert _issuer(tmp_path).prepare(policy, unknown, decision_id=None) is None


def test_a_result_from_the_shared_cache_keeps_its_verification_time() -> None:
    from trustgate.artifacts.shared import decode_result, encode_result
    from trustgate.model import ImageResult

    result = ImageResult("r/x@" + IMAGE, "verified", digest=IMAGE, verified_at="2026-03-01T11:00:00Z")
    assert decode_result(json.loads(json.dumps(encode_result(result)))).verified_at == "2026-03-01T11:00:00Z"


# -- verifiedAt from the cache (a shared cache: other replicas wrote it) -----------------------------


@pytest.mark.parametrize(
    "stamp",
    [
        "yesterday",
        "2026-12-07",
        "\x1b[31m",
        "2026-03-01T11:00:00+00:00",  # not as the verifier writes it
        "0001-01-01T00:00:00+05:00",  # no UTC date can hold it: OverflowError out of prepare before
        "9999-12-31T23:59:59-05:00",
        "2026-02-30T11:00:00Z",
    ],
)
def test_a_verified_at_not_written_as_the_verifier_writes_it_issues_no_summary(
    tmp_path: Path, stamp: str, caplog: pytest.LogCaptureFixture
) -> None:
    from trustgate.artifacts.shared import decode_result, encode_result

    policy, verified, _ = _verified(tmp_path, {})
    hit = dataclasses.replace(verified, verified_at=stamp)
    hit = dataclasses.replace(decode_result(json.loads(json.dumps(encode_result(hit)))), cache="hit")
    with caplog.at_level("WARNING", logger="trustgate.images"):
        assert _issuer(tmp_path).prepare(policy, hit, decision_id=None) is None
    assert any("verifiedAt" in r.getMessage() for r in caplog.records), caplog.records


def test_a_verified_at_in_the_future_beyond_the_clock_skew_issues_no_summary(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    policy, verified, _ = _verified(tmp_path, {})
    now = dt.datetime.now(dt.UTC)
    future = (now + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with caplog.at_level("WARNING", logger="trustgate.images"):
        hit = dataclasses.replace(verified, cache="hit", verified_at=future)
        assert _issuer(tmp_path).prepare(policy, hit, decision_id=None, now=now) is None
    assert any("in the future" in r.getMessage() for r in caplog.records), caplog.records
    within = (now + dt.timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")  # the default skew: 60 s
    hit = dataclasses.replace(verified, cache="hit", verified_at=within)
    assert (
        _predicate(_issuer(tmp_path).prepare(policy, hit, decision_id=None, now=now))["timeVerified"]
        == within
    )


def test_issuing_that_fails_never_fails_the_gate(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from trustgate.gate.images import ImageStage

    policy, verified, _ = _verified(tmp_path, {})

    class Broken:
        def prepare(self, *args: Any, **kwargs: Any) -> None:
            raise OverflowError("date value out of range")

    stage = ImageStage.__new__(ImageStage)
    stage._issuer = Broken()  # type: ignore[assignment]
    stage.policy = policy
    stage._decision_log = None
    with caplog.at_level("ERROR", logger="trustgate.images"):
        assert stage.issue("ci", [verified]) == ""
    assert stage._signed == [] and not verified.issued
    assert any("issuing the summary" in r.getMessage() for r in caplog.records)


# -- what unsigned statements say ---------------------------------------------------------------------


def _unsigned(levels: list[str], when: dt.datetime) -> bytes:
    statement = summaries.build_statement(
        subjects=[("registry.example/shop/api", IMAGE)],
        resource_uri=f"oci://registry.example/shop/api@{IMAGE}",
        verifier_id=VERIFIER,
        policy_uri="x",
        policy_digest=POLICY,
        input_attestations=[],
        verified_levels=levels,
        decision_id=None,
        time_verified=when,
    )
    payload = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps({"dsseEnvelope": {"payload": payload, "signatures": []}}).encode()


def _screen(payload: bytes, **acceptance: Any) -> dt.datetime:
    accept = summaries.Acceptance.from_config(
        SummaryAcceptance(verifiers=(SummaryVerifier(VERIFIER, PEM, "test"),), **acceptance)
    )
    return summaries.screen(
        payload,
        image_digest=IMAGE,
        image_name="registry.example/shop/api",
        acceptance=accept,
        policy_digest=POLICY,
        now=NOW,
    )


def test_a_level_of_thousands_of_digits_is_no_level_not_an_internal_error() -> None:
    huge = _unsigned(["SLSA_BUILD_LEVEL_" + "9" * 5000], NOW - dt.timedelta(minutes=1))
    with pytest.raises(summaries.SummaryError, match="lacks SLSA_BUILD_LEVEL_3"):
        _screen(huge, require_levels=("SLSA_BUILD_LEVEL_3",))
    assert summaries._claims(["SLSA_BUILD_LEVEL_999"], "SLSA_BUILD_LEVEL_3")
    assert not summaries._claims(["SLSA_BUILD_LEVEL_0003"], "SLSA_BUILD_LEVEL_3")


def test_a_far_future_time_verified_is_said_to_be_in_the_future() -> None:
    far = _unsigned([], dt.datetime(9999, 12, 31, 12, 0, tzinfo=dt.UTC))
    with pytest.raises(summaries.SummaryError, match="in the future") as e:
        _screen(far, max_age_seconds=86400)
    assert "maxAgeSeconds" not in e.value.reason


def test_no_more_summaries_are_read_than_max_artifacts_allows(tmp_path: Path) -> None:
    """`MAX_READS` bounds the summaries read per image, and a lower `maxArtifacts` lowers it."""
    import dataclasses as dc

    from trustgate.oci.discovery import DiscoveryLimits

    policy, _, registry = _verified(tmp_path, {})
    limits = DiscoveryLimits(max_artifacts=2)
    verifier = ImageVerifier(policy, registry, revocations=frozenset, limits=limits)
    (rule,) = policy.rules
    accepting = dc.replace(
        rule,
        acceptance=summaries.Acceptance.from_config(
            SummaryAcceptance(verifiers=(SummaryVerifier(VERIFIER, PEM, "test"),))
        ),
    )
    descriptors = [
        dc.replace(d, annotations={summaries.PREDICATE_ANNOTATION: summaries.VSA_PREDICATE})
        for d in _junk_descriptors(5)
    ]
    bare = Reference(registry=REPO.registry, repository=REPO.repository)
    assert accepting.acceptance is not None
    used, ignored, reasons = verifier._select(
        bare, accepting, accepting.acceptance, IMAGE, descriptors, "referrers-api", frozenset()
    )
    assert used is None
    assert ignored[-1] == "3 VSAs not looked at: at most 2 are read per image, the newest by their annotation"
    assert len(reasons) == 5


def _junk_descriptors(n: int) -> list[Any]:
    from trustgate.oci.client import Descriptor

    return [
        Descriptor(media_type="application/json", digest="sha256:" + f"{i:02x}" * 32, size=10)
        for i in range(n)
    ]
