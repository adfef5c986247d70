"""AdmissionReview (`admission.k8s.io/v1`) in, AdmissionReview response out.

Owns: validating the review's shape, deciding what is evaluated (operation,
subresource, token and access reviews, excluded namespaces, protected
deletes, unchanged images on UPDATE), turning a `Decision` into `allowed`, `status`, `warnings` and
`auditAnnotations`, and the answers given when no decision is possible
(deadline, internal failure) under the failure policy: `answer` turns what
the evaluators gave (or did not give in time) into the answer, or into the
failure to record and answer. Pure: bytes and mappings in, mappings out; no
sockets, no threads, no gate.

Leaves out: HTTP, TLS, and running the gate (`trustgate.server.http`, `.pool`).

The steps follow the Kubernetes documentation "Dynamic Admission Control",
section "Webhook request and response":
  1. the request is an AdmissionReview of `admission.k8s.io/v1` with a `request`;
  2. the response echoes `request.uid` and sets `allowed`;
  3. a denial carries `status.code` and `status.message`;
  4. `warnings` are shown to the client (kubectl prints them);
  5. `auditAnnotations` keys are prefixed by the API server with the webhook name.

Limits on what is read (each answered with HTTP 400 and the reason, never an
internal error): integers of more than `MAX_INTEGER_DIGITS` digits, numbers
beyond a double's range, NaN and Infinity (not JSON), nesting deeper than
`MAX_DEPTH`, a string (key or value) holding a lone surrogate (a `\\ud800`
escape without its pair: not Unicode text, and the Rego engine crashes on
it), and an object whose `metadata` (or its labels and annotations)
is not a JSON object, or whose `metadata.namespace` is not `request.namespace`
(an AdmissionReview deny with code 400: its uid is known).
An object to evaluate (and its `oldObject`) without `apiVersion`/`kind` gets them
from `request.kind`; one that disagrees with `request.kind` is denied with code 400.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from trustgate.config import DEFAULT_DELETE_ACTORS, AdmissionSettings
from trustgate.errors import InputError
from trustgate.gate.verdict import Failure
from trustgate.kinds import REVIEW_GROUPS, writes_subresource
from trustgate.manifests.loader import lone_surrogate, may_hold_surrogate, path_text
from trustgate.model import (
    NOT_EVALUATED_SOURCES,
    Decision,
    Document,
    DocumentResult,
    Finding,
    Mode,
    Severity,
    Source,
    render_path,
)

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
# The largest review a legal request makes. The API server caps a request body at 3 MiB, but an
# UPDATE's review carries two objects (object and oldObject), each as JSON, which can be larger
# than the body they arrived as (protobuf or compact YAML; field names repeated in every list
# item, managedFields and defaults added by the API server): two 3 MiB objects at up to ~2.5x
# in JSON, plus the envelope (userInfo, options), stay under 16 MiB. What bodies and their parse
# may hold in memory at once is bounded per worker by `budget.BUDGET_BYTES` (ADR 7), not by
# connection slots x this limit (8 GiB).
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_BODY_TEXT = "16 MiB"
MAX_WARNINGS = 20  # warnings per response; kubectl prints each on its own line
MAX_WARNING_CHARS = 400  # characters per warning; the API server truncates longer ones anyway
MAX_MESSAGE_CHARS = 4000  # characters of status.message; long lists are cut with a count
MAX_INTEGER_DIGITS = 64  # digits of one JSON integer; Kubernetes' own are int64 (19 digits)
MAX_DEPTH = 256  # nested objects and arrays; real objects (a CRD's schema included) stay far below
PROTECTED_DELETE_RULE = "admission-protected-delete"
EPHEMERAL_CONTAINERS = "EphemeralContainers"  # pods/ephemeralcontainers' own kind before Kubernetes 1.22
EPHEMERAL_NOTE = (
    "pods/ephemeralcontainers: the EphemeralContainers object (Kubernetes 1.16-1.21) was judged as "
    "the Pod holding its containers"
)
NODE_LEASE_NAMESPACE = "kube-node-lease"  # holds only the kubelets' node Leases
DRY_RUN_NOTE = "dryRun: the API server did not persist this change (request.dryRun was true)"
# Who may delete protected kinds without the approval annotation by default (see the config).
CONTROLLER_DELETERS: tuple[str, ...] = DEFAULT_DELETE_ACTORS


class BadReviewError(InputError):
    """The body is not an AdmissionReview we can answer: HTTP 400 with this message."""


BadReview = BadReviewError  # the name callers and tests knew


def _parse_int(text: str) -> int:
    digits = len(text) - (text[0] == "-")
    if digits > MAX_INTEGER_DIGITS:
        raise BadReview(
            f"request body holds an integer of {digits} digits; the limit is {MAX_INTEGER_DIGITS}"
        )
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadReview(f"request body holds the number {text[:40]}, beyond the range of a double")
    return value


def _parse_constant(text: str) -> Any:
    raise BadReview(f"request body is not JSON: {text} is not a JSON value")


def _depth(value: Any) -> int:
    """The nesting depth of objects and arrays (iterative: the limit is checked, not the stack).

    The stack holds one iterator per level, not every child waiting its turn: a flat array of
    millions of `{}` kept millions of tuples alive beside the parsed body.
    """
    if not isinstance(value, (dict, list)):
        return 0
    deepest = 1
    stack: list[Iterator[Any]] = [iter(value.values() if isinstance(value, dict) else value)]
    while stack:
        for child in stack[-1]:
            if isinstance(child, (dict, list)):
                stack.append(iter(child.values() if isinstance(child, dict) else child))
                deepest = max(deepest, len(stack))
                if deepest > MAX_DEPTH:
                    return deepest
                break
        else:
            stack.pop()
    return deepest


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
    api_version: str = ""  # of `request.kind` (`group/version`, or `version` for the core group)
    # The request without object and oldObject: what Gatekeeper's `input.review` and an admission
    # policy's `request` hold beside the objects (userInfo, kind, operation, dryRun, options).
    request: Mapping[str, Any] = field(default_factory=dict)
    cost: int = 0  # what evaluating it costs, roughly, in bytes of ordinary review (`review_cost`)

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
    decision: Decision | None = None  # set: decided without the gate (a protected delete), to record
    notes: list[str] = field(default_factory=list)  # recorded with the decision (dryRun)
    old: Mapping[str, Any] | None = None  # the object as it is, of an UPDATE (as judged: a Pod for debug)
    # A DELETE judged by admission policies (`documents` holds the object deleted) of a protected kind:
    # the protected-delete decision, whose findings and notes join the policies' (one decision, recorded).
    protected: Decision | None = None


# Bytes per object or array in the API server's reviews (40-50 for Pods and Deployments, ~100 for
# ConfigMaps): what one weighs in `review_cost`.
BYTES_PER_STRUCTURE = 48


def review_cost(body: bytes | bytearray) -> int:
    """What evaluating `body` costs, roughly, as the bytes of an ordinary review that costs as much.

    Evaluation runs per object (a container, a volume, each finding made of them), not per byte:
    7,700 minimal containers in 250 KiB took seconds, like 1 MiB of ordinary Pod. So each object or
    array weighs `BYTES_PER_STRUCTURE` (an ordinary review then weighs about its size), and long
    strings an eighth of their bytes (a 1 MiB ConfigMap value is cheap). A `{` or `[` inside a
    string counts too (it only weighs more). Two C-speed scans.
    """
    return max(len(body) // 8, BYTES_PER_STRUCTURE * (body.count(b"{") + body.count(b"[")))


def parse(body: bytes | bytearray) -> Review | dict[str, Any]:
    """Parse a request body (steps 1-2).

    Returns:
        The review; or, when the uid is known but the request cannot be
        evaluated, the denying response to send.

    Raises:
        BadReview: the body is not an AdmissionReview v1 with a request and a uid (HTTP 400).
    """
    if len(body) > MAX_BODY_BYTES:
        raise BadReview(f"request body is {len(body)} bytes; the limit is {MAX_BODY_BYTES} ({MAX_BODY_TEXT})")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadReview(f"request body is not UTF-8 (byte {e.start})") from e
    try:
        value = json.loads(
            text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant
        )
    except json.JSONDecodeError as e:
        raise BadReview(f"request body is not JSON: {e.msg} at line {e.lineno} column {e.colno}") from e
    except RecursionError as e:
        raise BadReview("request body is not JSON this server reads: nested too deeply") from e
    except ValueError as e:  # int() refusing more than sys.get_int_max_str_digits(), should a hook miss it
        raise BadReview(f"request body is not JSON this server reads: {e}") from e
    if not isinstance(value, dict):
        raise BadReview(f"expected an AdmissionReview object, got a JSON {_type(value)}")
    if _depth(value) > MAX_DEPTH:
        raise BadReview(f"request body is nested more than {MAX_DEPTH} levels deep")
    # Only a `\ud800`-style escape decodes to a lone surrogate: the byte search keeps the walk
    # off every ordinary review (the API server's Go encoder never writes one).
    bad = lone_surrogate(value) if may_hold_surrogate(body) else None
    if bad is not None:
        raise BadReview(
            f"request body holds a lone surrogate (a \\ud800-\\udfff escape without its pair) in the "
            f"string at {path_text(bad)}: it is not Unicode text and cannot be evaluated"
        )
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
        if raw is not None:
            metadata = raw.get("metadata")
            if metadata is not None and not isinstance(metadata, dict):
                return deny(f"request.{key}.metadata is a JSON {_type(metadata)}, not an object")
            for part in ("labels", "annotations"):
                inner = metadata.get(part) if isinstance(metadata, dict) else None
                if inner is not None and not isinstance(inner, dict):
                    return deny(f"request.{key}.metadata.{part} is a JSON {_type(inner)}, not an object")
        objects[key] = raw
    for key in ("object", "oldObject"):
        # The API server refuses an object whose namespace differs from the request's before any
        # webhook runs (EnsureObjectNamespaceMatchesRequestNamespace), and clears a cluster-scoped
        # object's. Such a review cannot come from it: exclusions would read one namespace and
        # waivers and policies the other, so it is unusable.
        metadata = (objects[key] or {}).get("metadata")
        claimed = metadata.get("namespace") if isinstance(metadata, dict) else None
        if claimed is None or claimed == "":
            continue
        if not isinstance(claimed, str):
            return deny(f"request.{key}.metadata.namespace is a JSON {_type(claimed)}, not a string")
        if claimed != strings["namespace"]:
            return deny(
                f"request.{key}.metadata.namespace is {claimed!r}, but request.namespace is "
                f"{strings['namespace']!r}: the API server rejects such a mismatch before admission, "
                "and the object cannot be judged in two namespaces"
            )
    kind_info = request.get("kind")
    kind = kind_info.get("kind") if isinstance(kind_info, dict) else None
    group = kind_info.get("group", "") if isinstance(kind_info, dict) else None
    version = kind_info.get("version") if isinstance(kind_info, dict) else None
    api_version = ""
    if isinstance(kind, str) and kind and isinstance(group, str) and isinstance(version, str) and version:
        api_version = f"{group}/{version}" if group else version
    if not isinstance(kind, str):
        source = objects["object"] or objects["oldObject"] or {}
        kind = source.get("kind") if isinstance(source.get("kind"), str) else "?"
    user = request.get("userInfo")
    problem = user_info_problem(user)
    if problem is not None:  # not the API server's: it would be recorded as someone it is not
        return deny(problem)
    if isinstance(user, dict) and _has_null_lists(user):
        # Go writes a nil []string inside the extra map as null (a token webhook's `"scopes": null`
        # reaches admission as it is); the API server's typed UserInfo reads it as an empty list.
        user = _with_empty_lists(user)
        request = {**request, "userInfo": user}
    return Review(
        uid=uid,
        operation=operation,
        kind=str(kind),
        namespace=strings["namespace"],
        name=strings["name"],
        sub_resource=strings["subResource"],
        dry_run=request.get("dryRun") is True,
        user=user or {},
        obj=objects["object"],
        old=objects["oldObject"],
        input_hash="sha256:" + hashlib.sha256(body).hexdigest(),
        api_version=api_version,
        request={k: v for k, v in request.items() if k not in ("object", "oldObject")},
        cost=review_cost(body),
    )


def user_info_problem(user: Any) -> str | None:
    """Why `request.userInfo` is not of the API server's shape (authentication/v1 UserInfo:
    username and uid strings, groups a list of strings, extra a map of string lists); None when it
    is, or is absent.

    The decision log records it as the actor: a `groups` that is the string `"system:masters"`
    would be read letter by letter by one view and flagged by another.
    """
    if user is None:
        return None
    if not isinstance(user, dict):
        return f"request.userInfo is a JSON {_type(user)}, not an object"
    for key in ("username", "uid"):
        value = user.get(key)
        if value is not None and not isinstance(value, str):
            return f"request.userInfo.{key} is a JSON {_type(value)}, not a string"
    groups = user.get("groups")
    if groups is not None:  # null: a nil list, as Go writes one
        if not isinstance(groups, list):
            return f"request.userInfo.groups is a JSON {_type(groups)}, not a list of strings"
        for group in groups:
            if not isinstance(group, str):
                return f"request.userInfo.groups holds a JSON {_type(group)}, not a string"
    extra = user.get("extra")
    if extra is not None:
        if not isinstance(extra, dict):
            return f"request.userInfo.extra is a JSON {_type(extra)}, not an object of string lists"
        for key, values in extra.items():
            if values is None:  # a nil []string in the map: Go writes null, omitempty drops only the map
                continue
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                return f"request.userInfo.extra[{key!r}] is not a list of strings"
    return None


def _has_null_lists(user: dict[str, Any]) -> bool:
    extra = user.get("extra")
    return ("groups" in user and user["groups"] is None) or (
        isinstance(extra, dict) and any(v is None for v in extra.values())
    )


def _with_empty_lists(user: dict[str, Any]) -> dict[str, Any]:
    """`user` with null groups and null extra values as the empty lists the API server reads them as."""
    out = dict(user)
    if "groups" in out and out["groups"] is None:
        out["groups"] = []
    extra = out.get("extra")
    if isinstance(extra, dict):
        out["extra"] = {k: [] if v is None else v for k, v in extra.items()}
    return out


def plan(
    review: Review,
    settings: AdmissionSettings,
    *,
    mode: Mode = Mode.ENFORCE,
    delete_actors: Sequence[str] | None = None,
    admission_policies: bool = False,
    subresources: bool | None = None,
) -> Plan:
    """Decide what the review needs: an immediate answer, a decision to record, or an evaluation.

    Args:
        review: the parsed request.
        settings: the `admission` section.
        mode: the configuration's mode; a protected delete follows it like any other finding.
        delete_actors: usernames (globs) that delete protected kinds without the approval annotation;
            None: `settings.allowed_actors` (`admission.protectedDeletes.allowedActors`).
        admission_policies: admission policies are loaded, which the API server runs on the DELETEs
            and CONNECTs their rules name: a DELETE is evaluated (the object deleted, `oldObject`,
            as the only document), with the protected-delete decision joined to it for a
            protected kind; so is a CONNECT (its options, `object`, on its subresource), and a
            CREATE or UPDATE of a subresource (its object, a Scale of deployments/scale); the gate
            asks only the engines that judge them. False: a DELETE of a protected kind is decided
            here, any other DELETE and every CONNECT is answered allowed.
        subresources: something loaded judges a CREATE or UPDATE of a subresource (admission
            policies, or Gatekeeper constraints, which match a Scale by its kind): it is evaluated;
            False: answered allowed unjudged. None: as `admission_policies`.
    """
    out = Plan(review)
    if review.dry_run:
        out.notes.append(DRY_RUN_NOTE)
    # `kubectl debug` adds containers through pods/ephemeralcontainers: the object is the whole Pod
    # (Kubernetes 1.22+), or an EphemeralContainers object (1.16-1.21) judged as a Pod holding those
    # containers. Other subresources (status, scale, binding) are not the spec: their object is the
    # subresource's own (`kubectl scale`: an autoscaling/v1 Scale), which the admission policies
    # whose rules name the subresource judge (and Gatekeeper constraints matching its kind), as the
    # API server runs them; without either nothing judges them.
    debug = review.sub_resource == "ephemeralcontainers"
    # An in-place resize (1.33+) changes the Pod's containers' resources: its object is the Pod, an
    # UPDATE of it judged by everything that judges Pods.
    resize = review.sub_resource == "resize" and review.operation in ("CREATE", "UPDATE")
    connect = review.operation == "CONNECT" and admission_policies  # pods/exec, pods/portforward, proxy
    written = writes_subresource(review.operation, review.sub_resource)
    judged = admission_policies if subresources is None else subresources
    if review.sub_resource and not (debug or resize) and not connect and not (written and judged):
        out.skipped = "subresource"
        out.response = review_response(review.uid, allowed=True, annotations={"skipped": "subresource"})
        return out
    if review.api_version.rpartition("/")[0] in REVIEW_GROUPS:
        # A token or access review stores nothing and a TokenReview carries a bearer token: answered
        # unjudged and unrecorded (only a wildcard before Kubernetes 1.28 sends one; see webhookconfig).
        out.skipped = "review"
        out.response = review_response(review.uid, allowed=True, annotations={"skipped": "review"})
        return out
    if _node_heartbeat(review):
        # Before Kubernetes 1.21 kube-node-lease reaches the webhook (see webhookconfig): its node
        # Leases are the heartbeats the generated configuration leaves out everywhere else.
        out.skipped = "housekeeping"
        out.response = review_response(review.uid, allowed=True, annotations={"skipped": "node heartbeat"})
        return out
    # A Namespace (core v1) is left out by its own name; a custom kind named Namespace is not one.
    namespace = review.namespace or (review.name if _is_namespace(review) else "")
    if namespace and any(fnmatch.fnmatchcase(namespace, p) for p in settings.excluded):
        out.skipped = "excluded"
        out.response = review_response(
            review.uid, allowed=True, annotations={"skipped": f"namespace {namespace} is excluded"}
        )
        return out
    if connect:
        return _connect(out, review)
    if review.operation == "CONNECT":
        out.skipped = "operation"
        out.response = review_response(review.uid, allowed=True, annotations={"skipped": "CONNECT"})
        return out
    if review.operation == "DELETE":
        protected = review.kind in settings.protected_kinds
        actors = settings.allowed_actors if delete_actors is None else delete_actors
        if admission_policies:
            return _deletion(out, review, settings, mode, actors if protected else None)
        out.skipped = "delete"
        if not protected:  # nothing loaded judges a deletion
            out.response = review_response(review.uid, allowed=True, annotations={"skipped": "DELETE"})
        else:
            out.decision = _protected_delete(review, settings, mode, actors, out.notes)
        return out
    if review.obj is None:
        return _invalid(out, review, f"{review.operation} request without request.object")
    obj = dict(review.obj)
    old: Mapping[str, Any] | None = None
    problem = _typed(obj, review)
    if not problem and review.old is not None:
        # The object as it is, typed the same way: untyped, an UPDATE would be judged as a CREATE.
        typed_old = dict(review.old)
        # pods/ephemeralcontainers of 1.16-1.21 (request.kind EphemeralContainers) may give the Pod.
        old_pod = typed_old.get("kind") == "Pod" and typed_old.get("apiVersion") == "v1"
        if not (debug and old_pod):
            problem = _typed(typed_old, review, "oldObject", like=obj)
        old = typed_old
    if problem:
        return _invalid(out, review, problem)
    if debug:
        if obj.get("kind") not in ("Pod", EPHEMERAL_CONTAINERS):
            return _invalid(
                out,
                review,
                f"request.object of pods/ephemeralcontainers is a {obj.get('kind')!r}, not a Pod "
                f"or {EPHEMERAL_CONTAINERS}: its containers cannot be judged",
            )
        if obj.get("kind") == EPHEMERAL_CONTAINERS:
            obj = debugged_pod(obj, old)
            old = (
                debugged_pod(old, None)
                if old is not None and old.get("kind") == EPHEMERAL_CONTAINERS
                else old
            )
            out.notes.append(EPHEMERAL_NOTE)
    metadata = obj.get("metadata")
    fill = review.namespace and not _is_namespace(review)
    if isinstance(metadata, dict) and fill and "namespace" not in metadata:
        # The API server fills the namespace in after admission; policies and exceptions need it now.
        # Not a Namespace's: its request.namespace is its own name, and `check` judges it without one.
        obj["metadata"] = {**metadata, "namespace": review.namespace}
    out.documents = [Document(Source(f"admission:{review.label}"), obj, request=review.request)]
    if review.operation == "UPDATE":
        out.old = old
    if written:
        out.verify_images = False  # a Scale (a Binding, a status) names no image to run
    elif review.operation == "UPDATE" and settings.skip_unchanged_images and old is not None:
        out.verify_images = _images(old) != _images(obj)
    return out


def _node_heartbeat(review: Review) -> bool:
    """A write of a node's Lease in kube-node-lease, which every kubelet renews every 10 s."""
    return (
        review.operation in ("CREATE", "UPDATE")
        and not review.sub_resource
        and review.namespace == NODE_LEASE_NAMESPACE
        and review.kind == "Lease"
        and review.api_version.rpartition("/")[0] == "coordination.k8s.io"
    )


