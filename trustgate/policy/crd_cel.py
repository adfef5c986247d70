"""CRD validation rules (`x-kubernetes-validations`), evaluated as the API server does on create.

Owns: finding every `x-kubernetes-validations` entry in a CRD's
`openAPIV3Schema` (under `properties`, `items` and `additionalProperties`),
compiling each `rule` and `messageExpression` once, and evaluating them with
`self` bound to each value the schema node describes (typed as the API
server types it: a `number` is a double, a `format: byte` string bytes,
a `date` or `date-time` string a timestamp and a `duration` string a
duration, see `_typing`; with the property names, nulls, metadata and list types the API
server shows, see `crd_cel_view`, which also finds the rules trustgate cannot evaluate
exactly: they are reported as not evaluated, never passed), and refusing a CRD
whose rules the API server would refuse for their estimated cost
(`cel_cost`). Transition rules (reading `oldSelf`) run only when the caller
gives the old object (an update) and the value existed in it, correlated as
the API server does; a check (a create) skips them. An object created with
`generateName` and no name is judged under two names the API server could
generate for it (see `evaluate`). Leaves out the run-time
cost limits and rules with `optionalOldSelf` (oldSelf would be an optional,
which the engine's bindings cannot take from Python): every value such a
rule applies to is reported as not evaluated (a failure), never passed.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from trustgate.model import JsonPath
from trustgate.policy import cel, cel_cost, crd_cel_view, k8s_defaults

__all__ = ["Rule", "RuleError", "compile_rules", "evaluate"]

_VARIABLES = ("self", "oldSelf")

_Step = str  # a property name, "[]" (every item) or "{}" (every additionalProperties value)


class RuleError(Exception):
    """A rule is malformed or does not compile; the message names its place in the schema."""


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled `x-kubernetes-validations` entry."""

    steps: tuple[_Step, ...]  # where in the object `self` is
    program: cel.Program
    message: str
    message_program: cel.Program | None
    field_path: str
    reason: str
    where: str  # the schema path, e.g. `spec.replicas` or `spec.items[*]`
    typed: Callable[[Any], Any] | None = None  # the value as the API server types it (see `_typing`)
    transition: bool = False  # reads oldSelf: judged only on an update, where the old value exists
    list_keys: tuple[tuple[str, ...] | None, ...] = ()  # per step: a map list's keys (to find old items)
    unsupported: str = ""  # why trustgate cannot evaluate it offline: reported, never passed
    null_sensitive: str = ""  # why it cannot be evaluated where a field of `self` or `oldSelf` is null
    node: Mapping[str, Any] | None = None  # the schema node `self` is a value of


def compile_rules(schema: Mapping[str, Any], *, kubernetes_version: str | None = None) -> list[Rule]:
    """Every rule of a structural schema, compiled, within the API server's cost limits, as
    the API server of `kubernetes_version` runs it (`cel.compile_expression`).

    Raises:
        RuleError: a rule is not a string, a rule or messageExpression does not compile, or
            its estimated cost (or that of all the rules together) is over the API server's
            limit, which refuses such a CRD (see `cel_cost`).
    """
    total = [0]
    typed = cel_cost.decl_type(schema, root=True)
    rules = list(_walk(schema, (), (), typed, 1, total, {}, kubernetes_version))
    if total[0] > cel_cost.PER_CRD_LIMIT:
        raise RuleError(
            cel_cost.budget_message(
                "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3Schema",
                total[0],
                cel_cost.PER_CRD_LIMIT,
            )
        )
    return rules


def _cost(
    program: cel.Program, typed: cel_cost.DeclType | None, cardinality: int | None, label: str, what: str
) -> int:
    """The program's estimated cost times how often its value can occur; over the limit: RuleError."""
    if typed is None:
        return 0  # the API server cannot type this node either
    cost = cel_cost.estimate(program.checked(), {"self": typed, "oldSelf": typed})
    times = cardinality if cardinality is not None else cel_cost.max_cardinality(typed.min_size)
    cost = min(cost * times, 2**64 - 1)
    if cost > cel_cost.PER_RULE_LIMIT:
        raise RuleError(f"{label}: {cel_cost.budget_message(what, cost, cel_cost.PER_RULE_LIMIT)}")
    return cost


