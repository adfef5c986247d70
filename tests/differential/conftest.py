"""The differential suite's tally (module x input comparisons), printed at the end of the run.

The suite needs the OPA oracle, PyPI `opa-golib-python-bindings` (a dev-only
dependency that publishes for Python >= 3.14): without it the suite is not
collected and the summary says so.
"""

from __future__ import annotations

import importlib.util
from typing import Any

ORACLE = importlib.util.find_spec("opa_bindings") is not None

if not ORACLE:
    collect_ignore_glob = ["test_*.py"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ORACLE:
        terminalreporter.write_line(
            "differential vs OPA: NOT RUN, opa-golib-python-bindings is not installed (ADR 0008)"
        )
        return
    from support.differential import TALLY

    if TALLY:
        retries = "built-in errors emulated"  # re-runs of comparisons already counted
        total = sum(v for k, v in TALLY.items() if k != retries)
        parts = ", ".join(f"{k} {v}" for k, v in sorted(TALLY.items()) if k != retries)
        terminalreporter.write_line(
            f"differential vs OPA: {total} module x input comparisons ({parts}; "
            f"{TALLY[retries]} strict built-in errors re-evaluated without strictness)"
        )