def _is_namespace(review: Review) -> bool:
    """The request is of a Namespace (core v1), whose `request.namespace` the API server sets to its name."""
    return review.kind == "Namespace" and review.api_version in ("v1", "")


def _invalid(out: Plan, review: Review, message: str) -> Plan:
    """`out` answered with a 400 deny: the request itself cannot be judged."""
    out.response = review_response(review.uid, allowed=False, code=400, message=message)
    out.skipped = "invalid"
    return out


def _deletion(
    out: Plan, review: Review, settings: AdmissionSettings, mode: Mode, actors: Sequence[str] | None
) -> Plan:
    """A DELETE to evaluate: the API server runs the admission policies whose rules name DELETE
    with `object` null and `oldObject` the object deleted, so that object is the document (the
    request, with its operation, beside it). `actors`: the kind is protected, and its approval
    decision joins the policies' (None: it is not)."""
    if review.old is None:
        # Kubernetes sends oldObject on DELETE since 1.15: without it nothing can be judged.
        return _invalid(
            out,
            review,
            "DELETE request without request.oldObject: the object deleted cannot be judged by "
            "the admission policies that match deletions",
        )
    old = dict(review.old)
    problem = _typed(old, review, "oldObject")
    if problem:
        return _invalid(out, review, problem)
    metadata = old.get("metadata")
    # As for a CREATE's object; but a Namespace's own request.namespace is its name, not its namespace.
    fill = review.namespace and not _is_namespace(review)
    if isinstance(metadata, dict) and fill and "namespace" not in metadata:
        old["metadata"] = {**metadata, "namespace": review.namespace}
    out.documents = [Document(Source(f"admission:{review.label}"), old, request=review.request)]
    out.verify_images = False  # a deletion runs nothing
    if actors is not None:
        out.protected = _protected_delete(review, settings, mode, actors, ())
    return out


