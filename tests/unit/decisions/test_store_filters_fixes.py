"""`--image` finds an image however its reference is written, a sha512 digest by any prefix, and
`--until` in every date-only ISO form takes in the whole day; on real SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from decision_records import MakeRecord

from trustgate.decisions.chain import Verifier
from trustgate.decisions.log import DecisionLog, open_store
from trustgate.decisions.store import _CASED_INDEX, Filters, hub_spellings, parse_time
from trustgate.errors import DecisionLogError

SHA512 = "sha512:" + "a4abd4448c49562d828115d13a1fccea927f52b4d5459297f8b43e42da89238b" * 2

# The same image as three decisions recorded it (the image rules read them as one), and others.
REFERENCES = {
    1: "nginx:1.25",
    2: "docker.io/library/nginx:1.25",
    3: "index.docker.io/library/nginx:1.25",
    4: "registry-1.docker.io/nginx:1.25",
    5: "nginx:1.26",
    6: "acme/app:1",
    7: "docker.io/acme/app:1",
    8: "ghcr.io/library/nginx:1.25",
    9: "nginxinc/nginx-unprivileged:1",
}


def _ids(url: str, **filters: object) -> set[int]:
    store = open_store(url)
    try:
        return {e.record()["n"] for e in store.query(Filters(**filters))}  # type: ignore[arg-type]
    finally:
        store.close()


def _image(n: int, reference: str, digest: str | None = None) -> dict[str, object]:
    return {"reference": reference, **({"digest": digest} if digest else {}), "source": "manifest"}


def test_an_image_is_found_however_its_reference_is_written(store_url: str, make_record: MakeRecord) -> None:
    with DecisionLog.open(store_url) as log:
        for n, reference in REFERENCES.items():
            log.append(make_record(n, subject={"objects": [], "images": [_image(n, reference)]}))
    nginx = {1, 2, 3, 4}
    for spelled in (
        "nginx:1.25",
        "library/nginx:1.25",
        "docker.io/library/nginx:1.25",
        "docker.io/nginx:1.25",
        "index.docker.io/library/nginx:1.25",
        "registry-1.docker.io/library/nginx:1.25",
    ):
        assert _ids(store_url, images=(spelled,)) == nginx, spelled
    assert _ids(store_url, images=("nginx*",)) == {*nginx, 5, 9}  # as the bare prefix always did
    # A name with its registry matches by the name the image rules read: no Hub user's `nginxinc/...`.
    assert _ids(store_url, images=("docker.io/library/nginx*",)) == {*nginx, 5}
    assert _ids(store_url, images=("docker.io/library/nginx:*",)) == {*nginx, 5}
    assert _ids(store_url, images=("acme/app:1",)) == {6, 7}
    assert _ids(store_url, images=("docker.io/acme/app:1",)) == {6, 7}
    assert _ids(store_url, images=("ghcr.io/library/nginx:1.25",)) == {8}  # another registry: as written
    assert _ids(store_url, images=("docker.io/library/*",)) == {*nginx, 5}  # every official image
    # The UI's page lookups: a window of positions, and probed for a leading filter's positions.
    assert _ids(store_url, images=("nginx:1.25",), above=1, below=4) == {2, 3}
    assert _ids(store_url, images=("nginx:1.25",), verdicts=("allow", "deny"), lead=0) == nginx
    assert _ids(store_url, images=("nginx*",), probe=True, above=0, below=6) == {*nginx, 5}


def test_the_spellings_of_a_docker_hub_reference() -> None:
    assert set(hub_spellings("nginx:1.25")) == {
        f"{host}{path}nginx:1.25"
        for host in ("", "docker.io/", "index.docker.io/", "registry-1.docker.io/")
        for path in ("", "library/")
    }
    assert hub_spellings("ghcr.io/a/b:1") == ["ghcr.io/a/b:1"]
    assert hub_spellings("localhost:5000/a:1") == ["localhost:5000/a:1"]
    assert "" not in hub_spellings("docker.io/", prefix=True)
    assert "docker.io/" not in hub_spellings("docker.io/library/", prefix=True)


def test_a_sha512_digest_is_found_by_any_prefix(store_url: str, make_record: MakeRecord) -> None:
    with DecisionLog.open(store_url) as log:
        image = _image(1, "registry.example/app@" + SHA512, SHA512)
        log.append(make_record(1, subject={"objects": [], "images": [image]}))
        log.append(make_record(2))
    for digits in (12, 40, 63, 64, 65, 100, 127, 128):
        assert _ids(store_url, images=(SHA512[: 7 + digits],)) == {1}, digits
    assert _ids(store_url, images=(SHA512 + "0",)) == set()  # longer than a sha512: no digest


@pytest.mark.parametrize("day", ["2026-12-07", "20261207", "2026-W50-1", "2026W501"])
def test_a_date_alone_in_any_iso_form_is_the_whole_day(day: str) -> None:
    assert parse_time(day) == "2026-12-07T00:00:00.000000Z"
    assert parse_time(day, end=True) == "2026-12-08T00:00:00.000000Z"


@pytest.mark.parametrize("week", ["2026-W50", "2026W50"])
def test_a_week_without_a_day_is_refused_with_a_clear_message(week: str) -> None:
    with pytest.raises(DecisionLogError, match="a week, not a day"):
        parse_time(week, end=True)


# What the reviewer's log held: Docker Hub images written every way, and others whose written form
# starts like them.
TRAPS = {
    1: "nginx:1.25",
    2: "docker.io/library/nginx:1.25",
    3: "nginx.evil.example/x:1",
    4: "nginxinc/nginx-unprivileged:1",
    5: "index.docker.io/acme/app:1",
    6: "acme/app:1",
    7: "acme.jfrog.io/app:1",
    8: "nginx:5000/app:1",
    9: "registry-1.docker.io/acme/app:2",
    10: "docker.io:443/library/nginx:1.25",
    11: "registry-1.docker.io:0443/nginx:1.25",
    12: "registry.example:0443/team/app:1",
}


def test_an_image_filter_matches_the_name_the_image_rules_read(
    store_url: str, make_record: MakeRecord
) -> None:
    with DecisionLog.open(store_url) as log:
        for n, reference in TRAPS.items():
            log.append(make_record(n, subject={"objects": [], "images": [_image(n, reference)]}))
    nginx = {1, 2, 10, 11}
    assert _ids(store_url, images=("docker.io/library/nginx*",)) == nginx
    assert _ids(store_url, images=("docker.io/acme*",)) == {5, 6, 9}
    assert _ids(store_url, images=("docker.io/*",)) == {1, 2, 4, 5, 6, 9, 10, 11}
    assert _ids(store_url, images=("nginx:1.25",)) == nginx
    assert _ids(store_url, images=("docker.io:443/library/nginx:1.25",)) == nginx
    assert _ids(store_url, images=("registry.example/team/app:1",)) == {12}
    assert _ids(store_url, images=("registry.example:443/team/*",)) == {12}
    assert _ids(store_url, images=("nginx:5000/*",)) == {8}
    assert _ids(store_url, images=("no-such-image:1",)) == set()
    assert _ids(store_url, images=("nginx:1.25",), above=1, below=11) == {2, 10}
    assert _ids(store_url, images=("docker.io/*",), probe=True, above=0, below=7) == {1, 2, 4, 5, 6}
    store = open_store(store_url)
    try:  # a limit and a count count the matching records only
        newest = [e.record()["n"] for e in store.query(Filters(images=("nginx:1.25",)), limit=2)]
        assert newest == [11, 10]
        assert store.count(Filters(images=("docker.io/acme*",))) == 3
    finally:
        store.close()


def test_the_ui_pages_an_image_filter_by_the_records_it_keeps(
    store_url: str, make_record: MakeRecord
) -> None:
    from trustgate.ui import query

    with DecisionLog.open(store_url) as log:
        for n, reference in TRAPS.items():
            log.append(make_record(n, subject={"objects": [], "images": [_image(n, reference)]}))
    store = open_store(store_url)
    try:
        asked = query.parse_query([("image", "docker.io/library/nginx*")])
        first = query.page(store, asked, before=None, after=None, limit=2)
        assert [e.record()["n"] for e in first.entries] == [11, 10] and first.older is not None
        second = query.page(store, asked, before=first.older, after=None, limit=2)
        assert [e.record()["n"] for e in second.entries] == [2, 1] and second.older is None
        everything = query.matching(store, Filters(images=("docker.io/acme*",)))
        assert sorted(e.record()["n"] for e in everything) == [5, 6, 9]
    finally:
        store.close()


@pytest.mark.parametrize(
    ("week", "hint"),
    [
        ("2026-W49", "name a day of it (2026-W49-1) or use 2026-11-30"),
        ("2026w49", "name a day of it (2026-W49-1) or use 2026-11-30"),
        ("2026-w49", "name a day of it (2026-W49-1) or use 2026-11-30"),
        ("2025-W05", "name a day of it (2025-W05-1) or use 2025-01-27"),
    ],
)
def test_a_weeks_refusal_names_a_day_of_that_week(week: str, hint: str) -> None:
    with pytest.raises(DecisionLogError, match="a week, not a day") as caught:
        parse_time(week)
    assert caught.value.hint == hint


@pytest.mark.parametrize("day", ["2026-w50-1", "2026w501"])
def test_a_lower_case_week_day_is_that_day(day: str) -> None:
    assert parse_time(day) == "2026-12-07T00:00:00.000000Z"


def test_a_digest_is_found_whatever_the_case_of_its_hex(store_url: str, make_record: MakeRecord) -> None:
    with DecisionLog.open(store_url) as log:
        image = _image(1, "registry.example/app@" + SHA512, SHA512)
        log.append(make_record(1, subject={"objects": [], "images": [image]}))
    assert _ids(store_url, images=(SHA512[:20].upper(),)) == {1}
    assert _ids(store_url, images=("SHA512:" + SHA512[7:].upper(),)) == {1}


def test_an_image_filter_that_resolves_to_many_references_is_one_query(
    sqlite_url: str, make_record: MakeRecord
) -> None:
    """Docker Hub references sorted between another registry's, one of each: hundreds of runs."""
    with DecisionLog.open(sqlite_url) as log:
        for n in range(1, 1201):
            reference = f"aaa{n:04d}/app:1" if n % 2 else f"aaa{n:04d}.example/app:1"
            log.append(make_record(n, subject={"objects": [], "images": [_image(n, reference)]}))
    hub = {n for n in range(1, 1201) if n % 2}
    assert _ids(sqlite_url, images=("docker.io/*",)) == hub
    assert _ids(sqlite_url, images=("docker.io/*",), probe=True, above=0, below=101) == {
        n for n in hub if n < 101
    }
    store = open_store(sqlite_url)
    try:
        assert store.count(Filters(images=("docker.io/*", "aaa0002.example/*"))) == 601
    finally:
        store.close()


