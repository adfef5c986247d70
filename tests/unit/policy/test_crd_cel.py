"""CRD `x-kubernetes-validations`: compiled once, evaluated per value, through SchemaSet and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.crds import check_with_crd, widget_crd

from trustgate.errors import ConfigError
from trustgate.policy import crd_cel, crd_cel_view
from trustgate.policy.schema import SchemaSet

Write = Callable[[str, str], Path]

# The Kubernetes documentation's validation-rules example, with a list and a map added.
CRD = widget_crd(
    """\
spec:
  type: object
  x-kubernetes-validations:
    - rule: "self.minReplicas <= self.replicas"
      message: "replicas should be greater than or equal to minReplicas."
    - rule: "self.replicas <= self.maxReplicas"
      messageExpression: "'replicas must be at most ' + string(self.maxReplicas)"
      fieldPath: ".replicas"
    - rule: "self.replicas == oldSelf.replicas"
      message: "a transition rule: updates only"
  properties:
    replicas: {type: integer}
    minReplicas: {type: integer}
    maxReplicas: {type: integer}
    ports:
      type: array
      items:
        type: integer
        x-kubernetes-validations:
          - rule: "self > 0 && self < 65536"
            message: "not a port"
    limits:
      type: object
      additionalProperties:
        type: string
        x-kubernetes-validations:
          - rule: "isQuantity(self)"
            messageExpression: "'not a quantity: ' + self"
"""
)


def widget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec}


def schemas(text: str = CRD) -> SchemaSet:
    return SchemaSet(version="1.35", strict=True, crds=[yaml.safe_load(text)])


def test_rules_report_each_failing_value_with_its_path() -> None:
    found = schemas().validate(
        widget(replicas=7, minReplicas=8, maxReplicas=5, ports=[80, 0], limits={"a": "x"})
    )
    assert sorted((v.rule, v.path, v.message) for v in found) == [
        ("schema-cel", ("spec",), "replicas should be greater than or equal to minReplicas."),
        ("schema-cel", ("spec", "limits", "a"), "not a quantity: x"),
        ("schema-cel", ("spec", "ports", 1), "not a port"),
        ("schema-cel", ("spec", "replicas"), "replicas must be at most 5"),
    ]
    assert schemas().validate(widget(replicas=3, minReplicas=1, maxReplicas=5, ports=[443])) == []


def test_an_absent_value_is_not_validated_and_errors_are_reported() -> None:
    assert (
        schemas().validate({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
        == []
    )
    [error] = schemas().validate(widget(replicas=3, maxReplicas=5))  # no minReplicas
    assert "rule 'self.minReplicas <= self.replicas' failed" in error.message


def test_a_rule_that_does_not_compile_is_a_config_error() -> None:
    broken = CRD.replace('rule: "self > 0 && self < 65536"', 'rule: "self >"')
    with pytest.raises(
        ConfigError,
        match=r"Widget v1: x-kubernetes-validations\[0\] at spec.ports\[\*\]: rule "
        r"\(line 1, column 7\): Syntax error",
    ):
        schemas(broken)


DEFAULTED = widget_crd(
    """\
spec:
  type: object
  x-kubernetes-validations:
  - rule: "!has(self.exposure) || self.exposure != 'public' || self.tls"
    message: "public widgets need TLS"
  - rule: "self.replicas <= self.maxReplicas"
  properties:
    exposure: {type: string, default: public}
    tls: {type: boolean, default: false}
    replicas: {type: integer}
    maxReplicas: {type: integer, default: 20}
    ports:
      type: array
      items:
        type: object
        properties:
          port: {type: integer, maximum: 100, default: 8080}
status:
  type: object
  properties:
    phase: {type: string, default: New}
  x-kubernetes-validations:
  - rule: "false"
