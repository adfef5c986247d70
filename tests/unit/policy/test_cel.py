"""The CEL environment: the standard library, Kubernetes' libraries, errors with positions."""

from __future__ import annotations

import re
from typing import Any

import pytest

from trustgate.policy import cel

VARIABLES = ("object", "params")
OBJECT = {
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {"replicas": 3, "ports": [80, 443], "containers": [{"name": "a", "image": "nginx:1.27"}]},
}


def run(expression: str) -> Any:
    return cel.compile_expression(expression, variables=VARIABLES).evaluate(
        {"object": OBJECT, "params": None}
    )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # macros and has() on untyped data
        ("object.spec.containers.all(c, c.image.startsWith('nginx'))", True),
        ("object.spec.containers.exists(c, c.name == 'b')", False),
        ("object.spec.containers.map(c, c.name)", ["a"]),
        ("has(object.spec.replicas) && !has(object.spec.paused)", True),
        ("object.metadata.labels.exists_one(k, k == 'app')", True),
        # optionals and bind
        ("object.?spec.?paused.orValue(false)", False),
        ("object.spec.?replicas.hasValue()", True),
        ("cel.bind(n, object.spec.replicas, n * n)", 9),
        # strings extension, format
        ("'a,b'.split(',')", ["a", "b"]),
        ("'Web'.lowerAscii() + '-' + 'x'.upperAscii()", "web-X"),
        ("'%s has %d replicas'.format([object.metadata.name, object.spec.replicas])", "web has 3 replicas"),
        ("'abc'.indexOf('c')", 2),
        # lists
        ("object.spec.ports.isSorted()", True),
        ("[3, 1].isSorted()", False),
        ("object.spec.ports.sum()", 523),
        ("[2, 1, 3].min() + [2, 1, 3].max()", 4),
        ("[1, 2, 1].indexOf(1) + [1, 2, 1].lastIndexOf(1)", 2),
        ("['a', 'b'].indexOf('c')", -1),
        # regex
        ("'nginx:1.27'.matches('^nginx:[0-9.]+$')", True),
        ("'abc 123 def 456'.find('[0-9]+')", "123"),
        ("'abc 123 def 456'.findAll('[0-9]+')", ["123", "456"]),
        ("'abc 123 def 456'.findAll('[0-9]+', 1)", ["123"]),
        # sets
        ("sets.contains([1, 2, 3], [3, 1])", True),
        ("sets.equivalent([1, 2], [2, 1, 1])", True),
        ("sets.intersects([1], [2])", False),
        # quantity
        ("quantity('1Gi').isGreaterThan(quantity('1000Mi'))", True),
        ("quantity('500m').isLessThan(quantity('1'))", True),
        ("quantity('2k').asInteger()", 2000),
        ("quantity('500m').asApproximateFloat()", 0.5),
        ("quantity('1.5').isInteger()", False),
        ("quantity('1').add(quantity('500m')).compareTo(quantity('1500m'))", 0),
        ("quantity('1Gi').sub(1).asInteger()", 2**30 - 1),
        ("quantity('-1').sign()", -1),
        ("isQuantity('1Gi') && !isQuantity('1 Gi')", True),
        # semver
        ("semver('1.2.3').isLessThan(semver('1.10.0'))", True),
        ("semver('1.0.0-rc.1').isLessThan(semver('1.0.0'))", True),
        ("semver('v1.2', true).minor()", 2),
        ("semver('2.3.4').major() + semver('2.3.4').patch()", 6),
        ("isSemver('1.2.3') && !isSemver('1.2')", True),
        # ip and cidr
        ("ip('192.168.0.1').family()", 4),
        ("ip('::1').isLoopback() && ip('fe80::1').isLinkLocalUnicast()", True),
        ("ip('8.8.8.8').isGlobalUnicast() && ip('0.0.0.0').isUnspecified()", True),
        ("ip.isCanonical('2001:db8::1') && !ip.isCanonical('2001:DB8::1')", True),
        ("isIP('1.2.3') || isIP('1.2.3.4%eth0')", False),
        ("cidr('10.0.0.0/8').containsIP('10.1.2.3') && cidr('10.0.0.0/8').containsIP(ip('10.0.0.1'))", True),
        (
            "cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16') "
            "&& !cidr('10.0.0.0/16').containsCIDR('10.0.0.0/8')",
            True,
        ),
        ("cidr('192.168.0.1/24').masked() == cidr('192.168.0.0/24')", True),
        ("cidr('192.168.0.1/24').ip() == ip('192.168.0.1') && cidr('10.0.0.0/8').prefixLength() == 8", True),
        ("string(cidr('10.0.0.0/8')) + ' ' + string(ip('::1'))", "10.0.0.0/8 ::1"),
        # url
        ("url('https://example.com:8443/a/b?x=1&x=2').getHostname()", "example.com"),
        ("url('https://example.com:8443/a/b?x=1&x=2').getPort()", "8443"),
        ("url('https://[::1]:80/').getHostname()", "::1"),
        ("url('https://example.com/a/b?x=1&x=2').getEscapedPath()", "/a/b"),
        ("url('https://example.com/?x=1&x=2').getQuery()", {"x": ["1", "2"]}),
        ("url('/relative/path').getScheme()", ""),
        ("isURL('https://example.com') && !isURL('example.com')", True),
        # named formats
        ("!format.dns1123Label().validate('web-1').hasValue()", True),
        ("format.dns1123Label().validate('Web').value().size()", 1),
        ("format.dns1123Subdomain().validate('a.b-c.example').hasValue()", False),
        ("format.dns1035Label().validate('1abc').hasValue()", True),
        ("format.dns1123LabelPrefix().validate('web-').hasValue()", False),
        ("format.qualifiedName().validate('example.com/a_b').hasValue()", False),
        ("format.qualifiedName().validate('/a').hasValue()", True),
        ("format.labelValue().validate('').hasValue()", False),
        ("format.uuid().validate('0f5a4a33-7c4e-4c51-9e1e-2d8e6b1f7a10').hasValue()", False),
        ("format.byte().validate('aGVsbG8=').hasValue() || format.byte().validate('%%').hasValue()", True),
        ("format.date().validate('2024-02-30').hasValue()", True),
        ("format.datetime().validate('2024-02-01T10:00:00Z').hasValue()", False),
        ("format.named('uuid').value().validate('x').value()", ["does not match the UUID format"]),
        ("format.named('nope').hasValue()", False),
        # a string or null, as cel-go types it (cel-cpp's checker refuses the null branch)
        ("object.spec.replicas > 1 ? 'many: ' + string(object.spec.replicas) : null", "many: 3"),
        ("object.spec.replicas > 2 ? null : 'x'", None),
        # cel-go's ext.Lists, as its documentation states them
        ("[1, 2, 3, 4].slice(1, 3)", [2, 3]),
        ("[1, 2, 3, 4].slice(4, 4)", []),
        ("[1, [2, 3], [4]].flatten()", [1, 2, 3, 4]),
        ("[1, [2, [3, 4]]].flatten()", [1, 2, [3, 4]]),
        ("[1, [2, [3, [4]]]].flatten(2)", [1, 2, 3, [4]]),
        ("[1, 2, 2, 3, 1].distinct()", [1, 2, 3]),
        ("[1, 2.0, 2, 1u].distinct()", [1, 2.0]),
        ("[true, 1, 1.0].distinct()", [True, 1]),
        ("[[1], [1], [2]].distinct()", [[1], [2]]),
        ("[5, 1, 2].reverse()", [2, 1, 5]),
        ("['c', 'a', 'b'].sort()", ["a", "b", "c"]),
        ("[3.0, 1.5, 2.25].sort()", [1.5, 2.25, 3.0]),
        ("lists.range(4)", [0, 1, 2, 3]),
        ("lists.range(0)", []),
        ("object.spec.containers.map(c, c.name).sort().slice(0, 1)", ["a"]),
    ],
)
def test_kubernetes_environment(expression: str, expected: Any) -> None:
    assert run(expression) == expected


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("object.spec.missing", 'Key not found in map : "missing"'),
        ("has(object.nope.deeper)", 'Key not found in map : "nope"'),  # has() tests the last field only
        ("object.spec.replicas > 'a'", "No matching overloads"),
        ("quantity('1 Gi')", "invalid quantity '1 Gi'"),
        ("semver('1.2')", "No Major.Minor.Patch elements found"),
        ("ip('1.2.3.4%eth0')", "zone value is not allowed"),
        ("ip('::ffff:1.2.3.4')", "IPv4-mapped IPv6 address is not allowed"),
        ("cidr('10.0.0.0')", "network address parse error"),
        ("[].min()", "min called on empty list"),
        ("'x'.find('(')", "invalid regular expression"),
        ("quantity('1').compareTo(ip('::1'))", "expected quantity"),
        ("[1, 2].slice(-1, 1)", "negative indexes not supported"),
        ("[1, 2].slice(2, 1)", "start index must be less than or equal to end index"),
        ("[1, 2].slice(0, 3)", "list is length 2"),
        ("[1].flatten(-1)", "level must be non-negative"),
        ("[1, 'a'].sort()", "list elements must have the same type"),
        ("[[1], [2]].sort()", "list elements must be comparable"),
        ("lists.range(1000001)", "over the API server's per-expression cost limit"),
        ("object.?spec", "end it with .orValue(...) or .hasValue()"),
    ],
)
def test_evaluation_errors_are_clear(expression: str, error: str) -> None:
    with pytest.raises(cel.CelEvalError) as info:
        run(expression)
    assert error in str(info.value)


