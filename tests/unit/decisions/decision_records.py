"""Records for the decision log tests (imported by name: `conftest` is not a unique module name)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from support.ids import uuid7_at

from trustgate.decisions.canonical import timestamp, uuid7

MakeRecord = Callable[..., dict[str, Any]]
DIGEST = "sha256:" + "ab" * 32


def digest_of(n: int) -> str:
    return "sha256:" + hashlib.sha256(str(n).encode()).hexdigest()


def commit_of(n: int) -> str:
    return hashlib.sha1(str(n).encode()).hexdigest()


def record(n: int, **overrides: Any) -> dict[str, Any]:
    """A small, varied record: namespace, image, commit and rule depend on `n`."""
    out: dict[str, Any] = {
        "schema": "trustgate.dev/decision/v1",
        "id": uuid7(),
        "time": timestamp(),
        "gate": "admission" if n % 3 == 0 else "ci",
        "mode": "enforce",
        "verdict": "deny" if n % 4 == 0 else "allow",
        "actor": {"git": {"author": {"name": "Dev", "email": f"dev{n % 5}@example.com"}}},
        "subject": {
            "commit": commit_of(n),
            "objects": [{"kind": "Deployment", "namespace": f"team-{n % 7}", "name": f"app-{n}"}],
            "images": [
                {
                    "reference": f"registry.example.com/app-{n % 11}:1.{n}",
                    "digest": digest_of(n),
                    "source": "manifest",
                }
            ],
        },
        "findings": (
            [{"rule": "pss-baseline-privileged", "severity": "error", "message": "privileged", "object": 0}]
            if n % 4 == 0
            else []
        ),
        "n": n,
    }
    if "time" in overrides and "id" not in overrides:
        out["id"] = uuid7_at(overrides["time"])  # dated like its time, as a gate makes them
    out.update(overrides)
    return out
