"""Verifying images: resolve, find signatures and attestations, check them against the rule.

Owns: the verification of one image reference under the image policy —
digest pinning, n-of-m signature thresholds, attestations with their Rego
policies, multi-arch indexes (attestations on platform manifests too) — and
of many at once (a thread pool; concurrent requests for one image share a
verification through the cache). Every outcome is an `ImageResult` with the
evidence an auditor needs. "Could not verify" (the registry failed) is kept
apart from "verified bad" (the signatures do not satisfy the rule).
Leaves out: where the references come from and how findings are reported
(the gate), the cryptography (`trustgate.verify`) and the registry protocol
(`trustgate.oci`).
"""

from __future__ import annotations

import base64
import contextvars
import dataclasses
import datetime as dt
import functools
import json
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from trustgate import untrusted_json
from trustgate.artifacts import summaries
from trustgate.artifacts.cache import Lookup, MemoryCache, VerificationCache
from trustgate.artifacts.policy import (
    SEMANTICS_VERSION,
    Authority,
    CompiledAttestation,
    CompiledRule,
    ImagePolicy,
)
from trustgate.config import MAX_ARTIFACTS, MAX_PAYLOAD_BYTES, MAX_TOTAL_PAYLOAD_BYTES
from trustgate.errors import ConfigError, DecisionLogError, Error, PolicyError
from trustgate.manifests.images import TOO_DEEP, UNKNOWN_CHART_SOURCE, UNREADABLE_PATCH
from trustgate.model import ImageProblem, ImageResult
from trustgate.oci import deadline
from trustgate.oci.breaker import Breakers, GuardedRegistry
from trustgate.oci.client import Descriptor, Registry, RegistryError, compute_digest
from trustgate.oci.discovery import (
    PLACES,
    SIGNATURE_PLACES,
    Discovery,
    DiscoveryLimits,
    SignatureArtifact,
    Spending,
    discover,
)
from trustgate.oci.reference import InvalidReferenceError, Reference
from trustgate.verify import (
    Evidence,
    SignatureVerificationError,
    Statement,
    verify_bundle,
    verify_cosign_attestation,
    verify_cosign_signature,
)

# The registries whose bulkhead slot the calling batch holds, and those it was refused (with how
# many held them): `verify_many` sets them, `verify` in its threads reads them.
_BATCH: contextvars.ContextVar[tuple[frozenset[str], dict[str, int]]] = contextvars.ContextVar(
    "trustgate_image_batch", default=(frozenset(), {})
)
_log = logging.getLogger("trustgate.images")
# What to do about a field that may set images and is not read (`ImageUse.unresolvable`): an
# image-reference failure, never skipped, as the object's writer chose it.
_UNREAD: Final = {
    UNREADABLE_PATCH: "write the patch as literal JSON or YAML, with any image it sets (a parameter "
    "inside a value is fine), or set images in the template's containers; an exception for "
    "image-reference waives it",
    TOO_DEEP: "nest the object less deeply (a pod spec wrapped in fewer levels), or split it; an "
    "exception for image-reference waives it",
    UNKNOWN_CHART_SOURCE: "check the HelmRepository with the object that names it (its file too), in "
    "the namespace the chart looks in (sourceRef.namespace, else the object's own), or "
    "pull the chart through an OCIRepository pinned by ref.digest (spec.chartRef); an exception for "
    "image-reference waives it",
}
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"  # a DSSE bundle that is a signature
_MAX_REASONS = 3  # failure reasons quoted per authority; the rest are counted


@dataclass(slots=True)
class _Attempt:
    """What was learned about one artifact under one authority (verified once, used for both checks)."""

    evidence: Evidence | None = None
    statement: Statement | None = None
    failure: SignatureVerificationError | None = None


@dataclass(slots=True)
class _Found:
    digest: str  # the manifest the artifacts are attached to
    discovery: Discovery
    attempts: dict[tuple[int, str], _Attempt] = field(default_factory=dict)  # (id(artifact), authority)