@pytest.mark.parametrize(
    ("expression", "position", "error"),
    [
        ("object.spec.replicas <", "line 1, column 23", "Syntax error"),
        ("object.spec.replicas >\n  && true", "line 2, column 3", "Syntax error"),
        ("size(object) + 'a'", "line 1, column 14", "no matching overload for '_+_'"),
        ("nosuch(object)", "line 1, column 7", "undeclared reference to 'nosuch'"),
        ("request.name == ''", "line 1, column 8", "undeclared reference to 'request.name'"),
    ],
)
def test_compile_errors_name_line_and_column(expression: str, position: str, error: str) -> None:
    with pytest.raises(cel.CelCompileError) as info:
        cel.compile_expression(expression, variables=VARIABLES)
    assert info.value.where() == position
    assert error in info.value.message
    assert "^" in info.value.message  # the engine's pointer under the expression


def test_an_overlong_expression_is_rejected_as_the_api_server_does() -> None:
    with pytest.raises(cel.CelCompileError, match="the API server allows 5000"):
        cel.compile_expression("true && " * 700 + "true", variables=VARIABLES)


def test_a_program_is_compiled_once_and_evaluated_many_times() -> None:
    program = cel.compile_expression("object.spec.replicas <= params.max", variables=VARIABLES)
    assert [program.evaluate({"object": OBJECT, "params": {"max": m}}) for m in (2, 3)] == [False, True]


