"""Validate objects against Kubernetes' JSON schemas and CRD schemas, offline.

Owns: finding the schema for an apiVersion/kind in the schemas shipped by
the `kubernetes-validate` package, turning CRD `openAPIV3Schema`s into JSON
schemas, applying a CRD schema's `default`s before validating (as the API
server defaults on decode), checking a CRD's string `format`s as the API server does
(crd_formats), checking a built-in kind's `[]byte` and `metav1.Time` strings as the API server's
decoding does (builtin_formats; its other formats are documentation, never checked), compiling each
validator once (jsonschema-rs; a built-in kind's self-contained schema is kept across runs in
the compile cache), and reporting violations as path + message. Leaves out: reading manifests
and deciding what a violation means for the verdict.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs

from trustgate import kinds
from trustgate.errors import ConfigError
from trustgate.model import JsonPath, render_path
from trustgate.policy import _compile_cache, builtin_formats, crd_formats

_DEFS = "#/$defs/"
_FORMAT = "k8s:"  # prefix of a CRD format name in the converted schema: never a jsonschema-rs built-in
_VERSION_DIR = re.compile(r"^v(\d+)\.(\d+)\.(\d+)-local(-strict)?$")


@dataclass(frozen=True, slots=True)
class SchemaViolation:
    """One way an object fails its schema."""

    rule: str  # "schema-invalid" | "schema-unknown-field"
    message: str
    path: JsonPath


class SchemaMissing(Exception):
    """No schema is known for the object's apiVersion/kind."""


@cache
def _schema_root() -> Path:
    # find_spec locates the package without importing it: its import pulls in
    # jsonschema and costs more than a whole small check.
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the Kubernetes schemas are missing (package kubernetes-validate)",
            hint="reinstall trustgate: pip install -e '.[dev]' or make dev",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"


def available_versions() -> list[str]:
    """Kubernetes minor versions with shipped schemas, oldest first (e.g. ["1.25", ...])."""
    found = set()
    for entry in _schema_root().iterdir():
        m = _VERSION_DIR.match(entry.name)
        if m:
            found.add((int(m.group(1)), int(m.group(2))))
    return [f"{a}.{b}" for a, b in sorted(found)]


def _version_dir(version: str, strict: bool) -> Path:
    parts = version.lstrip("v").split(".")
    try:
        wanted = (int(parts[0]), int(parts[1]))
    except (IndexError, ValueError) as e:
        raise ConfigError(f"Kubernetes version {version!r} is not MAJOR.MINOR") from e
    candidates = []
    for entry in _schema_root().iterdir():
        m = _VERSION_DIR.match(entry.name)
        if m and bool(m.group(4)) == strict and (int(m.group(1)), int(m.group(2))) <= wanted:
            candidates.append(((int(m.group(1)), int(m.group(2))), entry))
    supported = available_versions()
    if not candidates or f"{wanted[0]}.{wanted[1]}" not in supported:
        raise ConfigError(
            f"no schemas for Kubernetes {version}",
            hint=f"choose one of {', '.join(supported)} (kubernetes.version or --kubernetes-version)",
        )
    return max(candidates)[1]


