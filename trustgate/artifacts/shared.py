"""The verification cache shared by replicas: PostgreSQL behind the in-process cache.

Owns: the table (created when absent), encoding an `ImageResult` with all its
evidence (signers, attestation verdicts, problems), the HMAC-SHA256 over
each row that makes it trustworthy (the cache key, the result and its expiry
times, signed with the operator's key: whoever can write the table but does
not hold the key cannot mark an image verified, move a result to another
digest or rule, or extend its life), wall-clock expiry times (the monotonic
clocks of two processes do not agree), and carrying on with the in-process
cache when the database cannot be reached (sharing saves registry requests;
it is never a reason to deny or to wait), deleting rows past their stale
window (each process, at most every `sweep_seconds`, on its write path),
and reporting rows it refused (counters, and a warning on the
`trustgate.cache` logger at most every `rejected_log_seconds`: a bad MAC means
someone without the key wrote the table, or replicas hold different keys).
Leaves out: the TTL, negative and
stale-if-error policy (`Lookup` applies it to whatever store it is given)
and what a result means (the verifier).

Rollback: a MAC proves who wrote a row, not that it is the latest. The write
time is signed with the row, and a row is ordered by (write time, failed over
verified). A replica never accepts a row older than one it has seen for that
key (the newest seen per key is kept in memory), and a writer never replaces a
newer row with an older one (a conditional UPDATE). What is left (ADR 5): a
replica that never saw the newer row accepts an older, genuine one restored
by whoever can write the table, within that row's signed fresh window.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import psycopg
import psycopg.conninfo

from trustgate import untrusted_json
from trustgate.artifacts.cache import Entry, MemoryCache
from trustgate.config import CacheConfig
from trustgate.errors import ConfigError
from trustgate.model import ImageProblem, ImageResult, Mode

MIN_KEY_BYTES: Final = 32  # bytes of HMAC key; an HMAC-SHA256 key shorter than its output is weak


@dataclass(frozen=True, slots=True)
class SharedCacheLimits:
    """How long the shared cache waits and how much it remembers; every limit with its unit."""

    connect_timeout_seconds: int = 2  # seconds; a cache that is slow to reach is skipped, not waited for
    statement_timeout_ms: int = 2000  # milliseconds per query, for the same reason
    reconnect_after_seconds: float = 10.0  # seconds without trying the database after it failed
    seen_keys_max: int = 100_000  # keys whose newest write time a replica remembers (~100 bytes each)
    sweep_seconds: float = 3600.0  # seconds between deletions of expired rows, per process
    rejected_log_seconds: float = 60.0  # seconds between warnings about refused rows (they come in floods)


_log = logging.getLogger("trustgate.cache")
# v2 signs the write time: a v1 row (no write time, so no order) restored later never verifies.
_DOMAIN: Final = b"trustgate image-cache v2\x00"  # separates these MACs from any other use of the key
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS trustgate_image_cache (
    key text PRIMARY KEY,
    body text NOT NULL,
    mac text NOT NULL,
    stale_until double precision NOT NULL,
    written_at double precision NOT NULL DEFAULT 0,
    failed boolean NOT NULL DEFAULT false
)
"""
# The order columns are unsigned copies of what the body signs, so that the database can refuse to
# go back (readers check the signed values). Tables made by earlier versions get them (altered only
# when missing: ALTER needs the table's owner).
_ORDER_COLUMNS: Final = """
SELECT count(*) FROM information_schema.columns
WHERE table_name = 'trustgate_image_cache' AND column_name IN ('written_at', 'failed')
"""
_ADD_ORDER_COLUMNS: Final = """
ALTER TABLE trustgate_image_cache
    ADD COLUMN IF NOT EXISTS written_at double precision NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS failed boolean NOT NULL DEFAULT false
"""

Version = tuple[float, bool]  # (signed write time, failed): a later write wins; at a tie, a failure


