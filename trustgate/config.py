"""`trustgate.yaml`: the one configuration every gate reads.

Owns: the typed configuration, its JSON schema (`schemas/config-v1alpha1.json`),
loading and validating a file with errors that name the line, and the
embedded default used when no file is given. Leaves out: what the settings
do (the gate and the policy engines act on them).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import functools
import ipaddress
import json
import math
import re
import socket
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustgate import kinds, yamlio
from trustgate.errors import ConfigError
from trustgate.model import Mode, embedded_ipv4, names_registry, octal_note, relayed_ipv4_note

API_VERSION = "trustgate.dev/v1alpha1"
KIND = "Config"
DEFAULT_KUBERNETES_VERSION = "1.35"
BUILTIN_SETS = ("pss-baseline", "pss-restricted", "supply-chain")
RESERVED_SECTIONS: tuple[str, ...] = ()  # sections in the schema that this version does not enforce
PUBLIC_GOOD = "public-good"  # the embedded Sigstore public-good trust root
# seconds a decision log record's time may lie before the signed time of the checkpoint before it, after
# the one that first covers it, or away from the time in its UUIDv7 id: writers (replicas sharing one
# PostgreSQL log) date records by their own clocks, and a record made just before another writer reads
# the head may commit just after it (ADR 9, item 12); MAX_: a year, beyond which no bound is left
DEFAULT_CLOCK_SKEW_SECONDS = 300.0
MAX_CLOCK_SKEW_SECONDS = 366 * 86400.0
# The most `images.rules[].summaries.accept.clockSkewSeconds` may be (the schema's maximum): a summary
# dated that far ahead counts until its timeVerified + maxAgeSeconds, so each second of skew is a second
# more of life; NTP-synchronised clocks differ by far less than an hour (a typo, 86400000, made
# summaries count for years).
MAX_SUMMARY_CLOCK_SKEW_SECONDS = 3600.0
# The most `images.summaries.accept.revocationRefreshSeconds` may be (the schema's maximum): a
# revocation reaches the webhooks only when they read the log again, and reading it costs one query.
MAX_REVOCATION_REFRESH_SECONDS = 3600.0
# Why a schema maximum is what it is, by the end of the path it bounds: said with the error.
MAXIMUM_WHY: dict[tuple[str, ...], str] = {
    ("summaries", "accept", "clockSkewSeconds"): (
        "a summary dated up to that far in the future counts until its timeVerified + maxAgeSeconds, "
        "so the skew lengthens every summary's life; clocks kept by NTP differ by seconds"
    ),
    ("summaries", "accept", "revocationRefreshSeconds"): (
        "a revocation reaches admission only when the revocations are read again; an hour is "
        "already long for a summary revoked because a key leaked"
    ),
}
# The most `images.registries.maxArtifacts` may be (the schema's maximum): each artifact is round
# trips and a signature check inside one verification's deadline; past it, prune the repository.
MAX_ARTIFACTS = 1024
# The most `images.registries.maxPayloadBytes` may be (the schema's maximum): each payload is held
# in memory, a few at a time per image; a scan of a big image is a few MiB.
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
# The most `images.registries.maxTotalPayloadBytes` may be (the schema's maximum): what one image's
# payloads may weigh in all, read within one verification's deadline.
MAX_TOTAL_PAYLOAD_BYTES = 1024 * 1024 * 1024
PREDICATE_ALIASES = {  # the short names cosign accepts for `--type`
    "slsaprovenance": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance02": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance1": "https://slsa.dev/provenance/v1",
    "vuln": "https://cosign.sigstore.dev/attestation/vuln/v1",
    "spdx": "https://spdx.dev/Document",
    "spdxjson": "https://spdx.dev/Document",
    "cyclonedx": "https://cyclonedx.org/bom",
}


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one run reads; each with its unit and reason."""

    max_file_bytes: int = 16 * 1024 * 1024  # bytes; large CRD bundles reach a few MiB, more is a mistake
    max_documents_per_file: int = 20_000  # documents; a rendered platform repo stays far below
    max_yaml_nodes: int = 1_000_000  # nodes after alias expansion; stops "billion laughs" documents
    kustomize_timeout_seconds: float = 120.0  # seconds; remote bases are not fetched offline anyway
    # seconds kustomize renders kustomizations no other includes for (each rendered alone), in all, in
    # one presync run (both trees): a commit holding many of them cannot stall the gate. Each such
    # render's kubectl calls get at most what is left; units of the paths and Flux builds are not counted
    kustomize_budget_seconds: float = 300.0


@dataclass(frozen=True, slots=True)
class PolicySource:
    """Where Rego policies come from: a bundled set or a path."""

    builtin: str | None = None
    path: Path | None = None
    mode: Mode | None = None  # None: the top-level mode
    namespaces: tuple[str, ...] = ()
    rego_version: str = "v1"
    # conftest's `-n`: the namespaces name packages of all such sources together; a name is
    # an error only when none of them defines it (per source otherwise, as in trustgate.yaml).
    shared_namespaces: bool = False

    @property
    def label(self) -> str:
        return f"builtin:{self.builtin}" if self.builtin else str(self.path)

    def resolve(self) -> Path:
        """The directory or file holding the source's `.rego` files."""
        if self.builtin is not None:
            return builtin_policy_dir() / self.builtin
        assert self.path is not None  # the schema requires one of the two
        return self.path


DEFAULT_POLICIES = tuple(PolicySource(builtin=name) for name in BUILTIN_SETS)


@dataclass(frozen=True, slots=True)
class ExceptionRule:
    """A waiver: what it covers, who owns it, why, and until when."""

    name: str
    rules: tuple[str, ...]
    owner: str
    reason: str
    expires: dt.date
    namespaces: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    images: tuple[str, ...] = ()

    def expired(self, today: dt.date) -> bool:
        return today > self.expires  # `expires` is the last day it applies


@dataclass(frozen=True, slots=True)
class KubernetesSettings:
    version: str = DEFAULT_KUBERNETES_VERSION
    strict: bool = True
    missing_schemas: str = "skip"  # "skip" | "fail"
    schemas: bool = True
    crds: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    """A Sigstore keyless identity: exact values or full-match regular expressions."""

    subject: str | None = None
    subject_regex: str | None = None
    issuer: str | None = None
    issuer_regex: str | None = None


@dataclass(frozen=True, slots=True)
class AuthorityConfig:
    """Who may sign: a public key (`key_pem`) or keyless identities under a trust root."""

    name: str
    key_pem: bytes | None = None
    key_origin: str = ""  # the file (or config place) the key came from, for messages
    trust_root: str = PUBLIC_GOOD
    identities: tuple[IdentityConfig, ...] = ()
    key_trust_root: str | None = None  # keys: the root whose log must hold each signature; None: no log


@dataclass(frozen=True, slots=True)
class AttestationRequirement:
    """An attestation an image must carry, and the Rego policy its statement must pass."""

    name: str
    predicate_type: str  # a URI, aliases resolved
    authorities: tuple[str, ...]
    policy_path: Path | None = None
    policy_text: str | None = None
    builtin: str | None = None  # the bundled policy it names (`builtin:slsa-provenance`), if any


@dataclass(frozen=True, slots=True)
class SummaryVerifier:
    """A verifier whose summaries (SLSA VSAs) a rule accepts: its `verifier.id` and what signs them.

    Either the PEM public key it signs with, or `authority`: the name of an `images.authorities`
    entry (keyless: a certificate for one of its identities from its trust root; or a key).
    """

    id: str
    key_pem: bytes | None = None
    key_origin: str = ""
    authority: str | None = None


@dataclass(frozen=True, slots=True)
class SummaryAcceptance:
    """`images.rules[].summaries.accept`: when a signed verification summary stands in for verifying."""

    verifiers: tuple[SummaryVerifier, ...]  # one id may appear with several keys (rotation): any may sign
    max_age_seconds: float = 86_400.0  # seconds; a summary older than this is ignored
    same_policy: bool = True  # the summary's policy digest must be this rule's own
    clock_skew_seconds: float = 60.0  # seconds a summary may claim to come from the future
    # SLSA levels a summary must claim (verifiedLevels), every one; required when not same_policy
    require_levels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SummaryIssuing:
    """`images.summaries.issue`: sign a summary for each image that passes at `check` or `presync`."""

    verifier_id: str  # a URI: the predicate's verifier.id
    key_path: Path  # PEM private key (offline signing)
    policy_uri: str | None = None  # the predicate's policy.uri; default trustgate:images/rules/<rule>


@dataclass(frozen=True, slots=True)
class SummariesSettings:
    issue: SummaryIssuing | None = None
    revocation_refresh_seconds: float = 30.0  # seconds between reads of revocations from the decision log


