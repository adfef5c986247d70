"""The values every gate shares: documents in, findings and decisions out.

This module owns plain data only. It does no I/O and knows nothing of YAML,
Rego or the command line; loaders build `Document`s, `Gate.evaluate` turns
them into a `Decision`, and the report writers render that decision.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

JsonPath = tuple[str | int, ...]
NOT_EVALUATED_SOURCES = ("input", "engine", "registry")  # "could not evaluate", not "denied"
# The names kustomize takes for a directory's kustomization, in the order it looks for them
# (`konfig.RecognizedKustomizationFileNames`): the loader, the reference checks and the pre-sync
# gate read this one list.
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


class Severity(enum.StrEnum):
    """How a finding affects the verdict after the mode has been applied."""

    ERROR = "error"  # blocks: exit 1 / admission denied
    WARNING = "warning"  # shown, does not block (unless --fail-on warning)
    INFO = "info"  # recorded only: audit mode, waived findings, skipped checks


class Mode(enum.StrEnum):
    """What the gate does with a blocking finding."""

    ENFORCE = "enforce"
    WARN = "warn"
    AUDIT = "audit"


class Status(enum.StrEnum):
    """The outcome for one document."""

    PASSED = "passed"
    WARNED = "warned"
    FAILED = "failed"
    ERROR = "error"  # could not be evaluated (bad input)


class ExitCode(enum.IntEnum):
    """The documented exit codes of every trustgate command."""

    PASS = 0
    POLICY_FAILURE = 1
    USAGE = 2
    NOT_EVALUATED = 3


@dataclass(frozen=True, slots=True)
class Source:
    """Where a document came from: a file (or `-`) and the line its document starts on."""

    file: str
    line: int = 1
    index: int = 0  # position of the document in its file, 0-based
    rendered_from: str | None = None  # the kustomization directory, for rendered documents


@dataclass(frozen=True, slots=True)
class Origin:
    """The source document an object rendered from a kustomization came from.

    Attributes:
        obj: the object as written in its source file (`Document.source` names the file).
        tree: the source document's node tree, opaque here, like `Document.tree`.
        rendered_line: the line the object starts on in `kubectl kustomize`'s output.
    """

    obj: Mapping[str, Any]
    tree: Any
    rendered_line: int


@dataclass(slots=True)
class Document:
    """One document to evaluate: a Kubernetes object, or other structured data.

    Attributes:
        source: where the object was read.
        obj: the parsed object (a JSON-compatible mapping).
        tree: the loader's node tree, opaque here; the loader maps paths to lines with it.
        kubernetes: an object with apiVersion and kind; False for other structured data
            (a GitHub workflow, Helm values, Terraform JSON), which only the user's own
            policies check.
    """

    source: Source
    obj: Mapping[str, Any]
    tree: Any = None
    kubernetes: bool = True
    origin: Origin | None = None  # for an object rendered from a kustomization: its source document
    # The admission request it came in (`serve`), without its objects: who asked (userInfo), the
    # operation, dryRun; policies that read the request see these. None outside admission.
    request: Mapping[str, Any] | None = None
    # "item": unpacked from an object's `items`; "list": a whole `kind: *List`, kept only for the
    # user's own policies (conftest evaluates the whole document).
    list_role: str = ""
    # False when the text it was read from holds no `$` (nor an escape or `!!binary` that could
    # decode to one): no Flux variable reference anywhere in it, and no walk looks for one.
    may_hold_variable: bool = True
    # Who applies it with Flux's post-build substitution done (`Kustomization/flux-system/team-a`,
    # or the option of `check` that gave the values): `obj` is as it applies it. "" as written.
    applied_as: str = ""
    # With which values, where one application is judged with more than one value set ("with the
    # values the cluster holds before this change"); "" its own.
    applied_with: str = ""
    # Why the variable references still in `obj` were not resolved for that application, and whether
    # one is certainly wrong as applied (a variable no source sets, with no default).
    unresolved: tuple[str, ...] = ()
    unresolved_certain: bool = False
    # Read from a file, with SOPS metadata (`sops.mac`): Flux decrypts such an object and applies the
    # plaintext, so what is written here (ciphertext) is not what is applied.
    encrypted: bool = False
    # A document that is no Kubernetes object, read where YAML readers part (a `<<` overriding a key
    # written before it, `! true`): not judged by the user's policies, which would see one reading.
    unsure: InputProblem | None = None

    @property
    def applied_phrase(self) -> str:
        """`applied_with` as it follows "as X applies it" in messages: "" or " with ..."."""
        return f" {self.applied_with}" if self.applied_with else ""

    @property
    def api_version(self) -> str | None:
        value = self.obj.get("apiVersion")
        return value if isinstance(value, str) else None

    @property
    def kind(self) -> str | None:
        value = self.obj.get("kind")
        return value if isinstance(value, str) else None

    @property
    def metadata(self) -> Mapping[str, Any]:
        value = self.obj.get("metadata")
        return value if isinstance(value, Mapping) else {}

    @property
    def name(self) -> str | None:
        value = self.metadata.get("name")
        return value if isinstance(value, str) else None

    @property
    def namespace(self) -> str | None:
        value = self.metadata.get("namespace")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class ImageUse:
    """One image reference in one object: the reference as written and the field holding it."""

    reference: str
    path: JsonPath
    container: str = ""
    line: int | None = None
    # Why no digest can be known for it before it is deployed (Flux's ref.semver, ref.tag): not
    # verified, an image-digest failure where a rule covers it; or why the field cannot be read
    # for images at all (`manifests.images.UNREADABLE_PATCH`, `TOO_DEEP`): an image-reference failure.
    unresolvable: str = ""
    # A Helm chart Flux pulls through a HelmRepository, another object: what it pulls is known once
    # that object is (`manifests.images.resolve_charts`, over the documents judged together).
    chart: ChartPull | None = None


@dataclass(frozen=True, slots=True)
class ChartPull:
    """A Helm chart a Flux HelmChart or HelmRelease pulls from a HelmRepository (`sourceRef`)."""

    namespace: str  # the HelmRepository's, "" for the using object's own
    repository: str  # its name
    chart: str
    version: str  # as written, "*" when absent (Flux's default)
    verify: bool = False  # spec.verify: Flux's own signature check


@dataclass(frozen=True, slots=True)
class ImageProblem:
    """A requirement of an image rule that the image did not meet (or could not be checked)."""

    rule: str  # "image-signature", "image-attestation", "image-digest", "image-unverifiable", ...
    message: str
    fix: str = ""
    blocking: bool = True  # False: reported as a warning (e.g. an attestation policy's `warn`)
    attestation: str = ""  # the attestation requirement's name, for attestation problems


@dataclass(slots=True)
class ImageResult:
    """What the gate found out about one image: verdict, problems and the evidence behind them."""

    reference: str  # as written in the manifest (or on the command line)
    status: str  # "verified" | "failed" | "unverifiable" | "unmatched" | "skipped"
    rule: str | None = None  # the image rule that applied
    mode: Mode | None = None  # the rule's mode, when it overrides the top-level mode
    digest: str | None = None
    resolved_from: str | None = None  # the tag the digest was resolved from
    problems: list[ImageProblem] = field(default_factory=list)
    signatures: list[Mapping[str, Any]] = field(default_factory=list)  # evidence of each verified signature
    attestations: list[Mapping[str, Any]] = field(default_factory=list)  # evidence and verdict of each
    platforms: list[Mapping[str, str]] = field(default_factory=list)  # platform manifests of an index
    cache: str = "miss"  # "miss" | "hit" | "stale" (served past its TTL while the registry failed)
    duration_ms: float = 0.0
    # Rules that accept verification summaries: which path was taken ("summary": the VSA's digest,
    # verifier, time; "full": the summaries ignored and why). None: the rule accepts none.
    summary: Mapping[str, Any] | None = None
    issued: list[Mapping[str, Any]] = field(default_factory=list)  # summaries this decision signed
    # When the evidence was verified in full (RFC 3339, UTC): a result served from the cache keeps
    # its original time, which is what a summary issued from it is dated (not in decision records).
    verified_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reference": self.reference, "status": self.status}
        if self.rule is not None:
            out["rule"] = self.rule
        if self.digest is not None:
            out["digest"] = self.digest
        if self.resolved_from is not None:
            out["resolvedFrom"] = self.resolved_from
        if self.problems:
            out["problems"] = [
                {"rule": p.rule, "message": p.message, "blocking": p.blocking}
                | ({"attestation": p.attestation} if p.attestation else {})
                for p in self.problems
            ]
        out["signatures"] = [dict(s) for s in self.signatures]
        out["attestations"] = [dict(a) for a in self.attestations]
        if self.platforms:
            out["platforms"] = [dict(p) for p in self.platforms]
        if self.summary is not None:
            out["summary"] = dict(self.summary)
        if self.issued:
            out["summariesIssued"] = [dict(i) for i in self.issued]
        out["cache"] = self.cache
        out["durationMs"] = round(self.duration_ms, 3)
        return out


@dataclass(frozen=True, slots=True)
class InputProblem:
    """A document or file that could not be read; evaluation of the others goes on."""

    source: Source
    rule: str  # e.g. "input/invalid-yaml"
    message: str
    hint: str = ""


@dataclass(frozen=True, slots=True)
class AppliedException:
    """An exception (waiver) that matched a finding."""

    name: str
    owner: str
    reason: str
    expires: str
    expired: bool = False


@dataclass(slots=True)
class Finding:
    """One thing a check found about one document.

    `severity` is the effect after mode and exceptions; `rule_severity` is what
    the rule itself asked for (`error` for deny/violation, `warning` for warn).
    """

    rule: str
    severity: Severity
    message: str
    source: str  # "schema", "rego", "input", "trustgate"
    rule_severity: Severity = Severity.ERROR
    fix: str = ""
    path: JsonPath = ()
    line: int | None = None
    policy: str = ""  # the Rego package or schema id the finding came from
    exception: AppliedException | None = None
    note: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "severity": str(self.severity),
            "message": self.message,
            "source": self.source,
        }
        if self.rule_severity != self.severity:
            out["ruleSeverity"] = str(self.rule_severity)
        if self.fix:
            out["fix"] = self.fix
        if self.path:
            out["path"] = render_path(self.path)
        if self.line is not None:
            out["line"] = self.line
        if self.policy:
            out["policy"] = self.policy
        if self.exception is not None:
            out["exception"] = {
                "name": self.exception.name,
                "owner": self.exception.owner,
                "reason": self.exception.reason,
                "expires": self.exception.expires,
                "expired": self.exception.expired,
            }
        if self.note:
            out["note"] = self.note
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out


@dataclass(slots=True)
class DocumentResult:
    """Everything found about one document (or one unreadable input)."""

    source: Source
    api_version: str | None
    kind: str | None
    namespace: str | None
    name: str | None
    findings: list[Finding]
    obj: Mapping[str, Any] | None = field(default=None, repr=False)  # the input, kept when a gate logs
    images: list[ImageUse] = field(default_factory=list)  # filled when image rules are configured
    # A manifest of a kind whose scope is unknown (no CRD given): `namespace` is as written, and the
    # API server clears it if the kind is cluster-scoped, so an exception's `namespaces` may not
    # cover it.
    scope_unknown: bool = False
    # A Flux HelmRepository (with image rules): its OCI registry and path, "" when it is not an OCI
    # one; None for any other object. Charts pulled through it are resolved against it.
    chart_repository: str | None = None

    @property
    def status(self) -> Status:
        if not self.findings:  # most documents; a report asks several times for each
            return Status.PASSED
        severities = {f.severity for f in self.findings}
        if any(f.source in NOT_EVALUATED_SOURCES for f in self.findings):
            return Status.ERROR
        if Severity.ERROR in severities:
            return Status.FAILED
        if Severity.WARNING in severities:
            return Status.WARNED
        return Status.PASSED

    @property
    def label(self) -> str:
        """`Kind/namespace/name` as a reader expects it."""
        kind = self.kind or "?"
        name = self.name or "?"
        return f"{kind}/{self.namespace}/{name}" if self.namespace else f"{kind}/{name}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.source.file,
            "line": self.source.line,
            "apiVersion": self.api_version,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "status": str(self.status),
            "findings": [f.to_json() for f in self.findings],
        }
        if self.source.rendered_from:
            out["renderedFrom"] = self.source.rendered_from
        return out


@dataclass(frozen=True, slots=True)
class Summary:
    documents: int
    passed: int
    failed: int
    warnings: int
    errors: int

    def to_json(self) -> dict[str, int]:
        return {
            "documents": self.documents,
            "passed": self.passed,
            "failed": self.failed,
            "warnings": self.warnings,
            "errors": self.errors,
        }


@dataclass(slots=True)
class Decision:
    """The verdict of one gate run over a set of documents."""

    gate: str
    mode: Mode
    results: list[DocumentResult]
    policy_revision: str = ""
    duration_ms: float = 0.0
    notes: list[str] = field(default_factory=list)  # e.g. expired exceptions, skipped kinds
    images: list[ImageResult] = field(default_factory=list)  # every distinct image verified
    record_id: str = ""  # the id of its record in the decision log, once committed
    planned_id: str = ""  # the id its record will get, when something (a summary) named it before
    record_error: str = ""  # it could not be recorded and the failure policy is closed: exit 3

    @property
    def summary(self) -> Summary:
        statuses = [r.status for r in self.results]
        return Summary(
            documents=len(self.results),
            passed=statuses.count(Status.PASSED) + statuses.count(Status.WARNED),
            failed=statuses.count(Status.FAILED),
            warnings=sum(1 for r in self.results for f in r.findings if f.severity == Severity.WARNING),
            errors=statuses.count(Status.ERROR),
        )

    @property
    def allowed(self) -> bool:
        return not any(f.severity == Severity.ERROR for r in self.results for f in r.findings)

    def exit_code(self, *, fail_on_warning: bool = False) -> ExitCode:
        """0 pass, 1 a blocking finding, 3 something could not be evaluated.

        An input that could not be evaluated wins over a policy failure: the
        verdict on the whole change is then unknown, not merely "failed".
        """
        summary = self.summary
        if summary.errors or self.record_error:
            return ExitCode.NOT_EVALUATED
        if not self.allowed:
            return ExitCode.POLICY_FAILURE
        if fail_on_warning and summary.warnings:
            return ExitCode.POLICY_FAILURE
        return ExitCode.PASS

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary.to_json(),
            "gate": self.gate,
            "mode": str(self.mode),
            "allowed": self.allowed,
            "policyRevision": self.policy_revision,
            "notes": list(self.notes),
            "results": [r.to_json() for r in self.results],
        } | ({"images": [i.to_json() for i in self.images]} if self.images else {})


def render_path(path: Sequence[str | int]) -> str:
    """`spec.containers[0].image`: the form kubectl and Kyverno print."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def names_registry(first: str) -> bool:
    """Whether `first`, the part of an image name before its first `/`, is a registry host[:port]
    rather than a Docker Hub path component: as Docker reads it (`reference.splitDockerDomain`), it
    holds a dot or a colon, is `localhost`, or has an upper-case letter (which no repository path
    has). `31337/miner` and `0xdead/tool` are Docker Hub's; `INTERNAL/app` is host `internal`'s.

    One test for every place that reads a name, a rule's pattern or a logged reference, so that they
    agree on which images a registry holds.
    """
    return "." in first or ":" in first or first == "localhost" or first != first.lower()