"""
)


def test_defaults_are_applied_before_rules_and_schema_as_the_api_server_does() -> None:
    found = schemas(DEFAULTED).validate(widget(replicas=3, maxReplicas=5, tls=False))
    assert [(v.rule, v.message) for v in found] == [("schema-cel", "public widgets need TLS")]
    assert schemas(DEFAULTED).validate(widget(replicas=3, tls=True)) == []  # maxReplicas defaults to 20
    [too_many] = schemas(DEFAULTED).validate(widget(replicas=30, tls=True))
    assert too_many.message == "failed rule: self.replicas <= self.maxReplicas"
    [port] = schemas(DEFAULTED).validate(widget(replicas=1, tls=True, ports=[{}]))  # defaulted in items
    assert (port.rule, port.path) == ("schema-invalid", ("spec", "ports", 0, "port"))


def test_defaulting_creates_no_absent_object_and_leaves_the_input_alone() -> None:
    obj = widget(replicas=3, tls=True)
    assert schemas(DEFAULTED).validate(obj) == []  # no status: its default and rule do not apply
    assert obj["spec"] == {"replicas": 3, "tls": True}


def test_transition_rules_are_skipped_on_create_and_run_on_update() -> None:
    rules = crd_cel.compile_rules(yaml.safe_load(CRD)["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    assert [(r.program.source, r.transition) for r in rules if r.where == "spec"] == [
        ("self.minReplicas <= self.replicas", False),
        ("self.replicas <= self.maxReplicas", False),
        ("self.replicas == oldSelf.replicas", True),
    ]
    new = widget(replicas=3, minReplicas=1, maxReplicas=5)
    assert crd_cel.evaluate(rules, new) == []  # a create
    assert crd_cel.evaluate(rules, new, old=widget(replicas=3, minReplicas=1, maxReplicas=5)) == []
    changed = widget(replicas=2, minReplicas=1, maxReplicas=5)
    assert crd_cel.evaluate(rules, new, old=changed) == [(("spec",), "a transition rule: updates only")]
    # No old spec: nothing to compare with, so the transition rule is not judged.
    assert crd_cel.evaluate(rules, new, old={"apiVersion": "example.com/v1", "kind": "Widget"}) == []


def test_transition_rules_find_old_items_of_map_lists_by_their_keys() -> None:
    schema = {
        "type": "object",
        "properties": {
            "ports": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                    "x-kubernetes-validations": [
                        {"rule": "self.port == oldSelf.port", "message": "immutable"}
                    ],
                },
            },
            "tags": {
                "type": "array",
                "maxItems": 10,  # else `self == oldSelf` on strings is over the cost limit
                "items": {
                    "type": "string",
                    "maxLength": 10,
                    "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "atomic"}],
                },
            },
            "optional": {
                "type": "string",
                "x-kubernetes-validations": [{"rule": "self == oldSelf", "optionalOldSelf": True}],
            },
        },
    }
    rules = crd_cel.compile_rules(schema)
    assert [r.where for r in rules] == ["ports[*]", "tags[*]", "optional"]
    supported = [r for r in rules if not r.unsupported]
    old = {"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}], "tags": ["x"], "optional": "o"}
    new = {"ports": [{"name": "b", "port": 3}, {"name": "a", "port": 1}, {"name": "c", "port": 9}]}
    new |= {"tags": ["y"], "optional": "p"}
    # Item "b" moved and changed: judged against old "b"; "c" is new; items of a list that is
    # not a map list have no old value.
    assert crd_cel.evaluate(supported, new, old=old) == [(("ports", 0), "immutable")]
    # optionalOldSelf: the API server runs it on creates and updates alike, with oldSelf optional,
    # which trustgate cannot bind: reported as not evaluated (a failure), never passed.
    for before in (old, None):
        [(_, message)] = [f for f in crd_cel.evaluate(rules, new, old=before) if f[0] == ("optional",)]
        assert "was not evaluated" in message and "optionalOldSelf" in message


def test_check_with_crd_reports_rule_findings(write: Write) -> None:
    crd = write("crd.yaml", CRD)
    manifest = write("w.yaml", yaml.safe_dump(widget(replicas=9, minReplicas=1, maxReplicas=5)))
    code, [finding] = check_with_crd(crd, manifest)
    assert code == 1
    assert (finding["rule"], finding["message"], finding["path"]) == (
        "schema-cel",
        "replicas must be at most 5",
        "spec.replicas",
    )


def spec_schema(properties: dict[str, Any], rules: list[dict[str, Any]]) -> dict[str, Any]:
    """An `openAPIV3Schema` whose `spec` has `properties` and the validation `rules`."""
    return {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": properties, "x-kubernetes-validations": rules}
        },
    }


def test_values_have_the_types_the_api_server_gives_them_from_the_schema() -> None:
    # A `number` is a double even when the JSON holds 1; a `format: byte` string is bytes.
    schema = spec_schema(
        {
            "ratio": {"type": "number"},
            "count": {"type": "integer"},
            "weights": {"type": "array", "items": {"type": "number"}},
            "data": {"type": "string", "format": "byte"},
            "limits": {"type": "object", "additionalProperties": {"type": "number"}},
        },
        [
            {"rule": "self.ratio + 0.5 == 1.5", "message": "ratio"},
            {"rule": "self.ratio / 2.0 == 0.5", "message": "division"},
            {"rule": "self.count / 2 == 0", "message": "integer division"},
            {"rule": "self.weights.all(w, w + 0.5 > 1.0)", "message": "weights"},
            {"rule": "size(self.data) == 3 && self.data == b'abc'", "message": "bytes"},
            {"rule": "self.limits.all(k, self.limits[k] * 1.5 == 3.0)", "message": "limits"},
        ],
    )
    rules = crd_cel.compile_rules(schema)
    spec = {"ratio": 1, "count": 1, "weights": [1, 2], "data": "YWJj", "limits": {"a": 2}}
    assert crd_cel.evaluate(rules, {"spec": spec}) == []
    spec = {"ratio": 2, "count": 3, "weights": [0], "data": "YWJjZA==", "limits": {"a": 1}}
    assert sorted(m for _, m in crd_cel.evaluate(rules, {"spec": spec})) == [
        "bytes",
        "division",
        "integer division",
        "limits",
        "ratio",
        "weights",
    ]


def test_date_time_date_and_duration_fields_are_timestamps_and_durations() -> None:
    # k8s.io/apiserver/pkg/cel/common/values.go (UnstructuredToVal): a `date-time` string is a
    # timestamp (strfmt.ParseDateTime), a `date` one a timestamp at midnight UTC, a `duration` one a
    # duration (strfmt.ParseDuration, which tries Go's time.ParseDuration first); the CRD
    # documentation's example compares them with `timestamp(...)` and `duration(...)`.
    schema = spec_schema(
        {
            "start": {"type": "string", "format": "date-time", "maxLength": 40},
            "end": {"type": "string", "format": "date-time", "maxLength": 40},
            "day": {"type": "string", "format": "date"},
            "ttl": {"type": "string", "format": "duration", "maxLength": 20},
            "windows": {"type": "array", "maxItems": 4,
                        "items": {"type": "string", "format": "duration", "maxLength": 20}},
        },
        [
            {"rule": "self.start < self.end", "message": "start before end"},
            {"rule": "self.end - self.start <= duration('24h')", "message": "at most a day"},
            {"rule": "self.start >= timestamp('2026-01-01T00:00:00Z')", "message": "2026 on"},
            {"rule": "self.day == timestamp('2026-03-01T00:00:00Z')", "message": "the day"},
            {"rule": "self.ttl >= duration('90s') && self.ttl < duration('2h')", "message": "ttl"},
            {"rule": "self.windows.all(w, w > duration('0s'))", "message": "windows"},
        ],
    )  # fmt: skip
    rules = crd_cel.compile_rules(schema)
    spec = {
        "start": "2026-03-01T10:00:00.5+02:00",  # 08:00:00.5Z
        "end": "2026-03-02T08:00:00.5Z",
        "day": "2026-03-01",
        "ttl": "1h30m",
        "windows": ["1.5s", "300ms"],
    }
    assert crd_cel.evaluate(rules, {"spec": spec}) == []
    late = {**spec, "end": "2026-03-02T08:00:01Z", "ttl": "-1m", "windows": ["0"], "day": "2026-03-02"}
    assert sorted(m for _, m in crd_cel.evaluate(rules, {"spec": late})) == [
        "at most a day",
        "the day",
        "ttl",
        "windows",
    ]


def test_a_time_string_trustgate_does_not_parse_fails_the_rule_never_passes_it() -> None:
    # Layouts only some strfmt versions take (no zone, `3 days`) stay strings here: a comparison
    # with a timestamp or a duration is then an evaluation error, reported as a failed rule.
    schema = {
        "type": "object",
        "properties": {
            "at": {"type": "string", "format": "date-time", "maxLength": 40},
            "ttl": {"type": "string", "format": "duration", "maxLength": 20},
        },
        "x-kubernetes-validations": [
            {"rule": "self.at > timestamp('2000-01-01T00:00:00Z')"},
            {"rule": "self.ttl > duration('1s')"},
        ],
    }
    rules = crd_cel.compile_rules(schema)
    found = crd_cel.evaluate(rules, {"at": "2026-03-01 10:00:00", "ttl": "3 days"})
    assert len(found) == 2 and all("failed" in m for _, m in found)


def test_a_rule_naming_old_self_only_in_a_comment_or_string_runs_on_create() -> None:
    """apiextensions sets UsesOldSelf from the checked rule's ReferenceMap, so such a rule is no
    transition rule: the API server runs it on a create."""
    rules = crd_cel.compile_rules(
        spec_schema(
            {"replicas": {"type": "integer"}},
            [
                {"rule": "self.replicas < 5 // unlike oldSelf", "message": "comment"},
                {"rule": "self.replicas < 5 && 'oldSelf' != ''", "message": "string"},
                {"rule": "self.replicas == oldSelf.replicas", "message": "transition"},
            ],
        )
    )
    assert [r.transition for r in rules] == [False, False, True]
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"replicas": 9}}
    assert crd_cel.evaluate(rules, obj) == [(("spec",), "comment"), (("spec",), "string")]


# -- property names, as the API server presents them (k8s.io/apiserver/pkg/cel/escaping.go) --------


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("foo", "foo"),
        ("foo_bar", "foo_bar"),
        ("foo-bar", "foo__dash__bar"),
        ("a.b", "a__dot__b"),
        ("a/b", "a__slash__b"),
        ("a__b", "a__underscores__b"),
        ("_a.b-c/d__e", "_a__dot__b__dash__c__slash__d__underscores__e"),
        ("namespace", "__namespace__"),
        ("if", "__if__"),
        ("true", "__true__"),
        ("1a", None),  # a leading digit
        ("a b", None),  # a character outside [a-zA-Z0-9_./-]
        ("caf\u00e9", None),
        ("", None),
    ],
)
def test_property_names_are_escaped_as_the_api_server_escapes_them(name: str, escaped: str | None) -> None:
    assert crd_cel_view.escape(name) == escaped
    if escaped is not None:
        assert crd_cel_view.unescape(escaped) == name


def test_unescape_refuses_what_escaping_go_refuses() -> None:
    assert crd_cel_view.unescape("a__x__b") is None  # not an escape
    assert crd_cel_view.unescape("a__namespace__") is None  # a keyword escapes only a whole name
    assert crd_cel_view.unescape("foo-bar") == "foo-bar"  # the raw name: the API server finds it too


def test_rules_see_escaped_property_names_and_a_false_allow_is_gone() -> None:
    # The API server exposes `foo-bar` as `self.foo__dash__bar`; trustgate passed these objects
    # (`has()` was false on the raw key), where the API server denies them.
    props = {name: {"type": "string"} for name in ("foo-bar", "a.b", "a/b", "a__b", "namespace", "if", "1x")}
    rules = [
        {"rule": f"!has(self.{field}) || self.{field} == 'ok'", "message": name}
        for name, field in [
            ("foo-bar", "foo__dash__bar"),
            ("a.b", "a__dot__b"),
            ("a/b", "a__slash__b"),
            ("a__b", "a__underscores__b"),
            ("namespace", "__namespace__"),
            ("if", "__if__"),
        ]
    ]
    rules.append({"rule": "self['1x'] == 'ok'", "message": "1x"})  # not escapable: listed as it is
    rules.append({"rule": "self.all(k, k != 'foo-bar')", "message": "keys are escaped"})
    compiled = crd_cel.compile_rules(spec_schema(props, rules))
    bad = {"spec": dict.fromkeys(props, "bad")}
    assert sorted(m for _, m in crd_cel.evaluate(compiled, bad)) == sorted(props)
    good = {"spec": dict.fromkeys(props, "ok")}
    assert crd_cel.evaluate(compiled, good) == []


def test_map_keys_are_not_escaped() -> None:
    schema = spec_schema(
        {"labels": {"type": "object", "additionalProperties": {"type": "string"}}},
        [{"rule": "!('app-name' in self.labels) || self.labels['app-name'] == 'ok'", "message": "label"}],
    )
    compiled = crd_cel.compile_rules(schema)
    assert crd_cel.evaluate(compiled, {"spec": {"labels": {"app-name": "bad"}}}) == [(("spec",), "label")]


@pytest.mark.parametrize(
    "rule",
    [
        "!has(self.namespace) || self.namespace == 'ok'",  # the raw spelling of a reserved word
        "!('foo-bar' in self) || self['foo-bar'] == 'ok'",  # the raw name, as a key
        "self[?'foo-bar'].orValue('ok') == 'ok'",
        "[string(self.__namespace__)].all(k, !(k in self) || self[k] == 'ok')",  # a computed key
    ],
)
def test_other_spellings_of_an_escaped_name_are_not_evaluated(rule: str) -> None:
    # The API server's Find unescapes the name it is given, so the raw name finds the property
    # too; trustgate presents one spelling, so such a rule is reported, never passed.
    props = {"foo-bar": {"type": "string"}, "namespace": {"type": "string"}}
    [compiled] = crd_cel.compile_rules(spec_schema(props, [{"rule": rule}]))
    [(path, message)] = crd_cel.evaluate([compiled], {"spec": {"foo-bar": "bad", "namespace": "bad"}})
    assert path == ("spec",) and "was not evaluated" in message and "escaped name" in message


def test_keys_from_iterating_an_object_are_its_escaped_names() -> None:
    props = {"foo-bar": {"type": "string"}, "namespace": {"type": "string"}}
    rule = "self.all(k, self[k] == 'ok' && k in self)"
    [compiled] = crd_cel.compile_rules(spec_schema(props, [{"rule": rule, "message": "m"}]))
    assert compiled.unsupported == ""
    assert crd_cel.evaluate([compiled], {"spec": {"foo-bar": "ok", "namespace": "bad"}}) == [(("spec",), "m")]
    assert crd_cel.evaluate([compiled], {"spec": {"foo-bar": "ok", "namespace": "ok"}}) == []


KEYED = {
    "obj": {"type": "object", "properties": {"foo-bar": {"type": "string", "maxLength": 5}}},
    "names": {"type": "array", "maxItems": 5, "items": {"type": "string", "maxLength": 20}},
    "labels": {
        "type": "object",
        "maxProperties": 5,
        "additionalProperties": {"type": "string", "maxLength": 5},
    },
}


@pytest.mark.parametrize(
    "rule",
    [
        # A variable of the name of one that iterated the object's keys, elsewhere in the rule: raw
        # names from a list, which the API server's Find unescapes ('foo-bar' finds the property).
        "self.obj.all(k, true) && self.names.all(k, !(k in self.obj))",
        "dyn(self.obj).all(k, true) && self.names.all(k, !(k in dyn(self.obj)))",
        "self.obj.all(k, self.names.all(k, !(k in self.obj)))",  # an inner loop rebinds it
        "self.obj.all(k, cel.bind(k, self.names[0], !(k in self.obj)))",
        "self.labels.all(k, self.obj[?k].orValue('') == '')",  # a map's keys are not escaped names
    ],
)
def test_a_key_variable_is_trusted_only_in_its_own_loop_over_an_object(rule: str) -> None:
    [compiled] = crd_cel.compile_rules(spec_schema(KEYED, [{"rule": rule, "message": "m"}]))
    spec = {"obj": {"foo-bar": "x"}, "names": ["foo-bar"], "labels": {"foo-bar": "x"}}
    [(path, message)] = crd_cel.evaluate([compiled], {"spec": spec})
    assert path == ("spec",) and "was not evaluated" in message and "escape" in message


def test_a_key_variable_reads_the_object_it_iterates() -> None:
    rule = "self.obj.all(k, self.obj[k] != '' && self.names.all(n, n != k))"
    [compiled] = crd_cel.compile_rules(spec_schema(KEYED, [{"rule": rule, "message": "m"}]))
    assert compiled.unsupported == ""
    assert crd_cel.evaluate([compiled], {"spec": {"obj": {"foo-bar": "x"}, "names": ["foo__dash__bar"]}}) == [
        (("spec",), "m")
    ]
    assert crd_cel.evaluate([compiled], {"spec": {"obj": {"foo-bar": "x"}, "names": ["foo-bar"]}}) == []


# -- null fields (values.go's unstructuredMap.Find; apiextensions' PruneNonNullableNullsWithoutDefaults) --

NULLS = widget_crd(
    """\
