"""Finding the signatures and attestations attached to an image digest.

Owns: looking in every place they live — the OCI 1.1 referrers API (or the
`sha256-<hex>` referrers tag when a registry lacks it) for Sigstore bundles
and cosign artifacts, and the cosign tag scheme (`sha256-<hex>.sig` with
simple-signing layers, `sha256-<hex>.att` with DSSE layers) — and fetching
their payloads, bounded, the places and a digest's referrers (a few at a
time) at once. Leaves out: whether any of it verifies
(trustgate.verify) and what the policy wants (trustgate.artifacts).

A registry that cannot be asked at all (unauthorized, down, rate-limited)
raises `RegistryError`: the image then "could not be verified". An artifact
that is there but unreadable (wrong media type, bytes that do not match their
digest, a referrer for another subject) becomes a problem in words in
`Discovery.problems`, and the others are still returned; a payload too large
to read is listed in `Discovery.oversized` (the verifier fails the image: it
may be the one that denies).
"""

from __future__ import annotations

import contextvars
import functools
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Final

from trustgate.oci import mediatypes as mt
from trustgate.oci.errors import RegistryError
from trustgate.oci.model import Descriptor, Manifest, Registry
from trustgate.oci.reference import Reference, validate_digest

# Failures that say nothing about one artifact but about reaching the registry; they abort discovery.
TRANSPORT_KINDS: Final = frozenset(
    {
        "unauthorized",
        "forbidden",
        "rate-limited",
        "server-error",
        "timeout",
        "connection",
        "tls",
        "unavailable",
    }
)
PLACES: Final = ("referrers", ".sig", ".att")  # where signatures and attestations live
SIGNATURE_PLACES: Final = ("referrers", ".sig")  # where signatures live (`.att` holds attestations)
# Threads of the one discovery pool of a process (every registry, every image shares it).
_POOL_THREADS: Final = 32

# Verification summaries (SLSA VSAs) are bundles too, but they are judged on their own, before
# discovery (trustgate.artifacts.summaries): one issued per passing check, they would crowd the budget.
SUMMARY_PREDICATE_TYPES: Final = frozenset({"https://slsa.dev/verification_summary/v1"})
PREDICATE_TYPE_ANNOTATION: Final = "dev.sigstore.bundle.predicateType"

_REFERRER_TYPES: Final = frozenset(
    {mt.COSIGN_ARTIFACT_SIG, mt.COSIGN_ARTIFACT_ATT, mt.COSIGN_SIMPLESIGNING, mt.DSSE_ENVELOPE}
)


@dataclass(frozen=True, slots=True)
class DiscoveryLimits:
    """What looking for one image's signatures may cost; every limit with its unit."""

    # signature/attestation manifests examined per digest and place; the image fails with more
    # (`Discovery.unexamined`), since the one not read may deny it
    max_artifacts: int = 64
    # bytes per bundle, payload or envelope; a larger one is not read, and the image fails
    # (`Discovery.oversized`): a scan of a big image may well be larger (Trivy lists every target)
    max_payload_bytes: int = 4 * 1024 * 1024
    # bytes of payloads read for one image in all (every digest and place, `Spending`): layers past
    # it are not read, and the image fails (`Discovery.overspent`); without it whoever can push could
    # make reading cost more than the deadline (64 layers of 4 MiB in each place and platform), and
    # a timeout is "could not verify"
    max_total_payload_bytes: int = 32 * 1024 * 1024
    referrer_fanout: int = 4  # referrers of one image fetched at once (on the pool every registry shares)
    platform_fanout: int = 8  # platform manifests of one index looked into at once (by the verifier)


@dataclass(frozen=True, slots=True)
class SignatureArtifact:
    """One signature or attestation, with the bytes to verify and where it was found."""

    kind: str  # "sigstore-bundle" | "cosign-simplesigning" | "cosign-dsse"
    source: str  # "referrers-api" | "referrers-tag" | "cosign-tag"
    manifest_digest: str  # the signature/attestation manifest it came from
    subject_digest: str  # the image manifest digest it is attached to
    payload: bytes  # bundle JSON, simple-signing payload, or DSSE envelope
    annotations: Mapping[str, str] = field(default_factory=dict)  # the layer's annotations
    layer_digest: str = ""  # the blob the payload came from