def _connect(out: Plan, review: Review) -> Plan:
    """A CONNECT to evaluate (`kubectl exec`, `port-forward`, a proxy): the API server runs the
    admission policies whose rules name CONNECT on the subresource with `object` its options
    (PodExecOptions, ...) and `oldObject` null; the options are the document, typed from request.kind."""
    if review.obj is None:
        return _invalid(
            out,
            review,
            "CONNECT request without request.object (its options): it cannot be judged by the "
            "admission policies that match CONNECT",
        )
    obj = dict(review.obj)
    problem = _typed(obj, review)
    if problem:
        return _invalid(out, review, problem)
    out.documents = [Document(Source(f"admission:{review.label}"), obj, request=review.request)]
    out.verify_images = False  # a CONNECT creates nothing
    return out


def _typed(
    obj: dict[str, Any], review: Review, key: str = "object", *, like: Mapping[str, Any] | None = None
) -> str:
    """Fill `apiVersion` and `kind` from `request.kind` where the object lacks them; or why not.

    The API server always sets both, as `request.kind` says; an object judged without them would
    be judged as no Kubernetes object at all (only the user's own policies see such documents),
    and one judged as another kind would escape the rules of its own. `oldObject` is typed the
    same way (`key`); when `request.kind` names none, it must be of the object's own kind
    (`like`, the object already typed). Returns the reason to refuse it (HTTP 400), or "".
    """
    if not review.api_version:
        if like is not None:
            expected_pair = (like.get("apiVersion"), like.get("kind"))
            if (obj.get("apiVersion"), obj.get("kind")) == expected_pair:
                return ""
            return (
                f"request.{key} has apiVersion {obj.get('apiVersion')!r} and kind {obj.get('kind')!r}, "
                f"but request.object has {expected_pair[0]!r} and {expected_pair[1]!r}, and request.kind "
                "names neither"
            )
        if isinstance(obj.get("kind"), str) and isinstance(obj.get("apiVersion"), str):
            return ""  # judged as what it says it is (the gate checks both)
        return f"request.{key} has no apiVersion and kind, and request.kind does not name them"
    for field_name, expected in (("apiVersion", review.api_version), ("kind", review.kind)):
        if field_name not in obj or obj[field_name] is None:
            obj[field_name] = expected  # as the API server stores it
        elif obj[field_name] != expected:
            return (
                f"request.{key}.{field_name} is {obj[field_name]!r}, but request.kind says {expected!r}: "
                "the object would be judged as another kind than the API server admits"
            )
    return ""


