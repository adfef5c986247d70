"""Built-in kinds' `[]byte` and `metav1.Time` strings: refused as the kube-apiserver's decoder refuses them.

The values and verdicts live in `support.builtin_formats`; the differential test submits the same
values to a real kube-apiserver (tests/integration/test_builtin_formats_apiserver.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from support.builtin_formats import INVALID, VALID, configmap, event, lease, secret
from support.string_cases import format_params

from trustgate.cli.main import main
from trustgate.policy import _compile_cache, builtin_formats, schema
from trustgate.policy._compile_cache import CompileCache
from trustgate.policy.schema import SchemaSet

Write = Callable[[str, str], Path]

CHECKERS = {
    "byte": builtin_formats.is_go_base64,
    "time": builtin_formats.is_go_rfc3339,
    "micro-time": builtin_formats.is_go_rfc3339_micro,
}


@pytest.mark.parametrize(("name", "value"), format_params(VALID))
def test_valid_values_pass(name: str, value: str) -> None:
    assert CHECKERS[name](value)


@pytest.mark.parametrize(("name", "value"), format_params(INVALID))
def test_invalid_values_fail(name: str, value: str) -> None:
    assert not CHECKERS[name](value)


@pytest.mark.parametrize("check", list(CHECKERS.values()))
def test_no_checker_raises_on_a_lone_surrogate(check: Callable[[str], bool]) -> None:
    assert check("2024\ud800") is False


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return SchemaSet(version="1.33", strict=True)


# (make the object, the value's path, which Go type decodes it)
FIELDS = [
    pytest.param(secret, ("data", "k"), "byte", id="secret-data"),
    pytest.param(configmap, ("binaryData", "k"), "byte", id="configmap-binaryData"),
    pytest.param(
        lambda v: secret("", creationTimestamp=v),
        ("metadata", "creationTimestamp"),
        "time",
        id="creationTimestamp",
    ),
    pytest.param(event, ("eventTime",), "micro-time", id="event-eventTime"),
    pytest.param(lease, ("spec", "renewTime"), "micro-time", id="lease-renewTime"),
]


@pytest.mark.parametrize(("make", "path", "kind"), FIELDS)
def test_every_value_gets_the_decoders_verdict_in_its_field(
    schemas: SchemaSet, make: Callable[[Any], dict[str, Any]], path: tuple[str, ...], kind: str
) -> None:
    wrong = []
    for corpus, ok in ((VALID, True), (INVALID, False)):
        for value in corpus[kind]:
            violations = schemas.validate(make(value))
            if [v.path for v in violations] != ([] if ok else [path]):
                wrong.append(f"{value!r}: {[v.message for v in violations]}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("make", "path", "kind"), FIELDS)
def test_null_is_accepted(
    schemas: SchemaSet, make: Callable[[Any], dict[str, Any]], path: tuple[str, ...], kind: str
) -> None:
    # The decoders read null as a nil slice or the zero time.
    assert schemas.validate(make(None)) == []


def test_a_bad_value_names_field_value_and_what_the_api_server_expects(schemas: SchemaSet) -> None:
    obj = secret("aGVsbG8", creationTimestamp="garbage")
    messages = {v.path: (v.rule, v.message) for v in schemas.validate(obj)}
    assert messages == {
        ("data", "k"): (
            "schema-invalid",
            'data.k: "aGVsbG8" is not base64: the API server refuses to decode it (use padded '
            "standard base64, e.g. aGVsbG8=)",
        ),
        ("metadata", "creationTimestamp"): (
            "schema-invalid",
            'metadata.creationTimestamp: "garbage" is not an RFC 3339 time: the API server refuses '
            "to decode it (use e.g. 2024-01-31T12:00:00Z)",
        ),
    }
    [micro] = schemas.validate(event("2024-01-31T12:00:00Z"))
    assert "six fraction digits" in micro.message


def test_time_nested_in_a_list_is_checked(schemas: SchemaSet) -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "managedFields": [{"manager": "m", "time": "yesterday"}]},
    }
    assert [v.path for v in schemas.validate(obj)] == [("metadata", "managedFields", 0, "time")]


@pytest.mark.parametrize(
    "obj",
    [
        # int32/int64 and int-or-string formats are not decode errors: never checked on built-ins.
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 99999999999, "targetPort": "http"}]},
        },
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "not base64!"}},
    ],
)
def test_other_formats_stay_unchecked(schemas: SchemaSet, obj: dict[str, Any]) -> None:
    assert schemas.validate(obj) == []


def test_only_the_decoded_formats_are_left_in_a_compiled_schema() -> None:
    compiled: dict[str, Any] = {
        "properties": {
            "a": {"type": "integer", "format": "int32"},
            "b": {"type": "string", "format": "byte"},
            "format": {"type": "string"},  # a property called "format" is not a keyword
            "t": {"$ref": "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.Time"},
        },
        "$defs": {
            "io.k8s.apimachinery.pkg.apis.meta.v1.Time": {"type": "string", "format": "date-time"},
            "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": {"type": "string", "format": "date-time"},
            "x": {"items": {"type": "number", "format": "double"}},
        },
    }
    schema._mark_decoded_formats(compiled)
    assert "format" not in compiled["properties"]["a"]
    assert compiled["properties"]["b"]["format"] == builtin_formats.BYTES
    assert compiled["properties"]["format"] == {"type": "string"}
    defs = compiled["$defs"]
    assert defs["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"] == builtin_formats.TIME
    assert defs["io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"]["format"] == builtin_formats.MICRO_TIME
    assert "format" not in defs["x"]["items"]


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[CompileCache]:
    chosen = CompileCache(tmp_path / "compiled", key_file=tmp_path / "state" / "compile-cache.key")
    saved = list(_compile_cache._ACTIVE)
    _compile_cache.use(chosen)
    yield chosen
    _compile_cache._ACTIVE[:] = saved


def test_the_decoded_formats_apply_to_a_cached_schema_too(cache: CompileCache) -> None:
    obj = secret("aGVsbG8", creationTimestamp="garbage")
    expected = [("data", "k"), ("metadata", "creationTimestamp")]
    first = SchemaSet(version="1.33", strict=True)
    assert sorted(v.path for v in first.validate(obj)) == expected  # builds and stores
    assert len(list(cache.directory.glob("*.entry"))) == 1
    second = SchemaSet(version="1.33", strict=True)
    assert sorted(v.path for v in second.validate(obj)) == expected  # from the cache


def test_check_reports_an_undecodable_secret_and_fails(write: Write) -> None:
    manifest = write("s.yaml", yaml.safe_dump(secret("not base64!")))
    result = CliRunner().invoke(
        main, ["check", "--no-builtin", "-o", "json", str(manifest)], catch_exceptions=False
    )
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    [finding] = [f for r in report["results"] for f in r["findings"]]
    assert (finding["rule"], finding["path"]) == ("schema-invalid", "data.k")
    assert '"not base64!" is not base64: the API server refuses to decode it' in finding["message"]
