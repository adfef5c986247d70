"""Where decision records live: one interface, SQLite or PostgreSQL, chosen by URL.

Owns: the `Store` interface, URL parsing (`open_store`), the tables and their
versioned migrations, appending a batch under the chain lock, queries with
the auditors' filters, statistics, streaming reads for export and verify,
and pruning behind a prune checkpoint. The SQL is shared; `sqlite.py` and
`postgres.py` add connections, locking and error translation. Leaves out:
batching and signing (`log.py`) and what records mean (`record.py`).

Tables (schema version 1):

- `decisions(seq, id, time, gate, verdict, record, prev, hash)`: one row per
  record; `seq` is the chain position; `record` the RFC 8785 bytes.
- `terms(seq, kind, value)`: the query index (`record.index_terms`), stored
  in chain order (appends go to the end) with a (kind, value, seq) index.
- `checkpoints(...)`: signed chain heads (`chain.Checkpoint`).
- `chain_head(chain, seq, hash)`: the head appends continue from; its row is
  the lock that serializes writers.
- `schema_migrations(version, description, applied_at)`.

Schema version 2 adds the RFC 6962 Merkle tree over the records (see
docs/adr/0009):

- `tree_nodes(level, idx, hash)`: the hash of every complete subtree (level
  0: the leaves, SHA-256(0x00 ‖ record bytes)); an append adds one leaf and
  the subtrees it completes, so it costs O(log n); roots and proofs read
  O(log n) rows. Pruning keeps this table: checkpoints taken before a prune
  stay provable.
- `checkpoints.note`: the C2SP signed checkpoint of the tree.

Schema version 3 adds summaries for the auditor's UI, kept by every append
in its transaction (`summary.py`): `daily_counts`, `daily_seqs`,
`exception_terms` (the `exception` filter's index) and `exceptions_seen`; and indexes on
`decisions (verdict, seq)`, `decisions (gate, verdict, seq)` and `checkpoints (seq)`.

Schema version 4 adds `terms_image_cased`: the image terms written with an upper-case letter, by
their lower-case form (`--image` reads every case of a host through it; `_CASED_INDEX`).
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import ipaddress
import json
import re
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from trustgate.decisions import merkle
from trustgate.decisions.canonical import timestamp
from trustgate.decisions.chain import (
    GENESIS,
    RETYPED,
    Checkpoint,
    Entry,
    Problem,
    Report,
    Row,
    StoredTree,
    Verifier,
    entry_hash,
    shown_id,
    stored_type,
)
from trustgate.decisions.summary import (
    MIGRATION_POSTGRESQL,
    MIGRATION_SQLITE,
    Summaries,
    Summary,
    SummaryCheck,
    term_match,
)
from trustgate.errors import DecisionLogError, DecisionLogMissingError
from trustgate.errors import (
    InconsistentLogError as InconsistentLogError,
)  # raised here: readers import it from here
from trustgate.model import names_registry
from trustgate.oci.reference import (
    DOCKER_HUB,
    DOCKER_HUB_API,
    InvalidReferenceError,
    Reference,
    canonical_name,
    ipv4_unmapped,
)

SCHEMA_VERSION = 4
MAX_SEQ = 2**63 - 1  # BIGINT, the chain position's type in PostgreSQL (SQLite's INTEGER holds as much)
PRUNED_LEAF = merkle.leaf_hash(b"")  # leaves of records pruned before the tree existed (schema 1)
_TOP = "\U0010ffff"  # sorts after every other character, bytewise and by code point


@dataclass(frozen=True, slots=True)
class Prepared:
    """A record encoded and indexed, ready for `Store.append`."""

    id: str
    time: str
    gate: str
    verdict: str
    body: bytes
    terms: tuple[tuple[str, str], ...]


# Schema 4: the image references that hold an upper-case letter (a host written in upper case, rare),
# ordered by their ASCII lower-case form, as both databases' `lower()` gives it (PostgreSQL's under
# collation "C", the column's): `SqlStore.resolved` reads every case of a host in one walk of it,
# however many ways the log wrote that host. An index of the terms table: derived from what is there,
# so migrating computes it for every row written before, and no record changes.
_CASED_INDEX = (
    "CREATE INDEX terms_image_cased ON terms (kind, lower(value), value) "
    "WHERE kind = 'image' AND value <> lower(value)"
)


_CREATE_INDEX = re.compile(
    r"\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(?P<name>\w+)\s+ON\s+(?:ONLY\s+)?(?P<table>\w+)",
    re.IGNORECASE | re.ASCII,
)


def created_index(statement: str) -> tuple[str, str] | None:
    """(index, table) of a migration's `CREATE [UNIQUE] INDEX [IF NOT EXISTS] name ON table ...`
    statement, whatever its case and spacing; None for any other statement."""
    found = _CREATE_INDEX.match(statement)
    return (found["name"], found["table"]) if found else None


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "decisions, query index, checkpoints, chain head",
        sqlite=(
            """CREATE TABLE decisions (
                seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, time TEXT NOT NULL,
                gate TEXT NOT NULL, verdict TEXT NOT NULL, record BLOB NOT NULL,
                prev TEXT NOT NULL, hash TEXT NOT NULL)""",
            "CREATE INDEX decisions_time ON decisions (time)",
            """CREATE TABLE terms (seq INTEGER NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
                PRIMARY KEY (seq, kind, value)) WITHOUT ROWID""",
            "CREATE INDEX terms_lookup ON terms (kind, value, seq)",
            """CREATE TABLE checkpoints (
                n INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL, hash TEXT NOT NULL,
                time TEXT NOT NULL, kind TEXT NOT NULL, key_id TEXT NOT NULL,
                public_key TEXT NOT NULL, signature TEXT NOT NULL)""",
            "CREATE TABLE chain_head (chain TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL)",
            f"INSERT INTO chain_head VALUES ('main', 0, '{GENESIS}')",
        ),
        postgresql=(
            """CREATE TABLE decisions (
                seq BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE, time TEXT COLLATE "C" NOT NULL,
                gate TEXT NOT NULL, verdict TEXT NOT NULL, record BYTEA NOT NULL,
                prev TEXT NOT NULL, hash TEXT NOT NULL)""",
            "CREATE INDEX decisions_time ON decisions (time)",
            """CREATE TABLE terms (seq BIGINT NOT NULL, kind TEXT COLLATE "C" NOT NULL,
                value TEXT COLLATE "C" NOT NULL, PRIMARY KEY (seq, kind, value))""",
            "CREATE INDEX terms_lookup ON terms (kind, value, seq)",
            """CREATE TABLE checkpoints (
                n BIGSERIAL PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL,
                time TEXT NOT NULL, kind TEXT NOT NULL, key_id TEXT NOT NULL,
                public_key TEXT NOT NULL, signature TEXT NOT NULL)""",
            "CREATE TABLE chain_head (chain TEXT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL)",
            f"INSERT INTO chain_head VALUES ('main', 0, '{GENESIS}')",
        ),
    ),
    Migration(
        2,
        "Merkle tree over the records, C2SP checkpoints",
        sqlite=(
            """CREATE TABLE tree_nodes (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,
                PRIMARY KEY (level, idx)) WITHOUT ROWID""",
            "ALTER TABLE checkpoints ADD COLUMN note TEXT NOT NULL DEFAULT ''",
        ),
        postgresql=(
            """CREATE TABLE tree_nodes (level SMALLINT NOT NULL, idx BIGINT NOT NULL, hash BYTEA NOT NULL,
                PRIMARY KEY (level, idx))""",
            "ALTER TABLE checkpoints ADD COLUMN note TEXT NOT NULL DEFAULT ''",
        ),
    ),
    Migration(
        3,
        "summaries for the auditor's UI: daily counts, exception index; verdict, gate, checkpoint indexes",
        sqlite=MIGRATION_SQLITE,
        postgresql=MIGRATION_POSTGRESQL,
    ),
    Migration(
        4,
        "image references written with upper case, by their lower-case form (`--image` in any case)",
        sqlite=(_CASED_INDEX,),
        postgresql=(_CASED_INDEX,),
    ),
)


@dataclass(frozen=True, slots=True)
class Filters:
    """The auditors' filters; several values of one filter match any of them."""

    since: str | None = None  # a timestamp (see `parse_time`), inclusive
    until: str | None = None  # exclusive
    gates: tuple[str, ...] = ()
    verdicts: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    images: tuple[str, ...] = ()  # a reference, `ref*` prefix, or a digest (`sha256:...`, prefix allowed)
    commits: tuple[str, ...] = ()  # full or abbreviated
    trees: tuple[str, ...] = ()  # git tree hashes, full
    rules: tuple[str, ...] = ()
    actors: tuple[str, ...] = ()
    presync_to: tuple[str, ...] = ()  # `scope:pathsTree`, exact (see `record.index_terms`)
    presync_from: tuple[str, ...] = ()  # `scope:commit`, exact
    presync_ref: tuple[str, ...] = ()  # `refScope` (the repository and gated ref), exact
    presync_scope: tuple[str, ...] = ()  # `scope`: records with any `presync-to` of it
    exceptions: tuple[str, ...] = ()  # exception names applied (`name*` prefix), from `exception_terms`
    # Chain positions above / below (exclusive): a keyset page's window, applied inside every index
    # lookup too, so a lookup reads the window's part of the index, not every position a term has.
    above: int | None = None
    below: int | None = None
    # Match prefix terms by probing each position's index entries instead of reading every entry the
    # prefix has: the cheaper way for a narrow window of positions and a prefix many records share.
    probe: bool = False
    # Read the verdict and gate filters' positions from their indexes (when they select few records).
    index_verdicts: bool = False
    # Read only this one of `term_groups()` as a list of positions (the rarest); probe the others.
    lead: int | None = None
    # The stored image references `images` (but its digests) was resolved to by the store
    # (`SqlStore.resolved`), as runs (first, last) of consecutive distinct stored references, all of
    # which match: matched exactly. None: not resolved yet.
    image_values: tuple[tuple[str, str], ...] | None = None

    def term_groups(self) -> list[list[tuple[str, str, bool]]]:
        """The query-index filters: per filter, its alternatives as (kind, value, is a prefix)."""
        groups = [
            [("namespace", *_pattern(v)) for v in self.namespaces],
            self._image_group(),
            [("commit", v.lower(), True) for v in self.commits],
            [("tree", v.lower(), False) for v in self.trees],
            [("rule", *_pattern(v)) for v in self.rules],
            [("actor", *_pattern(v)) for v in self.actors],
            [("presync-to", v.lower(), False) for v in self.presync_to],
            [("presync-from", v.lower(), False) for v in self.presync_from],
            [("presync-ref", v.lower(), False) for v in self.presync_ref],
            [("presync-to", f"{v.lower()}:", True) for v in self.presync_scope],
        ]
        return [g for g in groups if g]

    def _image_group(self) -> list[tuple[str, str, bool]]:
        """The image filter's alternatives: its digests, and the stored references it was resolved to
        (or, unresolved, every spelling of each: `_image_terms`)."""
        if self.image_values is None:
            return [term for v in self.images for term in _image_terms(v)]
        digests = [term for v in self.images if _is_digest(v) for term in _image_terms(v)]
        runs = [
            ("image", lo, False) if lo == hi else ("image", _common(lo, hi), True)
            for lo, hi in self.image_values
        ]
        group = digests + runs  # for the estimates (`terms_upto`); `_conditions` is what is matched
        if self.images and not group:  # resolved to nothing: a value no reference is
            group = [("image", _NO_IMAGE, False)]
        return group

    def _conditions(
        self, alternatives: list[tuple[str, str, bool]], *, column: str
    ) -> list[tuple[str, list[Any]]]:
        """SQL over the terms' kind and value (`column`) for each alternative of one group, and its
        parameters; a resolved image filter's references as IN lists and ranges of its runs."""
        kind_column = column.replace("value", "kind")
        image = alternatives and alternatives[0][0] in ("image", "digest")
        if not image or self.image_values is None:
            out = []
            for kind, value, prefix in alternatives:
                condition, matched = term_match(kind, value, prefix, column=column)
                out.append((f"{kind_column} = ? AND {condition}", [kind, *matched]))
            return out
        out = []
        for kind, value, prefix in (t for v in self.images if _is_digest(v) for t in _image_terms(v)):
            condition, matched = term_match(kind, value, prefix, column=column)
            out.append((f"{kind_column} = ? AND {condition}", [kind, *matched]))
        exact = [lo for lo, hi in self.image_values if lo == hi] or ([] if out else [_NO_IMAGE])
        for at in range(0, len(exact), _IN_LIST):
            chunk = exact[at : at + _IN_LIST]
            out.append(
                (f"{kind_column} = ? AND {column} IN ({', '.join('?' * len(chunk))})", ["image", *chunk])
            )
        for lo, hi in self.image_values:
            if lo != hi:
                out.append((f"{kind_column} = ? AND {column} >= ? AND {column} <= ?", ["image", lo, hi]))
        return out

    def where(self, alias: str = "d") -> tuple[str, list[Any]]:
        """A SQL condition over `decisions AS alias` (with `?` placeholders) and its parameters."""
        parts: list[str] = []
        params: list[Any] = []
        window, window_params = "", []
        for op, bound in ((">", self.above), ("<", self.below)):
            if bound is not None:
                window += f" AND seq {op} ?"
                window_params.append(bound)
        if window:
            parts.append(window[5:].replace("seq", f"{alias}.seq"))
            params.extend(window_params)
        if self.since:
            parts.append(f"{alias}.time >= ?")
            params.append(self.since)
        if self.until:
            parts.append(f"{alias}.time < ?")
            params.append(self.until)
        chosen = [(c, v) for c, v in (("gate", self.gates), ("verdict", self.verdicts)) if v]
        if chosen and window and self.index_verdicts:  # few records: their positions from the index
            conditions = " AND ".join(f"{c} IN ({', '.join('?' * len(v))})" for c, v in chosen)
            parts.append(f"{alias}.seq IN (SELECT seq FROM decisions WHERE {conditions}{window})")
            params.extend([*(x for _, v in chosen for x in v), *window_params])
        else:
            # In a window, checked on each candidate's row: `|| ''` keeps the planner from leading with
            # the (column, seq) index, which for a value many records have reads most of the window.
            unindexed = " || ''" if window else ""
            for column, values in chosen:
                parts.append(f"{alias}.{column}{unindexed} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        for number, alternatives in enumerate(self.term_groups()):
            probed = self.lead is not None and number != self.lead
            if probed or (self.probe and any(prefix for _, _, prefix in alternatives)):
                ors = []
                for condition, matched in self._conditions(alternatives, column="t.value"):
                    ors.append(f"({condition})")
                    params.extend(matched)
                parts.append(f"EXISTS (SELECT 1 FROM terms t WHERE t.seq = {alias}.seq AND ({_any_of(ors)}))")
                continue
            ors = []
            for condition, matched in self._conditions(alternatives, column="value"):
                ors.append(f"({condition}{window})")
                params.extend([*matched, *window_params])
            parts.append(f"{alias}.seq IN (SELECT seq FROM terms WHERE {_any_of(ors)})")
        if self.exceptions:
            ors = []
            for name, prefix in map(_pattern, self.exceptions):
                ors.append(f"(name >= ? AND name < ?{window})" if prefix else f"(name = ?{window})")
                params.extend([name, name + _TOP, *window_params] if prefix else [name, *window_params])
            parts.append(f"{alias}.seq IN (SELECT seq FROM exception_terms WHERE {_any_of(ors)})")
        return (" AND ".join(parts) or "1=1"), params


def _any_of(conditions: list[str]) -> str:
    """`a OR b OR ...` as a balanced tree of ORs, in the conditions' order (their parameters' order);
    up to 8 conditions, the plain chain.

    A flat chain of N alternatives is an expression N deep, and SQLite refuses one deeper than 1,000:
    a resolved image filter can have thousands of runs (one Pod naming images that alternate with
    others in sort order makes them), which made every search for that image fail.
    """
    if len(conditions) <= 8:
        return " OR ".join(conditions)
    half = len(conditions) // 2
    return f"({_any_of(conditions[:half])}) OR ({_any_of(conditions[half:])})"


def _pattern(value: str) -> tuple[str, bool]:
    """An `--image` value without its trailing `*`, its registry as `image_name` reads it
    (`[::ffff:7f00:1]:5000/...` is `127.0.0.1:5000/...`), and whether it is a prefix."""
    text, prefix = (value[:-1], True) if value.endswith("*") else (value, False)
    return ipv4_unmapped(text), prefix


# The length of a whole digest of each algorithm: its name, the colon and its hex digits.
_DIGEST_CHARS = {"sha256:": 7 + 64, "sha512:": 7 + 128}


_NO_IMAGE = "\ufffe"  # a noncharacter: no image reference is this
_IN_LIST = 500  # references in one IN list: SQLite's expression depth and parameters stay small

# The distinct image references in [?, ?): one index seek each (a recursive walk of `terms_lookup`).
_DISTINCT = (
    "WITH RECURSIVE s(v) AS ("
    "SELECT min(value) FROM terms WHERE kind = 'image' AND value >= ? AND value < ? UNION ALL "
    "SELECT (SELECT min(value) FROM terms WHERE kind = 'image' AND value > s.v AND value < ?) "
    "FROM s WHERE s.v IS NOT NULL) SELECT v FROM s WHERE v IS NOT NULL"
)
# The distinct image references with an upper-case letter whose lower-case form is in [?, ?), in the
# order of `terms_image_cased`: one or two seeks each (the next of the same lower-case form, else the
# first of the next; SQLite seeks no row-value comparison `(a, b) > (x, y)` on an expression index).
_CASED = "kind = 'image' AND value <> lower(value)"
_DISTINCT_CASED = (
    "WITH RECURSIVE s(v) AS ("
    f"SELECT (SELECT value FROM terms WHERE {_CASED} AND lower(value) >= ? AND lower(value) < ? "
    "ORDER BY lower(value), value LIMIT 1) UNION ALL "
    f"SELECT coalesce((SELECT min(value) FROM terms WHERE {_CASED} AND lower(value) = lower(s.v) "
    f"AND value > s.v), (SELECT value FROM terms WHERE {_CASED} AND lower(value) > lower(s.v) "
    "AND lower(value) < ? ORDER BY lower(value), value LIMIT 1)) "
    "FROM s WHERE s.v IS NOT NULL) SELECT v FROM s WHERE v IS NOT NULL"
)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(text: str) -> str:
    """`text` with its ASCII letters in lower case, as SQLite's `lower()` and PostgreSQL's under
    collation "C" write it (not `str.lower`, which lowers other letters too)."""
    return text.translate(_ASCII_LOWER)


def _common(first: str, last: str) -> str:
    """The longest common start of two strings."""
    at = 0
    while at < min(len(first), len(last)) and first[at] == last[at]:
        at += 1
    return first[:at]


def _is_digest(value: str) -> bool:
    return value.lower().startswith(tuple(_DIGEST_CHARS))


def image_name(reference: str) -> str:
    """`reference` as the image rules read it (`nginx:1.25` is `docker.io/library/nginx:1.25`, and
    so are `index.docker.io/nginx:1.25` and `docker.io:443/library/nginx:1.25`): Docker Hub's forms
    and a registry's default port are one name (`Reference.parse`, `canonical_name`). A reference
    that does not parse is itself, but for a registry written as an IPv6 address embedding an IPv4
    one (`[::ffff:7f00:1]:5000/app`, `[64:ff9b::7f00:1]:5000/app`: refused as an image but recorded,
    `oci.reference.ipv4_unmapped`), which is the IPv4 address's
    (`127.0.0.1:5000/app`): a query for the registry finds what was tried through that spelling."""
    try:
        ref = Reference.parse(ipv4_unmapped(reference))
    except InvalidReferenceError:
        return reference
    name = canonical_name(ref.name) or ref.name
    return name + (f":{ref.tag}" if ref.tag else "") + (f"@{ref.digest}" if ref.digest else "")


def _plain(text: str) -> tuple[str, bool]:
    """`text` as `canonical_name` writes it, and whether it names a registry, as written: without its
    default port `internal:443/app` is `internal/app`, yet host internal's, not Docker Hub's."""
    return canonical_name(text) or text, "/" in text and names_registry(text.partition("/")[0])


def _name_prefixes(text: str) -> tuple[str, ...]:
    """The starts of `image_name`s that the prefix `text` (written with a `/`) asks for."""
    plain, registry = _plain(text)
    first, _, rest = plain.partition("/")
    if first.lower() in _HUB_HOSTS:
        if "/" in rest:
            return (f"{DOCKER_HUB}/{rest}",)
        return (f"{DOCKER_HUB}/{rest}", f"{DOCKER_HUB}/library/{rest}")  # a user's or an official image
    if registry:
        return (f"{first.lower()}/{rest}",)  # another registry, its host as `image_name` writes it
    return (f"{DOCKER_HUB}/{plain}",)  # `acme/ap`: Docker Hub's


def image_matcher(value: str) -> Callable[[str], bool]:
    """Whether a stored image reference is one `--image value` asks for, as the image rules read both
    (`image_name`): the same image, or (`value` ends with `*`) one whose name starts so.

    A prefix without `/` (`nginx*`) is the start of what was written as well (`nginxinc/app`,
    `nginx.example/app`, and a registry's host in any case: `NGINX.example/app`), as a bare prefix
    always was; one with a `/` names a registry (or Docker
    Hub's user) and matches by name alone: `docker.io/library/nginx*` is not `nginx.evil.example/x`.
    """
    text, prefix = _pattern(value)
    if not prefix:
        wanted = image_name(text)
        return lambda stored: image_name(stored) == wanted
    if "/" not in text:
        starts = (f"{DOCKER_HUB}/library/{text}", f"{DOCKER_HUB}/{text}")
        host = _ascii_lower(text)

        def bare(stored: str) -> bool:
            if stored.startswith(text) or image_name(stored).startswith(starts):
                return True
            # A registry's host in any case: `registry*` is the start of `REGISTRY.example:5000/app`.
            first, slash, _ = stored.partition("/")
            return bool(slash) and names_registry(first) and _ascii_lower(first).startswith(host)

        return bare
    named = _name_prefixes(text)
    registries = {_registry_of(n, written=False) for n in named}

    def matches(stored: str) -> bool:
        # Most references of a large log are of other registries: skip those without parsing.
        of = _registry_of(stored, written=True)
        return of in registries | {None} and image_name(stored).startswith(named)

    return matches


def _registry_of(name: str, *, written: bool) -> str | None:
    """The host (lower case, without a port) a name is of: an `image_name`'s (which starts with its
    registry), or with `written` a reference as written, None for one without a registry (it may be
    Docker Hub's: `names_registry`) or a host spelled in more than one way."""
    first, slash, _ = name.partition("/")
    if not slash:
        return DOCKER_HUB
    if written and not names_registry(first):
        return None
    host = first.lower()
    if host.startswith("[") or host[:1].isdigit():
        return None  # an address, spelled in more than one way (`127.1`, `[::ffff:7f00:1]`): parsed
    host = host.partition(":")[0]
    return DOCKER_HUB if host in _HUB_HOSTS else host


def whole_ranges(value: str) -> list[str]:
    """Prefixes of stored references that `image_matcher(value)` matches every one of: a prefix's
    own start as written (`nginx*`), or a name's it matches by (`docker.io/library/nginx*`)."""
    text, prefix = _pattern(value)
    if not prefix:
        return []
    # A name's start is one as written only where that is read as a registry: `internal/` (the
    # name of `INTERNAL/app`) as written is Docker Hub's.
    if "/" not in text:
        return [text]
    return [n for n in _name_prefixes(text) if names_registry(n.partition("/")[0])]


def image_ranges(value: str) -> list[str]:
    """Prefixes of the stored references to read for `--image value` (`image_matcher` keeps those it
    asks for): each of its spellings (`hub_spellings`), and its registry's host with any port."""
    text, prefix = _pattern(value)
    plain, registry = _plain(text)  # `docker.io:443/nginx`: Docker Hub's too
    first, _, rest = plain.partition("/")
    hub = not registry or first.lower() in _HUB_HOSTS
    spelled = [text, plain]
    if hub:
        spelled = [*hub_spellings(text, prefix=True), *hub_spellings(plain, prefix=True)]
    ranges = set(spelled)
    hosts = [first] if registry else []
    if hub:
        hosts = list(_HUB_HOSTS)
        bare = rest if first.lower() in _HUB_HOSTS else plain
        # `docker.io/*`: every image, for none may be written without the host; and a Hub user's
        # prefix that `library` starts with (`docker.io/li*`, `lib*`): every official image, which
        # may be written without its host and `library/` (`nginx:1`).
        if prefix and (bare.removeprefix("library/") == "" or "library".startswith(bare)):
            return [""]
    for host in hosts:  # its forms with a port (`host:443/app`, `host:0443/app`)
        name = host.rpartition(":")[0] if host.rpartition(":")[2].isdigit() else host
        ranges.update((f"{name}:", f"{name.lower()}:"))
    if prefix and "/" in plain and plain.partition("/")[2] in ("", "*"):
        ranges.add(f"{first}/")  # `host/*`: every image of the registry
    if hosts and (first.startswith("[") or _is_ipv4(first.partition(":")[0])):
        # An address has other spellings (`[::ffff:7f00:1]`, `127.1` are 127.0.0.1): all are read.
        ranges.update(("[", *"0123456789"))
    return sorted(ranges)


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _image_terms(value: str) -> list[tuple[str, str, bool]]:
    """The index terms `--image value` matches before the store resolves it (`SqlStore.resolved`): a
    digest, or the reference in each of its spellings (`hub_spellings`). Only estimates read these
    (`terms_upto`): every query resolves the filter to the stored references it asks for first.
    """
    for algorithm, whole in _DIGEST_CHARS.items():
        if value.lower().startswith(algorithm):  # an abbreviated digest (shorter than its algorithm's)
            return [("digest", value.lower(), len(value) < whole)]  # is a prefix; stored in lower case
    text, prefix = _pattern(value)
    return [("image", spelled, prefix) for spelled in hub_spellings(text, prefix=prefix)]


_HUB_HOSTS = (DOCKER_HUB, "index.docker.io", DOCKER_HUB_API)


def hub_spellings(reference: str, *, prefix: bool = False) -> list[str]:
    """`reference` (or, with `prefix`, the start of one) and, for a Docker Hub image, every other
    way of writing it that names the same image: with or without the host (`docker.io`,
    `index.docker.io`, `registry-1.docker.io`) and, for an official image, `library/`.

    A reference of another registry is returned alone. These are the ranges the store reads its
    stored references from (`image_ranges`, which adds a host's ported forms); which of them a
    filter asks for is `image_matcher`'s to say (by `image_name`): a spelling's range also holds
    other images (`nginx*` reads `nginxinc/...`).
    """
    first, slash, rest = reference.partition("/")
    host = first.lower()
    if not slash:
        path = f"library/{reference}"
    elif host in _HUB_HOSTS:
        path = rest if "/" in rest else f"library/{rest}"
    elif names_registry(first):
        return [reference]  # another registry
    else:
        path = reference  # `acme/app`: Docker Hub's
    official = path.startswith("library/") and path != "library/"  # `docker.io/library/*` is not all
    paths = [path, path.removeprefix("library/")] if official else [path]
    out = [reference]
    for spelled in paths:
        for name in (spelled, *(f"{h}/{spelled}" for h in _HUB_HOSTS)):
            if name and name not in out:
                out.append(name)
    return out


def absent_refused(version: int, url: str) -> None:
    """Refuse a log that is not there, for a caller that must not create one (`create=False`).

    Raises:
        DecisionLogMissingError: `version` is 0: an empty SQLite file, or a database the log's
            tables are not in (migrating would create a new log there, one nobody reads).
    """
    if version == 0:
        raise DecisionLogMissingError(
            "no decision log here (none of its tables)",
            where=url,
            hint="check the URL (another database?); `trustgate log init --store URL` starts a new log there",
        )


def schema_refused(version: int, url: str) -> None:
    """Refuse, for a reader that must not write, a log of a schema version other than this trustgate's.

    Raises:
        DecisionLogError: the log is not there (`absent_refused`), or `version` is not
            SCHEMA_VERSION (migrating would write to the log).
    """
    absent_refused(version, url)
    if version != SCHEMA_VERSION:
        raise DecisionLogError(
            f"the decision log has schema {version}; this trustgate reads schema {SCHEMA_VERSION} "
            "and does not migrate a log it only reads",
            where=url,
            hint="migrate it once with a role that may write: `trustgate log verify --store URL`",
        )


def parse_time(text: str, *, end: bool = False) -> str:
    """`2025-01-31`, `2025-01-31T12:00`, `2025-01-31T12:00:00+02:00` -> a record timestamp.

    A date alone, in any ISO 8601 form Python reads (`2025-01-31`,
    `20250131`, `2025-W05-5`, `2025W055`), means its start, or with `end`
    the start of the next day (so `--until 2025-01-31` and `--until
    20250131` include that day). A week without a day (`2025-W05`) is
    refused: whether it means its Monday or the whole week is a guess.

    Raises:
        DecisionLogError: not a date or date-time, a week without a day, or
            one whose UTC time (or next day, for `end`) falls outside the
            years 1 to 9999.
    """
    week = _WEEK.fullmatch(text)
    if week:
        year, number = int(week["year"]), int(week["week"])
        try:
            monday = dt.date.fromisocalendar(year, number, 1).isoformat()
            hint = f"name a day of it ({year:04d}-W{number:02d}-1) or use {monday}"
        except ValueError:  # no such week (W00, W54)
            hint = "name a day of a week (2025-W05-1) or use 2025-01-27"
        raise DecisionLogError(f"a week, not a day: {text!r}", hint=hint)
    if _WEEK_DAY.fullmatch(text):  # `2026-w49-1`: Python reads only an upper-case W
        text = text.upper()
    try:
        day = _date_only(text)
        if day is not None:
            day += dt.timedelta(days=1 if end else 0)
            return timestamp(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC))
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return timestamp(moment)
    except OverflowError as e:  # 9999-12-31 as an `until` date, 0001-01-01T00:00+01:00 in UTC
        raise DecisionLogError(
            f"out of range: {text!r}", hint="times run from 0001-01-01 to 9999-12-30 (UTC)"
        ) from e
    except ValueError as e:
        raise DecisionLogError(
            f"not a date or time: {text!r}", hint="use 2025-01-31 or 2025-01-31T12:00:00Z"
        ) from e