class SchemaSet:
    """Validators for one Kubernetes version (+ CRDs), compiled on first use."""

    def __init__(self, *, version: str, strict: bool, crds: Iterable[Mapping[str, Any]] = ()) -> None:
        self.version = version
        self.strict = strict
        self._dir = _version_dir(version, strict)
        self._defs: dict[str, Any] | None = None
        self._validators: dict[tuple[str, str], Any] = {}
        self._crd_schemas: dict[tuple[str, str], dict[str, Any]] = {}
        self._crd_rules: dict[tuple[str, str], list[Any]] = {}  # x-kubernetes-validations (crd_cel.Rule)
        # The structural schema each object is decoded with (non-nullable nulls pruned, defaults
        # applied), and whether it has a `default` (else only an object holding a null needs it).
        self._crd_decode: dict[tuple[str, str], tuple[Mapping[str, Any], bool]] = {}
        self._crd_webhook: set[tuple[str, str]] = set()  # (group, kind) converted by a webhook
        for crd in crds:
            self.add_crd(crd)

    def add_crd(self, crd: Mapping[str, Any]) -> int:
        """Register the schemas of a CustomResourceDefinition; returns how many versions had one.

        Raises:
            ConfigError: the object is not a usable CRD.
        """
        spec = crd.get("spec")
        if not isinstance(spec, Mapping):
            raise ConfigError("CustomResourceDefinition has no spec")
        group = spec.get("group")
        kind = (spec.get("names") or {}).get("kind") if isinstance(spec.get("names"), Mapping) else None
        if not isinstance(group, str) or not isinstance(kind, str):
            raise ConfigError("CustomResourceDefinition needs spec.group and spec.names.kind")
        if kinds.builtin_namespaced(group, kind) is not None:
            # The API server keeps serving the built-in kind: its schema, defaults and rules are
            # what objects meet, and a CRD's here would replace them (a schema with every field
            # allowed turned schema checks off for Ingress).
            raise ConfigError(
                f"CustomResourceDefinition for {group or 'core'} {kind}, a built-in kind: the API server "
                "serves the built-in, not a custom resource; remove it from the CRDs given"
            )
        conversion = spec.get("conversion")
        if isinstance(conversion, Mapping) and conversion.get("strategy", "None") != "None":
            self._crd_webhook.add((group, kind))
        count = 0
        try:
            for version in spec.get("versions") or []:
                count += self._add_version(group, kind, version)
        except RecursionError as e:  # the walks of a schema follow its nesting
            raise ConfigError(
                f"CustomResourceDefinition {kind}: its schema nests too deeply for trustgate to read"
            ) from e
        return count

    def _add_version(self, group: str, kind: str, version: Any) -> int:
        """Register one version's schema (1), or nothing (0: it has none)."""
        schema = (
            ((version.get("schema") or {}).get("openAPIV3Schema")) if isinstance(version, Mapping) else None
        )
        if not isinstance(schema, Mapping) or not isinstance(version.get("name"), str):
            return 0
        key = (f"{group}/{version['name']}", kind)
        problems = crd_schema_problems(schema, f"spec.versions[{version['name']}].schema.openAPIV3Schema")
        if problems:  # the API server refuses the CRD, and a `$ref` would be fetched
            raise ConfigError(
                f"CustomResourceDefinition {kind}: "
                + "; ".join(f"{place}: {problem}" for place, problem in problems),
                hint="the API server refuses a CustomResourceDefinition with this schema",
            )
        self._crd_schemas[key] = crd_to_json_schema(schema, strict=self.strict)
        self._crd_decode[key] = (copy.deepcopy(dict(schema)), '"default"' in json.dumps(schema))
        if "x-kubernetes-validations" in json.dumps(schema):
            from trustgate.policy import crd_cel  # the CEL runtime loads only for CRDs with rules

            try:
                rules = crd_cel.compile_rules(schema, kubernetes_version=self.version)
            except crd_cel.RuleError as e:
                raise ConfigError(f"CustomResourceDefinition {kind} {version['name']}: {e}") from e
            self._crd_rules[key] = rules
        return 1

    @property
    def crd_kinds(self) -> list[tuple[str, str]]:
        return sorted(self._crd_schemas)

    def has_crd(self, api_version: str, kind: str) -> bool:
        """Whether a registered CRD defines this apiVersion/kind (it then wins over built-in APIs)."""
        return (api_version, kind) in self._crd_schemas

    def validate(
        self, obj: Mapping[str, Any], *, old: Mapping[str, Any] | None = None
    ) -> list[SchemaViolation]:
        """Validate one object.

        Args:
            obj: the object.
            old: the object as it is now, for an update (pre-sync: in the gated tree): a CRD's
                transition rules (`oldSelf`) judge the change, as the API server judges an UPDATE.

        Raises:
            SchemaMissing: no schema is known for its apiVersion and kind.
        """
        api_version = str(obj.get("apiVersion"))
        kind = str(obj.get("kind"))
        try:
            validator = self._validator(api_version, kind)
        except ValueError as e:  # jsonschema-rs: a CRD's schema nested deeper than it compiles
            if (api_version, kind) not in self._crd_schemas:
                raise
            return [
                SchemaViolation(
                    "schema-invalid", f"the object cannot be validated: its CRD's schema: {e}", ()
                )
            ]
        try:
            return self._validate(obj, old, validator, api_version, kind)
        except RecursionError:
            # The walks here are iterative or follow the schema's depth; should one still run out of
            # stack (a CRD schema nested hundreds deep), the object is reported, never passed.
            return [
                SchemaViolation(
                    "schema-invalid",
                    "the object cannot be validated: it (or its CRD's schema) nests too deeply for trustgate",
                    (),
                )
            ]

    def _validate(
        self,
        obj: Mapping[str, Any],
        old: Mapping[str, Any] | None,
        validator: Any,
        api_version: str,
        kind: str,
    ) -> list[SchemaViolation]:
        decode = self._crd_decode.get((api_version, kind))
        # The API server prunes non-nullable nulls and defaults on decode, before it validates anything.
        if decode is not None and (decode[1] or _holds_null(obj)):
            obj = apply_defaults(obj, decode[0], prune_nulls=True)
        out = []
        try:
            errors = list(validator.iter_errors(obj))
        except (ValueError, RecursionError) as e:  # nesting deeper than the validator follows
            return [SchemaViolation("schema-invalid", f"the object cannot be validated: {e}", ())]
        for error in errors:
            path: JsonPath = tuple(error.instance_path)
            rule = "schema-invalid"
            message = error.message
            unexpected = getattr(error.kind, "unexpected", None)
            if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties) and unexpected:
                rule = "schema-unknown-field"
                names = ", ".join(repr(u) for u in unexpected)
                where = render_path(path) or "the top level"
                message = f"unknown field {names} at {where}"
                path = (*path, str(unexpected[0]))
            if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Format):
                message = _format_message(path, error.instance, str(error.kind.format))
            out.append(SchemaViolation(rule, message, path))
        if decode is not None:
            out.extend(
                SchemaViolation("schema-invalid", m, p) for p, m in list_type_violations(obj, decode[0])
            )
        rules = self._crd_rules.get((api_version, kind))
        if rules:
            from trustgate.policy import crd_cel

            if old is not None and old.get("apiVersion") != api_version:
                # The API server converts the stored object to the request's version first. With
                # the `None` strategy that only sets apiVersion; a webhook's conversion trustgate
                # cannot run, so transition rules cannot be judged: say so, never pass silently.
                if (api_version.rpartition("/")[0], kind) in self._crd_webhook:
                    if any(r.transition for r in rules):
                        out.append(_unconverted(old, api_version, kind))
                    old = None
                else:
                    old = {**old, "apiVersion": api_version}
            if old is not None and decode is not None and (decode[1] or _holds_null(old)):
                old = apply_defaults(old, decode[0], prune_nulls=True)  # the stored object is decoded too
            pairs = crd_cel.evaluate(rules, obj, old=old)
            out.extend(SchemaViolation("schema-cel", m, p) for p, m in pairs)
        return out

    def _validator(self, api_version: str, kind: str) -> Any:
        key = (api_version, kind)
        validator = self._validators.get(key)
        if validator is not None:
            return validator
        crd = self._crd_schemas.get(key)
        if crd is not None:
            # The API server checks the formats it knows on strings; jsonschema-rs calls custom
            # format checkers on strings only, and `_convert` left no other format in the schema.
            # `offline`: a `$ref` (refused in `add_crd`) is never fetched over the network or from disk.
            validator = jsonschema_rs.validator_for(
                crd, formats=_format_checkers(crd), validate_formats=True, offline=True
            )
        else:
            validator = self._compile_builtin(api_version, kind)
        self._validators[key] = validator
        return validator

    def _compile_builtin(self, api_version: str, kind: str) -> Any:
        group, _, version = api_version.rpartition("/")
        prefix = f"{group.split('.')[0]}-" if group else ""
        path = self._dir / f"{kind.lower()}-{prefix}{version}.json"
        # Gathering a kind's definitions means reading and walking all of them
        # (1.4 MB): the self-contained schema is kept in the compile cache, keyed
        # by both files' content and this module's code.
        cache = _compile_cache.active()
        key = ""
        if cache is not None:
            try:
                key = cache.key(
                    [b"k8s-schema-decoded", _code(), api_version, _identity(path), _identity(self._defs_path)]
                )
            except OSError as e:
                raise SchemaMissing(f"no schema for {api_version} {kind}") from e
            hit = cache.load_bytes(key)
            if hit is not None:
                try:
                    return _builtin_validator(json.loads(hit))
                except ValueError:  # jsonschema_rs.ValidationError is one too
                    pass  # not a schema after all: build it again
        try:
            schema = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as e:
            raise SchemaMissing(f"no schema for {api_version} {kind}") from e
        # The file name drops the group's domain: make sure it is the same group.
        allowed = (schema.get("properties", {}).get("apiVersion", {}) or {}).get("enum")
        if allowed and api_version not in allowed:
            raise SchemaMissing(f"no schema for {api_version} {kind}")
        schema["$defs"] = self._reachable_defs(schema)
        # A copy (the definitions are shared with other kinds) whose formats are the decoder's.
        compiled = json.loads(json.dumps(schema).replace("/api/_definitions.json#/$defs/", _DEFS))
        _mark_decoded_formats(compiled)
        text = json.dumps(compiled)
        validator = _builtin_validator(compiled)
        if cache is not None:
            cache.store_bytes(key, text.encode("utf-8"))
        return validator

    @property
    def _defs_path(self) -> Path:
        return self._dir / "_definitions.json"

    def _reachable_defs(self, schema: Any) -> dict[str, Any]:
        if self._defs is None:
            self._defs = json.loads(self._defs_path.read_text("utf-8"))["$defs"]
        defs = self._defs
        found: dict[str, Any] = {}
        stack = [schema]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for key, value in node.items():
                    if key == "$ref" and isinstance(value, str) and _DEFS in value:
                        name = value.split(_DEFS, 1)[1]
                        if name not in found and name in defs:
                            found[name] = defs[name]
                            stack.append(defs[name])
                    else:
                        stack.append(value)
            elif isinstance(node, list):
                stack.extend(node)
        return found


