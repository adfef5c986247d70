"""What one decision record holds, and how it is built from a `Decision`.

Owns: the record format (`schemas/decision-v1.json`, `RECORD_SCHEMA`), the
evidence a gate passes in beside its decision (`DecisionContext`: actor,
repository and commit, images with digests, admission details), redaction of
stored input objects, and the index terms (namespace, image, digest, commit,
rule, actor) stores use to answer queries. Leaves out: storage and the hash
chain.

The record is plain JSON and encoded canonically (`canonical.py`); every
field a query filters on is derived from it by `index_terms`, so `log verify`
can prove that the query index says what the records say.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from trustgate import __version__
from trustgate.decisions.canonical import (
    canonical,
    content_hash,
    plain_canonical,
    sha256,
    timestamp,
    timestamp_micros,
    uuid7,
)
from trustgate.errors import ConfigError
from trustgate.model import Decision, DocumentResult, ExitCode, Finding, Severity, Summary

RECORD_SCHEMA = "trustgate.dev/decision/v1"
REDACTED = "[redacted]"
# kubectl keeps the whole applied object, Secret data included, in this annotation.
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Kinds whose plain fields hold a credential (authentication.k8s.io), as Secret data does: a
# TokenReview's bearer token, which the API server sends a webhook whose rules cover it, and the
# token a TokenRequest is issued.
_TOKENS = {"TokenReview": ("spec", "token"), "TokenRequest": ("status", "token")}
_CREDENTIAL_KINDS = frozenset({"Secret", *_TOKENS})
# Hashed before a redacted admission request's canonical bytes (see `redacted_request_hash`).
_REDACTED_REQUEST_DOMAIN = b"trustgate.dev/redacted-admission-request/v1\n"
_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
_POD_SPEC_LISTS = ("containers", "initContainers", "ephemeralContainers")


class Verdict:
    """The outcome of one decision, as recorded."""

    ALLOW = "allow"  # passed
    WARN = "warn"  # allowed, with warnings
    DENY = "deny"  # a blocking finding
    ERROR = "error"  # something could not be evaluated: the change was not allowed


VERDICTS = (Verdict.ALLOW, Verdict.WARN, Verdict.DENY, Verdict.ERROR)
TERM_KINDS = (
    "namespace",
    "image",
    "digest",
    "commit",
    "tree",
    "rule",
    "actor",
    "presync-to",
    "presync-from",
    "presync-ref",
)


@dataclass(frozen=True, slots=True)
class ImageEvidence:
    """An image a decision was about, with its digest when known.

    Attributes:
        reference: as written (`registry.example.com/shop/web:1.4`), or resolved.
        digest: `sha256:<hex>` when pinned, resolved or verified; None otherwise.
        source: where the evidence came from: `manifest`, `finding`, `resolved`, `verified`.
        details: further evidence (signature identity, attestation types), stored as given.
    """

    reference: str
    digest: str | None = None
    source: str = "manifest"
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reference": self.reference, "digest": self.digest, "source": self.source}
        if self.details:
            out["details"] = dict(self.details)
        return out


@dataclass(frozen=True, slots=True)
class GitIdentity:
    """A person (or bot) as git names them."""

    name: str = ""
    email: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "email": self.email}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asked for the decision: the API server user, the git identities, the CI run."""

    user: Mapping[str, Any] | None = None  # admission `userInfo` (username, uid, groups, extra)
    author: GitIdentity | None = None
    committer: GitIdentity | None = None
    signer: Mapping[str, str] | None = None  # {"status": "G", "key": "...", "identity": "..."} as git reports
    ci: Mapping[str, str] | None = None  # provider, repository, runId, runUrl, ref, sha, workflow, actor

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.user:
            out["user"] = dict(self.user)
        git: dict[str, Any] = {}
        if self.author:
            git["author"] = self.author.to_json()
        if self.committer:
            git["committer"] = self.committer.to_json()
        if self.signer:
            git["signer"] = dict(self.signer)
        if git:
            out["git"] = git
        if self.ci:
            out["ci"] = dict(self.ci)
        return out