_WEEK = re.compile(r"(?P<year>[0-9]{4})-?[Ww](?P<week>[0-9]{2})", re.ASCII)
_WEEK_DAY = re.compile(r"[0-9]{4}(?:-w[0-9]{2}-|w[0-9]{2})[0-9]", re.ASCII)


def _date_only(text: str) -> dt.date | None:
    """The day `text` names when it is a date without a time (any ISO form), else None."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class PruneResult:
    removed: int
    anchor: Checkpoint | None  # None when nothing was older than the date


_ENTRY_COLUMNS = "d.seq, d.id, d.time, d.gate, d.verdict, d.record, d.prev, d.hash"


def index_item_sql(kind: str, value: str, *, char: str = "char", seq: str | None = None) -> str:
    """SQL for one index item as `chain.index_item` makes it: kind and value escaped, joined by US.

    Args:
        char: the dialect's function from a code point to a character (`chr` in PostgreSQL).
        seq: SQLite only, the row's `seq` column: a row whose kind or value is not TEXT (or seq not
            an INTEGER) becomes `chain.RETYPED` and its types instead. SQLite's columns are
            typeless, and `||` (like `group_concat`) turns a BLOB back into the same text, while
            the filters' `kind = ?` never finds a BLOB equal to text: a row re-typed in place
            would hide its record from every filter, yet read as the record's index.
    """

    def escaped(column: str) -> str:
        for code, digit in ((27, 0), (30, 1), (31, 2)):  # ESC first: the escapes start with it
            column = f"replace({column}, {char}({code}), {char}(27) || '{digit}')"
        return column

    item = f"{escaped(kind)} || {char}(31) || {escaped(value)}"
    if seq is None:
        return item
    types = f"typeof({kind}) || ',' || typeof({value}) || ',' || typeof({seq})"
    return f"CASE WHEN {types} = 'text,text,integer' THEN {item} ELSE '{RETYPED}' || {types} END"


def _summary(entries: Sequence[Entry], batch: Sequence[Prepared]) -> Summary:
    summary = Summary()
    for e, item in zip(entries, batch, strict=True):
        summary.add(e.seq, e.time, e.gate, e.verdict, e.body, item.terms)
    return summary


_DECISION_COLUMNS = ("seq", "id", "time", "gate", "verdict", "record", "prev", "hash")
_CHECKPOINT_PAGE = 8  # checkpoints read at a time by `tree_checkpoints`


def _head_types(seq: Any, digest: Any) -> str:
    """What is wrong with the types of the chain head's columns (`_head_locked`)."""
    wrong = []
    if type(seq) is not int:
        wrong.append(f"its seq column holds {stored_type(seq)}, not an integer")
    if type(digest) is not str:
        wrong.append(f"its hash column holds {stored_type(digest)}, not text")
    return "; ".join(wrong)