def test_an_image_filter_of_more_runs_than_sqlite_nests_is_answered(
    store_url: str, make_record: MakeRecord
) -> None:
    """Two Docker Hub references, then another registry's, in sort order, 600 times: 600 runs of two,
    each a range. One Pod naming such images made every search for Docker Hub images fail on SQLite
    ("Expression tree is too large") once the ORs of the runs were one flat chain."""
    hub = [f"aaa{n:04d}{part}/app:1" for n in range(600) for part in "ab"]
    other = [f"aaa{n:04d}c.example/app:1" for n in range(600)]
    with DecisionLog.open(store_url) as log:
        log.append(make_record(1, subject={"objects": [], "images": [_image(1, r) for r in hub]}))
        log.append(make_record(2, subject={"objects": [], "images": [_image(2, r) for r in other]}))
    assert _ids(store_url, images=("docker.io/*",)) == {1}
    assert _ids(store_url, images=("docker.io/*",), probe=True, above=0, below=3) == {1}
    assert _ids(store_url, images=("aaa0007c.example/*",)) == {2}


def test_an_image_of_a_registry_whose_address_is_spelled_otherwise_is_found_under_the_address(
    store_url: str, make_record: MakeRecord
) -> None:
    """`[::ffff:7f00:1]:5000` and `127.1:5000` are 127.0.0.1:5000 (the image is refused, and the
    decision recorded):
    whoever looks for what was tried against the registry finds it however its address was written."""
    written = {
        1: "127.0.0.1:5000/prod/api:v1",
        2: "[::ffff:7f00:1]:5000/prod/api:v1",
        3: "[0:0:0:0:0:FFFF:7F00:1]:5000/prod/api:v1",
        4: "[::ffff:127.0.0.1]:5000/prod/db:v1",
        5: "[::ffff:7f00:2]:5000/prod/api:v1",
        6: "[::1]:5000/prod/api:v1",
        7: "127.0.0.1:5001/prod/api:v1",
        8: "127.1:5000/prod/api:v1",
        9: "2130706433:5000/prod/api:v1",
        10: "10.0.0.1:5000/prod/api:v1",
    }
    with DecisionLog.open(store_url) as log:
        for n, reference in written.items():
            log.append(make_record(n, subject={"objects": [], "images": [_image(n, reference)]}))
    assert _ids(store_url, images=("127.0.0.1:5000/prod/api:v1",)) == {1, 2, 3, 8, 9}
    assert _ids(store_url, images=("127.0.0.1:5000/*",)) == {1, 2, 3, 4, 8, 9}
    assert _ids(store_url, images=("127.0.0.1:5000/prod/*",)) == {1, 2, 3, 4, 8, 9}
    assert _ids(store_url, images=("[::ffff:7f00:1]:5000/prod/api:v1",)) == {1, 2, 3, 8, 9}
    assert _ids(store_url, images=("127.1:5000/prod/api:v1",)) == {1, 2, 3, 8, 9}
    assert _ids(store_url, images=("10.0.0.1:5000/*",)) == {10}
    assert _ids(store_url, images=("127.0.0.2:5000/*",)) == {5}
    assert _ids(store_url, images=("[0::1]:5000/prod/api:v1",)) == {6}