@pytest.mark.parametrize(
    ("expression", "uses"),
    [
        ("authorizer.group('apps').resource('deployments').check('create').allowed()", True),
        ("object.x && authorizer.requestResource.check('get').allowed()", True),
        ("'authorizer' in object.metadata.labels", False),
        ("params.authorizer == 1", False),
        ('"say authorizer" == object.metadata.name', False),
        # the checked AST, not the text: a root-qualified `.authorizer`, a quote in a comment
        (".authorizer.group('apps').resource('deployments').check('create').allowed()", True),
        ("object.x == 1 // don't\n || authorizer.group('a').resource('b').check('c').allowed()", True),
        ("object.x == 1 // authorizer.group('a')", False),
    ],
)
def test_authorizer_is_found_in_the_checked_ast(expression: str, uses: bool) -> None:
    """The API server's compiler tells a policy's variable use from the checked AST (cel-go
    resolves `.authorizer` to the root variable; comments and literals are not in it)."""
    program = cel.compile_expression(expression, variables=[*VARIABLES, "authorizer"])
    assert program.reads("authorizer") is uses


def test_a_variable_read_without_the_checker_is_found_in_the_text() -> None:
    """The null-branch retry compiles without the checker: any word `name` counts (fail closed)."""
    program = cel.compile_expression("true ? 'authorizer' : null", variables=VARIABLES)
    assert program.reads("authorizer")
    assert not program.reads("namespaceObject")


@pytest.mark.parametrize(
    "expression",
    [
        "authorizer.requestResource.check('get').allowed()",
        "authorizer.serviceAccount('ns', 'sa').group('').resource('pods').namespace('x')"
        ".check('get').allowed()",
        "authorizer.path('/healthz').check('get').reason() == ''",
    ],
)
def test_authorizer_expressions_compile_so_they_can_be_reported(expression: str) -> None:
    program = cel.compile_expression(expression, variables=("authorizer",))
    with pytest.raises(cel.CelEvalError, match="authorizer has no offline meaning"):
        program.evaluate({"authorizer": {"requestResource": {}}})


def test_substitute_variable_finds_both_spellings_outside_string_literals() -> None:
    expression = (
        "variables.tier + variables['tier'] + variables[\"tier\"] + variables . tier + variables[ 'tier' ]"
        " + 'variables.tier' + \"variables['tier']\" + variables.tiers + x.variables.tier + variables.?tier"
    )
    out, count = cel.substitute_variable(expression, "tier", "T")
    assert count == 5
    assert out == (
        "T + T + T + T + T + 'variables.tier' + \"variables['tier']\" + variables.tiers + x.variables.tier"
        " + variables.?tier"
    )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # Go's regexp (RE2): `$` only at the end of the text, not before a final newline
        (r"'abc\n'.find('^[a-z]+$')", ""),
        # \d \w \b are ASCII in RE2
        (r"'١٢٣'.find('^\\d+$')", ""),
        (r"'héllo'.find('\\w+')", "h"),
        (r"'é x'.findAll('\\b.')", ["x"]),  # Python's re: ['é', ' ', 'x']
        # `{,2}` is no repeat in RE2: a literal
        ("'aaa'.find('a{,2}')", ""),
        ("'xa{,2}'.find('a{,2}')", "a{,2}"),
        # Unicode classes, which Python's re lacks
        (r"'1éa'.find('\\pL+')", "éa"),
        # FindAllString: an empty match right after a match is dropped
        ("'baaa'.findAll('a*')", ["", "aaa"]),
        ("'abc'.findAll('')", ["", "", "", ""]),
        ("'a1b2c3'.findAll('[0-9]', 2)", ["1", "2"]),
        ("'a1'.findAll('[0-9]', 0)", []),
        # Go matches at rune boundaries only; RE2's byte-wise \\B also matches inside `é` and `日`
        (r"'xéé'.findAll('\\B')", ["", ""]),
        (r"'日a日b'.findAll('\\B')", [""]),
    ],
)
def test_find_and_find_all_have_re2_semantics(expression: str, expected: Any) -> None:
    """Kubernetes' regex library compiles with Go's regexp (RE2 syntax) and returns
    FindString / FindAllString(limit)."""
    assert run(expression) == expected