def debugged_pod(ephemeral: Mapping[str, Any], old: Mapping[str, Any] | None) -> dict[str, Any]:
    """The Pod an `EphemeralContainers` object (Kubernetes 1.16-1.21) changes, to judge as a Pod.

    Every container and image rule then applies to the ephemeral containers. With the old Pod
    (`old` of kind Pod), it is that Pod with the new list, so pod-level settings count; else a Pod
    of the object's metadata whose spec holds only those containers: `containers` is empty, which
    the schemas accept (the API server checks the real Pod, which has its containers), and a
    pod-level `securityContext` is not known, so restricted rules judge each container on its own.
    """
    containers = ephemeral.get("ephemeralContainers")
    if containers is None:
        containers = []  # anything else but a list is the schema's to refuse, as the API server does
    if old is not None and old.get("kind") == "Pod" and isinstance(old.get("spec"), Mapping):
        return {**old, "spec": {**old["spec"], "ephemeralContainers": containers}}
    metadata = ephemeral.get("metadata")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": dict(metadata) if isinstance(metadata, Mapping) else {},
        "spec": {"containers": [], "ephemeralContainers": containers},
    }


def _protected_delete(
    review: Review, settings: AdmissionSettings, mode: Mode, actors: Sequence[str], notes: Sequence[str]
) -> Decision:
    """The decision on deleting a protected kind: approved, by an allowed controller, or a finding."""
    old = review.old or {}
    metadata = old.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    approved = isinstance(annotations, dict) and annotations.get(settings.approval_annotation) == "true"
    username = review.user.get("username")
    actor = (
        next((p for p in actors if fnmatch.fnmatchcase(username, p)), None)
        if isinstance(username, str)
        else None
    )
    findings: list[Finding] = []
    why: list[str] = []
    if approved:
        why.append(f"protected delete approved by {settings.approval_annotation}=true on the object")
    elif actor is not None:
        why.append(f"protected delete by {username}, an allowed controller ({actor})")
    else:
        severity = {Mode.ENFORCE: Severity.ERROR, Mode.WARN: Severity.WARNING}.get(mode, Severity.INFO)
        findings.append(
            Finding(
                rule=PROTECTED_DELETE_RULE,
                severity=severity,
                message=(
                    f"deleting {review.label} needs approval: {review.kind} is a protected kind; annotate "
                    f'it with {settings.approval_annotation}="true" first'
                ),
                source="trustgate",
                fix=f"kubectl annotate {review.kind.lower()} {review.name} "
                f"{settings.approval_annotation}=true",
            )
        )
    result = DocumentResult(
        Source(f"admission:{review.label}"),
        old.get("apiVersion") if isinstance(old.get("apiVersion"), str) else None,
        review.kind,
        review.namespace or None,
        review.name or None,
        findings,
        obj=old or None,
    )
    return Decision(gate="admission", mode=mode, results=[result], notes=[*notes, *why])


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
    warnings = [_short(f"[{f.rule}] {f.message}{_at(f)}", MAX_WARNING_CHARS) for f in warned]
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
            parts.append(f"[{finding.rule}] {finding.message}{_at(finding)}")
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


