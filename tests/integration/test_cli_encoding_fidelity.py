"""Where `trustgate check -p` passed what conftest (OPA) denies, through an encoding, network or
string built-in that regorus computed otherwise than Go (ADR 0008, item 17): each case is a
tester's policy and input, and the finding OPA reports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustgate.cli.main import main

Write = Callable[[str, str], Path]

HEAD = "package main\nimport rego.v1\n\n"
OBJECT = "apiVersion: v1\nmetadata: {name: x}\n"


def check(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, ["check", "--no-builtin", "--no-schemas", *args], catch_exceptions=False
    )
    return result.exit_code, result.stdout, result.stderr


CASES = {
    # an IPv4-mapped IPv6 address is in 10.0.0.0/8 for Go's IPNet.Contains
    "ipv4-mapped-address-in-blocked-range": (
        """deny contains msg if {
  some ip in input.spec.externalIPs
  net.cidr_contains("10.0.0.0/8", ip)
  msg := sprintf("externalIP %s is in the private range 10.0.0.0/8", [ip])
}
""",
        OBJECT + 'kind: Service\nspec:\n  externalIPs: ["::ffff:10.1.2.3"]\n',
        "externalIP ::ffff:10.1.2.3 is in the private range 10.0.0.0/8",
    ),
    # Go's base64 decoder skips newlines: a block scalar's value is base64
    "base64-with-a-trailing-newline": (
        """deny contains sprintf("ConfigMap key %s holds base64 data: use a Secret", [k]) if {
  input.kind == "ConfigMap"
  some k, v in input.data
  count(v) > 3
  base64.is_valid(v)
}
""",
        OBJECT + "kind: ConfigMap\ndata:\n  token: |\n    c2VjcmV0LXRva2Vu\n",
        "ConfigMap key token holds base64 data: use a Secret",
    ),
    # Go's url.QueryEscape escapes `*`
    "urlquery-encode-escapes-star": (
        """deny contains sprintf("path %q must be URL-safe", [p]) if {
  p := input.spec.path
  urlquery.encode(p) != p
}
""",
        OBJECT + 'kind: ConfigMap\nspec:\n  path: "a*b"\n',
        'path "a*b" must be URL-safe',
    ),
    # Go's json.Marshal writes `<` as \\u003c: 40 of them are 240 bytes
    "json-marshal-escapes-html": (
        """deny contains msg if {
  n := count(json.marshal(input.metadata.annotations))
  n > 64
  msg := sprintf("annotations take %d bytes serialised (max 64)", [n])
}
""",
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  annotations:\n    note: "'
        + "<" * 40
        + '"\n',
        "annotations take 251 bytes serialised (max 64)",
    ),
    # Go's RE2 `\\d` is ASCII: Arabic-Indic digits do not match
    "template-match-ascii-digits": (
        """deny contains sprintf("port name %q must match port-<digits>", [p.name]) if {
  some c in input.spec.containers
  some p in c.ports
  not regex.template_match("port-{\\\\d+}", p.name, "{", "}")
}
""",
        OBJECT
        + 'kind: Pod\nspec:\n  containers:\n  - name: a\n    ports: [{containerPort: 80, name: "port-٨٠"}]\n',
        'port name "port-٨٠" must match port-<digits>',
    ),
    # Go's dtoi reads any number of leading zeros in a prefix length: this is 0.0.0.0/0
    "cidr-prefix-length-with-leading-zeros": (
        """deny contains msg if {
  net.cidr_contains(input.cidr, "8.8.8.8")
  msg := sprintf("cidr %s contains public addresses", [input.cidr])
}
""",
        OBJECT + 'kind: NetworkPolicy\ncidr: "0.0.0.0/000000000"\n',
        "cidr 0.0.0.0/000000000 contains public addresses",
    ),
    # a text that is not a string is an operand error in OPA: undefined, not a failed evaluation
    "indexof-n-of-a-number": (
        """ok if count(indexof_n(input.name, "a")) >= 0

deny contains "name is not text" if not ok
""",
        OBJECT + "kind: ConfigMap\nname: 5\n",
        "name is not text",
    ),
    # an empty search string is an error in OPA: undefined, so `ok` does not hold
    "indexof-n-empty-search": (
        """ok if count(indexof_n(input.name, input.sep)) > 0