def _walk(
    node: Mapping[str, Any],
    steps: tuple[_Step, ...],
    keys: tuple[tuple[str, ...] | None, ...],
    typed: cel_cost.DeclType | None,
    cardinality: int | None,
    total: list[int],
    views: dict[int, Mapping[str, Any]],
    version: str | None,
) -> Iterator[Rule]:
    where = _render(steps)
    # The node as the API server types the rules' values (`crd_cel_view.view`), once per node.
    shown = (
        crd_cel_view.view(node, root=not steps, memo=views) if node.get("x-kubernetes-validations") else node
    )
    for i, raw in enumerate(node.get("x-kubernetes-validations") or []):
        entry = raw if isinstance(raw, Mapping) else {}
        text = entry.get("rule")
        label = f"x-kubernetes-validations[{i}] at {where}"
        if not isinstance(text, str) or not text.strip():
            raise RuleError(f"{label}: rule must be a non-empty string")
        program = _compile(text, f"{label}: rule", version)
        total[0] += _cost(program, typed, cardinality, f"{label}: rule", "estimated rule cost")
        message_program = None
        if isinstance(entry.get("messageExpression"), str):
            message_program = _compile(entry["messageExpression"], f"{label}: messageExpression", version)
            # Judged alone, not times the occurrences of its value (they only run on a failure).
            what = "estimated messageExpression cost"
            _cost(message_program, typed, 1, f"{label}: messageExpression", what)
        # apiextensions sets UsesOldSelf from the checked rule's references, so a mention of
        # oldSelf in a comment or a string does not make a transition rule.
        transition = program.reads("oldSelf")
        analysis = crd_cel_view.analyze(program, shown)
        refused = analysis.refused
        unsupported = ""
        if refused:
            # The API server's values are typed from the schema; the engine's are plain. Where
            # that could change the answer, the rule is reported as not evaluated, never passed.
            unsupported = "it cannot be evaluated as the API server does: " + "; ".join(refused)
        if transition and entry.get("optionalOldSelf") is True:
            # oldSelf would be an optional, which the bindings cannot hand in (module docstring). The
            # API server runs such a rule on creates too: every value it applies to is reported as
            # not evaluated here (a blocking finding), never passed.
            unsupported = "optionalOldSelf rules cannot be evaluated offline by trustgate"
            transition = False
        yield Rule(
            steps,
            program,
            str(entry.get("message") or ""),
            message_program,
            str(entry.get("fieldPath") or ""),
            str(entry.get("reason") or "FieldValueInvalid"),
            where,
            _typing(shown, canonical=analysis.canonical),
            transition,
            keys,
            unsupported,
            (
                "it cannot be evaluated as the API server does where a field is null or not declared: "
                + "; ".join(analysis.null_sensitive)
                if analysis.null_sensitive
                else ""
            ),
            shown,
        )
    properties = node.get("properties")
    fields = typed.fields if typed is not None else {}
    if isinstance(properties, Mapping):
        for name, child in properties.items():
            if isinstance(child, Mapping):
                yield from _walk(
                    child,
                    (*steps, str(name)),
                    (*keys, None),
                    fields.get(str(name)),
                    cardinality,
                    total,
                    views,
                    version,
                )
    # Values under a list or a map occur up to maxItems / maxProperties times each (unbounded
    # without them), as the API server multiplies a rule's cost (apiextensions' extractMaxElements).
    elem = typed.elem if typed is not None else None
    if isinstance(node.get("items"), Mapping):
        times = _times(cardinality, node.get("maxItems"))
        map_keys = node.get("x-kubernetes-list-map-keys")
        item_keys: tuple[str, ...] | None = None
        if node.get("x-kubernetes-list-type") == "map" and isinstance(map_keys, list) and map_keys:
            item_keys = tuple(str(k) for k in map_keys)
        yield from _walk(
            node["items"], (*steps, "[]"), (*keys, item_keys), elem, times, total, views, version
        )
    if isinstance(node.get("additionalProperties"), Mapping):
        times = _times(cardinality, node.get("maxProperties"))
        yield from _walk(
            node["additionalProperties"], (*steps, "{}"), (*keys, None), elem, times, total, views, version
        )


