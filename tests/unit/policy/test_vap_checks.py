"""What the API server refuses when a ValidatingAdmissionPolicy is written (`vap_checks`, strict
`vap.parse_code`), what it accepts, and the cross-type numeric comparisons its environment has."""

from __future__ import annotations

from typing import Any

import pytest
from support.vap import rule

from trustgate.errors import PolicyError
from trustgate.policy import cel, vap

_VARIABLES = ("object", "oldObject", "request", "params", "namespaceObject", "variables", "authorizer")


def _policy(spec: dict[str, Any], *, params: bool = False) -> vap.Policy:
    obj: dict[str, Any] = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": "p"},
        "spec": {
            "matchConstraints": {"resourceRules": [rule(["CREATE"], ["configmaps"])]},
            **spec,
        },
    }
    if params:
        obj["spec"]["paramKind"] = {"apiVersion": "v1", "kind": "ConfigMap"}
    return vap.parse_policy(obj, file="p.yaml")


def _validation(expression: str, **more: str) -> dict[str, Any]:
    return {"validations": [{"expression": expression, **more}]}


def _refused(spec: dict[str, Any], match: str, *, params: bool = False) -> None:
    with pytest.raises(PolicyError, match=match):
        _policy(spec, params=params)


# -- result types (plugin/cel/compile.go: IsExactType against the field's ReturnTypes) --------


@pytest.mark.parametrize(
    "expression",
    [
        "object.spec.paused",
        "oldObject.spec.paused",
        "object.spec['paused']",
        "dyn(true)",
        "object.data.?on.orValue('true') == 'true' ? true : object.data.on",
        "has(object.data) ? object.data.?strict.orValue(true) : true",
        "object.data.?strict.orValue(true)",
        "true ? object.a : false",
    ],
)
def test_a_validation_the_api_server_types_dyn_is_refused(expression: str) -> None:
    _refused(_validation(expression), r"spec.validations\[0\].expression: must evaluate to bool but got dyn")


def test_params_are_dyn_too() -> None:
    _refused(_validation("params.enabled"), "must evaluate to bool but got dyn", params=True)


def test_each_field_has_its_return_types() -> None:
    _refused(
        {"matchConditions": [{"name": "a", "expression": "object.data.on"}], **_validation("true")},
        r"spec.matchConditions\[0\].expression: must evaluate to bool but got dyn",
    )
    _refused(
        _validation("true", messageExpression="object.metadata.name"),
        r"spec.validations\[0\].messageExpression: must evaluate to string but got dyn",
    )
    _refused(
        {"auditAnnotations": [{"key": "a", "valueExpression": "object.metadata.name"}]},
        r"spec.auditAnnotations\[0\].valueExpression: "
        r"must evaluate to one of \[string null_type\] but got dyn",
    )
    # A variable takes any type (its ReturnTypes hold cel.AnyType), dyn too.
    _policy({"variables": [{"name": "x", "expression": "object.spec"}], **_validation("true")})


def test_a_variable_has_its_expression_type() -> None:
    # CompositedCompiler declares `variables.x` with the type of x's expression.
    dyn = {"variables": [{"name": "paused", "expression": "object.spec.paused"}]}
    _refused({**dyn, **_validation("variables.paused")}, "must evaluate to bool but got dyn")
    chained = [*dyn["variables"], {"name": "again", "expression": "variables.paused"}]
    _refused({"variables": chained, **_validation("variables.again")}, "must evaluate to bool but got dyn")
    typed = {"variables": [{"name": "paused", "expression": "object.spec.paused == true"}]}
    assert _policy({**typed, **_validation("variables.paused")}).code.validations


@pytest.mark.parametrize(
    "spec",
    [
        _validation("!object.spec.paused", messageExpression="string(object.spec.why)"),
        _validation("object.spec.paused == true", messageExpression="'why: ' + object.spec.why"),
        # trustgate types these dyn; the API server knows their type, so they are not refused.
        _validation("request.dryRun"),
        _validation(
            "namespaceObject.metadata.name == 'x'", messageExpression="namespaceObject.metadata.name"
        ),
        {
            "variables": [{"name": "v", "expression": "request.operation"}],
            **_validation("variables.v == 'CREATE'"),
        },
        # The Kubernetes documentation's auditAnnotations example (a nullable string in cel-go).
        {
            "auditAnnotations": [
                {
                    "key": "high",
                    "valueExpression": "object.spec.replicas > 50 ? "
                    "'over ' + string(object.spec.replicas) : null",
                }
            ]
        },
    ],
)
def test_what_the_api_server_accepts_stays_accepted(spec: dict[str, Any]) -> None:
    assert _policy(spec).code is not None