def test_find_all_is_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """findAll over 100,000 characters asks RE2 once (one `finditer` over the text encoded once),
    not once per match: the binding re-encodes a str on every call, so that was quadratic."""
    calls: list[str] = []
    compiled = cel._regex

    class Counting:
        def __init__(self, regex: Any) -> None:
            self.regex = regex

        def __getattr__(self, name: str) -> Any:
            calls.append(name)
            return getattr(self.regex, name)

    monkeypatch.setattr(cel, "_regex", lambda pattern, *rest: Counting(compiled(pattern, *rest)))
    text = "a" * 100_000
    found = cel.compile_expression("object.findAll('.')", variables=("object",)).evaluate({"object": text})
    assert len(found) == 100_000
    assert calls == ["finditer"]


@pytest.mark.parametrize("pattern", ["a(?=b)", "(a)\\\\1", "a++", "(?>a)", "\\\\Z"])
def test_find_refuses_what_re2_refuses(pattern: str) -> None:
    """RE2 has no lookaround, backreference, possessive or atomic group, nor `\\Z`."""
    with pytest.raises(cel.CelEvalError, match="invalid regular expression"):
        run(f"'ab'.find('{pattern}')")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # resource.ParseQuantity: ASCII digits, nothing after the suffix
        (r"isQuantity('1Gi\n')", False),
        ("isQuantity('\u0661Gi')", False),  # an Arabic-Indic one
        ("isQuantity('1Gi')", True),
        # netip.ParsePrefix: a decimal length without leading zero, never a netmask
        ("isCIDR('10.1.0.0/255.255.0.0')", False),
        ("isCIDR('10.0.0.0/08')", False),
        ("isCIDR('10.0.0.0/8')", True),
        ("isCIDR('::/0')", True),
        # blang/semver and the uuid format: the whole text, ASCII digits
        (r"isSemver('1.2.3\n')", False),
        ("isSemver('\u0661.2.3')", False),
        (r"format.uuid().validate('123e4567-e89b-12d3-a456-426614174000\n').hasValue()", True),
        ("format.uuid().validate('123e4567-e89b-12d3-a456-426614174000').hasValue()", False),
        # url.ParseRequestURI: no space in a host, no control character
        ("isURL('http://exa mple.com')", False),
        (r"isURL('http://example.com/\n')", False),
        ("isURL('http://a b@example.com/')", False),
        ("isURL('http://example.com/a b')", True),
        # URL.EscapedPath: the decoded path escaped where what was written is no valid encoding
        ("url('http://a/b c').getEscapedPath()", "/b%20c"),
        ("url('http://a/b%20c').getEscapedPath()", "/b%20c"),
        ("url('http://a/é').getEscapedPath()", "/%C3%A9"),
        ("url('http://a/x;y=$').getEscapedPath()", "/x;y=$"),
    ],
)
def test_library_parsers_are_as_strict_as_go(expression: str, expected: Any) -> None:
    """Kubernetes' quantity, cidr, semver, format and url libraries use Go's parsers
    (resource.ParseQuantity, netip.ParsePrefix, blang/semver, url.ParseRequestURI)."""
    assert run(expression) == expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # CEL's equality: a bool is no number (Python's `True == 1` said otherwise)
        ("sets.contains([true], [1])", False),
        ("sets.contains([1], [true])", False),
        ("sets.equivalent([1], [true])", False),
        ("sets.intersects([1], [true])", False),
        ("[true, 1].indexOf(1)", 1),
        ("[1, true].lastIndexOf(true)", 1),
        ("[1, 2.0].indexOf(2)", 1),  # numbers compare by value across int and double
        # Go's netip.Addr.IsLinkLocalMulticast: 224.0.0.0/24 and ff02::/16
        ("ip('224.0.0.1').isLinkLocalMulticast()", True),
        ("ip('224.0.1.1').isLinkLocalMulticast()", False),
        ("ip('ff02::1').isLinkLocalMulticast()", True),
        ("ip('ff12::1').isLinkLocalMulticast()", True),  # any flags nibble: ffX2::/16
        ("ip('ff32::1').isLinkLocalMulticast()", True),
        ("ip('ff05::1').isLinkLocalMulticast()", False),
        ("ip('ff22::1').isLinkLocalMulticast() && !ip('fe02::1').isLinkLocalMulticast()", True),
        ("[1, 2, 3].sum()", 6),
        ("[1.5, 2.5].sum()", 4.0),
    ],
)
def test_library_values_as_kubernetes_gives_them(expression: str, expected: Any) -> None:
    got = run(expression)
    assert got == expected and type(got) is type(expected), (expression, got)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("[9223372036854775807, 1].sum()", "overflow"),
        ("[true, true].sum()", "no such overload"),
        ("[1, 2.5].sum()", "no such overload"),
        # summableTypes in Kubernetes' lists.go: int, uint, double, duration; no Quantity
        ("[quantity('1'), quantity('2')].sum()", "no such overload"),
    ],
)
def test_sum_errors_as_cel_go_does(expression: str, message: str) -> None:
    with pytest.raises(cel.CelEvalError, match=message):
        run(expression)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("quantity('0').sign()", 0),
        ("quantity('0m').isInteger()", False),  # an int64Amount at scale -3: AsInt64 fails
        ("quantity('0Gi').asInteger()", 0),
        ("quantity('-0').asApproximateFloat()", 0.0),
        ("quantity('1').isGreaterThan(quantity('0'))", True),
        ("quantity('0.0').isLessThan(quantity('1m'))", True),
        ("isQuantity('0') && isQuantity('0m') && isQuantity('0Gi')", True),
    ],
)
def test_a_zero_quantity_is_a_quantity(expression: str, expected: Any) -> None:
    """resource.ParseQuantity("0") is the zero Quantity; here a zero value once failed to build
    (`Fraction(0)` is falsy), an error a failurePolicy Ignore turned into an allow."""
    got = run(expression)
    assert got == expected and type(got) is type(expected), (expression, got)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("quantity('1Ki') == quantity('1024')", True),
        ("quantity('1000m') == quantity('1')", True),
        ("quantity('1G') == quantity('1e9') && quantity('1e3') == quantity('1k')", True),
        ("quantity('1') == quantity('1.0')", True),
        ("quantity('1Ki') != quantity('1024')", False),
        ("quantity('1') == quantity('2')", False),
        ("quantity('1024Mi') in [quantity('1Gi')]", True),
        ("[quantity('1Ki')].exists(q, q == quantity('1024'))", True),
        ("[quantity('1Ki'), quantity('2')] == [quantity('1024'), quantity('2000m')]", True),
        ("{'a': quantity('1Ki')} == {'a': quantity('1024')}", True),
        ("[quantity('2'), quantity('1Ki')].indexOf(quantity('1024'))", 1),
        ("sets.contains([quantity('1Ki')], [quantity('1024')])", True),
        ("quantity('0.1').add(quantity('0.2')) == quantity('300m')", True),
        # resource.ParseQuantity rounds a value finer than 1n away from zero, caps Ki...Ei at int64
        ("quantity('0.0000000001') == quantity('1n')", True),
        ("quantity('-0.0000000001') == quantity('-1n')", True),
        ("quantity('99999999999999999999Ei') == quantity('9223372036854775807')", True),
        ("quantity('99999999999999999999Ei').isInteger()", False),  # an inf.Dec, though whole
    ],
)
def test_quantities_are_equal_by_value(expression: str, expected: Any) -> None:
    """Kubernetes' Quantity.Equal compares values (k8s.io/apiserver/pkg/cel/quantity.go), so
    `1Ki == 1024` in `==`, `in`, list and map equality; here the text was compared."""
    got = run(expression)
    assert got == expected and type(got) is type(expected), (expression, got)


