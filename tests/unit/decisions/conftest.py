"""Fixtures for the decision log: records, and a store URL for each real database."""

from __future__ import annotations

from pathlib import Path

import pytest
from decision_records import MakeRecord, record


@pytest.fixture
def make_record() -> MakeRecord:
    return record


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'decisions.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using it runs against SQLite and a real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'decisions.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url
