"""The human report: findings grouped by file, readable at a glance.

Only documents with findings are listed; documents that passed cleanly are
counted per file, and files where everything passed are folded into one line
when there are many, so a run over thousands of passing documents stays short.
Colour is ANSI and only on request: deciding whether the terminal wants it is
the CLI's business, not this module's.
"""

from __future__ import annotations

from trustgate.model import Decision, DocumentResult, Finding, ImageResult, Severity, Status
from trustgate.report._common import (
    by_severity,
    display_file,
    document_label,
    finding_details,
    group_by_file,
    is_waived,
    sub_decision,
    summary_line,
    visible_controls,
)

# Above this many fully passing files, they are folded into a single line.
MAX_CLEAN_FILES_LISTED = 10

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_DIM = "\x1b[2m"
_RED = "\x1b[31m"
_GREEN = "\x1b[32m"
_YELLOW = "\x1b[33m"

_MARKER_WIDTH = len("! warning")
_FINDING_INDENT = " " * 4
_DETAIL_INDENT = _FINDING_INDENT + " " * (_MARKER_WIDTH + 2)


class _Paint:
    """Wraps text in ANSI codes, or leaves it alone when colour is off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, *codes: str) -> str:
        if not self.enabled or not codes or not text:
            return text
        return "".join(codes) + text + _RESET


def render(decision: Decision, *, color: bool = False) -> str:
    """Render a decision for a person at a terminal.

    Args:
        decision: the verdict to show.
        color: emit ANSI colour (red errors, yellow warnings, dim info, bold headers).

    Returns:
        The report, without a trailing newline. It ends with the summary line
        `N documents: P passed, F failed, W warnings, E errors` and then one
        line per decision note.
    """
    paint = _Paint(color)
    lines: list[str] = []
    clean: list[tuple[str, int]] = []  # (file, documents) of files where every document passed cleanly

    for file, results in group_by_file(decision.results).items():
        shown = [r for r in results if r.findings]
        if not shown:
            clean.append((file, len(results)))
            continue
        if lines:
            lines.append("")
        lines.append(_file_header(decision, file, results, paint))
        for result in shown:
            lines.extend(_document_lines(result, paint))
        quiet = len(results) - len(shown)
        if quiet:
            other = " other" if shown else ""
            noun = "document" if quiet == 1 else "documents"
            lines.append(f"  {paint('✓', _GREEN)} {quiet}{other} {noun} passed")

    if clean:
        if lines:
            lines.append("")
        if len(clean) <= MAX_CLEAN_FILES_LISTED:
            for file, count in clean:
                noun = "document" if count == 1 else "documents"
                name = paint(_one_line(display_file(file)), _BOLD)
                lines.append(f"{paint('✓', _GREEN)} {name}: {count} {noun} passed")
        else:
            documents = sum(count for _, count in clean)
            lines.append(
                f"{paint('✓', _GREEN)} {len(clean)} files passed with no findings ({documents} documents)"
            )

    if decision.images:
        if lines:
            lines.append("")
        lines.append(paint("images", _BOLD))
        for image in decision.images:
            lines.extend(_image_lines(image, paint))

    if lines:
        lines.append("")
    lines.append(_summary(decision, paint))
    lines.extend(paint(f"note: {_one_line(note)}", _YELLOW) for note in decision.notes)
    return "\n".join(lines)


def _file_header(decision: Decision, file: str, results: list[DocumentResult], paint: _Paint) -> str:
    s = sub_decision(decision, results).summary
    parts = [f"{s.passed} passed"]
    if s.failed:
        parts.append(f"{s.failed} failed")
    if s.errors:
        parts.append(f"{s.errors} not evaluated")
    if s.warnings:
        parts.append(f"{s.warnings} warning" + ("" if s.warnings == 1 else "s"))
    noun = "document" if s.documents == 1 else "documents"
    return f"{paint(_one_line(display_file(file)), _BOLD)}  ({s.documents} {noun}: {', '.join(parts)})"


def _document_lines(result: DocumentResult, paint: _Paint) -> list[str]:
    status = result.status
    if status in (Status.FAILED, Status.ERROR):
        marker = paint("✗", _RED)
    elif status is Status.WARNED:
        marker = paint("!", _YELLOW)
    else:
        marker = paint("✓", _GREEN)
    where = f"{display_file(result.source.file)}:{result.source.line}"
    head = f"  {marker} {paint(_one_line(document_label(result)), _BOLD)}  {_one_line(where)}"
    if result.source.rendered_from:
        head += f"  (rendered from {_one_line(result.source.rendered_from)})"
    if status is Status.ERROR:
        head += "  " + paint("could not be evaluated", _RED)
    lines = [head]
    for finding in by_severity(result.findings):
        lines.extend(_finding_lines(finding, result, paint))
    return lines


def _finding_lines(finding: Finding, result: DocumentResult, paint: _Paint) -> list[str]:
    if is_waived(finding):
        label, codes = "· waived", (_DIM,)
    elif finding.severity is Severity.ERROR:
        label, codes = "✗ error", (_RED,)
    elif finding.severity is Severity.WARNING:
        label, codes = "! warning", (_YELLOW,)
    else:
        label, codes = "· info", (_DIM,)
    dim = codes if codes == (_DIM,) else ()

    message_lines = _safe(finding.message).split("\n")
    head = f"{paint(_one_line(finding.rule), _BOLD, *dim)}  {paint(message_lines[0], *dim)}"
    lines = [f"{_FINDING_INDENT}{paint(label.ljust(_MARKER_WIDTH), *codes)}  {head}"]
    lines.extend(_DETAIL_INDENT + paint(extra, *dim) for extra in message_lines[1:])
    for detail in finding_details(finding, result):
        for part in _safe(detail).split("\n"):
            lines.append(_DETAIL_INDENT + paint(part, *dim))
    return lines


def _image_lines(image: ImageResult, paint: _Paint) -> list[str]:
    marker = {
        "verified": paint("✓", _GREEN),
        "failed": paint("✗", _RED),
        "unverifiable": paint("✗", _RED),
    }.get(image.status, paint("·", _DIM))
    head = f"  {marker} {paint(_one_line(image.reference), _BOLD)}"
    if image.digest and image.digest not in image.reference:
        head += f" -> {image.digest}"
    head += f"  {image.status}"
    if image.rule:
        head += f" (rule {_one_line(image.rule)})"
    if image.cache != "miss":
        head += paint(f" [cache {image.cache}]", _DIM)
    lines = [head]
    for sig in image.signatures:
        who = sig.get("subject") or sig.get("keyId") or "?"
        detail = f"signed by {who}"
        if sig.get("issuer"):
            detail += f" (issuer {sig['issuer']})"
        if sig.get("logIndex") is not None:
            detail += f", Rekor entry {sig['logIndex']}"
        lines.append(_DETAIL_INDENT + paint(_safe(f"{detail} [authority {sig.get('authority', '?')}]"), _DIM))
    for att in image.attestations:
        detail = f"attestation {att.get('name')} ({att.get('predicateType')}) {att.get('verdict')}"
        if att.get("digest") != image.digest:
            detail += f" at {att.get('digest')}"
        lines.append(_DETAIL_INDENT + paint(_safe(detail), _DIM))
    return lines


def _summary(decision: Decision, paint: _Paint) -> str:
    s = decision.summary
    if s.failed or s.errors:
        codes: tuple[str, ...] = (_BOLD, _RED)
    elif s.warnings:
        codes = (_BOLD, _YELLOW)
    else:
        codes = (_BOLD, _GREEN)
    return paint(summary_line(decision), *codes)


def _safe(text: str) -> str:
    """Text that may span lines (a message, a fix): every line after the first is indented."""
    return visible_controls(text, keep="\n\t")


def _one_line(text: str) -> str:
    """Text that is one line of the report (a file or directory name, a label, a note): a line break
    in it (a directory named `x\n\n1 documents: 1 passed`) is shown as `\x0a`, never starts a line."""
    return visible_controls(text, keep="")