spec:
  type: object
  x-kubernetes-validations:
  - {rule: "has(self.img)", message: "has img"}
  - {rule: "self.?img.orValue('') != ''", message: "optional img"}
  - {rule: "'img' in self", message: "img in self"}
  - {rule: "!has(self.plain) || self.plain.startsWith('r/')", message: "plain"}
  - {rule: "!has(self.labels) || self.labels.all(k, self.labels[k] == null || self.labels[k] != '')",
     message: "labels"}
  properties:
    img: {type: string, nullable: true}
    plain: {type: string}
    other: {type: string}
    labels: {type: object, additionalProperties: {type: string, nullable: true}}
"""
)


def test_a_null_field_is_absent_to_rules_and_a_non_nullable_one_is_pruned() -> None:
    # A nullable field set to null: absent to has(), `?.` and `in`, as the API server's Find
    # says (trustgate counted it present: a false allow). A non-nullable null is pruned on decode
    # (trustgate reported it as a schema violation and failed the rule on it: a false deny).
    found = schemas(NULLS).validate(widget(img=None, plain=None, other="x", labels={"a": None}))
    assert sorted((v.rule, v.message) for v in found) == [
        ("schema-cel", "has img"),
        ("schema-cel", "img in self"),
        ("schema-cel", "optional img"),
    ]
    assert schemas(NULLS).validate(widget(img="r/x", plain="r/y", labels={"a": None})) == []


def test_reading_a_null_field_is_an_error_as_in_the_api_server() -> None:
    schema = spec_schema(
        {"img": {"type": "string", "nullable": True}}, [{"rule": "self.img == null", "message": "null"}]
    )
    [(path, message)] = crd_cel.evaluate(crd_cel.compile_rules(schema), {"spec": {"img": None}})
    assert path == ("spec",) and "failed" in message and "img" in message


@pytest.mark.parametrize(
    ("rule", "passes_without_null"),
    [
        ("size(self) == 2", True),  # the API server counts the null field
        ("self.all(k, k != 'img')", False),  # and lists it
        ("self == oldSelf", True),  # and its equality of objects is false where a field is null
        ("[self].exists(s, s == {'other': 'x'})", False),
    ],
)
def test_rules_a_null_field_would_change_are_not_evaluated_where_one_is_null(
    rule: str, passes_without_null: bool
) -> None:
    schema = spec_schema(
        {"img": {"type": "string", "nullable": True}, "other": {"type": "string"}},
        [{"rule": rule, "message": "m"}],
    )
    compiled = crd_cel.compile_rules(schema)
    obj = {"spec": {"img": None, "other": "x"}}
    [(path, message)] = crd_cel.evaluate(compiled, obj, old=obj)
    assert path == ("spec",) and "was not evaluated" in message and "null" in message
    # Without a null the rule runs as usual.
    obj = {"spec": {"img": "i", "other": "x"}}
    assert crd_cel.evaluate(compiled, obj, old=obj) == ([] if passes_without_null else [(("spec",), "m")])


def test_checks_with_crd_prune_non_nullable_nulls(write: Write) -> None:
    crd = write("crd.yaml", NULLS)
    manifest = write("w.yaml", yaml.safe_dump(widget(img="r/i", plain=None, other="x")))
    assert check_with_crd(crd, manifest) == (0, [])


# -- x-kubernetes-list-type set and map (values.go's unstructuredSetList, unstructuredMapList) -----

LISTED = {
    "tags": {"type": "array", "x-kubernetes-list-type": "set", "maxItems": 10, "items": {"type": "string"}},
    "ns": {"type": "array", "x-kubernetes-list-type": "set", "maxItems": 10, "items": {"type": "integer"}},
    "ports": {
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        "maxItems": 10,
        "items": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string", "maxLength": 10}, "port": {"type": "integer"}},
        },
    },
    "bad": {
        "type": "array",
        "maxItems": 10,
        "items": {"type": "array", "x-kubernetes-list-type": "set", "maxItems": 10,
                  "items": {"type": "string"}},
    },
    "o": {"type": "object", "properties": {"t": {"type": "array", "x-kubernetes-list-type": "set",
                                                "maxItems": 10, "items": {"type": "string"}}}},
    "plain": {"type": "array", "maxItems": 10, "items": {"type": "string"}},
}  # fmt: skip
LISTED_SPEC = {
    "tags": ["b", "a"],
    "ns": [2, 1],
    "ports": [{"name": "b", "port": 2}, {"name": "a", "port": 22}],
    "bad": [["a", "b"]],
    "o": {"t": ["b", "a"]},
    "plain": ["b", "a"],
}


@pytest.mark.parametrize(
    "rule",
    [
        # Answered here by position, where the API server's answer does not depend on the order: most
        # passed LISTED_SPEC, which the API server denies.
        "!(self.tags == ['a', 'b'])",
        "self.ns != [1, 2]",
        "self.ports != [{'name': 'a', 'port': 22}, {'name': 'b', 'port': 2}]",
        "!(self.tags in self.bad)",  # `in` a list of sets compares sets
        "!(['a', 'b'] in [self.tags])",
        "self.o != {'t': ['a', 'b']}",  # a set held in an object
        "size(self.tags + ['b']) > size(self.tags)",  # `+` on a set is a union
        "(self.ports + [{'name': 'a', 'port': 80}]).all(p, p.port != 22)",  # on a map list a merge by key
        "self.bad.indexOf(['a', 'b']) == -1",
        "[self.tags].exists(t, t == ['a', 'b']) == false",
        "self.plain != self.tags",
        # cel-go's `+` hands back the other operand itself when one is an empty list the expression
        # built (baseList.Add): each of these compares the set or map list itself.
        "!(([] + self.tags) == ['a', 'b'])",
        "!(([].filter(x, false) + self.tags) == ['a', 'b'])",
        "!((self.plain.filter(p, false) + self.tags) == ['a', 'b'])",
        "cel.bind(e, [], (e + self.ports) != [{'name': 'a', 'port': 22}, {'name': 'b', 'port': 2}])",
        "self.bad.all(s, !(([] + s) == ['b', 'a']))",
        "size(([] + self.bad.slice(0, 1)[0]) + ['a']) == 3",  # a union; slice() is not followed
        "!([[] + self.tags].exists(t, t == ['a', 'b']))",
    ],
)
def test_rules_comparing_or_adding_set_and_map_lists_are_not_evaluated(rule: str) -> None:
    [compiled] = crd_cel.compile_rules(spec_schema(LISTED, [{"rule": rule, "message": "m"}]))
    [(path, message)] = crd_cel.evaluate([compiled], {"spec": LISTED_SPEC})
    assert path == ("spec",) and "was not evaluated" in message and "x-kubernetes-list-type" in message


@pytest.mark.parametrize(
    "rule",
    [
        # Reading a set or a map list otherwise is as the API server does (its order is kept).
        "size(self.tags) == 2 && self.tags[0] == 'b' && 'a' in self.tags && 2 in self.ns",
        "self.ports.all(p, p.port > 0) && self.ports.exists(p, p.name == 'a')",
        "self.ports.map(p, p.name) == ['b', 'a'] && self.tags.filter(t, t != 'b') == ['a']",
        "sets.contains(self.tags, ['a']) && self.o.t.exists(t, t == 'a')",
        "self.plain == ['b', 'a'] && ['x'] + self.plain == ['x', 'b', 'a']",
        "self.bad.all(s, 'a' in s)",
        "'a' in ([] + self.tags) && size([] + self.tags) == 2 && ([] + self.tags)[0] == 'b'",
    ],
)
def test_other_reads_of_set_and_map_lists_are_evaluated(rule: str) -> None:
    [compiled] = crd_cel.compile_rules(spec_schema(LISTED, [{"rule": rule, "message": "m"}]))
    assert compiled.unsupported == ""
    assert crd_cel.evaluate([compiled], {"spec": LISTED_SPEC}) == []


def test_comparing_values_of_one_schema_holding_sets_and_map_lists_is_as_the_api_server_does() -> None:
    # `self == oldSelf` on a reordered set (or map list) is true in the API server; ordered, it was
    # false here. Values of one schema are compared with the items of their sets and map lists in
    # one order, which is exactly the API server's equality, where the rule reads that order nowhere.
    immutable = [{"rule": "self == oldSelf", "message": "fixed"}]
    schema = spec_schema(
        {
            "tags": {**LISTED["tags"], "x-kubernetes-validations": immutable},
            "ports": {**LISTED["ports"], "x-kubernetes-validations": immutable},
            "o": {**LISTED["o"], "x-kubernetes-validations": immutable},
            "defaults": LISTED["ports"],
        },
        [
            {"rule": "self.ports == self.defaults", "message": "ports are the defaults"},
            {"rule": "self.tags != oldSelf.tags || size(self.tags) == 2", "message": "two"},
            # Order-blind reads alongside: membership, size, all, exists, exists_one.
            {
                "rule": "self.tags == oldSelf.tags && 'a' in self.tags && self.tags.all(t, t != 'z') && "
                "self.tags.exists(t, t == 'a') && self.tags.exists_one(t, t == 'b') && size(self.ports) == 2",
                "message": "order-blind",
            },
        ],
    )
    rules = crd_cel.compile_rules(schema)
    assert all(not r.unsupported for r in rules)
    ports = [{"name": "b", "port": 2}, {"name": "a", "port": 22}]
    old = {"spec": {"tags": ["a", "b"], "ports": ports, "o": {"t": ["a", "b"]}, "defaults": ports}}
    new = {
        "spec": {
            "tags": ["b", "a"],
            "ports": ports[::-1],
            "o": {"t": ["b", "a"]},
            "defaults": [{"name": "a", "port": 22}, {"name": "b", "port": 2}],
        }
    }
    assert crd_cel.evaluate(rules, new, old=old) == []
    changed = {
        "spec": {
            "tags": ["b", "c"],
            "ports": [{"name": "a", "port": 23}, {"name": "b", "port": 2}],
            "o": {"t": ["b"]},
            "defaults": ports,
        }
    }
    assert sorted(crd_cel.evaluate(rules, changed, old=old)) == [
        (("spec",), "order-blind"),
        (("spec",), "ports are the defaults"),
        (("spec", "o"), "fixed"),
        (("spec", "ports"), "fixed"),
        (("spec", "tags"), "fixed"),
    ]


@pytest.mark.parametrize(
    "rule",
    [
        "self.tags == oldSelf.tags && self.tags[0] == 'a'",  # the order is also read
        "self.tags == oldSelf.tags && self.tags.map(t, t) == ['a', 'b']",
        "self.tags == oldSelf.tags && ['x'] + self.tags == ['x', 'a', 'b']",
        "self.tags == oldSelf.tags && self.tags.join(',') == 'a,b'",
        "self.nums == oldSelf.nums",  # a number set tells 1 from 1.0; CEL's doubles do not
        "self.tags == self.plain",  # not one schema: the API server compares a set with a list
    ],
)
def test_comparing_sets_is_not_evaluated_where_one_order_would_not_be_exact(rule: str) -> None:
    props = {**LISTED, "nums": {"type": "array", "x-kubernetes-list-type": "set", "maxItems": 10,
                                "items": {"type": "number"}}}  # fmt: skip
    [compiled] = crd_cel.compile_rules(spec_schema(props, [{"rule": rule}]))
    assert "x-kubernetes-list-type" in compiled.unsupported


def test_a_transition_rule_on_a_reordered_set_passes_and_a_create_does_not_judge_it() -> None:
    fixed = [{"rule": "self == oldSelf", "message": "fixed"}]
    rules = crd_cel.compile_rules(
        spec_schema({"tags": {**LISTED["tags"], "x-kubernetes-validations": fixed}}, [])
    )
    before = {"spec": {"tags": ["a", "b"]}}
    assert crd_cel.evaluate(rules, {"spec": {"tags": ["b", "a"]}}, old=before) == []
    assert crd_cel.evaluate(rules, {"spec": {"tags": ["b", "c"]}}, old=before) == [
        (("spec", "tags"), "fixed")
    ]
    assert crd_cel.evaluate(rules, {"spec": {"tags": ["b", "a"]}}) == []  # a create: not judged


LIST_TYPES = widget_crd(
    """\
