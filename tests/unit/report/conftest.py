"""Fixtures for the report writer tests; the decisions themselves live in `report_cases`.

Helpers are imported from `report_cases` rather than from here: every test
directory may have a `conftest`, but only one module can be called that.
"""

from __future__ import annotations

import pytest
from report_cases import build_passing, build_sample

from trustgate.model import Decision


@pytest.fixture
def sample_decision() -> Decision:
    return build_sample()


@pytest.fixture
def passing_decision() -> Decision:
    return build_passing()