def test_an_image_of_a_registry_written_as_an_ipv6_address_embedding_an_ipv4_one_is_found_under_it(
    store_url: str, make_record: MakeRecord
) -> None:
    """NAT64 (`64:ff9b::/96`, `64:ff9b:1::/48`), IPv4-compatible (`::a.b.c.d`) and 6to4 addresses
    reach 10.0.0.5 (the image is refused, and the decision recorded): a query for the IPv4
    registry finds what was tried through them, and a query written with one finds the rest."""
    written = {
        1: "10.0.0.5:5000/prod/api:v1",
        2: "[64:ff9b::a00:5]:5000/prod/api:v1",
        3: "[64:FF9B::10.0.0.5]:5000/prod/api:v1",
        4: "[64:ff9b:1::a00:5]:5000/prod/api:v1",
        5: "[::a00:5]:5000/prod/api:v1",
        6: "[2002:a00:5::1]:5000/prod/api:v1",
        7: "[64:ff9b::a00:6]:5000/prod/api:v1",
        8: "[fd00::a00:5]:5000/prod/api:v1",
        9: "[::1]:5000/prod/api:v1",
    }
    with DecisionLog.open(store_url) as log:
        for n, reference in written.items():
            log.append(make_record(n, subject={"objects": [], "images": [_image(n, reference)]}))
    assert _ids(store_url, images=("10.0.0.5:5000/prod/api:v1",)) == {1, 2, 3, 4, 5, 6}
    assert _ids(store_url, images=("10.0.0.5:5000/*",)) == {1, 2, 3, 4, 5, 6}
    assert _ids(store_url, images=("[64:ff9b::a00:5]:5000/prod/api:v1",)) == {1, 2, 3, 4, 5, 6}
    assert _ids(store_url, images=("10.0.0.6:5000/*",)) == {7}
    assert _ids(store_url, images=("[fd00::a00:5]:5000/*",)) == {8}
    assert _ids(store_url, images=("[::1]:5000/prod/api:v1",)) == {9}