def _at(finding: Finding) -> str:
    """Where in the object a finding points, for the answer the API server shows (`kubectl` prints
    it): a custom resource's pod templates say the same thing at different places."""
    return f" (at {render_path(finding.path)})" if finding.path else ""


def _images(obj: Mapping[str, Any]) -> list[str]:
    from trustgate.manifests.images import find_images

    try:
        return sorted(f"{u.reference} {u.unresolvable}" for u in find_images(obj))
    except (AttributeError, TypeError):  # a malformed spec: let the policies speak
        return []


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def fails_open(review: Review, settings: AdmissionSettings, *, fail_open_path: bool = False) -> bool:
    """The failure policy of a request: open on `/validate/fail-open`, by setting, or by namespace."""
    return (
        fail_open_path
        or settings.failure_policy == "open"
        or any(fnmatch.fnmatchcase(review.namespace, p) for p in settings.fail_open_namespaces)
    )


@dataclass(frozen=True, slots=True)
class Evaluated:
    """What the evaluators gave for one request by its deadline.

    Attributes:
        decision: the gate's decision, when one was made in time.
        error: why evaluation failed (no decision).
        timed_out: no decision by the deadline (or it waited past it for an evaluator).
        policies_checked: schemas and policies were judged before the deadline (images were not).
        denials: `[rule] message` of the blocking findings of schemas and policies.
        unrecorded: why the decision's record was not committed ("" when it was).
        late: the record was only late at the deadline: it may still commit.
    """

    decision: Decision | None = None
    error: str = ""
    timed_out: bool = False
    policies_checked: bool = False
    denials: Sequence[str] = ()
    unrecorded: str = ""
    late: bool = False