@dataclass(frozen=True, slots=True)
class ImageRule:
    name: str
    images: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    mode: Mode | None = None  # None: the top-level mode
    require_digest: bool = False
    authorities: tuple[str, ...] = ()  # empty: no signature required
    threshold: int = 1
    attestations: tuple[AttestationRequirement, ...] = ()
    summaries: SummaryAcceptance | None = None  # verification summaries it accepts instead of verifying
    # `summaries.issue.buildLevel`: the SLSA Build level the operator asserts the builders listed
    # for the built-in provenance policy reach (their signing identities are the attestation's
    # authorities); None: a summary issued under this rule claims Build L1 at most.
    summary_build_level: int | None = None


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """`images.registries`. A field the client shares (same name, same default) reaches it through
    `trustgate.oci.settings.RegistrySettings.from_config`; the others are named there in
    `NOT_FOR_THE_CLIENT` (tests/unit/oci/test_settings.py fails on a field that is neither)."""

    insecure: tuple[str, ...] = ()
    # registries (host[:port]) on a node-local address (localhost, loopback, link-local) that trustgate
    # reaches as the kubelets do, running on the nodes' network, or named by a single label that its pod
    # and the nodes resolve to one registry; any other such registry is refused at admission
    node_local: tuple[str, ...] = ()
    ca_file: Path | None = None
    docker_config: Path | None = None
    timeout_seconds: float = 10.0  # per request
    concurrency: int = 8  # images verified at once; more threads only add GIL contention (bench/images.py)
    max_retries: int = 3  # extra attempts after a 429, a 5xx or a dropped connection
    max_retry_after_seconds: float = 30.0  # seconds; a longer Retry-After fails now, to be retried later
    transfer_deadline_seconds: float = 120.0  # seconds for one whole response (trickling servers)
    # seconds for one image's whole verification: connects, retries, Retry-After waits, slow bodies
    deadline_seconds: float = 10.0
    breaker_threshold: int = 1  # consecutive failed requests that mark a registry down
    breaker_base_seconds: float = 2.0  # seconds it stays down first; doubles with every failed probe
    breaker_max_seconds: float = 60.0  # seconds; the cap of that interval
    # verifications using one registry at a time (0: no bound): a hung registry holds that many threads
    max_requests_per_registry: int = 16
    queue_seconds: float = 1.0  # seconds one more waits for a slot before it is answered "unavailable"
    http2: bool = True  # HTTP/2 where a registry offers it over TLS; false for one that misbehaves with it
    # signature/attestation artifacts examined per image digest and place (referrers, each cosign
    # tag); an image with more fails: the one not read may deny it. At most MAX_ARTIFACTS.
    max_artifacts: int = 64
    # bytes per signature/attestation payload (bundle, simple-signing payload, DSSE envelope); an
    # image with a larger one fails: it is not read, and may deny. At most MAX_PAYLOAD_BYTES.
    max_payload_bytes: int = 4 * 1024 * 1024
    # bytes of payloads read for one image in all (every digest and place); an image whose
    # artifacts weigh more fails: whoever can push must not make reading outlast the deadline.
    # At most MAX_TOTAL_PAYLOAD_BYTES.
    max_total_payload_bytes: int = 32 * 1024 * 1024

    def within(self, seconds: float) -> RegistryConfig:
        """The same, with every wait bounded so that one image is decided within `seconds`.

        The verification's deadline becomes the caller's where that is shorter: a verification
        the caller has stopped waiting for ends with it and frees its thread.
        """
        return dataclasses.replace(
            self,
            deadline_seconds=min(self.deadline_seconds, seconds),
            timeout_seconds=min(self.timeout_seconds, seconds / 3),
            max_retries=min(self.max_retries, 1),
            max_retry_after_seconds=min(self.max_retry_after_seconds, seconds / 3),
            transfer_deadline_seconds=min(self.transfer_deadline_seconds, seconds / 2),
        )

    def sharing(self, evaluators: int) -> RegistryConfig:
        """The same, for `evaluators` threads that each verify images (the webhook's pool): a
        registry may hold all but one of them, so a hung registry leaves an evaluator for requests
        that do not use it."""
        bound = max(1, evaluators - 1)
        current = self.max_requests_per_registry
        return dataclasses.replace(self, max_requests_per_registry=min(current, bound) if current else bound)


@dataclass(frozen=True, slots=True)
class CacheConfig:
    ttl_seconds: float = 600.0  # a verified result is reused this long
    negative_ttl_seconds: float = 30.0  # a failed one, this long
    stale_if_error_seconds: float = 3600.0  # a verified result past its TTL, while the registry is down
    max_entries: int = 10_000
    tag_ttl_seconds: float = 30.0  # a tag's digest is asked again after this: tags move
    url: str | None = None  # postgresql://... : results shared by every replica (read through memory)
    hmac_key_file: Path | None = None  # the key that signs shared entries; required with `url`