def _builtin_validator(schema: Any) -> Any:
    """A built-in kind's validator: its only formats are `_mark_decoded_formats`' (cache hit or not)."""
    checkers = {name: known.check for name, known in builtin_formats.DECODED.items()}
    return jsonschema_rs.validator_for(schema, formats=checkers, validate_formats=True, offline=True)


_SCHEMA_MAPS = ("properties", "patternProperties")
_SCHEMA_ONE = ("items", "additionalProperties", "not")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems")


def _mark_decoded_formats(schema: dict[str, Any]) -> None:
    """Give a built-in kind's compiled schema the formats of the Go types the API server decodes.

    `byte` and the Time/MicroTime definitions' `date-time` become `builtin_formats`' custom
    names; every other `format` (int32, int64, double, ...) is removed: the API server never
    checks them, and the validator asserts formats. Walks schema keywords only, so a property
    that happens to be called "format" is left alone.
    """
    stack: list[tuple[Any, str | None]] = [(schema, None)]
    stack += [(node, name) for name, node in (schema.get("$defs") or {}).items()]
    while stack:
        node, definition = stack.pop()
        if not isinstance(node, dict):
            continue
        name = node.get("format")
        if isinstance(name, str):
            decoded = builtin_formats.decoded_format(name, definition=definition)
            if decoded is None:
                del node["format"]
            else:
                node["format"] = decoded
        for key in _SCHEMA_MAPS:
            if isinstance(node.get(key), dict):
                stack += [(child, None) for child in node[key].values()]
        for key in _SCHEMA_ONE:
            stack.append((node.get(key), None))
        for key in (*_SCHEMA_LISTS, "items"):  # draft 4's tuple `items` is a list
            if isinstance(node.get(key), list):
                stack += [(child, None) for child in node[key]]