@pytest.mark.parametrize("kind", ["quantity('1')", "semver('1.2.3')"])
def test_string_of_a_quantity_or_semver_is_an_error(kind: str) -> None:
    """Their ConvertToType refuses the string type in the API server (no `string()` overload)."""
    with pytest.raises(cel.CelEvalError, match="type conversion error"):
        run(f"string({kind})")


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("semver('1.2.3+b') == semver('1.2.3')", True),
        ("semver('1.0.0+a') == semver('1.0.0+b')", True),
        ("semver('1.2.3+b') != semver('1.2.3')", False),
        ("semver('1.2.3') in [semver('1.2.3+build.5')]", True),
        ("semver('v1.2.0+b', true) == semver('1.2.0')", True),
        ("semver('1.2.3-rc.1+b') == semver('1.2.3-rc.1')", True),
        ("semver('1.2.3-rc.1') == semver('1.2.3')", False),
        ("semver('1.2.3+b').patch()", 3),
    ],
)
def test_semvers_are_equal_without_build_metadata(expression: str, expected: Any) -> None:
    """Kubernetes' Semver.Equal is blang/semver's EQ, which ignores build metadata."""
    got = run(expression)
    assert got == expected and type(got) is type(expected), (expression, got)


def run_with(expression: str, obj: Any) -> Any:
    return cel.compile_expression(expression, variables=VARIABLES).evaluate({"object": obj, "params": None})


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # cel-go: Int(d.Milliseconds()), the whole duration (the runtime gave the part: 500)
        ("duration('1.5s').getMilliseconds()", 1500),
        ("duration('-1.5s').getMilliseconds()", -1500),
        ("duration('1h2m3.5s').getMilliseconds()", 3_723_500),
        ("duration('-1.9999995s').getMilliseconds()", -1999),  # truncated toward zero
        ("duration('1.9999999s').getMilliseconds()", 1999),
        ("[duration('2s')].map(d, d . getMilliseconds ( ))", [2000]),
        ("dyn(duration('1.5s')).getMilliseconds()", 1500),
        # a timestamp's is still its millisecond part, with or without a time zone
        ("timestamp('2020-01-01T00:00:01.5Z').getMilliseconds()", 500),
        ("timestamp('2020-01-01T00:00:01.5Z').getMilliseconds('America/New_York')", 500),
        # the other getters were totals already, as in cel-go
        ("duration('3723.5s').getSeconds()", 3723),
        ("duration('3723.5s').getMinutes()", 62),
        ("duration('90000s').getHours()", 25),
        # text that only looks like a call is left alone
        (
            "'x.getMilliseconds()' + \"timestamp(\" + '''duration(''' // duration(\n",
            "x.getMilliseconds()timestamp(duration(",
        ),
    ],
)
def test_duration_get_milliseconds_is_the_total_as_in_cel_go(expression: str, expected: Any) -> None:
    got = run(expression)
    assert got == expected and type(got) is type(expected), (expression, got)