@dataclass(frozen=True, slots=True)
class ImagesSettings:
    """The `images` section: rules, the authorities they name, and where to fetch from."""

    trust_roots: Mapping[str, Path] = field(default_factory=dict)  # name -> trusted_root.json
    authorities: tuple[AuthorityConfig, ...] = ()
    rules: tuple[ImageRule, ...] = ()
    unmatched: str = "allow"  # "allow" | "warn" | "deny"
    registries: RegistryConfig = field(default_factory=RegistryConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    summaries: SummariesSettings = field(default_factory=SummariesSettings)

    @property
    def enabled(self) -> bool:
        return bool(self.rules) or self.unmatched != "allow"

    @property
    def accepts_summaries(self) -> bool:
        """Whether a rule accepts verification summaries: their revocations are then read from
        the decision log, and a gate relies on what it holds."""
        return any(rule.summaries is not None for rule in self.rules)


@dataclass(frozen=True, slots=True)
class GatekeeperSettings:
    """Gatekeeper ConstraintTemplates and Constraints, and the inventory they may read."""

    paths: tuple[Path, ...] = ()  # files or directories of templates and constraints
    inventory: tuple[Path, ...] = ()  # objects for data.inventory beside the change set
    mode: Mode | None = None  # for constraints without enforcementAction; None: the top-level mode
    # What cannot be evaluated (templates of engines trustgate lacks whose constraints match, other engines'
    # policies in the paths) is an info note instead of "could not evaluate" (exit 3).
    skip_unsupported: bool = False
    # The code of templates with both Rego and CEL: cel (Gatekeeper's and gator's choice), rego, or
    # both (a disagreement is a finding).
    engine: str = "cel"
    # Gatekeeper's own namespace: only its Config named `config` applies (Gatekeeper's POD_NAMESPACE).
    namespace: str = "gatekeeper-system"


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """Where Rego runs: embedded regorus (default) or a remote OPA server."""

    opa_url: str | None = None
    opa_timeout_seconds: float = 5.0  # seconds per request; OPA answers in milliseconds


@dataclass(frozen=True, slots=True)
class DecisionLogSettings:
    """The `decisionLog` section: where decisions go and what happens when they cannot."""

    url: str | None = None  # sqlite:///path.db or postgresql://...; None: no log unless --decision-log
    failure_policy: str | None = None  # "closed" | "open"; None: closed in enforce mode, open otherwise
    store_inputs: bool = True
    max_input_bytes: int = 1_048_576  # bytes of input objects per record; beyond, only their hashes
    redact: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (path, kinds)
    checkpoint_key: Path | None = None  # Ed25519 PEM private key
    checkpoint_every_records: int = 10_000  # records between automatic signed checkpoints
    # seconds: new records are covered by a signed, published checkpoint at most this long (intervalSeconds)
    checkpoint_every_seconds: float = 60.0
    # seconds a record may be dated before the checkpoint signed before it, after the one that first
    # covers it, or away from its id's time (clockSkewSeconds)
    checkpoint_clock_skew_seconds: float = DEFAULT_CLOCK_SKEW_SECONDS
    checkpoint_publish_dir: Path | None = None  # publish.dir: `checkpoint` and `checkpoint.<size>` files
    checkpoint_publish_git: tuple[str, str] | None = None  # publish.git: (repository path or URL, ref)

    def fail_closed(self, mode: Mode) -> bool:
        """Whether a decision that cannot be recorded must not pass."""
        if self.failure_policy is None:
            return mode == Mode.ENFORCE
        return self.failure_policy == "closed"


DEFAULT_PROTECTED_KINDS = (
    "Namespace",
    "CustomResourceDefinition",
    "PersistentVolumeClaim",
    "PersistentVolume",
    "StatefulSet",
)


@dataclass(frozen=True, slots=True)
class CommitSettings:
    """The `commits` section: the pre-sync gate's rules for the commits in a range."""

    require_signatures: bool = False
    allowed_signers: Path | None = None  # SSH allowed_signers file
    revoked_signers: Path | None = None  # SSH revoked keys: a KRL or public keys (ssh-keygen -r)
    gpg_keys: tuple[Path, ...] = ()  # OpenPGP public key files
    authors: tuple[str, ...] = ()  # e-mail globs; empty: any
    committers: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()  # signer identities (globs) who approve deletions
    protected_kinds: tuple[str, ...] = DEFAULT_PROTECTED_KINDS
    allow_rollback: bool = False


@dataclass(frozen=True, slots=True)
class PresyncSettings:
    """The `presync` section: what of the repository is rendered, and bounds on reading it."""

    paths: tuple[str, ...] = (".",)  # repository-relative
    max_commits: int = 1_000  # commits per range; a longer one is a mistake or an attack
    max_files: int = 100_000  # files under `paths`
    max_tree_bytes: int = 256 * 1024 * 1024  # bytes under `paths`; a platform repo stays far below
    git_timeout_seconds: float = 120.0  # seconds per git command; fetch and push cross the network
    notes: bool = True  # the verdict as a note on the candidate (refs/notes/trustgate)
    # Whose reading of the tree decides what a change deletes: "flux", "argocd", or "any" (either
    # may apply the paths: an object one of them stops applying is a deletion). presync/reconcilers.py
    reconciler: str = "any"
    argocd_recurse: bool = False  # the Applications' spec.source.directory.recurse


# Who may delete protected kinds without the approval annotation (`admission.protectedDeletes.
# allowedActors`, username globs): the kube-controller-manager controllers that delete as part of
# normal operation, each with its own service account (--use-service-account-credentials, the
# kubeadm and managed-cluster default), and the controller manager's own identity when it runs
# without per-controller accounts. A namespace holding PVCs is emptied by the namespace controller;
# PVCs of a StatefulSet's retention policy and generic ephemeral volumes are deleted by the garbage
# collector or the StatefulSet controller.
DEFAULT_DELETE_ACTORS: tuple[str, ...] = (
    "system:serviceaccount:kube-system:namespace-controller",
    "system:serviceaccount:kube-system:generic-garbage-collector",
    "system:serviceaccount:kube-system:pv-protection-controller",
    "system:serviceaccount:kube-system:pvc-protection-controller",
    "system:serviceaccount:kube-system:persistent-volume-binder",
    "system:serviceaccount:kube-system:statefulset-controller",
    "system:serviceaccount:kube-system:job-controller",
    "system:serviceaccount:kube-system:ephemeral-volume-controller",
    "system:kube-controller-manager",
)


@dataclass(frozen=True, slots=True)
class AdmissionSettings:
    """The `admission` section: how the webhook answers when it cannot decide, and what it never judges."""

    failure_policy: str = "closed"  # "closed" | "open": the verdict when no decision is made in time
    deadline_seconds: float = 8.0  # seconds; below the webhook's timeoutSeconds, so the answer is ours
    timeout_seconds: int = 10  # seconds; timeoutSeconds of the generated ValidatingWebhookConfiguration
    namespace: str = "trustgate"  # where trustgate runs: never evaluated, so it can always restart itself
    exclude_namespaces: tuple[str, ...] = ()  # globs; kube-system and `namespace` are always added
    fail_open_namespaces: tuple[str, ...] = ()  # globs
    fail_open_label: str | None = "trustgate.dev/failure-policy=open"  # key=value on a Namespace
    protected_kinds: tuple[str, ...] = ("Namespace", "CustomResourceDefinition", "PersistentVolumeClaim")
    approval_annotation: str = "trustgate.dev/allow-delete"  # "true" on the object approves its DELETE
    # usernames (globs) that delete protected kinds without the annotation; `serve --allow-delete-by`
    # replaces them; empty: nobody
    allowed_actors: tuple[str, ...] = DEFAULT_DELETE_ACTORS
    skip_unchanged_images: bool = True  # UPDATE with the same image set: images are not verified again
    # `resources`: (group, resource) pairs `webhook-config` sends for CREATE and UPDATE beside what
    # it derives ("*" for any); None: not set, which it refuses where the config has Rego of its own
    resources: tuple[tuple[str, str], ...] | None = None

    @property
    def excluded(self) -> tuple[str, ...]:
        """Namespaces never evaluated: kube-system, trustgate's own, then the configured ones."""
        return tuple(dict.fromkeys(("kube-system", self.namespace, *self.exclude_namespaces)))


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration, with paths resolved against the file's directory."""

    mode: Mode = Mode.ENFORCE
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)
    policies: tuple[PolicySource, ...] = DEFAULT_POLICIES
    data: Mapping[str, Any] = field(default_factory=dict)
    data_files: tuple[Path, ...] = ()
    exceptions: tuple[ExceptionRule, ...] = ()
    # custom kinds declared to carry a pod template, or not to (`workloads`); beside kinds.KNOWN_WORKLOADS
    workloads: tuple[kinds.WorkloadKind, ...] = ()
    exclude: tuple[str, ...] = ()  # globs `check` skips below each directory it walks (manifests.exclude)
    limits: Limits = field(default_factory=Limits)
    images: ImagesSettings = field(default_factory=ImagesSettings)
    origin: str = "<embedded default>"
    gatekeeper: GatekeeperSettings = field(default_factory=GatekeeperSettings)
    # ValidatingAdmissionPolicies, their bindings and params (manifests.admissionPolicies; ADR 10)
    admission_policies: tuple[Path, ...] = ()
    engine: EngineSettings = field(default_factory=EngineSettings)
    commits: CommitSettings = field(default_factory=CommitSettings)
    presync: PresyncSettings = field(default_factory=PresyncSettings)
    # Not part of the policy revision (repr): where decisions are logged does not change them.
    decision_log: DecisionLogSettings = field(default_factory=DecisionLogSettings, repr=False)
    admission: AdmissionSettings = field(default_factory=AdmissionSettings, repr=False)

    def workload_table(self) -> kinds.Workloads:
        """The custom workload kinds: the known ones (`kinds.KNOWN_WORKLOADS`), then `workloads`."""
        return kinds.Workloads.of(self.workloads)

    @classmethod
    def default(cls) -> Config:
        """The embedded default: bundled policy sets and schemas, enforce mode."""
        return cls()

    def with_mode(self, mode: Mode) -> Config:
        """The configuration with `mode` in place of every mode it sets (`--mode`): the top-level
        one, each policy source's, each image rule's and the Gatekeeper default. A mode given for
        one run is the whole run's: `--mode enforce` must not leave a source in `warn`.
        A Gatekeeper constraint's `enforcementAction` is the policy's own, as a Rego `warn` rule is.
        """
        rules = tuple(dataclasses.replace(r, mode=None) for r in self.images.rules)
        return dataclasses.replace(
            self,
            mode=mode,
            policies=tuple(dataclasses.replace(p, mode=None) for p in self.policies),
            images=dataclasses.replace(self.images, rules=rules),
            gatekeeper=dataclasses.replace(self.gatekeeper, mode=None),
        )


# The package's own files (policies, schemas) lie beside its modules: the package is installed
# as a directory (wheel or editable), never zipped. Not importlib.resources: it imports tempfile,
# shutil, bz2 and lzma, a few milliseconds of every run's start-up.
_PACKAGE_DIR = Path(__file__).parent


def builtin_policy_dir() -> Path:
    """The bundled policy library shipped inside the package."""
    return _PACKAGE_DIR / "policies"


