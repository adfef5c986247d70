"""trustgate.policy._compile_cache: compiled policy artefacts kept across runs.

An entry may only save time: whatever is wrong with it (missing, truncated,
altered, another key's, not the user's), the caller computes afresh and the
findings are those of an uncached run.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from trustgate.policy import _compile_cache, _normalise, rego, schema
from trustgate.policy._compile_cache import CompileCache

_POLICY = """\
package main

deny contains msg if {
    some c in input.spec.containers
    not startswith(c.image, "registry.example.com/")
    msg := sprintf("image %v is not from the registry", [c.image])
}
"""


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[CompileCache]:
    """A fresh cache in a temp dir, active for the test (and the in-process memo cleared)."""
    chosen = CompileCache(tmp_path / "compiled", key_file=tmp_path / "state" / "compile-cache.key")
    saved = list(_compile_cache._ACTIVE)
    _compile_cache.use(chosen)
    _normalise.normalise.cache_clear()
    yield chosen
    _compile_cache._ACTIVE[:] = saved
    _normalise.normalise.cache_clear()


def _entry(cache: CompileCache) -> Path:
    entries = [p for p in cache.directory.iterdir() if p.suffix == ".entry"]
    assert len(entries) == 1
    return entries[0]


def test_a_stored_value_comes_back(cache: CompileCache) -> None:
    key = cache.key(["a", b"b"])
    assert cache.load(key) is None
    cache.store(key, {"texts": ["x", "é"], "n": 1})
    assert cache.load(key) == {"texts": ["x", "é"], "n": 1}
    assert (cache.directory.stat().st_mode & 0o777) == 0o700


def test_an_entry_rewritten_without_the_users_secret_is_ignored(cache: CompileCache) -> None:
    """Whoever can write the cache directory (a restored CI cache, a copied home) but does not hold
    the per-user secret kept outside it cannot hand the compiler a weakened policy: a rewritten
    body under a recomputed plain digest, or an entry signed with another secret, is ignored."""
    import hashlib

    cache.store("k" * 64, {"text": "deny if input.privileged == true"})
    entry = _entry(cache)
    header, _, _ = entry.read_bytes().partition(b"\n")
    body = b'{"text":"deny if input.privileged == false"}'
    forged = header.rsplit(b" ", 1)[0] + b" " + hashlib.sha256(body).hexdigest().encode()
    entry.write_bytes(forged + b"\n" + body)
    assert cache.load("k" * 64) is None

    elsewhere = CompileCache(cache.directory, key_file=cache.key_file.parent / "other.key")
    elsewhere.store("k" * 64, {"text": "written with another secret"})
    assert elsewhere.load("k" * 64) == {"text": "written with another secret"}
    assert cache.load("k" * 64) is None
    assert (cache.key_file.stat().st_mode & 0o777) == 0o600


def test_a_secret_others_can_read_means_no_cache(tmp_path: Path) -> None:
    key_file = tmp_path / "state" / "compile-cache.key"
    cache = CompileCache(tmp_path / "compiled", key_file=key_file)
    cache.store("a" * 64, [1])
    assert cache.load("a" * 64) == [1]
    key_file.chmod(0o644)
    again = CompileCache(tmp_path / "compiled", key_file=key_file)
    assert again.load("a" * 64) is None
    again.store("b" * 64, [2])
    assert again.load("b" * 64) is None


def test_keys_do_not_collide_on_concatenation() -> None:
    assert CompileCache.key(["ab", "c"]) != CompileCache.key(["a", "bc"])


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda raw: raw[:-1], id="truncated"),
        pytest.param(lambda raw: raw[:-2] + b"X" + raw[-1:], id="altered-body"),
        pytest.param(lambda raw: raw.split(b"\n", 1)[1], id="no-header"),
        pytest.param(lambda raw: raw.replace(b"cache 1 ", b"cache 9 ", 1), id="other-format"),
        pytest.param(lambda raw: b"", id="empty"),
    ],
)
def test_a_damaged_entry_is_ignored(cache: CompileCache, damage: object) -> None:
    key = cache.key(["k"])
    cache.store(key, ["value"])
    path = _entry(cache)
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]  # the lambdas above
    assert cache.load(key) is None


def test_another_keys_entry_is_ignored(cache: CompileCache) -> None:
    one, two = cache.key(["one"]), cache.key(["two"])
    cache.store(one, "first")
    _entry(cache).rename(cache.directory / f"{two}.entry")
    assert cache.load(two) is None


def test_an_entry_others_may_write_is_ignored(cache: CompileCache) -> None:
    key = cache.key(["k"])
    cache.store(key, "v")
    path = _entry(cache)
    path.chmod(0o664)
    assert cache.load(key) is None
    path.chmod(0o600)
    assert cache.load(key) == "v"
    cache.directory.chmod(0o777)
    assert cache.load(key) is None
    cache.store(cache.key(["other"]), "w")  # nor written into
    assert len(list(cache.directory.iterdir())) == 1


def test_a_symlinked_entry_is_ignored(cache: CompileCache, tmp_path: Path) -> None:
    key = cache.key(["k"])
    cache.store(key, "v")
    real = tmp_path / "elsewhere.entry"
    _entry(cache).rename(real)
    (cache.directory / f"{key}.entry").symlink_to(real)
    assert cache.load(key) is None


def test_an_unwritable_directory_means_no_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = CompileCache(blocker / "compiled")
    cache.store("k", "v")  # no error: the run goes on uncached
    assert cache.load("k") is None


def test_old_entries_are_pruned(cache: CompileCache, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_compile_cache, "_MAX_ENTRIES", 3)
    keys = [cache.key([str(i)]) for i in range(5)]
    for i, key in enumerate(keys):
        cache.store(key, i)
        os.utime(cache.directory / f"{key}.entry", ns=(i * 10**9, i * 10**9))
    assert sorted(p.stem for p in cache.directory.iterdir()) == sorted(keys[2:])


def test_concurrent_writers_and_readers_see_whole_entries(cache: CompileCache) -> None:
    key = cache.key(["shared"])
    value = ["x" * 50_000, list(range(2_000))]
    seen: list[object] = []

    def work() -> None:
        for _ in range(30):
            cache.store(key, value)
            seen.append(cache.load(key))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen and all(v == value for v in seen)
    assert [p.name for p in cache.directory.iterdir()] == [f"{key}.entry"]  # no temp files left


def test_for_user_follows_xdg() -> None:
    assert CompileCache.for_user({"XDG_CACHE_HOME": "/x"}).directory == Path("/x/trustgate/compiled")
    assert CompileCache.for_user({}).directory == Path.home() / ".cache" / "trustgate" / "compiled"


def _findings(policy: rego.RegoPolicy) -> list[str]:
    obj = {"spec": {"containers": [{"image": "docker.io/x"}, {"image": "registry.example.com/y"}]}}
    return sorted(f.message for f in policy.evaluator().evaluate(obj))


def test_rewritten_policies_are_cached_and_a_damaged_entry_rebuilt(cache: CompileCache) -> None:
    modules = [rego.Module("p.rego", _POLICY)]
    _compile_cache.use(None)
    uncached = rego.RegoPolicy(modules)
    expected = _findings(uncached)
    assert expected == ["image docker.io/x is not from the registry"]

    _compile_cache.use(cache)
    _normalise.normalise.cache_clear()
    first = rego.RegoPolicy(modules)
    assert len(list(cache.directory.iterdir())) == 2  # the rewritten text, the rule summary
    _normalise.normalise.cache_clear()
    second = rego.RegoPolicy(modules)  # from the cache
    for policy in (first, second):
        assert _findings(policy) == expected
        assert policy.rules == uncached.rules
        assert policy.package_files == uncached.package_files

    for entry in cache.directory.iterdir():  # break both: half an entry
        entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    _normalise.normalise.cache_clear()
    rebuilt = rego.RegoPolicy(modules)
    assert _findings(rebuilt) == expected
    assert rebuilt.rules == uncached.rules
    assert all(cache.load_bytes(p.stem) is not None for p in cache.directory.iterdir())  # written again


def test_an_edited_policy_misses_the_cache(cache: CompileCache) -> None:
    rego.RegoPolicy([rego.Module("p.rego", _POLICY)])
    edited = _POLICY.replace("registry.example.com/", "docker.io/")
    _normalise.normalise.cache_clear()
    policy = rego.RegoPolicy([rego.Module("p.rego", edited)])
    assert _findings(policy) == ["image registry.example.com/y is not from the registry"]


def test_data_over_a_rule_is_refused_from_a_cached_summary(cache: CompileCache) -> None:
    modules = [rego.Module("p.rego", _POLICY)]
    rego.RegoPolicy(modules)  # fills the cache
    _normalise.normalise.cache_clear()
    with pytest.raises(rego.PolicyError, match=r"conflicts with rule `data\.main\.deny`"):
        rego.RegoPolicy(modules, data={"main": {"deny": []}})


def test_a_cached_kubernetes_schema_validates_alike(cache: CompileCache) -> None:
    bad = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"replicas": "3", "replica": 2, "selector": {}, "template": {}},
    }

    def violations() -> list[tuple[str, str]]:
        validator = schema.SchemaSet(version="1.33", strict=True)
        return sorted((v.rule, v.message) for v in validator.validate(bad))

    _compile_cache.use(None)
    expected = violations()
    assert {r for r, _ in expected} == {"schema-invalid", "schema-unknown-field"}
    _compile_cache.use(cache)
    assert violations() == expected  # builds and stores
    assert violations() == expected  # from the cache
    _entry(cache).write_bytes(b"trustgate-compile-cache 1 garbage\n{}")
    assert violations() == expected  # a damaged entry: built again


def test_threads_making_the_secret_at_once_all_get_the_same_whole_secret(tmp_path: Path) -> None:
    """The first runs on a machine race to make the secret: none may read it half written (which
    would turn its cache off, or worse, key it on a prefix)."""
    for attempt in range(20):
        path = tmp_path / str(attempt) / "compile-cache.key"
        got: list[bytes] = []
        start = threading.Barrier(8)

        def make(path: Path = path, got: list[bytes] = got, start: threading.Barrier = start) -> None:
            start.wait()
            got.append(_compile_cache._read_or_make_secret(path))

        threads = [threading.Thread(target=make) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(got)) == 1 and len(got[0]) == 32, got
        assert path.read_bytes() == got[0] and (path.stat().st_mode & 0o777) == 0o600
        assert [p.name for p in path.parent.iterdir()] == ["compile-cache.key"]  # no temp file left


def test_a_cached_rewrite_still_gets_the_go_functions_it_calls(cache: CompileCache) -> None:
    """An engine registers the Python functions (Go's semantics) that the rewritten modules name,
    whether the rewrite was made now or read from the cache: OPA's answers either way."""
    modules = [
        rego.Module(
            "p.rego",
            "package main\nimport rego.v1\n\n"
            'deny contains "a digit" if regex.match(input.p, input.v)\n'
            'deny contains msg if msg := sprintf("%d", [input.n])\n',
        )
    ]
    # Go's \d is ASCII (regorus': any Unicode digit); Go prints 2.5 for %d as %!d(float64=2.5).
    obj = {"p": "^\\d$", "v": "\u0663", "n": 2.5}
    for _ in range(2):  # rewritten, then from the cache
        _normalise.normalise.cache_clear()
        messages = sorted(f.message for f in rego.RegoPolicy(modules).evaluator().evaluate(obj))
        assert messages == ["%!d(float64=2.5)"]
        assert len(list(cache.directory.iterdir())) == 2
    found = rego.RegoPolicy(modules).evaluator().evaluate({**obj, "v": "7", "n": 3})
    assert sorted(f.message for f in found) == ["3", "a digit"]