def _typing(node: Mapping[str, Any], *, canonical: bool = False) -> Callable[[Any], Any] | None:
    """How to give a value the CEL types the API server gives it from the schema (None: as it is).

    The API server types a `number` as a double (JSON `1` is `1.0`: `self.ratio / 2` is 0.5,
    `self.ratio + 0.5` is defined), a `format: byte` string as bytes (`size()` counts the
    decoded bytes), `date` and `date-time` strings as timestamps and a `duration` string as a
    duration (k8s.io/apiserver/pkg/cel/common/values.go, `UnstructuredToVal`), so a rule can
    compare them with `timestamp(...)` and `duration(...)`. The engine takes those two only as
    protobuf messages (`google.protobuf.Timestamp`, `Duration`). Only the parts of a schema that
    hold such a value get a converter, so most rules pay nothing.

    `canonical`: the items of sets and map lists are put in one order (`crd_cel_view.canonical_order`),
    for a rule that compares them and reads their order nowhere else.
    """
    kind = node.get("type")
    if kind == "number":
        return lambda v: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
    if kind == "string" and node.get("format") == "byte":
        return _decoded
    if kind == "string" and node.get("format") in ("date", "date-time", "duration"):
        return _TIME_TYPING[str(node["format"])]
    if kind == "array" and isinstance(node.get("items"), Mapping):
        inner = _typing(node["items"], canonical=canonical)
        order = crd_cel_view.canonical_order(node) if canonical else None
        if inner is None and order is None:
            return None

        def typed_list(v: Any) -> Any:
            if not isinstance(v, list):
                return v
            items = order(v) if order is not None else v
            return [inner(x) for x in items] if inner is not None else items

        return typed_list
    if kind == "object":
        raw = node.get("properties")
        declared: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        fields = {
            str(k): c
            for k, c in (
                (k, _typing(n, canonical=canonical)) for k, n in declared.items() if isinstance(n, Mapping)
            )
            if c
        }
        extra = node.get("additionalProperties")
        rest = _typing(extra, canonical=canonical) if isinstance(extra, Mapping) else None
        # A property is presented under its escaped name (`foo-bar` as `foo__dash__bar`,
        # `namespace` as `__namespace__`), as the API server lists and finds it (escaping.go).
        names = {str(k): crd_cel_view.presented(str(k)) for k in declared}
        names = {k: v for k, v in names.items() if k != v}
        # A null field of an object with declared properties is absent, as the API server's
        # `unstructuredMap.Find` treats it (`has()` is false, `?.` none). Non-nullable nulls were
        # pruned when the object was decoded (`schema.apply_defaults`), so only nullable ones are left.
        nulls = bool(declared) and any(
            isinstance(n, Mapping) and n.get("nullable") for n in declared.values()
        )
        # A field its properties do not declare is not shown (`Find`): the API server prunes it, or
        # keeps it unshown under x-kubernetes-preserve-unknown-fields (a resource's metadata shows
        # only name and generateName to rules, `crd_cel_view.view`). An object that preserves unknown
        # fields and declares neither properties nor additionalProperties shows none of them.
        preserved = bool(node.get("x-kubernetes-preserve-unknown-fields"))
        closed = bool(declared) or (preserved and not isinstance(extra, Mapping))
        hidden = closed and preserved
        if not fields and rest is None and not names and not nulls and not hidden:
            return None

        def typed(v: Any) -> Any:
            if not isinstance(v, Mapping):
                return v
            out = {}
            for key, item in v.items():
                if closed and (item is None or key not in declared):
                    continue
                convert = fields.get(key) if key in declared else rest
                out[names.get(key, key)] = item if convert is None else convert(item)
            return out

        return typed
    return None


def _decoded(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return value  # not base64: the schema validation reports it


# RFC 3339 (`date-time`): the layout every version of go-openapi's strfmt.ParseDateTime accepts.
# Go's time.Parse takes a fraction of a second even where the layout has none, and up to 9
# digits; hours 0-23, seconds 0-59 (no leap second). Other layouts some strfmt versions add
# (no zone, no seconds, a space for `T`) are left strings: see `_instant`.
_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})", re.ASCII
)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})", re.ASCII)  # `date`: Go's "2006-01-02" (strfmt.RFC3339FullDate)
# Go's time.ParseDuration: an optional sign, then one or more decimal numbers each with a unit
# (ns, us, µs, ms, s, m, h), or "0". strfmt.ParseDuration tries it first; its fallback grammar
# (days, weeks, spaces; it differs between versions) is left a string: see `_span`.
_DURATION = re.compile(r"([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+|0)", re.ASCII)
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_UNIT_NANOS = {"ns": 1, "us": 10**3, "\u00b5s": 10**3, "\u03bcs": 10**3, "ms": 10**6, "s": 10**9}
_UNIT_NANOS |= {"m": 60 * 10**9, "h": 3600 * 10**9}
_MAX_DURATION_NANOS = 2**63 - 1  # Go's time.Duration is an int64 of nanoseconds