# -- homogeneous aggregate literals (cel.ValidateHomogeneousAggregateLiterals) -----------------


@pytest.mark.parametrize(
    ("expression", "found", "column"),
    [
        ("object.data.tier in ['gold', 1]", "expected type 'string' but found 'int'", 30),
        ("object.data.tier in ['gold', object.data.other]", "expected type 'string' but found 'dyn'", 41),
        ("[1, 2u].size() == 2", "expected type 'int' but found 'uint'", 5),
        ("[1, 1.0].size() == 2", "expected type 'int' but found 'double'", 5),
        ("['a', null].size() == 2", "expected type 'string' but found 'null_type'", 7),
        ("[[1], ['a']].size() == 2", "expected type 'list\\(int\\)' but found 'list\\(string\\)'", 7),
        ("{'a': 1, 'b': 'x'}.size() == 2", "expected type 'int' but found 'string'", 15),
        ("{'a': 1, 2: 1}.size() == 2", "expected type 'string' but found 'int'", 10),
        # With the first entry unknown to trustgate, two known types that differ still mismatch.
        ("[request.name, 'a', 1].size() == 3", "expected type 'string' but found 'int'", 21),
    ],
)
def test_mixed_literals_are_refused(expression: str, found: str, column: int) -> None:
    _refused(_validation(expression), rf"expression \(line 1, column {column}\): {found}")


@pytest.mark.parametrize(
    "expression",
    [
        "['a', 'b'].size() == 2",
        "[object.a, object.b].size() == 2",
        "'%s %d'.format(['x', 1]) == 'x 1'",  # a format call's arguments are exempt
        "'%s'.format([['x', 1]]) != ''",  # at any depth of lists and maps
        # trustgate cannot tell what the API server types these: not refused.
        "[request.name, 'a'].size() == 2",
        "[namespaceObject.metadata.name, 'a'].size() == 2",
        "[[], [1]].size() == 2",
    ],
)
def test_literals_the_api_server_accepts(expression: str) -> None:
    _policy(_validation(expression))


# -- regex literals (cel.ValidateRegexLiterals; the regex optimisations at program creation) --


@pytest.mark.parametrize(
    ("expression", "refusal"),
    [
        ("object.data.tier.matches('^\\\\C+$')", "invalid matches argument"),
        ("matches(object.data.tier, '(')", "program instantiation failed"),
        ("matches('(', object.data.tier)", "invalid matches argument"),  # cel-go checks Args()[0]
        ("object.data.tier.find('[') == ''", "program instantiation failed"),
        ("object.data.tier.findAll('a{2,1}').size() == 0", "program instantiation failed"),
        ("object.data.tier.findAll('(?<', 1).size() == 0", "program instantiation failed"),
    ],
)
def test_regex_literals_go_refuses_are_refused(expression: str, refusal: str) -> None:
    _refused(_validation(expression), refusal)


def test_regexes_go_accepts_are_accepted() -> None:
    _policy(_validation("object.data.tier.matches('\\\\Q\\\\C\\\\E') && object.data.tier.matches(object.re)"))


def test_go_refuses_the_any_byte_escape_at_run_time_too() -> None:
    program = cel.compile_expression("object.a.find(object.re)", variables=["object"])
    with pytest.raises(cel.CelEvalError, match="invalid escape sequence"):
        program.evaluate({"object": {"a": "x", "re": "\\C"}})


# -- declarations and names (validation.go, compile.go's createEnvForOpts) ---------------------


def test_params_without_a_param_kind_are_undeclared() -> None:
    _refused(_validation("params.x == 1"), r"\(line 1, column 1\): undeclared reference to 'params'")
    assert _policy(_validation("params.x == 1"), params=True).code.validations


def test_a_message_expression_has_no_authorizer() -> None:
    message = "authorizer.path('/x').check('get').reason()"
    _refused(_validation("true", messageExpression=message), "undeclared reference to 'authorizer'")


def test_a_match_condition_has_no_variables() -> None:
    spec = {
        "variables": [{"name": "on", "expression": "object.data.on == 'true'"}],
        "matchConditions": [{"name": "on", "expression": "variables.on"}],
        **_validation("true"),
    }
    _refused(spec, r"spec.matchConditions\[0\].expression .*undeclared reference to 'variables'")


