"""The auditor UI's HTTP application (Starlette, Jinja2 templates): read-only pages over the decision log.

Owns: routes, access control (the Host allowlist, bearer tokens compared in constant time),
security headers, and turning every error into a page with its reason: bad
input is a 400 naming the parameter, an unreadable store a 503, never a
traceback. No route writes to the log: the only POST starts a verification,
which reads (ADR 11). Leaves out: serving (uvicorn, `trustgate.cli.ui`) and
the log itself (`trustgate.decisions`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import re
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trustgate import __version__
from trustgate.config import DEFAULT_CLOCK_SKEW_SECONDS
from trustgate.decisions import vouch
from trustgate.decisions.chain import Kept, stored_checkpoint_problem
from trustgate.decisions.log import Store
from trustgate.decisions.record import MALFORMED_RECORD, VERDICTS, index_terms
from trustgate.decisions.store import Filters, InconsistentLogError
from trustgate.decisions.summary import DayRange, SummaryAlteredError
from trustgate.errors import Error
from trustgate.report._common import visible_controls
from trustgate.ui import charts, evidence, query
from trustgate.ui.explain import explain, list_row, unreadable
from trustgate.ui.query import BadRequestError, Query
from trustgate.ui.verify import Verifications

HERE = Path(__file__).parent
COOKIE = "trustgate_ui"  # holds the token a browser signed in with (HttpOnly, SameSite=Strict)
MAX_LOGIN_BYTES = 4096  # the sign-in form's body
OVERVIEW_DAYS = 30  # the overview's default range
EXPIRING_DAYS = 30  # "expiring soon"
OVERVIEW_SCAN = 20_000  # records with exceptions read for a filtered overview's exception panels
COUNTED_RECORDS = 20_000  # newest matching records a filtered overview counts (without summaries)
LEAD_ESTIMATE = 200_000  # index entries counted (at most) per filter to find the rarest
REPORT_ROWS = 1_000  # rows of the printable report
_KEY = re.compile(r"[0-9a-fA-F-]{4,36}|#[0-9]{1,19}")

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True, slots=True)
class Settings:
    """What `trustgate ui` starts the application with.

    Attributes:
        open_store: opens the decision log (one connection per request, closed after it).
        allowed_hosts: the host names (lower case, IPv6 in brackets) a request's Host header may
            name; any other is refused, so a DNS-rebinding page (attacker.example resolving to
            127.0.0.1) cannot read the pages or post as the UI's own origin (`host_name`).
        tokens: accepted bearer tokens; empty: no token needed (only on a loopback address).
        public_key: when given, the Ed25519 key every checkpoint must be signed by: for Verify, and
            for every checkpoint the pages, proofs and archives vouch for (else the key stored beside it).
        kept: reads the checkpoints the auditor kept (`--checkpoint`, `--checkpoint-dir`), signatures
            checked, at each Verify: the log must extend each of them; None: none were given.
        kept_sources: the files and directories `kept` reads, as given (shown on the pages).
        tls: served over HTTPS (adds Strict-Transport-Security).
        clock_skew: seconds Verify allows a record's time to lie beyond its bounds, as `log verify
            --clock-skew` (decisionLog.checkpoint.clockSkewSeconds).
    """

    open_store: Callable[[], Store]
    allowed_hosts: frozenset[str]
    tokens: tuple[str, ...] = ()
    public_key: Any = None
    kept: Callable[[], list[Kept]] | None = None
    kept_sources: tuple[str, ...] = ()
    tls: bool = False
    clock_skew: float = DEFAULT_CLOCK_SKEW_SECONDS


def create_app(settings: Settings) -> ASGIApp:
    """The application, wrapped in access control and security headers."""
    ui = _UI(settings)
    routes = [
        Route("/", ui.home),
        Route("/login", ui.login),
        Route("/overview", ui.overview),
        Route("/decisions", ui.decisions),
        Route("/decisions/{key}", ui.decision),
        Route("/decisions/{key}/proof", ui.proof),
        Route("/integrity", ui.integrity),
        Route("/integrity/verify", ui.verify, methods=["POST"]),
        Route("/integrity/verify/{job}", ui.verification),
        Route("/export", ui.export),
        Route("/report", ui.report),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            BadRequestError: ui.bad_request,
            InconsistentLogError: ui.inconsistent,
            Error: ui.unavailable,
            HTTPException: ui.http_error,
            Exception: ui.internal_error,
        },
    )
    return _Guard(app, settings)


class _Guard:
    """The Host allowlist, bearer tokens, a same-origin check on POST, and the security headers."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.allowed_hosts = settings.allowed_hosts
        self.tls = settings.tls
        self.digests = [hashlib.sha256(t.encode()).digest() for t in settings.tokens]

    def _valid(self, token: str) -> bool:
        given = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        # Every token is compared, in constant time: neither the match nor its position shows in the timing.
        return sum(hmac.compare_digest(given, d) for d in self.digests) > 0

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        if not self.digests:
            return True
        scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return self._valid(token.strip())
        cookie = session_cookie(headers.get(b"cookie", b"").decode("latin-1"))
        return bool(cookie) and self._valid(cookie)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [
            (b"content-security-policy", CSP.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),  # no-referrer would make POSTs send `Origin: null`
            (b"x-frame-options", b"DENY"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"cache-control", b"no-store"),
        ]
        if self.tls:
            extra.append((b"strict-transport-security", b"max-age=31536000"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in extra}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": [*kept, *extra]}
            await send(message)

        headers = dict(scope.get("headers") or [])
        path = scope["path"]
        # Before anything else: with the Host checked, `_same_origin` compares Origin with a name
        # this UI answers to, never with one a rebinding page chose.
        host = host_name(headers.get(b"host", b"").decode("latin-1"))
        if host not in self.allowed_hosts:
            await _plain(
                421,
                f"421 Misdirected Request: this UI does not answer to the host name {host[:80]!r}; "
                "its operator can allow a name with `trustgate ui --allowed-host NAME`",
            )(scope, receive, send_with_headers)
            return
        if path == "/login" and scope["method"] == "POST" and self.digests:
            await self._login(scope, receive, send_with_headers, headers)
            return
        if path == "/logout" and scope["method"] == "POST" and self.digests:
            if not _same_origin(scope, headers):
                await _plain(403, "403 Forbidden: a request from another site")(
                    scope, receive, send_with_headers
                )
                return
            signed_out = RedirectResponse("/login", status_code=303)
            signed_out.delete_cookie(COOKIE, path="/", secure=self.tls, httponly=True, samesite="strict")
            await signed_out(scope, receive, send_with_headers)
            return
        public = path == "/login" or path.startswith("/static/")  # the sign-in form and its stylesheet
        if not public and not self._authorized(headers):
            response: Response = HTMLResponse(
                _UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": 'Bearer realm="trustgate"'}
            )
            await response(scope, receive, send_with_headers)
            return
        if scope["method"] == "POST" and not _same_origin(scope, headers):
            await _plain(403, "403 Forbidden: a request from another site")(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    async def _login(self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes]) -> None:
        """Check a token typed into /login and keep it in an HttpOnly cookie (what a browser can send)."""
        if not _same_origin(scope, headers):
            await _plain(403, "403 Forbidden: a request from another site")(scope, receive, send)
            return
        body = b""
        more = True
        while more and len(body) <= MAX_LOGIN_BYTES:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        fields = urllib.parse.parse_qs(body[:MAX_LOGIN_BYTES].decode("utf-8", "replace"))
        token = (fields.get("token") or [""])[0].strip()
        if not token or not self._valid(token):
            response: Response = HTMLResponse(_LOGIN.replace("<!--reason-->", _BAD_TOKEN), status_code=401)
        else:
            response = RedirectResponse("/overview", status_code=303)
            # Percent-encoded: a token with `;`, `,`, `"` or `/` would otherwise be sent quoted and
            # escaped (http.cookies), and the cookie would never match the token again.
            cookie = urllib.parse.quote(token, safe="")
            response.set_cookie(
                COOKIE, cookie, httponly=True, samesite="strict", secure=self.tls, path="/", max_age=8 * 3600
            )
        await response(scope, receive, send)


