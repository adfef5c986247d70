"""The gate: one evaluation core that every gate (CI, pre-sync, admission) calls the same way.

Owns: the public names of the core (`Gate`, its two phases, `load_policy_data`).
The package is laid out as python-tuf's `TrustedMetadataSet` is: the checks
built from loaded sources are pure and shared (`checks`, `rego_check`,
`gatekeeper_check`), reading them from disk is apart (`sources`), what a
finding weighs is decided once (`verdict`), and the edges (`images`:
registries; `recorder`: the decision log; `parallel`: worker processes) are
modules of their own. Leaves out: how a request arrives and how the decision
goes out (`trustgate.cli`, `trustgate.server`, `trustgate.presync`, `trustgate.report`).
See docs/adr/0015-one-evaluation-core.md.
"""

from __future__ import annotations

from trustgate.gate.core import Gate, Policies
from trustgate.gate.sources import load_policy_data

__all__ = ["Gate", "Policies", "load_policy_data"]
