"""AdmissionReview (`admission.k8s.io/v1`) in, AdmissionReview response out.

Owns: validating the review's shape, deciding what is evaluated (operation,
subresource, excluded namespaces, protected deletes, unchanged images on
UPDATE), turning a `Decision` into `allowed`, `status`, `warnings` and
`auditAnnotations`, and the answers given when no decision is possible
(deadline, internal failure) under the failure policy. Pure: bytes and
mappings in, mappings out; no sockets, no threads, no gate.

Leaves out: HTTP, TLS, and running the gate (`trustgate.server.http`, `.pool`).

The steps follow the Kubernetes documentation "Dynamic Admission Control",
section "Webhook request and response":
  1. the request is an AdmissionReview of `admission.k8s.io/v1` with a `request`;
  2. the response echoes `request.uid` and sets `allowed`;
  3. a denial carries `status.code` and `status.message`;
  4. `warnings` are shown to the client (kubectl prints them);
  5. `auditAnnotations` keys are prefixed by the API server with the webhook name.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trustgate.config import AdmissionSettings
from trustgate.model import NOT_EVALUATED_SOURCES, Decision, Document, Finding, Severity, Source

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
MAX_BODY_BYTES = 3 * 1024 * 1024  # bytes; the API server caps a request at 3 MiB
MAX_WARNINGS = 20  # warnings per response; kubectl prints each on its own line
MAX_WARNING_CHARS = 400  # characters per warning; the API server truncates longer ones anyway
MAX_MESSAGE_CHARS = 4000  # characters of status.message; long lists are cut with a count


class BadReview(Exception):
    """The body is not an AdmissionReview we can answer: HTTP 400 with this message."""


@dataclass(frozen=True, slots=True)
class Review:
    """One parsed admission request and what to do with it."""

    uid: str
    operation: str
    kind: str
    namespace: str
    name: str
    sub_resource: str
    dry_run: bool
    user: Mapping[str, Any]
    obj: Mapping[str, Any] | None
    old: Mapping[str, Any] | None
    input_hash: str

    @property
    def label(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{where}{self.name or '?'}"


@dataclass(slots=True)
class Plan:
    """What the server does with a review: answer now (`response`) or evaluate `documents`."""

    review: Review
    response: dict[str, Any] | None = None  # set: answer without evaluating
    documents: list[Document] = field(default_factory=list)
    verify_images: bool = True
    skipped: str = ""  # why nothing was evaluated, for metrics ("subresource", "excluded", ...)


def parse(body: bytes) -> Review | dict[str, Any]:
    """Parse a request body (steps 1-2).

    Returns:
        The review; or, when the uid is known but the request cannot be
        evaluated, the denying response to send.

    Raises:
        BadReview: the body is not an AdmissionReview v1 with a request and a uid (HTTP 400).
    """
    if len(body) > MAX_BODY_BYTES:
        raise BadReview(f"request body is {len(body)} bytes; the limit is {MAX_BODY_BYTES} (3 MiB)")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadReview(f"request body is not UTF-8 (byte {e.start})") from e
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadReview(f"request body is not JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    except RecursionError as e:
        raise BadReview("request body is not JSON this server reads: nested too deeply") from e
    if not isinstance(value, dict):
        raise BadReview(f"expected an AdmissionReview object, got a JSON {_type(value)}")
    if value.get("apiVersion") != API_VERSION or value.get("kind") != KIND:
        raise BadReview(
            f"expected apiVersion {API_VERSION} and kind {KIND}, got {value.get('apiVersion')!r} and "
            f"{value.get('kind')!r} (set admissionReviewVersions: [v1] in the webhook configuration)"
        )
    request = value.get("request")
    if not isinstance(request, dict):
        raise BadReview("the AdmissionReview has no `request` object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise BadReview("request.uid is missing or not a string: the response could not echo it")

    def deny(message: str) -> dict[str, Any]:
        return review_response(uid, allowed=False, message=message, code=400)

    operation = request.get("operation")
    if operation not in ("CREATE", "UPDATE", "DELETE", "CONNECT"):
        return deny(f"request.operation {operation!r} is not CREATE, UPDATE, DELETE or CONNECT")
    strings: dict[str, str] = {}
    for key in ("namespace", "name", "subResource"):
        raw = request.get(key, "")
        if raw is None:
            raw = ""
        if not isinstance(raw, str):
            return deny(f"request.{key} is not a string")
        strings[key] = raw
    objects: dict[str, Mapping[str, Any] | None] = {}
    for key in ("object", "oldObject"):
        raw = request.get(key)
        if raw is not None and not isinstance(raw, dict):
            return deny(f"request.{key} is a JSON {_type(raw)}, not an object")
        objects[key] = raw
    kind_info = request.get("kind")
    kind = kind_info.get("kind") if isinstance(kind_info, dict) else None
    if not isinstance(kind, str):
        source = objects["object"] or objects["oldObject"] or {}
        kind = source.get("kind") if isinstance(source.get("kind"), str) else "?"
    user = request.get("userInfo")
    return Review(
        uid=uid,
        operation=operation,
        kind=str(kind),
        namespace=strings["namespace"],
        name=strings["name"],
        sub_resource=strings["subResource"],
        dry_run=request.get("dryRun") is True,
        user=user if isinstance(user, dict) else {},
        obj=objects["object"],
        old=objects["oldObject"],
        input_hash="sha256:" + hashlib.sha256(body).hexdigest(),
    )


def plan(review: Review, settings: AdmissionSettings) -> Plan:
    """Decide what the review needs: an immediate answer or an evaluation."""
    out = Plan(review)
    # `kubectl debug` adds containers through pods/ephemeralcontainers: the object is the whole Pod
    # (Kubernetes 1.22+), judged like one. Other subresources (status, scale, exec, log) are not the spec.
    debug = (
        review.sub_resource == "ephemeralcontainers"
        and review.obj is not None
        and review.obj.get("kind") == "Pod"
    )
    if review.sub_resource and not debug:
        out.skipped = "subresource"
        out.response = review_response(review.uid, allowed=True, annotations={"skipped": "subresource"})
        return out
    namespace = review.namespace or (review.name if review.kind == "Namespace" else "")
    if namespace and any(fnmatch.fnmatchcase(namespace, p) for p in settings.excluded):
        out.skipped = "excluded"
        out.response = review_response(
            review.uid, allowed=True, annotations={"skipped": f"namespace {namespace} is excluded"}
        )
        return out
    if review.operation == "CONNECT":
        out.skipped = "operation"
        out.response = review_response(review.uid, allowed=True, annotations={"skipped": "CONNECT"})
        return out
    if review.operation == "DELETE":
        out.skipped = "delete"
        out.response = _delete(review, settings)
        return out
    if review.obj is None:
        out.response = review_response(
            review.uid, allowed=False, code=400, message=f"{review.operation} request without request.object"
        )
        out.skipped = "invalid"
        return out
    obj = dict(review.obj)
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and review.namespace and "namespace" not in metadata:
        # The API server fills the namespace in after admission; policies and exceptions need it now.
        obj["metadata"] = {**metadata, "namespace": review.namespace}
    out.documents = [Document(Source(f"admission:{review.label}"), obj)]
    if review.operation == "UPDATE" and settings.skip_unchanged_images and review.old is not None:
        out.verify_images = _images(review.old) != _images(obj)
    return out


def _delete(review: Review, settings: AdmissionSettings) -> dict[str, Any]:
    if review.kind not in settings.protected_kinds:
        return review_response(review.uid, allowed=True, annotations={"skipped": "DELETE"})
    old = review.old or {}
    metadata = old.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    approved = isinstance(annotations, dict) and annotations.get(settings.approval_annotation) == "true"
    if approved:
        return review_response(
            review.uid,
            allowed=True,
            annotations={"decision": "allowed", "rules": "admission-protected-delete (approved)"},
        )
    message = (
        f"[admission-protected-delete] deleting {review.label} needs approval: {review.kind} is a "
        f'protected kind; annotate it with {settings.approval_annotation}="true" first'
    )
    return review_response(
        review.uid,
        allowed=False,
        message=message,
        code=403,
        annotations={"decision": "denied", "rules": "admission-protected-delete"},
    )


def respond(review: Review, decision: Decision, *, fail_open: bool = False) -> dict[str, Any]:
    """The AdmissionReview response for a decision (steps 2-5).

    Findings that say something could not be evaluated (a registry that did
    not answer, a policy that failed on this object) follow the failure
    policy when nothing else blocks: a real policy violation always denies.
    """
    findings = [f for r in decision.results for f in r.findings]
    blocking = [f for f in findings if f.severity == Severity.ERROR]
    warned = [f for f in findings if f.severity == Severity.WARNING]
    allowed = decision.allowed
    failure_policy = ""
    if blocking and all(f.source in NOT_EVALUATED_SOURCES for f in blocking):
        failure_policy = "open" if fail_open else "closed"
        if fail_open:
            allowed = True
            warned = [*blocking, *warned]
            blocking = []
    warnings = [_short(f"[{f.rule}] {f.message}", MAX_WARNING_CHARS) for f in warned]
    if failure_policy == "open":
        warnings.insert(0, f"trustgate could not evaluate {review.label}; failure policy open: allowed")
    if review.dry_run:
        warnings.insert(0, "trustgate: dry run: evaluated as if it were applied")
    if len(warnings) > MAX_WARNINGS:
        extra = len(warnings) - (MAX_WARNINGS - 1)
        warnings = [*warnings[: MAX_WARNINGS - 1], f"... and {extra} more warnings"]
    annotations = {
        "decision": "allowed" if allowed else "denied",
        "policy-revision": decision.policy_revision,
    }
    if failure_policy:
        annotations["failure-policy"] = failure_policy
    rules = sorted({f.rule for f in blocking}) or sorted({f.rule for f in warned})
    if rules:
        annotations["rules"] = _short(",".join(rules), 1000)
    if decision.record_id:
        annotations["record"] = decision.record_id
    if review.dry_run:
        annotations["dry-run"] = "true"
    message = ""
    code = 200
    if not allowed:
        code = 403
        message = _message(review, blocking)
        if failure_policy == "closed":
            message += "; failure policy closed: denied"
    return review_response(
        review.uid,
        allowed=allowed,
        message=message,
        code=code,
        warnings=warnings,
        annotations=annotations,
    )


def failure(review: Review, *, reason: str, fail_open: bool) -> dict[str, Any]:
    """The answer when no decision could be made in time or at all, under the failure policy."""
    policy = "open" if fail_open else "closed"
    text = f"trustgate could not decide on {review.label}: {reason}; failure policy {policy}: " + (
        "allowed without a decision" if fail_open else "denied"
    )
    return review_response(
        review.uid,
        allowed=fail_open,
        message="" if fail_open else text,
        code=200 if fail_open else 500,
        warnings=[text] if fail_open else [],
        annotations={"decision": "allowed" if fail_open else "denied", "failure-policy": policy},
    )


def review_response(
    uid: str,
    *,
    allowed: bool,
    message: str = "",
    code: int = 200,
    warnings: Sequence[str] = (),
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An AdmissionReview carrying one response."""
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed or message:
        response["status"] = {"code": code, "message": message}
        if not allowed:
            response["status"]["reason"] = "Forbidden" if code == 403 else "BadRequest" if code == 400 else ""
            if not response["status"]["reason"]:
                del response["status"]["reason"]
    if warnings:
        response["warnings"] = list(warnings)
    if annotations:
        response["auditAnnotations"] = dict(annotations)
    return {"apiVersion": API_VERSION, "kind": KIND, "response": response}


def _message(review: Review, blocking: Sequence[Finding]) -> str:
    parts = []
    for finding in blocking:
        if finding.source in NOT_EVALUATED_SOURCES:
            parts.append(f"[{finding.rule}] could not be evaluated: {finding.message}")
        else:
            parts.append(f"[{finding.rule}] {finding.message}")
    head = f"trustgate denied {review.label}: "
    text = head + "; ".join(parts)
    if len(text) > MAX_MESSAGE_CHARS:
        kept: list[str] = []
        size = len(head)
        for part in parts:
            if size + len(part) + 40 > MAX_MESSAGE_CHARS:
                break
            kept.append(part)
            size += len(part) + 2
        text = head + "; ".join(kept) + f"; ... and {len(parts) - len(kept)} more"
    return text


def _images(obj: Mapping[str, Any]) -> list[str]:
    from trustgate.manifests.images import find_images

    try:
        return sorted(u.reference for u in find_images(obj))
    except (AttributeError, TypeError):  # a malformed spec: let the policies speak
        return []


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )
