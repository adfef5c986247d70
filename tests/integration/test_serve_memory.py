"""`trustgate serve` holds the memory of requests in flight to a per-worker budget (ADR 7).

Large bodies sent quickly and at once must not grow a worker without bound (OOM-killed, every change
is denied under `failurePolicy: Fail` and admitted unevaluated under `Ignore`), and a small review
sent meanwhile still gets a policy answer. Real `trustgate serve` processes over real HTTPS.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support.webhook import POD, CertSet, Server, make_certs, review, start_server

MIB = 1024 * 1024
BUDGET = 256 * MIB  # trustgate.server.budget.BUDGET_BYTES (not imported: the test also runs on the base)
LARGE = 15 * MIB  # a legal size (under the 16 MiB limit), over the 256 KiB of small bodies
STALLED = 10 * MIB  # a large body that leaves no room for LARGE (110 MiB + 165 MiB > 176 MiB)
SMALL = 256 * 1024  # the largest small body
HEADERS_ONLY = 110  # connections that claim a body and send none, from one address


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertSet:
    return make_certs(tmp_path_factory.mktemp("certs"))


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _rss(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _metric(srv: Server, name: str) -> float:
    _, text = srv.health("/metrics")
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def _settles(srv: Server, name: str, value: float, what: str, seconds: float = 5) -> None:
    """Wait until the metric `name` is `value`: a worker releases a request's budget after its answer
    is sent (or its connection closed), so the client can see the answer first."""
    deadline = time.monotonic() + seconds
    while (seen := _metric(srv, name)) != value:
        assert time.monotonic() < deadline, f"{what}: {name} is {seen}, not {value}"
        time.sleep(0.05)


def _large_review(uid: str) -> bytes:
    """A legal-sized UPDATE of pods/status (answered without evaluation): the body is what costs."""
    pod: dict[str, Any] = json.loads(json.dumps(POD))
    pod["metadata"]["annotations"] = {"example.com/blob": ""}
    body = review(pod, operation="UPDATE", old=POD, sub_resource="status", uid=uid)
    raw = json.dumps(body).encode()
    pad = LARGE - len(raw)
    return raw.replace(b'"example.com/blob": ""', b'"example.com/blob": "' + b"x" * pad + b'"')


def _post(srv: Server, body: bytes, results: list[str]) -> None:
    conn = srv.connection(timeout=60)
    try:
        conn.request("POST", "/validate", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        results.append(f"{response.status}:{json.loads(data)['response']['allowed']}")
    except (OSError, ValueError, KeyError) as e:  # closed unanswered (over the budget): as when shed
        results.append(f"closed:{type(e).__name__}")
    finally:
        conn.close()


def test_concurrent_large_bodies_stay_within_the_budget_and_small_reviews_are_answered(
    certs: CertSet,
) -> None:
    srv = start_server(certs, workers=1)
    try:
        (worker,) = _children(srv.process.pid)
        small = json.dumps(review(POD)).encode()
        assert srv.post(small)[1]["response"]["allowed"] is True
        time.sleep(0.5)
        baseline = _rss(worker)
        peak = [baseline]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], _rss(worker))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        body = _large_review("0b6a3c0e-2222-4a5b-9c7d-000000000001")
        results: list[str] = []
        senders = [threading.Thread(target=_post, args=(srv, body, results)) for _ in range(64)]
        for t in senders:
            t.start()
        time.sleep(0.5)
        # A small review sent meanwhile is never starved by the large ones: a policy answer.
        small_answers: list[Any] = []
        small_started = time.monotonic()
        small_answers.append(srv.post(small))
        small_seconds = time.monotonic() - small_started
        for t in senders:
            t.join(timeout=120)
        stop.set()
        sampler.join()
        grown = peak[0] - baseline
        print(f"baseline {baseline / MIB:.0f} MiB, peak {peak[0] / MIB:.0f} MiB (+{grown / MIB:.0f}), "
              f"small answered in {small_seconds:.2f} s, answers {sorted(set(results))}")  # fmt: skip
        assert small_answers[0][0] == 200 and small_answers[0][1]["response"]["allowed"] is True
        assert grown < BUDGET, f"the worker grew {grown / MIB:.0f} MiB with 64 large bodies in flight"
        assert results.count("200:True") >= 2, results  # large legal reviews are still evaluated
        assert len(results) == 64
        _settles(srv, "trustgate_request_memory_reserved_bytes", 0, "not all given back")
        assert 0 < _metric(srv, "trustgate_request_memory_reserved_peak_bytes") <= BUDGET
        assert srv.process.poll() is None and _children(srv.process.pid) == [worker]  # not restarted
    finally:
        srv.stop()


def _open_body(srv: Server, length: int, part: int) -> ssl.SSLSocket:
    """Headers of a POST with `length` bytes of body, and the first `part` bytes of it."""
    raw = socket.create_connection(("127.0.0.1", srv.port))
    tls = srv.context().wrap_socket(raw, server_hostname="localhost")
    tls.sendall(f"POST /validate HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
    tls.sendall(b"{" + b" " * (part - 1))
    return tls


def test_the_budget_is_released_on_every_path_and_a_request_waits_for_it(certs: CertSet) -> None:
    srv = start_server(certs, workers=1)
    reserved = "trustgate_request_memory_reserved_bytes"
    try:
        # Stalled senders: a large body holds 11 x its claim once its first bytes came (10 MiB: 110 of
        # the large bodies' 176 MiB), a small one 11 x what it sent and the next chunk.
        stalled = [_open_body(srv, n, 64 * 1024) for n in (STALLED, SMALL)]
        time.sleep(0.5)
        held = _metric(srv, reserved)
        assert 11 * STALLED + 11 * 64 * 1024 < held <= 11 * STALLED + 11 * SMALL, held
        gone = _open_body(srv, MIB, 1024)  # one whose client goes away after its first bytes
        time.sleep(0.5)
        _settles(srv, reserved, held + 11 * 32 * 1024, "not what its first 32 KiB cost")
        gone.close()
        _settles(srv, reserved, held, "a client gone mid-body kept its reservation")
        # A body whose parse would cost more than is free (3 bytes a JSON object: ~45 bytes a byte)
        # is closed unanswered, as a shed connection is, without waiting (it holds budget already).
        flat = (
            json.dumps(review(POD))
            .encode()
            .replace(b'"kind": "Pod"', b'"kind": "Pod", "x": [' + b",".join([b"{}"] * (MIB - 2000)) + b"]", 1)
        )
        results: list[str] = []
        _post(srv, flat, results)
        assert results and results[0].startswith("closed:"), results
        assert _metric(srv, 'trustgate_connections_total{event="over_budget"}') == 1
        _settles(srv, reserved, held, "a request over the budget kept its reservation")
        # A large review waits for budget within its body deadline: it is answered once the stalled
        # large body falls behind the pace that would end it by its deadline and is shed for it
        # (after budget.SLOW_SECONDS; before, it waited for that body's 408 at its deadline).
        results.clear()
        waited = time.monotonic()
        waiter = threading.Thread(target=_post, args=(srv, _large_review("0b6a3c0e-3333"), results))
        waiter.start()
        time.sleep(0.3)
        small = srv.post(review(POD))  # small bodies are never starved by large ones
        assert small[0] == 200 and small[1]["response"]["allowed"] is True
        waiter.join(timeout=30)
        assert results == ["200:True"] and time.monotonic() - waited < 8, results
        large_stalled, small_stalled = stalled
        large_stalled.settimeout(15)
        assert large_stalled.recv(4096) == b""  # shed: closed unanswered, as slow senders are
        large_stalled.close()
        small_stalled.settimeout(15)
        with contextlib.suppress(OSError):
            assert small_stalled.recv(4096).startswith(b"HTTP/1.1 408")  # its body deadline
        small_stalled.close()
        assert _metric(srv, 'trustgate_connections_total{event="shed_memory"}') == 1
        _settles(srv, reserved, 0, "a timed-out body kept its reservation")
        # Bad JSON (400 after the read) gives its reservation back too.
        assert srv.post(b"{" + b" " * (4 * MIB))[0] == 400
        _settles(srv, reserved, 0, "a bad body kept its reservation")
    finally:
        srv.stop()


def _headers_only(srv: Server, length: int, path: str, source: str = "127.0.0.1") -> ssl.SSLSocket:
    """A POST from `source` that claims `length` bytes of body and sends none of them."""
    raw = socket.create_connection(("127.0.0.1", srv.port), source_address=(source, 0))
    tls = srv.context().wrap_socket(raw, server_hostname="localhost")
    tls.sendall(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n".encode()
    )
    return tls


@pytest.mark.parametrize("claim", [3 * MIB - 1, 256 * 1024], ids=["3MiB-1", "256KiB"])
def test_connections_that_claim_bodies_and_send_none_do_not_starve_a_small_review(
    certs: CertSet, claim: int
) -> None:
    """Headers-only claims held the whole budget (8 of 3 MiB - 1 reserved 11x each, for the body
    deadline of 10 s): a privileged Pod's review waited past its 8 s deadline and was admitted
    unevaluated on /validate/fail-open. Now a claim holds only its first bytes' share, and a
    small review's part cannot be filled by the connections one address may open."""
    srv = start_server(certs, workers=1)
    held: list[ssl.SSLSocket] = []
    try:
        pod: dict[str, Any] = json.loads(json.dumps(POD))
        pod["spec"]["containers"][0]["securityContext"]["privileged"] = True
        privileged = json.dumps(review(pod)).encode()  # the bundled policies deny it
        assert srv.post(privileged, path="/validate/fail-open")[1]["response"]["allowed"] is False
        # nearly as many as one address may open to a worker (ConnectionLimits.per_client 128; at
        # the limit, its own slowest connection would be shed to make room for the review)
        # and claims halving from 2 MiB to 256 B after them: what 11x the claims left free (before,
        # when claims were reserved whole) is then less than the review's own 11x
        claims = [claim] * HEADERS_ONLY + [2**k for k in range(21, 7, -1)]
        for n in claims:
            held.append(_headers_only(srv, n, "/validate/fail-open"))
            time.sleep(0.02)  # in order: each filler takes what the claims before it left
        time.sleep(1)
        reserved = _metric(srv, "trustgate_request_memory_reserved_bytes")
        started = time.monotonic()
        status, answer = srv.post(privileged, path="/validate/fail-open")
        seconds = time.monotonic() - started
        print(f"{len(claims)} headers-only claims of {claim} B hold {reserved / MIB:.1f} MiB; "
              f"the privileged Pod was answered in {seconds:.2f} s")  # fmt: skip
        assert status == 200 and answer["response"]["allowed"] is False, answer
        assert "pss-baseline-privileged" in answer["response"]["status"]["message"], answer
        assert seconds < 2
        assert reserved <= len(claims) * 11 * 32 * 1024  # 352 KiB a claim at most: its first bytes
        assert _metric(srv, 'trustgate_connections_total{event="over_budget"}') == 0
    finally:
        for tls in held:
            tls.close()
        srv.stop()