@dataclass(frozen=True, slots=True)
class DecisionContext:
    """What a gate knows about a decision beyond the `Decision` itself.

    Attributes:
        actor: who asked.
        repository: the source repository (URL or `owner/name`).
        commit: the commit the inputs come from.
        ref: the branch or tag.
        tree: the git tree hash of `commit` (pre-sync), for finding approved trees again.
        operation: the admission operation (CREATE, UPDATE, DELETE, CONNECT).
        uid: the admission request uid.
        sub_resource: the admission request's subresource (`scale` of `kubectl scale`), with its
            resource as group/resource (`apps/deployments`): a Scale's object does not say which
            resource it scales, nor a status write's that it was one (stored as `subject.subResource`
            and `subject.resource`, only when there is one, so other records are unchanged).
        dry_run: the admission request's `dryRun` was true: the API server did not persist the
            change (stored as `subject.dryRun: true`, only when true, so older records are unchanged).
        images: image evidence from later stages (resolution, signatures); merged
            with the images found in the inputs and findings, by reference.
        input_hash: the digest of the whole input when the gate has one (an
            AdmissionReview's raw bytes); otherwise the hash of the per-object hashes.
        request: the admission request `input_hash` is of (its `object` and `oldObject`
            included). When redaction changes either, the raw bytes hold what was redacted, and
            their digest would let anyone with the record test guesses of it: the record's
            `inputHash` is then `redacted_request_hash` of this request instead.
        presync: what a pre-sync decision is about beyond the commit (stored as
            `subject.presync`): the gated ref, the paths, the scope they make
            (`scope`), the digest of the candidate's files under the paths
            (`pathsTree`) and where the gated ref was (`gatedBefore`); indexed as
            `presync-to` and `presync-from` so a rollback finds its own gate's moves.
    """

    actor: Actor = field(default_factory=Actor)
    repository: str | None = None
    commit: str | None = None
    ref: str | None = None
    operation: str | None = None
    tree: str | None = None
    uid: str | None = None
    sub_resource: tuple[str, str] | None = None  # (group/resource, subresource)
    dry_run: bool = False
    images: Sequence[ImageEvidence] = ()
    input_hash: str | None = None
    presync: Mapping[str, Any] | None = None
    request: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class RedactionRule:
    """A JSON path whose value is replaced by `[redacted]` before an object is stored.

    Path syntax: `spec.template.spec.containers[*].env[*].value`,
    `metadata.annotations["example.com/token"]`; `[*]` matches every list item
    or every key. `kinds` limits the rule to these kinds (all when empty).
    """

    path: str
    kinds: tuple[str, ...] = ()
    steps: tuple[str | int, ...] = ()

    @classmethod
    def parse(cls, path: str, kinds: Sequence[str] = ()) -> RedactionRule:
        """Raises: ConfigError: the path does not parse."""
        return cls(path=path, kinds=tuple(kinds), steps=_parse_path(path))


@dataclass(frozen=True, slots=True)
class RecordOptions:
    """How records are built: redaction and whether input objects are kept."""

    redact: tuple[RedactionRule, ...] = ()
    store_inputs: bool = True
    max_input_bytes: int = 1_048_576  # bytes of stored objects per record; beyond, only their hashes


_STAR = "*"


def _parse_path(path: str) -> tuple[str | int, ...]:
    steps: list[str | int] = []
    pos = 0
    token = re.compile(r'\.?([A-Za-z0-9_\-$/]+)|\[(\*|\d+)\]|\["((?:[^"\\]|\\.)*)"\]|\.?(\*)')
    while pos < len(path):
        m = token.match(path, pos)
        if m is None or m.end() == pos:
            raise ConfigError(
                f"redaction path {path!r}: cannot parse at {path[pos:]!r}",
                hint='use dots and brackets: spec.containers[*].env[*].value, metadata.annotations["a/b"]',
            )
        name, index, quoted, star = m.groups()
        if name is not None:
            steps.append(name)
        elif index is not None:
            steps.append(_STAR if index == "*" else int(index))
        elif quoted is not None:
            steps.append(quoted.replace('\\"', '"').replace("\\\\", "\\"))
        else:
            steps.append(_STAR if star else "")
        pos = m.end()
    if not steps:
        raise ConfigError("a redaction path must not be empty")
    return tuple(steps)