def _format_checkers(schema: Any) -> dict[str, crd_formats.Checker]:
    """The checker of every `k8s:<name>` format `_convert` left in a CRD schema."""
    found: dict[str, crd_formats.Checker] = {}
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            name = node.get("format")
            if isinstance(name, str) and name.startswith(_FORMAT):
                known = crd_formats.checked(name.removeprefix(_FORMAT))
                if known is not None:
                    found[name] = known.check
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _format_message(path: JsonPath, value: Any, name: str) -> str:
    decoded = builtin_formats.DECODED.get(name)
    if decoded is not None:
        where = render_path(path) or "the object"
        return f"{where}: {json.dumps(value, ensure_ascii=False)} {decoded.expected}"
    name = name.removeprefix(_FORMAT)
    known = crd_formats.checked(name)
    where = render_path(path) or "the object"
    hint = known.example if known is not None else f"a valid {name}"
    return (
        f"{where}: {json.dumps(value, ensure_ascii=False)} is not a valid {name} (the CRD declares "
        f"format: {name} and the API server refuses the object): use {hint}"
    )


def _unconverted(old: Mapping[str, Any], api_version: str, kind: str) -> SchemaViolation:
    return SchemaViolation(
        "schema-cel",
        f"the {kind} is {old.get('apiVersion')} in the gated tree and {api_version} here: the API "
        "server converts the stored object with the CRD's conversion webhook before its transition "
        "rules (oldSelf) judge the update, and trustgate cannot run the webhook, so they could not "
        "be evaluated: keep the apiVersion in this change, or judge the update in the cluster",
        (),
    )