def _schema() -> dict[str, Any]:
    text = (_PACKAGE_DIR / "schemas" / "config-v1alpha1.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _publish_git(git: Mapping[str, Any] | None, base: Path) -> tuple[str, str] | None:
    """decisionLog.checkpoint.publish.git: a relative path is relative to the config file; a URL stays."""
    if not git:
        return None
    repository = str(git["repository"])
    if "://" not in repository and not re.match(r"^[^/]+@[^/:]+:", repository):
        repository = str(base / repository)
    return repository, str(git.get("ref", "refs/heads/checkpoints"))


def load_config(path: str | Path) -> Config:
    """Read and validate a `trustgate.yaml`.

    Raises:
        ConfigError: the file is unreadable, not YAML, or does not match the
            schema; the message names `file:line` and lists every problem.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the config: {e.strerror or e}", where=str(path)) from e
    docs = list(yamlio.parse_stream(data, max_nodes=Limits().max_yaml_nodes))
    for item in docs:
        if isinstance(item, yamlio.YamlProblem):
            raise ConfigError(item.message, where=f"{path}:{item.line}")
    parsed = [d for d in docs if isinstance(d, yamlio.ParsedDocument)]
    if len(parsed) != 1:
        raise ConfigError(
            f"expected one YAML document, found {len(parsed)}",
            where=str(path),
            hint=f"a config starts with `apiVersion: {API_VERSION}` and `kind: {KIND}`",
        )
    doc = parsed[0]
    # Manifests keep kubectl's reading (the last setting wins; but see `yamlio.merge_override`); in
    # trustgate's own file a second `mode:` (or a merge bringing one) would silently weaken what the
    # first one says.
    repeated = yamlio.repeated_key(doc.node)
    if repeated is not None:
        raise ConfigError(
            f"key {repeated.key!r} is set twice in one mapping (lines {repeated.earlier_line} "
            f"and {repeated.line}): YAML readers disagree about which setting holds",
            where=f"{path}:{repeated.line}",
            hint="set each key once; a key a `<<` merge brings counts as set",
        )
    # Relative paths in the config are relative to the file, whatever the working directory of
    # whoever reads them later (git runs in a clone's directory for `presync`).
    return parse_config(doc.value, origin=str(path), base=path.absolute().parent, tree=doc.node)


def _clock_skew(checkpoint: Mapping[str, Any], defaults: DecisionLogSettings, origin: str) -> float:
    """`decisionLog.checkpoint.clockSkewSeconds`: the schema bounds it, but NaN (YAML `.nan`) passes
    every comparison, and a NaN skew would call no record misdated."""
    value = checkpoint.get("clockSkewSeconds", defaults.checkpoint_clock_skew_seconds)
    if not math.isfinite(value):
        raise ConfigError(
            f"decisionLog.checkpoint.clockSkewSeconds is {value}, not a number of seconds",
            where=origin,
            hint=f"set it between 0 and {MAX_CLOCK_SKEW_SECONDS:g} (default {DEFAULT_CLOCK_SKEW_SECONDS:g})",
        )
    return float(value)


def parse_config(value: Any, *, origin: str, base: Path, tree: Any = None) -> Config:
    """Validate a parsed config document and build the typed `Config`.

    Raises:
        ConfigError: the document does not match the schema.
    """
    import jsonschema  # only when a file is read: its import costs more than a whole small check
    from referencing import Registry

    # An empty registry retrieves nothing: the schema's references are its own `#/$defs/`, and no
    # `$ref` is ever fetched (jsonschema's default registry would fetch a remote one).
    validator = jsonschema.Draft202012Validator(_schema(), registry=Registry())
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for error in errors:
            where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
            line = yamlio.locate(tree, tuple(error.absolute_path))
            prefix = f"{origin}:{line}" if line else origin
            lines.append(f"{prefix}: {where}: {_explain(error)}")
        raise ConfigError(
            "invalid configuration:\n  " + "\n  ".join(lines),
            hint="the schema is trustgate/schemas/config-v1alpha1.json; see the README for an example",
        )
    for section in RESERVED_SECTIONS:
        if value.get(section):
            line = yamlio.locate(tree, (section,))
            raise ConfigError(
                f"the `{section}` section is not supported by this version of trustgate",
                where=f"{origin}:{line}" if line else origin,
                hint="remove it; it would not be enforced",
            )

    kube = value.get("kubernetes", {})
    manifests = value.get("manifests", {})
    limits = value.get("limits", {})
    exceptions = []
    for i, item in enumerate(value.get("exceptions", [])):
        try:
            expires = dt.date.fromisoformat(item["expires"])
        except ValueError as e:
            raise ConfigError(
                f"exception {item['name']!r}: expires {item['expires']!r} is not a date", where=origin
            ) from e
        for k, glob in enumerate(item.get("images", ())):
            _refuse_ipv4_spelled_otherwise(
                glob, f"exception {item['name']!r}", where=_at(origin, tree, ("exceptions", i, "images", k))
            )
        exceptions.append(
            ExceptionRule(
                name=item["name"],
                rules=tuple(item["rules"]),
                owner=item["owner"],
                reason=item["reason"],
                expires=expires,
                namespaces=tuple(item.get("namespaces", ())),
                kinds=tuple(item.get("kinds", ())),
                names=tuple(item.get("names", ())),
                images=tuple(item.get("images", ())),
            )
        )
    names = [e.name for e in exceptions]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"exception names must be unique: {', '.join(duplicates)}", where=origin)

    if "policies" in manifests:
        policies = tuple(
            PolicySource(
                builtin=src.get("builtin"),
                path=(base / src["path"]) if "path" in src else None,
                mode=Mode(src["mode"]) if "mode" in src else None,
                namespaces=tuple(src.get("namespaces", ())),
                rego_version=src.get("regoVersion", "v1"),
            )
            for src in manifests["policies"]
        )
    else:
        policies = DEFAULT_POLICIES
    defaults = Limits()
    gatekeeper = manifests.get("gatekeeper", {})
    opa = value.get("engine", {}).get("opa", {})
    log = value.get("decisionLog", {})
    checkpoint = log.get("checkpoint", {})
    publish = checkpoint.get("publish", {})
    log_defaults = DecisionLogSettings()
    decision_log = DecisionLogSettings(
        url=log.get("url"),
        failure_policy=log.get("failurePolicy"),
        store_inputs=log.get("storeInputs", True),
        max_input_bytes=log.get("maxInputBytes", log_defaults.max_input_bytes),
        redact=tuple(
            (r, ()) if isinstance(r, str) else (r["path"], tuple(r.get("kinds", ())))
            for r in log.get("redact", ())
        ),
        checkpoint_key=base / checkpoint["key"] if "key" in checkpoint else None,
        checkpoint_every_records=checkpoint.get("everyRecords", log_defaults.checkpoint_every_records),
        checkpoint_every_seconds=checkpoint.get(
            "intervalSeconds", checkpoint.get("everySeconds", log_defaults.checkpoint_every_seconds)
        ),
        checkpoint_clock_skew_seconds=_clock_skew(checkpoint, log_defaults, origin),
        checkpoint_publish_dir=base / publish["dir"] if "dir" in publish else None,
        checkpoint_publish_git=_publish_git(publish.get("git"), base),
    )
    return Config(
        mode=Mode(value.get("mode", "enforce")),
        kubernetes=KubernetesSettings(
            version=kube.get("version", DEFAULT_KUBERNETES_VERSION).lstrip("v"),
            strict=kube.get("strict", True),
            missing_schemas=kube.get("missingSchemas", "skip"),
            schemas=kube.get("schemas", True),
            crds=tuple(base / p for p in kube.get("crds", ())),
        ),
        policies=policies,
        data=manifests.get("data", {}),
        data_files=tuple(base / p for p in manifests.get("dataFiles", ())),
        exceptions=tuple(exceptions),
        workloads=_parse_workloads(value.get("workloads", []), origin=origin, tree=tree),
        exclude=tuple(manifests.get("exclude", ())),
        limits=Limits(
            max_file_bytes=limits.get("maxFileBytes", defaults.max_file_bytes),
            max_documents_per_file=limits.get("maxDocumentsPerFile", defaults.max_documents_per_file),
            max_yaml_nodes=limits.get("maxYamlNodes", defaults.max_yaml_nodes),
            kustomize_timeout_seconds=limits.get(
                "kustomizeTimeoutSeconds", defaults.kustomize_timeout_seconds
            ),
            kustomize_budget_seconds=limits.get("kustomizeBudgetSeconds", defaults.kustomize_budget_seconds),
        ),
        images=_parse_images(
            value.get("images", {}), origin=origin, base=base, tree=tree, data=manifests.get("data", {})
        ),
        origin=origin,
        gatekeeper=GatekeeperSettings(
            paths=tuple(gatekeeper_path(base, p) for p in gatekeeper.get("paths", ())),
            inventory=tuple(base / p for p in gatekeeper.get("inventory", ())),
            mode=Mode(gatekeeper["mode"]) if "mode" in gatekeeper else None,
            skip_unsupported=bool(gatekeeper.get("skipUnsupported", False)),
            engine=gatekeeper.get("engine", "cel"),
            namespace=gatekeeper.get("namespace", GatekeeperSettings().namespace),
        ),
        admission_policies=tuple(base / p for p in manifests.get("admissionPolicies", ())),
        engine=EngineSettings(
            opa_url=opa.get("url"),
            opa_timeout_seconds=opa.get("timeoutSeconds", EngineSettings().opa_timeout_seconds),
        ),
        decision_log=decision_log,
        commits=_parse_commits(value.get("commits", {}), origin=origin, base=base, tree=tree),
        presync=_parse_presync(value.get("presync", {})),
        admission=_parse_admission(value.get("admission", {}), origin=origin, tree=tree),
    )


# An API group as a CustomResourceDefinition's spec.group is written: a lower-case DNS subdomain.
_GROUP = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# A field path as a pod spec's is written: dotted field names, no index, no quoting.
_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)*")


def _parse_workloads(
    entries: Sequence[Mapping[str, Any]], *, origin: str, tree: Any
) -> tuple[kinds.WorkloadKind, ...]:
    """`workloads`: custom kinds whose objects carry a pod template (or, `notWorkload`, none).

    Raises:
        ConfigError: an entry names no kind, a group no custom resource can have, a built-in kind,
            the same kind twice, a path that is not a dotted field path, or both a path and
            `notWorkload` (or neither); the message names the file and line.
    """
    out: list[kinds.WorkloadKind] = []
    seen: dict[tuple[str, str], str] = {}
    example = "e.g. {group: example.com, kind: Widget, podSpec: spec.template.spec}"
    for i, entry in enumerate(entries):
        where = _at(origin, tree, ("workloads", i))
        group, kind = entry["group"].strip(), entry["kind"].strip()
        if not kind:
            raise ConfigError(
                "workloads entry has an empty kind",
                where=_at(origin, tree, ("workloads", i, "kind")),
                hint=example,
            )
        if kinds.is_builtin_workload(group, kind):
            raise ConfigError(
                f"workloads: {kind} ({group or 'core group'}) is a built-in workload kind; the bundled "
                "policy sets already judge it where Kubernetes keeps its pod spec",
                where=where,
                hint="remove the entry",
            )
        if not _GROUP.fullmatch(group):
            raise ConfigError(
                f"workloads: group {group!r} of {kind} is not an API group: a group is a lower-case "
                "DNS name, without a version",
                where=_at(origin, tree, ("workloads", i, "group")),
                hint="give the group of the kind's CustomResourceDefinition (spec.group), e.g. "
                "argoproj.io for apiVersion argoproj.io/v1alpha1",
            )
        if "." not in group:
            raise ConfigError(
                f"workloads: group {group!r} of {kind} is not a custom resource's group: a "
                "CustomResourceDefinition's group is a domain with at least one dot, and the built-in "
                "groups' workloads are judged already",
                where=_at(origin, tree, ("workloads", i, "group")),
                hint="give the group of the kind's CustomResourceDefinition (spec.group), " + example,
            )
        if (group, kind) in seen:
            raise ConfigError(
                f"workloads: {kind} ({group}) is declared twice (first at {seen[(group, kind)]})",
                where=where,
                hint="keep one entry for each group and kind",
            )
        seen[(group, kind)] = where
        not_workload = entry.get("notWorkload", False)
        spec_text = entry.get("podSpec")
        if not_workload == (spec_text is not None):
            raise ConfigError(
                f"workloads: {kind} ({group}) needs either podSpec (where its pod spec is) or "
                "notWorkload: true (it carries no pod template), not "
                + ("both" if not_workload else "neither"),
                where=where,
                hint=example,
            )
        if not_workload:
            out.append(kinds.WorkloadKind(group, kind, None, where=where))
            continue
        paths: list[tuple[str, ...]] = []
        for key in ("podSpec", "podMetadata"):
            text = entry.get(key)
            if text is None:
                continue
            if key == "podSpec" and text == "*":
                paths.append(())  # inside lists or maps: found wherever they are
                continue
            if not _FIELD_PATH.fullmatch(text):
                raise ConfigError(
                    f"workloads: {kind} ({group}) {key} {text!r} is not a dotted field path",
                    where=_at(origin, tree, ("workloads", i, key)),
                    hint="write field names joined by dots from the object's root, without indexes or "
                    "quotes, e.g. spec.template.spec; for pod templates inside lists or maps "
                    "(spec.tasks[].template) write podSpec: '*' (each is found wherever it is)",
                )
            paths.append(tuple(text.split(".")))
        pod_spec = paths[0]
        if not pod_spec and len(paths) > 1:
            raise ConfigError(
                f"workloads: {kind} ({group}) has podSpec '*' and a podMetadata: each pod template "
                "found has its metadata beside its spec",
                where=_at(origin, tree, ("workloads", i, "podMetadata")),
                hint="remove podMetadata",
            )
        pod_metadata = paths[1] if len(paths) > 1 else (*pod_spec[:-1], "metadata") if pod_spec else ()
        resource = entry.get("resource", "")
        if resource and not _RESOURCE_TEXT.fullmatch(resource):
            raise ConfigError(
                f"workloads: {kind} ({group}) resource {resource!r} is not a resource name",
                where=_at(origin, tree, ("workloads", i, "resource")),
                hint="give the plural of its CustomResourceDefinition (spec.names.plural), e.g. widgets",
            )
        out.append(
            kinds.WorkloadKind(
                group,
                kind,
                pod_spec,
                pod_metadata,
                batch=bool(entry.get("batch", False)),
                resource=resource,
                where=where,
            )
        )
    return tuple(out)


def _parse_admission(section: Mapping[str, Any], *, origin: str, tree: Any) -> AdmissionSettings:
    defaults = AdmissionSettings()
    fail_open = section.get("failOpen", {})
    protected = section.get("protectedDeletes", {})
    deadline = section.get("deadlineSeconds", defaults.deadline_seconds)
    timeout = section.get("timeoutSeconds", defaults.timeout_seconds)
    if deadline >= timeout:
        raise ConfigError(
            f"admission.deadlineSeconds ({deadline}) must be below admission.timeoutSeconds ({timeout})",
            hint="the webhook must answer before the API server gives up on it",
        )
    return AdmissionSettings(
        failure_policy=section.get("failurePolicy", defaults.failure_policy),
        deadline_seconds=deadline,
        timeout_seconds=timeout,
        namespace=section.get("namespace", defaults.namespace),
        exclude_namespaces=tuple(section.get("excludeNamespaces", ())),
        fail_open_namespaces=tuple(fail_open.get("namespaces", ())),
        fail_open_label=fail_open.get("namespaceLabel", defaults.fail_open_label),
        protected_kinds=tuple(protected.get("kinds", defaults.protected_kinds)),
        approval_annotation=protected.get("approvalAnnotation", defaults.approval_annotation),
        allowed_actors=tuple(protected.get("allowedActors", defaults.allowed_actors)),
        skip_unchanged_images=section.get("skipUnchangedImages", defaults.skip_unchanged_images),
        resources=_admission_resources(section.get("resources"), origin=origin, tree=tree),
    )


# API groups without a dot: the core group ("") and these built-in ones (a CRD's group has a dot).
DOTLESS_GROUPS = ("", "apps", "autoscaling", "batch", "extensions", "policy")
_GROUP_TEXT = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_RESOURCE_TEXT = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")  # a plural: never a dot


# Built-in resources no CREATE or UPDATE reaches admission for, by (group, resource): a rule naming
# one sends nothing.
_SENDS_NOTHING = {
    ("policy", "evictions"): "an Eviction is created only as the pods/eviction subresource, and "
    "admission.resources sends no subresource (judge it with a ValidatingAdmissionPolicy)",
    ("", "componentstatuses"): "componentstatuses are read-only",
}
# Served by aggregated API servers: their requests skip kube-apiserver's admission chain.
_AGGREGATED_GROUPS = ("metrics.k8s.io", "custom.metrics.k8s.io", "external.metrics.k8s.io")


def _admission_resources(
    value: Sequence[str] | None, *, origin: str, tree: Any
) -> tuple[tuple[str, str], ...] | None:
    """`admission.resources` as (group, resource) pairs: `services` (the core group),
    `apps/deployments`, `example.com/*`, `*/ingresses`, or `*` (every resource).

    An entry the API server would match nothing with is an error, since a rule naming nothing
    sends nothing: the resource of a built-in group (the core group, the dotless ones, and the
    `k8s.io` groups the built-in table knows) must be one that group serves.
    """
    if value is None:
        return None
    pairs: list[tuple[str, str]] = []
    for i, entry in enumerate(value):
        line = yamlio.locate(tree, ("admission", "resources", i))
        where = f"{origin}:{line}" if line else origin
        group, slash, resource = entry.rpartition("/") if entry != "*" else ("*", "/", "*")
        problem = _resource_problem(entry, group, slash, resource)
        if problem:
            raise ConfigError(
                f"admission.resources[{i}] {entry!r}: {problem}",
                where=where,
                hint='each entry is group/resource: services, apps/deployments, networking.k8s.io/*, or "*"',
            )
        pairs.append((group, resource))
    return tuple(pairs)


def _resource_problem(entry: str, group: str, slash: str, resource: str) -> str:
    """Why an `admission.resources` entry matches nothing ("" when it may match), with what was
    probably meant."""
    from trustgate.kinds import REVIEW_GROUPS, REVIEW_KINDS, builtin_resources, resource_of

    if entry.count("/") > 1:
        return "more than one '/': write group/resource (subresources are not named here)"
    if slash and not group:
        return "no group before the '/': write the core group's resources without one (services)"
    if "." in resource:
        if slash:
            return f"{resource!r} is not a resource name: resource names have no dot"
        head, _, rest = resource.partition(".")
        if rest in _AGGREGATED_GROUPS:
            return _resource_problem(f"{rest}/{head}", rest, "/", head)
        if "." in rest or rest in DOTLESS_GROUPS:  # resource.group, as kubectl writes it
            # `Deployment.apps` is a kind: its resource is the plural (`apps/Deployment` is refused).
            plural = head if _RESOURCE_TEXT.fullmatch(head) else resource_of(head)
            return f"a resource and its group are written group/resource: {rest}/{plural}"
        return f"{resource!r} is an API group, not a resource: {resource}/* is every resource of it"
    if group in ("core", "v1"):
        return f"the core group has no name: write {resource} (without a group)"
    if group not in ("*", *DOTLESS_GROUPS) and not _GROUP_TEXT.fullmatch(group):
        return f"{group!r} is not an API group (lower-case DNS names: networking.k8s.io)"
    if group not in ("*", *DOTLESS_GROUPS) and "." not in group:
        return (
            f"{group!r} is not an API group: groups other than {', '.join(DOTLESS_GROUPS[1:])} "
            "have a dot (pods/exec and other subresources are not named here: pods sends pods)"
        )
    if resource != "*" and not _RESOURCE_TEXT.fullmatch(resource):
        return (
            f"{resource!r} is not a resource name: resources are the lower-case plurals the API "
            "server serves (Service: services, NetworkPolicy: networkpolicies)"
        )
    if group in REVIEW_GROUPS:
        return (
            f"the {group} group serves token and access reviews, which store nothing and carry "
            "credentials: they are never sent to the webhook"
        )
    if group in _AGGREGATED_GROUPS:
        return (
            f"the {group} group is served by an aggregated API server (metrics-server or an "
            "adapter), whose requests never pass kube-apiserver's admission: no webhook is called "
            "for them, so nothing would be sent"
        )
    reviews = {resource_of(k) for _, k in REVIEW_KINDS}
    if group == "*" and resource in reviews:
        return (
            f"{resource} are token or access reviews, which store nothing and carry credentials: "
            "they are never sent to the webhook"
        )
    for (served, plural), why in _SENDS_NOTHING.items():
        if resource == plural and group in (served, "*"):
            return f"nothing is ever sent for it: {why}"
    known = builtin_resources()
    if resource == "*" or resource in known.get(group, ()):
        return ""
    name = group or "the core group"
    plural = next((p for served in known.values() for p in served if _singular(p) == resource), "")
    if group == "*":  # a custom plural is anyone's; a built-in kind's singular is a typo
        return f"{resource!r} is a singular: write */{plural}" if plural else ""
    if group not in known:  # a CRD's group (gateway.networking.k8s.io too): its plurals are its own
        return ""
    meant = plural or resource
    serving = sorted(g for g, served in known.items() if meant in served)
    written = ", ".join(meant if not g else f"{g}/{meant}" for g in serving)
    if group in serving:
        return f"{resource!r} is a singular: {name} serves {meant!r} (write {group}{slash}{meant})"
    if serving:
        return f"{name} serves no {resource!r}: write {written}"
    close = difflib.get_close_matches(resource, sorted(known[group]), n=3)
    also = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"{name} serves no {resource!r}{also}: a built-in group's resources are its plurals"


def _singular(plural: str) -> str:
    """The lower-case kind a built-in plural is served for (`ingresses` -> `ingress`)."""
    from trustgate.kinds import CLUSTER_SCOPED, NAMESPACED, resource_of

    for _, kind in CLUSTER_SCOPED | NAMESPACED:
        if resource_of(kind) == plural:
            return kind.lower()
    return ""


def _parse_commits(section: Mapping[str, Any], *, origin: str, base: Path, tree: Any) -> CommitSettings:
    """Build `CommitSettings`; requiring signatures without naming a signer is an error."""
    signers = base / section["allowedSigners"] if "allowedSigners" in section else None
    revoked = base / section["revokedSigners"] if "revokedSigners" in section else None
    if revoked is not None and signers is None:
        line = yamlio.locate(tree, ("commits", "revokedSigners"))
        raise ConfigError(
            "commits.revokedSigners names revoked SSH keys, but commits.allowedSigners allows none",
            where=f"{origin}:{line}" if line else origin,
            hint="set commits.allowedSigners too, or remove commits.revokedSigners",
        )
    keys = tuple(base / k for k in section.get("gpgKeys", ()))
    require = section.get("requireSignatures", bool(signers or keys))
    if require and not (signers or keys):
        line = yamlio.locate(tree, ("commits", "requireSignatures"))
        raise ConfigError(
            "commits.requireSignatures is true but no signer is allowed",
            where=f"{origin}:{line}" if line else origin,
            hint="name an SSH allowed_signers file (commits.allowedSigners) or GPG keys (commits.gpgKeys)",
        )
    return CommitSettings(
        require_signatures=require,
        allowed_signers=signers,
        revoked_signers=revoked,
        gpg_keys=keys,
        authors=tuple(section.get("authors", ())),
        committers=tuple(section.get("committers", ())),
        approvers=tuple(section.get("approvers", ())),
        protected_kinds=tuple(section.get("protectedKinds", DEFAULT_PROTECTED_KINDS)),
        allow_rollback=section.get("allowRollback", False),
    )


def _parse_presync(section: Mapping[str, Any]) -> PresyncSettings:
    defaults = PresyncSettings()
    return PresyncSettings(
        paths=tuple(section.get("paths", defaults.paths)),
        max_commits=section.get("maxCommits", defaults.max_commits),
        max_files=section.get("maxFiles", defaults.max_files),
        max_tree_bytes=section.get("maxTreeBytes", defaults.max_tree_bytes),
        git_timeout_seconds=section.get("gitTimeoutSeconds", defaults.git_timeout_seconds),
        notes=section.get("notes", defaults.notes),
        reconciler=section.get("reconciler", defaults.reconciler),
        argocd_recurse=section.get("argocd", {}).get("recurse", defaults.argocd_recurse),
    )


def _parse_images(
    section: Mapping[str, Any], *, origin: str, base: Path, tree: Any, data: Mapping[str, Any]
) -> ImagesSettings:
    """Build `ImagesSettings`, checking what the schema cannot: names that must refer to each other."""

    def where(*path: str | int) -> str:
        line = yamlio.locate(tree, ("images", *path))
        return f"{origin}:{line}" if line else origin

    roots: dict[str, Path] = {}
    for i, item in enumerate(section.get("trustRoots", ())):
        if item["name"] == PUBLIC_GOOD or item["name"] in roots:
            raise ConfigError(
                f"trust root name {item['name']!r} is already defined", where=where("trustRoots", i, "name")
            )
        path = base / item["trustedRoot"]
        if not path.is_file():  # checked here, used or not: a root nothing reads would be missed
            raise ConfigError(
                f"trust root {item['name']!r}: cannot read its trusted root {path}: "
                + ("not a file" if path.exists() else "no such file"),
                where=where("trustRoots", i, "trustedRoot"),
                hint="give the path of its Sigstore trusted_root.json, relative to this configuration file",
            )
        roots[item["name"]] = path
    authorities: list[AuthorityConfig] = []
    for i, item in enumerate(section.get("authorities", ())):
        name = item["name"]
        if any(a.name == name for a in authorities):
            raise ConfigError(f"authority name {name!r} is used twice", where=where("authorities", i, "name"))
        if "key" in item:
            key = item["key"]
            if "path" in key:
                key_path = base / key["path"]
                try:
                    pem = key_path.read_bytes()
                except OSError as e:
                    raise ConfigError(
                        f"authority {name!r}: cannot read the public key {key_path}: {e.strerror or e}",
                        where=where("authorities", i, "key", "path"),
                    ) from e
                key_origin = str(key_path)
            else:
                pem = key["pem"].encode()
                key_origin = where("authorities", i, "key", "pem")
            key_root = key.get("trustRoot")
            if key_root is not None and key_root != PUBLIC_GOOD and key_root not in roots:
                raise ConfigError(
                    f"authority {name!r} names trust root {key_root!r}, which is not defined",
                    where=where("authorities", i, "key", "trustRoot"),
                    hint=f"define it under images.trustRoots, or use {PUBLIC_GOOD!r}",
                )
            authorities.append(
                AuthorityConfig(name=name, key_pem=pem, key_origin=key_origin, key_trust_root=key_root)
            )
        else:
            keyless = item["keyless"]
            root = keyless.get("trustRoot", PUBLIC_GOOD)
            if root != PUBLIC_GOOD and root not in roots:
                raise ConfigError(
                    f"authority {name!r} names trust root {root!r}, which is not defined",
                    where=where("authorities", i, "keyless", "trustRoot"),
                    hint=f"define it under images.trustRoots, or use {PUBLIC_GOOD!r}",
                )
            identities = tuple(
                IdentityConfig(
                    subject=ident.get("subject"),
                    subject_regex=ident.get("subjectRegExp"),
                    issuer=ident.get("issuer"),
                    issuer_regex=ident.get("issuerRegExp"),
                )
                for ident in keyless["identities"]
            )
            for j, ident in enumerate(identities):
                for pattern in (ident.subject_regex, ident.issuer_regex):
                    if pattern is None:
                        continue
                    try:
                        re.compile(pattern)
                    except re.error as e:
                        raise ConfigError(
                            f"authority {name!r}: {pattern!r} is not a valid regular expression: {e}",
                            where=where("authorities", i, "keyless", "identities", j),
                        ) from e
            authorities.append(AuthorityConfig(name=name, trust_root=root, identities=identities))
    known = {a.name for a in authorities}
    rules: list[ImageRule] = []
    for i, item in enumerate(section.get("rules", ())):
        if any(r.name == item["name"] for r in rules):
            raise ConfigError(
                f"image rule name {item['name']!r} is used twice", where=where("rules", i, "name")
            )
        for key in ("images", "exclude"):
            for k, glob in enumerate(item.get(key, ())):
                # Rules match registry/repository only (ADR 5): a tag or digest could never match,
                # and a rule written for one would silently judge nothing. A `:` is a port only in
                # a registry followed by `/`; in the last segment (`**:latest`) it is a tag.
                if "@" in glob or ":" in glob.rpartition("/")[2] or ":" in glob.partition("/")[2]:
                    raise ConfigError(
                        f"image rule {item['name']!r}: {glob!r} names a tag or digest, and rules "
                        "match registry/repository only (whoever pushes picks the tag)",
                        where=where("rules", i, key, k),
                        hint="drop the :tag or @digest (requireDigest makes manifests pin digests)",
                    )
                # Every name has a registry and a repository (`nginx` is docker.io/library/nginx,
                # and so is that pattern: `oci.reference.name_pattern`). Without a `/`, a pattern
                # that starts with a wildcard stays as written and only `**` (which crosses
                # segments) lets it match; one with a dot is a registry alone (`ghcr.io`), meant
                # as `ghcr.io/**`. One ending in `/` matches no name either.
                # Repository names are lower case (the distribution spec), so an upper-case letter
                # after the registry (`ghcr.io/Acme/*`, `Nginx`) matches nothing; a host is read in
                # lower case, and a first part with an upper-case letter is one (`INTERNAL/**`,
                # as Docker and `Reference.parse` read `INTERNAL/app`: `model.names_registry`).
                first, slash, path = glob.partition("/")
                hub = not slash or not names_registry(first)
                if any(c.isupper() for c in (glob if hub else path)):
                    hint = f"write {glob.lower() if hub else first + '/' + path.lower()!r}"
                    if not hub and not names_registry(first.lower()):  # a host by its case alone
                        hint += f" (registry {first.lower()}), or docker.io/{glob.lower()} for Docker Hub's"
                    raise ConfigError(
                        f"image rule {item['name']!r}: {glob!r} can match no image: repository names "
                        "are lower case",
                        where=where("rules", i, key, k),
                        hint=hint,
                    )
                _refuse_ipv4_spelled_otherwise(
                    glob, f"image rule {item['name']!r}", where=where("rules", i, key, k)
                )
                bare = "/" not in glob and "**" not in glob
                if (bare and (glob[:1] in ("*", "?", "[") or "." in glob)) or glob.endswith("/"):
                    raise ConfigError(
                        f"image rule {item['name']!r}: {glob!r} can match no image: rules match "
                        "registry/repository after normalisation, which always holds a '/' "
                        "('*' stays within one segment)",
                        where=where("rules", i, key, k),
                        hint="write registry/repository (docker.io/library/nginx, ghcr.io/acme/*), "
                        "or '**' for every image",
                    )
        signatures = item.get("signatures", {})
        names = tuple(signatures.get("authorities", ()))
        threshold = signatures.get("threshold", 1)
        for name in names:
            if name not in known:
                raise ConfigError(
                    f"image rule {item['name']!r} names authority {name!r}, which is not defined",
                    where=where("rules", i, "signatures"),
                    hint=f"defined authorities: {', '.join(sorted(known)) or 'none'}",
                )
        if names and threshold > len(set(names)):
            raise ConfigError(
                f"image rule {item['name']!r}: threshold {threshold} is more than its "
                f"{len(set(names))} authorities",
                where=where("rules", i, "signatures", "threshold"),
            )
        attestations = []
        for j, att in enumerate(item.get("attestations", ())):
            att_authorities = tuple(att.get("authorities", names))
            if not att_authorities:
                raise ConfigError(
                    f"attestation {att['name']!r} of image rule {item['name']!r} names no authority",
                    where=where("rules", i, "attestations", j),
                    hint="list `authorities` on the attestation or under the rule's `signatures`",
                )
            for name in att_authorities:
                if name not in known:
                    raise ConfigError(
                        f"attestation {att['name']!r} names authority {name!r}, which is not defined",
                        where=where("rules", i, "attestations", j, "authorities"),
                    )
            attestations.append(
                AttestationRequirement(
                    name=att["name"],
                    predicate_type=PREDICATE_ALIASES.get(att["predicateType"], att["predicateType"]),
                    authorities=att_authorities,
                    policy_path=_attestation_policy_path(att.get("policy"), base),
                    policy_text=att.get("rego"),
                    builtin=att["policy"]
                    if str(att.get("policy", "")) in BUILTIN_ATTESTATION_POLICIES
                    else None,
                )
            )
        rules.append(
            ImageRule(
                name=item["name"],
                images=tuple(item["images"]),
                exclude=tuple(item.get("exclude", ())),
                mode=Mode(item["mode"]) if "mode" in item else None,
                require_digest=item.get("requireDigest", False),
                authorities=names,
                threshold=threshold,
                attestations=tuple(attestations),
                summaries=_parse_summary_acceptance(
                    item.get("summaries", {}).get("accept"),
                    base,
                    where=functools.partial(where, "rules", i),
                    known=known,
                ),
                summary_build_level=_build_level(
                    item,
                    attestations,
                    signature_authorities=names,
                    issuing="issue" in section.get("summaries", {}),
                    data=data,
                    where=functools.partial(where, "rules", i),
                ),
            )
        )
    registries = section.get("registries", {})
    cache = section.get("cache", {})
    registry_defaults, cache_defaults = RegistryConfig(), CacheConfig()
    return ImagesSettings(
        trust_roots=roots,
        authorities=tuple(authorities),
        rules=tuple(rules),
        unmatched=section.get("unmatched", "allow"),
        registries=RegistryConfig(
            insecure=tuple(registries.get("insecure", ())),
            node_local=tuple(registries.get("nodeLocal", ())),
            ca_file=(base / registries["caFile"]) if "caFile" in registries else None,
            docker_config=(base / registries["dockerConfig"]) if "dockerConfig" in registries else None,
            timeout_seconds=registries.get("timeoutSeconds", registry_defaults.timeout_seconds),
            concurrency=registries.get("concurrency", registry_defaults.concurrency),
            deadline_seconds=registries.get("deadlineSeconds", registry_defaults.deadline_seconds),
            breaker_threshold=registries.get("breaker", {}).get(
                "threshold", registry_defaults.breaker_threshold
            ),
            breaker_base_seconds=registries.get("breaker", {}).get(
                "baseSeconds", registry_defaults.breaker_base_seconds
            ),
            breaker_max_seconds=registries.get("breaker", {}).get(
                "maxSeconds", registry_defaults.breaker_max_seconds
            ),
            max_requests_per_registry=registries.get(
                "maxRequestsPerRegistry", registry_defaults.max_requests_per_registry
            ),
            queue_seconds=registries.get("queueSeconds", registry_defaults.queue_seconds),
            http2=registries.get("http2", registry_defaults.http2),
            max_artifacts=registries.get("maxArtifacts", registry_defaults.max_artifacts),
            max_payload_bytes=registries.get("maxPayloadBytes", registry_defaults.max_payload_bytes),
            max_total_payload_bytes=registries.get(
                "maxTotalPayloadBytes", registry_defaults.max_total_payload_bytes
            ),
        ),
        cache=CacheConfig(
            ttl_seconds=cache.get("ttlSeconds", cache_defaults.ttl_seconds),
            negative_ttl_seconds=cache.get("negativeTtlSeconds", cache_defaults.negative_ttl_seconds),
            stale_if_error_seconds=cache.get("staleIfErrorSeconds", cache_defaults.stale_if_error_seconds),
            max_entries=cache.get("maxEntries", cache_defaults.max_entries),
            tag_ttl_seconds=cache.get("tagTtlSeconds", cache_defaults.tag_ttl_seconds),
            url=cache.get("url"),
            hmac_key_file=(base / cache["hmacKeyFile"]) if "hmacKeyFile" in cache else None,
        ),
        summaries=_parse_summaries(section.get("summaries", {}), base),
    )


def _at(origin: str, tree: Any, path: tuple[str | int, ...]) -> str:
    line = yamlio.locate(tree, path)
    return f"{origin}:{line}" if line else origin


def _refuse_ipv4_spelled_otherwise(glob: str, what: str, *, where: str) -> None:
    """Refuse a pattern whose registry is an IPv4 address spelled otherwise than a.b.c.d, or an
    IPv6 address embedding one: an image reference naming one is refused (`oci.reference`), so the
    pattern could match no image.

    Raises:
        ConfigError: the pattern's registry is such an address; the message says which form, and
            the hint what to write: the IPv4 address, or (6to4, Teredo: a relay's address, not the
            registry's) its DNS name.
    """
    first, slash, _ = glob.partition("/")
    # Only a registry can be an address: `1234/**` is Docker Hub's user 1234.
    found = _ipv4_mapped(first) if slash and names_registry(first) else None
    if found is None:
        return
    mapped, how, relayed = found
    _, colon, port = first.rpartition("]")[2].partition(":")
    mapped += colon + port
    raise ConfigError(
        f"{what}: {glob!r} can match no image: its registry {first} is {how}, and an image "
        "written with it is refused",
        where=where,
        hint=(
            f"write the registry as {mapped} ({mapped}/** and so on){octal_note(first)}"
            if relayed is None
            else f"name the registry by its DNS name, in the pattern and in its images ({relayed})"
        ),
    )


def _ipv4_mapped(registry: str) -> tuple[str, str, str | None] | None:
    """The IPv4 address a pattern's registry names in another spelling (`[::ffff:7f00:1]:5000`,
    `[64:ff9b::7f00:1]:5000`: `model.embedded_ipv4`; `127.1:5000`), with how it is written and, for
    a relayed form (`model.relayed_ipv4_note`), why that address is not the registry's; else None:
    an image reference naming such a host is refused (`oci.reference`), so a pattern for one
    matches nothing."""
    if not registry.startswith("["):
        host = registry.partition(":")[0]
        try:
            plain = socket.inet_ntoa(socket.inet_aton(host))
        except (OSError, ValueError):
            return None
        return None if plain == host else (plain, f"the IPv4 address {plain} spelled otherwise", None)
    try:
        address = ipaddress.IPv6Address(registry[1:].partition("]")[0])
    except ValueError:
        return None
    embedded = embedded_ipv4(address)
    if embedded is None:
        return None
    return str(embedded[0]), embedded[1], relayed_ipv4_note(address)


def _build_level(
    item: Mapping[str, Any],
    attestations: Sequence[AttestationRequirement],
    *,
    signature_authorities: Sequence[str],
    issuing: bool,
    data: Mapping[str, Any],
    where: Any,
) -> int | None:
    """`summaries.issue.buildLevel` of a rule: only beside the built-in provenance policy, the one
    whose passing a summary's level rests on; above L1 only where that provenance must be signed
    by authorities of its own (the builders'), none of them the rule's signature authorities
    (found in review: inheriting them, provenance the release workflow signed was claimed L3), and,
    where summaries are issued and the config's own data says, with builders listed."""
    level = item.get("summaries", {}).get("issue", {}).get("buildLevel")
    if level is None:
        return None
    provenance = [a for a in attestations if a.builtin == "builtin:slsa-provenance"]
    if not provenance:
        raise ConfigError(
            f"summaries.issue.buildLevel {level}: the rule has no attestation with the built-in "
            "provenance policy, which the level rests on",
            where=where("summaries", "issue", "buildLevel"),
            hint="add an attestation with predicateType slsaprovenance1 and policy "
            '"builtin:slsa-provenance", and list the builders under data.trustgate.slsa.builders',
        )
    level = int(level)
    if level <= 1:
        return level
    own = {a["name"]: a.get("authorities") for a in item.get("attestations", ())}
    for att in provenance:
        listed = own.get(att.name)
        shared = sorted(set(att.authorities) & set(signature_authorities))
        if not listed or shared:
            said = (
                f"lists {', '.join(shared)}, the rule's signature authorities"
                if listed
                else "lists no authorities of its own and so takes the rule's signature authorities"
            )
            raise ConfigError(
                f"summaries.issue.buildLevel {level}: the provenance attestation {att.name!r} {said}; "
                "a level above 1 would be claimed for provenance the tenant's workflow, not a "
                "builder, signed",
                where=where("summaries", "issue", "buildLevel"),
                hint=f"set `authorities` on attestation {att.name!r} to the builders' signing "
                "identities (an images.authorities entry per builder, not one that signs the "
                "image), or leave buildLevel unset (Build L1)",
            )
    if issuing and not builders_listed(data, absent=True):
        raise ConfigError(
            f"summaries.issue.buildLevel {level}: data.trustgate.slsa.builders is empty or not a "
            "list of builder ids; no level above 1 is claimed without builders listed",
            where=where("summaries", "issue", "buildLevel"),
            hint="list the builders under data.trustgate.slsa.builders, or leave buildLevel unset",
        )
    return level


def builders_listed(data: Mapping[str, Any], *, absent: bool = False) -> bool:
    """Whether `data.trustgate.slsa.builders` is a non-empty list of non-empty strings; `absent`:
    what to answer where it is not set at all (the config's own data: data files may set it)."""
    trustgate = data.get("trustgate")
    slsa = trustgate.get("slsa") if isinstance(trustgate, Mapping) else None
    if not isinstance(slsa, Mapping) or "builders" not in slsa:
        return absent
    builders = slsa["builders"]
    return isinstance(builders, list) and bool(builders) and all(isinstance(b, str) and b for b in builders)


def _parse_summaries(section: Mapping[str, Any], base: Path) -> SummariesSettings:
    issue = section.get("issue")
    accept = section.get("accept", {})
    defaults = SummariesSettings()
    return SummariesSettings(
        issue=SummaryIssuing(
            verifier_id=issue["verifierId"], key_path=base / issue["key"], policy_uri=issue.get("policyUri")
        )
        if issue
        else None,
        revocation_refresh_seconds=accept.get(
            "revocationRefreshSeconds", defaults.revocation_refresh_seconds
        ),
    )


def _parse_summary_acceptance(
    section: Mapping[str, Any] | None, base: Path, *, where: Any, known: Collection[str] = ()
) -> SummaryAcceptance | None:
    if not section:
        return None
    verifiers = []
    for j, item in enumerate(section["verifiers"]):
        if "authority" in item:  # the schema allows exactly one of key and authority
            if item["authority"] not in known:
                raise ConfigError(
                    f"verifier {item['id']!r} names authority {item['authority']!r}, which is not defined",
                    where=where("summaries", "accept", "verifiers", j, "authority"),
                    hint=f"defined authorities: {', '.join(sorted(known)) or 'none'}",
                )
            verifiers.append(SummaryVerifier(id=item["id"], authority=item["authority"]))
            continue
        key_path = base / item["key"]
        try:
            pem = key_path.read_bytes()
        except OSError as e:
            raise ConfigError(
                f"verifier {item['id']!r}: cannot read its public key {key_path}: {e.strerror or e}",
                where=where("summaries", "accept", "verifiers", j, "key"),
            ) from e
        verifiers.append(SummaryVerifier(id=item["id"], key_pem=pem, key_origin=str(key_path)))
    defaults = SummaryAcceptance(verifiers=())
    same_policy = section.get("samePolicy", defaults.same_policy)
    require_levels = tuple(section.get("requireLevels", ()))
    if not same_policy and not require_levels:
        # A summary issued under any other policy (a signature-only rule, say) would stand in for
        # this rule's attestations: what it must vouch for has to be said (fail closed).
        raise ConfigError(
            "summaries.accept: samePolicy is false but requireLevels is not set: a summary issued "
            "under any policy, however weak, would admit images this rule denies",
            where=where("summaries", "accept", "samePolicy"),
            hint="set summaries.accept.requireLevels to the SLSA levels a summary must claim "
            "(e.g. [SLSA_BUILD_LEVEL_3]), or samePolicy: true",
        )
    return SummaryAcceptance(
        verifiers=tuple(verifiers),
        max_age_seconds=section.get("maxAgeSeconds", defaults.max_age_seconds),
        same_policy=same_policy,
        clock_skew_seconds=section.get("clockSkewSeconds", defaults.clock_skew_seconds),
        require_levels=require_levels,
    )


BUILTIN_ATTESTATION_POLICIES = {
    "builtin:slsa-provenance": "attestations/slsa_provenance.rego",
    "builtin:vulnerabilities": "attestations/vulnerabilities.rego",
}


def _attestation_policy_path(value: str | None, base: Path) -> Path | None:
    if value is None:
        return None
    if value.startswith("builtin:"):
        if value not in BUILTIN_ATTESTATION_POLICIES:
            raise ConfigError(
                f"no bundled attestation policy {value!r}",
                hint=f"bundled: {', '.join(BUILTIN_ATTESTATION_POLICIES)}",
            )
        return builtin_policy_dir() / BUILTIN_ATTESTATION_POLICIES[value]
    return base / value


def gatekeeper_path(base: Path, value: str) -> Path:
    """`builtin:<set>` names a bundled Gatekeeper constraint set; anything else is a path."""
    if value.startswith("builtin:"):
        return builtin_policy_dir() / "gatekeeper" / value.removeprefix("builtin:")
    return base / value


def _explain(error: Any) -> str:  # a jsonschema.ValidationError
    if error.validator == "additionalProperties":
        return f"{error.message} (check the spelling against the schema)"
    if error.validator == "oneOf" and list(error.absolute_path)[:2] == ["manifests", "policies"]:
        return "a policy source needs exactly one of `builtin` or `path`"
    if error.validator == "minItems" and list(error.absolute_path) == ["presync", "paths"]:
        # An empty list would judge no file and pass every commit: the gate would be a no-op.
        return (
            "is empty: the pre-sync gate would judge no file and let every commit through; list what "
            "the reconciler applies (`paths: [clusters/prod]`), or leave `paths` out (or write "
            "`paths: [.]`) to judge the whole tree"
        )
    if error.validator in ("maximum", "exclusiveMaximum"):
        why = MAXIMUM_WHY.get(tuple(str(p) for p in error.absolute_path)[-3:])
        if why:
            return f"{error.message}: {why}"
    return str(error.message)