spec:
  type: object
  properties:
    tags: {type: array, x-kubernetes-list-type: set, items: {type: string}}
    nums: {type: array, x-kubernetes-list-type: set, items: {type: number}}
    ports:
      type: array
      x-kubernetes-list-type: map
      x-kubernetes-list-map-keys: [name, protocol]
      items:
        type: object
        properties: {name: {type: string}, protocol: {type: string}, port: {type: integer}}
    groups:
      type: object
      additionalProperties: {type: array, x-kubernetes-list-type: set, items: {type: string}}
"""
)


def test_duplicates_in_set_and_map_lists_are_schema_violations() -> None:
    # listtype.ValidateListSetsAndMaps: the API server refuses these; trustgate passed them.
    found = schemas(LIST_TYPES).validate(
        widget(
            tags=["a", "b", "a", "a"],
            nums=[1, 1.0],  # not the same JSON value
            ports=[{"name": "a", "protocol": "TCP"}, {"name": "a", "protocol": "UDP", "port": 1},
                   {"name": "a", "protocol": "TCP", "port": 2}],
            groups={"g": ["x", "x"]},
        )
    )  # fmt: skip
    assert sorted((v.rule, v.path, v.message) for v in found) == [
        ("schema-invalid", ("spec", "groups", "g", 1), 'Duplicate value: "x"'),
        ("schema-invalid", ("spec", "ports", 2), 'Duplicate value: {"name":"a","protocol":"TCP"}'),
        ("schema-invalid", ("spec", "tags", 2), 'Duplicate value: "a"'),
    ]
    assert schemas(LIST_TYPES).validate(widget(tags=["a", "b"], ports=[{"name": "a"}, {"name": "b"}])) == []


def test_rules_do_not_run_on_a_null_value() -> None:
    # apiextensions' validateExpressions: "We only validate non-null values"; a null old value is
    # none to compare with. trustgate ran the rule on null and failed it.
    schema = spec_schema(
        {
            "img": {"type": "string", "nullable": True,
                    "x-kubernetes-validations": [{"rule": "self.startsWith('r/')", "message": "registry"}]},
            "tags": {"type": "array", "maxItems": 4,
                     "items": {"type": "string", "nullable": True, "maxLength": 9,
                               "x-kubernetes-validations": [{"rule": "self != ''", "message": "empty"}]}},
            "name": {"type": "string", "nullable": True,
                     "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "fixed"}]},
        },
        [],
    )  # fmt: skip
    rules = crd_cel.compile_rules(schema)
    assert crd_cel.evaluate(rules, {"spec": {"img": None, "tags": [None, "a"], "name": "n"}}) == []
    assert crd_cel.evaluate(rules, {"spec": {"name": "n"}}, old={"spec": {"name": None}}) == []
    assert crd_cel.evaluate(rules, {"spec": {"img": "x", "tags": [""]}}) == [
        (("spec", "img"), "registry"),
        (("spec", "tags", 0), "empty"),
    ]


def test_rules_at_the_root_see_only_the_name_and_generate_name_of_the_metadata() -> None:
    # The CRD validator types the root with WithTypeAndObjectMeta: metadata shows name and
    # generateName only, so has(self.metadata.labels) is false there (trustgate said true).
    schema = {
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}},
        "x-kubernetes-validations": [
            {"rule": "has(self.metadata.labels)", "message": "labels"},
            {"rule": "self.metadata.name == 'w' && self.kind == 'Widget'", "message": "name"},
            {"rule": "size(self.metadata) == 1", "message": "size"},  # counts what it does not show
        ],
    }
    rules = crd_cel.compile_rules(schema)
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"a": "b"}}}
    found = crd_cel.evaluate(rules, obj)
    assert [m for _, m in found][:1] == ["labels"]
    assert len(found) == 2 and "was not evaluated" in found[1][1] and "size()" in found[1][1]


def test_fields_an_object_preserves_but_does_not_declare_are_not_shown() -> None:
    open_object = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    schema = spec_schema(
        {"o": {**open_object, "properties": {"a": {"type": "string"}}}},
        [
            {"rule": "!has(self.o.extra)", "message": "extra"},
            {"rule": "self.o.all(k, k == 'a')", "message": "keys"},
            {"rule": "self.o.exists_one(k, k == 'a') && self.o.map(k, k) == ['a']", "message": "map"},
        ],
    )
    rules = crd_cel.compile_rules(schema)
    # `Find` does not find a field the schema does not declare: has() is false.
    # Iterating the object is another matter: values.go's unstructuredMap.Iterator yields a null key
    # for each such field (`null == 'a'` is false: the API server denies), and trustgate leaves them
    # out, so the rules iterating it are not evaluated for a value holding one (they passed).
    found = crd_cel.evaluate(rules, {"spec": {"o": {"a": "x", "extra": 1}}})
    assert [p for p, _ in found] == [("spec",), ("spec",)]
    assert all("was not evaluated" in m and "iterates an object" in m for _, m in found)
    assert crd_cel.evaluate(rules, {"spec": {"o": {"a": "x"}}}) == []


DEEP = widget_crd(
    """\
