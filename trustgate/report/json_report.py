"""The JSON report: `Decision.to_json()` printed, nothing added.

The shape belongs to the model (`Decision.to_json`), so the CLI, the decision
log and this writer cannot drift apart. The module is not called `json` so
that it never shadows the standard library inside this package.
"""

from __future__ import annotations

from trustgate.model import Decision
from trustgate.report import _indented_json


def render(decision: Decision) -> str:
    """Render a decision as indented JSON.

    Args:
        decision: the verdict to show.

    Returns:
        `decision.to_json()` as JSON text with two-space indents and no trailing
        newline. Non-ASCII text is escaped, so the output is safe in any encoding.
    """
    return _indented_json.dumps(decision.to_json())  # json.dumps(..., indent=2), faster
