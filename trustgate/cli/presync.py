"""`trustgate presync`: advance a gated ref to the tip of a branch only when the tip passes.

Owns: the flags, the `--watch` loop (and stopping it on SIGTERM/SIGINT), and
printing: the report of each decision on stdout, one line per run on stderr
(and in text format on stdout). Exit codes: 0 advanced or already there,
1 refused, 3 could not evaluate (2 usage).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import click

from trustgate.cli.log import gate_decision_log, log_reliance, refuse_missing_log, say_recorded
from trustgate.cli.options import ConfigFlags, collect_rarely, config_options, emit_report
from trustgate.decisions.actor import ci_environment
from trustgate.gate import Gate
from trustgate.model import ExitCode
from trustgate.report import FORMATS
from trustgate.report._common import visible_controls

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_interval(text: str) -> float:
    """`30s`, `5m`, `1h`, `500ms`, `45` (seconds) -> seconds.

    Raises:
        click.BadParameter: anything else, or less than a second.
    """
    m = _DURATION.match(text.strip())
    if m is None:
        raise click.BadParameter(f"{text!r} is not a duration (30s, 5m, 1h)", param_hint="--interval")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds < 1:
        raise click.BadParameter("the interval must be at least 1s", param_hint="--interval")
    return seconds


@click.command("presync")
@click.option(
    "--repo", "repository", required=True, help="The repository: a local path or a URL to clone and push."
)
@click.option(
    "--ref", default="main", show_default=True, help="The branch (or ref) whose tip is the candidate."
)
@click.option(
    "--gated-ref",
    default="trustgate/verified",
    show_default=True,
    help="The branch the reconciler follows; moved only to commits that pass.",
)
@config_options
@click.option("-o", "--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="Write the report here.")
@click.option(
    "--decision-log",
    metavar="URL",
    envvar="TRUSTGATE_DECISION_LOG",
    help="Record each decision: sqlite:///path.db or postgresql://... (default: decisionLog.url).",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    help="Where remote repositories are cloned (kept across runs; default: a temp dir).",
)
@click.option(
    "--initialize",
    is_flag=True,
    help="Create a missing --gated-ref as on a first run (only the tip's signature is checked, no "
    "deletions), although the decision log holds earlier decisions on it; recorded as such. Without "
    "it, a gated ref that the log knows but git does not is taken as deleted: exit 3. Not with --watch.",
)
@click.option(
    "--accept-gated-commit",
    metavar="COMMIT",
    help="The gated ref was moved by someone else to COMMIT (its full id), and you have reviewed it: "
    "judge onward from it this once; recorded, with who accepted it. Without it, a gated ref that is not "
    "where this gate left it stops the run: exit 3. Not with --watch.",
)
@click.option("--watch", is_flag=True, help="Keep running: judge the tip again every --interval.")
@click.option("--interval", default="30s", show_default=True, help="Time between runs with --watch.")
@click.option(
    "--heartbeat",
    type=click.Path(dir_okay=False),
    help="Touch this file after every run (for a liveness probe with --watch).",
)
@click.option("--color/--no-color", default=None, help="Colour text output (default: when a terminal).")
def presync(
    repository: str,
    ref: str,
    gated_ref: str,
    flags: ConfigFlags,
    fmt: str,
    output: str | None,
    decision_log: str | None,
    cache_dir: str | None,
    initialize: bool,
    accept_gated_commit: str | None,
    watch: bool,
    interval: str,
    heartbeat: str | None,
    color: bool | None,
) -> None:
    """Judge the tip of --ref; fast-forward --gated-ref to it when it passes.

    \b
    Checks every commit between the gated ref and the tip (signatures by
    allowed signers, authors, committers), the whole rendered tree as
    `trustgate check` does (images included), and removed protected objects
    (approved by a signed `Trustgate-Approve-Deletion: Kind/ns/name in PATH`
    trailer or an exception). A rewritten branch is refused. A remote repository is cloned
    and the gated ref pushed. Every decision goes to the decision log and, as
    a git note, to refs/notes/trustgate.

    \b
    A missing gated ref is a first run: only the tip's signature is checked.
    With a decision log, a gated ref this gate decided on before and that is
    now missing was deleted: refused (exit 3) unless --initialize. Without a
    decision log, such a deletion cannot be detected.

    \b
    A gated ref that is not where this gate left it (the newest decision on it
    in the decision log) was moved by someone else: the run stops (exit 3,
    recorded) without judging onward from it, unless --accept-gated-commit
    names it. Without a decision log, only a --watch process notices, and
    only a move after its own first run. A decision log that is not there
    is not started (a new, empty one knows of no gated ref): exit 3;
    `trustgate log init` starts one.

    \b
    Examples:
      trustgate presync --repo . --ref main --gated-ref trustgate/verified -c trustgate.yaml
      trustgate presync --repo ssh://git@git.example.com/fleet.git --watch --interval 30s
    """
    from trustgate.presync.runner import PresyncGate

    seconds = parse_interval(interval)
    if initialize and watch:
        raise click.UsageError("--initialize is for one run: it cannot be combined with --watch")
    if accept_gated_commit is not None and watch:
        raise click.UsageError("--accept-gated-commit is for one run: it cannot be combined with --watch")
    invoker = ci_environment(os.environ)
    log = None
    stop = threading.Event()
    try:
        config = flags.load()
        relies = log_reliance(config, "presync")
        log = gate_decision_log(config, decision_log, relies=relies)
        if log is not None:
            refuse_missing_log(log.url, relies)
        with (
            Gate(config=config, decision_log=log) as gate,
            PresyncGate(
                gate=gate,
                config=config,
                cache_dir=Path(cache_dir) if cache_dir else None,
                invoker=invoker,  # who moved the ref: git does not record it
            ) as runner,
        ):
            if watch:
                _on_signals(stop)
            collect_rarely()
            while True:
                outcome = runner.run(
                    repository,
                    ref,
                    gated_ref,
                    watch=watch,
                    initialize=initialize,
                    accept_gated_commit=accept_gated_commit,
                    accepted_by=_who(invoker) if accept_gated_commit is not None else "",
                )
                if outcome.decision is not None and outcome.action != "unchanged":
                    if log is not None:
                        say_recorded(outcome.decision, log)
                    _emit(outcome, fmt, output, color)
                # The message quotes the repository (a link's target, a file name: anything a
                # committer wrote, ESC too): no character that repaints; the message's own lines
                # (its hint) stay, and a value that could forge one is quoted where it is built.
                line = f"trustgate: presync: {outcome.action}: {outcome.message}"
                click.echo(visible_controls(line, keep="\n"), err=True)
                for warning in outcome.warnings:
                    click.echo(visible_controls(f"trustgate: warning: {warning}", keep="\n"), err=True)
                if heartbeat:
                    _touch(Path(heartbeat))
                if not watch:
                    break
                if stop.wait(seconds):
                    break
    finally:
        if log is not None:
            log.close()
    sys.exit(0 if watch else outcome.exit_code)


def _emit(outcome: object, fmt: str, output: str | None, color: bool | None) -> None:
    from trustgate.presync.runner import Outcome

    assert isinstance(outcome, Outcome) and outcome.decision is not None
    if fmt == "json":
        from trustgate.report import render

        payload = {"presync": outcome.to_json(), **json.loads(render(outcome.decision, "json", color=False))}
        text = json.dumps(payload, indent=2) + "\n"
        if output:
            try:
                Path(output).write_text(text, encoding="utf-8")
            except OSError as e:
                click.echo(f"trustgate: error: cannot write {output}: {e.strerror or e}", err=True)
                sys.exit(ExitCode.NOT_EVALUATED)
        else:
            click.echo(text, nl=False)
        return
    emit_report(outcome.decision, fmt, output=output, color=color)


def _who(invoker: dict[str, str] | None) -> str:
    """Who accepts a gated commit: the CI actor when a CI system says, else the local user."""
    if invoker and invoker.get("actor"):
        return f"{invoker['actor']} ({invoker.get('provider', 'ci')})"
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no such user in the passwd database, no USER/LOGNAME
        return "unknown"


def _touch(path: Path) -> None:
    try:
        path.touch()
    except OSError as e:
        click.echo(f"trustgate: warning: cannot touch the heartbeat {path}: {e.strerror or e}", err=True)


def _on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