def test_a_numeric_docker_hub_user_is_found_as_docker_hubs_not_as_an_address(
    store_url: str, make_record: MakeRecord
) -> None:
    """`31337/miner` is Docker Hub's user 31337 (a first part without a dot, a port or an upper-case
    letter is no registry), not 0.0.122.105: it is found with Docker Hub's images."""
    written = {
        1: "31337/miner:1",
        2: "docker.io/31337/miner:1",
        3: "0xdead/tool:1",
        4: "docker.io/0xdead/tool:1",
        5: "0.0.122.105/miner:1",
        6: "nginx:1",
    }
    with DecisionLog.open(store_url) as log:
        for n, reference in written.items():
            log.append(make_record(n, subject={"objects": [], "images": [_image(n, reference)]}))
    assert _ids(store_url, images=("docker.io/31337/*",)) == {1, 2}
    assert _ids(store_url, images=("31337/miner:1",)) == {1, 2}
    assert _ids(store_url, images=("docker.io/31337/miner:1",)) == {1, 2}
    assert _ids(store_url, images=("docker.io/0xdead/*",)) == {3, 4}
    assert _ids(store_url, images=("0.0.122.105/*",)) == {5}
    assert _ids(store_url, images=("docker.io/*",)) == {1, 2, 3, 4, 6}


