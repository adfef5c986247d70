"""Query parameters -> the decision log's `Filters`, and keyset pages over them.

Owns: the names of the UI's filters (those of `trustgate log query`, so a
URL reads like the command), checking every value before it reaches SQL,
and keyset pagination by chain position. Leaves out: SQL
(`trustgate.decisions.store`; the `exception` filter reads the store's
`exception_terms` index, schema 3, or the records themselves while the
summaries lag the log) and HTTP.
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
from trustgate.decisions.store import MAX_SEQ, Filters, parse_time
from trustgate.decisions.summary import DayRange, SummaryAlteredError
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
    "exception": "exceptions",
}
FILTER_PARAMS = ("since", "until", *LIST_PARAMS)
PAGE_PARAMS = ("before", "after", "limit")
MAX_VALUES = 20  # values of one filter in one URL
MAX_VALUE_CHARS = 512  # an image reference with a digest fits
DEFAULT_LIMIT = 50
MAX_LIMIT = 500  # rows of one page
FIRST_WINDOW = 4_096  # chain positions the first query of a page reads (see `page`)
WINDOW_GROWTH = 4  # each further window is this many times wider
PROBE_WIDTH = 16_384  # windows narrower than this may probe each position for prefix filters
RARE_SHARE = 0.05  # verdict and gate filters selecting less than this share of the log lead the lookups

_HEX = re.compile(r"[0-9a-fA-F]+")
_DIGEST = re.compile(r"sha(256|512):[0-9a-f]{1,128}")
_PRINTABLE = re.compile(r"[^\x00-\x1f\x7f]+")


class BadRequestError(InputError):
    """A query parameter the UI cannot use: the page says why (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class Query:
    """What the filters of one URL ask for; `params` is the canonical form of them for links."""

    filters: Filters
    params: tuple[tuple[str, str], ...]

    @property
    def exceptions(self) -> tuple[str, ...]:
        return self.filters.exceptions

    def url(self, path: str, **extra: str | int) -> str:
        pairs = [*self.params, *((k, str(v)) for k, v in extra.items())]
        return f"{path}?{urlencode(pairs)}" if pairs else path


def parse_query(params: Sequence[tuple[str, str]], *, allowed: Sequence[str] = ()) -> Query:
    """The filters of a URL's query string (`multi_items()`); `allowed` names further parameters.

    Raises:
        BadRequestError: an unknown parameter, a malformed date, an unknown
            verdict or gate, a malformed commit or digest, too many or too long values.
    """
    known = set(FILTER_PARAMS) | set(allowed)
    lists: dict[str, list[str]] = {}
    since = until = None
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
        else:
            lists.setdefault(LIST_PARAMS[name], []).append(_checked(name, value))
        canonical.append((name, value))
    for field, values in lists.items():
        if len(values) > MAX_VALUES:
            raise BadRequestError(
                f"too many values for one filter ({field}: {len(values)}, at most {MAX_VALUES})"
            )
    chosen: dict[str, Any] = {k: tuple(v) for k, v in lists.items()}
    filters = dataclasses.replace(Filters(since=since, until=until), **chosen)
    return Query(filters, tuple(canonical))


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
    behind: bool = False  # the summaries lag the log: the page was read from the records alone
    disagree: str = ""  # why the summaries' positions for the time range were not used (altered)
    head: str = ""  # why the chain head does not match the records (altered): the page lists from the last


def page(store: Store, query: Query, *, before: int | None, after: int | None, limit: int) -> Page:
    """A keyset page: `limit` decisions below `before` (older), or above `after` (newer), newest first.

    The positions are read in windows, from the page's bound outwards, the
    first FIRST_WINDOW positions wide and each next one WINDOW_GROWTH times
    wider: a filter most records match fills the page from the first window,
    and one that few match reads each window's part of its index (a few
    queries, not one over every position the filter has). A prefix filter
    (`image=registry/team-*`) cannot seek by position in the index: a window
    narrower than the prefix's entries probes each position for it instead.
    """
    with store.snapshot():  # every window of the page, and the estimates, read one state of the log
        return _page(store, query, before=before, after=after, limit=limit)


def summaries_state(store: Store) -> tuple[bool, str]:
    """Whether pages must read the records without the summaries, and why the summaries were altered
    ('': they lag the log at most, `Summaries.summaries_behind`).

    Summaries holding what no append writes there (a position that is not
    one) count as behind: pages read the records and flag the summaries as
    disagreeing, rather than failing.
    """
    try:
        return store.summaries_behind(), ""
    except SummaryAlteredError as e:
        return True, e.message


def _page(store: Store, query: Query, *, before: int | None, after: int | None, limit: int) -> Page:
    f = store.resolved(query.filters)  # the image filter as the stored references it matches, once
    # Summaries that do not cover every record (an older writer appended) must not select records:
    # the time range is then not turned into positions, and the exception filter reads the records.
    behind, disagree = summaries_state(store)
    exceptions = f.exceptions if behind else ()
    if exceptions:
        f = dataclasses.replace(f, exceptions=())
    # From the last record, not the chain head: a head lowered by an edit must not hide the newest.
    newest, head = store.listing_head()
    lo = after if after is not None else 0  # positions lo < seq < hi
    # A record at MAX_SEQ (only an edit puts one there) is past what a bound can name; the page says the
    # head does not match the records.
    hi = before if before is not None else min(newest + 1, MAX_SEQ)
    if (f.since or f.until) and not behind:
        # The time range as positions too: its records lie between its days' first and last positions.
        try:
            span = store.seq_bounds(f.since, f.until)
        except SummaryAlteredError as e:
            span, disagree = (lo, hi), e.message  # not used: the records are read without them
        if span is None:
            return Page([], None, None, head=head)
        disagree = disagree or store.seq_bounds_problem(f.since, f.until, span) or ""
        if not disagree:
            lo, hi = max(lo, span[0] - 1), min(hi, span[1] + 1)
    newest_first = after is None
    rows: list[Entry] = []
    width = FIRST_WINDOW
    rare = not behind and _rare_verdicts_or_gates(store, f)
    # Reading a prefix's index entries costs what it has, probing costs the window's width: the least
    # of the prefix filters' entries (counted up to PROBE_WIDTH) says which is cheaper.
    prefixed = [g for g in f.term_groups() if any(prefix for _, _, prefix in g)]
    entries = min((store.terms_upto(g, PROBE_WIDTH) for g in prefixed), default=0)
    while lo + 1 < hi and len(rows) <= limit:
        probe = rare or width < entries
        if newest_first:
            window = dataclasses.replace(
                f, above=max(lo, hi - width - 1), below=hi, probe=probe, index_verdicts=rare
            )
            hi = (window.above or 0) + 1  # the next window ends where this one began
        else:
            window = dataclasses.replace(
                f, above=lo, below=min(hi, lo + width + 1), probe=probe, index_verdicts=rare
            )
            lo = (window.below or 1) - 1
        rows += _select(store, window, limit + 1 - len(rows), newest_first, exceptions)
        width *= WINDOW_GROWTH
    more = len(rows) > limit
    rows = rows[:limit]
    if not newest_first:
        rows.reverse()
    if not rows:
        return Page([], None, None, behind, disagree, head)
    newer_exists = more if not newest_first else before is not None
    older_exists = more if newest_first else True
    return Page(
        rows,
        newer=rows[0].seq if newer_exists else None,
        older=rows[-1].seq if older_exists else None,
        behind=behind,
        disagree=disagree,
        head=head,
    )


def _select(
    store: Store, filters: Filters, limit: int, newest_first: bool, exceptions: Sequence[str]
) -> list[Entry]:
    """Up to `limit` records the filters select and that applied one of `exceptions` (when given)."""
    if not exceptions:
        return list(store.query(filters, limit=limit, newest_first=newest_first))
    out: list[Entry] = []
    for entry in _applying(store.query(filters, newest_first=newest_first), exceptions):
        out.append(entry)
        if len(out) >= limit:
            break
    return out


def _applying(rows: Iterator[Entry], exceptions: Sequence[str]) -> Iterator[Entry]:
    """The entries of `rows` whose records applied one of `exceptions` (`name*`: a prefix); closes `rows`."""
    try:
        for entry in rows:
            if applies_exception(entry.record(), exceptions):
                yield entry
    finally:
        close = getattr(rows, "close", None)
        if callable(close):
            close()


def applies_exception(record: Mapping[str, Any], exceptions: Sequence[str]) -> bool:
    """Whether the record applied one of `exceptions` (`name*`: a prefix), as `exception_terms` says."""
    names = [
        e["name"]
        for e in record.get("exceptions") or ()
        if isinstance(e, dict) and isinstance(e.get("name"), str)
    ]
    return any(
        any(n.startswith(p[:-1]) for n in names) if p.endswith("*") else p in names for p in exceptions
    )


def _rare_verdicts_or_gates(store: Store, f: Filters) -> bool:
    """Whether the verdict and gate filters select fewer records than any other filter does.

    Their share comes from the daily summaries; each other filter's index
    entries are counted only up to that number. Then the database reads the
    verdict and gate index first and looks up only those positions for the
    other filters, whatever the window's width.
    """
    if not (f.verdicts or f.gates):
        return False
    chosen = total = 0
    try:
        counts = store.day_counts(DayRange())
    except SummaryAlteredError:
        return False  # the records are read as for a common verdict; the page flags nothing it reads
    for _, gate, verdict, n in counts:
        total += n
        if (not f.gates or gate in f.gates) and (not f.verdicts or verdict in f.verdicts):
            chosen += n
    if chosen >= RARE_SHARE * total:
        return False
    if any(store.terms_upto(group, chosen) < chosen for group in f.term_groups()):
        return False  # a rarer filter: it leads
    return not (f.exceptions and store.exceptions_upto(f.exceptions, chosen) < chosen)


def matching(store: Store, filters: Filters, *, newest_first: bool = False) -> Iterator[Entry]:
    """Every decision the filters match, streamed (the caller closes the iterator when it stops early).

    While the summaries lag the log, the exception filter is checked on the
    records rather than read from `exception_terms`.
    """
    filters = store.resolved(filters)
    if filters.exceptions and summaries_state(store)[0]:
        rows = store.query(dataclasses.replace(filters, exceptions=()), newest_first=newest_first)
        return _applying(rows, filters.exceptions)
    return store.query(filters, newest_first=newest_first)