def test_get_milliseconds_of_a_variable_duration_is_the_total() -> None:
    assert run_with("duration(object.d).getMilliseconds() <= 1000", {"d": "1.5s"}) is False


@pytest.mark.parametrize(
    "text",
    [
        "2020-01-01t00:00:00Z",  # Go's layout: `T` and `Z` upper case
        "2020-01-01T00:00:00z",
        "2020-12-31T23:59:60Z",  # no leap second
        "2020-1-01T00:00:00Z",  # two-digit month and day
        "2020-01-01T00:00:00+0100",  # the offset's colon
        "2020-01-01T00:00:00+25:00",
        "2020-02-30T00:00:00Z",
        "2020-01-01 00:00:00Z",
        "2020-01-01T00:00:00",
        "0000-01-01T00:00:00Z",  # cel-go's range: years 1 to 9999
        " 2020-01-01T00:00:00Z",
    ],
)
def test_timestamp_of_a_string_go_refuses_is_an_error(text: str) -> None:
    """cel-go's timestamp(string) is time.Parse(time.RFC3339, s); the runtime's parser took more."""
    with pytest.raises(cel.CelEvalError, match="timestamp conversion error"):
        run_with("timestamp(object.t) < timestamp('2030-01-01T00:00:00Z')", {"t": text})
    # a literal is refused when the policy is written (cel.ValidateTimestampLiterals, 1.29+)
    with pytest.raises(cel.CelCompileError, match="timestamp validation failed"):
        run(f"timestamp('{text}') < timestamp('2030-01-01T00:00:00Z')")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-01-01T01:00:00+01:00", "2020-01-01T00:00:00Z"),
        ("2020-01-01T1:00:00+01:00", "2020-01-01T00:00:00Z"),  # Go's fallback parser: a one-digit hour
        ("2020-01-01T00:00:00,5Z", "2020-01-01T00:00:00.500Z"),  # and a comma before the fraction
        ("2020-01-02T00:00:00+24:00", "2020-01-01T00:00:00Z"),  # and an offset of 24 hours
        ("2020-01-01T00:00:00.1234567891Z", "2020-01-01T00:00:00.123456789Z"),  # 9 digits read
        ("0000-12-31T23:00:00-01:00", "0001-01-01T00:00:00Z"),
    ],
)
def test_timestamp_of_a_string_go_accepts_has_go_s_value(text: str, expected: str) -> None:
    assert run_with(f"timestamp(object.t) == timestamp('{expected}')", {"t": text}) is True


@pytest.mark.parametrize(
    "text", ["2562048h", "9223372036854775808ns", "1d", "", "1", "1 s", ".s", "1e3s", "+-1s", "1sec"]
)
def test_duration_of_a_string_go_refuses_is_an_error(text: str) -> None:
    """cel-go's duration(string) is time.ParseDuration: no days, a unit on every number, and a
    total within int64 nanoseconds (2562048h overflows; the runtime took it)."""
    with pytest.raises(cel.CelEvalError, match="invalid duration"):
        run_with("duration(object.d) > duration('0s')", {"d": text})
    with pytest.raises(cel.CelCompileError, match="duration validation failed"):
        run(f"duration('{text}') > duration('0s')")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1µs", "1us"),  # U+00B5, which the runtime refused
        ("1μs", "1us"),  # U+03BC
        ("2562047h", "9223369200s"),
        ("-9223372036854775808ns", "-9223372036.854775808s"),
        ("0.3333333333333s", "333333333ns"),  # the fraction in float64, truncated, as Go adds it
        ("1h1h", "2h"),
        (".5s", "500ms"),
        ("1.s", "1s"),
        ("+0", "0s"),
    ],
)
def test_duration_of_a_string_go_accepts_has_go_s_value(text: str, expected: str) -> None:
    assert run_with(f"duration(object.d) == duration('{expected}')", {"d": text}) is True


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("timestamp(5) == timestamp('1970-01-01T00:00:05Z')", True),
        (
            "timestamp(timestamp('2020-01-01T00:00:00.000000001Z')) "
            "== timestamp('2020-01-01T00:00:00.000000001Z')",
            True,
        ),
        ("duration(duration('1.000000001s')) == duration('1000000001ns')", True),
        ("string(.timestamp('2020-01-01T00:00:00Z'))", "2020-01-01T00:00:00Z"),
    ],
)
def test_time_conversions_of_other_values_are_unchanged(expression: str, expected: Any) -> None:
    assert run(expression) == expected