def _blob(value: Any) -> bytes:
    """A BLOB column's value as bytes, whatever SQLite's typeless columns hold after an edit.

    TEXT becomes its UTF-8 bytes (the hash then decides whether it is the
    record); a number or NULL becomes bytes no record hashes to, so the row
    is reported as altered rather than crashing the reader.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return repr(value).encode()


def _entry(row: Sequence[Any], *, where: str = "") -> Entry:
    """An entry from its stored columns, each of the type it must have.

    Raises:
        InconsistentLogError: a column holds another type (SQLite's columns are typeless, so an
            edit can store a BLOB or a number where text belongs); `record` may be TEXT or a BLOB.
    """
    wrong = [
        f"its {name} column holds {stored_type(row[i])}, not {'an integer' if i == 0 else 'text'}"
        for i, name in enumerate(_DECISION_COLUMNS)
        if i != 5 and type(row[i]) is not (int if i == 0 else str)
    ]
    if wrong:
        raise InconsistentLogError(
            f"the log is inconsistent: record #{row[0]} was altered: {'; '.join(wrong)}",
            where=where,
            hint="run `trustgate log verify`, which names what was altered",
        )
    return Entry(row[0], row[1], row[2], row[3], row[4], _blob(row[5]), row[6], row[7])


class _Entries(Iterator[Entry]):
    """`SqlStore.entries()`: an iterator that `Verifier.run` can join with the same store's index."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self._rows: Iterator[Entry] | None = None

    def __next__(self) -> Entry:
        if self._rows is None:
            self._rows = self._store._entries()
        return next(self._rows)

    def with_index(self, terms: object) -> Iterator[Row] | None:
        """One stream of entries with their index when `terms` is this store's untouched `index_rows()`."""
        if (
            self._rows is None
            and isinstance(terms, _IndexRows)
            and terms.store is self._store
            and terms.fresh
        ):
            self._rows = iter(())
            terms.fresh = False
            return self._store.verify_rows()
        return None


