"""The compiled image policy: rules matched by glob, authorities built once.

Owns: turning the `images` section of the configuration into objects the
verifier uses (trust roots loaded, keys parsed, identity matchers, attestation
Rego compiled), matching an image name to its rule, and a hash per rule that
keys the cache: a result verified under one policy is never served under
another. Leaves out: fetching and verifying (the verifier does).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785

from trustgate.artifacts.summaries import Acceptance
from trustgate.config import PUBLIC_GOOD, AttestationRequirement, ImageRule, ImagesSettings
from trustgate.errors import ConfigError, PolicyError
from trustgate.oci.reference import canonical_name, glob_pattern, name_pattern, plain_port
from trustgate.policy import rego
from trustgate.verify import (
    IdentityMatcher,
    KeyAuthority,
    KeylessAuthority,
    TrustRoot,
    key_id,
    load_public_key,
)

Authority = KeyAuthority | KeylessAuthority
_THREAD = threading.local()  # per thread: the attestation policies' regorus evaluators


# The version of what a verification reads and how it judges it: in every rule's policy digest
# (`ImagePolicy._policy_digest`), so in the `policy` of every verification summary issued under
# it, and in every result's cache key (`verifier.result_key`). A summary an older release issued,
# or a result an old replica cached during a rolling upgrade, is then never accepted or served.
# Bump it with any change to what is read (places, limits that fail or skip), to what counts or
# how it is ranked, or to what a verdict means (ADR 5, "The cache"; ADR 12). History: no version
# is older releases (some did not read the `.att` tag beside the referrers, all skipped payloads
# over 4 MiB with a note); 2: a payload too large to read fails the image; 3: a keyless signer
# counts once however many certificates it signed with, each layer of a signature manifest counts
# against maxArtifacts and payloads against maxTotalPayloadBytes, BuildKit's attestation manifests
# are not platforms, an index's platforms are read only for rules wanting attestations, and a
# log key counts only within its validity window; 4: a rule wanting signatures only does not read
# the `.att` tag, and a rule's pattern with a default port takes the name without it.
SEMANTICS_VERSION = 4


@dataclass(frozen=True, slots=True)
class CompiledAttestation:
    requirement: AttestationRequirement
    authorities: tuple[Authority, ...]
    policy: rego.RegoPolicy | None  # None: the statement only has to be there, signed


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: ImageRule
    include: tuple[re.Pattern[str], ...]
    exclude: tuple[re.Pattern[str], ...]
    authorities: tuple[Authority, ...]
    attestations: tuple[CompiledAttestation, ...]
    digest: str  # the rule's content hash: cache entries are keyed by it
    # What the rule verifies, as verification summaries name it (same at every gate; ADR 12).
    policy_digest: str = ""
    acceptance: Acceptance | None = None  # the summaries it accepts instead of verifying

    def takes(self, name: str, *, written: Sequence[str] = ()) -> tuple[str, ...]:
        """The `images` patterns (as configured) that take `name` (`registry/repository`); none
        when an exclusion holds for it or for `written`, other names of the same image.

        Names only, never tags or digests: whoever can push picks the tag, and must not pick the
        rule (a tag `v2-debug` falling to an exclusion written for `*-debug` repositories).
        """
        if any(p.fullmatch(n) for p in self.exclude for n in (name, *written)):
            return ()
        patterns = zip(self.rule.images, self.include, strict=True)
        return tuple(glob for glob, p in patterns if p.fullmatch(name))


def _include(glob: str) -> re.Pattern[str]:
    """An `images` pattern, its port written plainly (`host:0443/**` names `host:443`); as for
    exclusions, one written with a default port takes the name without it too (found in review:
    `host:443/prod/**` did not take `host/prod/api`, which fell to a lenient rule after it)."""
    written, *bare = _excludes(glob)
    if not bare:
        return written
    return re.compile(f"(?:{written.pattern})|(?:{bare[0].pattern})")


def _excludes(glob: str) -> tuple[re.Pattern[str], ...]:
    """An `exclude` pattern, and the same pattern without a default port: an exclusion written
    `host:443/prod/**` holds for `host/prod/...` too, the same images (ADR 5)."""
    written = plain_port(name_pattern(glob))
    bare = canonical_name(written)
    return tuple(glob_pattern(g) for g in dict.fromkeys((written, bare or written)))


class ImagePolicy:
    """Every image rule of a configuration, compiled; thread-safe to use."""

    def __init__(self, settings: ImagesSettings, *, data: Mapping[str, Any] | None = None) -> None:
        """Load trust roots and keys and compile attestation policies.

        `data` is the policy data document (`manifests.data` and data files):
        attestation policies read their settings from it, e.g. `data.trustgate.slsa`.

        Raises:
            ConfigError: a trusted root or key cannot be read or parsed.
            PolicyError: an attestation policy does not compile.
        """
        self.settings = settings
        self.data = dict(data or {})
        roots: dict[str, TrustRoot] = {}
        authorities: dict[str, Authority] = {}
        fingerprints: dict[str, str] = {}
        self._identities: dict[str, Any] = {}  # per authority: what it trusts, without names
        for config in settings.authorities:
            if config.key_pem is not None:
                key = load_public_key(config.key_pem, where=config.key_origin)
                key_root = None
                if config.key_trust_root is not None:
                    key_root = roots.get(config.key_trust_root)
                    if key_root is None:
                        key_root = roots[config.key_trust_root] = _load_root(
                            config.key_trust_root, settings.trust_roots
                        )
                authorities[config.name] = KeyAuthority(
                    name=config.name, key=key, key_id=key_id(key), trust_root=key_root
                )
                root_name = config.key_trust_root
                self._identities[config.name] = {
                    "key": key_id(key),
                    "log": _root_hash(root_name, settings) if root_name else None,
                }
                fingerprints[config.name] = (
                    f"key {key_id(key)} log {root_name} {_root_hash(root_name, settings)}"
                    if root_name
                    else f"key {key_id(key)}"
                )
                continue
            root = roots.get(config.trust_root)
            if root is None:
                root = _load_root(config.trust_root, settings.trust_roots)
                roots[config.trust_root] = root
            matchers = tuple(
                IdentityMatcher(
                    subject=i.subject,
                    subject_regex=i.subject_regex,
                    issuer=i.issuer,
                    issuer_regex=i.issuer_regex,
                )
                for i in config.identities
            )
            authorities[config.name] = KeylessAuthority(
                name=config.name, trust_root=root, identities=matchers
            )
            self._identities[config.name] = {
                "keyless": _root_hash(config.trust_root, settings),
                "identities": [
                    [i.subject, i.subject_regex, i.issuer, i.issuer_regex] for i in config.identities
                ],
            }
            fingerprints[config.name] = (
                f"keyless {config.trust_root} {_root_hash(config.trust_root, settings)} "
                + (repr(config.identities))
            )
        self.authorities = authorities
        self.rules = tuple(self._compile(rule, fingerprints) for rule in settings.rules)

    def _compile(self, rule: ImageRule, fingerprints: Mapping[str, str]) -> CompiledRule:
        digest = hashlib.sha256(repr(rule).encode())
        digest.update(json.dumps(self.data, sort_keys=True, default=str).encode())
        attestations = []
        for att in rule.attestations:
            policy = _attestation_policy(rule, att, self.data)
            if policy is not None:
                for module in policy.modules:
                    digest.update(module.text.encode())
            attestations.append(
                CompiledAttestation(att, tuple(self.authorities[n] for n in att.authorities), policy)
            )
        for name in sorted({*rule.authorities, *(n for a in rule.attestations for n in a.authorities)}):
            digest.update(fingerprints[name].encode())
        acceptance = (
            Acceptance.from_config(rule.summaries, authorities=self.authorities)
            if rule.summaries is not None
            else None
        )
        return CompiledRule(
            rule=rule,
            include=tuple(_include(p) for p in rule.images),
            exclude=tuple(e for p in rule.exclude for e in _excludes(p)),
            authorities=tuple(self.authorities[n] for n in rule.authorities),
            attestations=tuple(attestations),
            digest="sha256:" + digest.hexdigest(),
            policy_digest=self._policy_digest(rule, attestations),
            acceptance=acceptance,
        )

    def _policy_digest(self, rule: ImageRule, attestations: Sequence[CompiledAttestation]) -> str:
        """sha256 of the RFC 8785 JSON of what the rule verifies: who must sign (keys, identities,
        trust-root contents), how many, which attestations with which policies, and the policy data.

        Names (of the rule, authorities, trust roots) and where files live are left out, and so is
        what the rule accepts: gates with the same rule in different config files agree on it.
        """
        document = {
            "schema": "trustgate.dev/image-policy/v1",
            "semantics": SEMANTICS_VERSION,
            "signatures": {
                "authorities": sorted(
                    (self._identities[n] for n in dict.fromkeys(rule.authorities)), key=rfc8785.dumps
                ),
                "threshold": rule.threshold if rule.authorities else 0,
            },
            "attestations": sorted(
                (
                    {
                        "predicateType": a.requirement.predicate_type,
                        "authorities": sorted(
                            (self._identities[n] for n in a.requirement.authorities), key=rfc8785.dumps
                        ),
                        "policy": sorted(
                            hashlib.sha256(m.text.encode()).hexdigest() for m in a.policy.modules
                        )
                        if a.policy is not None
                        else [],
                    }
                    for a in attestations
                ),
                key=rfc8785.dumps,
            ),
            "data": json.loads(json.dumps(self.data, default=str)),
        }
        try:
            encoded = rfc8785.dumps(document)
        except rfc8785.CanonicalizationError as e:  # NaN, or an integer beyond 2**53 in the data
            raise ConfigError(
                f"image rule {rule.name!r}: the policy data has a value RFC 8785 JSON cannot hold: {e}",
                hint="verification summaries name the rule by a hash of its canonical JSON (ADR 12)",
            ) from e
        return "sha256:" + hashlib.sha256(encoded).hexdigest()

    def rule_for(self, name: str) -> CompiledRule | None:
        """The first rule matching the image name (`registry/repository`, without tag or digest).

        A registry written with its scheme's default port (`host:443/...`, `host:80/...`), or a
        Docker Hub host with it, is the host's registry (`canonical_name`): when no rule names the
        image as written, the rules for `host/...` judge it, so the port cannot take an image out
        of the rule written for its registry. Every rule's exclusions hold for either name (found
        in review: `**` excluding `host/prod/**` took `host:443/prod/api` as written). A rule
        whose matching pattern names the registry as written (`host:443/sandbox/**`) keeps its
        images wherever it is listed; a catch-all (`**`) listed after the host's rule does not.
        A port is read without leading zeros (`:0443` is 443) on both sides.
        """
        as_written = plain_port(name)
        canonical = canonical_name(as_written)
        others = tuple(n for n in dict.fromkeys((name, canonical)) if n is not None and n != as_written)
        written = next(
            ((i, r, ps) for i, r in enumerate(self.rules) if (ps := r.takes(as_written, written=others))),
            None,
        )
        if canonical is None:
            return written[1] if written is not None else None
        also = tuple(n for n in dict.fromkeys((name, as_written)) if n != canonical)
        bare = next((i for i, r in enumerate(self.rules) if r.takes(canonical, written=also)), None)
        if written is None:
            return self.rules[bare] if bare is not None else None
        index, rule, patterns = written
        registry = as_written.partition("/")[0]
        if (
            bare is None
            or index <= bare
            or any(plain_port(name_pattern(p)).partition("/")[0] == registry for p in patterns)
        ):
            return rule
        return self.rules[bare]

    def evaluate_statement(
        self, att: CompiledAttestation, statement_input: Mapping[str, Any]
    ) -> list[rego.RawFinding]:
        """Run an attestation's Rego over one statement (an evaluator per thread).

        Raises:
            PolicyError: the policy fails at run time.
        """
        if att.policy is None:
            return []
        # Engines live in the thread that made them, in a module-level thread-local: they are
        # dropped with their thread (or here, when their policy is gone), never on another thread
        # (regorus engines are unsendable).
        evaluators: dict[int, tuple[weakref.ref[rego.RegoPolicy], rego.RegoEvaluator]]
        evaluators = _THREAD.__dict__.setdefault("evaluators", {})
        key = id(att.policy)
        held = evaluators.get(key)
        if held is None or held[0]() is not att.policy:
            for stale in [k for k, (ref, _) in evaluators.items() if ref() is None]:
                del evaluators[stale]
            held = evaluators[key] = (weakref.ref(att.policy), att.policy.evaluator())
        return held[1].evaluate(statement_input)


def _load_root(name: str, files: Mapping[str, Path]) -> TrustRoot:
    if name == PUBLIC_GOOD:
        return TrustRoot.public_good()
    return TrustRoot.from_file(files[name], name=name)


def _root_hash(name: str, settings: ImagesSettings) -> str:
    path = settings.trust_roots.get(name)
    if path is None:
        return name
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:  # TrustRoot.from_file has read it already; this is a race with a deletion
        raise ConfigError(f"cannot read the trusted root: {e.strerror or e}", where=str(path)) from e


def _attestation_policy(
    rule: ImageRule, att: AttestationRequirement, data: Mapping[str, Any]
) -> rego.RegoPolicy | None:
    where = f"images.rules[{rule.name}].attestations[{att.name}]"
    if att.policy_path is not None:
        if not att.policy_path.exists():
            raise ConfigError("attestation policy not found", where=f"{where}: {att.policy_path}")
        modules = rego.load_modules(att.policy_path)
        if not modules:
            raise ConfigError("no .rego files found", where=f"{where}: {att.policy_path}")
    elif att.policy_text is not None:
        modules = [rego.Module(f"<{where}>", att.policy_text)]
    else:
        return None
    try:
        policy = rego.RegoPolicy(modules, data=data)
    except PolicyError as e:
        raise PolicyError(e.message, where=f"{where}: {e.where}".rstrip(": "), hint=e.hint) from e
    policy.drop_spare()  # evaluated on the verifier's threads, each with its own engine
    if not policy.rules:
        raise PolicyError(
            "the attestation policy has no deny, violation or warn rules",
            where=where,
            hint="write `deny contains msg if {...}` over input.predicate",
        )
    return policy