class ImageVerifier:
    """Verifies image references against an `ImagePolicy`; thread-safe."""

    def __init__(
        self,
        policy: ImagePolicy,
        registry: Registry,
        *,
        cache: VerificationCache[ImageResult] | None = None,
        clock: Callable[[], float] = time.monotonic,
        concurrency: int | None = None,
        revocations: Callable[[], Collection[str]] | None = None,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        limits: DiscoveryLimits | None = None,
    ) -> None:
        """`revocations` gives the revoked summary and image digests (it may raise `Error`: then no
        summary counts; None: there is nowhere to read them, and no summary counts either, since a
        revoked one could not be told apart); `now` is the wall clock summaries are judged by;
        `limits` bound looking for one image's signatures (None: `DiscoveryLimits` with
        `images.registries.maxArtifacts`, `maxPayloadBytes` and `maxTotalPayloadBytes`)."""
        self.policy = policy
        self.limits = limits or DiscoveryLimits(
            max_artifacts=policy.settings.registries.max_artifacts,
            max_payload_bytes=policy.settings.registries.max_payload_bytes,
            max_total_payload_bytes=policy.settings.registries.max_total_payload_bytes,
        )
        self.revocations = revocations or _no_revocations
        self.now = now
        self.registry = registry
        settings = policy.settings
        self.concurrency = concurrency or settings.registries.concurrency
        self.deadline_seconds = settings.registries.deadline_seconds
        if cache is None:
            cache = MemoryCache(settings.cache.max_entries)
        if settings.cache.url is not None:
            from trustgate.artifacts.shared import SharedCache

            cache = SharedCache.from_config(settings.cache, local=cache, clock=clock)
        # Breakers live with the store when it has them, so every verifier over one store (the
        # webhook's evaluators) learns at once that a registry is down.
        breakers = getattr(cache, "breakers", None)
        if not isinstance(breakers, Breakers):
            breakers = Breakers()
        breakers.apply(settings.registries)  # the same settings for every verifier of one process
        self._registry = GuardedRegistry(registry, breakers)
        self._breakers = breakers
        self._results: Lookup[ImageResult] = Lookup(
            settings.cache, cache, clock=clock, recheck=self._still_counts
        )
        # Tags move: their digests are kept only `tagTtlSeconds` (a digest's result stays longer).
        tags = dataclasses.replace(settings.cache, ttl_seconds=settings.cache.tag_ttl_seconds)
        self._digests: Lookup[tuple[str, tuple[Mapping[str, str], ...]] | RegistryError] = Lookup(
            tags, None, clock=clock
        )

    def verify_many(self, references: Iterable[str]) -> dict[str, ImageResult]:
        """Verify each distinct reference once, `concurrency` at a time.

        The bulkhead counts callers, not images: one slot per registry the batch needs (what the
        cache cannot answer), held for the whole batch, so a Pod with five images of one registry
        holds one of its slots, as one evaluator.
        """
        unique = list(dict.fromkeys(references))
        needed = sorted({host for host in map(self._cold_registry, unique) if host is not None})
        held: list[str] = []
        refused: dict[str, int] = {}
        until = time.monotonic() + self._breakers.queue_seconds  # one wait for all of them
        for host in needed:
            busy = self._breakers.enter(host, wait=max(0.0, until - time.monotonic()))
            if busy is None:
                held.append(host)
            else:
                refused[host] = busy
        token = _BATCH.set((_BATCH.get()[0] | frozenset(held), {**_BATCH.get()[1], **refused}))
        try:
            if len(unique) <= 1 or self.concurrency <= 1:
                return {ref: self.verify(ref) for ref in unique}
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(unique))) as pool:
                # each in a copy of this context: the batch's slots go with it
                futures = [pool.submit(contextvars.copy_context().run, self.verify, ref) for ref in unique]
                return dict(zip(unique, (f.result() for f in futures), strict=True))
        finally:
            _BATCH.reset(token)
            for host in held:
                self._breakers.leave(host)

    def unresolvable(self, reference: str, reason: str, *, fix: str = "") -> ImageResult:
        """The result for an image whose digest cannot be known before it is deployed (`reason`):
        an `image-digest` failure where a rule covers it (the rule's mode decides), as for an
        unmatched image otherwise. Nothing is asked of the registry: a tag it holds now proves
        nothing.

        A policy failure, never "could not verify": whoever writes the object chooses the moving
        reference, and "could not verify" is answered by the failure policy, which admits in
        fail-open namespaces (found in review: an OCIRepository with `ref.tag` was admitted there,
        while the same source pinned to an unsigned digest was denied).

        `fix` replaces the way out (a Flux OCIRepository's `ref.digest`) where the object is another.
        """
        chart_source = reason.startswith(UNKNOWN_CHART_SOURCE)  # it goes on with what was checked
        unread = _UNREAD.get(UNKNOWN_CHART_SOURCE if chart_source else reason)
        if unread is not None:  # no reference at all: a field that may set one, not read
            message = f"{reference} {reason}" if chart_source else reason
            return ImageResult(
                reference, "failed", problems=[ImageProblem("image-reference", message, unread)]
            )
        try:
            ref = Reference.parse(reference)
        except InvalidReferenceError:
            return self.verify(reference)  # the reference's own problem, in the usual words
        name = f"{ref.registry}/{ref.repository}"
        rule = self.policy.rule_for(name)
        if rule is None:
            return self._unmatched(reference)
        return _failed(
            reference,
            rule,
            "image-digest",
            f"{reference} cannot be verified: {reason}",
            fix
            or "pin the artifact Flux deploys: ref.digest (sha256:...), written by the automation "
            "that picks versions, so each change is checked",
        )

    def node_local(self, reference: str, ref: Reference, why: str, *, ambiguous: bool = False) -> ImageResult:
        """The result at admission for an image on a node-local registry (`why`: what makes it one,
        `oci.reference.node_local`): an `image-registry` failure where a rule covers it, as for an
        unmatched image otherwise. Nothing is asked: the kubelet pulls from the node's own address,
        and trustgate would reach its own pod's. `ambiguous`: the registry is named by a single
        label instead (`oci.reference.single_label`), which trustgate's pod and the node resolve
        each their own way.

        A policy failure, never "could not verify": whoever writes the object chose the registry,
        and "could not verify" is answered by the failure policy, which admits in fail-open
        namespaces (found in review: `localhost:5000/app` was refused a connection and admitted
        there, while the kubelet pulled it from the node's loopback).
        """
        rule = self.policy.rule_for(ref.name)
        if rule is None:
            return self._unmatched(reference)
        if ambiguous:
            return _failed(
                reference,
                rule,
                "image-registry",
                f"{reference} cannot be verified at admission: its registry is {why}, which "
                "trustgate's pod resolves through its own search domains and the node's container "
                "runtime through the node's resolver (or a mirror it is configured with): the same "
                "name may be two registries, and trustgate would verify what its own finds",
                "name the registry by its fully qualified name (registry.example.com:5000, or "
                "registry.<namespace>.svc.cluster.local:5000 for a Service); where trustgate's pod "
                f"and the nodes resolve {ref.registry} to the same registry, list it under "
                "images.registries.nodeLocal; to admit such images unverified (a development "
                "cluster), add an exception whose rules name image-registry and whose images name "
                f'"{ref.registry}/**"',
            )
        return _failed(
            reference,
            rule,
            "image-registry",
            f"{reference} cannot be verified at admission: its registry is {why}, so the "
            "kubelet pulls it from the node it runs on (or from the registry the node's "
            "container runtime maps that name to, as kind, k3d and minikube set up for a local "
            "registry), which trustgate, asking from its own pod, does not reach",
            "push it to a registry that both the cluster and trustgate reach, or name the image "
            "by an address that trustgate's pod reaches the same registry at (in a development "
            "cluster, the registry container's name on the cluster's network); where trustgate "
            f"runs on the nodes' network, list {ref.registry} under "
            "images.registries.nodeLocal; to admit such images unverified (a development "
            "cluster), add an exception whose rules name image-registry and whose images name "
            f'"{ref.registry}/**"',
        )

    def _cold_registry(self, reference: str) -> str | None:
        """The registry `reference` needs (a rule matches and the cache cannot answer), else None."""
        try:
            ref = Reference.parse(reference)
            name = f"{ref.registry}/{ref.repository}"
            rule = self.policy.rule_for(name)
            if rule is None or self._warm(ref, name, rule):
                return None
        except Exception:  # `verify` meets it again, and fails that image alone
            return None
        return ref.registry

    def verify(self, reference: str) -> ImageResult:
        """Verify one reference; never raises an `Exception`.

        Whatever the image or the registry does is a result. An exception nobody expected (a
        bug, or bytes that reach one) fails this image alone, as a policy failure, and is logged
        with its traceback: escaping, it failed the whole request, which a fail-open namespace
        answers with an allow (found in review: a deeply nested referrer admitted an unsigned
        image). An engine's panic (no `Exception`) still goes up, to whoever rebuilds the engines.
        """
        started = time.perf_counter()
        try:
            return self._verify(reference, started)
        except Exception as e:
            _log.error("internal error while verifying %s", reference, exc_info=True)
            return self._internal_error(reference, e, started)

    def _internal_error(self, reference: str, error: Exception, started: float) -> ImageResult:
        """The failed result of a verification that raised `error` (not cached: the next one retries)."""
        try:
            ref = Reference.parse(reference)
            rule = self.policy.rule_for(f"{ref.registry}/{ref.repository}")
        except Exception:  # the failure to report is the first one
            rule = None
        cause = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        return ImageResult(
            reference,
            "failed",
            rule=rule.rule.name if rule is not None else None,
            mode=rule.rule.mode if rule is not None else None,
            problems=[
                ImageProblem(
                    "image-internal-error",
                    f"{reference} is not verified: trustgate failed while verifying it (internal error: "
                    f"{type(error).__name__}{': ' + cause if cause else ''})",
                    'a bug in trustgate: report it with the traceback it logged ("internal error while '
                    'verifying ..."); the image fails until it can be verified',
                )
            ],
            duration_ms=(time.perf_counter() - started) * 1000,
        )

    def _verify(self, reference: str, started: float) -> ImageResult:
        try:
            ref = Reference.parse(reference)
        except InvalidReferenceError as e:
            return ImageResult(
                reference,
                "failed",
                problems=[
                    ImageProblem(
                        "image-reference", str(e), e.hint or "write registry/repository[:tag][@sha256:...]"
                    )
                ],
            )
        name = f"{ref.registry}/{ref.repository}"
        rule = self.policy.rule_for(name)
        if rule is None:
            return self._unmatched(reference)
        with deadline.within(self.deadline_seconds, f"verifying {reference}") as budget:
            held, refused = _BATCH.get()
            if ref.registry in held or self._warm(ref, name, rule):  # a batch's slot, or the cache
                return self._verify_matched(reference, ref, name, rule, started)
            if ref.registry in refused:
                return self._busy(reference, ref, name, rule, refused[ref.registry], started)
            # The bulkhead: a bounded number of verifications use one registry at a time, so one
            # that hangs cannot hold every thread (the webhook's evaluators) of other images.
            busy = self._breakers.enter(ref.registry, wait=budget.remaining())
            if busy is not None:
                return self._busy(reference, ref, name, rule, busy, started)
            try:
                return self._verify_matched(reference, ref, name, rule, started)
            finally:
                self._breakers.leave(ref.registry)

    def _warm(self, ref: Reference, name: str, rule: CompiledRule) -> bool:
        """Whether the cache holds a fresh answer for `ref` (a peek: nothing is computed)."""
        now = self._results.clock()
        digest = ref.digest
        if digest is None:
            tagged = self._digests.store.get(_tag_key(ref, rule))
            if tagged is None or now >= tagged.fresh_until or isinstance(tagged.value, RegistryError):
                return False
            digest = tagged.value[0]
        return self._results.peek(result_key(rule, name, digest))  # VSA admissions re-checked

    def _busy(
        self, reference: str, ref: Reference, name: str, rule: CompiledRule, busy: int, started: float
    ) -> ImageResult:
        """No slot at the registry: a verified result still inside its stale window, else unverifiable."""
        now = self._results.clock()
        digest = ref.digest
        if digest is None:
            # A tag: only a mapping still fresh. Busy is load, not an outage: a stale mapping would
            # let whoever re-pointed the tag (and keeps the registry busy) run the old digest's verdict.
            tagged = self._digests.store.get(_tag_key(ref, rule))
            if (
                tagged is not None
                and now < tagged.fresh_until
                and not isinstance(tagged.value, RegistryError)
            ):
                digest = tagged.value[0]
        entry = self._results.store.get(result_key(rule, name, digest)) if digest else None
        if entry is not None and now < entry.stale_until and entry.value.status == "verified":
            pinned = self._digest_problems(reference, ref, name, rule)
            return dataclasses.replace(
                entry.value,
                reference=reference,
                resolved_from=ref.tag if ref.digest is None else None,
                problems=pinned + list(entry.value.problems),
                status="failed" if pinned else entry.value.status,
                cache="stale",
                duration_ms=(time.perf_counter() - started) * 1000,
            )
        error = RegistryError(
            "unavailable",
            f"{ref.registry} is busy: {busy} verifications are using it and none finished within "
            f"{self._breakers.queue_seconds:g} s (images.registries.maxRequestsPerRegistry); "
            f"{ref} was not asked",
            registry=ref.registry,
            reference=str(ref),
        )
        return _unverifiable(reference, rule, error, "resolve")

    @staticmethod
    def _digest_problems(reference: str, ref: Reference, name: str, rule: CompiledRule) -> list[ImageProblem]:
        """The rule's requireDigest, judged on the reference as written (whatever answers it)."""
        if rule.rule.require_digest and ref.digest is None:
            return [
                ImageProblem(
                    "image-digest",
                    f"{reference} is referenced by tag; image rule {rule.rule.name!r} requires a digest",
                    f"pin it: {name}@sha256:<digest> (the digest verified below, if any)",
                )
            ]
        return []

    def _verify_matched(
        self, reference: str, ref: Reference, name: str, rule: CompiledRule, started: float
    ) -> ImageResult:
        pinned = self._digest_problems(reference, ref, name, rule)
        if ref.digest is not None:
            # Pinned: the result is looked up before the registry is asked anything (another replica
            # may have verified it), and a registry that fails serves the stale result if allowed.
            digest, tag_cache = ref.digest, "hit"

            def compute() -> tuple[ImageResult, str]:
                # A summary names the digest it vouches for: judged before resolving (one round
                # trip fewer), which only the full verification needs.
                judged = self._summary(ref, rule, digest) if rule.acceptance is not None else None
                if judged is not None and judged[0] is not None:
                    return self._verify_digest(ref.with_digest(digest), rule, (), judged=judged)
                resolved = self._resolve(ref, rule)
                if isinstance(resolved, ImageResult):
                    return resolved, "error"
                return self._verify_digest(ref.with_digest(resolved[0]), rule, resolved[1], judged=judged)

            cached, how = self._results.fetch(result_key(rule, name, digest), compute)
        else:
            resolved = self._resolve(ref, rule)
            if isinstance(resolved, ImageResult):
                resolved.problems[:0] = pinned
                resolved.duration_ms = (time.perf_counter() - started) * 1000
                return resolved
            digest, platforms, tag_cache = resolved
            cached, how = self._results.fetch(
                result_key(rule, name, digest),
                lambda: self._verify_digest(ref.with_digest(digest), rule, platforms),
            )
        result = dataclasses.replace(
            cached,
            reference=reference,
            resolved_from=ref.tag if ref.digest is None else None,
            problems=pinned + list(cached.problems),
            cache="stale" if tag_cache == "stale" else how,  # an old tag mapping is stale evidence too
            duration_ms=(time.perf_counter() - started) * 1000,
        )
        if pinned and result.status == "verified":
            result.status = "failed"
        return result

    # -- steps ---------------------------------------------------------------

    def _unmatched(self, reference: str) -> ImageResult:
        action = self.policy.settings.unmatched
        if action == "allow":
            return ImageResult(reference, "unmatched")
        return ImageResult(
            reference,
            "unmatched",
            problems=[
                ImageProblem(
                    "image-no-policy",
                    f"no image rule matches {reference}",
                    "add an images.rules entry for it, or use an allowed registry",
                    blocking=action == "deny",
                )
            ],
        )

    def _resolve(
        self, ref: Reference, rule: CompiledRule
    ) -> tuple[str, tuple[Mapping[str, str], ...], str] | ImageResult:
        """The digest, platforms and how the cache answered; tags are resolved through the cache too.

        An index's platforms are listed only where the rule wants attestations (looked for at each
        platform): a signature over the index's digest covers whatever it names, so a rule that
        only wants signatures never reads them.
        """
        listed = bool(rule.attestations)

        def compute() -> tuple[tuple[str, tuple[Mapping[str, str], ...]] | RegistryError, str]:
            try:
                resolved = self._registry.resolve(ref, platforms=listed)
            except RegistryError as e:
                # Never the tag's old digest once its mapping has expired: whoever re-pointed the tag
                # would run under the old digest's verdict for the whole stale window, and an
                # "outage" is theirs to cause (one 429 or 5xx on the host trips its breaker). A
                # digest's verified result may still be served stale (`verify`): its content
                # cannot change.
                return e, "refused"
            platforms = tuple(
                {"platform": p.platform, "digest": p.digest, "mediaType": p.media_type}
                for p in resolved.platforms
            )
            return (resolved.digest, platforms), "ok"

        value, how = self._digests.fetch(_tag_key(ref, rule), compute)
        if isinstance(value, RegistryError):
            if value.kind in CONTENT_KINDS:
                return _bad_manifest(str(ref), rule, value)
            return _unverifiable(str(ref), rule, value, "resolve")
        return value[0], value[1], how

    def _verify_digest(
        self,
        ref: Reference,
        rule: CompiledRule,
        platforms: Sequence[Mapping[str, str]],
        *,
        judged: tuple[summaries.Accepted | None, list[str]] | None = None,
    ) -> tuple[ImageResult, str]:
        """`judged`: the rule's summaries, already judged (`_summary`) for this digest."""
        digest = ref.digest
        assert digest is not None  # `with_digest` above
        result = ImageResult(
            str(ref),
            "verified",
            rule=rule.rule.name,
            mode=rule.rule.mode,
            digest=digest,
            platforms=list(platforms),
        )
        if rule.acceptance is not None:
            # A fresh summary from a trusted verifier under this very rule stands in for verifying:
            # one referrers lookup and one signature. Cached in memory only, and every hit is
            # re-checked against the revocations and the summary's age (`_still_counts`).
            accepted, ignored = judged if judged is not None else self._summary(ref, rule, digest)
            if accepted is not None:
                result.summary = accepted.to_json() | ({"ignored": ignored} if ignored else {})
                return result, "summary"
            result.summary = {"path": "full", "ignored": ignored}
        # What a summary issued from this result is dated, however long the cache then serves it.
        result.verified_at = self.now().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # Every place where attestations are wanted: an artifact not looked at may be the newest
        # attestation, and deny (today's scan attached with `cosign attest` while yesterday's clean
        # one is a referrer). A rule wanting signatures only never reads the `.att` tag (found in
        # review: ten SBOMs there spent `maxTotalPayloadBytes` and failed a validly signed image).
        wanted = [digest] + ([p["digest"] for p in platforms] if rule.attestations else [])
        try:
            found = [
                _Found(d, f) for d, f in zip(wanted, self._discover(ref, wanted, _places(rule)), strict=True)
            ]
        except RegistryError as e:
            return _unverifiable(str(ref), rule, e, "discover"), "error"
        top, below = found[0], found[1:]
        if rule.authorities:
            self._check_signatures(rule, top, result, ref)
        for att in rule.attestations:
            self._check_attestation(att, ref, top, below, result)
        for item in found:
            if item.discovery.unexamined:
                result.problems.append(self._unexamined(ref, item))
            result.problems.extend(_unlisted(reason) for reason in item.discovery.unlisted)
            if item.discovery.oversized:
                result.problems.append(self._oversized(ref, item))
            if item.discovery.overspent:
                result.problems.append(self._overspent(ref, item))
        for problem in top.discovery.problems:
            result.problems.append(ImageProblem("image-artifact", problem, blocking=False))
        if any(p.blocking for p in result.problems):
            result.status = "failed"
        return result, "ok" if result.status == "verified" else "negative"

    def _unexamined(self, ref: Reference, item: _Found) -> ImageProblem:
        """Artifacts the discovery budget left unread: the image cannot be verified (fail closed).

        What was not read may be the denying attestation or the newest scan, and whoever can push
        decides how many artifacts come before it. A policy failure, not "could not verify": that
        would hand the decision to the failure policy, open in fail-open namespaces.
        """
        return ImageProblem(
            "image-artifact",
            f"{item.discovery.unexamined} signature or attestation artifact(s) attached to {ref.name}@"
            f"{item.digest} were not examined: a place (the referrers, a cosign tag) holds more than "
            f"images.registries.maxArtifacts ({self.limits.max_artifacts}), and any artifact not "
            "examined may deny the image, so it cannot be verified",
            "remove stale or unknown artifacts from the registry, or raise images.registries.maxArtifacts "
            f"(at most {MAX_ARTIFACTS})",
        )

    def _oversized(self, ref: Reference, item: _Found) -> ImageProblem:
        """Payloads too large to read (`Discovery.oversized`): the image cannot be verified.

        What was not read may be the denying attestation (today's scan of a big image, while an
        older clean one was small enough). A policy failure, as for artifacts past the budget.
        """
        oversized = item.discovery.oversized
        return ImageProblem(
            "image-artifact",
            f"{len(oversized)} signature or attestation payload(s) attached to {ref.name}@{item.digest} "
            f"were not read: larger than images.registries.maxPayloadBytes "
            f"({self.limits.max_payload_bytes} bytes): {'; '.join(oversized)}; any payload not read "
            "may deny the image, so it cannot be verified",
            "raise images.registries.maxPayloadBytes (at most "
            f"{MAX_PAYLOAD_BYTES}) to read them, or remove them from the registry",
        )

    def _overspent(self, ref: Reference, item: _Found) -> ImageProblem:
        """Payloads not read because the image's already weigh `maxTotalPayloadBytes`: the image
        cannot be verified, as for artifacts past the budget (whoever can push chose their weight)."""
        overspent = item.discovery.overspent
        shown = "; ".join(overspent[:_MAX_REASONS]) + (
            f" (and {len(overspent) - _MAX_REASONS} more)" if len(overspent) > _MAX_REASONS else ""
        )
        return ImageProblem(
            "image-artifact",
            f"{len(overspent)} signature or attestation payload(s) attached to {ref.name}@{item.digest} "
            f"were not read: the image's payloads already weigh images.registries.maxTotalPayloadBytes "
            f"({self.limits.max_total_payload_bytes} bytes): {shown}; any payload not read may deny "
            "the image, so it cannot be verified",
            "remove stale or unknown artifacts from the registry, or raise "
            f"images.registries.maxTotalPayloadBytes (at most {MAX_TOTAL_PAYLOAD_BYTES})",
        )

    def _summary(
        self, ref: Reference, rule: CompiledRule, digest: str
    ) -> tuple[summaries.Accepted | None, list[str]]:
        """The newest summary that counts for `digest`, and why the others were ignored.

        It may only ever save work, so it is tightly bounded (found in review: 64 junk summaries
        read one after the other ran out the admission deadline, and a fail-open namespace then
        admitted an unsigned image): at most `_SUMMARY_SHARE` of what is left of the
        verification's deadline (past it, stop looking: the full verification has the rest), and
        its registry failures and timeouts never count against the registry's breaker (whoever
        can push chooses how slow it is). Nothing of it is cached as the image's result: a
        failure here only means verifying in full.
        """
        acceptance = rule.acceptance
        assert acceptance is not None
        try:
            revoked = self.revocations()
        except Error as e:  # not knowing what is revoked, no summary can be trusted
            return None, [f"VSAs ignored: the revocations could not be read: {e.message}"]
        bare = Reference(registry=ref.registry, repository=ref.repository)
        with deadline.within(self._summary_seconds(), f"looking for VSAs of {bare.name}@{digest}"):
            try:
                descriptors, source = self._registry.tentative().referrers(bare, digest)
            except RegistryError as e:
                return None, [f"VSAs not looked up: {e.message}"]
            accepted, ignored, _ = self._select(bare, rule, acceptance, digest, descriptors, source, revoked)
        return accepted, ignored

    def _summary_seconds(self) -> float:
        """How long looking for summaries may take: a share of what is left of the deadline."""
        outer = deadline.current()
        left = self.deadline_seconds if outer is None else max(0.0, outer.remaining())
        return left * _SUMMARY_SHARE

    def _select(
        self,
        bare: Reference,
        rule: CompiledRule,
        acceptance: summaries.Acceptance,
        digest: str,
        descriptors: Sequence[Descriptor],
        source: str,
        revoked: Collection[str],
    ) -> tuple[summaries.Accepted | None, list[str], dict[str, str]]:
        """The summary admission uses among `descriptors`, why the others were ignored, and each
        referrer's reason by its digest (`inspect_summaries` shows them).

        The `summaries.MAX_READS` newest by their annotation (fewer where `maxArtifacts` is
        lower) are read (each a bundle of at most
        `_SUMMARY_BYTES`, `_SUMMARY_TOTAL_BYTES` in all) and screened (`summaries.screen`: every
        check but the signature); of those that may count, the `MAX_CANDIDATES` newest by the
        timeVerified they state are verified in full. Whoever can push chooses the annotations,
        and any number of unsigned entries: those that cannot count spend none of the signatures
        verified, but each uses up one read (a known limit, ADR 12: junk can force a full
        verification, never admit). Past the deadline set for looking (`_summary`), the rest is
        not read.
        """
        # Newest first by the annotation (whoever pushed wrote it): which are read when more than
        # maxArtifacts are attached, and the order of those stating the same timeVerified.
        marked = sorted(
            (
                d
                for d in descriptors
                if d.annotations.get(summaries.PREDICATE_ANNOTATION) == summaries.VSA_PREDICATE
            ),
            key=lambda d: d.annotations.get(summaries.CREATED_ANNOTATION, ""),
            reverse=True,
        )
        ignored: list[str] = []
        reasons: dict[str, str] = {}

        def ignore(referrer: str, message: str) -> None:
            ignored.append(message)
            reasons[referrer] = message

        def internal(doing: str, referrer: str, error: Exception) -> None:
            # A bug: the summary is ignored (it can only ever save work), not the image failed.
            _log.error("internal error while %s VSA %s of %s", doing, referrer, bare, exc_info=True)
            ignore(referrer, f"VSA from {referrer} ignored: internal error ({type(error).__name__})")

        now = self.now()
        screened: list[tuple[dt.datetime, Descriptor, bytes]] = []
        budget = min(_SUMMARY_TOTAL_BYTES, self.limits.max_total_payload_bytes)
        looking = deadline.current()
        read = 0
        reads = min(summaries.MAX_READS, self.limits.max_artifacts)
        for descriptor in marked[:reads]:
            if looking is not None and looking.remaining() <= 0:
                break  # out of time for looking: verify in full with the rest
            read += 1
            try:
                if descriptor.size > _SUMMARY_MANIFEST_BYTES:  # as listed: not even fetched
                    raise summaries.SummaryError(
                        descriptor.digest,
                        f"its manifest is {descriptor.size} bytes, more than a summary's "
                        f"({_SUMMARY_MANIFEST_BYTES})",
                    )
                payload, spent = self._summary_read(bare, descriptor.digest, max_bytes=budget)
                budget -= spent
                when = summaries.screen(
                    payload,
                    image_digest=digest,
                    image_name=bare.name,
                    acceptance=acceptance,
                    policy_digest=rule.policy_digest,
                    now=now,
                    revoked=revoked,
                )
            except summaries.SummaryError as e:
                if isinstance(e, _Unread):
                    budget -= e.spent
                ignore(descriptor.digest, _by_referrer(e, descriptor.digest))
                continue
            except Exception as e:
                internal("screening", descriptor.digest, e)
                continue
            screened.append((when, descriptor, payload))
        if len(marked) > read:
            rest = len(marked) - read
            why = (
                f"at most {reads} are read per image, the newest by their annotation"
                if read == min(len(marked), reads)
                else "the time set for looking for summaries ran out"
            )
            ignored.append(f"{rest} VSAs not looked at: {why}")
            for descriptor in marked[read:]:
                reasons[descriptor.digest] = f"VSA from {descriptor.digest} not looked at by admission: {why}"
        screened.sort(key=lambda item: item[0], reverse=True)  # stable: ties keep the order above
        for _, descriptor, payload in screened[: summaries.MAX_CANDIDATES]:
            try:
                accepted = summaries.judge(
                    payload,
                    image_digest=digest,
                    image_name=bare.name,
                    acceptance=acceptance,
                    policy_digest=rule.policy_digest,
                    now=now,
                    revoked=revoked,
                )
            except summaries.SummaryError as e:
                ignore(descriptor.digest, _by_referrer(e, descriptor.digest))
                continue
            except Exception as e:
                internal("judging", descriptor.digest, e)
                continue
            return dataclasses.replace(accepted, source=source, referrer=descriptor.digest), ignored, reasons
        if len(screened) > summaries.MAX_CANDIDATES:
            rest = len(screened) - summaries.MAX_CANDIDATES
            ignored.append(
                f"{rest} older VSAs not verified: at most {summaries.MAX_CANDIDATES} are, per image"
            )
            for _, descriptor, _ in screened[summaries.MAX_CANDIDATES :]:
                reasons[descriptor.digest] = (
                    f"VSA from {descriptor.digest} not verified: {summaries.MAX_CANDIDATES} newer ones "
                    "that may count were verified first, and admission verifies no more per image"
                )
        return None, ignored, reasons

    def inspect_summaries(self, reference: str) -> dict[str, Any]:
        """Every verification summary on an image, each with its statement and whether it counts.

        What `trustgate verify image --summary` shows. A summary "counts" under the image's rule
        when the rule accepts summaries and this one passes every check; the statement shown is
        the one in the bundle, signed or not (the verdict says which). `admission` says what an
        admission would do, through the same selection (`_select`): which summary it would use
        (`used` on that one), or that it would verify in full; a summary that counts on its own
        may still not be used (verified only after `MAX_CANDIDATES` newer ones that may count).
        `admission.denied` lists why admission fails the image through a summary too (a tag under
        a rule with requireDigest). `revocationsUnreadable`: why the decision log configured could
        not be read (then no summary counts, and what admission does is not known: it reads
        the revocations again).

        Raises:
            RegistryError: the image cannot be resolved or its referrers listed.
            InvalidReferenceError: `reference` is not an image reference.
        """
        ref = Reference.parse(reference)
        name = f"{ref.registry}/{ref.repository}"
        rule = self.policy.rule_for(name)
        digest = ref.digest or self._registry.resolve(ref).digest
        bare = Reference(registry=ref.registry, repository=ref.repository)
        descriptors, source = self._registry.referrers(bare, digest)
        found = sorted(
            (
                d
                for d in descriptors
                if d.annotations.get(summaries.PREDICATE_ANNOTATION) == summaries.VSA_PREDICATE
            ),
            key=lambda d: d.annotations.get(summaries.CREATED_ANNOTATION, ""),
            reverse=True,
        )
        unknown = ""  # why the revocations are not known: then nothing counts, as at admission
        unreadable = False  # a log configured and not read: what it revokes is not known
        try:
            revoked: Collection[str] = self.revocations()
        except Error as e:
            revoked, unknown, unreadable = frozenset(), e.message, isinstance(e, DecisionLogError)
        used: summaries.Accepted | None = None
        reasons: dict[str, str] = {}
        if rule is not None and rule.acceptance is not None:
            with deadline.within(self._summary_seconds(), f"looking for VSAs of {bare.name}@{digest}"):
                used, _, reasons = self._select(bare, rule, rule.acceptance, digest, found, source, revoked)
            if unknown:
                used = None
        shown = []
        for descriptor in found:
            entry: dict[str, Any] = {"referrer": descriptor.digest, "source": source}
            try:
                payload, _ = self._summary_read(bare, descriptor.digest)
            except summaries.SummaryError as e:
                shown.append(entry | {"counts": False, "reason": e.message})
                continue
            try:
                entry["digest"] = summaries.summary_digest(payload)
            except summaries.SummaryError:
                entry["bundleDigest"] = compute_digest(payload)  # unreadable: only the bytes name it
            statement = summaries.unverified_statement(payload)
            if statement is not None:
                entry["statement"] = statement
            if rule is None or rule.acceptance is None:
                entry |= {"counts": False, "reason": "no image rule accepts summaries for this image"}
            else:
                try:
                    accepted = summaries.judge(
                        payload,
                        image_digest=digest,
                        image_name=bare.name,
                        acceptance=rule.acceptance,
                        policy_digest=rule.policy_digest,
                        now=self.now(),
                        revoked=revoked,
                    )
                    entry |= {"counts": True, "verification": accepted.to_json()}
                    if unknown:
                        entry |= {
                            "counts": False,
                            "reason": f"it passes every other check, but the revocations could not be read: "
                            f"{unknown}",
                        }
                    elif used is None or used.referrer != descriptor.digest:
                        entry["notUsed"] = reasons.get(
                            descriptor.digest,
                            "admission uses another summary (a newer one that counts)"
                            if used is not None
                            else "admission verifies the image in full",
                        )
                except summaries.SummaryError as e:
                    entry |= {"counts": False, "reason": e.message}
            if used is not None and used.referrer == descriptor.digest:
                entry["used"] = True
            shown.append(entry)
        out: dict[str, Any] = {"reference": reference, "digest": digest, "summaries": shown}
        if rule is not None:
            out |= {"rule": rule.rule.name, "policyDigest": rule.policy_digest}
            if rule.acceptance is not None:
                out["admission"] = (
                    {"path": "summary", "referrer": used.referrer, "digest": used.digest}
                    if used is not None
                    else {"path": "full"}
                )
                if unreadable:
                    out["revocationsUnreadable"] = unknown
                # What admission fails the image for whatever the summary says (`verify`): a tag
                # where the rule requires a digest.
                pinned = self._digest_problems(reference, ref, name, rule)
                if pinned:
                    out["admission"]["denied"] = [p.message for p in pinned]
        return out

    def _still_counts(self, result: ImageResult) -> bool:
        """Whether a cached result may be served: a summary admission only while its summary counts."""
        if result.summary is None or result.summary.get("path") != "summary":
            return True
        try:
            revoked = self.revocations()
        except Error:  # not knowing what is revoked, no summary can be trusted
            return False
        return summaries.recheck(result.summary, revoked=revoked, now=self.now()) is None

    def _summary_read(
        self, ref: Reference, referrer: str, *, max_bytes: int | None = None
    ) -> tuple[bytes, int]:
        """The bundle of one summary referrer (embedded in its manifest, or its layer's blob), and
        the bytes read for it (the manifest's and the blob's).

        `max_bytes`: what admission still has to spend on summaries; the manifest is then read up
        to `_SUMMARY_MANIFEST_BYTES` and the blob up to `_SUMMARY_BYTES` (a VSA bundle is a few
        KiB), both within it and `maxPayloadBytes` (found in review: the manifest was read up to
        the client's 4 MiB whatever size the referrers index listed). None (`verify image
        --summary`): the client's manifest bound, and `maxPayloadBytes` for the bundle. Admission
        reads through `GuardedRegistry.tentative`.

        Raises:
            SummaryError: it cannot be fetched, is too large, or is not a one-layer manifest.
        """
        registry = self._registry if max_bytes is None else self._registry.tentative()
        manifest_limit = (
            None
            if max_bytes is None
            else min(max_bytes, _SUMMARY_MANIFEST_BYTES, self.limits.max_payload_bytes)
        )
        if manifest_limit is not None and manifest_limit <= 0:
            raise summaries.SummaryError(referrer, "not read: the bytes to read for summaries are spent")
        spent = 0  # what was read, or may have been (a read stopped at its limit)
        try:
            try:
                manifest = registry.manifest(ref, referrer, max_bytes=manifest_limit)
            except RegistryError as e:
                if e.kind == "too-large" and manifest_limit is not None:
                    spent = manifest_limit
                    raise summaries.SummaryError(
                        referrer,
                        f"its manifest is more than the {manifest_limit} bytes left to read for a "
                        f"summary (at most {_SUMMARY_MANIFEST_BYTES})",
                    ) from e
                raise
            if manifest is None:
                raise summaries.SummaryError(referrer, "listed, but its manifest does not exist")
            spent = len(manifest.raw)
            limit = (
                self.limits.max_payload_bytes
                if max_bytes is None
                else max(0, min(max_bytes - spent, _SUMMARY_BYTES, self.limits.max_payload_bytes))
            )
            layers = manifest.descriptors("layers")
            if len(layers) != 1 or layers[0].size > limit:
                raise summaries.SummaryError(
                    referrer, f"malformed: not one bundle layer of at most {limit} bytes"
                )
            embedded = summaries.embedded_bundle(manifest.json, layers[0])
            if embedded is not None:  # one round trip fewer (a registry serves blobs slower)
                return embedded, spent
            try:
                blob = registry.blob(ref, layers[0].digest, max_bytes=limit)
            except RegistryError as e:
                if e.kind == "too-large":  # larger than its descriptor says: read up to the limit
                    spent += limit
                raise
            return blob, spent + len(blob)
        except summaries.SummaryError as e:
            raise _Unread(e.who, e.reason, spent=spent) from e
        except RegistryError as e:
            raise _Unread(referrer, f"could not be fetched ({e.kind}): {e.message}", spent=spent) from e
        except ValueError as e:
            raise _Unread(referrer, f"malformed manifest: {e}", spent=spent) from e

    def _check_signatures(
        self, rule: CompiledRule, found: _Found, result: ImageResult, ref: Reference
    ) -> None:
        artifacts = [a for a in found.discovery.signatures if a.kind != "cosign-dsse"]
        authorities = list({a.name: a for a in rule.authorities}.values())  # distinct, in order
        # Which signatures verify for which authority, then which signer made each (`_signers`).
        verified: list[tuple[str, int, SignatureArtifact, Evidence]] = []
        reasons: dict[str, list[str]] = {}
        for authority in authorities:
            for position, artifact in enumerate(artifacts):
                attempt = self._attempt(found, artifact, authority)
                if attempt.evidence is not None and _is_signature(attempt.statement):
                    verified.append((authority.name, position, artifact, attempt.evidence))
                elif attempt.failure is not None:
                    reasons.setdefault(authority.name, []).append(attempt.failure.reason)
                elif attempt.statement is not None:
                    reasons.setdefault(authority.name, []).append(
                        f"a {attempt.statement.predicate_type} attestation is not a signature"
                    )
        can: dict[str, dict[str, tuple[SignatureArtifact, Evidence]]] = {}
        signers = _signers([(position, evidence) for _, position, _, evidence in verified])
        for (name, _, artifact, evidence), signer in zip(verified, signers, strict=True):
            can.setdefault(name, {}).setdefault(signer, (artifact, evidence))
        # n of m counts signers: one signer stands for at most one authority, even when two
        # authorities would both accept it (overlapping identities, the same key twice).
        matched = _match({name: list(options) for name, options in can.items()})
        satisfied = [a.name for a in authorities if a.name in matched]
        for name in satisfied:
            artifact, evidence = can[name][matched[name]]
            result.signatures.append(
                _evidence(evidence) | {"source": artifact.source} | _artifact_digest(artifact)
            )
        for authority in authorities:
            if authority.name in can and authority.name not in matched:
                reasons.setdefault(authority.name, []).insert(
                    0,
                    "its only valid signatures are already counted for another authority (one "
                    "signer: they share a signature, certificate, key or identity with it)",
                )
        threshold = rule.rule.threshold
        if len(satisfied) >= threshold:
            return
        wanted = ", ".join(a.name for a in authorities)
        if not artifacts:
            message = (
                f"no signatures found for {result.reference}: the registry has none in the referrers "
                f"of {found.digest} nor in the {found.digest.replace(':', '-')}.sig tag"
            )
            fix = "sign the image (e.g. `cosign sign`) and push the signature to the same repository"
            signed = self._signed_platforms(ref, found.digest, result.platforms)
            if signed:
                message += (
                    f"; it is a multi-platform index, and the manifest pins the index digest, which is "
                    f"what the rule verifies, but only its platform manifests are signed "
                    f"({', '.join(signed)})"
                )
                fix = (
                    f"sign the index itself: `cosign sign {ref.registry}/{ref.repository}@{found.digest}` "
                    "(`--recursive` signs the index and every platform)"
                )
        else:
            parts = []
            for authority in authorities:
                if authority.name in satisfied:
                    continue
                said = reasons.get(authority.name, [])
                shown = "; ".join(dict.fromkeys(said[:_MAX_REASONS]))
                more = f" (and {len(said) - _MAX_REASONS} more)" if len(said) > _MAX_REASONS else ""
                parts.append(
                    f"{authority.name}: {shown}{more}" if shown else f"{authority.name}: no signature"
                )
            need = f"{threshold} of [{wanted}]" if len(authorities) > 1 else wanted
            message = (
                f"{result.reference} is not signed as image rule {rule.rule.name!r} requires ({need}; "
                f"{len(satisfied)} verified): " + "; ".join(parts)
            )
            fix = "sign it with an identity or key the rule trusts, or correct the rule's authorities"
        result.problems.append(ImageProblem("image-signature", message, fix))

    def _discover(self, ref: Reference, digests: Sequence[str], places: Sequence[str]) -> list[Discovery]:
        """What is attached to each of `digests` in `places`, the index and its platforms looked
        at together, the payload bytes of all of them counted together (`Spending`).

        Raises:
            RegistryError: the first failure, in the order of `digests`.
        """
        spending = Spending(self.limits.max_total_payload_bytes)
        if len(digests) == 1:
            return [
                discover(
                    self._registry, ref, digests[0], limits=self.limits, places=places, spending=spending
                )
            ]
        # Threads of this verification only (discover() itself waits on the shared discovery pool),
        # each in a copy of the caller's context so the deadline goes with it.
        with ThreadPoolExecutor(max_workers=min(self.limits.platform_fanout, len(digests))) as pool:
            futures = [
                pool.submit(
                    contextvars.copy_context().run,
                    functools.partial(
                        discover,
                        self._registry,
                        ref,
                        d,
                        limits=self.limits,
                        places=places,
                        spending=spending,
                    ),
                )
                for d in digests
            ]
            return [future.result() for future in futures]

    def _signed_platforms(
        self, ref: Reference, digest: str, platforms: Sequence[Mapping[str, str]]
    ) -> list[str]:
        """Platforms of an index that carry signatures ("linux/amd64 (sha256:...)"), for the message.

        Where the rule wants no attestations, the platforms were not listed (`_resolve`): listed
        here, for the hint only. Advice after the verdict, so tightly bounded (found in review: 16
        platforms with heavy `.sig` tags, each with its own budget, ran out the admission deadline,
        and a fail-open namespace admitted the unsigned image): the first `_HINT_PLATFORMS`
        platforms, `_HINT_ARTIFACTS` artifacts per place, `_HINT_BYTES` read in all, and
        `_HINT_SECONDS` (at most half of what is left of the verification's deadline). Whatever
        runs out, or fails, drops the hint; the "no signatures" failure stands.
        """
        outer = deadline.current()
        seconds = _HINT_SECONDS if outer is None else min(_HINT_SECONDS, outer.remaining() / 2)
        if seconds <= 0:
            return []
        limits = dataclasses.replace(self.limits, max_artifacts=_HINT_ARTIFACTS)
        spending = Spending(_HINT_BYTES)
        signed = []
        with deadline.within(seconds, f"looking for signed platforms of {ref.name}@{digest}"):
            try:
                if not platforms:
                    resolved = self._registry.resolve(ref.with_digest(digest), platforms=True)
                    platforms = [{"platform": p.platform, "digest": p.digest} for p in resolved.platforms]
                for p in platforms[:_HINT_PLATFORMS]:
                    found = discover(
                        self._registry,
                        ref,
                        p["digest"],
                        limits=limits,
                        places=SIGNATURE_PLACES,
                        spending=spending,
                    )
                    if found.overspent:
                        return []  # the budget ran out: no hint rather than a partial one
                    if any(a.kind != "cosign-dsse" for a in found.signatures):
                        signed.append(f"{p.get('platform', 'unknown')} ({p['digest'][:19]}...)")
            except RegistryError:
                return []  # a hint only: a timeout or failure drops it
        return signed

    def _check_attestation(
        self,
        att: CompiledAttestation,
        ref: Reference,
        top: _Found,
        below: Sequence[_Found],
        result: ImageResult,
    ) -> None:
        name = att.requirement.name
        wanted = att.requirement.predicate_type
        verdict_top, notes_top = self._attestation_at(att, ref, top, result)
        verdicts = [self._attestation_at(att, ref, f, result) for f in below]
        denied = [(v, n) for v, n in [(verdict_top, notes_top), *verdicts] if v == "denied"]
        met = verdict_top == "passed" or (bool(verdicts) and all(v == "passed" for v, _ in verdicts))
        if denied:
            for _, notes in denied:
                for message in notes:
                    result.problems.append(
                        ImageProblem(
                            "image-attestation",
                            message,
                            f"rebuild or rescan so the {name} attestation passes its policy",
                            attestation=name,
                        )
                    )
            return
        if met:
            return
        reasons = notes_top or [n for _, notes in verdicts for n in notes]
        names = {p["digest"]: p.get("platform", "unknown") for p in result.platforms}
        lacking = [f for f, (v, _) in zip(below, verdicts, strict=True) if v != "passed"]
        for item in lacking:  # the record says "missing" where the decision would otherwise show a pass
            result.attestations.append(
                {
                    "name": name,
                    "predicateType": wanted,
                    "digest": item.digest,
                    "platform": names.get(item.digest, "unknown"),
                    "verdict": "missing",
                }
            )
        if below and len(lacking) < len(below):
            shown = ", ".join(f"{names.get(f.digest, 'unknown')} ({f.digest[:19]}...)" for f in lacking)
            where = (
                f"{top.digest} (the index) nor on platform {shown}, while the other "
                f"{len(below) - len(lacking)} platform(s) have one; every platform needs it when the index "
                "has none"
            )
        else:
            where = f"{top.digest}" + (f" nor on any of its {len(below)} platform manifests" if below else "")
        detail = f": {'; '.join(dict.fromkeys(reasons[:_MAX_REASONS]))}" if reasons else ""
        result.problems.append(
            ImageProblem(
                "image-attestation",
                f"no verified {name} attestation ({wanted}) signed by "
                f"{', '.join(a.name for a in att.authorities)} for {result.reference} at {where}{detail}",
                f"attach the attestation (e.g. `cosign attest --type {wanted}`) signed by a trusted identity"
                + (" to each platform listed, or once to the index" if lacking and below else ""),
                attestation=name,
            )
        )

    def _attestation_at(
        self, att: CompiledAttestation, ref: Reference, found: _Found, result: ImageResult
    ) -> tuple[str, list[str]]:
        """("passed" | "denied" | "missing", messages) for one manifest digest.

        Of the verified statements of the wanted type, the newest by a trusted
        time (the transparency log's integrated time, verified with its
        inclusion promise) is judged: scans are attached again as databases
        change, and an older clean scan must not hide today's findings, nor an
        older one block a fresh pass. Those older by that time are recorded as
        superseded. A statement without a trusted time (a key signature kept
        out of the log; a timestamp not verified) cannot be placed: the order
        a registry lists artifacts in is whoever can push's to choose. So each
        of those is judged too, beside the newest timed one, and any denial
        denies.
        """
        wanted = att.requirement.predicate_type
        candidates = [
            a
            for a in (*found.discovery.signatures, *found.discovery.attestations)
            if a.kind != "cosign-simplesigning"
        ]
        reasons: list[str] = []
        verified: dict[str, tuple[SignatureArtifact, Statement, Evidence]] = {}  # by envelope
        for authority in att.authorities:
            for artifact in candidates:
                attempt = self._attempt(found, artifact, authority)
                if attempt.failure is not None:
                    claimed = _claimed_predicate_type(artifact)
                    if claimed is not None and claimed != wanted:
                        continue  # about another attestation (or a signature): not this one's reason
                    if artifact.kind == "cosign-dsse" or attempt.failure.code != "malformed":
                        reasons.append(f"{authority.name}: {attempt.failure.reason}")
                    continue
                statement, evidence = attempt.statement, attempt.evidence
                if statement is None or evidence is None or statement.predicate_type != wanted:
                    continue
                verified.setdefault(statement.envelope_sha256, (artifact, statement, evidence))
        if not verified:
            return "missing", reasons
        times = [t for _, _, e in verified.values() if (t := _trusted_time(e)) is not None]
        newest = max(times, default=None)
        judged = [v for v in verified.values() if _trusted_time(v[2]) in (None, newest)]
        for artifact, statement, evidence in verified.values():
            if _trusted_time(evidence) not in (None, newest):
                result.attestations.append(
                    _attestation_record(att, found.digest, artifact, statement, evidence, "superseded")
                )
        denials: list[str] = []
        for artifact, statement, evidence in judged:
            messages, warnings, error = self._run_policy(att, statement, evidence, ref, found.digest)
            record = _attestation_record(
                att,
                found.digest,
                artifact,
                statement,
                evidence,
                "denied" if (messages or error) else "passed",
            )
            if messages or warnings:
                record["messages"] = messages + warnings
            result.attestations.append(record)
            for warning in warnings:
                result.problems.append(
                    ImageProblem(
                        "image-attestation", warning, blocking=False, attestation=att.requirement.name
                    )
                )
            denials.extend([error] if error else messages)
        if denials and len(judged) > 1:
            denials[-1] += (
                f" (of {len(judged)} {att.requirement.name} attestations with no trusted time to tell "
                "which is newest: signed without a transparency log, or logged in the same second; each "
                "must pass: remove the stale one from the registry, or sign with a log)"
            )
        return ("denied", denials) if denials else ("passed", [])

    def _run_policy(
        self, att: CompiledAttestation, statement: Statement, evidence: Evidence, ref: Reference, digest: str
    ) -> tuple[list[str], list[str], str]:
        """(deny messages, warn messages, evaluation error) of the attestation's Rego."""
        document = {
            "predicateType": statement.predicate_type,
            "predicate": statement.predicate,
            "subject": [{"name": n, "digest": dict(d)} for n, d in statement.subjects],
            "signer": _evidence(evidence),
            "image": {"reference": f"{ref.registry}/{ref.repository}", "digest": digest},
        }
        try:
            raw = self.policy.evaluate_statement(att, document)
        except PolicyError as e:
            return [], [], f"the {att.requirement.name} attestation policy failed to evaluate: {e.message}"
        name = att.requirement.name
        deny = [
            f"{name} attestation of {ref.repository}@{digest[:19]}: {f.message}" for f in raw if f.blocking
        ]
        warn = [
            f"{name} attestation of {ref.repository}@{digest[:19]}: {f.message}"
            for f in raw
            if not f.blocking
        ]
        return deny, warn, ""

    def _attempt(self, found: _Found, artifact: SignatureArtifact, authority: Authority) -> _Attempt:
        key = (id(artifact), authority.name)
        attempt = found.attempts.get(key)
        if attempt is None:
            attempt = found.attempts[key] = _verify_artifact(artifact, found.digest, authority)
        return attempt