def _identity(path: Path) -> bytes:
    """A schema file's identity for the compile cache: the SHA-256 of its bytes.

    Its content rather than its size and time: a reinstalled package may keep
    both. `_definitions.json` (1.4 MB, ~2 ms) is hashed once per process.

    Raises:
        OSError: the file is missing or unreadable.
    """
    info = path.stat()
    return _content_digest(str(path), info.st_size, info.st_mtime_ns)


@cache
def _content_digest(path: str, size: int, mtime_ns: int) -> bytes:  # size, time: the memo's key
    return hashlib.sha256(Path(path).read_bytes()).digest()


@cache
def _code() -> bytes:
    return _compile_cache.code_fingerprint([__file__, builtin_formats.__file__])


def apply_defaults(
    obj: Mapping[str, Any], schema: Mapping[str, Any], *, prune_nulls: bool = False
) -> Mapping[str, Any]:
    """A copy of `obj` with a CRD structural schema's `default`s filled in.

    As apiextensions-apiserver's defaulting algorithm: in each object that is
    present, a property that is absent (or null where the schema is not
    nullable) takes its default; then every value, defaulted ones included, is
    defaulted by its own schema (`properties`, else `additionalProperties`;
    `items` for lists). Absent objects are not created.

    Args:
        obj: the object.
        schema: its structural schema.
        prune_nulls: first drop each null field or map value whose schema is neither
            nullable nor has a default, as the API server does on decode
            (`PruneNonNullableNullsWithoutDefaults`; a null list item stays).
    """
    out: dict[str, Any] = _copy_json(dict(obj))
    _default(out, schema, prune_nulls)
    return out


def list_type_violations(obj: Any, schema: Mapping[str, Any]) -> list[tuple[JsonPath, str]]:
    """Where a CRD object breaks the uniqueness of its `x-kubernetes-list-type` lists: a `set`'s
    items, a `map` list's keys (an item without a key counts as the empty key), as the API server's
    `listtype.ValidateListSetsAndMaps` checks on every write (the JSON schema cannot say it)."""
    out: list[tuple[JsonPath, str]] = []
    _list_types(obj, schema, (), out)
    return out