class SharedCache:
    """A `VerificationCache` of `ImageResult`s in PostgreSQL, read through `local`; thread-safe.

    Args:
        url: a libpq URL, postgresql://user@host:port/db.
        key: the HMAC key (at least 32 bytes).
        local: the in-process cache in front (its in-flight table and breakers are shared too).
        clock: the `Lookup`'s clock (monotonic seconds); `wall` is Unix time for the rows.
        limits: timeouts, intervals and the memory of seen keys; None: `SharedCacheLimits()`.
    """

    def __init__(
        self,
        *,
        url: str,
        key: bytes,
        local: MemoryCache[ImageResult] | Any,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        limits: SharedCacheLimits | None = None,
    ) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(f"the image cache HMAC key has {len(key)} bytes; it needs {MIN_KEY_BYTES}")
        self.url = url
        self._key = key
        self.local = local
        self.inflight = getattr(local, "inflight", {})
        self.inflight_lock = getattr(local, "inflight_lock", threading.Lock())
        self.breakers = getattr(local, "breakers", None)
        self._clock = clock
        self._wall = wall
        self.limits = limits or SharedCacheLimits()
        self._lock = threading.Lock()  # one connection, one query at a time
        self._conn: psycopg.Connection[Any] | None = None
        self._retry_at = 0.0  # monotonic; the database is not tried before this after it failed
        self.rejected = 0  # rows not trusted: MAC did not verify (tampered, another key), or rolled back
        self.bad_mac = 0  # rows whose MAC did not verify
        self.rolled_back = 0  # rows with a valid MAC but older than one this process has seen for the key
        self.swept = 0  # expired rows this process deleted
        self._sweep_at = clock()  # the first write sweeps, then every limits.sweep_seconds
        self._report_lock = threading.Lock()
        self._unreported: dict[str, int] = {}  # refused rows by reason since the last warning
        self._report_at = 0.0
        self._seen: OrderedDict[str, Version] = OrderedDict()  # newest version seen per key (bounded)
        self._seen_lock = threading.Lock()
        self.last_error = ""  # the last database error, for diagnostics

    @classmethod
    def from_config(
        cls, settings: CacheConfig, *, local: Any, clock: Callable[[], float] = time.monotonic
    ) -> SharedCache:
        """The shared cache `images.cache` describes.

        Raises:
            ConfigError: no `hmacKeyFile`, or it cannot be read, or it holds fewer than 32 bytes.
        """
        assert settings.url is not None
        if settings.hmac_key_file is None:
            raise ConfigError(
                "images.cache.url needs images.cache.hmacKeyFile: shared entries are signed",
                hint="write 32 random bytes to a file readable only by trustgate (e.g. a Secret)",
            )
        try:
            key = settings.hmac_key_file.read_bytes().strip()
        except OSError as e:
            raise ConfigError(
                f"cannot read the image cache HMAC key: {e.strerror or e}", where=str(settings.hmac_key_file)
            ) from e
        return cls(url=settings.url, key=key, local=local, clock=clock)

    # --- VerificationCache -----------------------------------------------------------------------

    def get(self, key: str) -> Entry[ImageResult] | None:
        entry: Entry[ImageResult] | None = self.local.get(key)
        if entry is not None and self._clock() < entry.fresh_until:
            return entry
        remote = self._load(key)
        if remote is not None and (entry is None or remote.fresh_until > entry.fresh_until):
            self.local.put(key, remote)
            return remote
        return entry

    def put(self, key: str, entry: Entry[ImageResult]) -> None:
        self.local.put(key, entry)
        now, wall = self._clock(), self._wall()
        failed = entry.value.status != "verified"
        body = json.dumps(
            {
                "value": encode_result(entry.value),
                "freshUntil": wall + (entry.fresh_until - now),
                "staleUntil": wall + (entry.stale_until - now),
                "writtenAt": wall,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        stale_until = wall + (entry.stale_until - now)
        self._saw(key, (wall, failed))
        # Never over a newer row (another replica's later result, or a failure at the same time).
        self._query(
            "INSERT INTO trustgate_image_cache (key, body, mac, stale_until, written_at, failed) "
            "VALUES (%s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (key) DO UPDATE SET body = excluded.body, mac = excluded.mac, "
            "stale_until = excluded.stale_until, written_at = excluded.written_at, failed = excluded.failed "
            "WHERE (trustgate_image_cache.written_at, trustgate_image_cache.failed) "
            "< (excluded.written_at, excluded.failed)",
            (key, body, self._mac(key, body), stale_until, wall, failed),
        )
        self._sweep()

    def _sweep(self) -> None:
        """Delete expired rows when this process has not done so for `limits.sweep_seconds`."""
        with self._report_lock:
            now = self._clock()
            if now < self._sweep_at:
                return
            self._sweep_at = now + self.limits.sweep_seconds
        self.swept += self.delete_expired()

    def _refuse(self, key: str, reason: str) -> None:
        """Count a refused row; warn once per `limits.rejected_log_seconds` with what was refused since."""
        self.rejected += 1
        now = self._clock()
        with self._report_lock:
            self._unreported[reason] = self._unreported.get(reason, 0) + 1
            if now < self._report_at:
                return
            counts, self._unreported = self._unreported, {}
            self._report_at = now + self.limits.rejected_log_seconds
        said = ", ".join(f"{n} {why}" for why, n in sorted(counts.items()))
        _log.warning(
            "image cache %s: refused rows of trustgate_image_cache (%s; the last for %s) and verified "
            "those images again; a bad MAC means the row was written without this replica's "
            "images.cache.hmacKeyFile (tampering, or replicas with different keys)",
            _where(self.url),
            said,
            key,
        )

    def _saw(self, key: str, version: Version) -> bool:
        """Remember `version` as seen for `key`; False when a newer one was seen (a rollback)."""
        with self._seen_lock:
            newest = self._seen.get(key)
            if newest is not None and version < newest:
                return False
            self._seen[key] = version
            self._seen.move_to_end(key)
            while len(self._seen) > self.limits.seen_keys_max:
                self._seen.popitem(last=False)
            return True

    # --- rows ------------------------------------------------------------------------------------

    def _mac(self, key: str, body: str) -> str:
        message = _DOMAIN + key.encode() + b"\x00" + body.encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def _load(self, key: str) -> Entry[ImageResult] | None:
        rows = self._query("SELECT body, mac FROM trustgate_image_cache WHERE key = %s", (key,))
        if not rows:
            return None
        body, mac = rows[0]
        if (
            not isinstance(body, str)
            or not isinstance(mac, str)
            or not hmac.compare_digest(self._mac(key, body), mac)
        ):
            # Not written by a holder of the key: ignored, and the image is verified again.
            self.bad_mac += 1
            self._refuse(key, "with a bad MAC")
            return None
        try:
            data = untrusted_json.loads(body)
            value = decode_result(data["value"])
            fresh, stale = float(data["freshUntil"]), float(data["staleUntil"])
            written = float(data["writtenAt"])
        except (ValueError, KeyError, TypeError):
            self._refuse(key, "signed but unreadable (another trustgate version?)")
            return None
        if not self._saw(key, (written, value.status != "verified")):
            # Genuine but older than a row already seen here: restored over a newer one.
            self.rolled_back += 1
            self._refuse(key, "rolled back to an older row")
            return None
        now, wall = self._clock(), self._wall()
        return Entry(value, now + (fresh - wall), now + (stale - wall))

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Rows of `sql`; [] when the database cannot be used (it is then left alone for a while)."""
        with self._lock:
            if self._conn is None:
                if self._clock() < self._retry_at:
                    return []
                try:
                    self._conn = psycopg.connect(
                        self.url,
                        autocommit=True,
                        connect_timeout=self.limits.connect_timeout_seconds,
                        options=f"-c statement_timeout={self.limits.statement_timeout_ms}",
                    )
                    self._conn.execute(_SCHEMA)
                    row = self._conn.execute(_ORDER_COLUMNS).fetchone()
                    if row is None or row[0] < 2:
                        self._conn.execute(_ADD_ORDER_COLUMNS)
                except psycopg.Error as e:
                    return self._failed(e)
            try:
                cursor = self._conn.execute(sql, params)
                return list(cursor.fetchall()) if cursor.description is not None else []
            except psycopg.Error as e:
                return self._failed(e)

    def _failed(self, error: psycopg.Error) -> list[tuple[Any, ...]]:
        self.last_error = str(error).strip() or type(error).__name__
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._retry_at = self._clock() + self.limits.reconnect_after_seconds
        return []

    def delete_expired(self) -> int:
        """Drop rows past their stale-if-error window; returns how many (for a periodic job)."""
        rows = self._query(
            "WITH gone AS (DELETE FROM trustgate_image_cache WHERE stale_until < %s RETURNING 1) "
            "SELECT count(*) FROM gone",
            (self._wall(),),
        )
        return int(rows[0][0]) if rows else 0

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _where(url: str) -> str:
    """host:port/dbname of a libpq URL or DSN, never its password."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "(unparsable database URL)"
    return f"{parts.get('host', 'localhost')}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"


def encode_result(result: ImageResult) -> dict[str, Any]:
    """An `ImageResult` as JSON, all of it: the evidence is what the cache keeps, not a boolean."""
    return {
        "reference": result.reference,
        "status": result.status,
        "rule": result.rule,
        "mode": result.mode.value if result.mode is not None else None,
        "digest": result.digest,
        "problems": [
            {
                "rule": p.rule,
                "message": p.message,
                "fix": p.fix,
                "blocking": p.blocking,
                "attestation": p.attestation,
            }
            for p in result.problems
        ],
        "signatures": [dict(s) for s in result.signatures],
        "attestations": [dict(a) for a in result.attestations],
        "platforms": [dict(p) for p in result.platforms],
        "verifiedAt": result.verified_at,
    }


def decode_result(data: Any) -> ImageResult:
    """The `ImageResult` of `encode_result`.

    Raises:
        ValueError, KeyError, TypeError: not such a document.
    """
    if not isinstance(data, dict) or not isinstance(data["reference"], str):
        raise ValueError("not an encoded image result")
    status = data["status"]
    if status not in ("verified", "failed"):  # only these are ever stored
        raise ValueError(f"status {status!r} is never cached")
    return ImageResult(
        data["reference"],
        status,
        rule=data.get("rule"),
        mode=Mode(data["mode"]) if data.get("mode") else None,
        digest=data.get("digest"),
        problems=[
            ImageProblem(
                str(p["rule"]),
                str(p["message"]),
                str(p.get("fix", "")),
                blocking=bool(p.get("blocking", True)),
                attestation=str(p.get("attestation", "")),
            )
            for p in data.get("problems", [])
        ],
        signatures=[dict(s) for s in data.get("signatures", [])],
        attestations=[dict(a) for a in data.get("attestations", [])],
        platforms=[dict(p) for p in data.get("platforms", [])],
        verified_at=data["verifiedAt"] if isinstance(data.get("verifiedAt"), str) else None,
    )
