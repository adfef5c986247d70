"""Report writers: a `Decision` in, text for a person or a machine out.

Every writer is pure: it takes the decision and returns a string, without a
trailing newline, and never writes to a stream, reads the environment or
decides on colour by itself. The CLI picks the format and the stream.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from trustgate.model import Decision
from trustgate.report import github, json_report, junit, sarif, text

FORMATS: tuple[str, ...] = ("text", "json", "sarif", "junit", "github")

_WRITERS: Mapping[str, Callable[[Decision], str]] = {
    "json": json_report.render,
    "sarif": sarif.render,
    "junit": junit.render,
    "github": github.render,
}


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
    if fmt == "text":
        return text.render(decision, color=color)
    writer = _WRITERS.get(fmt)
    if writer is None:
        raise ValueError(f"unknown report format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    return writer(decision)


__all__ = ["FORMATS", "render"]