@pytest.mark.parametrize("sent", [0, 200 * 1024], ids=["headers-only", "sent-and-stalled"])
def test_slow_bodies_from_several_addresses_do_not_starve_a_small_review(certs: CertSet, sent: int) -> None:
    """A 16 MiB body that stalls after its first bytes holds the large part; small bodies that never
    come (or stall after 200 KiB: 11 bytes held a byte sent) from two addresses, each within its
    connection budget, held the small part for their body deadline: a privileged Pod's review waited
    for budget and was closed unanswered after 10 s (admitted unevaluated on /validate/fail-open).
    Now the oldest slow small bodies are shed for it (`budget.SLOW_SECONDS`)."""
    srv = start_server(certs, workers=1)
    held: list[ssl.SSLSocket] = []
    reserved = "trustgate_request_memory_reserved_bytes"
    try:
        pod: dict[str, Any] = json.loads(json.dumps(POD))
        pod["spec"]["containers"][0]["securityContext"]["privileged"] = True
        # compact, as the API server sends it: its parse estimate is more than 11x its length
        privileged = json.dumps(review(pod), separators=(",", ":")).encode()  # the bundled policies deny it
        assert srv.post(privileged, path="/validate/fail-open")[1]["response"]["allowed"] is False
        # the oldest: tiny claims, so that shedding what makes room for the review's first bytes is
        # not enough for its parse once its body has come (that too must shed, not close it)
        for _ in range(30):
            held.append(_headers_only(srv, 100, "/validate/fail-open", "127.0.0.6"))
        large = _headers_only(srv, 16 * MIB, "/validate/fail-open", "127.0.0.2")
        held.append(large)
        large.sendall(b" " * 40_000)  # past its first 32 KiB: it claims 11 x 16 MiB, the large part
        per_address = 120 if not sent else 14  # 240 x 352 KiB, or 28 x ~2.75 MiB: the small part
        for _ in range(per_address):
            for source in ("127.0.0.3", "127.0.0.4"):
                tls = _headers_only(srv, SMALL, "/validate/fail-open", source)
                if sent:
                    tls.sendall(b" " * sent)
                held.append(tls)
        time.sleep(1)  # the bodies sent have arrived and grown their reservations (shedding others)
        # what is left, filled with claims of what it holds (a third address, within its budget), until
        # it stays full (connections still reserving when the gauge is read take their part later)
        for _ in range(80):
            time.sleep(0.1)
            if (free := BUDGET - _metric(srv, reserved)) < 11 * 1024:
                break
            claim = int(min(32 * 1024, free // 11))
            held.append(_headers_only(srv, claim, "/validate/fail-open", "127.0.0.5"))
        time.sleep(1)  # every small body has been arriving for longer than budget.SLOW_SECONDS
        full = _metric(srv, reserved)
        started = time.monotonic()
        try:
            status, answer = srv.post(privileged, path="/validate/fail-open")
        except OSError as e:  # closed unanswered: the API server admits it unevaluated (fail-open)
            status, answer = 0, f"closed unanswered after {time.monotonic() - started:.1f} s: {e!r}"
        seconds = time.monotonic() - started
        print(f"{len(held)} slow bodies hold {full / MIB:.2f} MiB of {BUDGET / MIB:.0f}; "
              f"the privileged Pod was answered in {seconds:.2f} s")  # fmt: skip
        assert full > BUDGET - 11 * 1024  # no room for the review's 11 x its size without shedding
        assert status == 200 and answer["response"]["allowed"] is False, answer
        assert "pss-baseline-privileged" in answer["response"]["status"]["message"], answer
        assert seconds < 2
        assert _metric(srv, 'trustgate_connections_total{event="shed_memory"}') >= 1
        assert _metric(srv, 'trustgate_connections_total{event="over_budget"}') == 0
    finally:
        for tls in held:
            tls.close()
        srv.stop()


def _claim_and_stall(srv: Server, stop: threading.Event) -> None:
    """Claim a 16 MiB body from 127.0.0.2, send its first bytes and nothing more, until stopped."""
    while not stop.is_set():
        try:
            tls = _headers_only(srv, 16 * MIB - 1, "/validate/fail-open", "127.0.0.2")
        except OSError:
            continue
        try:
            tls.sendall(b" " * 40_000)  # past its first 32 KiB: it claims 11 x 16 MiB, the large part
            tls.settimeout(12)
            tls.recv(100)  # until the server sheds it or its body deadline passes
        except OSError:
            pass
        finally:
            tls.close()


def test_a_client_claiming_large_bodies_again_and_again_does_not_keep_a_large_review_out(
    certs: CertSet,
) -> None:
    """Twenty connections that claim 16 MiB bodies and stall: each held the large part for its body
    deadline and every release was a race, so a legal 1 MiB UPDATE of a privileged Pod waited until
    its own deadline and was closed unanswered or admitted unevaluated on /validate/fail-open. Now
    large bodies take turns by client address and a claim that fell behind its pace is shed."""
    srv = start_server(certs, workers=1)
    stop = threading.Event()
    pod: dict[str, Any] = json.loads(json.dumps(POD))
    pod["metadata"]["annotations"] = {"example.com/blob": "x" * MIB}
    pod["spec"]["containers"][0]["securityContext"]["privileged"] = True
    update = json.dumps(review(pod, operation="UPDATE", old=POD), separators=(",", ":")).encode()
    claimers = [threading.Thread(target=_claim_and_stall, args=(srv, stop)) for _ in range(20)]
    try:
        for thread in claimers:
            thread.start()
        time.sleep(2)
        for _ in range(2):
            started = time.monotonic()
            try:
                status, answer = srv.post(update, path="/validate/fail-open")
            except OSError as e:  # closed unanswered: admitted unevaluated on the fail-open path
                status, answer = 0, f"closed unanswered after {time.monotonic() - started:.1f} s: {e!r}"
            seconds = time.monotonic() - started
            print(f"the 1 MiB UPDATE was answered in {seconds:.2f} s")
            assert status == 200 and answer["response"]["allowed"] is False, answer
            assert seconds < 8  # within its deadline (a stalled claim is shed after SLOW_SECONDS behind)
    finally:
        stop.set()
        srv.stop()
        for thread in claimers:
            thread.join(timeout=30)
