"""Query parameters -> the decision log's `Filters`, and keyset pages over them.

Owns: the names of the UI's filters (those of `trustgate log query`, so a
URL reads like the command), checking every value before it reaches SQL,
the `exception` filter (the store has no index for it: records are read and
matched here), and keyset pagination by chain position. Leaves out: SQL
(`trustgate.decisions.store`) and HTTP.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from trustgate.decisions.chain import Entry
from trustgate.decisions.log import Store
from trustgate.decisions.record import VERDICTS
from trustgate.decisions.store import Filters, parse_time
from trustgate.errors import Error, InputError

GATES = ("ci", "presync", "admission")
# parameter -> the `Filters` field it fills (several values of one parameter match any of them)
LIST_PARAMS = {
    "gate": "gates",
    "verdict": "verdicts",
    "namespace": "namespaces",
    "image": "images",
    "digest": "images",
    "commit": "commits",
    "tree": "trees",
    "rule": "rules",
    "actor": "actors",
}
FILTER_PARAMS = ("since", "until", *LIST_PARAMS, "exception")
PAGE_PARAMS = ("before", "after", "limit")
MAX_VALUES = 20  # values of one filter in one URL
MAX_VALUE_CHARS = 512  # an image reference with a digest fits
MAX_SEQ = 2**63 - 1  # BIGINT, the chain position's type in PostgreSQL
DEFAULT_LIMIT = 50
MAX_LIMIT = 500  # rows of one page
MAX_EXCEPTION_SCAN = 200_000  # records read to fill one page filtered by exception (no index)

_HEX = re.compile(r"[0-9a-fA-F]+")
_DIGEST = re.compile(r"sha(256|512):[0-9a-f]{1,128}")
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]+")


class BadRequestError(InputError):
    """A query parameter the UI cannot use: the page says why (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class Query:
    """What the filters of one URL ask for; `params` is the canonical form of them for links."""

    filters: Filters
    exceptions: tuple[str, ...]
    params: tuple[tuple[str, str], ...]

    def matches(self, entry: Entry) -> bool:
        """True when the record passes the filters the store cannot apply (`exception`)."""
        if not self.exceptions:
            return True
        names = {str(e.get("name")) for e in entry.record().get("exceptions") or ()}
        return any(_match(pattern, names) for pattern in self.exceptions)

    def url(self, path: str, **extra: str | int) -> str:
        pairs = [*self.params, *((k, str(v)) for k, v in extra.items())]
        return f"{path}?{urlencode(pairs)}" if pairs else path


def _match(pattern: str, names: set[str]) -> bool:
    if pattern.endswith("*"):
        return any(n.startswith(pattern[:-1]) for n in names)
    return pattern in names


@dataclass(frozen=True, slots=True)
class PageFilters(Filters):
    """`Filters` with a keyset bound on the chain position (the next or previous page)."""

    below: int | None = None  # seq < below
    above: int | None = None  # seq > above

    def where(self, alias: str = "d") -> tuple[str, list[Any]]:
        sql, params = Filters.where(self, alias)
        if self.below is not None:
            sql += f" AND {alias}.seq < ?"
            params.append(self.below)
        if self.above is not None:
            sql += f" AND {alias}.seq > ?"
            params.append(self.above)
        return sql, params


def parse_query(params: Sequence[tuple[str, str]], *, allowed: Sequence[str] = ()) -> Query:
    """The filters of a URL's query string (`multi_items()`); `allowed` names further parameters.

    Raises:
        BadRequestError: an unknown parameter, a malformed date, an unknown
            verdict or gate, a malformed commit or digest, too many or too long values.
    """
    known = set(FILTER_PARAMS) | set(allowed)
    lists: dict[str, list[str]] = {}
    since = until = None
    exceptions: list[str] = []
    canonical: list[tuple[str, str]] = []
    for name, raw in params:
        if name not in known:
            raise BadRequestError(
                f"unknown parameter {name!r}", hint=f"filters are {', '.join(FILTER_PARAMS)}"
            )
        if name not in FILTER_PARAMS:
            continue
        value = raw.strip()
        if not value:
            continue  # an empty form field
        if len(value) > MAX_VALUE_CHARS or not _PRINTABLE.fullmatch(value):
            raise BadRequestError(f"{name}: the value is too long or holds control characters")
        if name in ("since", "until"):
            if (since if name == "since" else until) is not None:
                raise BadRequestError(f"{name} is given twice")
            try:
                moment = parse_time(value, end=name == "until")
            except Error as e:
                raise BadRequestError(f"{name}: {e.message}", hint=e.hint) from e
            if name == "since":
                since = moment
            else:
                until = moment
        elif name == "exception":
            exceptions.append(value)
        else:
            lists.setdefault(LIST_PARAMS[name], []).append(_checked(name, value))
        canonical.append((name, value))
    for field, values in (*lists.items(), ("exceptions", exceptions)):
        if len(values) > MAX_VALUES:
            raise BadRequestError(
                f"too many values for one filter ({field}: {len(values)}, at most {MAX_VALUES})"
            )
    filters = Filters(since=since, until=until, **{k: tuple(v) for k, v in lists.items()})
    return Query(filters, tuple(exceptions), tuple(canonical))


def _checked(name: str, value: str) -> str:
    if name == "verdict" and value not in VERDICTS:
        raise BadRequestError(f"unknown verdict {value!r}", hint=f"one of {', '.join(VERDICTS)}")
    if name == "gate" and value not in GATES:
        raise BadRequestError(f"unknown gate {value!r}", hint=f"one of {', '.join(GATES)}")
    if name == "commit" and not (4 <= len(value) <= 64 and _HEX.fullmatch(value)):
        raise BadRequestError(f"not a commit SHA: {value!r}", hint="4 to 64 hex digits")
    if name == "tree" and not (len(value) in (40, 64) and _HEX.fullmatch(value)):
        raise BadRequestError(f"not a git tree hash: {value!r}", hint="40 or 64 hex digits")
    if name == "digest" and not _DIGEST.fullmatch(value):
        raise BadRequestError(f"not a digest: {value!r}", hint="sha256:<hex>, a prefix allowed")
    return value


def page_bound(params: Mapping[str, str]) -> tuple[int | None, int | None, int]:
    """`before`, `after` and `limit` of a page.

    Raises:
        BadRequestError: not a number, out of range, or both `before` and `after`.
    """
    before, after = _seq(params, "before"), _seq(params, "after")
    if before is not None and after is not None:
        raise BadRequestError("give before or after, not both")
    limit = DEFAULT_LIMIT
    if params.get("limit"):
        limit = _number(params["limit"], "limit")
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequestError(f"limit must be between 1 and {MAX_LIMIT}")
    return before, after, limit


def _seq(params: Mapping[str, str], name: str) -> int | None:
    if not params.get(name):
        return None
    seq = _number(params[name], name)
    if not 0 <= seq <= MAX_SEQ:
        raise BadRequestError(f"{name} is out of range", hint=f"a chain position from 0 to {MAX_SEQ}")
    return seq


def _number(text: str, name: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 40):
        raise BadRequestError(f"{name} must be a whole number, not {text[:40]!r}")
    return int(text)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of decisions, newest first, with the bounds of its neighbours (None: there is none)."""

    entries: list[Entry]
    newer: int | None  # `after` of the previous (newer) page
    older: int | None  # `before` of the next (older) page


def page(store: Store, query: Query, *, before: int | None, after: int | None, limit: int) -> Page:
    """A keyset page: `limit` decisions below `before` (older), or above `after` (newer), newest first."""
    # Every filter the query has, whatever filters `Filters` gains later, plus the page's bounds.
    f = query.filters
    bounded = PageFilters(
        **{field.name: getattr(f, field.name) for field in dataclasses.fields(f)}, below=before, above=after
    )
    newest_first = after is None
    rows = _matching(store, bounded, query, newest_first=newest_first, want=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    if not newest_first:
        rows.reverse()
    if not rows:
        return Page([], None, None)
    newer_exists = more if not newest_first else before is not None
    older_exists = more if newest_first else True
    return Page(
        rows,
        newer=rows[0].seq if newer_exists else None,
        older=rows[-1].seq if older_exists else None,
    )


def _matching(store: Store, filters: Filters, query: Query, *, newest_first: bool, want: int) -> list[Entry]:
    if not query.exceptions:
        return list(store.query(filters, limit=want, newest_first=newest_first))
    return list(_take(matching(store, filters, query, newest_first=newest_first), want))


def matching(store: Store, filters: Filters, query: Query, *, newest_first: bool = False) -> Iterator[Entry]:
    """Every decision the query matches, the `exception` filter applied (reads at most MAX_EXCEPTION_SCAN).

    Raises:
        BadRequestError: the exception filter would read more records than that.
    """
    rows = store.query(filters, newest_first=newest_first)
    try:
        for scanned, entry in enumerate(rows, start=1):
            if query.matches(entry):
                yield entry
            if query.exceptions and scanned >= MAX_EXCEPTION_SCAN:
                raise BadRequestError(
                    f"the exception filter read {MAX_EXCEPTION_SCAN} records",
                    hint="narrow the time range (since, until) or add another filter",
                )
    finally:
        close = getattr(rows, "close", None)
        if callable(close):
            close()


def _take(rows: Iterator[Entry], n: int) -> Iterator[Entry]:
    try:
        for i, entry in enumerate(rows):
            if i >= n:
                return
            yield entry
    finally:
        close = getattr(rows, "close", None)
        if callable(close):
            close()