def _list_types(value: Any, schema: Any, path: JsonPath, out: list[tuple[JsonPath, str]]) -> None:
    if not isinstance(schema, Mapping):
        return
    if isinstance(value, dict):
        extra = schema.get("additionalProperties")
        properties = schema.get("properties")
        for key, item in value.items():
            if isinstance(extra, Mapping):
                _list_types(item, extra, (*path, key), out)
            if isinstance(properties, Mapping) and key in properties:
                _list_types(item, properties[key], (*path, key), out)
        return
    if not isinstance(value, list):
        return
    kind = schema.get("x-kubernetes-list-type")
    if kind == "set":
        for i in _repeated([_unique_key(v) for v in value]):
            out.append(((*path, i), f"Duplicate value: {_json(value[i])}"))
    elif kind == "map":
        keys = [str(k) for k in schema.get("x-kubernetes-list-map-keys") or []]
        bad = next((i for i, v in enumerate(value) if v is not None and not isinstance(v, dict)), None)
        if bad is not None:
            out.append(((*path, bad), "Invalid value: must be an object for an array of list-type map"))
        else:
            found = [{k: v[k] for k in keys if k in v} if isinstance(v, dict) else {} for v in value]
            for i in _repeated([_unique_key(f) for f in found]):
                out.append(((*path, i), f"Duplicate value: {_json(found[i])}"))
    for i, item in enumerate(value):
        _list_types(item, schema.get("items"), (*path, i), out)


def _unique_key(value: Any) -> Any:
    """What the API server tells items apart by: a scalar by its type and value (1 is not 1.0,
    nor true), a list or object by its JSON."""
    if isinstance(value, (dict, list)):
        return ("json", json.dumps(value, sort_keys=True, separators=(",", ":")))
    return (type(value).__name__, value)


def _repeated(keys: list[Any]) -> list[int]:
    """The index of the second appearance of each value that appears more than once."""
    seen: dict[Any, int] = {}
    out = []
    for i, key in enumerate(keys):
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            out.append(i)
    return out


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _holds_null(value: Any) -> bool:
    """Whether a null is anywhere in the value (iterative: a value can nest deeper than the stack)."""
    stack = [value] if isinstance(value, (Mapping, list)) else []
    while stack:
        current = stack.pop()
        for item in current.values() if isinstance(current, Mapping) else current:
            if item is None:
                return True
            if isinstance(item, (Mapping, list)):
                stack.append(item)
    return False


def _copy_json(value: Any) -> Any:
    """A copy of a JSON value's objects and lists (iterative: `copy.deepcopy` recurses, and a
    value preserved under x-kubernetes-preserve-unknown-fields can nest deeper than the stack)."""
    if not isinstance(value, (Mapping, list)):
        return value
    root: Any = {} if isinstance(value, Mapping) else []
    stack: list[tuple[Any, Any]] = [(value, root)]
    while stack:
        source, target = stack.pop()
        pairs = source.items() if isinstance(source, Mapping) else enumerate(source)
        for key, item in pairs:
            if isinstance(item, (Mapping, list)):
                copied: Any = {} if isinstance(item, Mapping) else []
                stack.append((item, copied))
                item = copied
            if isinstance(target, dict):
                target[key] = item
            else:
                target.append(item)
    return root


def _default(value: Any, schema: Any, prune_nulls: bool = False) -> None:
    if not isinstance(schema, Mapping):
        return
    if isinstance(value, dict):
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        if prune_nulls:
            extra = schema.get("additionalProperties")
            for key in [k for k, v in value.items() if v is None]:
                field = properties.get(key) if key in properties else extra
                if isinstance(field, Mapping) and not field.get("nullable") and field.get("default") is None:
                    del value[key]
        for key, prop in properties.items():
            if not isinstance(prop, Mapping) or "default" not in prop or prop["default"] is None:
                continue
            if key not in value or (value[key] is None and not prop.get("nullable")):
                value[key] = copy.deepcopy(prop["default"])
        for key, item in value.items():
            if key in properties:
                _default(item, properties[key], prune_nulls)
            elif isinstance(schema.get("additionalProperties"), Mapping):
                _default(item, schema["additionalProperties"], prune_nulls)
    elif isinstance(value, list):
        for item in value:
            _default(item, schema.get("items"), prune_nulls)


