"""The GitHub Actions report: one workflow command per finding, then a summary.

Each finding becomes `::error`, `::warning` or `::notice` with `file`, `line`
and `title`, which GitHub shows as an annotation on the manifest. Values are
escaped the way the Actions toolkit does (`escapeProperty` / `escapeData`), so
a message can neither end the command early nor start a new one. Decision
notes become notices without a file. The last line is plain text.

GitHub shows at most 10 annotations of each level per step; the rest stay in
the log. File paths are printed as given: the runner resolves relative paths
against the workspace, so run trustgate from the repository root.
"""

from __future__ import annotations

from collections.abc import Mapping

from trustgate.model import Decision, DocumentResult, Finding, Severity, render_path
from trustgate.report._common import (
    by_severity,
    display_file,
    document_label,
    finding_line,
    is_stdin,
    is_waived,
    summary_line,
    visible_controls,
)

COMMANDS: Mapping[Severity, str] = {
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "notice",
}


def escape_data(value: str) -> str:
    """Escape a command's message, as the toolkit's `escapeData` does."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """Escape a command property value, as the toolkit's `escapeProperty` does."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def command(name: str, properties: Mapping[str, str], message: str) -> str:
    """One workflow command line: `::name k=v,k=v::message`, everything escaped."""
    props = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    return f"::{name}{' ' + props if props else ''}::{escape_data(message)}"


def render(decision: Decision) -> str:
    """Render a decision as GitHub Actions workflow commands.

    Args:
        decision: the verdict to show.

    Returns:
        One line per finding (errors first within a document), one `::notice`
        per decision note, and a final plain summary line; no trailing newline.
    """
    lines: list[str] = []
    for result in decision.results:
        for finding in by_severity(result.findings):
            lines.append(_annotation(result, finding))
    lines.extend(command("notice", {"title": "trustgate"}, _clean(note)) for note in decision.notes)
    lines.append(f"trustgate: {summary_line(decision)}")
    return "\n".join(lines)


def _annotation(result: DocumentResult, finding: Finding) -> str:
    file = result.source.file
    line = finding_line(finding, result)
    properties: dict[str, str] = {}
    if not is_stdin(file):
        # Standard input has no file in the repository to annotate; the message names it instead.
        properties["file"] = _clean(file.replace("\\", "/"))
        properties["line"] = str(line)
    properties["title"] = _clean(finding.rule)

    parts = [f"{document_label(result)}: {finding.message}"]
    if is_stdin(file):
        parts.append(f"at {display_file(file)}:{line}")
    if finding.path:
        parts.append(f"field: {render_path(finding.path)}")
    if finding.fix:
        parts.append(f"fix: {finding.fix}")
    exc = finding.exception
    if exc is not None and is_waived(finding):
        parts.append(f"waived by exception {exc.name} (owner {exc.owner}, expires {exc.expires})")
    elif exc is not None:
        parts.append(f"exception {exc.name} (owner {exc.owner}) expired on {exc.expires}")
    if finding.note:
        parts.append(f"note: {finding.note}")
    return command(COMMANDS[finding.severity], properties, _clean("\n".join(parts)))


def _clean(text: str) -> str:
    # The log viewer renders ANSI; keep newlines (escaped later) and tabs only.
    return visible_controls(text, keep="\n\t\r")