spec:
  type: object
  x-kubernetes-validations:
  - {rule: "self.name == 'd'", message: "defaulted"}
  properties:
    name: {type: string, default: d}
    values: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""
)


@pytest.mark.parametrize("null", [False, True])
def test_a_preserved_value_nested_deeper_than_the_stack_is_decoded_and_judged(null: bool) -> None:
    # A value kept by x-kubernetes-preserve-unknown-fields nests as deep as the manifest allows; the
    # decoding walks (finding a null, copying the object to default it) are iterative now: they
    # raised RecursionError out of validate, a crash of `check --crd`.
    deep: Any = {"leaf": None} if null else {"leaf": 1}
    for _ in range(900):
        deep = {"a": deep}
    assert schemas(DEEP).validate(widget(values=deep)) == []
    [found] = schemas(DEEP).validate(widget(name="x", values=deep))
    assert (found.rule, found.path, found.message) == ("schema-cel", ("spec",), "defaulted")


def test_running_out_of_stack_while_validating_is_a_finding_never_a_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trustgate.policy import schema

    def too_deep(*args: Any, **kwargs: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(schema, "list_type_violations", too_deep)
    [found] = schemas(DEEP).validate(widget(values={"a": 1}))
    assert found.rule == "schema-invalid" and "nests too deeply" in found.message


def test_an_object_preserving_unknown_fields_without_properties_shows_none() -> None:
    # values.go: such an object is an unstructuredMap none of whose fields has a schema, so Find finds
    # none of them (has() is false) while size() counts them and iteration yields a null key for each.
    # trustgate showed them all: has() was true (a rule requiring one passed what the API server denies).
    schema = spec_schema(
        {"values": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
        [
            {"rule": "has(dyn(self.values).evil)", "message": "shown"},
            {"rule": "size(dyn(self.values)) == 0", "message": "size"},
        ],
    )
    rules = crd_cel.compile_rules(schema)
    found = crd_cel.evaluate(rules, {"spec": {"values": {"evil": 1}}})
    assert found[0] == (("spec",), "shown")
    assert len(found) == 2 and "was not evaluated" in found[1][1] and "size()" in found[1][1]
    assert crd_cel.evaluate(rules, {"spec": {"values": {}}}) == [(("spec",), "shown")]


def _nested_crd(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "string", "x-kubernetes-validations": [{"rule": "self != 'bad'"}]}
    for _ in range(depth):
        node = {"type": "object", "properties": {"a": node}}
    crd = yaml.safe_load(widget_crd("spec: {type: object}\n"))
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = node
    return crd


def test_a_crd_schema_nested_too_deep_is_an_error_or_a_finding_never_a_crash() -> None:
    # A schema deeper than jsonschema-rs compiles (its ValueError escaped validate), or than the
    # walks of a schema follow (RecursionError escaped add_crd): a config error naming the CRD, or
    # a finding for each object, never a traceback.
    with pytest.raises(ConfigError, match="nests too deeply"):
        SchemaSet(version="1.35", strict=True, crds=[_nested_crd(1200)])
    deep = SchemaSet(version="1.35", strict=True, crds=[_nested_crd(200)])
    [found] = deep.validate(widget(a={"a": "x"}))
    assert found.rule == "schema-invalid" and "cannot be validated" in found.message


def test_a_root_rule_sees_the_name_the_api_server_generates() -> None:
    # rest.BeforeCreate names an object with generateName and no name before strategy.Validate
    # runs the CRD's rules: `self.metadata.name` is the generated name, never absent.
    schema = {
        "type": "object",
        "x-kubernetes-validations": [
            {
                "rule": "!has(self.metadata.name) || size(self.metadata.name) <= 20",
                "message": "name too long",
            },
            {"rule": "self.metadata.name.startsWith('a-')", "message": "prefix"},
            {"rule": "!self.metadata.name.matches('[0-9]$')", "message": "suffix"},
        ],
    }
    rules = crd_cel.compile_rules(schema)
    long = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"generateName": "a-very-long-generated-prefix-"},
    }
    assert crd_cel.evaluate(rules, long)[0] == ((), "name too long")  # 29 + 5 characters, either way
    [(path, message)] = crd_cel.evaluate(rules, {**long, "metadata": {"generateName": "a-"}})
    assert path == ()
    assert "rule '!self.metadata.name.matches('[0-9]$')' was not evaluated" in message
    assert "generateName 'a-'" in message
    named = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "a-1", "generateName": "a-"},
    }
    assert crd_cel.evaluate(rules, named) == [((), "suffix")]  # a name given: taken as it is


def test_rules_run_as_the_target_versions_cel_go() -> None:
    # cel-go's lastIndexOf in an empty string: an error until v0.26 (Kubernetes 1.34), -1 since
    schema = {
        "type": "object",
        "properties": {"v": {"type": "string"}},
        "x-kubernetes-validations": [{"rule": "self.v.lastIndexOf('.') == -1", "message": "has a dot"}],
    }
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "v": ""}
    assert crd_cel.evaluate(crd_cel.compile_rules(schema, kubernetes_version="1.34"), obj) == []
    failed = crd_cel.evaluate(crd_cel.compile_rules(schema, kubernetes_version="1.33"), obj)
    assert [message for _, message in failed] == [
        "the top level: rule 'self.v.lastIndexOf('.') == -1' failed: index out of range: -1"
    ]