def test_the_time_rewrite_keeps_the_written_expression_s_type_and_ast() -> None:
    program = cel.compile_expression("timestamp(object.t).getMilliseconds()", variables=VARIABLES)
    assert program.result_type == "INT"
    assert b"__tg_" not in program.checked()


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        # url.ParseRequestURI: every % followed by two hex digits, in the path too
        ("http://a.com/%zz", False),
        ("http://a.com/a%", False),
        ("http://a.com/%41", True),
        # a host %-escapes only bytes beyond ASCII (and %25 for an IPv6 zone)
        ("http://%41.com/", False),
        ("http://[fe80::1%25en0]:8080/", True),
        # the scheme starts the text: a leading space makes a relative reference, refused
        (" http://a.com", False),
        ("http://a.com ", False),  # a space in the host
        ("http://[::1]x/", False),  # only a port after the bracket
        ("http://a.com:99999", True),  # a port is digits, of any value
        ("http://a.com:/x", True),
        ("http://a.com:8x", False),
        ("http://é:x@a.com/", False),  # userinfo: ASCII only (validUserinfo)
        ("https://a.com#frag", False),  # no fragment split: `#` is in the host
        ("https://a.com/#x#y", True),
        ("//a.com/x", True),  # an absolute path
        ("*", True),
        ("", False),
        ("a.com/x", False),
    ],
)
def test_is_url_is_go_s_parse_request_uri(text: str, valid: bool) -> None:
    """Kubernetes' isURL and url() accept what Go's url.ParseRequestURI accepts
    (apiserver/pkg/cel/library/urls.go); Python's urlsplit accepted more."""
    assert run_with("isURL(object.u)", {"u": text}) is valid
    if not valid:
        with pytest.raises(cel.CelEvalError, match="URL parse error"):
            run_with("url(object.u)", {"u": text})


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # the value is url.Parse's: a path-absolute `//a.com/x` has host a.com there
        ("url('//a.com/x').getHost()", "a.com"),
        ("url('//a.com/x').getEscapedPath()", "/x"),
        ("url('http:/a').getHost()", ""),
        ("url('http:a').getEscapedPath()", ""),  # opaque
        # Go's String() (what equality compares) does not parse back to the same URL here
        ("url('//').getEscapedPath() + '|' + url('//').getHost()", "|"),
        ("url('/%2Faé:%41').getEscapedPath()", "//a%C3%A9:A"),
        ("url('https://a.com/x#frag').getEscapedPath()", "/x"),
        # URL.Query(): ParseQuery drops a pair holding `;` or a bad escape
        ("url('https://a.com/?a=1;b=2').getQuery()", {}),
        ("url('https://a.com/?a=%zz&b=1').getQuery()", {"b": ["1"]}),
        ("url('https://a.com/?a+b=c+d&a+b=%20').getQuery()", {"a b": ["c d", " "]}),
        ("url('https://a.com?x').getQuery()", {"x": [""]}),
        # Hostname(): the zone unescaped
        ("url('http://[fe80::1%25en0]:8080/').getHostname()", "fe80::1%en0"),
        ("url('http://[fe80::1%25en0]:8080/').getPort()", "8080"),
        ("url('http://a.com:99999').getPort()", "99999"),
        ("url('http://user@a.com:80').getHost()", "a.com:80"),
        ("url('HTTP://a.com').getScheme()", "http"),
        # URL.Equal compares String()s
        ("url('HTTP://a.com/a b') == url('http://a.com/a%20b')", True),
        ("url('http://a.com/x') in [url('http://a.com/x#')]", True),
        ("url('http://a.com/x') == url('http://a.com/y')", False),
    ],
)
def test_url_values_are_go_s(expression: str, expected: Any) -> None:
    assert run(expression) == expected


