"""The auditor UI's HTTP application (Starlette, Jinja2 templates): read-only pages over the decision log.

Owns: routes, access control (bearer tokens compared in constant time),
security headers, and turning every error into a page with its reason: bad
input is a 400 naming the parameter, an unreadable store a 503, never a
traceback. No route writes to the log: the only POST starts a verification,
which reads (ADR 11). Leaves out: serving (uvicorn, `trustgate.cli.ui`) and
the log itself (`trustgate.decisions`).
"""

from __future__ import annotations

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
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trustgate import __version__
from trustgate.decisions.log import Store
from trustgate.decisions.record import VERDICTS
from trustgate.decisions.store import Filters
from trustgate.errors import Error
from trustgate.ui import charts, evidence, query
from trustgate.ui.explain import covering, explain, summary
from trustgate.ui.query import BadRequestError, Query
from trustgate.ui.verify import Verifications

HERE = Path(__file__).parent
COOKIE = "trustgate_ui"  # holds the token a browser signed in with (HttpOnly, SameSite=Strict)
MAX_LOGIN_BYTES = 4096  # the sign-in form's body
OVERVIEW_DAYS = 30  # the overview's default range
EXPIRING_DAYS = 30  # "expiring soon"
OVERVIEW_SCAN = 50_000  # records read for the exceptions panels (no index): the newest in the range
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
        tokens: accepted bearer tokens; empty: no token needed (only on a loopback address).
        public_key: when given, the Ed25519 key every checkpoint must be signed by (verification).
        tls: served over HTTPS (adds Strict-Transport-Security).
    """

    open_store: Callable[[], Store]
    tokens: tuple[str, ...] = ()
    public_key: Any = None
    tls: bool = False


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
            Error: ui.unavailable,
            HTTPException: ui.http_error,
            Exception: ui.internal_error,
        },
    )
    return _Guard(app, settings)


class _Guard:
    """Bearer tokens, a same-origin check on POST, and the security headers on every response."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
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
            response.set_cookie(
                COOKIE, token, httponly=True, samesite="strict", secure=self.tls, path="/", max_age=8 * 3600
            )
        await response(scope, receive, send)


def session_cookie(header: str) -> str:
    """The UI's cookie in a Cookie header ('' when absent)."""
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
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


def _same_origin(scope: Scope, headers: dict[bytes, bytes]) -> bool:
    origin = headers.get(b"origin")
    if origin is None:
        return True  # not a browser's cross-site form (browsers send Origin on POST)
    host = headers.get(b"host", b"").decode("latin-1")
    scheme = "https" if scope.get("scheme") == "https" else "http"
    return origin.decode("latin-1") == f"{scheme}://{host}"