def crd_to_json_schema(schema: Mapping[str, Any], *, strict: bool, root: bool = True) -> dict[str, Any]:
    """Turn a CRD's structural OpenAPI v3 schema into a JSON schema (of an object when `root`, which
    then also takes apiVersion, kind and metadata; else of a part of one, such as a constraint's
    parameters).

    `nullable` becomes a null type; in strict mode objects that declare
    properties reject unknown fields unless they preserve unknown fields,
    which is what the API server's pruning would silently drop. A `format` the
    API server checks becomes `k8s:<name>` (checked by `crd_formats` through
    the validator's custom formats); any other `format` is dropped, as the API
    server's `StripUnsupportedFormatsPostProcess` drops it.
    """
    out: dict[str, Any] = _convert(copy.deepcopy(dict(schema)), strict=strict, top=root)
    return out


def _convert(node: Any, *, strict: bool, top: bool = False) -> Any:
    if isinstance(node, list):
        return [_convert(n, strict=strict) for n in node]
    if not isinstance(node, dict):
        return node
    for key in ("properties", "patternProperties"):
        if isinstance(node.get(key), dict):
            node[key] = {k: _convert(v, strict=strict) for k, v in node[key].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), dict):
            node[key] = _convert(node[key], strict=strict)
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(node.get(key), list):
            node[key] = [_convert(v, strict=strict) for v in node[key]]
    if "format" in node:
        name = node.pop("format")
        if isinstance(name, str) and crd_formats.checked(name) is not None:
            node["format"] = _FORMAT + name
    if node.pop("nullable", False) and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
    if node.get("x-kubernetes-int-or-string"):
        node.pop("type", None)
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if top and isinstance(node.get("properties"), dict):
        props = node["properties"]
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    if (
        strict
        and "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        node["additionalProperties"] = False
    return node


# The types an openAPIV3Schema may name (apiextensions validation's `openapiV3Types`); "null" is
# refused with "use nullable as an alternative".
_OPENAPI_TYPES = ("array", "boolean", "integer", "number", "object", "string")


# Keywords apiextensions validation refuses in a CRD schema (`specStandardValidatorV3.validate`),
# with the test Go makes: present at all, or present and not empty. `$ref` would also make a JSON
# schema validator fetch what it names; `definitions`, `dependencies`, `id` and `additionalItems`
# mean something to it that they cannot mean in a CRD.
_REFUSED_KEYWORDS: Mapping[str, bool] = {  # keyword -> refused even when empty
    "$ref": True,
    "id": False,
    "definitions": False,
    "dependencies": True,
    "additionalItems": True,
    "patternProperties": False,
}


def crd_schema_problems(schema: Any, path: str = "openAPIV3Schema") -> list[tuple[str, str]]:
    """What in a CRD schema the API server refuses and a validator here could not run: a `type`
    outside the OpenAPI v3 types, a `pattern` Go's `regexp.Compile` refuses, `$ref`, `id`,
    `definitions`, `dependencies`, `additionalItems`, `patternProperties`, `items` that is a list
    rather than one schema, and `uniqueItems: true` (apiextensions validation refuses each). Each
    problem is (the schema place, what is wrong).
    """
    from trustgate.policy import _gobuiltins

    out: list[tuple[str, str]] = []
    stack: list[tuple[Any, str]] = [(schema, path)]
    while stack:
        node, where = stack.pop()
        if not isinstance(node, Mapping):
            continue
        for keyword, even_empty in _REFUSED_KEYWORDS.items():
            if keyword in node and node[keyword] is not None and (even_empty or node[keyword]):
                out.append((f"{where}.{keyword}", f"{keyword} is not supported in a CRD schema"))
        if isinstance(node.get("items"), list):
            out.append((f"{where}.items", "items must be a schema object and not an array"))
        if node.get("uniqueItems") is True:
            out.append(
                (f"{where}.uniqueItems", "uniqueItems cannot be set to true (the API server refuses it)")
            )
        if "type" in node and node["type"] not in (*_OPENAPI_TYPES, ""):
            kind = node["type"]
            out.append(
                (
                    f"{where}.type",
                    "type null is refused: use nullable: true"
                    if kind == "null"
                    else f"type {json.dumps(kind)} is not one of {', '.join(_OPENAPI_TYPES)}",
                )
            )
        if "pattern" in node:
            pattern = node["pattern"]
            try:
                ok = isinstance(pattern, str) and _gobuiltins.go_regexp(pattern) is not None
            except _gobuiltins.PatternTooLarge as e:
                out.append((f"{where}.pattern", str(e)))
                continue
            if not ok:
                out.append(
                    (
                        f"{where}.pattern",
                        f"{json.dumps(pattern)} is not a regular expression Go's regexp compiles "
                        "(RE2 syntax)",
                    )
                )
        for key in _SCHEMA_MAPS:
            children = node.get(key)
            if isinstance(children, Mapping):
                stack += [(child, f"{where}.{key}.{name}") for name, child in children.items()]
        for key in _SCHEMA_ONE:
            stack.append((node.get(key), f"{where}.{key}"))
        for key in _SCHEMA_LISTS:
            if isinstance(node.get(key), list):
                stack += [(child, f"{where}.{key}[{i}]") for i, child in enumerate(node[key])]
    return sorted(out)


def _offline_registry() -> Any:
    """A `referencing` registry for `jsonschema` that retrieves nothing: a reference to anything
    outside the schema is unresolvable, never fetched (a template or CRD names what it likes)."""
    from referencing import Registry

    return Registry()  # its default `retrieve` raises NoSuchResource for every URI


def parameters_validator(schema: Mapping[str, Any], *, strict: bool) -> Any:
    """A `jsonschema` validator of a part of an object (a Gatekeeper constraint's parameters)
    against a CRD schema (`crd_to_json_schema` with `root=False`), with `pattern` matched as the
    API server matches it: Go's RE2 (`\\p{L}` works), anywhere in the string. Compiled once per
    schema: a template's constraints share it.

    The schema must be free of `crd_schema_problems`; its other keywords are checked here.

    Raises:
        jsonschema.SchemaError: the schema is not a valid JSON schema (`minimum: "a"`).
    """
    return _parameters_validator(json.dumps(schema, sort_keys=True), strict)


@cache
def _parameters_validator(schema_json: str, strict: bool) -> Any:
    import jsonschema

    converted = crd_to_json_schema(json.loads(schema_json), strict=strict, root=False)
    # Formats are not asserted here (the "regex" format would be Python's `re`, not Go's).
    jsonschema.Draft7Validator.check_schema(converted, format_checker=jsonschema.FormatChecker(formats=()))
    # `crd_schema_problems` refused `$ref`; should one get here, it resolves to nothing fetched.
    return _go_pattern_validator()(converted, registry=_offline_registry())


@cache
def _go_pattern_validator() -> Any:
    """Draft 7 with Go's `pattern` (kube-openapi's `validate.Pattern`: `regexp.MatchString`)."""
    import jsonschema

    from trustgate.policy import _gobuiltins

    def pattern(validator: Any, value: Any, instance: Any, _schema: Any) -> Iterable[Any]:
        if not validator.is_type(instance, "string"):
            return
        compiled = _gobuiltins.go_regexp(value)
        if compiled is None or not _gobuiltins.go_search(compiled, instance):
            yield jsonschema.ValidationError(f"{instance!r} does not match {value!r}")

    # `extend` has no annotations in types-jsonschema; it returns a Draft7Validator subclass.
    return jsonschema.validators.extend(  # type: ignore[no-untyped-call]
        jsonschema.Draft7Validator, {"pattern": pattern}
    )