def test_string_of_a_url_is_an_error() -> None:
    """URL's ConvertToType refuses the string type (apiserver/pkg/cel/url.go)."""
    with pytest.raises(cel.CelEvalError, match="type conversion error"):
        run("string(url('http://a.com'))")


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        # ext.Strings(StringsVersion(2)) formats with cel-go's formatting.go: `%d` takes integers
        ("'%d'.format([1.5])", "decimal clause can only be used on integers, was given double"),
        ("'%d'.format(['1'])", "decimal clause can only be used on integers, was given string"),
        ("'%o'.format([1.5])", "octal clause can only be used on integers"),
        ("'%b'.format(['x'])", "only integers and bools can be formatted as binary"),
        ("'%x'.format([1.5])", "only integers, byte buffers, and strings can be formatted as hex"),
        ("'%f'.format([1])", "fixed-point clause can only be used on doubles, was given int"),
        ("'%s'.format([quantity('1')])", "string clause can only be used on"),
        ("'%d %d'.format([1])", "index 1 out of range"),
        ("'%z'.format([1])", 'unrecognized formatting clause "z"'),
        # what trustgate cannot print as cel-go does is refused, never printed otherwise
        ("'%.2f'.format([1234.5])", "cannot be evaluated as the API server does it"),
        ("'%s'.format([timestamp('2020-01-01T00:00:00Z')])", "cannot be evaluated as the API server does it"),
    ],
)
def test_format_errors_as_kubernetes_strings_library_does(expression: str, error: str) -> None:
    with pytest.raises(cel.CelEvalError, match=re.escape(error)):
        run(expression)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'%s has %d replicas'.format([object.metadata.name, object.spec.replicas])", "web has 3 replicas"),
        ("'%s|%s|%s|%s'.format([1.5, 1e6, 0.0001, 100.0])", "1.5|1e+06|0.0001|100"),  # FormatFloat 'g'
        # a list or map: strings quoted (%q), doubles as %.6f, map keys sorted, no space after ':'
        ("'%s'.format([[1.5, 'a\"b', b'x', null, true, 2]])", '[1.500000, "a\\"b", b"x", null, true, 2]'),
        ("'%s'.format([{'b': 1, 'a': 'x'}])", '{"a":"x", "b":1}'),
        ("'%x %X %o %b %b %%'.format(['ab', 255, 8, 5, true])", "6162 FF 10 101 1 %"),
        ("'%.3d'.format([5])", "5"),  # a precision other clauses ignore
    ],
)
def test_format_prints_as_kubernetes_strings_library_does(expression: str, expected: str) -> None:
    assert run(expression) == expected


def test_a_huge_quantity_exponent_is_no_verdict_not_a_hang() -> None:
    """`1e999999999` is a Quantity to the API server; its exact value here would take minutes
    and gigabytes (an object could stall the webhook), so it is unevaluable, never a guess."""
    with pytest.raises(cel.CelUnevaluableError, match="exponents up to"):
        run_with("quantity(object.q).sign() == 1", {"q": "1e999999999"})
    with pytest.raises(cel.CelUnevaluableError):
        run_with("isQuantity(object.q)", {"q": "1e-999999999"})
    # suffixHandler.interpret cuts the exponent to an int32: 1e4294967296 is 1
    assert run("quantity('1e4294967296') == quantity('1')") is True
    assert run("quantity('1e400').isGreaterThan(quantity('1Ei'))") is True


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # Quantity.AsInt64: only an int64Amount at scale >= 0 that fits; the value alone does
        # not decide (resource.ParseQuantity's fast path, int64Amount.Add)
        ("quantity('1000m').isInteger()", False),
        ("quantity('1.0').isInteger()", False),
        ("quantity('1.5Gi').isInteger()", False),  # an inf.Dec
        ("quantity('1Ei').isInteger()", False),  # too many digits for the binary fast path
        ("quantity('9223372036854775807').isInteger()", False),  # 19 digits: an inf.Dec
        ("quantity('0.0').isInteger()", False),
        ("quantity('1').isInteger() && quantity('1k').isInteger() && quantity('1Gi').isInteger()", True),
        ("quantity('1E').isInteger() && !quantity('10E').isInteger()", True),
        ("quantity('1e3').isInteger() && !quantity('1e19').isInteger()", True),
        ("quantity('1').add(quantity('500m')).isInteger()", False),
        ("quantity('1.5').add(quantity('0.5')).isInteger()", False),  # 20 at scale -1
        ("quantity('0.0').add(quantity('1')).isInteger()", True),  # a zero takes the other's scale
        ("quantity('1k').add(quantity('1')).asInteger()", 1001),
        ("quantity('1').add(1).sub(2).asInteger()", 0),
        ("quantity('1m').sub(quantity('1m')).isInteger()", False),
        # equality is still by value
        ("quantity('1000m') == quantity('1') && [quantity('1.5Gi')] == [quantity('1536Mi')]", True),
    ],
)
def test_is_integer_follows_the_quantity_s_representation(expression: str, expected: Any) -> None:
    got = run(expression)
    assert got == expected and type(got) is type(expected), (expression, got)


def test_as_integer_of_a_quantity_kubernetes_holds_as_a_fraction_is_an_error() -> None:
    with pytest.raises(cel.CelEvalError, match="cannot convert value to integer"):
        run("quantity('1000m').asInteger()")


def test_a_timestamp_before_the_year_1000_is_handed_over_with_four_digits() -> None:
    """strftime's %Y writes 999, which only a lenient parser reads as the year 999."""
    assert cel._go_timestamp("0999-05-01T00:00:00Z") == "0999-05-01T00:00:00.000000000Z"
    expression = "timestamp(object.t) == timestamp('0999-04-30T23:00:00.5Z')"
    assert run_with(expression, {"t": "0999-05-01T00:00:00.5+01:00"}) is True
