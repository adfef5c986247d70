"""Canonical JSON: the fast path gives exactly RFC 8785's bytes; ids are UUIDv7 and ordered."""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import uuid
from typing import Any

import pytest
import rfc8785

from trustgate.decisions.canonical import (
    CanonicalError,
    _plain,
    canonical,
    content_hash,
    timestamp,
    timestamp_micros,
    uuid7,
    uuid7_ms,
    uuid7_time,
)
from trustgate.errors import InputError


def _value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(8 if depth < 4 else 5)
    if choice == 0:
        return rng.randrange(-(2**53) + 1, 2**53)
    if choice == 1:
        return "".join(rng.choice('ab"\\\n\t\x01é€😀/<>') for _ in range(rng.randrange(6)))
    if choice == 2:
        return rng.choice([True, False, None])
    if choice == 3:
        return rng.choice([0.5, 1e21, 1e-7, 2.0, -0.0, 123.456, _float(rng)])
    if choice == 4:
        return rng.randrange(100)
    if choice in (5, 6):
        keys = ["a", "B", "é", "😀", "\ue000", "z1", "_", ""]
        return {rng.choice(keys): _value(rng, depth + 1) for _ in range(rng.randrange(5))}
    return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def _float(rng: random.Random) -> float:
    """Any finite double: a random mantissa across the whole exponent range, or a short decimal."""
    if rng.random() < 0.5:
        return rng.choice([-1, 1]) * rng.random() * 10 ** rng.randrange(-330, 309)
    return round(rng.uniform(-1e6, 1e6), rng.randrange(0, 7)) / 10 ** rng.randrange(0, 12)


def test_floats_on_the_fast_path_encode_as_rfc8785_does() -> None:
    """The boundaries where Python and ECMAScript switch to an exponent, and 200,000 other doubles."""
    rng = random.Random(754)
    edges = [1e-4, 9.999e-5, 1e-6, 1e-7, 1e16, 9.999999999999998e15, 1e21, 5e-324, 1.7976931348623157e308]
    values = [*edges, *(-v for v in edges), 0.1, 0.025, 1 / 3, 2.5, 1e15 + 0.5]
    values += [_float(rng) for _ in range(200_000)]
    for value in values:
        assert canonical(value) == rfc8785.dumps(value), value
        record = {"durationMs": value, "n": [value]}
        assert canonical(record) == rfc8785.dumps(record), value
    assert _plain({"durationMs": 0.025}) and not _plain({"durationMs": 1e-7}) and not _plain([2.0])


def test_canonical_equals_rfc8785_on_generated_values() -> None:
    rng = random.Random(8785)
    for _ in range(3000):
        value = _value(rng)
        assert canonical(value) == rfc8785.dumps(value)


def test_canonical_sorts_keys_by_utf16_units_like_rfc8785() -> None:
    value = {"\ue000": 1, "😀": 2, "a": 3}  # U+1F600 sorts before U+E000 in UTF-16
    assert canonical(value) == rfc8785.dumps(value)
    assert canonical(value).index("😀".encode()) < canonical(value).index("\ue000".encode())


def test_every_character_encodes_as_rfc8785_does() -> None:
    """Strings are escaped alike by every path (control characters, quotes, DEL, U+2028, astral)."""
    for start in range(0, 0x110000, 0x8000):
        text = "".join(chr(c) for c in range(start, start + 0x8000) if not 0xD800 <= c <= 0xDFFF)
        value = {"text": text, "list": [text[:40], {"k": text[-40:]}]}
        assert _plain(value)
        assert canonical(value) == rfc8785.dumps(value), hex(start)


def test_nesting_deeper_than_the_fast_encoder_takes_still_encodes() -> None:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(300):  # orjson stops at 255 levels; the standard library's encoder takes over
        value = {"a": value, "b": [0.5, "x"]}
    assert canonical(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), {"a": object()}, "\ud800"])
def test_values_without_an_encoding_raise(bad: Any) -> None:
    with pytest.raises(CanonicalError) as raised:
        canonical(bad)
    # In the project's hierarchy (an entry point reports it in one line), and a ValueError as before.
    assert isinstance(raised.value, InputError) and isinstance(raised.value, ValueError)
    assert raised.value.diagnostics() and "Traceback" not in raised.value.diagnostics()


def test_integers_beyond_i_json_are_marked_decimal_strings() -> None:
    # int64 fields the API server accepts (terminationGracePeriodSeconds: 2**53 + 1), and beyond.
    value = {"t": 2**53 + 1, "n": [-(2**64), 2**53 - 1], "f": 0.5, "b": True}
    assert canonical(value) == rfc8785.dumps(
        {
            "t": "i-json:int:9007199254740993",
            "n": ["i-json:int:-18446744073709551616", 2**53 - 1],
            "f": 0.5,
            "b": True,
        }
    )
    assert content_hash({"t": 2**53 + 1}) != content_hash({"t": 2**53})


def test_content_hash_is_sha256_of_canonical_bytes() -> None:
    import hashlib

    assert (
        content_hash({"b": 1, "a": [1, "x"]})
        == "sha256:" + hashlib.sha256(b'{"a":[1,"x"],"b":1}').hexdigest()
    )