@dataclass(frozen=True, slots=True)
class Discovery:
    """Everything found for one digest; `problems` lists what was there but could not be read."""

    signatures: tuple[SignatureArtifact, ...]  # cosign .sig layers and Sigstore bundles
    attestations: tuple[SignatureArtifact, ...]  # cosign .att layers (DSSE)
    problems: tuple[str, ...]
    # artifacts (manifests, and the layers of one past its first) left unread: beyond
    # `DiscoveryLimits.max_artifacts`
    unexamined: int = 0
    # Why the referrers could not be listed in full, where the listing itself was too long
    # (`UNLISTED_KINDS`): whoever can push referrers can cause that, and hide the artifacts of
    # others (a scanner's newest report) with it.
    unlisted: tuple[str, ...] = ()
    # Signature/attestation layers not read because they are larger than
    # `DiscoveryLimits.max_payload_bytes`, each in words (where, which layer, how large): one may be
    # the denying attestation (today's scan of a big image), so the verifier fails the image.
    oversized: tuple[str, ...] = ()
    # Layers not read because the image's payloads already weigh `max_total_payload_bytes`, each
    # in words; the verifier fails the image, as for `oversized`.
    overspent: tuple[str, ...] = ()


class Spending:
    """The payload bytes one image's discoveries have read (every digest and place), against
    `DiscoveryLimits.max_total_payload_bytes`; thread-safe, shared by the discoveries of one image."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        """Whether `size` more bytes may be read; if so they are counted."""
        with self._lock:
            if self.spent + size > self.limit:
                return False
            self.spent += size
            return True

    def spend(self, size: int) -> None:
        """Count `size` more bytes read, whatever the limit (a blob larger than its descriptor said)."""
        if size > 0:
            with self._lock:
                self.spent += size


class _Count:
    """Artifacts examined and left unexamined in one place; shared with the finders of its
    referrers, which run on other threads."""

    def __init__(self) -> None:
        self.examined = 0
        self.unexamined = 0
        self.lock = threading.Lock()


# Referrer listings that failed this way are what a pusher can cause at a registry serving the
# referrers API: more referrers than it pages (`loop`) or than a listing may weigh
# (`too-large`); what they hold is unknown, so the image cannot be verified. Other failures
# (a 400, 406 or an HTML page for a registry without the API, a malformed answer) are the
# registry's about itself: kept as problems, the cosign tags judged. (Under the referrers *tag*
# a pusher can rewrite the listing anyway, which no check here can tell from a deletion.)
UNLISTED_KINDS: Final = frozenset({"too-large", "loop"})


def is_signature_type(artifact_type: str | None) -> bool:
    """True for the artifact types discovery looks into (Sigstore bundles and cosign types)."""
    if not artifact_type:
        return False
    return artifact_type.startswith(mt.SIGSTORE_BUNDLE_PREFIX) or artifact_type in _REFERRER_TYPES


def discover(
    registry: Registry,
    ref: Reference,
    digest: str,
    *,
    limits: DiscoveryLimits | None = None,
    parallel: bool = True,
    places: Sequence[str] = PLACES,
    spending: Spending | None = None,
) -> Discovery:
    """Find the signatures and attestations attached to `digest` in `ref`'s repository.

    Args:
        registry: where to look.
        ref: names the registry and repository (its tag and digest are not used).
        digest: the image manifest or index digest the artifacts are attached to.
        limits: artifacts examined per place (beyond it they are counted in `unexamined`, not
            read), bytes per payload blob, referrers fetched at once; None: the defaults of
            `DiscoveryLimits`.
        parallel: look in the referrers and both cosign tags at once (on shared worker threads).
        places: where to look, a subset of PLACES ("referrers", ".sig", ".att"), in that order.
        spending: the payload bytes the image's other discoveries read (one image, several
            digests); None: this discovery's own, of `limits.max_total_payload_bytes`.

    Returns:
        What was found, in a fixed order: referrers first, then the `.sig` and `.att` tags.

    Raises:
        RegistryError: the registry could not be asked (a kind in TRANSPORT_KINDS).
        InvalidReferenceError: `digest` is not a digest.
    """
    validate_digest(digest, where=f"{ref.name}@{digest}")
    # Three independent places, each a chain of round trips: look in them at once.
    unknown = set(places) - set(PLACES)
    if unknown:
        raise ValueError(f"unknown places {sorted(unknown)}; known: {PLACES}")
    chosen = [p for p in PLACES if p in places]
    limits = limits or DiscoveryLimits()
    spending = spending or Spending(limits.max_total_payload_bytes)
    finders = [_Finder(registry, ref, digest, limits, spending) for _ in chosen]
    for finder in finders:
        finder.parallel = parallel
    jobs: list[Callable[[], None]] = [
        finder.from_referrers if place == "referrers" else functools.partial(finder.from_cosign_tag, place)
        for place, finder in zip(chosen, finders, strict=True)
    ]
    if not jobs:
        return Discovery((), (), ())
    if parallel and len(jobs) > 1:
        # Each in a copy of the caller's context: the verification's deadline goes with it.
        futures = [_pool().submit(contextvars.copy_context().run, job) for job in jobs[1:]]
        errors: list[BaseException | None] = [_run(jobs[0])]
        errors += [future.exception() for future in futures]
    else:
        errors = [_run(job) for job in jobs]
    for error in errors:
        if error is not None:
            raise error
    return Discovery(
        signatures=tuple(a for finder in finders for a in finder.signatures),
        attestations=tuple(a for finder in finders for a in finder.attestations),
        problems=tuple(p for finder in finders for p in finder.problems),
        unexamined=sum(finder.unexamined for finder in finders),
        unlisted=tuple(u for finder in finders for u in finder.unlisted),
        oversized=tuple(o for finder in finders for o in finder.oversized),
        overspent=tuple(o for finder in finders for o in finder.overspent),
    )


def _run(job: Callable[[], None]) -> BaseException | None:
    try:
        job()
    except Exception as e:  # handed back to discover(), which re-raises it in a fixed order
        return e
    return None


_POOL: ThreadPoolExecutor | None = None
_POOL_PID = 0
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """Threads shared by all discoveries; a forked child gets its own (the parent's threads are gone)."""
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or os.getpid() != _POOL_PID:
            _POOL = ThreadPoolExecutor(max_workers=_POOL_THREADS, thread_name_prefix="trustgate-discover")
            _POOL_PID = os.getpid()
        return _POOL


class _Finder:
    def __init__(
        self,
        registry: Registry,
        ref: Reference,
        digest: str,
        limits: DiscoveryLimits,
        spending: Spending,
        count: _Count | None = None,
    ) -> None:
        self.registry = registry
        self.ref = Reference(registry=ref.registry, repository=ref.repository)
        self.digest = digest
        self.where = f"{ref.name}@{digest}"
        self.limits = limits
        self.signatures: list[SignatureArtifact] = []
        self.attestations: list[SignatureArtifact] = []
        self.problems: list[str] = []
        self._seen: set[tuple[str, ...]] = set()
        self._count = count or _Count()  # one per place, shared with its referrers' finders
        self._spending = spending
        self._payloads: dict[str, bytes] = {}  # blobs read, by digest: cosign's signers share one
        self.unlisted: list[str] = []  # see `Discovery.unlisted`
        self.oversized: list[str] = []  # see `Discovery.oversized`
        self.overspent: list[str] = []  # see `Discovery.overspent`
        self.parallel = True  # referrers fetched at once (discover's `parallel`)

    def _soft(self, error: RegistryError, context: str) -> None:
        """Record a per-artifact failure, or re-raise one that means the registry is unreachable."""
        if error.kind in TRANSPORT_KINDS:
            raise error
        self.problems.append(f"{context}: {error.message}")

    @property
    def unexamined(self) -> int:
        """Artifacts the budget left unread in this place (its referrers' included)."""
        return self._count.unexamined

    def _budget(self) -> bool:
        """Whether one more artifact may be examined; one that may not is counted as unexamined."""
        with self._count.lock:
            if self._count.examined >= self.limits.max_artifacts:
                self._count.unexamined += 1
                return False
            self._count.examined += 1
            return True

    def from_referrers(self) -> None:
        try:
            descriptors, source = self.registry.referrers(self.ref, self.digest)
        except RegistryError as e:
            if e.kind in UNLISTED_KINDS:
                self.unlisted.append(f"the referrers of {self.where} could not be listed: {e.message}")
                return
            self._soft(e, f"referrers of {self.where}")
            return
        wanted: list[Descriptor] = []
        for descriptor in descriptors:
            if descriptor.artifact_type is not None and not is_signature_type(descriptor.artifact_type):
                continue  # an SBOM, a scan report...: not ours to read
            if descriptor.annotations.get(PREDICATE_TYPE_ANNOTATION) in SUMMARY_PREDICATE_TYPES:
                continue
            if descriptor.media_type not in mt.IMAGE_MANIFESTS:
                if descriptor.artifact_type is not None:
                    self.problems.append(
                        f"referrer {descriptor.digest} of {self.where} is {descriptor.media_type}, "
                        "not an image manifest; skipped"
                    )
                continue
            if self._budget():  # beyond it: counted, not read
                wanted.append(descriptor)
        if len(wanted) <= 1 or not self.parallel:
            for descriptor in wanted:
                self._from_referrer(descriptor, source)
            return
        # Each referrer is a chain of two round trips (manifest, then blob): fetched `referrer_fanout`
        # at a time (the shared pool serves every registry), each into its own finder, merged in the
        # referrers' order (the first failure, in that order, wins).
        fanout = self.limits.referrer_fanout
        for start in range(0, len(wanted), fanout):
            batch = wanted[start : start + fanout]
            parts = [self._part() for _ in batch]
            jobs = [
                functools.partial(part._from_referrer, d, source)
                for part, d in zip(parts, batch, strict=True)
            ]
            futures = [_pool().submit(contextvars.copy_context().run, job) for job in jobs[1:]]
            errors: list[BaseException | None] = [_run(jobs[0])]
            errors += [future.exception() for future in futures]
            for part, error in zip(parts, errors, strict=True):
                if error is not None:
                    raise error
                self.signatures += part.signatures
                self.attestations += part.attestations
                self.problems += part.problems
                self.oversized += part.oversized
                self.overspent += part.overspent

    def _part(self) -> _Finder:
        """A finder for one referrer of this one (same image, limits and registry)."""
        part = _Finder(self.registry, self.ref, self.digest, self.limits, self._spending, self._count)
        part.where = self.where
        return part

    def _from_referrer(self, descriptor: Descriptor, source: str) -> None:
        context = f"referrer {descriptor.digest} of {self.where} ({source})"
        try:
            manifest = self.registry.manifest(self.ref, descriptor.digest)
        except RegistryError as e:
            self._soft(e, context)
            return
        if manifest is None:
            self.problems.append(f"{context}: listed, but its manifest does not exist")
            return
        if descriptor.artifact_type is None and not is_signature_type(manifest.artifact_type):
            return
        subject = manifest.json.get("subject")
        subject_digest = subject.get("digest") if isinstance(subject, dict) else None
        if subject_digest is not None and subject_digest != self.digest:
            self.problems.append(f"{context}: its subject is {subject_digest}, not this image; ignored")
            return
        if manifest.is_index:
            self.problems.append(f"{context}: an index, not a signature manifest; ignored")
            return
        self._layers(manifest, source, context, expected=None)

    def from_cosign_tag(self, suffix: str) -> None:
        algorithm, hexpart = self.digest.split(":", 1)
        tag = f"{algorithm}-{hexpart}{suffix}"
        context = f"cosign tag {self.ref.name}:{tag}"
        try:
            manifest = self.registry.manifest(self.ref, tag)
        except RegistryError as e:
            self._soft(e, context)
            return
        if manifest is None:
            return
        if not self._budget():
            return
        if manifest.is_index:
            self.problems.append(f"{context}: holds an index, not a signature manifest; ignored")
            return
        expected = mt.COSIGN_SIMPLESIGNING if suffix == ".sig" else mt.DSSE_ENVELOPE
        self._layers(manifest, "cosign-tag", context, expected=expected)

    def _layers(self, manifest: Manifest, source: str, context: str, *, expected: str | None) -> None:
        try:
            layers = manifest.descriptors("layers")
        except ValueError as e:
            self.problems.append(f"{context}: malformed layer list: {e}")
            return
        if not layers:
            self.problems.append(f"{context}: a signature manifest without layers")
        for position, layer in enumerate(layers):
            # Each layer past the first is one more artifact (found in review: one `.sig` manifest of
            # 200 junk layers, or 3000 of a 4 MiB blob, was read whole, past maxArtifacts).
            if position and not self._budget():
                continue
            kind = _kind(layer.media_type)
            if kind is None or (
                expected is not None and layer.media_type != expected and kind != "sigstore-bundle"
            ):
                wanted = expected or f"{mt.SIGSTORE_BUNDLE}, {mt.COSIGN_SIMPLESIGNING} or {mt.DSSE_ENVELOPE}"
                self.problems.append(
                    f"{context}: layer {layer.digest} has media type {layer.media_type}, expected {wanted}; "
                    "skipped"
                )
                continue
            if kind == "cosign-simplesigning" and not layer.annotations.get(mt.ANNOTATION_SIGNATURE):
                self.problems.append(
                    f"{context}: layer {layer.digest} has no {mt.ANNOTATION_SIGNATURE} annotation "
                    "(an unsigned payload); skipped"
                )
                continue
            # cosign adds one layer per signer, all with the same payload blob: the signature
            # annotation tells them apart.
            seen = (manifest.digest, layer.digest, layer.annotations.get(mt.ANNOTATION_SIGNATURE, ""))
            if seen in self._seen:
                continue
            self._seen.add(seen)
            # Too large to read: not a note beside what was read, since it may deny (ADR 5).
            if layer.size > self.limits.max_payload_bytes:
                self.oversized.append(f"{context}: layer {layer.digest} ({layer.size} bytes)")
                continue
            payload = self._payloads.get(layer.digest)  # read already, for another signer?
            if payload is None:
                if not self._spending.take(max(layer.size, 0)):
                    self.overspent.append(f"{context}: layer {layer.digest} ({layer.size} bytes)")
                    continue
                payload = self._read(layer, context)
                if payload is None:
                    continue
                self._spending.spend(len(payload) - layer.size)  # a size that understated it
                self._payloads[layer.digest] = payload
            artifact = SignatureArtifact(
                kind=kind,
                source=source,
                manifest_digest=manifest.digest,
                subject_digest=self.digest,
                payload=payload,
                annotations=dict(layer.annotations),
                layer_digest=layer.digest,
            )
            (self.attestations if kind == "cosign-dsse" else self.signatures).append(artifact)

    def _read(self, layer: Descriptor, context: str) -> bytes | None:
        """The layer's blob; None when it is recorded as oversized or as a problem instead.

        Raises:
            RegistryError: the registry could not be asked (a kind in TRANSPORT_KINDS).
        """
        try:
            return self.registry.blob(self.ref, layer.digest, max_bytes=self.limits.max_payload_bytes)
        except RegistryError as e:
            if e.kind == "too-large":  # larger than its descriptor said
                self.oversized.append(f"{context}: layer {layer.digest} (more bytes than its size says)")
                return None
            # Others (missing, not matching its digest) are notes: a blob is named by its digest, so
            # only whoever pushed the artifact, or a broken registry, can make its own unreadable.
            self._soft(e, f"{context}: layer {layer.digest}")
            return None


def _kind(media_type: str) -> str | None:
    if media_type.startswith(mt.SIGSTORE_BUNDLE_PREFIX):
        return "sigstore-bundle"
    if media_type == mt.COSIGN_SIMPLESIGNING:
        return "cosign-simplesigning"
    if media_type == mt.DSSE_ENVELOPE:
        return "cosign-dsse"
    return None