def _verify_artifact(artifact: SignatureArtifact, digest: str, authority: Authority) -> _Attempt:
    annotations = artifact.annotations
    cosign: dict[str, Any] = {
        "certificate": annotations.get("dev.sigstore.cosign/certificate"),
        "chain": annotations.get("dev.sigstore.cosign/chain"),
        "rekor_bundle": annotations.get("dev.sigstore.cosign/bundle"),
    }
    try:
        if artifact.kind == "sigstore-bundle":
            evidence, statement = verify_bundle(artifact.payload, digest=digest, authority=authority)
            return _Attempt(evidence, statement)
        if artifact.kind == "cosign-simplesigning":
            signature = annotations.get("dev.cosignproject.cosign/signature", "")
            evidence = verify_cosign_signature(
                payload=artifact.payload, signature=signature, digest=digest, authority=authority, **cosign
            )
            return _Attempt(evidence)
        evidence, statement = verify_cosign_attestation(
            envelope=artifact.payload, digest=digest, authority=authority, **cosign
        )
        return _Attempt(evidence, statement)
    except SignatureVerificationError as e:
        return _Attempt(failure=e)


def _no_revocations() -> Collection[str]:
    """The revocations where there is nowhere to read them: none can be trusted to be missing.

    Raises:
        ConfigError: always.
    """
    raise ConfigError(
        "there is no decision log to read them from, and a summary revoked there would count",
        hint="configure decisionLog (where `trustgate summaries revoke` records revocations)",
    )


