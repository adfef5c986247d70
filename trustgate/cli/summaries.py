"""`trustgate summaries`: revoke verification summaries, and show those on an image.

Owns: the `summaries` click group (`revoke`) and `show_summaries`, which
`trustgate verify image --summary` runs. Revocations are records in the
decision log (`trustgate.revocations`); judging summaries is
`trustgate.artifacts.summaries`'s.

Exit codes: `revoke` 0 recorded, 2 usage, 3 the log could not be written or is not there;
`verify image --summary` 0 when admission would admit every image through a
summary (the one it shows as used), 1 otherwise, 3 when the registry could not be asked or
the revocations could not be read from the decision log configured.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import click

from trustgate.config import Config
from trustgate.model import ExitCode

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@click.group("summaries")
def summaries() -> None:
    """Verification summaries (SLSA VSAs) issued by `check` and `presync`, accepted at admission."""


@summaries.command("revoke")
@click.argument("digest")
@click.option(
    "--store",
    metavar="URL",
    envvar="TRUSTGATE_DECISION_LOG",
    help="The decision log the gates read revocations from (sqlite:///path.db or postgresql://...).",
)
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="TRUSTGATE_CONFIG",
    help="trustgate.yaml whose decisionLog.url is the log (where --store is not given).",
)
@click.option(
    "--create",
    is_flag=True,
    help="Start a new log at --store when none is there (only gates whose decisionLog.url names "
    "it read its revocations).",
)
@click.option("--reason", default="", help="Why, for the auditors (recorded with the revocation).")
def revoke(digest: str, store: str | None, config_path: str | None, create: bool, reason: str) -> None:
    """Make admission ignore the summaries for DIGEST before they expire.

    DIGEST is a summary's (the sha256 of the DSSE payload its signature covers, as decisions
    record it under `summary.digest` / `summariesIssued[].digest` and `verify image --summary`
    shows it; re-encoding the bundle does not change it): that summary no longer counts; or an
    image's (an index or a platform manifest): no summary listing that digest counts, for any
    of its subjects, and the image is verified in full. Webhooks read revocations every
    `images.summaries.accept.revocationRefreshSeconds`, and then no longer admit through the
    summary, from their cache either.

    The log is --store URL ($TRUSTGATE_DECISION_LOG), or decisionLog.url of -c trustgate.yaml. A
    log that is not there is refused (exit 3), not started: a revocation written where no gate
    reads would leave the summary counting. --create starts one.

    \b
    Example:
      trustgate summaries revoke sha256:4f2c... -c trustgate.yaml --reason "key leaked"
      trustgate summaries revoke sha256:4f2c... --store sqlite:///decisions.db --reason "key leaked"
    """
    digest = digest.lower()
    if not _DIGEST.fullmatch(digest):
        raise click.BadParameter("give sha256:<64 hex digits>", param_hint="DIGEST")
    from trustgate.cli.log import store_url_of
    from trustgate.decisions.log import DecisionLog
    from trustgate.decisions.record import Actor
    from trustgate.errors import DecisionLogMissingError
    from trustgate.revocations import revocation_record

    url = store_url_of(store, config_path)
    try:  # an Error is the CLI's one line and exit 3 (cli/main.py)
        with DecisionLog.open(url, create=create) as log:
            record_id = log.append(revocation_record(digest, reason=reason, actor=Actor()))
    except DecisionLogMissingError as e:
        raise DecisionLogMissingError(
            f"{e.message}: nothing revoked",
            where=url,  # as the user wrote it
            hint="a revocation counts only in the log the gates read (their decisionLog.url or "
            "--decision-log): check --store, or pass -c trustgate.yaml to write to its "
            "decisionLog.url; --create starts a new log here",
        ) from e
    click.echo(f"revoked verification summaries for {digest}: decision {record_id} in {log.url}")


def show_summaries(config: Config, references: tuple[str, ...], fmt: str) -> None:
    """Print the summaries on each image and their verification under its rule; exit with the verdict."""
    from trustgate.gate import Gate
    from trustgate.oci.errors import RegistryError
    from trustgate.oci.reference import InvalidReferenceError

    reports: list[dict[str, Any]] = []
    code = ExitCode.PASS
    # Revocations live in the decision log: without one, no summary counts (as at admission).
    log = None
    if config.decision_log.url:
        from trustgate.decisions.log import DecisionLog

        log = DecisionLog.open(config.decision_log.url, create=False)  # read only: it is never written
    with Gate(config=config, decision_log=log) as gate:
        for reference in references:
            try:
                report = gate.verifier.inspect_summaries(reference)
            except (RegistryError, InvalidReferenceError) as e:
                report = {"reference": reference, "error": e.message}
                code = ExitCode.NOT_EVALUATED
            reports.append(report)
    # A decision log configured and not read (not there, down): what it revokes is not known, so
    # neither is what admission, reading it again, would do.
    if any("revocationsUnreadable" in r for r in reports):
        code = ExitCode.NOT_EVALUATED
    # As admission would: a summary it would use (not merely one that counts on its own), and
    # nothing that fails the image all the same (a tag where the rule requires a digest).
    if code == ExitCode.PASS and not all(_admits(r.get("admission")) for r in reports):
        code = ExitCode.POLICY_FAILURE
    if fmt == "json":
        click.echo(json.dumps(reports, indent=2))
    else:
        for report in reports:
            click.echo(_text(report))
    sys.exit(code)


def _text(report: dict[str, Any]) -> str:
    """The report as text; every value shown escaped (`_shown`): statements, reasons and even
    references come from whoever could push, and a newline or an ESC sequence would forge a line
    ("counts") or repaint the terminal."""
    lines = [_shown(report["reference"]) + (f" @ {_shown(report['digest'])}" if "digest" in report else "")]
    if "error" in report:
        return "\n".join([*lines, f"  could not look: {_shown(report['error'])}"])
    if "rule" in report:
        lines.append(f"  rule {_shown(report['rule'])} (policy digest {_shown(report['policyDigest'])})")
    if "revocationsUnreadable" in report:
        lines.append(f"  revocations could not be read: {_shown(report['revocationsUnreadable'])}")
    admission = report.get("admission")
    if isinstance(admission, dict):
        if admission.get("denied"):
            lines.extend(f"  admission: denies it: {_shown(reason)}" for reason in admission["denied"])
        elif admission.get("path") == "summary":
            lines.append(f"  admission: admits through VSA {_shown(admission.get('digest', ''))}")
        else:
            lines.append("  admission: verifies in full (no summary it would use)")
    if not report["summaries"]:
        lines.append("  no verification summaries")
    for summary in report["summaries"]:
        statement = summary.get("statement") or {}
        raw = statement.get("predicate")
        predicate: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if not summary.get("counts"):
            verdict = f"does not count: {_shown(summary.get('reason', ''))}"
        elif summary.get("used"):
            verdict = "counts (admission uses it)"
        elif "notUsed" in summary:
            verdict = f"counts, but admission does not use it: {_shown(summary['notUsed'])}"
        else:
            verdict = "counts"
        name = _shown(summary.get("digest", summary["referrer"]))
        lines.append(f"  VSA {name} ({_shown(summary['source'])}): {verdict}")
        levels = predicate.get("verifiedLevels")
        for label, value in (
            ("verifier", _text_at(predicate, "verifier", "id")),
            ("timeVerified", _text_at(predicate, "timeVerified")),
            ("policy", _text_at(predicate, "policy", "uri")),
            ("result", _text_at(predicate, "verificationResult")),
            (
                "levels",
                ", ".join(v for v in levels if isinstance(v, str)) if isinstance(levels, list) else None,
            ),
        ):
            if value:
                lines.append(f"    {label}: {_shown(value)}")
    return "\n".join(lines)


def _admits(admission: Any) -> bool:
    """Whether admission admits the image through a summary (`inspect_summaries`' `admission`)."""
    return isinstance(admission, dict) and admission.get("path") == "summary" and not admission.get("denied")


def _shown(value: Any) -> str:
    """`value` as one line of text: control characters (newlines too) and bidi marks escaped."""
    from trustgate.report._common import visible_controls

    return visible_controls(str(value), keep="")


def _text_at(value: Any, *path: str) -> str | None:
    """The text at `path` in an unverified statement; None where it is not there, or not text
    (whoever pushed it chose its shape)."""
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None
