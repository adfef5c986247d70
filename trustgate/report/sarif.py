"""The SARIF 2.1.0 report, shaped for GitHub code scanning.

It follows the OASIS SARIF 2.1.0 schema and the subset GitHub documents in
"SARIF support for code scanning". Numbered comments match these points:

1. `$schema`, `version` and exactly one run (GitHub: one tool per run).
2. `tool.driver.rules`: one reportingDescriptor per rule id, each with a
   non-empty `shortDescription`, `fullDescription` and `help.text` (GitHub
   requires them and rejects empty strings).
3. Each result carries `ruleId`, `ruleIndex`, `level`, `message.text` and
   exactly one location with `region.startLine` (GitHub reads only the first).
4. Paths are relative, with forward slashes, under `%SRCROOT%`, so they match
   the repository across runs; absolute paths become `file://` URIs.
5. `partialFingerprints["trustgate/v1"]` hashes rule, file, object identity and
   field path, not the line, so an alert survives edits above it. GitHub itself
   reads only `primaryLocationLineHash`, which the `upload-sarif` action fills
   in from the file's content; writing our own value under that key would make
   the action warn on every result.
6. Waived findings are kept, with `suppressions` of kind `external`. GitHub
   does not act on `suppressions` by itself; their level is the effective one
   (`note`), so they do not raise errors there.

This module leaves out artifacts, code flows and columns: the model has none.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import trustgate
from trustgate.model import Decision, DocumentResult, Finding, Severity, render_path
from trustgate.report import _indented_json
from trustgate.report._common import document_label, finding_line, is_stdin, is_waived

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
TOOL_NAME = "trustgate"
DEFAULT_TOOL_VERSION = "0.1.0"  # used only when `trustgate.__version__` is not defined
FINGERPRINT_KEY = "trustgate/v1"  # bump the suffix if the fingerprint's inputs ever change
SRCROOT = "%SRCROOT%"
STDIN_URI = "stdin"
MAX_DESCRIPTION_CHARS = 1024  # GitHub cuts rule descriptions at 1024 characters

LEVELS: Mapping[Severity, str] = {
    Severity.ERROR: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "note",
}

_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:/")


def render(decision: Decision, *, tool_version: str | None = None) -> str:
    """Render a decision as a SARIF 2.1.0 log.

    Args:
        decision: the verdict to show.
        tool_version: the version to report for trustgate; defaults to
            `trustgate.__version__`.

    Returns:
        The log as indented JSON text, without a trailing newline.
    """
    return _indented_json.dumps(sarif_log(decision, tool_version=tool_version))  # json.dumps(indent=2)


def sarif_log(decision: Decision, *, tool_version: str | None = None) -> dict[str, Any]:
    """The SARIF log as a JSON-compatible mapping (see `render`)."""
    pairs = [(result, finding) for result in decision.results for finding in result.findings]
    by_rule: dict[str, list[Finding]] = {}
    for _, finding in pairs:
        by_rule.setdefault(finding.rule, []).append(finding)
    rule_ids = sorted(by_rule)  # sorted, so the same rules give the same indices every run
    rule_index = {rule: i for i, rule in enumerate(rule_ids)}

    # 1. One run, one tool.
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": TOOL_NAME,
                "version": tool_version or _tool_version(),
                # 2. One reportingDescriptor per rule.
                "rules": [_rule(rule, by_rule[rule]) for rule in rule_ids],
            }
        },
        "originalUriBaseIds": {
            SRCROOT: {
                "description": {"text": "The directory trustgate was run from; relative paths start here."}
            }
        },
        "invocations": [
            {
                "executionSuccessful": True,
                "toolExecutionNotifications": [
                    {"level": "warning", "message": {"text": note}} for note in decision.notes
                ],
            }
        ],
        # 3. One result per finding.
        "results": [_result(result, finding, rule_index[finding.rule]) for result, finding in pairs],
        "properties": {
            "gate": decision.gate,
            "mode": str(decision.mode),
            "allowed": decision.allowed,
            "policyRevision": decision.policy_revision,
            "summary": decision.summary.to_json(),
        },
    }
    return {"$schema": SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def artifact_location(file: str) -> dict[str, str]:
    """4. The artifactLocation of a file as GitHub expects it.

    Args:
        file: the path as the loader recorded it (`-` for standard input).

    Returns:
        `{"uri": ..., "uriBaseId": "%SRCROOT%"}` for a relative path,
        `{"uri": "file:///..."}` for an absolute one, `{"uri": "stdin"}` for `-`.
    """
    if is_stdin(file):
        return {"uri": STDIN_URI}
    path = file.replace("\\", "/")
    if _WINDOWS_DRIVE.match(path):
        return {"uri": "file:///" + quote(path, safe="/:")}
    if path.startswith("/"):
        return {"uri": "file://" + quote(path)}
    return {"uri": quote(_relative(path)), "uriBaseId": SRCROOT}


def fingerprint(result: DocumentResult, finding: Finding) -> str:
    """5. A line-independent identity for a finding: rule, file, object and field path."""
    group = (result.api_version or "").rpartition("/")[0]
    name = result.name if result.name is not None else f"#{result.source.index}"
    file = result.source.file
    if not is_stdin(file):
        file = _relative(file.replace("\\", "/"))  # the same identity on Windows and POSIX
    parts = [
        finding.rule,
        file,
        group,
        result.kind or "",
        result.namespace or "",
        name,
        render_path(finding.path),
    ]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def _rule(rule_id: str, findings: list[Finding]) -> dict[str, Any]:
    first = findings[0]
    title = _meta_str(first.metadata, "title") or rule_id
    where = f" ({first.policy})" if first.policy else ""
    description = _meta_str(first.metadata, "description") or (
        f"{title}: reported by trustgate's {first.source} check{where}."
    )
    fix = next((f.fix for f in findings if f.fix), "")
    tags = ["kubernetes", first.source]
    meta_tags = first.metadata.get("tags")
    if isinstance(meta_tags, list):
        tags.extend(t for t in meta_tags if isinstance(t, str))
    descriptor: dict[str, Any] = {
        "id": rule_id,
        "name": rule_id[:255],  # GitHub limit
        "shortDescription": {"text": _clip(title)},
        "fullDescription": {"text": _clip(description)},
        "help": {"text": fix or description},
        "defaultConfiguration": {"level": LEVELS[first.rule_severity]},
        "properties": {"tags": list(dict.fromkeys(tags))},
    }
    url = _meta_str(first.metadata, "url")
    if url.startswith(("https://", "http://")):
        descriptor["helpUri"] = url
    return descriptor


def _result(result: DocumentResult, finding: Finding, rule_index: int) -> dict[str, Any]:
    label = document_label(result)
    properties: dict[str, Any] = {
        "document": label,
        "source": finding.source,
    }
    if finding.path:
        properties["path"] = render_path(finding.path)
    if finding.fix:
        properties["fix"] = finding.fix
    if finding.policy:
        properties["policy"] = finding.policy
    if finding.note:
        properties["note"] = finding.note
    if result.source.rendered_from:
        properties["renderedFrom"] = result.source.rendered_from

    out: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": LEVELS[finding.severity],
        "message": {"text": f"{label}: {finding.message}"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": artifact_location(result.source.file),
                    "region": {"startLine": finding_line(finding, result)},
                }
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(result, finding)},
        "properties": properties,
    }
    exc = finding.exception
    if exc is not None:
        properties["exception"] = {
            "name": exc.name,
            "owner": exc.owner,
            "reason": exc.reason,
            "expires": exc.expires,
            "expired": exc.expired,
        }
    if is_waived(finding) and exc is not None:
        # 6. An external suppression: the waiver lives in trustgate's exceptions, not in the file.
        out["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": (
                    f"exception {exc.name} (owner {exc.owner}, expires {exc.expires})"
                    + (f": {exc.reason}" if exc.reason else "")
                ),
            }
        ]
    return out


def _relative(path: str) -> str:
    while path.startswith("./"):
        path = path[2:]
    return path


def _meta_str(metadata: Mapping[str, Any], key: str) -> str:
    value = metadata.get(key)
    return value.strip() if isinstance(value, str) else ""


def _clip(text: str) -> str:
    return text if len(text) <= MAX_DESCRIPTION_CHARS else text[: MAX_DESCRIPTION_CHARS - 1] + "…"


def _tool_version() -> str:
    # Looked up at render time: trustgate/__init__.py may still be running when this module loads.
    version = getattr(trustgate, "__version__", None)
    return version if isinstance(version, str) and version else DEFAULT_TOOL_VERSION