def _plain(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(text + "\n", status_code=status, media_type="text/plain; charset=utf-8", headers=headers)


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class _UI:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.verifications = Verifications(settings.open_store, public_key=settings.public_key)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.ChainableUndefined,  # records of older versions lack newer fields
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
        rows = [summary(e) for e in result.entries]
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
        )

    def _entry(self, store: Store, key: str) -> Any:
        if not _KEY.fullmatch(key):
            raise BadRequestError(f"not a decision id: {key[:80]!r}", hint="an id, a unique prefix, or #SEQ")
        try:
            entry = store.get(key)
        except Error as e:  # a prefix matching several decisions
            raise BadRequestError(e.message, hint=e.hint) from e
        if entry is None:
            raise HTTPException(404, f"no decision {key!r}")
        return entry

    def decision(self, request: Request) -> Response:
        key = request.path_params["key"]
        with self.store() as store:
            entry = self._entry(store, key)
            checkpoints = store.checkpoints()
        cover = covering(checkpoints, entry.seq)
        provable = any(c.note and c.seq >= entry.seq for c in checkpoints)
        return self.page(
            "decision.html",
            request,
            entry=entry,
            d=explain(entry),
            covering=cover,
            provable=provable,
            raw=json.dumps(entry.record(), indent=2, sort_keys=True),
        )

    def proof(self, request: Request) -> Response:
        key = request.path_params["key"]
        with self.store() as store:
            entry = self._entry(store, key)
            proof = evidence.proof_for(store, entry)
        if proof is None:
            raise HTTPException(
                409,
                f"decision {entry.id} (#{entry.seq}) is not yet covered by a signed tree checkpoint; "
                "sign one with `trustgate log checkpoint --key PATH`",
            )
        return JSONResponse(
            proof,
            headers={"Content-Disposition": f'attachment; filename="proof-{entry.id}.json"'},
        )

    def integrity(self, request: Request) -> Response:
        with self.store() as store:
            checkpoints = store.checkpoints()
            size, head = store.head()
        latest = checkpoints[-1] if checkpoints else None
        tree = evidence.latest_tree_checkpoint(checkpoints)
        return self.page(
            "integrity.html",
            request,
            latest=latest,
            tree=tree,
            vkey=evidence.vkey_of(tree) if tree is not None and tree.public_key else "",
            size=size,
            head=head,
            count=len(checkpoints),
            job=self.verifications.latest,
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
            if total > evidence.MAX_ARCHIVE_RECORDS and not q.exceptions:
                raise BadRequestError(
                    f"{total} decisions match; an archive holds at most {evidence.MAX_ARCHIVE_RECORDS}",
                    hint="narrow the filters, or use `trustgate log export` for a bulk export",
                )
            with store.snapshot():
                archive = evidence.build_archive(
                    store, _capped(query.matching(store, q.filters, q)), description=_describe(q)
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
        with self.store() as store:
            total = store.count(filters)
            stats = store.stats(filters, top=10)
            seen = [d for d, _ in stats["day"]]
            verdicts = [v for v in VERDICTS if not filters.verdicts or v in filters.verdicts]
            gates = [g for g in query.GATES if not filters.gates or g in filters.gates]
            by_verdict = {v: _per_day(store, _with(filters, verdicts=(v,)), seen) for v in verdicts}
            by_gate = {g: _per_day(store, _with(filters, gates=(g,)), seen) for g in gates}
            denied = store.stats(_with(filters, verdicts=("deny",)), top=10)["rule"]
            exceptions, waived, scanned = _exceptions(store, filters, q, today)
        days = _days(filters.since, filters.until, [d for d, _ in stats["day"]], today)
        soon = (today + dt.timedelta(days=EXPIRING_DAYS)).isoformat()
        in_force = [e for e in exceptions if not e["expired"]]
        return self.page(
            "overview.html",
            request,
            q=q,
            values=_values(q),
            since=(filters.since or "")[:10],
            total=total,
            verdict_counts=stats["verdict"],
            by_verdict=charts.stacked_by_day(days, by_verdict, title="Decisions per day by verdict"),
            by_gate=charts.stacked_by_day(days, by_gate, title="Decisions per day by gate"),
            denied=charts.top_bars(denied, title="Top denied rules"),
            namespaces=charts.top_bars(stats["namespace"], title="Top namespaces", colour="#1565c0"),
            in_force=in_force,
            expiring=[e for e in in_force if e["expires"] and e["expires"] <= soon],
            waived=waived,
            scanned=scanned,
            scan_limit=OVERVIEW_SCAN,
            decisions=q.url("/decisions"),
        )

    def report(self, request: Request) -> Response:
        q = self._query(request)
        with self.store() as store:
            total = store.count(q.filters)
            stats = store.stats(q.filters, top=20)
            rows = [
                summary(e)
                for e in _first(query.matching(store, q.filters, q, newest_first=True), REPORT_ROWS)
            ]
            checkpoints = store.checkpoints()
        return self.page(
            "report.html",
            request,
            q=q,
            description=_describe(q),
            total=total,
            stats=stats,
            rows=rows,
            shown=len(rows),
            tree=evidence.latest_tree_checkpoint(checkpoints),
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


def _per_day(store: Store, filters: Filters, days: Sequence[str]) -> dict[str, int]:
    """Decisions per day (days with any decision only): one indexed count a day, inside the range."""
    out: dict[str, int] = {}
    for day in days:
        start = f"{day}T00:00:00.000000Z"
        end = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat() + "T00:00:00.000000Z"
        since = max(start, filters.since) if filters.since else start
        until = min(end, filters.until) if filters.until else end
        count = store.count(_with(filters, since=since, until=until))
        if count:
            out[day] = count
    return out


def _with(filters: Filters, **changes: Any) -> Filters:
    import dataclasses

    return dataclasses.replace(filters, **changes)


def _values(q: Query) -> dict[str, str]:
    """The first value of each filter, to fill the filter form."""
    out: dict[str, str] = {}
    for name, value in q.params:
        out.setdefault(name, value)
    return out


def _describe(q: Query) -> str:
    return ", ".join(f"{k}={v}" for k, v in q.params) or "all decisions"


def _days(since: str | None, until: str | None, seen: list[str], today: dt.date) -> list[str]:
    """Every day of the range (at most a year of them), so days without decisions show as gaps."""
    first = _moment(since).date() if since else dt.date.fromisoformat(seen[0]) if seen else today
    if until:
        last = (_moment(until) - dt.timedelta(microseconds=1)).date()  # `until` is exclusive
    else:
        last = max(today, dt.date.fromisoformat(seen[-1])) if seen else today
    if last < first or (last - first).days > 366:
        return seen
    return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def _moment(stamp: str) -> dt.datetime:
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _exceptions(
    store: Store, filters: Filters, q: Query, today: dt.date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Exceptions the newest records in the range applied, and the findings they waived (rule, exception)."""
    seen: dict[str, dict[str, Any]] = {}
    waived: Counter[tuple[str, str]] = Counter()
    scanned = 0
    for entry in _first(query.matching(store, filters, q, newest_first=True), OVERVIEW_SCAN):
        scanned += 1
        record = entry.record()
        for e in record.get("exceptions") or ():
            name = str(e.get("name"))
            if name not in seen:  # newest first: the latest record's view of it
                expires = str(e.get("expires") or "")
                seen[name] = {
                    "name": name,
                    "owner": e.get("owner"),
                    "reason": e.get("reason"),
                    "expires": expires,
                    "expired": bool(e.get("expired")) or bool(expires and expires < today.isoformat()),
                    "last_seen": entry.time[:10],
                    "findings": 0,
                }
            seen[name]["findings"] += int(e.get("findings") or 0)
        for f in record.get("findings") or ():
            exc = f.get("exception")
            if exc and not exc.get("expired"):
                waived[(str(f.get("rule")), str(exc.get("name")))] += 1
    rows = sorted(seen.values(), key=lambda e: (e["expires"] or "9999", e["name"]))
    top = [{"rule": r, "exception": n, "count": c} for (r, n), c in waived.most_common(20)]
    return rows, top, scanned