def session_cookie(header: str) -> str:
    """The token in the UI's cookie of a Cookie header ('' when absent); `_login` percent-encodes it."""
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return urllib.parse.unquote(value)
    return ""


_LOGIN = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in · trustgate</title>
<link rel="stylesheet" href="/static/style.css"></head><body><main><h1>trustgate decision log</h1>
<!--reason--><form method="post" action="/login"><label>Access token
<input type="password" name="token" id="token" autocomplete="off" required></label>
<button type="submit" id="sign-in">Sign in</button></form>
<p class="hint">A token from the UI's token file.
Scripts send it as <code>Authorization: Bearer TOKEN</code>.</p>
</main></body></html>
"""
_BAD_TOKEN = '<p class="reason" id="reason">That token is not accepted.</p>'
_UNAUTHORIZED = _LOGIN.replace(
    "<!--reason-->", '<p class="reason" id="reason">401 Unauthorized: this page needs an access token.</p>'
)


def host_name(header: str) -> str:
    """The host name of a Host header: lower case, without the port; an IPv6 address in brackets."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    name, colon, port = value.rpartition(":")
    return name if colon and port.isdigit() else value


def _same_origin(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    origin = headers.get(b"origin")
    if origin is None:
        return True  # not a browser's cross-site form (browsers send Origin on POST)
    host = headers.get(b"host", b"").decode("latin-1")
    scheme = "https" if scope.get("scheme") == "https" else "http"
    return origin.decode("latin-1") == f"{scheme}://{host}"


def _visible(value: Any) -> Any:
    """Every text a template prints, with control and bidi characters shown as escapes (`\\u202e`).

    A record's strings come from manifests and commits: an e-mail wrapped in
    U+202E ... U+202C shows reversed, as someone else's, unless an auditor
    sees the controls. Markup (the charts) escapes its own texts.
    """
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return visible_controls(value, keep="\n\t")
    return value


def _plain(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(text + "\n", status_code=status, media_type="text/plain; charset=utf-8", headers=headers)


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class _UI:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.verifications = Verifications(
            settings.open_store,
            public_key=settings.public_key,
            kept=settings.kept,
            clock_skew=settings.clock_skew,
        )
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.ChainableUndefined,  # records of older versions lack newer fields
            finalize=_visible,
        )

    # -- helpers -----------------------------------------------------------------

    @contextmanager
    def store(self) -> Iterator[Store]:
        store = self.settings.open_store()
        try:
            yield store
        finally:
            store.close()

    def page(self, template: str, request: Request, status: int = 200, **values: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(
            request=request,
            version=__version__,
            verdicts=VERDICTS,
            gates=query.GATES,
            signed_in=bool(self.settings.tokens),
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def _query(self, request: Request, *, allowed: Sequence[str] = ()) -> Query:
        return query.parse_query(request.query_params.multi_items(), allowed=allowed)

    # -- errors -------------------------------------------------------------------

    async def bad_request(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, BadRequestError)
        return self.page("error.html", request, 400, title="Bad request", message=exc.message, hint=exc.hint)

    async def inconsistent(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, InconsistentLogError)
        return self.page(
            "error.html",
            request,
            409,
            title="The decision log is inconsistent",
            message=exc.message,
            hint=exc.hint,
        )

    async def unavailable(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Error)
        return self.page(
            "error.html",
            request,
            503,
            title="The decision log cannot be read",
            message=exc.message,
            hint=exc.hint,
        )

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return self.page(
            "error.html", request, exc.status_code, title=f"{exc.status_code}", message=exc.detail, hint=""
        )

    async def internal_error(self, request: Request, exc: Exception) -> Response:
        # The cause goes to the server's log (uvicorn logs the exception), never into the page.
        return self.page(
            "error.html", request, 500, title="Internal error", message="the page could not be built", hint=""
        )

    # -- pages ----------------------------------------------------------------------

    def login(self, request: Request) -> Response:
        return HTMLResponse(_LOGIN)

    def home(self, request: Request) -> Response:
        return RedirectResponse("/overview", status_code=303)

    def decisions(self, request: Request) -> Response:
        q = self._query(request, allowed=query.PAGE_PARAMS)
        before, after, limit = query.page_bound(request.query_params)
        with self.store() as store:
            result = query.page(store, q, before=before, after=after, limit=limit)
        rows = [list_row(e) for e in result.entries]
        extra: dict[str, str | int] = {} if limit == query.DEFAULT_LIMIT else {"limit": limit}
        return self.page(
            "decisions.html",
            request,
            rows=rows,
            q=q,
            values=_values(q),
            newer=q.url("/decisions", after=result.newer, **extra) if result.newer is not None else None,
            older=q.url("/decisions", before=result.older, **extra) if result.older is not None else None,
            export=q.url("/export"),
            report=q.url("/report"),
            overview=q.url("/overview"),
            behind=result.behind,
            disagree=result.disagree,
            head=result.head,
            differing=sum(1 for r in rows if r["differs"]),
        )

    def _entry(self, store: Store, key: str) -> Any:
        if not _KEY.fullmatch(key):
            raise BadRequestError(f"not a decision id: {key[:80]!r}", hint="an id, a unique prefix, or #SEQ")
        try:
            entry = store.get(key)
        except InconsistentLogError:
            raise  # its own page: the log was altered, the request is fine
        except Error as e:  # a prefix matching several decisions
            raise BadRequestError(e.message, hint=e.hint) from e
        if entry is None:
            raise HTTPException(404, f"no decision {key!r}")
        return entry

    def _covered(self, store: Store, key: str) -> tuple[Any, str | None, vouch.Coverage | None]:
        """The decision `key`, why its record is malformed (None: it is not) and, when it is not, the
        record under the checkpoints that verify (with `--verifier-key` when given), read from `store`.

        A malformed record (an altered row) is shown flagged and never vouched for: no coverage.
        """
        entry = self._entry(store, key)
        malformed = unreadable(entry)
        if malformed is not None:
            return entry, malformed, None
        return entry, None, vouch.cover(store, entry, pinned=self.settings.public_key)

    def _coverage(self, key: str) -> tuple[Any, str | None, vouch.Coverage | None]:
        """`_covered`, in one snapshot of the log."""
        with self.store() as store, store.snapshot():
            return self._covered(store, key)

    def decision(self, request: Request) -> Response:
        with self.store() as store, store.snapshot():
            entry, malformed, coverage = self._covered(store, request.path_params["key"])
            # the stored hash and prev columns, checked against the records
            columns = vouch.read_chain_columns(store, entry)
        if malformed is not None:  # an altered row: say so, with what is stored
            return self.page(
                "malformed.html",
                request,
                entry=entry,
                reason=malformed,
                stored=repr(entry.body),
                chain=columns,
            )
        return self.page(
            "decision.html",
            request,
            entry=entry,
            d=explain(entry),
            c=coverage,
            stem=evidence.file_stem(entry),
            chain=columns,
            raw=json.dumps(entry.record(), indent=2, sort_keys=True),
        )

    def proof(self, request: Request) -> Response:
        entry, malformed, coverage = self._coverage(request.path_params["key"])
        label = f"decision {entry.id} (#{entry.seq})"
        if malformed is not None or coverage is None:
            raise HTTPException(
                409,
                f"NOT PROVEN: {label}: its stored record is malformed ({malformed}); no proof is given; "
                "run `trustgate log verify`",
            )
        if coverage.problem is not None:
            raise HTTPException(409, f"NOT PROVEN: {label}: {coverage.problem}; no proof is given")
        if coverage.vouched is None and coverage.refused:
            raise HTTPException(
                409,
                f"NOT PROVEN: {label}: no checkpoint covering it verifies: {coverage.refused[0].describe()}",
            )
        if coverage.vouched is None:
            raise HTTPException(
                409,
                f"{label} is not yet covered by a signed tree checkpoint; "
                "sign one with `trustgate log checkpoint --key PATH`",
            )
        return JSONResponse(
            coverage.proof(),
            headers={"Content-Disposition": f'attachment; filename="proof-{evidence.file_stem(entry)}.json"'},
        )

    def integrity(self, request: Request) -> Response:
        pinned = self.settings.public_key
        with self.store() as store, store.snapshot():
            newest = store.checkpoints(newest=1)
            count = store.checkpoint_count()
            tree, refused = vouch.newest_vouched(store, pinned=pinned)
            beyond = vouch.beyond_log(store, tree) if tree is not None else None
            size, head = store.head()
            head_problem = store.listing_head()[1]
            behind, disagree = query.summaries_state(store)
        latest = newest[-1] if newest else None
        return self.page(
            "integrity.html",
            request,
            latest=latest,
            latest_problem=stored_checkpoint_problem(latest, pinned) if latest is not None else None,
            tree=tree,
            beyond=beyond,
            refused=refused,
            size=size,
            head=head,
            head_problem=head_problem,
            count=count,
            behind=behind,
            disagree=disagree,
            job=self.verifications.latest,
            kept_sources=self.settings.kept_sources,
        )

    def verify(self, request: Request) -> Response:
        job = self.verifications.start()
        return RedirectResponse(f"/integrity/verify/{job.id}", status_code=303)

    def verification(self, request: Request) -> Response:
        job_id = request.path_params["job"]
        job = self.verifications.get(job_id) if re.fullmatch(r"[0-9a-f]{32}", job_id) else None
        if job is None:
            raise HTTPException(404, "no such verification run (runs are kept while the UI runs)")
        return self.page("verification.html", request, job=job)

    def export(self, request: Request) -> Response:
        q = self._query(request, allowed=("name",))
        raw_name = request.query_params.get("name") or "trustgate-evidence"
        name = evidence.safe_name(raw_name)
        if name is None:
            raise BadRequestError(
                f"not a plain file name: {raw_name[:80]!r}",
                hint="letters, digits, '.', '_' and '-', without a path",
            )
        with self.store() as store:
            total = store.count(q.filters)
            if total > evidence.MAX_ARCHIVE_RECORDS:
                raise BadRequestError(
                    f"{total} decisions match; an archive holds at most {evidence.MAX_ARCHIVE_RECORDS}",
                    hint="narrow the filters, or use `trustgate log export` for a bulk export",
                )
            with store.snapshot():
                archive = evidence.build_archive(
                    store,
                    _capped(query.matching(store, q.filters)),
                    description=_describe(q),
                    pinned=self.settings.public_key,
                )
        filename = name.removesuffix(".zip") + ".zip"
        return Response(
            archive.data,
            media_type="application/zip",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    def overview(self, request: Request) -> Response:
        q = self._query(request)
        today = _today()
        filters = q.filters
        if filters.since is None and filters.until is None:
            since = dt.datetime.combine(today - dt.timedelta(days=OVERVIEW_DAYS - 1), dt.time(), dt.UTC)
            filters = _with(filters, since=since.strftime("%Y-%m-%dT%H:%M:%S.000000Z"))
        days_asked = _day_range(filters)
        with self.store() as store, store.snapshot():
            behind, disagree = query.summaries_state(store)
            try:
                if days_asked is not None and not behind:
                    o = _summarized(store, days_asked, today)
                elif (
                    behind and filters.exceptions
                ):  # the exception index lacks the records the summaries lack
                    o = _tallied(store, filters, today)
                else:
                    o = _counted(store, filters, today, behind=behind)
            except SummaryAlteredError as e:  # read without them, flagged
                behind, disagree = True, e.message
                if filters.exceptions:
                    o = _tallied(store, filters, today)
                else:
                    o = _counted(store, filters, today, behind=True)
        verdicts = [v for v in VERDICTS if not filters.verdicts or v in filters.verdicts]
        gates = [g for g in query.GATES if not filters.gates or g in filters.gates]
        by_verdict = {v: _per_day(o.counts, 2, v) for v in verdicts}
        by_gate = {g: _per_day(o.counts, 1, g) for g in gates}
        seen = sorted({day for day, _, _, _ in o.counts})
        days = _days(filters.since, filters.until, seen, today)
        soon = (today + dt.timedelta(days=EXPIRING_DAYS)).isoformat()
        in_force = [e for e in o.exceptions if not e["expired"]]
        totals: Counter[str] = Counter()
        for _, _, verdict, n in o.counts:
            totals[verdict] += n
        return self.page(
            "overview.html",
            request,
            q=q,
            values=_values(q),
            since=(filters.since or "")[:10],
            total=sum(totals.values()),
            verdict_counts=sorted(totals.items()),
            by_verdict=charts.stacked_by_day(days, by_verdict, title="Decisions per day by verdict"),
            by_gate=charts.stacked_by_day(days, by_gate, title="Decisions per day by gate"),
            denied=charts.top_bars(o.denied, title="Top denied rules"),
            namespaces=charts.top_bars(o.namespaces, title="Top namespaces", colour="#1565c0"),
            in_force=in_force,
            expiring=[e for e in in_force if e["expires"] and e["expires"] <= soon],
            waived=o.waived,
            scanned=o.scanned,
            capped=o.capped,
            malformed=o.malformed,
            behind=behind,
            disagree=disagree,
            counted_records=COUNTED_RECORDS,
            scan_limit=OVERVIEW_SCAN,
            decisions=q.url("/decisions"),
        )

    def report(self, request: Request) -> Response:
        q = self._query(request)
        with self.store() as store:
            if q.filters.exceptions and store.summaries_behind():  # the exception index lacks records
                t = _tally(query.matching(store, q.filters), None)
                total, stats = t.records, t.stats(top=20)
            else:
                total = store.count(q.filters)
                stats = store.stats(q.filters, top=20)
            rows = [
                list_row(e) for e in _first(query.matching(store, q.filters, newest_first=True), REPORT_ROWS)
            ]
            tree, refused = vouch.newest_vouched(store, pinned=self.settings.public_key)
        return self.page(
            "report.html",
            request,
            q=q,
            description=_describe(q),
            total=total,
            stats=stats,
            rows=rows,
            shown=len(rows),
            differing=sum(1 for r in rows if r["differs"]),
            tree=tree,
            refused=refused,
            generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        )


def _first(rows: Iterator[Any], n: int) -> Iterator[Any]:
    try:
        for i, row in enumerate(rows):
            if i >= n:
                return
            yield row
    finally:
        close = getattr(rows, "close", None)
        if callable(close):
            close()


def _capped(rows: Iterator[Any]) -> Iterator[Any]:
    for n, row in enumerate(rows, start=1):
        if n > evidence.MAX_ARCHIVE_RECORDS:
            raise BadRequestError(
                f"more than {evidence.MAX_ARCHIVE_RECORDS} decisions match; that is what one archive holds",
                hint="narrow the filters, or use `trustgate log export` for a bulk export",
            )
        yield row


@dataclass(frozen=True, slots=True)
class _Overview:
    """What the overview shows, from the summaries or counted from the records."""

    counts: list[tuple[str, str, str, int]]  # (day, gate, verdict, decisions)
    denied: list[tuple[str, int]]  # top rules of denied decisions
    namespaces: list[tuple[str, int]]
    exceptions: list[dict[str, Any]]  # applied in the range, each as the newest record saw it
    waived: list[dict[str, Any]]  # (rule, exception, count) of findings waived
    scanned: int  # records read for the exception panels (0: from the summaries)
    capped: bool = False  # counted over the newest COUNTED_RECORDS matching records only
    malformed: int = 0  # malformed records read (altered rows): left out of the counts, and the page says so


_MIDNIGHT = "T00:00:00.000000Z"


def _day_range(filters: Filters) -> DayRange | None:
    """The summaries' question for these filters; None when they need the records (any other filter)."""
    one = (
        filters.namespaces if len(filters.namespaces) == 1 and not filters.namespaces[0].endswith("*") else ()
    )
    plain = Filters(
        since=filters.since,
        until=filters.until,
        gates=filters.gates,
        verdicts=filters.verdicts,
        namespaces=one,
    )
    if filters != plain:
        return None
    bounds = [b for b in (filters.since, filters.until) if b]
    if any(not b.endswith(_MIDNIGHT) for b in bounds):
        return None  # a time of day: the daily counts cannot split it
    return DayRange(
        since=filters.since[:10] if filters.since else None,
        until=filters.until[:10] if filters.until else None,
        gates=filters.gates,
        verdicts=filters.verdicts,
        namespace=one[0] if one else "",
    )


def _summarized(store: Store, days: DayRange, today: dt.date) -> _Overview:
    """The overview from the daily summaries: a few indexed reads, whatever the size of the log."""
    denied: list[tuple[str, int]] = []
    if not days.verdicts or "deny" in days.verdicts:
        denied = store.top_values("rule", dataclasses.replace(days, verdicts=("deny",)))
    applied = dict(store.top_values("exception", days, top=1000))
    exceptions = [
        {**e, **_expiry(e, today), "findings": applied[e["name"]], "last_seen": e["last_time"][:10]}
        for e in store.exceptions_seen(sorted(applied))
    ]
    waived = []
    for value, count in store.top_values("waived", days, top=20):
        rule, _, name = value.partition("\x1f")
        waived.append({"rule": rule, "exception": name, "count": count})
    return _Overview(
        counts=store.day_counts(days),
        denied=denied,
        namespaces=store.top_values("namespace", days),
        exceptions=sorted(exceptions, key=lambda e: (e["expires"] or "9999", e["name"])),
        waived=waived,
        scanned=0,
    )


def _counted(store: Store, filters: Filters, today: dt.date, *, behind: bool = False) -> _Overview:
    """The overview counted from the records the filters select (filters the summaries do not split by).

    At most the newest COUNTED_RECORDS matching records are counted (the
    page says so), so a filter half the log matches answers in about a
    second rather than in tens of seconds. With `behind` (the summaries lag
    the log) the time range is not read as positions from them.
    """
    filters = store.resolved(filters)  # the image filter as the stored references it matches, once
    if (filters.since or filters.until) and not behind:
        span = store.seq_bounds(filters.since, filters.until)  # the range as positions, for every lookup
        filters = _with(filters, above=span[0] - 1, below=span[1] + 1) if span else filters
    groups = filters.term_groups()
    if len(groups) > 1:  # the rarest index filter leads, the others are probed for its positions only
        entries = [store.terms_upto(g, LEAD_ESTIMATE) for g in groups]
        filters = _with(filters, lead=entries.index(min(entries)))
    floor = store.nth_newest(filters, COUNTED_RECORDS)
    if floor is not None:
        filters = _with(filters, above=floor - 1)  # the window reaches into every index lookup
        prefixed = [g for g in groups if any(prefix for _, _, prefix in g)]
        width = (filters.below or store.head()[0] + 1) - floor
        if prefixed and width < min(store.terms_upto(g, LEAD_ESTIMATE) for g in prefixed):
            filters = _with(filters, probe=True)  # probing the window's positions reads less
    denied: list[tuple[str, int]] = []
    if not filters.verdicts or "deny" in filters.verdicts:
        denied = store.live_top("rule", _with(filters, verdicts=("deny",)), top=10)
    exceptions, waived, scanned, malformed = _exceptions(store, filters, today)
    return _Overview(
        counts=store.live_day_counts(filters),
        denied=denied,
        namespaces=store.live_top("namespace", filters, top=10),
        exceptions=exceptions,
        waived=waived,
        scanned=scanned,
        capped=floor is not None,
        malformed=malformed,
    )


@dataclass
class _Tally:
    """Counts over records read one by one (while the exception index lags the log)."""

    records: int = 0
    capped: bool = False
    malformed: int = 0  # records skipped: not decision records
    days: Counter[tuple[str, str, str]] = dataclasses.field(default_factory=Counter)  # day, gate, verdict
    rules: Counter[str] = dataclasses.field(default_factory=Counter)
    denied: Counter[str] = dataclasses.field(default_factory=Counter)  # rules of denied records
    namespaces: Counter[str] = dataclasses.field(default_factory=Counter)

    def stats(self, *, top: int) -> dict[str, list[tuple[str, int]]]:
        """What `Store.stats` gives, from these counts."""
        by: dict[str, Counter[str]] = {"verdict": Counter(), "gate": Counter(), "day": Counter()}
        for (day, gate, verdict), n in self.days.items():
            by["verdict"][verdict] += n
            by["gate"][gate] += n
            by["day"][day] += n
        out = {name: sorted(c.items()) for name, c in by.items()}
        out["rule"] = _top(self.rules, top)
        out["namespace"] = _top(self.namespaces, top)
        return out


def _top(counts: Counter[str], top: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def _tally(entries: Iterator[Any], limit: int | None) -> _Tally:
    """Count the entries (at most `limit`: then `capped`); closes the iterator."""
    t = _Tally()
    try:
        for entry in entries:
            if limit is not None and t.records >= limit:
                t.capped = True
                break
            try:
                if entry.malformed() is not None:
                    raise ValueError(entry.malformed())
                terms = index_terms(entry.record())
            except MALFORMED_RECORD:
                t.malformed += 1
                continue
            t.records += 1
            t.days[(entry.time[:10], entry.gate, entry.verdict)] += 1
            for kind, value in terms:
                if kind == "namespace":
                    t.namespaces[value] += 1
                elif kind == "rule":
                    t.rules[value] += 1
                    if entry.verdict == "deny":
                        t.denied[value] += 1
    finally:
        close = getattr(entries, "close", None)
        if callable(close):
            close()
    return t


def _tallied(store: Store, filters: Filters, today: dt.date) -> _Overview:
    """The overview counted from the newest COUNTED_RECORDS matching records, read one by one.

    For an `exception` filter while the summaries lag the log: the exception
    index lacks the records they lack, so the records are checked instead.
    """
    t = _tally(query.matching(store, filters, newest_first=True), COUNTED_RECORDS)
    exceptions, waived, scanned, malformed = _exceptions(store, filters, today)
    return _Overview(
        counts=sorted((day, gate, verdict, n) for (day, gate, verdict), n in t.days.items()),
        denied=_top(t.denied, 10) if not filters.verdicts or "deny" in filters.verdicts else [],
        namespaces=_top(t.namespaces, 10),
        exceptions=exceptions,
        waived=waived,
        scanned=scanned,
        capped=t.capped,
        malformed=t.malformed + malformed,
    )


def _expiry(e: dict[str, Any], today: dt.date) -> dict[str, Any]:
    expires = str(e.get("expires") or "")
    return {
        "expires": expires,
        "expired": bool(e.get("expired")) or bool(expires and expires < today.isoformat()),
    }


def _per_day(counts: Sequence[tuple[str, str, str, int]], column: int, value: str) -> dict[str, int]:
    """Decisions per day where the gate (column 1) or verdict (column 2) is `value`; days with any only."""
    out: Counter[str] = Counter()
    for row in counts:
        if row[column] == value:
            out[row[0]] += row[3]
    return {day: n for day, n in out.items() if n}


def _with(filters: Filters, **changes: Any) -> Filters:
    return dataclasses.replace(filters, **changes)


def _values(q: Query) -> dict[str, list[str]]:
    """Every value of each filter, to fill the filter form (a field each: the form keeps them all)."""
    out: dict[str, list[str]] = {}
    for name, value in q.params:
        out.setdefault(name, []).append(value)
    return out


def _describe(q: Query) -> str:
    return ", ".join(f"{k}={v}" for k, v in q.params) or "all decisions"


def _days(since: str | None, until: str | None, seen: list[str], today: dt.date) -> list[str]:
    """Every day of the range (at most a year of them), so days without decisions show as gaps.

    A day counted from records whose time column is not a time (altered) is left out.
    """
    seen = [day for day in seen if _is_day(day)]
    first = _moment(since).date() if since else dt.date.fromisoformat(seen[0]) if seen else today
    if until:
        end = _moment(until)  # exclusive: the day before, when it is a midnight (never before year 1)
        last = (end - dt.timedelta(microseconds=1)).date() if end > _FIRST_MOMENT else end.date()
    else:
        last = max(today, dt.date.fromisoformat(seen[-1])) if seen else today
    if last < first or (last - first).days > 366:
        return seen
    return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


_FIRST_MOMENT = dt.datetime.min.replace(tzinfo=dt.UTC)


def _is_day(text: str) -> bool:
    try:
        return len(text) == 10 and dt.date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


def _moment(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _exceptions(
    store: Store, filters: Filters, today: dt.date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int, int]:
    """Exceptions the newest records in the range applied, and the findings they waived (rule, exception).

    Reads only records that applied an exception (the `exception_terms`
    index), the newest OVERVIEW_SCAN of them. Also returns how many were
    read, and how many of those were malformed (skipped).
    """
    seen: dict[str, dict[str, Any]] = {}
    waived: Counter[tuple[str, str]] = Counter()
    scanned = malformed = 0
    with_exceptions = _with(filters, exceptions=filters.exceptions or ("*",))
    for entry in _first(query.matching(store, with_exceptions, newest_first=True), OVERVIEW_SCAN):
        scanned += 1
        try:
            _exceptions_of(entry, seen, waived, today)
        except MALFORMED_RECORD:
            malformed += 1
    rows = sorted(seen.values(), key=lambda e: (e["expires"] or "9999", e["name"]))
    top = [{"rule": r, "exception": n, "count": c} for (r, n), c in waived.most_common(20)]
    return rows, top, scanned, malformed


def _exceptions_of(
    entry: Any, seen: dict[str, dict[str, Any]], waived: Counter[tuple[str, str]], today: dt.date
) -> None:
    """Add one record's exceptions and waived findings to `_exceptions`' tables (newest record first).

    Raises:
        ValueError, TypeError, AttributeError: the stored record is malformed (`MALFORMED_RECORD`).
    """
    malformed = entry.malformed()
    if malformed is not None:
        raise ValueError(malformed)
    record = entry.record()
    applied = [(str(e.get("name")), e, int(e.get("findings") or 0)) for e in record.get("exceptions") or ()]
    waivers = [
        (str(f.get("rule")), str(f["exception"].get("name")))
        for f in record.get("findings") or ()
        if f.get("exception") and not f["exception"].get("expired")
    ]
    # Read in full before anything is counted: a malformed record adds nothing.
    for name, e, findings in applied:
        if name not in seen:  # newest first: the latest record's view of it
            seen[name] = {
                "name": name,
                "owner": e.get("owner"),
                "reason": e.get("reason"),
                **_expiry(e, today),
                "last_seen": str(record.get("time"))[:10],  # the record's, which its hash covers
                "findings": 0,
            }
        seen[name]["findings"] += findings
    waived.update(waivers)