@dataclass(frozen=True, slots=True)
class Failed:
    """An answer given without a decision: record it (a decision of its own), then `failure()`.

    Attributes:
        reason: why no decision answers the request.
        fail_open: the failure policy that answers it.
        kind: the typed reason (a deadline, an internal failure).
        with_context: record it with the request's context (who, what); False for a record
            that duplicates one already queued.
        record: record it at all (False: the decision it replaces is already queued, late).
        wait: wait for the record's commit (False: the deadline has passed).
    """

    reason: str
    fail_open: bool
    kind: Failure = Failure.INTERNAL
    with_context: bool = True
    record: bool = True
    wait: bool = True


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer to one request: `response` (evaluated) or `failed` (answered by the failure policy)."""

    response: dict[str, Any] | None = None
    failed: Failed | None = None
    deadline_exceeded: bool = False  # count it in the metrics


def answer(
    review: Review, evaluated: Evaluated, *, deadline_seconds: float, fail_open: bool, log_fail_closed: bool
) -> Answer:
    """The answer to an evaluated request, under the deadline, the failure policy and the log's.

    A policy denial found before the deadline denies whatever the failure policy says; a decision
    that could not be recorded fails when the decision log's failure policy is closed, and is
    answered with a warning when it is open (its `record_id` then cleared). The decision is
    updated in place (`record_error`, `record_id`) so that what is answered is what is recorded.
    """
    if evaluated.timed_out:
        if evaluated.denials:  # the policies already deny: no failure policy makes that an allow
            reason = (
                "denied by policy (" + "; ".join(list(evaluated.denials)[:10]) + "); images not verified "
            )
            reason += f"within the {deadline_seconds:g}s deadline"
            return Answer(failed=Failed(reason, False, Failure.DEADLINE), deadline_exceeded=True)
        if evaluated.policies_checked:
            reason = "schemas and policies pass, but the images were not verified within the "
            reason += f"{deadline_seconds:g}s deadline (a registry did not answer in time)"
        else:
            reason = f"no decision within the {deadline_seconds:g}s deadline (every evaluator "
            reason += "was busy, or the decision log did not answer in time)"
        return Answer(failed=Failed(reason, fail_open, Failure.DEADLINE), deadline_exceeded=True)
    decision = evaluated.decision
    if decision is None:
        return Answer(failed=Failed(evaluated.error or "evaluation failed", fail_open))
    unrecorded, late = evaluated.unrecorded, evaluated.late
    if unrecorded and log_fail_closed:
        decision.record_error = unrecorded
    if decision.record_error:  # the log is closed and could not record: the request fails
        reason = f"the decision could not be recorded: {decision.record_error}"
        # A late record may still commit: the answer given is queued after it, without waiting.
        kind = Failure.DEADLINE if late else Failure.INTERNAL
        return Answer(failed=Failed(reason, False, kind, with_context=late, record=late, wait=False))
    if unrecorded:  # failure policy open: answered, but nobody is left unaware
        decision.record_id = ""
    response = respond(review, decision, fail_open=fail_open)
    if unrecorded:
        out = response["response"]
        warning = "trustgate: this decision was NOT recorded in the decision log (failure policy open)"
        if late:
            warning = "trustgate: this decision was not yet recorded in the decision log at the deadline "
            warning += "(failure policy open)"
        out["warnings"] = [warning, *out.get("warnings", [])][:MAX_WARNINGS]
        out.setdefault("auditAnnotations", {})["record"] = "pending" if late else "not recorded"
    return Answer(response=response)


def verdict(response: Mapping[str, Any]) -> str:
    """The metrics verdict of an answer; one the failure policy decided is counted as such."""
    out = response["response"]
    policy = out.get("auditAnnotations", {}).get("failure-policy")
    if policy in ("open", "closed"):
        return f"failure_{policy}"
    if not out["allowed"]:
        return "denied"
    return "warned" if out.get("warnings") else "allowed"