def test_only_the_variables_defined_before_are_fields() -> None:
    later = {
        "variables": [
            {"name": "a", "expression": "variables.b == 1"},
            {"name": "b", "expression": "1"},
        ],
        **_validation("variables.a"),
    }
    _refused(later, r"spec.variables\[0\].expression \(line 1, column 10\): undefined field 'b'")
    _refused(_validation("variables.nope == 1"), "undefined field 'nope'")


def test_reserved_words_are_no_variable_names() -> None:
    spec = {"variables": [{"name": "namespace", "expression": "1"}], **_validation("true")}
    _refused(
        spec, r"spec.variables\[0\].name: Invalid value: 'namespace': name is not a valid CEL identifier"
    )


@pytest.mark.parametrize(
    ("conditions", "refusal"),
    [
        ([{"expression": "true"}], r"matchConditions\[0\].name: Required value"),
        ([{"name": "", "expression": "true"}], r"matchConditions\[0\].name: Required value"),
        ([{"name": "a b", "expression": "true"}], r"matchConditions\[0\].name: Invalid value: 'a b'"),
        (
            [{"name": "a", "expression": "true"}, {"name": "a", "expression": "false"}],
            r"matchConditions\[1\].name: Duplicate value: 'a'",
        ),
    ],
)
def test_match_condition_names_are_checked(conditions: list[dict[str, str]], refusal: str) -> None:
    _refused({"matchConditions": conditions, **_validation("true")}, refusal)


def test_qualified_match_condition_names_are_accepted() -> None:
    conditions = [
        {"name": "example.com/exclude-leases", "expression": "true"},
        {"name": "b", "expression": "true"},
    ]
    assert len(_policy({"matchConditions": conditions, **_validation("true")}).code.conditions) == 2


@pytest.mark.parametrize(
    ("message", "refusal"),
    [
        ("   ", "message must be non-empty if specified"),
        ("two\nlines", "message must not contain line breaks"),
    ],
)
def test_static_messages_are_checked(message: str, refusal: str) -> None:
    _refused(_validation("true", message=message), refusal)


def test_gatekeeper_code_is_not_checked_so() -> None:
    # Gatekeeper compiles with the same compiler but does not refuse a template for these.
    source = {
        "matchConditions": [{"expression": "object.data.on"}, {"expression": "true"}],
        "validations": [
            {"expression": "object.data.tier in ['gold', 1]", "messageExpression": "object.data.tier"}
        ],
    }
    code = vap.parse_code(source, label="t", where="t.yaml", prefix="", variables=_VARIABLES)
    assert len(code.validations) == 1


# -- variables defined twice: the API server keeps the last definition ----------------------


def _configmap(data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "d"},
        "data": data,
    }


def test_a_variable_defined_twice_is_the_last_definition() -> None:
    policy = _policy(
        {
            "variables": [
                {"name": "v", "expression": "object.data.missing"},  # never evaluated by the API server
                {"name": "w", "expression": "1"},
                {"name": "v", "expression": "object.data.tier"},
            ],
            **_validation("variables.v == 'gold'"),
        }
    )
    assert [name for name, _ in policy.code.variables] == ["w", "v"]
    activation = {"object": _configmap({"tier": "gold"}), "oldObject": None, "request": {}}
    assert vap.run_code(policy.code, activation) == []


def test_a_variable_read_before_its_last_definition_is_not_evaluated() -> None:
    policy = _policy(
        {
            "variables": [
                {"name": "v", "expression": "1"},
                {"name": "w", "expression": "variables.v + 1"},
                {"name": "v", "expression": "2"},
            ],
            **_validation("variables.w == 2"),
        }
    )
    assert "reads 'v' before its last definition" in policy.code.unevaluable


# -- cross-type numeric comparisons (cel.CrossTypeNumericComparisons, environment/base.go) ----


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("size(object.data) <= 2.5", True),
        ("size(object.data) > 1.5", False),
        ("1 < 2.5 && 2.5 > 1 && 1u <= 1.0 && 1.0 >= 1u", True),
        ("-1 < 1u && 1u > -1", True),
        ("[1, 2].all(x, x < 2.5)", True),
        ("timestamp('2020-01-01T00:00:00Z').getFullYear() > 2019.5", True),
    ],
)
def test_cross_type_numeric_comparisons(expression: str, value: bool) -> None:
    program = cel.compile_expression(expression, variables=["object"])
    assert program.result_type == "BOOL"
    assert program.evaluate({"object": {"data": {"a": "b"}}}) is value


def test_equality_stays_typed() -> None:
    with pytest.raises(
        cel.CelCompileError, match=r"no matching overload for '_==_' applied to '\(int, double\)'"
    ):
        cel.compile_expression("1 == 1.0", variables=["object"])