def _trusted_time(evidence: Evidence) -> str | None:
    """The time a statement can be ordered by: the log's integrated time, verified (RFC 3339 UTC,
    so it sorts as text); None without one (no log, or a time that was not verified)."""
    return evidence.integrated_time if evidence.timestamp_source == "transparency-log" else None


def _claimed_predicate_type(artifact: SignatureArtifact) -> str | None:
    """The predicate type an artifact says it has, unverified (only to pick which reasons to quote).

    A cosign signature or a message-signature bundle claims the signature type; None when the
    artifact does not say (unreadable, or a kind that carries none).
    """
    if artifact.kind == "cosign-simplesigning":
        return COSIGN_SIGN_PREDICATE
    annotated = artifact.annotations.get("predicateType")
    if annotated:
        return annotated
    try:
        document = untrusted_json.loads(artifact.payload)
        if artifact.kind == "sigstore-bundle":
            if "messageSignature" in document:
                return COSIGN_SIGN_PREDICATE
            document = document["dsseEnvelope"]
        statement = untrusted_json.loads(base64.b64decode(document["payload"]))
        claimed = statement["predicateType"]
    except (ValueError, KeyError, TypeError):
        return None
    return claimed if isinstance(claimed, str) else None


def _attestation_record(
    att: CompiledAttestation,
    digest: str,
    artifact: SignatureArtifact,
    statement: Statement,
    evidence: Evidence,
    verdict: str,
) -> dict[str, Any]:
    return {
        "name": att.requirement.name,
        "predicateType": statement.predicate_type,
        "digest": digest,
        "envelope": statement.envelope_sha256,
        "source": artifact.source,
        "signer": _evidence(evidence),
        "verdict": verdict,
    } | _artifact_digest(artifact)