def redact(obj: Mapping[str, Any], rules: Sequence[RedactionRule] = ()) -> tuple[dict[str, Any], list[str]]:
    """A copy of `obj` safe to store, and the paths that were redacted.

    Credentials are never kept, whatever the rules: a `Secret`'s `data` and
    `stringData` values (each becomes `[redacted]`, keys stay so auditors see
    what changed), a TokenReview's `spec.token` (a bearer token) and a
    TokenRequest's `status.token`, and kubectl's last-applied annotation of
    any of them, which repeats them. A Secret manifest held inside another
    object (a `v1` List, a Crossplane `Object`, a Kyverno `generate` rule: any
    mapping below the top with `kind: Secret` and `apiVersion: v1` or none)
    loses its `data` and `stringData` the same way, and so does the holder's
    last-applied annotation. Then every rule whose kinds match applies.
    """
    out: dict[str, Any] = _copy_json(obj)
    done: list[str] = []
    kind = out.get("kind")
    if kind == "Secret":
        done.extend(_redact_secret(out, ""))
    elif isinstance(kind, str) and kind in _TOKENS:
        parent, key = _TOKENS[kind]
        holder = out.get(parent)
        if isinstance(holder, dict) and key in holder:
            holder[key] = REDACTED
            done.append(f"{parent}.{key}")
    nested = _nested_secrets(out) if _may_hold_secret(out) else []
    for path, secret in nested:
        done.extend(_redact_secret(secret, path))
    if (isinstance(kind, str) and kind in _CREDENTIAL_KINDS) or nested:
        metadata = out.get("metadata")
        annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
        if isinstance(annotations, dict) and _LAST_APPLIED in annotations:
            annotations[_LAST_APPLIED] = REDACTED
            done.append(f'metadata.annotations["{_LAST_APPLIED}"]')
    for rule in rules:
        if rule.kinds and kind not in rule.kinds:
            continue
        if _apply(out, rule.steps):
            done.append(rule.path)
    return out, done


def _redact_secret(secret: dict[str, Any], path: str) -> list[str]:
    """Replace a Secret manifest's `data` and `stringData` values (keys stay); the paths replaced."""
    done: list[str] = []
    for key in ("data", "stringData"):
        value = secret.get(key)
        if isinstance(value, dict):
            secret[key] = {k: REDACTED for k in value}
        elif value is not None:
            secret[key] = REDACTED
        else:
            continue
        done.append(f"{path}.{key}" if path else key)
    if path:  # the nested manifest's own last-applied annotation repeats its data
        metadata = secret.get("metadata")
        annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
        if isinstance(annotations, dict) and _LAST_APPLIED in annotations:
            annotations[_LAST_APPLIED] = REDACTED
            done.append(f'{path}.metadata.annotations["{_LAST_APPLIED}"]')
    return done


def _is_secret_manifest(node: Mapping[str, Any]) -> bool:
    """A Secret manifest holding data: `kind: Secret` with `apiVersion: v1` or none."""
    return (
        node.get("kind") == "Secret"
        and node.get("apiVersion", "v1") == "v1"
        and ("data" in node or "stringData" in node)
    )