def _instant(value: Any) -> Any:
    """A `date-time` string as a `google.protobuf.Timestamp` (a CEL timestamp), as the API server
    types it. A string that is not RFC 3339 stays a string: comparing it with a timestamp is then
    an evaluation error (a `schema-cel` finding, never a pass), where the API server either
    parses another layout or fails the same way (an invalid value is an error value there)."""
    if not isinstance(value, str):
        return value
    if value == "":  # strfmt.ParseDateTime: the empty string is the Unix epoch
        return _timestamp(0, 0)
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        return value
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        moment = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
    except ValueError:
        return value
    zone = match.group(8)
    offset = 0 if zone == "Z" else int(zone[0] + "1") * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    nanos = int((match.group(7) or "0").ljust(9, "0"))
    return _timestamp(calendar.timegm(moment.timetuple()) - offset, nanos)


def _day(value: Any) -> Any:
    """A `date` string (`2006-01-02`) as a timestamp at midnight UTC, as the API server types it."""
    if not isinstance(value, str) or _DATE.fullmatch(value) is None:
        return value
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return value
    return _timestamp(calendar.timegm(day.timetuple()), 0)


def _span(value: Any) -> Any:
    """A `duration` string as a `google.protobuf.Duration` (a CEL duration), parsed as Go's
    time.ParseDuration parses it; anything else stays a string (see `_instant`)."""
    if not isinstance(value, str):
        return value
    match = _DURATION.fullmatch(value)
    if match is None:
        return value
    total = Fraction(0)
    for number, unit in _DURATION_PART.findall(match.group(2)):
        total += Fraction(number) * _UNIT_NANOS[unit]
    nanos = int(total)  # Go truncates the fraction of a nanosecond
    if nanos > _MAX_DURATION_NANOS + (match.group(1) == "-"):
        return value  # time.ParseDuration: "invalid duration" (out of range)
    if match.group(1) == "-":
        nanos = -nanos
    from google.protobuf import duration_pb2  # loaded only for CRDs with such fields

    seconds = int(nanos / 10**9) if nanos >= 0 else -((-nanos) // 10**9)
    return duration_pb2.Duration(seconds=seconds, nanos=nanos - seconds * 10**9)


def _timestamp(seconds: int, nanos: int) -> Any:
    from google.protobuf import timestamp_pb2  # loaded only for CRDs with such fields

    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


_TIME_TYPING: dict[str, Callable[[Any], Any]] = {"date-time": _instant, "date": _day, "duration": _span}


def _times(cardinality: int | None, most: Any) -> int | None:
    if cardinality is None or not isinstance(most, int) or isinstance(most, bool):
        return None
    return cardinality * max(most, 0)


def _compile(text: str, label: str, version: str | None) -> cel.Program:
    try:
        return cel.compile_expression(text, variables=_VARIABLES, kubernetes_version=version)
    except cel.CelCompileError as e:
        position = f" ({e.where()})" if e.where() else ""
        raise RuleError(f"{label}{position}: {e.message}") from e


def _render(steps: tuple[_Step, ...]) -> str:
    out = ""
    for step in steps:
        out += "[*]" if step in ("[]", "{}") else (f".{step}" if out else step)
    return out or "the top level"


_ABSENT = object()  # no old value: a create, or the value is new (or cannot be correlated)


def _values(
    value: Any, old: Any, steps: tuple[_Step, ...], keys: tuple[tuple[str, ...] | None, ...], path: JsonPath
) -> Iterator[tuple[JsonPath, Any, Any]]:
    """Each value the steps reach, with the old value at the same place (as the API server
    correlates them: object fields and map entries by name, items of a `map` list by its keys;
    items of other lists have none)."""
    if not steps:
        yield path, value, old
        return
    step, rest, key, more = steps[0], steps[1:], (keys[0] if keys else None), keys[1:]
    if step == "[]":
        if isinstance(value, list):
            olds: dict[tuple[Any, ...], Any] = {}
            if key and isinstance(old, list):
                olds = {_item_key(o, key): o for o in old if isinstance(o, Mapping)}
            for i, item in enumerate(value):
                before = (
                    olds.get(_item_key(item, key), _ABSENT) if key and isinstance(item, Mapping) else _ABSENT
                )
                yield from _values(item, before, rest, more, (*path, i))
    elif step == "{}":
        if isinstance(value, Mapping):
            for name, item in value.items():
                before = old.get(name, _ABSENT) if isinstance(old, Mapping) else _ABSENT
                yield from _values(item, before, rest, more, (*path, str(name)))
    elif isinstance(value, Mapping) and step in value:
        before = old.get(step, _ABSENT) if isinstance(old, Mapping) else _ABSENT
        yield from _values(value[step], before, rest, more, (*path, step))


def _item_key(item: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(repr(item.get(k)) for k in keys)


def _not_evaluated(rule: Rule, why: str) -> str:
    return (
        f"{rule.where}: rule '{rule.program.source}' was not evaluated: {why}; the API server evaluates "
        "it (check the object in a cluster, or waive it with an exception)"
    )


def evaluate(
    rules: list[Rule], obj: Mapping[str, Any], *, old: Mapping[str, Any] | None = None
) -> list[tuple[JsonPath, str]]:
    """The (path, message) of each rule that fails on each value it applies to.

    A value that is absent or null is not validated, as in the API server. An evaluation error is
    reported as a failure of the rule, with the error in the message.

    An object created with `generateName` and no name is named by the API server
    (rest.BeforeCreate) before the rules run, at random: it is judged under two names it could
    get (`k8s_defaults.generated_names`), and a rule that decides a value differently under
    them depends on the name, which a check cannot know: it is reported as not evaluated.

    Args:
        rules: the compiled rules of the object's schema.
        obj: the object.
        old: the object as it is now, for an update (pre-sync: in the gated tree): transition
            rules (reading `oldSelf`) are judged where the old value exists; without it, a
            create, they are not.
    """
    names = k8s_defaults.generated_names(obj) if old is None else None
    if names is None:
        return [(path, message) for _, path, message in _evaluate(rules, obj, old)]
    meta = obj["metadata"]
    first, second = (
        {
            (n, path): message
            for n, path, message in _evaluate(rules, {**obj, "metadata": {**meta, "name": name}}, None)
        }
        for name in names
    )
    out: list[tuple[JsonPath, str]] = []
    for key in dict.fromkeys([*first, *second]):
        if key in first and key in second:
            out.append((key[1], first[key]))
            continue
        why = (
            f"it decides differently depending on the name the API server generates from generateName "
            f"{meta.get('generateName')!r} (tried {names[0]!r} and {names[1]!r}), which a check cannot know"
        )
        out.append((key[1], _not_evaluated(rules[key[0]], why)))
    return out


def _evaluate(
    rules: list[Rule], obj: Mapping[str, Any], old: Mapping[str, Any] | None
) -> list[tuple[int, JsonPath, str]]:
    """`evaluate` for an object with its name: (the rule's index, path, message) of each failure."""
    out: list[tuple[int, JsonPath, str]] = []
    for n, rule in enumerate(rules):
        if rule.transition and old is None:
            continue
        for path, value, before in _values(obj, old, rule.steps, rule.list_keys, ()):
            if value is None:
                continue  # the API server validates non-null values only (validateExpressions)
            if before is None:
                before = _ABSENT  # nor is a null old value one to compare with
            if rule.transition and before is _ABSENT:
                continue
            if rule.unsupported:
                out.append((n, path, _not_evaluated(rule, rule.unsupported)))
                continue
            if rule.null_sensitive and rule.node is not None:
                nulls = crd_cel_view.holds_hidden_field(value, rule.node)
                if nulls or (before is not _ABSENT and crd_cel_view.holds_hidden_field(before, rule.node)):
                    out.append((n, path, _not_evaluated(rule, rule.null_sensitive)))
                    continue
            convert = rule.typed if rule.typed is not None else (lambda v: v)
            activation = {"self": convert(value), "oldSelf": None if before is _ABSENT else convert(before)}
            try:
                result = rule.program.evaluate(activation)
            except cel.CelEvalError as e:
                out.append((n, path, f"{rule.where}: rule '{rule.program.source}' failed: {e}"))
                continue
            if result is True:
                continue
            message = rule.message or f"failed rule: {rule.program.source}"
            if rule.message_program is not None:
                try:
                    text = rule.message_program.evaluate(activation)
                    if isinstance(text, str) and text.strip():
                        message = text
                except cel.CelEvalError:
                    pass  # the static message stands, as in the API server
            target = path
            if rule.field_path:  # `.spec.x` or `.x['y']`, relative to self
                target = (
                    *path,
                    *(p for p in rule.field_path.replace("['", ".").replace("']", "").split(".") if p),
                )
            out.append((n, target, message))
    return out