def _artifact_digest(artifact: SignatureArtifact) -> dict[str, str]:
    """The digest of the bytes verified (a bundle, a payload or an envelope), as summaries cite them."""
    return {"artifact": artifact.layer_digest} if artifact.layer_digest else {}


def _marks(position: int, evidence: Evidence) -> list[str]:
    """What names the signer of one verified signature: the signature itself (its place among
    the image's signatures), its key, its certificate, and each identity (OIDC issuer and SAN)
    of its certificate; two signatures sharing any of these are one signer (`_signers`)."""
    marks = [f"signature {position}"]
    if evidence.key_id:
        marks.append(f"key {evidence.key_id}")
    if evidence.certificate_sha256:
        marks.append(f"certificate {evidence.certificate_sha256}")
    if evidence.method == "keyless" and evidence.issuer is not None:
        identities = evidence.identities or ((evidence.subject,) if evidence.subject else ())
        marks.extend("identity " + json.dumps([evidence.issuer, i]) for i in identities)
    return marks


def _signers(verified: Sequence[tuple[int, Evidence]]) -> list[str]:
    """The signer of each verified signature (`position`, `evidence`), as a label: signatures
    that share a signature, key, certificate or identity (`_marks`), directly or through
    others, have one label. A threshold counts these labels, so one signer is never two.

    Found in review: the signer was the certificate's first identity, or the key, chosen per
    authority, so one person met a threshold of two: certificates `[x, alice]` and
    `[y, alice]` under two authorities that trust alice; two certificates for one key; one
    keyless bundle counted as alice by a keyless authority and as its certificate's key by a key
    authority. A certificate proves its key holder is every identity it names, and a key signs
    for whoever holds it (as TUF counts a threshold in distinct keys): each is one signer with
    everything it shares a mark with. Signatures by one workflow with a certificate per signing
    are one signer too (their identity), as before.
    """
    parent: dict[str, str] = {}

    def root(mark: str) -> str:
        while parent.setdefault(mark, mark) != mark:
            parent[mark] = parent[parent[mark]]
            mark = parent[mark]
        return mark

    marked = [_marks(position, evidence) for position, evidence in verified]
    for marks in marked:
        first = root(marks[0])
        for mark in marks[1:]:
            parent[root(mark)] = first
    return [root(marks[0]) for marks in marked]