def _nested_secrets(obj: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every Secret manifest below the top of `obj` that holds `data` or `stringData`, with its path.

    The walk is iterative and visits each value once, so it is bounded by what bounds the input
    (`MAX_DEPTH` and the body size at admission, `max_yaml_nodes` for files), not by the
    interpreter's recursion limit. Below a Secret manifest it does not look further: its data is
    replaced whole.
    """
    found: list[tuple[str, dict[str, Any]]] = []
    stack: list[tuple[str, Any]] = []
    for key, value in obj.items():
        if isinstance(value, dict | list):
            stack.append((_child(key), value))
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            if _is_secret_manifest(node):
                found.append((path, node))
                continue
            for key, value in node.items():
                if isinstance(value, dict | list):
                    stack.append((f"{path}{_child(key)}", value))
        else:
            for index, value in enumerate(node):
                if isinstance(value, dict | list):
                    stack.append((f"{path}[{index}]", value))
    found.sort(key=lambda item: item[0])
    return [(path.removeprefix("."), node) for path, node in found]


def _may_hold_secret(obj: Mapping[str, Any]) -> bool:
    """False when no string in `obj` is "Secret", so no Secret manifest is in it: one C encoding
    (~2 us for a Deployment) spares the walks (~30 us) on nearly every record. Whatever orjson
    cannot encode (an integer beyond 64 bits) is walked."""
    try:
        return b'"Secret"' in orjson.dumps(obj)
    except (orjson.JSONEncodeError, TypeError):
        return True


def _child(key: Any) -> str:
    """The path step to `key` of a mapping, in the redaction path syntax."""
    text = str(key)
    if re.fullmatch(r"[A-Za-z0-9_\-$]+", text):
        return f".{text}"
    return '["' + text.replace("\\", "\\\\").replace('"', '\\"') + '"]'


def _has_nested_secret(obj: Mapping[str, Any]) -> bool:
    """Whether `_nested_secrets(obj)` finds anything, without building paths (on every record: a
    plain loop, as `images_in`, is faster than generators; scalars, most of an object, are never
    pushed)."""
    if not _may_hold_secret(obj):
        return False
    stack: list[Any] = [v for v in obj.values() if isinstance(v, Mapping | list)]
    while stack:
        node = stack.pop()  # a mapping or a list
        values: Iterable[Any] = node
        if type(node) is dict or (type(node) is not list and isinstance(node, Mapping)):
            if node.get("kind") == "Secret" and _is_secret_manifest(node):
                return True
            values = node.values()
        for value in values:
            kind = type(value)
            if kind is dict or kind is list or (kind is not str and isinstance(value, Mapping | list)):
                stack.append(value)
    return False


def needs_redaction(obj: Mapping[str, Any], rules: Sequence[RedactionRule] = ()) -> bool:
    """Whether `redact(obj, rules)` may change anything (a credential kind, a nested Secret
    manifest, a rule that finds something)."""
    kind = obj.get("kind")
    return (
        (isinstance(kind, str) and kind in _CREDENTIAL_KINDS)
        or _has_nested_secret(obj)
        or any(_finds(obj, rule.steps) for rule in rules if not rule.kinds or kind in rule.kinds)
    )


def redacted_request_hash(request: Mapping[str, Any], rules: Sequence[RedactionRule] = ()) -> str | None:
    """The digest a record keeps for an admission request redaction changed; None when it changes
    nothing (the raw bytes' digest then says no more than the record does).

    `sha256:` over `_REDACTED_REQUEST_DOMAIN` followed by the canonical JSON (RFC 8785, as
    `canonical`) of the request with its `object` and `oldObject` redacted as `redact` does. The
    prefix is not JSON, so no raw AdmissionReview can hash alike. An object without `kind` is
    redacted as the kind `request.kind` names (as the gate types it to judge it).

    Raises:
        CanonicalError: as `canonical`.
    """
    changed = False
    out = dict(request)
    for key in ("object", "oldObject"):
        value = request.get(key)
        if not isinstance(value, Mapping):
            continue
        if "kind" not in value and isinstance(request.get("kind"), Mapping):
            value = {**value, "kind": request["kind"].get("kind")}
        if needs_redaction(value, rules):
            redacted, paths = redact(value, rules)
            if paths:
                out[key] = redacted
                changed = True
    if not changed:
        return None
    return sha256(_REDACTED_REQUEST_DOMAIN + canonical(out))


def _redacted_and_encoded(
    obj: Mapping[str, Any], rules: Sequence[RedactionRule]
) -> tuple[Mapping[str, Any], list[str], bytes]:
    """`redact(obj, rules)` and the result's canonical bytes; `obj` itself when nothing in it is
    redacted and it holds JSON's own types only (then a copy would equal it: 12 us saved on a
    bench object).

    Raises:
        CanonicalError: as `canonical`.
    """
    if type(obj) is dict and not needs_redaction(obj, rules):
        encoded = plain_canonical(obj)
        if encoded is not None:
            return obj, [], encoded
    redacted, paths = redact(obj, rules)
    return redacted, paths, canonical(redacted)


def _finds(node: Any, steps: tuple[str | int, ...]) -> bool:
    """Whether `_apply(node, steps)` would redact anything (it changes nothing)."""
    if not steps:
        return False
    step, rest = steps[0], steps[1:]
    if isinstance(node, dict):
        if step == _STAR:
            return bool(node) if not rest else any(_finds(v, rest) for v in node.values())
        return step in node and (not rest or _finds(node[step], rest))
    if isinstance(node, list):
        if step == _STAR:
            return bool(node) if not rest else any(_finds(v, rest) for v in node)
        if not isinstance(step, int) or not 0 <= step < len(node):
            return False
        return not rest or _finds(node[step], rest)
    return False


def _copy_json(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a JSON-like object whose every mapping and list is new (what redaction may change).

    `copy.deepcopy` does the same for JSON values at several times the cost
    (its memo and dispatch per node); a value of another type is deep-copied
    as before.
    """

    def copy_value(value: Any) -> Any:
        kind = type(value)
        if kind is str or kind is int or kind is bool or kind is float or value is None:
            return value
        if kind is dict:
            return {k: copy_value(v) for k, v in value.items()}
        if kind is list:
            return [copy_value(v) for v in value]
        if isinstance(value, Mapping):
            return {k: copy_value(v) for k, v in value.items()}
        return copy.deepcopy(value)

    return {k: copy_value(v) for k, v in obj.items()}


def _apply(node: Any, steps: tuple[str | int, ...]) -> bool:
    if not steps:
        return False
    step, rest = steps[0], steps[1:]
    if isinstance(node, dict):
        keys = list(node) if step == _STAR else ([step] if step in node else [])
    elif isinstance(node, list):
        if step == _STAR:
            keys = list(range(len(node)))
        else:
            keys = [step] if isinstance(step, int) and 0 <= step < len(node) else []
    else:
        return False
    hit = False
    for key in keys:
        if rest:
            hit = _apply(node[key], rest) or hit
        else:
            node[key] = REDACTED
            hit = True
    return hit


def images_in(obj: Mapping[str, Any]) -> list[str]:
    """Every image a Kubernetes object names in a pod spec, whatever the kind (in order, unique)."""
    found: dict[str, None] = {}
    stack: list[Any] = [obj]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                kind = type(value)
                if kind is str or kind is int or kind is bool:  # most of an object: nothing below
                    continue
                if key in _POD_SPEC_LISTS and isinstance(value, list):
                    for container in value:
                        if isinstance(container, dict) and isinstance(container.get("image"), str):
                            found.setdefault(container["image"])
                if isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return list(found)


def split_digest(reference: str) -> str | None:
    """The `sha256:` digest pinned in an image reference, if any."""
    m = _DIGEST.search(reference)
    return m.group(1) if m else None


def verdict_of(decision: Decision) -> str:
    return _verdict(decision.exit_code(), decision.summary)


def _verdict(code: ExitCode, summary: Summary) -> str:
    if code == ExitCode.NOT_EVALUATED:
        return Verdict.ERROR
    if code == ExitCode.POLICY_FAILURE:
        return Verdict.DENY
    if summary.warnings:
        return Verdict.WARN
    return Verdict.ALLOW


def build_record(
    decision: Decision,
    context: DecisionContext | None = None,
    *,
    options: RecordOptions | None = None,
    record_id: str | None = None,
    time: str | None = None,
) -> dict[str, Any]:
    """The record of one decision, ready to append (see `schemas/decision-v1.json`).

    Input objects come from `DocumentResult.obj` (kept by a gate that logs);
    they are redacted before they are hashed or stored. An object nothing is
    redacted in is stored as it is, not copied: encode the record (`append`)
    before changing either.

    Raises:
        CanonicalError: an input object holds a value JSON cannot encode canonically (NaN).
    """
    context = context or DecisionContext()
    options = options or RecordOptions()
    objects: list[dict[str, Any]] = []
    image_refs: dict[str, ImageEvidence] = {}
    stored_bytes = 0
    inputs_dropped = False
    for result in decision.results:
        entry = _object_entry(result)
        obj = result.obj
        if obj is not None:
            redacted, paths, encoded = _redacted_and_encoded(obj, options.redact)
            entry["inputHash"] = sha256(encoded)  # = content_hash(redacted), without encoding it twice
            if paths:
                entry["redacted"] = paths
            if options.store_inputs and stored_bytes + len(encoded) <= options.max_input_bytes:
                entry["object"] = redacted
                stored_bytes += len(encoded)
            elif options.store_inputs:
                inputs_dropped = True
            for image in images_in(obj):
                image_refs.setdefault(image, ImageEvidence(image, split_digest(image), "manifest"))
        for finding in result.findings:
            named = finding.metadata.get("image") if finding.metadata else None
            if isinstance(named, str) and named:
                image_refs.setdefault(named, ImageEvidence(named, split_digest(named), "finding"))
        objects.append(entry)
    for evidence in context.images:  # later stages know more: their evidence wins
        image_refs[evidence.reference] = evidence

    findings = [
        _finding_json(f, index) for index, result in enumerate(decision.results) for f in result.findings
    ]
    exceptions: dict[str, dict[str, Any]] = {}
    for result in decision.results:
        for f in result.findings:
            if f.exception is not None:
                exceptions.setdefault(
                    f.exception.name,
                    {
                        "name": f.exception.name,
                        "owner": f.exception.owner,
                        "reason": f.exception.reason,
                        "expires": f.exception.expires,
                        "expired": f.exception.expired,
                        "findings": 0,
                    },
                )["findings"] += 1
    input_hash = context.input_hash or content_hash([o.get("inputHash") for o in objects])
    redacted_input = False
    if context.input_hash and context.request is not None:
        redacted_hash = redacted_request_hash(context.request, options.redact)
        if redacted_hash is not None:
            input_hash, redacted_input = redacted_hash, True
    subject: dict[str, Any] = {"objects": objects, "images": [e.to_json() for e in image_refs.values()]}
    for key, value in (
        ("repository", context.repository),
        ("commit", context.commit),
        ("ref", context.ref),
        ("tree", context.tree),
        ("operation", context.operation),
        ("uid", context.uid),
    ):
        if value:
            subject[key] = value
    if context.sub_resource is not None:
        subject["resource"], subject["subResource"] = context.sub_resource
    if context.dry_run:
        subject["dryRun"] = True
    if context.presync:
        subject["presync"] = dict(context.presync)
    summary, code = decision.summary, decision.exit_code()  # each walks every finding: once
    record: dict[str, Any] = {
        "schema": RECORD_SCHEMA,
        "id": record_id or uuid7(),
        "time": time or timestamp(),
        "gate": decision.gate,
        "mode": str(decision.mode),
        "verdict": _verdict(code, summary),
        "exitCode": int(code),
        "summary": summary.to_json(),
        "actor": context.actor.to_json(),
        "subject": subject,
        "findings": findings,
        "exceptions": list(exceptions.values()),
        "policyRevision": decision.policy_revision,
        "inputHash": input_hash,
        "durationUs": round(decision.duration_ms * 1000),
        "trustgateVersion": __version__,
        "notes": list(decision.notes),
    }
    if redacted_input:
        record["notes"].append(
            "inputHash is of the admission request with its redacted values replaced, not of the raw review"
        )
    if inputs_dropped:
        record["notes"].append(
            f"input objects beyond {options.max_input_bytes} bytes are recorded by their hash only"
        )
    return record


def _object_entry(result: DocumentResult) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "apiVersion": result.api_version,
        "kind": result.kind,
        "namespace": result.namespace,
        "name": result.name,
        "file": result.source.file,
        "line": result.source.line,
        "status": str(result.status),
    }
    uid = (result.obj or {}).get("metadata", {}).get("uid") if isinstance(result.obj, Mapping) else None
    if isinstance(uid, str):
        entry["uid"] = uid
    return entry


