"""Real components the tests start (a registry, PostgreSQL, gpg, etcd, kube-apiserver).

Under `CI=true` a test that needs one always runs: a missing component is a failure, never a
skip. On a developer's laptop without the tool the test is skipped, with the reason (and the
way to install it) shown by pytest's `-ra` summary.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True when the environment says it is CI (`CI=true`, as GitHub Actions and `.ci/run` set it)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing(component: str, install: str) -> NoReturn:
    """Stop the test: `component` is not on this machine; `install` says how to get it.

    Raises:
        pytest.fail.Exception: under CI=true.
        pytest.skip.Exception: elsewhere.
    """
    message = f"{component} is not installed ({install})"
    if in_ci():
        pytest.fail(f"{message}; under CI=true every test runs against its real components", pytrace=False)
    pytest.skip(message)