def test_a_registry_host_is_found_in_any_case(store_url: str, make_record: MakeRecord) -> None:
    """A host is case-insensitive (`REGISTRY.EXAMPLE.COM/app` is `registry.example.com/app`, and
    `INTERNAL/app` is host internal's): a query in any case finds each spelling the log holds."""
    written = {
        1: "registry.example.com/app:1",
        2: "REGISTRY.EXAMPLE.COM/app:1",
        3: "Registry.Example.Com:443/app:1",
        4: "rEGISTRY.example.com/db:2",
        5: "registry.example.org/app:1",
        6: "INTERNAL/app:1",
        7: "internal/app:1",  # Docker Hub's user internal
        8: "Internal:443/app:2",
    }
    with DecisionLog.open(store_url) as log:
        for n, reference in written.items():
            log.append(make_record(n, subject={"objects": [], "images": [_image(n, reference)]}))
    assert _ids(store_url, images=("registry.example.com/*",)) == {1, 2, 3, 4}
    assert _ids(store_url, images=("REGISTRY.EXAMPLE.COM/*",)) == {1, 2, 3, 4}
    assert _ids(store_url, images=("registry.example.com/app:1",)) == {1, 2, 3}
    assert _ids(store_url, images=("Registry.Example.Com/app*",)) == {1, 2, 3}
    assert _ids(store_url, images=("INTERNAL/*",)) == {6, 8}
    assert _ids(store_url, images=("internal:443/app:1",)) == {6}
    assert _ids(store_url, images=("internal/*",)) == {7}
    assert _ids(store_url, images=("docker.io/internal/*",)) == {7}