def _match(options: Mapping[str, list[str]]) -> dict[str, str]:
    """A maximum matching of authorities to credentials (each credential used once).

    Authorities and signatures per image are few: augmenting paths are plenty.
    """
    owner: dict[str, str] = {}  # credential -> authority

    def assign(authority: str, seen: set[str]) -> bool:
        for credential in options[authority]:
            if credential in seen:
                continue
            seen.add(credential)
            if credential not in owner or assign(owner[credential], seen):
                owner[credential] = authority
                return True
        return False

    for authority in options:
        assign(authority, set())
    return {authority: credential for credential, authority in owner.items()}


def _evidence(evidence: Evidence) -> dict[str, Any]:
    """The evidence as the decision records it: camelCase keys, no empty values."""
    out = {}
    for key, value in evidence.to_json().items():
        if value is None:
            continue
        head, *rest = key.split("_")
        out[head + "".join(part.title() for part in rest)] = value
    return out


def _is_signature(statement: Statement | None) -> bool:
    return statement is None or statement.predicate_type == COSIGN_SIGN_PREDICATE


def _unverifiable(reference: str, rule: CompiledRule, error: RegistryError, step: str) -> ImageResult:
    doing = {"resolve": "resolve", "discover": "fetch the signatures of"}[step]
    return _unverifiable_result(
        reference,
        rule,
        f"could not verify {reference}: could not {doing} it ({error.kind}): {error.message}",
        _REGISTRY_FIX.get(error.kind, "check that the registry is reachable, then retry"),
    )


