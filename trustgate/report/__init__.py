"""Report writers: a `Decision` in, text for a person or a machine out.

Every writer is pure: it takes the decision and returns a string, without a
trailing newline, and never writes to a stream, reads the environment or
decides on colour by itself. The CLI picks the format and the stream.
"""

from __future__ import annotations

import importlib

from trustgate.model import Decision

FORMATS: tuple[str, ...] = ("text", "json", "sarif", "junit", "github")

# Imported on use: a check run renders one format, and start-up time counts.
_MODULES = {"text": "text", "json": "json_report", "sarif": "sarif", "junit": "junit", "github": "github"}


def render(decision: Decision, fmt: str, *, color: bool = False) -> str:
    """Render a decision in one of `FORMATS`.

    Args:
        decision: the verdict to show.
        fmt: one of `FORMATS`.
        color: ANSI colour; only the `text` format uses it.

    Returns:
        The report, without a trailing newline.

    Raises:
        ValueError: `fmt` is not one of `FORMATS`.
    """
    name = _MODULES.get(fmt)
    if name is None:
        raise ValueError(f"unknown report format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    module = importlib.import_module(f"trustgate.report.{name}")
    if fmt == "text":
        return str(module.render(decision, color=color))
    return str(module.render(decision))


__all__ = ["FORMATS", "render"]