def test_a_bare_prefix_finds_a_registry_host_in_any_case(store_url: str, make_record: MakeRecord) -> None:
    """`registry*` (no `/`) is the start of what was written, and of a registry's host in any case:
    `REGISTRY.EXAMPLE:5000/app` is host registry.example:5000's, as the image rules read it."""
    written = {
        1: "registry.example:5000/app:1",
        2: "REGISTRY.EXAMPLE:5000/app:1",
        3: "Registry.Example:5000/db:2",
        4: "registry-mirror/app:1",  # Docker Hub's user registry-mirror: starts so as written
        5: "ghcr.io/registry/app:1",
        6: "REGISTRYX/app:1",  # host registryx (an upper-case letter names a registry)
        7: "nginx:1.25",
    }
    with DecisionLog.open(store_url) as log:
        for n, reference in written.items():
            log.append(make_record(n, subject={"objects": [], "images": [_image(n, reference)]}))
    assert _ids(store_url, images=("registry*",)) == {1, 2, 3, 4, 6}
    assert _ids(store_url, images=("registry.example*",)) == {1, 2, 3}
    assert _ids(store_url, images=("Registry.Example:5000*",)) == {1, 2, 3}
    assert _ids(store_url, images=("REGISTRY*",)) == {2, 1, 3, 6}
    assert _ids(store_url, images=("registry.example:5000/app*",)) == {1, 2}
    # The UI's page lookups read the same references.
    assert _ids(store_url, images=("registry*",), above=1, below=4) == {2, 3}
    assert _ids(store_url, images=("registry*",), verdicts=("allow", "deny"), lead=0) == {1, 2, 3, 4, 6}


def _cased(host: str, pattern: int) -> str:
    """`host` with its letters whose bit is set in `pattern` in upper case: one spelling a number."""
    letters = [i for i, c in enumerate(host) if c.isalpha()]
    return "".join(
        c.upper() if i in letters and pattern >> letters.index(i) & 1 else c for i, c in enumerate(host)
    )


@pytest.mark.parametrize(
    "wanted", ["registry.example.com/*", "registry*", "registry.example.com/app:1", "REGISTRY.EXAMPLE.COM/*"]
)
def test_the_statements_of_an_image_query_do_not_grow_with_the_cases_of_its_host(
    tmp_path: Path, make_record: MakeRecord, wanted: str
) -> None:
    """Each case of a host the log holds added about 13 statements to every `--image` query of it;
    the statements now depend on the query alone (SQLite's trace of what one query runs)."""
    host = "registry.example.com"
    counts, found = [], []
    for spellings in (1, 60):
        url = f"sqlite:///{tmp_path / f'{spellings}.db'}"
        references = {n: f"{_cased(host, n - 1)}/app:1" for n in range(1, spellings + 1)}
        assert len(set(references.values())) == spellings
        with DecisionLog.open(url) as log:
            for n, reference in references.items():
                log.append(make_record(n, subject={"objects": [], "images": [_image(n, reference)]}))
        store = open_store(url)
        statements: list[str] = []
        try:
            store._conn.set_trace_callback(statements.append)  # type: ignore[attr-defined]
            found.append({e.record()["n"] for e in store.query(Filters(images=(wanted,)))})
        finally:
            store.close()
        counts.append(len(statements))
        assert found[-1] == set(references), wanted
    assert counts[0] == counts[1], f"{counts[0]} statements with one spelling, {counts[1]} with 60"