# What the image's own manifest or index is, as served: only whoever can push it (or a registry
# that serves other bytes than were pushed, broken or tampered with) makes it so. The image then
# fails (`image-manifest`), never "could not verify": that answer goes to the failure policy, open
# in fail-open namespaces, and whoever can push must never reach it (found in review: an unsigned
# index listing 129 platforms, or nesting 5 deep, was admitted there). A tag or digest that does
# not exist is theirs too: admitted, it could be pushed after the admission. Outages (connection,
# TLS, timeouts, 429, 5xx, a breaker open) and refusals of trustgate's credentials (401, 403)
# stay could-not-verify (ADR 5).
def _places(rule: CompiledRule) -> tuple[str, ...]:
    """Where to look for what `rule` wants: the `.att` tag only where it wants attestations."""
    return PLACES if rule.attestations else SIGNATURE_PLACES


# Bounds of the "only its platforms are signed" hint (`_signed_platforms`): advice, never worth
# the verdict's time.
# Looking for verification summaries before verifying in full (`_summary`): it may only save work.
_SUMMARY_SHARE: Final = 0.25  # of what is left of the verification's deadline
_SUMMARY_BYTES: Final = 256 * 1024  # one summary's bundle (a VSA bundle is a few KiB)
_SUMMARY_MANIFEST_BYTES: Final = 2 * _SUMMARY_BYTES  # its manifest, the bundle embedded (base64)
_SUMMARY_TOTAL_BYTES: Final = 1024 * 1024  # all of one image's summaries read (and maxTotalPayloadBytes)
_HINT_PLATFORMS: Final = 4  # platforms looked at
_HINT_ARTIFACTS: Final = 2  # artifacts per place and platform
_HINT_BYTES: Final = 256 * 1024  # payload bytes read in all (a signature is a few KiB)
_HINT_SECONDS: Final = 1.0  # at most; and at most half of what is left of the deadline

