"""The connection table: budgets per client address, what is shed first, draining."""

from __future__ import annotations

import pytest

from trustgate.server.connections import Connection, ConnectionLimits, ConnectionTable, Phase
from trustgate.server.metrics import Metrics


def _table(max_connections: int = 4, per_client: int = 3) -> ConnectionTable:
    return ConnectionTable(ConnectionLimits(max_connections=max_connections, per_client=per_client))


def _open(table: ConnectionTable, address: str, now: float, phase: Phase = Phase.HEADERS) -> Connection:
    decided = table.admit(address, now)
    assert decided.connection is not None
    assert table.enter(decided.connection, phase, now)
    return decided.connection


def test_a_client_over_its_budget_gives_up_its_own_slowest_connection() -> None:
    table = _table(max_connections=10, per_client=3)
    other = _open(table, "10.0.0.2", 0.0, Phase.IDLE)
    first = _open(table, "10.0.0.1", 1.0)
    _open(table, "10.0.0.1", 2.0)
    _open(table, "10.0.0.1", 3.0)
    decided = table.admit("10.0.0.1", 4.0)
    assert decided.connection is not None and decided.shed == [first] and decided.reason == "client budget"
    assert first.closing and not other.closing  # another client's idle connection is not touched


def test_idle_connections_are_shed_before_slow_ones_and_busy_ones_never() -> None:
    table = _table(max_connections=3, per_client=3)
    slow = _open(table, "a", 0.0, Phase.HEADERS)
    busy = _open(table, "b", 0.0, Phase.BUSY)
    idle = _open(table, "c", 5.0, Phase.IDLE)
    decided = table.admit("d", 6.0)
    assert decided.shed == [idle] and decided.reason == "slots"
    decided = table.admit("e", 7.0)
    assert decided.shed == [slow]
    assert not busy.closing


def test_a_new_connection_is_refused_only_when_every_slot_is_busy() -> None:
    table = _table(max_connections=2, per_client=2)
    _open(table, "a", 0.0, Phase.BUSY)
    _open(table, "b", 0.0, Phase.BUSY)
    decided = table.admit("c", 1.0)
    assert decided.connection is None and decided.shed == []


def test_a_shed_connection_cannot_start_another_phase() -> None:
    table = _table(max_connections=1, per_client=1)
    old = _open(table, "a", 0.0, Phase.IDLE)
    table.admit("a", 1.0)
    assert not table.enter(old, Phase.HEADERS, 2.0)
    table.release(old)
    assert len(table) == 1


def test_draining_closes_idle_connections_and_lets_requests_in_flight_finish() -> None:
    table = _table()
    idle = _open(table, "a", 0.0, Phase.IDLE)
    reading = _open(table, "b", 0.0, Phase.BODY)
    assert table.drain() == [idle]
    assert table.enter(reading, Phase.BUSY, 1.0)  # the request in flight goes on
    assert not table.enter(reading, Phase.IDLE, 2.0)  # but no next request on that connection


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ConnectionLimits(per_client=0)


def test_shed_and_refused_connections_are_counted() -> None:
    metrics = Metrics(1)
    metrics.bind(0)
    metrics.connections("shed", 3)
    metrics.connections("refused", 1)
    text = metrics.render()
    assert 'trustgate_connections_total{event="shed"} 3' in text
    assert 'trustgate_connections_total{event="refused"} 1' in text