deny contains "name has no separator" if not ok
""",
        OBJECT + 'kind: ConfigMap\nname: abc\nsep: ""\n',
        "name has no separator",
    ),
}


def _reports(write: Write, name: str, case: tuple[str, str, str]) -> None:
    """The policy of `case` (after HEAD), checked on its document, fails with its message only."""
    policy, doc, message = case
    path = write(f"{name}/policy/p.rego", HEAD + policy)
    code, out, err = check("-p", str(path.parent), str(write(f"{name}/in.yaml", doc)))
    assert (code, err) == (1, ""), out
    assert message in out


@pytest.mark.parametrize("name", sorted(CASES))
def test_opa_finding_is_reported(write: Write, name: str) -> None:
    _reports(write, name, CASES[name])


def test_glob_quote_meta_quotes_every_wildcard(write: Write) -> None:
    """gobwas/glob's QuoteMeta escapes `?`: the allowed image is literally `...:v1.?`."""
    policy = write(
        "policy/p.rego",
        HEAD
        + """deny contains sprintf("image %s is not allowed", [c.image]) if {
  some c in input.spec.containers
  not allowed(c.image)
}

allowed(image) if {
  some a in data.allowed
  glob.match(glob.quote_meta(a), [], image)
}
""",
    )
    data = write("data.yaml", 'allowed:\n  - "registry.example.com/app:v1.?"\n')
    doc = write(
        "in.yaml", OBJECT + 'kind: Pod\nspec:\n  containers:\n  - image: "registry.example.com/app:v1.9"\n'
    )
    code, out, _ = check("-p", str(policy.parent), "-d", str(data), str(doc))
    assert code == 1
    assert "image registry.example.com/app:v1.9 is not allowed" in out
    literal = write(
        "in2.yaml", OBJECT + 'kind: Pod\nspec:\n  containers:\n  - image: "registry.example.com/app:v1.?"\n'
    )
    assert check("-p", str(policy.parent), "-d", str(data), str(literal))[0] == 0


def test_decoded_bytes_that_are_not_utf8_could_not_be_evaluated(write: Write) -> None:
    """OPA keeps the bytes and compares them byte by byte; trustgate cannot hold them: exit 3."""
    policy = write("policy/p.rego", HEAD + 'deny contains "binary" if base64.decode(input.v) == "x"\n')
    code, out, err = check(
        "-p", str(policy.parent), str(write("in.yaml", OBJECT + 'kind: ConfigMap\nv: "/w=="\n'))
    )
    assert code == 3
    assert "not UTF-8" in out + err


def test_yaml_marshal_is_refused_at_load(write: Write) -> None:
    """go-yaml quotes `yes` (so it reads back as a string); regorus' YAML does not: refused."""
    policy = write(
        "policy/p.rego",
        HEAD + 'deny contains "on" if {\n  yaml.unmarshal(yaml.marshal(input.x)) == true\n}\n',
    )
    code, out, err = check(
        "-p", str(policy.parent), str(write("in.yaml", OBJECT + "kind: ConfigMap\nx: 'yes'\n"))
    )
    assert code == 3
    err += out
    assert "p.rego:5: `yaml.marshal` cannot be evaluated as OPA does" in err
    assert "compare values, not YAML text" in err


# Every spelling of the call goes where `f(a, b)` goes (ADR 0008, item 17).
FORMS = {
    # the output-argument form `f(a, b, out)`
    "output-argument-cidr-contains": (
        """deny contains msg if {
  net.cidr_contains("10.0.0.0/8", input.source, inside)
  inside
  msg := sprintf("source %s is in 10.0.0.0/8", [input.source])
}
""",
        OBJECT + 'kind: Service\nsource: "::ffff:10.1.2.3"\n',
        "source ::ffff:10.1.2.3 is in 10.0.0.0/8",
    ),
    "output-argument-parse-duration": (
        """deny contains "timeout over a day" if {
  time.parse_duration_ns(input.timeout, ns)
  ns >= 86400000000000
}
""",
        OBJECT + "kind: Job\ntimeout: 1d\n",
        "timeout over a day",
    ),
    # a bracketed reference to the built-in
    "bracketed-cidr-contains": (
        """deny contains msg if {
  net["cidr_contains"]("10.0.0.0/8", input.source)
  msg := sprintf("source %s is in 10.0.0.0/8", [input.source])
}
""",
        OBJECT + 'kind: Service\nsource: "::ffff:10.1.2.3"\n',
        "source ::ffff:10.1.2.3 is in 10.0.0.0/8",
    ),
}


@pytest.mark.parametrize("name", sorted(FORMS))
def test_every_call_form_is_routed(write: Write, name: str) -> None:
    _reports(write, name, FORMS[name])


def test_bracketed_yaml_marshal_is_refused_at_load(write: Write) -> None:
    policy = write(
        "yb/policy/p.rego",
        HEAD + 'deny contains "x" if yaml["marshal"](input.v) != "\\"yes\\"\\n"\n',
    )
    code, out, err = check(
        "-p", str(policy.parent), str(write("yb/in.yaml", OBJECT + "kind: ConfigMap\nv: 'yes'\n"))
    )
    assert code == 3, out
    assert "`yaml.marshal` cannot be evaluated as OPA does" in out + err