CONTENT_KINDS: Final = frozenset(
    {"not-found", "too-large", "bad-media-type", "invalid-manifest", "loop", "digest-mismatch"}
)


class _Unread(summaries.SummaryError):
    """A summary referrer that does not count, and the bytes read for it (or that may have been:
    a read stopped at its limit), which count in what admission reads for summaries."""

    def __init__(self, who: str, reason: str, *, spent: int) -> None:
        super().__init__(who, reason)
        self.spent = spent


def _by_referrer(error: summaries.SummaryError, referrer: str) -> str:
    """Why a summary was ignored, naming the referrer manifest it was found in where the reason
    named a digest (the bundle's or the summary's, which no listing shows; a verifier id stays)."""
    if error.who.startswith("sha") and ":" in error.who and error.who != referrer:
        return summaries.SummaryError(referrer, error.reason).message
    return error.message


def _bad_manifest(reference: str, rule: CompiledRule, error: RegistryError) -> ImageResult:
    return _failed(
        reference,
        rule,
        "image-manifest",
        f"{reference} cannot be verified: {error.message}",
        _REGISTRY_FIX.get(error.kind, "push a normal image or index, or pin the digest of one"),
    )


def _failed(reference: str, rule: CompiledRule, check: str, message: str, fix: str) -> ImageResult:
    """A policy failure of `reference` under `rule`: one problem, found before anything was verified."""
    return ImageResult(
        reference,
        "failed",
        rule=rule.rule.name,
        mode=rule.rule.mode,
        problems=[ImageProblem(check, message, fix)],
    )


def _unverifiable_result(reference: str, rule: CompiledRule, message: str, fix: str) -> ImageResult:
    return ImageResult(
        reference,
        "unverifiable",
        rule=rule.rule.name,
        mode=rule.rule.mode,
        problems=[ImageProblem("image-unverifiable", message, fix)],
    )


_REGISTRY_FIX = {
    "unauthorized": "give trustgate credentials (Docker config.json; images.registries.dockerConfig)",
    "forbidden": "the credentials lack pull access to this repository",
    "not-found": "check the image name and tag; it does not exist in the registry",
    "rate-limited": "the registry is rate limiting; retry later or authenticate for a higher limit",
    "tls": "trust the registry's CA with images.registries.caFile",
    "too-large": "the manifest exceeds trustgate's size limit; it is not a normal image manifest",
    # The registry answered with something that is not a normal image: retrying will not help.
    "invalid-manifest": "the reference names something that is not a normal image or index (at most 128 "
    "platforms); push one, or pin the digest of one",
    "loop": "the reference names an index that loops or nests too deep; push a normal index, or pin a digest",
    "bad-media-type": "the reference names something that is not an OCI or Docker image manifest or index; "
    "push one, or pin the digest of one",
    "digest-mismatch": "the registry served bytes that do not match their digest; the registry or a proxy "
    "in front of it is broken or tampered with",
    "unavailable": "the registry failed just before (marked down for a few seconds) or is busy with other "
    "verifications; trustgate asks again by itself (a verified result is served stale meanwhile, within "
    "images.cache.staleIfErrorSeconds)",
    "timeout": "the registry is slow or hung; images.registries.deadlineSeconds bounds each verification",
    "unexpected-status": "the registry, or a proxy in front of it, answered with an HTTP status the "
    "registry API does not use; check the proxy settings and the registry's health",
}


def _tag_key(ref: Reference, rule: CompiledRule) -> str:
    """The key of `ref`'s resolution: with its platforms listed where the rule wants attestations."""
    return str(ref) if rule.attestations else f"{ref} (index only)"


def result_key(rule: CompiledRule, name: str, digest: str) -> str:
    """The cache key of `name@digest`'s result under `rule`, and of this version of verifying."""
    return f"v{SEMANTICS_VERSION}|{rule.digest}|{name}@{digest}"


def _unlisted(reason: str) -> ImageProblem:
    """Referrers that could not be listed (`Discovery.unlisted`): the image cannot be verified.

    Whoever can push referrers decides how many there are, and so whether the registry's listing
    pages past its limit or outweighs it; what the listing holds (the denying attestation, the
    newest scan) is then unknown. A policy failure, as for artifacts past the budget: "could not
    verify" would hand the decision to the failure policy, open in fail-open namespaces.
    """
    return ImageProblem(
        "image-artifact",
        f"{reason}; an artifact it holds may deny the image, so it cannot be verified",
        "remove stale or unknown referrers from the registry (or mend its referrers listing)",
    )