def test_uuid7_is_version_7_and_strictly_increasing_within_a_millisecond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from trustgate.decisions import canonical as module

    monkeypatch.setattr(module, "_uuid_last", (0, 0))  # as in a fresh process
    ids = [uuid7(ms=1_700_000_000_000) for _ in range(5000)]  # more than the 12-bit counter holds
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert uuid7_time(ids[0]) is not None and uuid7_time(ids[0]).year == 2023  # type: ignore[union-attr]
    assert uuid7_time(str(uuid.uuid4())) is None
    later = uuid7(ms=1_600_000_000_000)  # a clock that steps back does not make ids go backwards
    assert later > ids[-1]


def test_timestamp_of_now_has_the_fixed_form_and_is_now() -> None:
    before = dt.datetime.now(dt.UTC)
    text = timestamp()
    after = dt.datetime.now(dt.UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text)
    moment = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    assert before <= moment <= after
    assert timestamp(moment) == text  # the same text as a given moment's
    assert timestamp(dt.datetime(2025, 1, 31, 13, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))) == (
        "2025-01-31T12:00:00.000000Z"
    )


def test_timestamps_have_four_digit_years_and_sort_as_text_like_time() -> None:
    """glibc's `%Y` writes year 999 as `999`: its text sorted after 2026's, so `since=0999-01-01`
    found nothing. Years from 1000 on are written exactly as before (records' bytes unchanged)."""
    moments = [dt.datetime(year, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC) for year in (1, 99, 999, 1000, 2026, 9999)]
    texts = [timestamp(m) for m in moments]
    assert texts[:3] == [
        "0001-01-02T03:04:05.000006Z",
        "0099-01-02T03:04:05.000006Z",
        "0999-01-02T03:04:05.000006Z",
    ]
    assert texts == sorted(texts)
    for moment, text in zip(moments[3:], texts[3:], strict=True):
        assert text == moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # what records held before


def test_uuid7_random_bits_differ_in_a_forked_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random bits are read from the system in blocks; a child forked with part of a block left must
    read its own, or parent and child would make ids with the same random bits."""
    from trustgate.decisions import canonical as module

    # Ids made later in this process carry this test's time, not 2027's (they would be misdated).
    monkeypatch.setattr(module, "_uuid_last", module._uuid_last)
    uuid7()  # the parent now holds a block
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        os.write(writer, uuid7(ms=1_800_000_000_000).encode())
        os._exit(0)
    os.close(writer)
    child = os.read(reader, 100).decode()
    os.close(reader)
    os.waitpid(pid, 0)
    ours = uuid7(ms=1_800_000_000_001)
    assert uuid.UUID(child).int & ((1 << 62) - 1) != uuid.UUID(ours).int & ((1 << 62) - 1)


def test_a_child_forked_while_another_thread_makes_ids_can_make_its_own() -> None:
    """The parent's lock may be held (reading a block of random bits) when it forks; the child must
    not wait on that copy for ever."""
    import signal
    import threading

    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            uuid7()

    thread = threading.Thread(target=spin)
    thread.start()
    hung = 0
    try:
        for _ in range(20):
            pid = os.fork()
            if pid == 0:
                signal.alarm(5)  # a child that hangs is killed
                uuid7()
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            hung += os.WIFSIGNALED(status)
            if hung:
                break
    finally:
        stop.set()
        thread.join()
    assert hung == 0


def test_uuid7_ms_reads_only_a_uuidv7_of_the_rfc_9562_variant_as_uuid7_writes_it() -> None:
    made = "018bcfe5-687b-7abc-9def-0123456789ab"
    assert uuid7_ms(made) == 0x018BCFE5687B
    wrong_variant = made[:19] + "c" + made[20:]  # 0b110: Microsoft's reserved variant, not RFC 9562
    for other in (
        wrong_variant,
        made.upper(),
        "{" + made[:-1] + "}",
        made.replace("-", ""),
        str(uuid.uuid4()),
    ):
        assert uuid7_ms(other) is None, other
    assert uuid7_ms(None) is None and uuid7_ms(7) is None


@pytest.mark.parametrize(
    "text",
    [
        "2025-06-01T12:00:00.000000",  # no offset
        "2025-06-01",
        "2025-06-01T12:00:00.000000-23:59",
        "2025-06-01T12:00:00.000000+00:00",
        "2025-06-01T12:00:00Z",
        "2025-06-01T12:00:00.000000z",
        "2025-02-30T12:00:00.000000Z",
        "2025-06-01T12:00:00.000000Z\n",
        "\uff12\uff10\uff12\uff15-06-01T12:00:00.000000Z",  # digits, but not ASCII ones
    ],
)
def test_a_time_not_exactly_in_timestamps_form_is_none(text: str) -> None:
    assert timestamp_micros(text) is None


def test_timestamp_micros_reads_what_timestamp_writes() -> None:
    moment = dt.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=dt.UTC)
    assert timestamp_micros(timestamp(moment)) == int(moment.timestamp()) * 1_000_000 + 123456
    # What releases before the 4-digit year fix wrote (strftime's %Y) for any year a clock shows.
    assert timestamp_micros(moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")) == timestamp_micros(timestamp(moment))