def _finding_json(finding: Finding, index: int) -> dict[str, Any]:
    out = finding.to_json()
    out["object"] = index
    out.setdefault("ruleSeverity", str(finding.rule_severity))
    return out


def index_terms(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (kind, value) pairs a store indexes for a record, sorted and unique.

    Kinds: namespace, image (reference as written, and without its digest),
    digest, commit, tree (git tree hash), rule (findings above info), actor (git emails, the
    admission username, the CI actor), and for pre-sync records with `subject.presync`:
    presync-to (`scope:pathsTree`, what the gate would move its ref to) and presync-from
    (`scope:commit`, where the gate found its ref), and presync-ref (`refScope`: the repository
    and gated ref, whatever the paths; records from before it was kept have none). Records
    without `subject.presync`
    (older ones included) have neither, so they never count as a pre-sync approval.
    A pre-sync record's `subject.presync.commits` (every commit of the range) adds
    each commit, and its author's, committer's and signer's identities as actors;
    records written before it was kept have none and index as they always did.
    """
    terms: set[tuple[str, str]] = set()
    subject = record.get("subject") or {}
    for obj in subject.get("objects") or ():
        namespace = obj.get("namespace")
        if isinstance(namespace, str) and namespace:
            terms.add(("namespace", namespace))
    for image in subject.get("images") or ():
        reference = image.get("reference")
        if isinstance(reference, str) and reference:
            terms.add(("image", reference))
            bare = _DIGEST.sub("", reference)
            if bare != reference:
                terms.add(("image", bare))
        digest = image.get("digest")
        if isinstance(digest, str) and digest:
            terms.add(("digest", digest))
    commit = subject.get("commit")
    if isinstance(commit, str) and commit:
        terms.add(("commit", commit.lower()))
    tree = subject.get("tree")
    if isinstance(tree, str) and tree:
        terms.add(("tree", tree.lower()))
    presync = subject.get("presync")
    scope = presync.get("scope") if isinstance(presync, Mapping) else None
    if isinstance(presync, Mapping) and isinstance(scope, str) and scope:
        paths_tree = presync.get("pathsTree")
        if isinstance(paths_tree, str) and paths_tree:
            terms.add(("presync-to", f"{scope}:{paths_tree.lower()}"))
        before = presync.get("gatedBefore")
        if isinstance(before, str) and before:
            terms.add(("presync-from", f"{scope}:{before.lower()}"))
    if isinstance(presync, Mapping):
        ref_scope = presync.get("refScope")
        if isinstance(ref_scope, str) and ref_scope:
            terms.add(("presync-ref", ref_scope.lower()))
        for sha, identities in _range_commits(presync):
            terms.add(("commit", sha))
            terms.update(("actor", who) for who in identities)
    for finding in record.get("findings") or ():
        if finding.get("severity") in (Severity.ERROR, Severity.WARNING) or finding.get("exception"):
            terms.add(("rule", str(finding.get("rule"))))
    terms.update(("actor", a) for a in actors_of(record))
    return sorted(terms)


def _range_commits(presync: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """(sha, identities) of each commit in `subject.presync.commits`."""
    out = []
    commits = presync.get("commits")
    for commit in commits if isinstance(commits, list) else ():
        if not isinstance(commit, Mapping) or not isinstance(commit.get("sha"), str) or not commit["sha"]:
            continue
        identities = []
        for role, field_name in (("author", "email"), ("committer", "email"), ("signer", "identity")):
            who = commit.get(role)
            identities.append(who.get(field_name) if isinstance(who, Mapping) else None)
        out.append((commit["sha"].lower(), [w for w in identities if isinstance(w, str) and w]))
    return out


def actors_of(record: Mapping[str, Any]) -> list[str]:
    """The identities a record names, for `--actor` and the table view."""
    actor = record.get("actor") or {}
    out: list[str] = []
    user = actor.get("user") or {}
    if isinstance(user.get("username"), str):
        out.append(user["username"])
    git = actor.get("git") or {}
    for role in ("author", "committer"):
        email = (git.get(role) or {}).get("email")
        if isinstance(email, str) and email:
            out.append(email)
    signer = (git.get("signer") or {}).get("identity")
    if isinstance(signer, str) and signer:
        out.append(signer)
    ci_actor = (actor.get("ci") or {}).get("actor")
    if isinstance(ci_actor, str) and ci_actor:
        out.append(ci_actor)
    return list(dict.fromkeys(out))


def unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


# What reading a stored record that is not a decision record's shape raises (non-UTF-8 bytes, not
# JSON, a list, a `subject` that is a string, a `durationUs` of Infinity that no integer holds...): a
# row altered in the database. Views catch these around one record, flag it, and show the others;
# `trustgate log verify` names the change.
MALFORMED_RECORD = (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError)


def shape_problem(record: Mapping[str, Any]) -> str | None:
    """Why a stored record's fields are not of a decision record's types (None: they are), as every
    view reads them: `log show`, `log query`, `log prove`, the UI's pages, lists and archives.

    One check for all of them (`Entry.malformed` runs it), so that no view shows as a decision what
    another flags as malformed: an absent or empty field is fine, a present one must be of its type
    (`actor.user.groups` a list of strings, not the string `"system:masters"` read letter by letter).
    """
    problems: list[str] = []

    def shaped(value: Any, kind: type, name: str) -> Any:
        if value and not isinstance(value, kind):
            problems.append(f"{name} is a JSON {_json_type(value)}, not a {_JSON_NAMES[kind]}")
            return None
        return value

    def listed(value: Any, kind: type, name: str) -> list[Any]:
        items = shaped(value, list, name) or []
        for item in items:
            if not isinstance(item, kind):
                problems.append(f"{name}[] holds a JSON {_json_type(item)}, not a {_JSON_NAMES[kind]}")
                return []
        return list(items)

    for name in ("time", "gate", "verdict"):
        shaped(record.get(name), str, name)
    when = record.get("time")
    if when and isinstance(when, str) and timestamp_micros(when) is None:
        # Another form (no offset, `-23:59`, a date alone) sorts elsewhere than its moment as text
        # (`log query --since/--until`) and escapes the bounds `log verify` puts on a record's time.
        problems.append(
            f"time {when[:40]!r} is not a UTC time as trustgate writes it (2025-01-31T12:00:00.000000Z)"
        )
    subject = shaped(record.get("subject"), dict, "subject") or {}
    for name in ("repository", "commit", "ref", "tree", "operation", "uid", "resource", "subResource"):
        shaped(subject.get(name), str, f"subject.{name}")
    for o in listed(subject.get("objects"), dict, "subject.objects"):
        shaped(o.get("redacted"), list, "subject.objects[].redacted")
        for name in ("kind", "namespace", "name", "file"):
            shaped(o.get(name), str, f"subject.objects[].{name}")
    for f in listed(record.get("findings"), dict, "findings"):
        shaped(f.get("exception"), dict, "findings[].exception")
        shaped(f.get("rule"), str, "findings[].rule")
    for image in listed(subject.get("images"), dict, "subject.images"):
        shaped(image.get("reference"), str, "subject.images[].reference")
        details = shaped(image.get("details"), dict, "subject.images[].details") or {}
        for name in ("signatures", "attestations", "problems"):
            listed(details.get(name), dict, f"subject.images[].details.{name}")
    actor = shaped(record.get("actor"), dict, "actor") or {}
    user = shaped(actor.get("user"), dict, "actor.user") or {}
    for name in ("username", "uid"):
        shaped(user.get(name), str, f"actor.user.{name}")
    listed(user.get("groups"), str, "actor.user.groups")
    for key, values in (shaped(user.get("extra"), dict, "actor.user.extra") or {}).items():
        listed(values, str, f"actor.user.extra.{key}")
    git = shaped(actor.get("git"), dict, "actor.git") or {}
    for role in ("author", "committer", "signer"):
        shaped(git.get(role), dict, f"actor.git.{role}")
    shaped(actor.get("ci"), dict, "actor.ci")
    presync = shaped(subject.get("presync"), dict, "subject.presync") or {}
    for commit in listed(presync.get("commits"), dict, "subject.presync.commits"):
        shaped(commit.get("sha"), str, "subject.presync.commits[].sha")
        for role in ("author", "committer", "signer"):
            shaped(commit.get(role), dict, f"subject.presync.commits[].{role}")
    for e in listed(record.get("exceptions"), dict, "exceptions"):
        shaped(e.get("name"), str, "exceptions[].name")
    return problems[0] if problems else None


_JSON_NAMES: dict[type, str] = {dict: "JSON object", list: "JSON array", str: "string"}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    return "null" if value is None else "number"