def test_a_prefix_of_the_official_images_user_finds_them_however_written(
    store_url: str, make_record: MakeRecord
) -> None:
    """`docker.io/li*` (and a bare `lib*`) asks for Docker Hub's users starting so, `library` among
    them: every official image. Those written without `library/` (`nginx:1`, `docker.io/app:1`) were
    not read, so a query missed them while `docker.io/library*` found them."""
    written = {
        1: "nginx:1",
        2: "docker.io/app:1",
        3: "index.docker.io/nginx:2",
        4: "library/redis:3",
        5: "lizard/app:1",  # Hub user lizard's
        6: "ghcr.io/library/x:1",
        7: "libfoo.example/x:1",  # a registry's
        8: "acme/app:1",
    }
    with DecisionLog.open(store_url) as log:
        for n, reference in written.items():
            log.append(make_record(n, subject={"objects": [], "images": [_image(n, reference)]}))
    official = {1, 2, 3, 4}
    assert _ids(store_url, images=("docker.io/library*",)) == official
    for wanted in ("docker.io/li*", "index.docker.io/l*"):
        assert _ids(store_url, images=(wanted,)) == {*official, 5}, wanted
    assert _ids(store_url, images=("li*",)) == {*official, 5, 7}  # and what was written starting so
    assert _ids(store_url, images=("registry-1.docker.io/libr*",)) == official
    assert _ids(store_url, images=("lib*",)) == {*official, 7}  # and what was written starting so
    assert _ids(store_url, images=("docker.io/lib*",), verdicts=("allow", "deny"), lead=0) == official
    assert _ids(store_url, images=("docker.io/lo*",)) == set()


def _store_verify(url: str) -> list[str]:
    """The problems `log verify` reports (`SqlStore.verify`), as messages."""
    store = open_store(url, create=False)
    try:
        with store.snapshot():
            report = store.verify(Verifier(checkpoints=store.checkpoints(), public_key=None))
    finally:
        store.close()
    return [p.message for p in report.problems]


def test_a_dropped_index_fails_verify_naming_the_statement_that_recreates_it(
    store_url: str, make_record: MakeRecord
) -> None:
    """Whoever can write the database dropped `terms_image_cased`: no record is hidden, yet every
    `--image` query then reads the terms once per reference written in upper case (on a large log it
    never ends), and `log verify` said intact."""
    with DecisionLog.open(store_url) as log:
        for n, reference in {1: "REGISTRY.example/app:1", 2: "registry.example/app:2"}.items():
            log.append(make_record(n, subject={"objects": [], "images": [_image(n, reference)]}))
    assert _store_verify(store_url) == []
    store = open_store(store_url)
    try:
        with store._write():
            store._execute("DROP INDEX terms_image_cased")
            store._execute("DROP INDEX terms_lookup")
    finally:
        store.close()
    assert _ids(store_url, images=("registry.example/*",)) == {1, 2}  # slower, not wrong
    problems = _store_verify(store_url)
    assert len(problems) == 2, problems
    assert problems[0].startswith("the index terms_image_cased of table terms is missing")
    assert problems[0].endswith(f"`{' '.join(_CASED_INDEX.split())}`")
    assert problems[1].startswith("the index terms_lookup of table terms is missing")
    store = open_store(store_url)
    try:
        with store._write():  # as the message says
            for problem in problems:
                store._execute(problem.rpartition("`CREATE")[2].rstrip("`").join(("CREATE", "")))
    finally:
        store.close()
    assert _store_verify(store_url) == []


def test_every_index_the_migrations_create_is_one_verify_looks_for() -> None:
    # `log verify` reports an index the migrations created that is gone: it must find every one of
    # them in the migrations' statements, however a statement is written.
    from trustgate.decisions.store import MIGRATIONS, created_index

    for dialect in ("sqlite", "postgresql"):
        statements = [s for m in MIGRATIONS for s in getattr(m, dialect)]
        indexes = [s for s in statements if " INDEX " in " ".join(s.upper().split()) + " "]
        assert indexes, dialect
        assert all(created_index(s) is not None for s in indexes), dialect
    assert created_index("CREATE INDEX terms_lookup ON terms (kind, value, seq)") == ("terms_lookup", "terms")
    assert created_index("create unique index if not exists a_b on t (x)") == ("a_b", "t")
    assert created_index("CREATE\n  INDEX CONCURRENTLY x ON ONLY t (y)") == ("x", "t")
    assert created_index("CREATE TABLE terms (seq INTEGER)") is None