class _IndexRows(Iterator[tuple[int, list[str]]]):
    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.fresh = True
        self._rows: Iterator[tuple[int, list[str]]] | None = None

    def __next__(self) -> tuple[int, list[str]]:
        if self._rows is None:
            self.fresh = False
            self._rows = self.store._index_rows()
        return next(self._rows)


class SqlStore(Summaries, abc.ABC):
    """The SQL both databases share; subclasses connect, lock and translate errors."""

    dialect: str = ""
    url: str = ""  # for messages: no password
    # The tree's right edge after this store's last committed append, with the chain head it
    # belongs to: the next append reads the head (under the chain lock) and, when no other writer
    # appended since, skips reading the edge's nodes back.
    _edge: tuple[int, str, merkle.CompactRange] | None = None
    # The size and chain head from which `_edge` grew by this store's own appends only.
    _own_from: tuple[int, str] = (0, GENESIS)

    # -- what a dialect provides ----------------------------------------------

    @abc.abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (in the current transaction) and return its rows."""

    @abc.abstractmethod
    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abc.abstractmethod
    def _stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
        """Rows of a large result, fetched in chunks."""

    @abc.abstractmethod
    def _write(self) -> Any:
        """A context manager: one write transaction holding the chain lock, committed on exit."""

    def _append_tx(self) -> Any:
        """`_write()` for `append`, whose statements after the head read need no results."""
        return self._write()

    @abc.abstractmethod
    def _read(self) -> Any:
        """A context manager: one read transaction (a consistent snapshot where the database has one)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def _id_range_sql(self) -> str:
        """The condition `d.id` lies in [?, ?) by code point, the order an id prefix's range is in."""
        return "d.id >= ? AND d.id < ?"

    def snapshot(self) -> Any:
        """A context in which every read sees the same state of the log."""
        return self._read()

    def as_stored(self) -> contextlib.AbstractContextManager[None]:
        """A context in which a text value that is not UTF-8 is read as `chain.NotUtf8Text` (the
        verifier reports the column as altered), not an error that stops every read. A dialect's:
        PostgreSQL checks the encoding of what it stores."""
        return contextlib.nullcontext()

    # -- migrations -----------------------------------------------------------

    def _migrate(self, applied: int) -> None:
        if applied > SCHEMA_VERSION:
            raise DecisionLogError(
                f"the decision log has schema version {applied}; this trustgate knows up to {SCHEMA_VERSION}",
                where=self.url,
                hint="upgrade trustgate",
            )
        for migration in MIGRATIONS:
            if migration.version <= applied:
                continue
            for statement in getattr(migration, self.dialect):
                self._execute(statement)
            if migration.version == 2:
                self._build_tree()
            if migration.version == 3:
                self._summarize_rows()
            self._execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.description, timestamp()),
            )

    def _build_tree(self) -> None:
        """Compute the Merkle tree of a log written before it existed (inside the migration's transaction).

        Records pruned before (schema 1 kept no trace of them) count as
        `PRUNED_LEAF`: no checkpoint of the tree can predate this, so nothing
        it would have to match exists.
        """
        head = int(self._execute("SELECT coalesce(max(seq), 0) FROM chain_head")[0][0])
        tree = merkle.CompactRange()
        pending: list[tuple[int, int, bytes]] = []
        for seq, body in self._stream("SELECT seq, record FROM decisions ORDER BY seq"):
            while tree.size < int(seq) - 1:
                pending.extend(tree.append(PRUNED_LEAF))
            pending.extend(tree.append(merkle.leaf_hash(bytes(body))))
            if len(pending) >= 10_000:
                self._insert_nodes(pending)
                pending = []
        while tree.size < head:
            pending.extend(tree.append(PRUNED_LEAF))
        self._insert_nodes(pending)

    def _insert_nodes(self, nodes: Sequence[tuple[int, int, bytes]]) -> None:
        self._insert("tree_nodes", ("level", "idx", "hash"), nodes)

    def _insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows in the current transaction (PostgreSQL copies large batches: `postgres.py`)."""
        if rows:
            marks = ", ".join("?" * len(columns))
            self._executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    # -- writing --------------------------------------------------------------

    def append(
        self,
        batch: Sequence[Prepared],
        *,
        before_commit: Callable[[], None] | None = None,
        admit: Callable[[], Sequence[bool]] | None = None,
    ) -> list[Entry]:
        """Append records in order, extending the chain, in one committed transaction.

        `before_commit` runs after the statements, just before the commit
        (the writer acknowledges the previous batch there, while this one
        waits on the disk). `admit`, called once the chain lock is held,
        says which of `batch` to write (the writer drops records that
        waited too long); the entries are those of the records written.

        Returns:
            The entries with their positions and hashes, once committed.

        Raises:
            DecisionLogError: the store cannot be written; nothing of the batch is kept.
        """
        with self._append_tx():
            seq, prev = self._checked_head_locked()
            if admit is not None:
                batch = [item for item, ok in zip(batch, admit(), strict=True) if ok]
                if not batch:
                    return []
            edge = self._edge
            if edge is None or edge[0] != seq or edge[1] != prev:  # another writer appended since
                edge = (seq, prev, self._compact_range(seq))
                self._own_from = (seq, prev)  # the edge and chain head were read from the database here
            tree = merkle.CompactRange(seq, list(edge[2].hashes))
            entries = []
            for item in batch:
                seq += 1
                digest = entry_hash(prev, item.body, seq)
                entries.append(
                    Entry(seq, item.id, item.time, item.gate, item.verdict, item.body, prev, digest)
                )
                prev = digest
            nodes = [node for e in entries for node in tree.append(merkle.leaf_hash(e.body))]
            terms = [
                (kind, value, e.seq)
                for e, item in zip(entries, batch, strict=True)
                for kind, value in item.terms
            ]
            summary = _summary(entries, batch)
            self._edge = None  # until the commit succeeds
            # Everything computed first: the statements then run back to back (each releases the GIL).
            self._append_rows(entries, nodes, terms, (seq, prev))
            self._save_summary(summary)
            if before_commit is not None:
                before_commit()
        self._edge = (seq, prev, tree)
        return entries

    def own_tree(self, size: int, head: str) -> tuple[int, str, bytes] | None:
        """(from, from_head, root) when this store's own appends, from the chain head `from_head` at size
        `from` on, made the tree of `size` records ending in `head`.

        The root then comes from what this store wrote, not from the database:
        edits made to the stored records or nodes since cannot change it.
        None when `size` and `head` are not where its last append left the
        log (another writer appended since, or it has not appended).
        """
        edge = self._edge
        if edge is None or edge[0] != size or edge[1] != head:
            return None
        return self._own_from[0], self._own_from[1], edge[2].root()

    def _append_rows(
        self,
        entries: Sequence[Entry],
        nodes: Sequence[tuple[int, int, bytes]],
        terms: Sequence[tuple[str, str, int]],
        head: tuple[int, str],
    ) -> None:
        """Insert a batch's records, tree nodes and index terms and move the head (in the transaction)."""
        self._insert(
            "decisions",
            _DECISION_COLUMNS,
            [(e.seq, e.id, e.time, e.gate, e.verdict, e.body, e.prev, e.hash) for e in entries],
        )
        self._insert_nodes(nodes)
        self._insert("terms", ("kind", "value", "seq"), terms)
        self._execute("UPDATE chain_head SET seq = ?, hash = ? WHERE chain = 'main'", head)

    # -- the Merkle tree --------------------------------------------------------

    def _nodes(self, wanted: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        if not wanted:
            return {}
        found = {(int(r[0]), int(r[1])): _blob(r[2]) for r in self._select_nodes(wanted)}
        missing = [w for w in wanted if w not in found]
        if missing:
            level, idx = missing[0]
            raise DecisionLogError(
                f"the Merkle tree lacks the node at level {level}, index {idx} (the tree table was altered)",
                where=self.url,
                hint="run `trustgate log verify` against your kept checkpoints",
            )
        return found

    def _select_nodes(self, wanted: Sequence[tuple[int, int]]) -> list[tuple[Any, ...]]:
        """(level, idx, hash) of the wanted nodes that exist, in one query."""
        condition = " OR ".join("(level = ? AND idx = ?)" for _ in wanted)
        return self._execute(
            f"SELECT level, idx, hash FROM tree_nodes WHERE {condition}", [x for w in wanted for x in w]
        )

    def _node(self, level: int, index: int) -> bytes:
        return self._nodes([(level, index)])[(level, index)]

    def _compact_range(self, size: int) -> merkle.CompactRange:
        wanted = merkle.subtrees(0, size)
        found = self._nodes(wanted)
        return merkle.CompactRange(size, [found[w] for w in wanted])

    def compact_range(self, size: int) -> merkle.CompactRange:
        """The stored tree's right edge after `size` records (where `verify` resumes after a prune)."""
        with self._read():
            return self._compact_range(size)

    def tree_size(self) -> int:
        """Leaves in the stored tree: every record ever appended, pruned or not."""
        with self._read():
            return self._head_locked()[0]

    def root(self, size: int) -> bytes:
        """The stored tree's root after `size` records.

        Raises:
            DecisionLogError: a node is missing.
        """
        with self._read():
            return self._compact_range(size).root()

    def _prefetched(self, compute: Callable[[merkle.NodeSource], list[bytes]]) -> list[bytes]:
        """`compute(node)` with every node it reads fetched in one query, not one query per node.

        Which nodes a proof reads depends on the sizes only, never on the
        hashes, so a dry run with placeholder hashes lists them.
        """
        wanted: dict[tuple[int, int], None] = {}

        def plan(level: int, index: int) -> bytes:
            wanted[(level, index)] = None
            return bytes(merkle.HASH_SIZE)

        compute(plan)
        found = self._nodes(list(wanted))
        return compute(lambda level, index: found[(level, index)])

    def _in_tree(self, index: int, size: int) -> None:
        """Refuse a leaf outside the tree of `size`: the record's position column was altered.

        Raises:
            InconsistentLogError: `index` (record #index+1) is not a leaf of the tree of `size`.
        """
        if 0 <= index < size:
            return
        where = "before the chain's start" if index < 0 else f"beyond the tree of {size}"
        raise InconsistentLogError(
            f"the log is inconsistent: record #{index + 1} lies {where} (its seq column was altered)",
            where=self.url,
            hint="run `trustgate log verify`, which names what was altered",
        )

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """The RFC 6962 inclusion proof of leaf `index` (record #index+1) in the tree of `size`.

        Raises:
            InconsistentLogError: the leaf is not in that tree (`_in_tree`).
        """
        self._in_tree(index, size)
        with self._read():
            return self._prefetched(lambda node: merkle.inclusion_proof(index, size, node))

    def leaf_and_inclusion_proof(self, index: int, size: int) -> tuple[bytes, list[bytes]]:
        """The stored leaf `index` and `inclusion_proof(index, size)`, their nodes read in one query.

        What `log prove` and the UI check a record against before vouching for it (`vouch.inclusion`).

        Raises:
            InconsistentLogError: the leaf is not in that tree (`_in_tree`).
        """
        self._in_tree(index, size)
        with self._read():
            out = self._prefetched(lambda node: [node(0, index), *merkle.inclusion_proof(index, size, node)])
        return out[0], out[1:]

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """The RFC 6962 consistency proof between the stored trees of two sizes."""
        with self._read():
            return self._prefetched(lambda node: merkle.consistency_proof(old_size, new_size, node))

    def consistency_proof_and_roots(self, old_size: int, new_size: int) -> tuple[list[bytes], bytes, bytes]:
        """`consistency_proof(old_size, new_size)` and both roots, their nodes read in one query."""
        with self._read():
            out = self._prefetched(
                lambda node: [
                    *merkle.consistency_proof(old_size, new_size, node),
                    merkle.root(old_size, node),
                    merkle.root(new_size, node),
                ]
            )
        return out[:-2], out[-2], out[-1]

    def stored_tree(self) -> StoredTree:
        """The stored tree as `Verifier` reads it (nodes fetched on demand, or all of them streamed)."""
        size = self.stored_head()[0]  # not a number: `Verifier` reports the head, the tree is compared
        return StoredTree(node=self._node, size=size if type(size) is int else 0, nodes=self._tree_nodes)

    def _tree_nodes(self) -> Iterator[tuple[int, int, bytes]]:
        """Every stored node as (level, index, hash), by level then index (the table's key)."""
        sql = "SELECT level, idx, hash FROM tree_nodes ORDER BY level, idx"
        for level, index, digest in self._stream(sql):
            if type(level) is int and type(index) is int:  # else (SQLite is typeless): counted as missing
                yield level, index, _blob(digest)

    def leaf(self, index: int) -> bytes:
        with self._read():
            return self._node(0, index)

    def links(self, after: int, upto: int) -> Generator[tuple[int, bytes, str, str, bytes | None]]:
        """Records #after+1..#upto in chain order: (seq, record bytes, prev, hash, stored leaf or None).

        What a writer checks before signing: each record's link and hash, and
        that the tree's leaf is the record's (`log.DecisionLog`). Streamed.
        """
        sql = (
            "SELECT d.seq, d.record, d.prev, d.hash, t.hash FROM decisions d LEFT JOIN tree_nodes t "
            "ON t.level = 0 AND t.idx = d.seq - 1 WHERE d.seq > ? AND d.seq <= ? ORDER BY d.seq"
        )
        for row in self._stream(sql, (after, upto)):
            leaf = bytes(row[4]) if row[4] is not None else None
            yield int(row[0]), _blob(row[1]), row[2], row[3], leaf

    def _stored_head_locked(self) -> tuple[Any, Any]:
        """The chain head's columns as stored (SQLite may hold any type there after an edit)."""
        rows = self._execute("SELECT seq, hash FROM chain_head WHERE chain = 'main'")
        return (rows[0][0], rows[0][1]) if rows else (0, GENESIS)

    def _head_locked(self) -> tuple[int, str]:
        seq, digest = self._stored_head_locked()
        wrong = _head_types(seq, digest)
        if not wrong and not 0 <= seq < MAX_SEQ:  # the next position must be one too
            wrong = f"its seq column holds #{seq}, not a position in the chain"
        if wrong:
            raise InconsistentLogError(
                "the log is inconsistent: the chain head (table chain_head) was altered: " + wrong,
                where=self.url,
                hint="run `trustgate log verify` against your kept checkpoints",
            )
        return seq, digest

    def _checked_head_locked(self) -> tuple[int, str]:
        """The chain head, once it is checked against the last record (an append continues from it).

        Appending onto a forged head would chain genuine records to it, and
        `log verify` would then blame one of them.

        Raises:
            DecisionLogError: the head is not the last record's (nor, with no records, the prune
                anchor's or the empty log's).
        """
        head, _, why = self._head_against_records_locked()
        if head is None:
            raise self._forged_head(why)
        return head

    def _head_against_records_locked(self) -> tuple[tuple[int, str] | None, int | None, str]:
        """The chain head (None when its columns are not a position and a hash), the last record's
        position (None: no records), and why the head does not match the records ('' when it does).

        One query: the head, the record at its position and the last position (PostgreSQL sends
        it in the append's round trip for the head).
        """
        rows = self._execute(
            "SELECT h.seq, h.hash, d.hash, (SELECT max(seq) FROM decisions) FROM chain_head h "
            "LEFT JOIN decisions d ON d.seq = h.seq WHERE h.chain = 'main'"
        )
        if not rows:
            last = self._execute("SELECT max(seq) FROM decisions")[0][0]
            return None, last if type(last) is int else None, "the chain head row is missing"
        seq, digest, at_head, last = rows[0]
        last = last if type(last) is int else None
        if type(seq) is not int or type(digest) is not str:
            return None, last, _head_types(seq, digest)
        if last is not None:
            if last != seq:
                return None, last, f"it says #{seq}, the records end at #{last}"
            if at_head != digest:
                return None, last, f"its hash is not that of record #{seq}"
            return (seq, digest), last, ""
        anchors = self._execute(
            "SELECT seq, hash FROM checkpoints WHERE kind = 'prune' ORDER BY seq DESC, n DESC LIMIT 1"
        )
        expected = (anchors[0][0], anchors[0][1]) if anchors else (0, GENESIS)
        if (seq, digest) != expected:
            return (
                None,
                None,
                f"it says #{seq}, the log holds no records "
                + (f"after the prune at #{expected[0]}" if anchors else "at all"),
            )
        return (seq, digest), None, ""

    def listing_head(self) -> tuple[int, str]:
        """Where a reader's newest page starts, and why the chain head does not match the records.

        The head row carries no hash of its own: an operator who lowers it must not hide the
        newest records from a list `log query` shows them in, nor one who raises it make up
        positions. Readers start from the last record (or the head, when it is past the records)
        and say what is wrong ('' when nothing is).

        Returns:
            The position to list down from, and the head's problem ('' when it matches).
        """
        with self._read():
            head, last, why = self._head_against_records_locked()
            if head is None and last is None:
                stored = self._stored_head_locked()[0]
                return (stored if type(stored) is int and 0 <= stored < MAX_SEQ else 0), why
        return max(head[0] if head is not None else 0, last or 0), why

    def _forged_head(self, why: str) -> DecisionLogError:
        return DecisionLogError(
            f"refusing to append: the chain head (table chain_head) does not match the records: {why}",
            where=self.url,
            hint="run `trustgate log verify` against your kept checkpoints; nothing was appended",
        )

    def head(self) -> tuple[int, str]:
        """The position and hash of the newest entry (0 and 64 zeros for an empty log).

        Raises:
            InconsistentLogError: the head's columns are not a position and a hash (an edit).
        """
        with self._read():
            return self._head_locked()

    def sizes(self) -> tuple[int, int, int]:
        """How many records the log holds, three ways: the chain head's position, the highest
        record position, and the stored tree's leaves (every record ever appended).

        The head row carries no signature: a reader that must not be fooled about the log's size
        (`log checkpoint --output`) compares the three. One read transaction.

        Raises:
            InconsistentLogError: the head's columns are not a position and a hash (an edit).
        """
        with self._read():
            head = self._head_locked()[0]
            rows = self._execute(
                "SELECT (SELECT max(seq) FROM decisions), (SELECT max(idx) FROM tree_nodes WHERE level = 0)"
            )
        last, leaf = rows[0] if rows else (None, None)
        return (
            head,
            last if type(last) is int else 0,
            leaf + 1 if type(leaf) is int else 0,
        )

    def stored_head(self) -> tuple[Any, Any]:
        """The chain head as stored, for `Verifier`, which reports a head of the wrong types as altered."""
        with self._read():
            return self._stored_head_locked()

    def check_writable(self) -> None:
        """Take the chain lock in a write transaction that writes nothing.

        Raises:
            DecisionLogError: the store cannot be locked or written (read-only, unreachable, locked).
        """
        with self._write():
            self._head_locked()

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        with self._write():
            self._insert_checkpoint(checkpoint)

    def _insert_checkpoint(self, cp: Checkpoint) -> None:
        self._execute(
            "INSERT INTO checkpoints (seq, hash, time, kind, key_id, public_key, signature, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (cp.seq, cp.hash, cp.time, cp.kind, cp.key_id, cp.public_key, cp.signature, cp.note),
        )

    def prune(self, before: str, make_anchor: Any) -> PruneResult:
        """Remove records older than `before`; `make_anchor(seq, hash)` makes the prune checkpoint.

        Only a prefix of the chain goes: the newest record older than `before`
        and every record before it. The anchor lets `verify` start from there.
        The Merkle tree keeps their hashes (`tree_nodes` is not pruned), so
        checkpoints from before the prune stay provable; `make_anchor` may
        call `root(seq)` for the tree head to sign.

        Raises:
            InconsistentLogError: the last record to go has a hash column that is not text.
        """
        with self._write():
            rows = self._execute(
                "SELECT seq, hash FROM decisions WHERE seq = (SELECT max(seq) FROM decisions WHERE time < ?)",
                (before,),
            )
            if not rows:
                return PruneResult(0, None)
            seq, digest = rows[0]
            if type(digest) is not str:  # the anchor would sign it: never anything but the hash's text
                raise InconsistentLogError(
                    f"refusing to prune: record #{seq}, the last to go, was altered: its hash column holds "
                    f"{stored_type(digest)}, not text",
                    where=self.url,
                    hint="run `trustgate log verify`, which names what was altered; nothing was removed",
                )
            count = self._execute("SELECT count(*) FROM decisions WHERE seq <= ?", (seq,))[0][0]
            anchor: Checkpoint = make_anchor(seq, digest)
            self._insert_checkpoint(anchor)
            self._prune_summaries(seq)
            self._execute("DELETE FROM terms WHERE seq <= ?", (seq,))
            self._execute("DELETE FROM decisions WHERE seq <= ?", (seq,))
        return PruneResult(int(count), anchor)

    # -- reading --------------------------------------------------------------

    def checkpoints(self, *, newest: int | None = None) -> list[Checkpoint]:
        """Every checkpoint in the order stored, or only the `newest` ones (a writer's check needs few)."""
        columns = "n, seq, hash, time, kind, key_id, public_key, signature, note"
        sql = f"SELECT {columns} FROM checkpoints ORDER BY n"
        if newest is not None:
            newest_first = f"SELECT {columns} FROM checkpoints ORDER BY n DESC LIMIT {int(newest)}"
            sql = f"SELECT * FROM ({newest_first}) t ORDER BY n"
        with self._read():
            rows = [r[1:] for r in self._execute(sql)]
        return [Checkpoint.from_row(r, where=self.url) for r in rows]

    def prune_anchor(self) -> Checkpoint | None:
        """The newest prune checkpoint (where the chain now starts), however many were stored since."""
        columns = "seq, hash, time, kind, key_id, public_key, signature, note"
        with self._read():
            rows = self._execute(
                f"SELECT {columns} FROM checkpoints WHERE kind = 'prune' ORDER BY seq DESC, n DESC LIMIT 1"
            )
        return Checkpoint.from_row(rows[0], where=self.url) if rows else None

    def tree_checkpoints(self, covering: int = 0) -> Iterator[Checkpoint]:
        """Checkpoints with a tree head of at least `covering` records, the largest tree first (newest first).

        Read a few at a time by indexed queries: a reader takes the first
        whose signatures verify (`vouch.newest_vouched`), usually the first.
        """
        columns = "n, seq, hash, time, kind, key_id, public_key, signature, note"
        after: tuple[int, int] | None = None
        while True:
            where, params = "seq >= ? AND note <> ''", [covering]
            if after is not None:
                where += " AND (seq < ? OR (seq = ? AND n < ?))"
                params += [after[0], after[0], after[1]]
            with self._read():
                rows = self._execute(
                    f"SELECT {columns} FROM checkpoints WHERE {where} ORDER BY seq DESC, n DESC "
                    f"LIMIT {_CHECKPOINT_PAGE}",
                    params,
                )
            for r in rows:
                yield Checkpoint.from_row(r[1:], where=self.url)
            if len(rows) < _CHECKPOINT_PAGE:
                return
            after = (int(rows[-1][1]), int(rows[-1][0]))

    def entries(self) -> Iterator[Entry]:
        """Every entry in chain order, streamed.

        Given to `Verifier.run` together with `index_rows()` of the same store,
        both are read as one stream (`verify_rows`).
        """
        return _Entries(self)

    def _entries(self) -> Iterator[Entry]:
        for row in self._stream(f"SELECT {_ENTRY_COLUMNS} FROM decisions d ORDER BY d.seq"):
            yield _entry(row, where=self.url)

    def index_rows(self) -> Iterator[tuple[int, list[str]]]:
        """The query index grouped by entry, in chain order: (seq, ["kind\\x1fvalue", ...])."""
        return _IndexRows(self)

    def _index_rows(self) -> Iterator[tuple[int, list[str]]]:
        for seq, joined in self._stream(self._grouped_terms_sql()):
            yield int(seq), joined.split("\x1e")

    def _grouped_terms_sql(self) -> str:
        return (
            f"SELECT seq, group_concat({index_item_sql('kind', 'value', seq='seq')}, char(30)) "
            "FROM terms GROUP BY seq ORDER BY seq"
        )

    def verify_rows(self) -> Iterator[Row]:
        """Every entry in chain order with its query index, in one stream (`chain.Row`).

        Columns come as stored, of whatever type (the verifier reports a wrong one as altered);
        an index row of another type than the table's comes marked (`index_item_sql`).
        """
        item = index_item_sql("t.kind", "t.value", seq="t.seq")
        sql = (
            f"SELECT {_ENTRY_COLUMNS}, (SELECT group_concat({item}, char(30)) FROM terms t "
            "WHERE t.seq = d.seq) FROM decisions d ORDER BY d.seq"
        )
        for row in self._stream(sql):
            yield (row[0], row[1], row[2], row[3], row[4], _blob(row[5]), row[6], row[7], row[8])

    def verify(
        self, verifier: Verifier, *, through: Callable[[Iterator[Row]], Iterator[Row]] | None = None
    ) -> Report:
        """`verifier` over every entry with its query index, and the summary tables against them.

        Call it in a `snapshot()`. The summary tables are recomputed in the
        same pass (`summary.SummaryCheck`) and compared once every record has
        checked out: a difference is a `summary` problem, since the UI selects
        records through them. `through` wraps the rows (to count progress).
        """
        check = SummaryCheck()
        rows = check.rows(self.verify_rows())
        report = verifier.run_rows(through(rows) if through is not None else rows)
        if report.ok:
            report.problems.extend(
                check.problems(self, pruned=verifier.anchor.seq if verifier.anchor is not None else 0)
            )
        report.problems.extend(self._missing_indexes())
        report.problems.extend(self._storage_problems())
        return report

    def _storage_problems(self) -> list[Problem]:
        """What the database's own check finds wrong with its tables and indexes (none here: a dialect's)."""
        return []

    def _index_names(self) -> set[str] | None:
        """The names of the usable indexes in the log's database (None: not known, a dialect's)."""
        return None

    def _missing_indexes(self) -> list[Problem]:
        """An index the migrations created that is gone (dropped, or left invalid).

        No record is hidden by it, yet the queries that read through it then read the whole table
        once per step: without `terms_image_cased` an `--image` query walks every index term once
        per reference written with an upper-case letter, and on a large log never ends. Whoever can
        drop an index can keep auditors from their answers while every record checks out.
        """
        present = self._index_names()
        if present is None:
            return []
        expected = {
            found[0]: (found[1], " ".join(statement.split()))
            for migration in MIGRATIONS
            for statement in getattr(migration, self.dialect)
            if (found := created_index(statement)) is not None
        }
        return [
            Problem(
                "altered",
                0,
                "",
                f"the index {name} of table {table} is missing (dropped, or left invalid): queries that "
                f"read through it read the whole table instead, and on a large log may never finish; "
                f"recreate it with a role that may write: `{statement}`",
            )
            for name, (table, statement) in sorted(expected.items())
            if name not in present
        ]

    def get(self, key: str) -> Entry | None:
        """An entry by id, id prefix (unique), or `#seq`.

        Ids are UUIDs, written in lower case: one given in upper case (RFC
        9562 says UUIDs compare without case) is looked up in lower case. A
        `#seq` past the chain position's type (BIGINT) is no decision.
        """
        seq = int(key[1:]) if key.startswith("#") and key[1:].isascii() and key[1:].isdigit() else None
        if seq is not None and seq > MAX_SEQ:
            return None
        key = key if seq is not None else key.lower()
        with self._read():
            if seq is not None:
                rows = self._execute(f"SELECT {_ENTRY_COLUMNS} FROM decisions d WHERE d.seq = ?", (seq,))
            else:
                rows = self._execute(
                    f"SELECT {_ENTRY_COLUMNS} FROM decisions d WHERE {self._id_range_sql()} LIMIT 2",
                    (key, key + _TOP),
                )
        if len(rows) > 1:
            if rows[0][1] == rows[1][1] == key:  # ids are unique: the rows were altered
                raise InconsistentLogError(
                    f"the log is inconsistent: records #{rows[0][0]} and #{rows[1][0]} "
                    f"both have the id {key}",
                    where=self.url,
                    hint="one of them was forged: run `trustgate log verify`",
                )
            raise DecisionLogError(f"{key!r} matches more than one decision", hint="give more of the id")
        if not rows:
            return None
        entry = _entry(rows[0], where=self.url)
        self._check_id(entry)
        return entry

    def _check_id(self, entry: Entry) -> None:
        """Refuse an entry whose id column is not its record's id.

        The lookup matches the column, which no hash covers: with the ids of
        two rows swapped, `log show`, `log prove` and the UI would present one
        decision's record, and a proof that verifies, as the other's. A
        record that is not a decision record at all (not a JSON object with
        an id: `Entry.malformed`) is returned as it is: it cannot pass for
        another decision, and every reader shows it flagged, never vouched for.

        Raises:
            InconsistentLogError: they differ.
        """
        if entry.malformed() is not None:
            return
        said = json.loads(entry.body)["id"]
        if said != entry.id:
            raise InconsistentLogError(
                f"the log is inconsistent: record #{entry.seq} is stored under the id {shown_id(entry.id)}, "
                f"but its record says it is {said!r}",
                where=self.url,
                hint="the row was altered: run `trustgate log verify`",
            )

    def resolved(self, filters: Any) -> Any:
        """`filters` with its image filter resolved to the stored references it asks for
        (`image_matcher`: by the name the image rules read, not by how it was written), so that
        every query, count and page of it selects exactly those records in the database.

        The index keeps a reference as written (`log verify` recomputes it from the records), so
        the store reads the distinct stored references of each spelling's range (`image_ranges`,
        in lower case: one index seek per distinct reference) and keeps those that match. A
        registry's host is read in any case (`REGISTRY.Example.com/app` is
        `registry.example.com/app`), so each range is read again among the references written
        with an upper-case letter, by their lower-case form (schema 4's `terms_image_cased`): the
        number of statements depends on the query, not on how many cases of a host the log holds.
        """
        if not isinstance(filters, Filters) or filters.image_values is not None:
            return filters
        queries = [v for v in filters.images if not _is_digest(v)]
        if not queries:
            return filters
        matchers = [image_matcher(v) for v in queries]
        whole = sorted({r for v in queries for r in whole_ranges(v)})
        runs: list[tuple[str, str]] = [(start, start + _TOP) for start in whole]  # all of each: no read
        starts = sorted({_ascii_lower(r) for v in queries for r in image_ranges(v)})
        outer: list[str] = []  # the ranges, without those inside another (read once)
        for start in starts:
            if not outer or not start.startswith(outer[-1]):
                outer.append(start)
        ranges = [start for start in outer if not any(start.startswith(w) for w in whole)]
        found: set[str] = set()
        with self._read():
            for start in ranges:
                if not start:  # every image (`docker.io/*`): one scan beats a seek per reference
                    sql = "SELECT DISTINCT value FROM terms WHERE kind = 'image' ORDER BY value"
                    params: list[Any] = []
                else:
                    sql, params = _DISTINCT, [start, start + _TOP, start + _TOP]
                run: tuple[str, str] | None = None  # consecutive stored references that all match
                for (value,) in self._execute(sql, params):
                    inside = any(value.startswith(w) for w in whole) if isinstance(value, str) else False
                    if isinstance(value, str) and not inside and any(match(value) for match in matchers):
                        run = (run[0] if run else value, value)
                        found.add(value)
                    elif run is not None:
                        runs.append(run)
                        run = None
                if run is not None:
                    runs.append(run)
            # References with an upper-case letter (`REGISTRY.example/app`) by their lower-case form:
            # one walk of each range, however many cases of a host the log holds. Not consecutive as
            # stored (`R...` sorts far from `r...`): each is matched exactly.
            for start in [] if "" in ranges or "" in whole else outer:
                for (value,) in self._execute(_DISTINCT_CASED, [start, start + _TOP, start + _TOP]):
                    if (
                        not isinstance(value, str)
                        or value in found
                        or any(value.startswith(w) for w in whole)
                    ):
                        continue
                    if any(match(value) for match in matchers):
                        runs.append((value, value))
                        found.add(value)
        return replace(filters, image_values=tuple(runs))

    def query(
        self, filters: Filters, *, limit: int | None = None, newest_first: bool = True
    ) -> Iterator[Entry]:
        filters = self.resolved(filters)
        where, params = filters.where()
        sql = f"SELECT {_ENTRY_COLUMNS} FROM decisions d WHERE {where} ORDER BY d.seq"
        sql += " DESC" if newest_first else ""
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        for row in self._stream(sql, params):
            yield _entry(row, where=self.url)

    def count(self, filters: Filters | None = None) -> int:
        where, params = self.resolved(filters or Filters()).where()
        with self._read():
            return int(self._execute(f"SELECT count(*) FROM decisions d WHERE {where}", params)[0][0])

    def stats(self, filters: Filters, *, top: int = 20) -> dict[str, list[tuple[str, int]]]:
        """Counts by verdict, gate, day, rule and namespace (the `top` most frequent of the last two)."""
        where, params = self.resolved(filters).where()
        out: dict[str, list[tuple[str, int]]] = {}
        with self._read():
            for name, expr in (
                ("verdict", "d.verdict"),
                ("gate", "d.gate"),
                ("day", "substr(d.time, 1, 10)"),
            ):
                rows = self._execute(
                    f"SELECT {expr}, count(*) FROM decisions d WHERE {where} GROUP BY {expr} ORDER BY {expr}",
                    params,
                )
                out[name] = [(str(r[0]), int(r[1])) for r in rows]
            for name in ("rule", "namespace"):
                rows = self._execute(
                    "SELECT t.value, count(*) FROM terms t JOIN decisions d ON d.seq = t.seq "
                    f"WHERE t.kind = ? AND {where} GROUP BY t.value "
                    f"ORDER BY count(*) DESC, t.value LIMIT {top}",
                    [name, *params],
                )
                out[name] = [(str(r[0]), int(r[1])) for r in rows]
        return out