# IPv6 addresses that embed an IPv4 address (RFC 6052 section 2.2; RFC 4291 section 2.5.5).
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: only ever a /96
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: the network picks the length
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291: deprecated, still read by Go's ParseIP
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # RFC 2765 (SIIT): through a translator


def embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address that `address` is another spelling of or reaches through, with a phrase
    saying how (`is ...`, naming that address), or None for an IPv6 address of its own.

    An image whose registry is written so reaches the IPv4 host (or a relay of it) under a name no
    rule for `a.b.c.d` matches: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, but
    `::` and `::1`), IPv4-translated (`::ffff:0:a.b.c.d`, SIIT), NAT64 (`64:ff9b::/96`, and
    `64:ff9b:1::/48` read as a /96, the usual length), 6to4 (`2002::/16`, through the 6to4 router at
    the address) and Teredo (`2001::/32`, its client's address). The relayed forms are refused
    too: a registry is named by its IPv4 address or by DNS (`relayed_ipv4_note`).
    """
    if (mapped := address.ipv4_mapped) is not None:
        return mapped, f"an IPv4-mapped IPv6 address, another spelling of the IPv4 address {mapped}"
    low = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _IPV4_COMPATIBLE:
        if int(address) <= 1:  # `::` and `::1`: IPv6's own unspecified and loopback addresses
            return None
        return low, (
            "an IPv4-compatible IPv6 address (::a.b.c.d, deprecated by RFC 4291), another spelling "
            f"of the IPv4 address {low}"
        )
    if address in _IPV4_TRANSLATED:
        return low, (
            f"an IPv4-translated address (::ffff:0:a.b.c.d, RFC 2765): the IPv4 address {low} "
            "through a translator"
        )
    if address in _NAT64_WELL_KNOWN:
        return low, f"a NAT64 address (64:ff9b::/96, RFC 6052): the IPv4 address {low} through a translator"
    if address in _NAT64_LOCAL_USE:
        return low, (
            "a NAT64 address (64:ff9b:1::/48, RFC 8215): an IPv4 address through a translator, "
            f"{low} with the usual /96 prefix"
        )
    if (relay := address.sixtofour) is not None:
        return relay, f"a 6to4 address (2002::/16, RFC 3056), reached through the IPv4 address {relay}"
    if (teredo := address.teredo) is not None:
        return teredo[1], f"a Teredo address (2001::/32, RFC 4380) of the IPv4 client {teredo[1]}"
    return None


def relayed_ipv4_note(address: ipaddress.IPv6Address) -> str | None:
    """For a 6to4 or Teredo address, why the IPv4 address it embeds is not the registry's own (a
    relay's, or its client's NAT's), else None: a registry there is named by its DNS name, and a
    hint to write the embedded address would name another host."""
    if (relay := address.sixtofour) is not None:
        return f"{relay} is the 6to4 relay it is reached through, not the registry"
    if (teredo := address.teredo) is not None:
        return f"{teredo[1]} is the NAT its Teredo host is behind, reached through a relay, not the registry"
    return None


def octal_note(registry: str) -> str:
    """A note for a hint when a part of an IPv4 host has a leading 0, which the C resolver reads as
    octal (`0127.0.0.1` is 87.0.0.1, not 127.0.0.1); "" otherwise."""
    parts = registry.partition(":")[0].split(".")
    octal = next((p for p in parts if len(p) > 1 and p[0] == "0" and set(p) <= set("01234567")), None)
    if octal is None:
        return ""
    return f" (a leading 0 makes a part octal: {octal} is {int(octal, 8)})"
