"""`trustgate log ...`: what auditors and operators do with the decision log.

Owns: the `log` command group (verify, query, show, export, stats, prune,
checkpoint, prove, verify-proof, prove-consistency, witness) and the glue gate commands use to open the
configured log and say where a decision went. Exit codes as everywhere: 0
fine, 1 the log is not intact or not consistent with a kept checkpoint, or a
proof does not verify, 2 usage, 3 cannot tell: the store could not be read or
written, or a checkpoint, key or proof given is unusable (the message names
the file and what does not match), or `log checkpoint --output` without a key
found the latest stored checkpoint behind the log. An intact `log verify`
exits 0 even where no checkpoint the auditor can trust covers the newest
records; it names them (ADR 9, item 3).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from trustgate.cli.options import printable_diagnostics, utf8_stdout
from trustgate.config import MAX_CLOCK_SKEW_SECONDS, Config, load_config
from trustgate.model import Decision, ExitCode

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from trustgate.decisions.chain import Checkpoint, Entry, Kept, Report
    from trustgate.decisions.log import DecisionLog, Store
    from trustgate.decisions.note import NoteVerifier, TreeHead
    from trustgate.decisions.publish import Publisher
    from trustgate.decisions.record import DecisionContext
    from trustgate.decisions.store import Filters
    from trustgate.decisions.vouch import ChainColumns, Coverage
    from trustgate.errors import DecisionLogMissingError

VERDICT_CHOICES = ("allow", "warn", "deny", "error")

_Command = TypeVar("_Command", bound=Callable[..., Any])


def _ed25519(verifier: NoteVerifier) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from trustgate.decisions.note import NoteError

    if not isinstance(verifier.key, Ed25519PublicKey):
        raise NoteError("the decision log's verifier key must be an Ed25519 key")
    return verifier.key


# -- for gate commands -----------------------------------------------------------


def gate_decision_log(config: Config, url: str | None, *, relies: str = "") -> DecisionLog | None:
    """The decision log a gate writes to: `--decision-log` or `decisionLog.url`; None when neither.

    A gate that relies on what the log holds (`relies`, from `log_reliance`) never starts a new
    log: its records are not written to a log that is not there (its failure policy applies),
    and its reads of it fail. A gate that only records may start one with its first decision.

    Raises:
        DecisionLogError: the URL is malformed.
        ConfigError: the checkpoint key is unusable.
    """
    url = url or config.decision_log.url
    if not url:
        return None
    from trustgate.decisions.log import CheckpointPolicy, DecisionLog
    from trustgate.errors import ConfigError

    settings = config.decision_log
    if publishers(config) and settings.checkpoint_key is None:
        raise ConfigError(
            "decisionLog.checkpoint.publish needs decisionLog.checkpoint.key: only signed checkpoints "
            "are published",
            hint="create one with `openssl genpkey -algorithm ed25519 -out decision-log.pem`",
        )
    return DecisionLog.open(
        url,
        create=not relies,
        key=settings.checkpoint_key,
        checkpoints=CheckpointPolicy(
            every_records=settings.checkpoint_every_records,
            every_seconds=settings.checkpoint_every_seconds,
            publish=publishers(config),
            clock_skew=settings.checkpoint_clock_skew_seconds,
        ),
    )


def log_reliance(config: Config, gate: str) -> str:
    """Why `gate` ("check", "serve", "presync") relies on what its decision log holds, "" when it
    does not: such a gate must not start a new, empty log where the configured one is not there
    (a wrong path or database, a volume not mounted), since an empty log says "nothing here".

    Pre-sync reads where it left each gated ref; a gate whose image rules accept verification
    summaries reads their revocations. A gate that only records its decisions decides nothing
    from the log, so it still starts one with its first decision (as it always did: a CI
    runner's new SQLite file); a wrong URL there loses records, it lets nothing through.
    """
    if gate == "presync":
        return (
            "presync reads from it where it left each gated ref, and a new, empty log knows of "
            "none (a gated ref someone else moved or deleted would be taken as found)"
        )
    if config.images.accepts_summaries:
        return (
            "the image rules accept verification summaries, whose revocations are read from it, "
            "and a new, empty log revokes none"
        )
    return ""


def refuse_missing_log(url: str, relies: str) -> None:
    """Refuse, at a gate's start, a decision log the gate relies on (`relies`) that is not there.

    A log that is there but cannot be opened now (a database down) is left to the gate: its
    reads fail closed and its failure policy answers for the records.

    Raises:
        DecisionLogMissingError: no SQLite file (or an empty one), or a database without the
            log's tables; the message says why the gate needs it and how to start one.
    """
    from trustgate.decisions.log import open_store
    from trustgate.errors import DecisionLogError, DecisionLogMissingError

    try:
        open_store(url, create=False).close()
    except DecisionLogMissingError as e:
        raise missing_log_error(e, relies) from e
    except DecisionLogError:
        pass


def missing_log_error(error: DecisionLogMissingError, relies: str) -> DecisionLogMissingError:
    """`error` (a log that is not there), saying why the gate needs it and the ways out."""
    from trustgate.errors import DecisionLogMissingError

    where = error.where  # as the store names it: an absolute path, no password
    return DecisionLogMissingError(
        f"{error.message}: {relies}; it is not started implicitly",
        where=where,
        hint="check --decision-log or decisionLog.url (a wrong path or database? a volume not "
        f"mounted?); if a new log is meant, start it once: `trustgate log init --store {where}`",
    )


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A number of seconds: `nan` passes every range comparison (and would misdate nothing)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of seconds", ctx=ctx, param=param)
    return value


def publishers(config: Config) -> tuple[Publisher, ...]:
    """Where `decisionLog.checkpoint.publish` sends every new checkpoint."""
    from trustgate.decisions.publish import DirectoryPublisher, GitPublisher

    settings = config.decision_log
    out: list[Publisher] = []
    if settings.checkpoint_publish_dir is not None:
        out.append(DirectoryPublisher(settings.checkpoint_publish_dir))
    if settings.checkpoint_publish_git is not None:
        repository, ref = settings.checkpoint_publish_git
        out.append(GitPublisher(repository, ref))
    return tuple(out)


def check_context(paths: tuple[str, ...]) -> DecisionContext:
    """Actor and subject of a CI check: CI variables and the git commit of the first path."""
    from trustgate.decisions.actor import ci_context

    first = next((p for p in paths if p != "-"), ".")
    directory = Path(first) if Path(first).is_dir() else Path(first).parent
    return ci_context(os.environ, directory)


def say_recorded(decision: Decision, log: DecisionLog) -> None:
    """One line on stderr: where the decision was recorded, or loudly that it was not."""
    if decision.record_id:
        click.echo(f"trustgate: decision {decision.record_id} recorded in {log.url}", err=True)
    for note in decision.notes:
        if "not recorded" in note or "NOT recorded" in note:
            click.echo(f"trustgate: error: {note}", err=True)
    for problem in log.take_problems():  # a refused checkpoint (a forged log) or a failed publish
        click.echo(f"trustgate: error: {printable_diagnostics(problem)}", err=True)


# -- the log group -----------------------------------------------------------------


@click.group("log")
def log() -> None:
    """Query, verify and maintain the decision log.

    \b
    The store is --store URL, $TRUSTGATE_DECISION_LOG, or decisionLog.url of -c trustgate.yaml:
      sqlite:///var/lib/trustgate/decisions.db
      postgresql://trustgate@db.example.com:5432/trustgate
    """


def _store_options(command: Callable[..., None]) -> Callable[..., None]:
    command = click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        envvar="TRUSTGATE_CONFIG",
        help="trustgate.yaml whose decisionLog section names the store and key.",
    )(command)
    return click.option(
        "--store",
        "store_url",
        metavar="URL",
        envvar="TRUSTGATE_DECISION_LOG",
        help="The decision log: sqlite:///path.db or postgresql://user@host:port/db.",
    )(command)


def _settings(config_path: str | None) -> Config:
    return load_config(config_path) if config_path else Config.default()


def _open(
    store_url: str | None, config_path: str | None, *, create: bool = False, read_only: bool = False
) -> Store:
    """The log the options name; `read_only` for commands that only read it (no migration either)."""
    from trustgate.decisions.log import open_store

    return open_store(store_url_of(store_url, config_path), create=create, read_only=read_only)


def store_url_of(store_url: str | None, config_path: str | None) -> str:
    """The log URL `_store_options` name: --store (or $TRUSTGATE_DECISION_LOG), else decisionLog.url of -c.

    Raises:
        DecisionLogError: neither names one.
        ConfigError: the -c file cannot be read or is invalid.
    """
    from trustgate.errors import DecisionLogError

    url = store_url or _settings(config_path).decision_log.url
    if not url:
        raise DecisionLogError(
            "no decision log given",
            hint="pass --store URL, set TRUSTGATE_DECISION_LOG, or use -c trustgate.yaml",
        )
    return url


def _filter_options(command: Callable[..., None]) -> Callable[..., None]:
    options = [
        click.option("--since", metavar="TIME", help="From this date or time on (2025-01-31, ...T12:00Z)."),
        click.option("--until", metavar="TIME", help="Before this time; a date includes that day."),
        click.option("--gate", "gates", multiple=True, help="ci, presync, admission (repeatable)."),
        click.option("--verdict", "verdicts", multiple=True, type=click.Choice(VERDICT_CHOICES)),
        click.option("--namespace", "namespaces", multiple=True, help="Namespace; `prefix*` allowed."),
        click.option(
            "--image",
            "images",
            multiple=True,
            help="Image reference, as the image rules name it (`ref*`: a prefix), or digest sha256:...",
        ),
        click.option("--commit", "commits", multiple=True, help="Commit SHA, full or abbreviated."),
        click.option("--tree", "trees", multiple=True, help="git tree hash (pre-sync decisions), full."),
        click.option("--rule", "rules", multiple=True, help="Rule id with a finding; `prefix*` allowed."),
        click.option("--actor", "actors", multiple=True, help="User, git e-mail, signer or CI actor."),
    ]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        from trustgate.decisions.store import Filters, parse_time

        since, until = kwargs.pop("since"), kwargs.pop("until")
        filters = Filters(
            since=parse_time(since) if since else None,
            until=parse_time(until, end=True) if until else None,
            **{name: kwargs.pop(name) for name in _FILTER_FIELDS},
        )
        command(filters=filters, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


_FILTER_FIELDS = ("gates", "verdicts", "namespaces", "images", "commits", "trees", "rules", "actors")


def _verifier_key(value: str) -> NoteVerifier:
    """`--verifier-key`: a signed-note vkey (name+hash+base64) or a PEM Ed25519 public key file.

    Raises:
        Error: neither, naming what is wrong.
    """
    from trustgate.decisions.keys import read_public_key
    from trustgate.decisions.note import NoteError, NoteVerifier

    if "+" in value and not Path(value).exists():
        try:
            return NoteVerifier.parse(value)
        except NoteError as e:
            raise NoteError(f"--verifier-key: {e.message}") from e
    return NoteVerifier.ed25519(read_public_key(value))


def _read_checkpoint(path: str, verifier: NoteVerifier) -> TreeHead:
    """A kept checkpoint file, checked against the verifier key.

    Raises:
        Error: unreadable, malformed, of another log, unsigned or wrongly signed (`where` is the file).
    """
    from trustgate.decisions.note import NoteError, open_checkpoint
    from trustgate.errors import InputError

    try:
        text = Path(path).read_bytes().decode()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(
            f"cannot read the checkpoint: {getattr(e, 'strerror', None) or e}", where=path
        ) from e
    try:
        return open_checkpoint(text, verifier)
    except NoteError as e:
        raise NoteError(e.message, where=path) from e


def kept_checkpoints(files: Sequence[str], dirs: Sequence[str], verifier: NoteVerifier) -> list[Kept]:
    """The checkpoints an auditor kept: `--checkpoint` files, then every one of each `--checkpoint-dir`.

    Raises:
        Error: a file unreadable, malformed, of another log or not signed by `verifier`'s key; a
            directory unreadable or holding no checkpoint.
    """
    from trustgate.decisions.chain import Kept
    from trustgate.decisions.publish import directory_checkpoints

    paths = [*files, *(str(f) for d in dirs for f in directory_checkpoints(Path(d)))]
    return [Kept(path, _read_checkpoint(path, verifier)) for path in paths]


def kept_checkpoint_options(*, file_help: str, dir_help: str) -> Callable[[_Command], _Command]:
    """The `--checkpoint FILE` and `--checkpoint-dir DIR` options (`kept_files`, `kept_dirs`), repeatable."""

    def decorate(command: _Command) -> _Command:
        # Applied last to first, so that --help lists --checkpoint first.
        for flag, dest, kind, metavar, text in (
            ("--checkpoint-dir", "kept_dirs", click.Path(file_okay=False), "DIR", dir_help),
            ("--checkpoint", "kept_files", click.Path(dir_okay=False), "FILE", file_help),
        ):
            command = click.option(flag, dest, multiple=True, type=kind, metavar=metavar, help=text)(command)
        return command

    return decorate


def clock_skew_option(help_text: str) -> Callable[[_Command], _Command]:
    """The `--clock-skew SECONDS` option: 0 to a year, finite."""
    return click.option(
        "--clock-skew",
        type=click.FloatRange(min=0, max=MAX_CLOCK_SKEW_SECONDS),
        callback=_finite,
        metavar="SECONDS",
        help=help_text,
    )


def require_verifier_key(files: Sequence[str], dirs: Sequence[str], verifier_key: str | None) -> None:
    """Refuse kept checkpoints without the key to check them.

    Raises:
        click.UsageError: `--checkpoint` or `--checkpoint-dir` given without `--verifier-key`.
    """
    if (files or dirs) and not verifier_key:
        raise click.UsageError(
            "--checkpoint and --checkpoint-dir need --verifier-key (the log's key, to check the checkpoints)"
        )


@log.command("verify")
@_store_options
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False),
    help="Ed25519 public key (PEM) every checkpoint must be signed by.",
)
@click.option(
    "--verifier-key",
    metavar="KEY",
    help="The log's key: a vkey (name+hash+base64, from `log checkpoint --print-verifier-key`) or a "
    "PEM public key file. Pins the key like --public-key.",
)
@kept_checkpoint_options(
    file_help="A checkpoint you kept (`log checkpoint --output`): the log must extend it (repeatable; "
    "needs --verifier-key).",
    dir_help="A directory checkpoints are published to (decisionLog.checkpoint.publish.dir): every "
    "checkpoint in it counts as kept (repeatable; needs --verifier-key).",
)
@click.option("--deep", is_flag=True, help="Also check that every record is canonical JSON (slower).")
@clock_skew_option(
    "How far a record's time may lie before the bound of the checkpoint that precedes it (the "
    "earlier of its signed time and the newest record it covers), after the signed time of the one that "
    "first covers it, or from the time in its id, before it is misdated [default: "
    "decisionLog.checkpoint.clockSkewSeconds of -c, else 300]."
)
@click.option("-o", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify_cmd(
    store_url: str | None,
    config_path: str | None,
    public_key: str | None,
    verifier_key: str | None,
    kept_files: tuple[str, ...],
    kept_dirs: tuple[str, ...],
    deep: bool,
    clock_skew: float | None,
    fmt: str,
) -> None:
    """Prove the log untampered: exit 0 when intact, 1 naming the first bad record.

    Checks every record's hash and link to its predecessor, the columns and
    query index against the records, that each record agrees with itself
    (verdict, exit code, counts), the Merkle tree recomputed from the records
    against the stored one, and every checkpoint's signature, hash and root;
    every column must hold its type, and on SQLite every index must match its
    table (`PRAGMA integrity_check`: filters read through them). Finds
    records altered, removed, inserted or reordered.

    With --checkpoint (checkpoints an auditor kept) or --checkpoint-dir (a
    directory checkpoints are published to), the log must be consistent with
    each of them: whatever was done to the database since, a rewrite or the
    removal of newest records shows. With a pinned key and no checkpoint at
    all, verification fails. A record whose time is not in trustgate's form,
    or dated before the bound of the checkpoint that precedes it (the earlier
    of its signed time and the newest record it covers, less --clock-skew),
    after the checkpoint that first covers it, or away from the time in its
    UUIDv7 id, is misdated: a decision written later with a false time. A
    kept checkpoint that is not among the stored ones was deleted from them.
    """
    from trustgate.decisions.chain import Verifier
    from trustgate.decisions.keys import read_public_key

    require_verifier_key(kept_files, kept_dirs, verifier_key)
    key = read_public_key(public_key) if public_key else None
    kept: list[Kept] = []
    if verifier_key:
        note_verifier = _verifier_key(verifier_key)
        key = key or _ed25519(note_verifier)
        kept = kept_checkpoints(kept_files, kept_dirs, note_verifier)
    if clock_skew is None:
        clock_skew = _settings(config_path).decision_log.checkpoint_clock_skew_seconds
    store = _open(store_url, config_path)
    try:
        with store.snapshot(), store.as_stored():  # text that is not UTF-8: that record was altered
            verifier = Verifier(
                checkpoints=store.checkpoints(),
                public_key=key,
                deep=deep,
                tree=store.stored_tree(),
                head=store.stored_head(),  # as stored: the verifier reports one of the wrong types
                kept=kept,
                clock_skew=clock_skew,
            )
            report = store.verify(verifier)
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(_verify_text(report))
    sys.exit(ExitCode.PASS if report.ok else ExitCode.POLICY_FAILURE)


def _verify_text(report: Report) -> str:
    """`log verify`'s text, each line with control and invisible characters escaped.

    Its lines quote what the database holds (an id column, a checkpoint's key
    name or time, a kept checkpoint's file name), which someone with write
    access to it can set to anything: an ESC, CR or newline there must not
    repaint or forge the verdict line.
    """
    from trustgate.report._common import visible_controls

    lines: list[str] = []
    span = f"#{report.first_seq}..#{report.last_seq}" if report.records else "no records"
    if report.ok:
        lines.append(f"intact: {report.records} records ({span}), head {report.head}")
    else:
        first = report.first_problem
        assert first is not None
        lines.append(f"NOT INTACT: {first.kind}: {first.message}")
        lines.append(f"  checked {report.records} records ({span}) before the first problem")
        for other in sorted(report.problems, key=lambda p: p.seq)[1:]:
            lines.append(f"  also: {other.kind}: {other.message}")
    if report.anchor is not None:
        lines.append(f"  starts after the prune of {report.anchor.time} at #{report.anchor.seq}")
    if report.tree_size is not None:
        lines.append(f"  Merkle tree of {report.tree_size} records, root {report.root}")
    for where in report.consistent:
        lines.append(f"  consistent with {where}")
    lines.append(
        f"  {_count(report.checkpoints, 'stored checkpoint')}"
        + (f", signed by {', '.join(sorted(report.signed_by))}" if report.signed_by else "")
        + (f"; {_count(report.kept, 'kept checkpoint')} checked" if report.kept else "")
    )
    for warning in report.warnings:
        lines.append(f"  warning: {warning}")
    return "\n".join(visible_controls(line, keep="") for line in lines)


def _behind(cp: Checkpoint, size: int, output: str) -> str:
    """What a stored checkpoint older than the log's head leaves out (`log checkpoint --output`)."""
    return (
        f"the latest stored checkpoint (of {_one_line(cp.time)}) covers {cp.seq} records, but the log holds "
        f"{size}: records #{cp.seq + 1}..#{size} are vouched for by no stored checkpoint (newer "
        f"ones were not signed yet, or were deleted), so {output} would not show a rewrite of them"
    )


def _read_published(published: Sequence[Publisher], url: str) -> list[tuple[str, str | None]]:
    """The newest checkpoint published in each place, (where, text or None), read before the stored
    ones (`log checkpoint --output`): a writer stores a checkpoint before it publishes it, so one signed
    meanwhile is stored by the time the stored ones are read, never published but not stored.

    Raises:
        DecisionLogError: one cannot be read.
    """
    from trustgate.decisions.publish import PublishError
    from trustgate.errors import DecisionLogError

    out: list[tuple[str, str | None]] = []
    for publisher in published:
        try:
            out.append((publisher.where, publisher.latest()))
        except PublishError as e:
            raise DecisionLogError(
                f"cannot read the checkpoint published in {publisher.where}: {e.message}; nothing was "
                "written",
                where=url,
                hint="fix the published checkpoint, or keep one signed now (`trustgate log checkpoint "
                "--key PATH --output FILE`)",
            ) from e
    return out


def _not_behind_published(
    cp: Checkpoint, published: Sequence[tuple[str, str | None]], configured: bool, url: str
) -> None:
    """The checkpoint `--output` keeps must be as new as the newest published one (the chain head, the
    records and the tree are all unsigned rows: cut back together, they agree on an old size).

    `published`: `_read_published`, read before the stored checkpoints. Each is checked with the key
    of `cp` (a note that does not verify says nothing about the log's size).

    Raises:
        DecisionLogError: a published one is newer, or does not verify.
    """
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from trustgate.decisions.note import NoteError, NoteVerifier, open_checkpoint
    from trustgate.errors import DecisionLogError

    if not configured:
        click.echo(
            "trustgate: note: the newest checkpoint is as the database says (no decisionLog.checkpoint."
            "publish in the configuration to compare it with): whoever can write the database can cut "
            "the log back with its checkpoints; keep published or freshly signed checkpoints instead",
            err=True,
        )
        return
    verifier = NoteVerifier.ed25519(Ed25519PublicKey.from_public_bytes(base64.b64decode(cp.public_key)))
    for where, text in published:
        try:
            size = open_checkpoint(text, verifier).size if text is not None else 0
        except NoteError as e:
            raise DecisionLogError(
                f"the checkpoint published in {where} does not verify with the key of the latest stored "
                f"one ({_one_line(cp.key_id)}): {e.message}; nothing was written",
                where=url,
                hint="fix the published checkpoint, or keep one signed now (`trustgate log checkpoint "
                "--key PATH --output FILE`)",
            ) from e
        if size > cp.seq:
            raise DecisionLogError(
                f"the checkpoint published in {where} covers {size} records, but the newest "
                f"stored one covers {cp.seq}: someone with write access to the database cut the log "
                "back; nothing was written",
                where=url,
                hint="keep the published one instead, and run `trustgate log verify --checkpoint-dir DIR "
                "--verifier-key KEY` to find what changed",
            )


def _agreed_size(sizes: tuple[int, int, int], url: str) -> int:
    """The log's size when the chain head, the records and the tree agree on it (`Store.sizes`).

    The head row carries no signature: set back to #10 of a 30-record log, it made `log checkpoint
    --output` keep checkpoint #10 as current, and a later rewrite of #15 verified intact against it.

    Raises:
        DecisionLogError: they disagree (after a prune the records start later, but end at the head).
    """
    from trustgate.errors import DecisionLogError

    head, last, leaves = sizes
    if (last and last == head == leaves) or (not last and head == leaves):
        return head
    raise DecisionLogError(
        f"the log does not agree on its size: its chain head (table chain_head) says #{head}, its "
        f"records end at #{last}, its Merkle tree holds {leaves} leaves; someone with write access to "
        "the database altered it, so no stored checkpoint can be vouched for as current; nothing was "
        "written",
        where=url,
        hint="run `trustgate log verify --verifier-key KEY` against the checkpoints you kept; keep the "
        "newest published checkpoint (decisionLog.checkpoint.publish) or one signed now "
        "(`trustgate log checkpoint --key PATH --output FILE`)",
    )


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


@log.command("query")
@_store_options
@_filter_options
@click.option(
    "-o", "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="At most this many (a note on stderr says when more match); 0: no limit.",
)
@click.option("--oldest-first", is_flag=True, help="Oldest first (default: newest first).")
def query_cmd(
    store_url: str | None, config_path: str | None, filters: Filters, fmt: str, limit: int, oldest_first: bool
) -> None:
    """Find decisions: by time, gate, verdict, namespace, image, commit, rule or actor.

    \b
    Examples:
      trustgate log query --store sqlite:///decisions.db --verdict deny --since 2025-01-01
      trustgate log query --image sha256:3f2a... --format json
      trustgate log query --commit 1a2b3c4 --rule 'pss-*' --format csv --limit 0 > denials.csv

    At most --limit decisions are shown (100; 0: all): when more match, a
    note on stderr says so, in every format. Filters select by the indexed
    columns (time, gate, verdict, the terms), which `log verify` checks
    against the records; what is shown comes from the records, and a listed
    record its columns disagree with is named on stderr.
    """
    store = _open(store_url, config_path, read_only=True)
    differing: list[str] = []
    cut: list[bool] = []
    try:
        # One row more than the limit: whether the limit left any out, said on stderr below.
        found = store.query(filters, limit=limit + 1 if limit else None, newest_first=not oldest_first)
        rows = _noting_differences(_at_most(found, limit, cut) if limit else found, differing)
        if fmt == "json":
            _write_json(rows)
        elif fmt == "csv":
            _write_csv(rows)
        else:
            _write_table(rows)
    finally:
        store.close()
    if cut:  # stdout stays what a program reads; the notice goes to stderr, whatever the format
        which = "oldest" if oldest_first else "newest"
        click.echo(
            f"trustgate: note: more decisions match: shown are the {limit} {which} (--limit {limit}); "
            "pass --limit 0 for all of them, or a larger --limit",
            err=True,
        )
    for line in differing:  # a malformed record's reason can quote its stored bytes
        click.echo(f"trustgate: warning: {_one_line(line)}", err=True)
    if differing:
        click.echo(
            "  hint: filters select by those columns, so the list may lack or hold records it should not: "
            "run `trustgate log verify`",
            err=True,
        )


def _at_most(rows: Iterator[Entry], limit: int, cut: list[bool]) -> Iterator[Entry]:
    """The first `limit` rows; appends True to `cut` when there was another."""
    for count, entry in enumerate(rows):
        if count == limit:
            cut.append(True)
            return
        yield entry


def _noting_differences(rows: Iterator[Entry], differing: list[str]) -> Iterator[Entry]:
    """The rows, noting each whose indexed columns are not what its record says."""
    from trustgate.decisions.chain import differing_columns

    for entry in rows:
        malformed = entry.malformed()
        if malformed is not None:
            differing.append(
                f"decision #{entry.seq}: its stored record is malformed ({malformed}): listed by its "
                "columns, flagged"
            )
            yield entry
            continue
        columns = differing_columns(entry, entry.record())
        if columns:
            differing.append(
                f"decision #{entry.seq}: its {', '.join(columns)} column(s) disagree with its record "
                "(shown from the record)"
            )
        yield entry


def _summary(record: Mapping[str, Any]) -> dict[str, str]:
    from trustgate.decisions.record import actors_of, unique

    subject = record.get("subject") or {}
    objects = subject.get("objects") or []
    labels = [
        "/".join(str(x) for x in (o.get("kind"), o.get("namespace"), o.get("name")) if x) for o in objects
    ]
    rules = unique(
        str(f.get("rule")) for f in record.get("findings") or () if f.get("severity") in ("error", "warning")
    )
    return {
        "namespaces": " ".join(unique(str(o["namespace"]) for o in objects if o.get("namespace"))),
        "objects": labels[0] + (f" +{len(labels) - 1}" if len(labels) > 1 else "") if labels else "",
        "images": " ".join(str(i.get("reference")) for i in subject.get("images") or ()),
        "digests": " ".join(str(i["digest"]) for i in subject.get("images") or () if i.get("digest")),
        "commit": str(subject.get("commit") or ""),
        "rules": " ".join(rules),
        "actor": " ".join(actors_of(record)),
    }


def _shown(entry: Entry) -> dict[str, str]:
    """What `log query` shows of an entry, as text: its record's id, time, gate and verdict (which its
    hash covers, not the indexed columns), `_summary`, `differs` (the indexed columns the record
    disagrees with) and `malformed` ('' for a decision record).

    A malformed stored record (an altered row) shows its columns, flagged: `objects` says it is
    malformed and `malformed` why.
    """
    from trustgate.decisions.chain import INDEX_COLUMNS, differing_columns
    from trustgate.decisions.record import MALFORMED_RECORD

    reason = entry.malformed()
    if reason is None:
        try:
            record = entry.record()
            return {
                **{c: _text(record.get(c)) for c in INDEX_COLUMNS},
                **_summary(record),
                "differs": " ".join(differing_columns(entry, record)),  # columns the filters read
                "malformed": "",
            }
        except MALFORMED_RECORD as e:
            reason = str(e) or type(e).__name__
    unread = dict.fromkeys(("namespaces", "images", "digests", "commit", "rules", "actor"), "")
    return {
        "id": entry.id,
        "time": entry.time,
        "gate": entry.gate,
        "verdict": entry.verdict,
        **unread,
        "objects": _UNREADABLE,
        "differs": "",
        "malformed": reason,
    }


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _write_table(rows: Iterator[Entry]) -> None:
    from trustgate.report._common import visible_controls

    header = ("TIME", "ID", "GATE", "VERDICT", "SUBJECT", "COMMIT", "RULES")
    lines = []
    for entry in rows:
        shown = _shown(entry)
        cells = (
            shown["time"][:19] + "Z",
            shown["id"],
            shown["gate"],
            shown["verdict"],
            shown["objects"],
            shown["commit"][:12],
            _clip(shown["rules"], 60),
        )
        # Manifests are untrusted: an object name with ESC or CR could repaint the terminal's rows.
        lines.append(tuple(visible_controls(cell, keep="") for cell in cells))
    if not lines:
        click.echo("no decisions match", err=True)
        return
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    for line in (header, *lines):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


_UNREADABLE = "(malformed record: run `trustgate log verify`)"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _write_json(rows: Iterator[Entry]) -> None:
    with utf8_stdout() as out:  # the records' own bytes: never escaped by the terminal's encoding
        out.write("[")
        count = 0
        for entry in rows:
            out.write(",\n" if count else "\n")
            out.write(_export_line(entry))
            count += 1
        out.write("\n]\n" if count else "]\n")
        out.flush()


def _write_csv(rows: Iterator[Entry]) -> None:
    """The rows as CSV, each text cell safe to open in a spreadsheet (`spreadsheet_cell`).

    Values come from the records; `differs` names the indexed columns a record disagrees with.
    """
    from trustgate.report._common import spreadsheet_cell

    fields = ["seq", "id", "time", "gate", "verdict", "namespaces", "objects", "images", "digests", "commit"]
    fields += ["rules", "actor", "differs"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    with utf8_stdout() as out:
        for entry in rows:
            row = _shown(entry)
            row.pop("malformed")
            writer.writerow({"seq": entry.seq, **{k: spreadsheet_cell(v) for k, v in row.items()}})
            if buffer.tell() > 65536:
                out.write(buffer.getvalue())
                buffer.seek(0)
                buffer.truncate()
        out.write(buffer.getvalue())


def _export_line(entry: Entry) -> str:
    """`{"hash", "prev", "record", "seq"}`: RFC 8785 JSON, so a reader can recompute the chain.

    "hash" is recomputed from the line's own prev, record and seq, not the
    stored column (which no signature covers): the line always hashes to
    it, and an altered prev shows as a link that breaks between lines. The
    stored prev (anything a writer put there) is encoded as a JSON string
    (`chain.export_line`), never pasted in: it cannot add keys or lines.

    Raises:
        DecisionLogError: the stored record is not UTF-8 (an altered row): no JSON line can hold it.
    """
    from trustgate.decisions.chain import export_line, shown_id
    from trustgate.errors import DecisionLogError

    try:
        line = export_line(entry.prev, entry.body, entry.seq).decode()
    except UnicodeDecodeError as e:
        raise DecisionLogError(
            f"the stored record of decision {shown_id(entry.id)} (#{entry.seq}) is not UTF-8 text: {e}",
            hint="it was altered or damaged: run `trustgate log verify` (`log query` lists the others)",
        ) from e
    return line


@log.command("export")
@_store_options
@_filter_options
@click.option("-o", "--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@click.option(
    "--output", type=click.Path(dir_okay=False, writable=True), help="Write here (default: stdout)."
)
def export_cmd(
    store_url: str | None, config_path: str | None, filters: Filters, fmt: str, output: str | None
) -> None:
    """Stream decisions oldest first, one JSON object a line (for a SIEM).

    Each line is {"hash", "prev", "record", "seq"} in RFC 8785 form: the entry
    the chain hashes is the line without "hash". Records are read in chunks,
    so the log's size does not matter.
    """
    try:
        store = _open(store_url, config_path, read_only=True)
        try:
            opened = open(output, "w", encoding="utf-8") if output else utf8_stdout()  # noqa: SIM115
            with opened as target:
                for entry in store.query(filters, newest_first=False):
                    target.write(_export_line(entry) + "\n")
        finally:
            store.close()
    except OSError as e:
        click.echo(f"trustgate: error: cannot write {output}: {e.strerror or e}", err=True)
        sys.exit(ExitCode.NOT_EVALUATED)


_PIN_OPTION = click.option(
    "--verifier-key",
    metavar="KEY",
    help="The log's key, which checkpoints must be signed by: a vkey or a PEM public key file (as "
    "`log verify`). Default: the public half of decisionLog.checkpoint.key of -c trustgate.yaml; "
    "with neither, the key stored beside each checkpoint (not pinned).",
)


def _pinned_key(verifier_key: str | None, config_path: str | None) -> tuple[Ed25519PublicKey | None, str]:
    """The key `log show` and `log prove` check checkpoints with, and how to name it.

    `--verifier-key`, else the public half of the configured signing key
    (whoever signs the log's checkpoints), else None: each checkpoint's
    stored key, which tells a signed row from one made up without a key but
    not whose key signed it.

    Raises:
        Error: the key given or configured is unreadable or not Ed25519.
    """
    if verifier_key:
        return _ed25519(_verifier_key(verifier_key)), "the verifier key given"
    configured = _settings(config_path).decision_log.checkpoint_key
    if configured is not None:
        from trustgate.decisions.keys import read_public_key
        from trustgate.errors import ConfigError

        try:
            return read_public_key(configured), f"the configured key ({configured})"
        except ConfigError as e:  # not unpinned instead: that is what a re-signed log wants
            raise ConfigError(
                f"decisionLog.checkpoint.key: {e.message}", where=e.where, hint="pass --verifier-key VKEY"
            ) from e
    return None, "the key stored beside it (not pinned)"


@log.command("show")
@click.argument("key", metavar="ID")
@_store_options
@_PIN_OPTION
@click.option("-o", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def show_cmd(
    key: str, store_url: str | None, config_path: str | None, verifier_key: str | None, fmt: str
) -> None:
    """Show one decision in full, explained: ID is the id (or a unique prefix) or #SEQ.

    The chain hash shown is recomputed from the record; stored hash or prev
    columns that differ are flagged (in -o json, "hash" is the recomputed
    one and the flags go to stderr).
    """
    from trustgate.decisions.vouch import cover, read_chain_columns
    from trustgate.errors import DecisionLogError
    from trustgate.report._common import visible_controls

    pinned, checked_with = _pinned_key(verifier_key, config_path)
    store = _open(store_url, config_path, read_only=True)
    try:
        with store.snapshot():
            entry = store.get(key)
            coverage = cover(store, entry, pinned=pinned) if entry is not None else None
            columns = read_chain_columns(store, entry) if entry is not None else None
    finally:
        store.close()
    if entry is None or coverage is None or columns is None:
        raise DecisionLogError(f"no decision {key!r}", hint="`trustgate log query` lists ids")
    if fmt == "json":
        with utf8_stdout() as out:  # the line `log export` writes: the bytes its hash covers
            out.write(_export_line(entry) + "\n")
        for problem in columns.problems:
            click.echo(f"trustgate: warning: ALTERED: {visible_controls(problem, keep='')}", err=True)
        return
    # Manifests are untrusted: a name with ESC or CR sequences could repaint the verdict line, and
    # one with a newline could forge a line (`_explain` escapes each value: only its own lines stay).
    click.echo(visible_controls(_explain(entry, coverage, columns, checked_with), keep="\n"))


def _covered(coverage: Coverage, checked_with: str) -> list[str]:
    """What `log show` says of the checkpoint over a record, a line each: "covered by" only when its
    proof verifies."""
    vouched = coverage.vouched
    if vouched is not None:
        cp = vouched.checkpoint
        under = (
            f"the {_one_line(cp.kind)} checkpoint at #{cp.seq} of {_one_line(cp.time)} "
            f"(signed by {_one_line(vouched.key_id)}, "
            f"verified with {checked_with}"
        )
        if coverage.problem is not None:
            line = f"NOT PROVEN under {under}): {coverage.problem}"
        else:
            line = f"covered by {under}; the record's inclusion proof verifies)"
        newer = [f"NOT VERIFIED: {_one_line(r.describe())}" for r in coverage.refused]
        return [line, *newer]
    if coverage.refused:
        cp, reason = coverage.refused[0].checkpoint, coverage.refused[0].reason
        return [
            f"covered by the {_one_line(cp.kind)} checkpoint at #{cp.seq} of {_one_line(cp.time)} "
            f"(NOT VERIFIED: it {_one_line(reason)})"
        ]
    return ["not yet covered by a signed tree checkpoint"]


def _malformed(entry: Entry) -> str | None:
    """Why `log show` cannot explain the entry's stored record (None when it can): an altered row.

    Not a JSON object with an id (`Entry.malformed`), or fields of other types than a decision
    record's. Such a record is shown flagged (`_explain`) and never proven (`log prove`).
    """
    from trustgate.decisions.record import MALFORMED_RECORD
    from trustgate.decisions.vouch import Coverage, chain_columns

    reason = entry.malformed()
    if reason is not None:
        return reason
    try:
        _explain_record(entry, Coverage(entry, None, [], [], None), chain_columns(entry, None), "")
    except MALFORMED_RECORD as e:
        return str(e) or type(e).__name__
    return None


def _chain_lines(columns: ChainColumns) -> list[str]:
    """The chain hash recomputed (no signature covers the stored column) and prev, stored columns that
    differ flagged ALTERED."""
    lines = [f"  hash       {columns.hash}"]
    if columns.stored_hash is not None:  # the stored columns: anything someone wrote there
        stored = _one_line(columns.stored_hash)
        lines.append(f"  ALTERED    the stored hash column is {stored}, not the record's hash")
    lines.append(f"  prev       {_one_line(columns.prev)}")
    if columns.prev_problem is not None:
        lines.append(f"  ALTERED    {_one_line(columns.prev_problem)}")
    return lines


def _explain(entry: Entry, coverage: Coverage, columns: ChainColumns, checked_with: str) -> str:
    """`log show`'s text; a malformed stored record is said to be one (its stored bytes shown), and
    nothing is said to cover it.

    Every value quoted (the record's strings, the id column, the reasons and
    the checkpoints' fields, all of which someone could have written) has its
    control, newline and invisible characters escaped, so that a Pod name
    cannot forge a `verdict` or `exception` line; the caller escapes the
    layout's remaining control characters, keeping its own newlines.
    """
    from trustgate.decisions.record import MALFORMED_RECORD

    reason = entry.malformed()
    if reason is None:
        try:
            return _explain_record(entry, coverage, columns, checked_with)
        except MALFORMED_RECORD as e:
            reason = str(e) or type(e).__name__
    return "\n".join(
        [
            f"decision {_one_line(entry.id)}  (#{entry.seq} in the chain)",
            f"  MALFORMED: the stored record is not a decision record ({_one_line(reason)})",
            "  it was altered or damaged: run `trustgate log verify`",
            f"  stored     {_clip(repr(entry.body), 200)}",
            *_chain_lines(columns),
        ]
    )


def _one_line(value: Any) -> str:
    """`value` as text on one line: every control (newline too) and invisible character escaped."""
    from trustgate.report._common import visible_controls

    return visible_controls(str(value), keep="")


def _one_line_strings(value: Any) -> Any:
    """A JSON value with each string in it (keys too) as `_one_line` shows it."""
    if isinstance(value, str):
        return _one_line(value)
    if isinstance(value, dict):
        return {_one_line(k): _one_line_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_one_line_strings(v) for v in value]
    return value


def _explain_record(entry: Entry, coverage: Coverage, columns: ChainColumns, checked_with: str) -> str:
    r = _one_line_strings(entry.record())
    verdict_words = {
        "allow": "allowed",
        "warn": "allowed, with warnings",
        "deny": "DENIED: a blocking finding",
        "error": "NOT ALLOWED: something could not be evaluated",
    }
    lines = [
        f"decision {_one_line(entry.id)}  (#{entry.seq} in the chain)",
        f"  time       {r.get('time')}",
        f"  gate       {r.get('gate')} in {r.get('mode')} mode",
        f"  verdict    {r.get('verdict')}: {verdict_words.get(str(r.get('verdict')), '')} "
        f"(exit code {r.get('exitCode')})",
        f"  policy     revision {r.get('policyRevision')} (trustgate {r.get('trustgateVersion')})",
        f"  input      {r.get('inputHash')}, decided in {int(r.get('durationUs') or 0) / 1000:.1f} ms",
    ]
    actor = r.get("actor") or {}
    lines.append("who")
    if actor.get("user"):
        user = actor["user"]
        lines.append(f"  user       {user.get('username')} (groups: {', '.join(user.get('groups') or [])})")
    git = actor.get("git") or {}
    for role in ("author", "committer"):
        if git.get(role):
            lines.append(f"  {role:<10} {git[role].get('name')} <{git[role].get('email')}>")
    if git.get("signer"):
        s = git["signer"]
        lines.append(
            f"  signer     {s.get('identity') or '?'} key {s.get('key') or '?'} "
            f"(git status {s.get('status')})"
        )
    if actor.get("ci"):
        ci = actor["ci"]
        lines.append(
            f"  ci         {ci.get('provider')} {ci.get('repository', '')} run {ci.get('runId', '?')} "
            f"{ci.get('runUrl', '')}".rstrip()
        )
    if len(lines) and lines[-1] == "who":
        lines.append("  (not recorded)")
    subject = r.get("subject") or {}
    lines.append("what")
    for key in ("repository", "commit", "ref", "operation", "uid"):
        if subject.get(key):
            lines.append(f"  {key:<10} {subject[key]}")
    objects = subject.get("objects") or []
    for o in objects:
        label = (
            "/".join(str(x) for x in (o.get("kind"), o.get("namespace"), o.get("name")) if x)
            or "(unreadable)"
        )
        extra = f", redacted {', '.join(o['redacted'])}" if o.get("redacted") else ""
        lines.append(f"  object     {label}: {o.get('status')} ({o.get('file')}:{o.get('line')}{extra})")
    for image in subject.get("images") or []:
        digest = image.get("digest") or "no digest"
        lines.append(f"  image      {image.get('reference')} ({digest}; from {image.get('source')})")
        details = image.get("details") or {}
        for sig in details.get("signatures") or []:
            who = sig.get("subject") or f"key {sig.get('keyId', '?')}"
            issuer = f" (issuer {sig['issuer']})" if sig.get("issuer") else ""
            rekor = (
                f", Rekor entry {sig['logIndex']} at {sig.get('integratedTime')}" if "logIndex" in sig else ""
            )
            lines.append(f"             signed by {who}{issuer}{rekor} [authority {sig.get('authority')}]")
        for att in details.get("attestations") or []:
            lines.append(
                f"             attestation {att.get('predicateType')}: {att.get('verdict')} "
                f"(at {att.get('digest')}, envelope {att.get('envelope')})"
            )
        for problem in details.get("problems") or []:
            lines.append(f"             problem {problem.get('rule')}: {problem.get('message')}")
    findings = r.get("findings") or []
    lines.append(f"findings ({len(findings)})")
    for f in findings:
        target = (
            objects[f["object"]] if isinstance(f.get("object"), int) and f["object"] < len(objects) else {}
        )
        # The namespace too: one object judged as two Kustomizations apply it is two namespaces.
        where = "/".join(
            str(x) for x in (target.get("kind"), target.get("namespace"), target.get("name")) if x
        )
        path = f" at {f['path']}" if f.get("path") else ""
        lines.append(f"  {f.get('severity'):<8} {f.get('rule')}: {f.get('message')} [{where}{path}]")
        metadata = f.get("metadata")
        if isinstance(metadata, dict) and metadata.get("appliedAs"):
            applied_with = f" {metadata['appliedWith']}" if metadata.get("appliedWith") else ""
            lines.append(f"           as {metadata['appliedAs']} applies it{applied_with}")
        if f.get("exception"):
            e = f["exception"]
            state = "EXPIRED, not applied" if e.get("expired") else "applied"
            lines.append(
                f"           exception {e.get('name')} ({state}; owner {e.get('owner')}, "
                f"until {e.get('expires')})"
            )
    for e in r.get("exceptions") or []:
        lines.append(
            f"exception {e.get('name')}: {e.get('reason')} "
            f"(owner {e.get('owner')}, {e.get('findings')} findings)"
        )
    for note in r.get("notes") or []:
        lines.append(f"note: {note}")
    lines.append("chain")
    lines.extend(_chain_lines(columns))
    lines.extend(f"  {_one_line(line)}" for line in _covered(coverage, checked_with))
    return "\n".join(lines)


@log.command("init")
@_store_options
def init_cmd(store_url: str | None, config_path: str | None) -> None:
    """Start a new, empty decision log at the store; a log already there is left as it is.

    \b
    The gates that rely on what the log holds never start one themselves: `presync` (where it
    left each gated ref) and `check`/`serve` whose image rules accept verification summaries
    (their revocations). A mistyped URL or a volume not mounted would give them a new, empty
    log, which knows of no gated ref and revokes nothing. Run this once where the log is meant
    to be; it says whether it created the log or found one.

    \b
    Examples:
      trustgate log init --store sqlite:///var/lib/trustgate/decisions.db
      trustgate log init -c trustgate.yaml      # its decisionLog.url
    """
    from trustgate.decisions.log import open_store
    from trustgate.errors import DecisionLogMissingError

    url = store_url_of(store_url, config_path)
    try:
        store = open_store(url, create=False)
    except DecisionLogMissingError:
        store = open_store(url, create=True)
        store.close()
        click.echo(f"created a new, empty decision log in {store.url}")
        return
    try:
        size = store.head()[0]
    finally:
        store.close()
    click.echo(f"a decision log is already there in {store.url} ({_count(size, 'record')}): nothing created")


@log.command("stats")
@_store_options
@_filter_options
@click.option("-o", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--top", type=click.IntRange(min=1), default=20, show_default=True, help="Rules and namespaces shown."
)
def stats_cmd(store_url: str | None, config_path: str | None, filters: Filters, fmt: str, top: int) -> None:
    """Counts of decisions by verdict, gate, day, rule and namespace."""
    from trustgate.report._common import visible_controls

    store = _open(store_url, config_path, read_only=True)
    try:
        total = store.count(filters)
        stats = store.stats(filters, top=top)
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps({"decisions": total, **{k: dict(v) for k, v in stats.items()}}, indent=2))
        return
    click.echo(f"decisions: {total}")
    for name in ("verdict", "gate", "rule", "namespace", "day"):
        click.echo(f"by {name}:")
        for value, count in stats[name]:
            click.echo(f"  {visible_controls(value, keep=''):<40} {count}")


@log.command("prune")
@_store_options
@click.option(
    "--before", required=True, metavar="DATE", help="Remove decisions older than this date or time."
)
@click.option(
    "--key", type=click.Path(exists=True, dir_okay=False), help="Ed25519 key that signs the anchor."
)
def prune_cmd(store_url: str | None, config_path: str | None, before: str, key: str | None) -> None:
    """Remove decisions older than DATE; the rest stays verifiable.

    A prune checkpoint (signed with --key or decisionLog.checkpoint.key) records
    the hash of the last removed entry, which the first kept entry links to;
    `log verify` starts from it. Export first if you must keep them.
    Revocations of verification summaries (`trustgate summaries revoke`) among
    them are recorded anew first: removed, the summaries would count again. So
    is where `trustgate presync` left each gated ref whose newest decision is
    among them: removed, a gated ref someone else moved would go unnoticed.
    """
    from trustgate.decisions.canonical import timestamp
    from trustgate.decisions.chain import Checkpoint
    from trustgate.decisions.keys import read_signer
    from trustgate.decisions.store import parse_time

    key_path = key or _settings(config_path).decision_log.checkpoint_key
    signer = read_signer(key_path) if key_path else None
    cutoff = parse_time(before)

    store = _open(store_url, config_path)

    def anchor(seq: int, digest: str) -> Checkpoint:
        if signer is None:
            return Checkpoint(seq, digest, timestamp(), "prune")
        return signer.sign(seq=seq, hash=digest, time=timestamp(), kind="prune", root=store.root(seq))

    try:
        signed_by = sorted({c.key_id for c in store.checkpoints() if c.signature})
        if signed_by and signer is None:
            click.echo(
                f"trustgate: error: {store.url}: this log is signed (by {_one_line(', '.join(signed_by))}); "
                "pruning it needs the key to sign the prune checkpoint\n"
                "  hint: pass --key PATH or set decisionLog.checkpoint.key",
                err=True,
            )
            sys.exit(ExitCode.USAGE)
        url = store_url_of(store_url, config_path)
        recorded, carried = _carry_revocations(store, cutoff, url)
        gated_at, gated = _carry_gated_refs(store, cutoff, url)
        # Never past the records just written anew (a --before in the future).
        result = store.prune(min(t for t in (cutoff, recorded, gated_at) if t), anchor)
    finally:
        store.close()
    for digest in carried:
        click.echo(f"carried over the revocation of {digest} (verification summaries): recorded anew")
    for line in gated:
        click.echo(f"carried over where presync left {line}: recorded anew")
    if result.anchor is None:
        click.echo(f"nothing older than {cutoff}")
        return
    signed = "UNSIGNED (no key given)"
    if result.anchor.signature:
        signed = f"signed by {_one_line(result.anchor.key_id)}"
    click.echo(
        f"removed {result.removed} decisions up to #{result.anchor.seq}; "
        f"prune checkpoint {result.anchor.hash} {signed}"
    )


def _carry_revocations(store: Store, cutoff: str, url: str) -> tuple[str | None, list[str]]:
    """Record anew the revocations of verification summaries a prune up to `cutoff` would remove
    (`revocations.to_carry_over`): the summaries they revoke would count again. Returns the time
    no earlier than their new records' (None when there were none) and the digests.

    Raises:
        DecisionLogError: the log cannot be read or written (nothing is pruned).
    """
    from trustgate.decisions.canonical import timestamp
    from trustgate.decisions.log import DecisionLog
    from trustgate.decisions.record import Actor
    from trustgate.revocations import revocation_record, to_carry_over

    carry = to_carry_over(store, cutoff)
    if not carry:
        return None, []
    started = timestamp()
    with DecisionLog.open(url) as writer:
        for digest, why in carry:
            writer.append(revocation_record(digest, reason=why, actor=Actor()))
    return started, [digest for digest, _ in carry]


def _carry_gated_refs(store: Store, cutoff: str, url: str) -> tuple[str | None, list[str]]:
    """Record anew where `trustgate presync` left each gated ref whose newest record a prune up to
    `cutoff` would remove (`decisions.gated.to_carry_over`): without it, a gated ref someone else
    moved would be judged onward from. Returns the time no earlier than their new records' (None
    when there were none) and, for each, `REF of REPOSITORY at COMMITS` (or `nowhere`).

    Raises:
        DecisionLogError: the log cannot be read or written (nothing is pruned).
    """
    from trustgate.decisions.canonical import timestamp
    from trustgate.decisions.gated import to_carry_over
    from trustgate.decisions.log import DecisionLog

    started = timestamp()  # before the records are made: each takes its time when it is made
    carry = to_carry_over(store, cutoff)
    if not carry:
        return None, []
    shown = []
    with DecisionLog.open(url) as writer:
        for record in carry:
            writer.append(record)
            subject = record["subject"]
            presync = subject["presync"]
            shown.append(
                _one_line(
                    f"{presync['gatedRef']} of {subject.get('repository') or '?'} "
                    + (
                        "at " + ", ".join(c[:12] for c in presync["vouched"])
                        if presync["vouched"]
                        else "nowhere (it never created it)"
                    )
                )
            )
    return started, shown


@log.command("rebuild-summaries")
@_store_options
def rebuild_summaries_cmd(store_url: str | None, config_path: str | None) -> None:
    """Compute the summary tables the UI reads again from the records.

    `log verify` reports summaries that disagree with the records (altered,
    or left behind by an older trustgate that appended without them); the
    UI reads the records instead while they lag. This recomputes
    `daily_counts`, `daily_seqs`, `exception_terms` and `exceptions_seen` in
    one write transaction (appends wait for it). Verify first: it trusts the
    records as they are.
    """
    store = _open(store_url, config_path)
    try:
        store.rebuild_summaries()
        behind = store.summaries_behind()
        size = store.head()[0]
    finally:
        store.close()
    if behind:  # another writer without them appended in the meantime
        click.echo(f"rebuilt the summaries of {store.url}, but they are behind again: an older writer runs")
        sys.exit(ExitCode.POLICY_FAILURE)
    click.echo(f"rebuilt the summaries of {store.url} up to #{size}")


@log.command("checkpoint")
@_store_options
@click.option("--key", type=click.Path(exists=True, dir_okay=False), help="Ed25519 private key (PEM).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False),
    help="Write the checkpoint (a C2SP signed note) here, for an auditor to keep. Without a key, "
    "the latest stored one.",
)
@click.option(
    "--print-verifier-key",
    is_flag=True,
    help="Print the log's verifier key (vkey) for auditors, alone on stdout (the rest goes to stderr).",
)
@click.option(
    "--allow-behind",
    is_flag=True,
    help="With --output and no key: write the latest stored checkpoint even when it covers fewer "
    "records than the log holds (by default that exits 3 and writes nothing).",
)
@clock_skew_option(
    "With --key: the clock skew this one signing allows (a way past records a wrong clock "
    "misdated; `log verify` still names them) [default: decisionLog.checkpoint.clockSkewSeconds]."
)
def checkpoint_cmd(
    store_url: str | None,
    config_path: str | None,
    key: str | None,
    output: str | None,
    print_verifier_key: bool,
    allow_behind: bool,
    clock_skew: float | None,
) -> None:
    """Sign the current head of the log now, or (--output, no key) export the latest checkpoint.

    Writers also sign checkpoints periodically. An auditor keeps the files
    `--output` writes and later runs `log verify --checkpoint FILE
    --verifier-key KEY`. Without a key, a latest stored checkpoint that
    covers fewer records than the log holds is not written (exit 3) unless
    --allow-behind: newer ones were not signed yet, or were deleted.
    """
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from trustgate.decisions.chain import stored_checkpoint_problem
    from trustgate.decisions.keys import read_signer
    from trustgate.decisions.log import CheckpointPolicy, CheckpointRefusedError, DecisionLog
    from trustgate.decisions.note import NoteVerifier
    from trustgate.errors import DecisionLogError

    problems: list[DecisionLogError] = []
    try:
        settings = _settings(config_path)
        key_path = key or settings.decision_log.checkpoint_key
        cp: Checkpoint | None = None
        if key_path:
            signer = read_signer(key_path)
            policy = CheckpointPolicy(
                publish=publishers(settings),
                clock_skew=settings.decision_log.checkpoint_clock_skew_seconds
                if clock_skew is None
                else clock_skew,
            )
            with DecisionLog(
                store=_open(store_url, config_path), signer=signer, checkpoints=policy
            ) as decision_log:
                try:
                    cp = decision_log.checkpoint()
                finally:
                    problems = decision_log.take_problems()
        elif output or print_verifier_key:
            store = _open(store_url, config_path)
            configured = publishers(settings)
            try:
                # Published first: a writer stores a checkpoint before it publishes it.
                published = _read_published(configured, store.url) if output else []
                with store.snapshot():
                    stored = store.checkpoints()
                    sizes = store.sizes()
            finally:
                store.close()
            noted = [c for c in stored if c.note]
            size = _agreed_size(sizes, store.url)
            keys = {(c.key_id, c.public_key) for c in stored if c.signature}
            if print_verifier_key and len(keys) > 1:
                raise DecisionLogError(
                    f"the stored checkpoints are signed by {len(keys)} different keys: the database cannot "
                    "say which one is the log's (whoever can write it can add checkpoints signed by a key "
                    "of their own); no verifier key was printed",
                    where=store.url,
                    hint="get the verifier key from the key's holder: `trustgate log checkpoint --key PATH "
                    "--print-verifier-key`, or the PEM public key (`openssl pkey -in KEY -pubout`)",
                )
            if not noted:
                raise DecisionLogError(
                    "the log has no signed tree checkpoint yet",
                    hint="sign one: `trustgate log checkpoint --key PATH`",
                )
            cp = max(noted, key=lambda c: (c.seq, c.time))
            reason = stored_checkpoint_problem(cp)
            if reason is not None:  # never export (or vouch for) a row nobody checked
                raise DecisionLogError(
                    f"the latest stored checkpoint (the {_one_line(cp.kind)} checkpoint of "
                    f"{_one_line(cp.time)} at #{cp.seq}) {reason}: it was altered or made up in the "
                    "database; nothing was exported",
                    where=store.url,
                    hint="sign a fresh one with `trustgate log checkpoint --key PATH`, and run "
                    "`trustgate log verify` against the checkpoints you kept",
                )
            if output:
                _not_behind_published(cp, published, bool(configured), store.url)
            if output and cp.seq < size:
                behind = _behind(cp, size, output)
                if not allow_behind:
                    raise DecisionLogError(
                        behind + "; nothing was written",
                        where=store.url,
                        hint="keep the newest published checkpoint (decisionLog.checkpoint.publish) or one "
                        "signed now (`trustgate log checkpoint --key PATH --output FILE`); to keep this "
                        "one anyway, pass --allow-behind",
                    )
                click.echo(f"trustgate: warning: {behind}", err=True)
        else:
            raise DecisionLogError(
                "a checkpoint needs a key", hint="pass --key PATH (an Ed25519 PEM private key)"
            )
        assert cp is not None
        if output:
            try:
                Path(output).write_text(cp.note, encoding="utf-8")
            except OSError as e:
                raise DecisionLogError(f"cannot write {output}: {e.strerror or e}") from e
        vkey = NoteVerifier.ed25519(
            Ed25519PublicKey.from_public_bytes(base64.b64decode(cp.public_key))
        ).vkey()
    except CheckpointRefusedError as e:  # the log is not consistent with a trusted checkpoint
        click.echo(f"trustgate: error: {printable_diagnostics(e)}", err=True)
        sys.exit(ExitCode.POLICY_FAILURE)
    for problem in problems:  # the checkpoint is signed and stored; publishing it failed
        click.echo(f"trustgate: error: {printable_diagnostics(problem)}", err=True)
    if print_verifier_key:
        if not key_path:
            click.echo(
                "trustgate: warning: this verifier key was read from the database (the key stored beside "
                "its newest checkpoint), which whoever can write the database can replace: it is no trust "
                "anchor. Pin the key you get from its holder (`trustgate log checkpoint --key PATH "
                "--print-verifier-key`, or the PEM public key)",
                err=True,
            )
        click.echo(vkey)
    where = f", written to {output}" if output else ""
    said = f"checkpoint at #{cp.seq}: {cp.hash} signed by {cp.key_id} at {cp.time}{where}"
    # stdout holds the one thing asked for: the vkey (`VKEY=$(... --print-verifier-key)`), else this line.
    # A stored checkpoint's fields: anything was written there.
    click.echo(_one_line(said), err=bool(output) or print_verifier_key)


@log.command("prove")
@click.argument("key", metavar="ID")
@_store_options
@_PIN_OPTION
@click.option("-o", "--format", "fmt", type=click.Choice(["json"]), default="json", show_default=True)
def prove_cmd(
    key: str, store_url: str | None, config_path: str | None, verifier_key: str | None, fmt: str
) -> None:
    """Prove one decision is in the log: an RFC 6962 inclusion proof under the latest signed checkpoint.

    The output holds the record, its leaf hash, the proof and the checkpoint:
    `trustgate log verify-proof FILE --verifier-key KEY` checks it with
    nothing else. Only a checkpoint whose signatures verify is used, and the
    proof is checked before it is printed: exit 1 (NOT PROVEN, nothing on
    stdout) when the record is not its stored leaf, the tree does not lead
    to the signed root, no checkpoint covering it verifies, or that
    checkpoint signs more records than the log's tree holds. A malformed
    stored record (`log show` says MALFORMED) is refused: exit 3.
    Checkpoints are checked with --verifier-key, else the configured key
    (as `log show`); newer checkpoints that do not verify are named on
    stderr.
    """
    from trustgate.decisions.chain import shown_id
    from trustgate.decisions.vouch import cover
    from trustgate.errors import DecisionLogError
    from trustgate.report._common import visible_controls

    pinned, checked_with = _pinned_key(verifier_key, config_path)
    store = _open(store_url, config_path, read_only=True)
    try:
        with store.snapshot():
            entry = store.get(key)
            if entry is None:
                raise DecisionLogError(f"no decision {key!r}", hint="`trustgate log query` lists ids")
            malformed = _malformed(entry)
            if malformed is not None:  # what `log show` flags is never proven
                raise DecisionLogError(
                    f"the stored record of decision {shown_id(entry.id)} (#{entry.seq}) is not a decision "
                    f"record: {visible_controls(malformed, keep='')}",
                    hint="it was altered or damaged: run `trustgate log verify`",
                )
            coverage = cover(store, entry, pinned=pinned)
    finally:
        store.close()
    if coverage.proven:
        assert coverage.vouched is not None
        click.echo(json.dumps(coverage.proof(), indent=2))
        cp = coverage.vouched.checkpoint
        click.echo(f"proven under the checkpoint at #{cp.seq}, verified with {checked_with}", err=True)
        for refused in coverage.refused:  # a newer one altered or made up: the proof is under an older one
            warning = f"NOT VERIFIED, not used: {refused.describe()}"
            click.echo(f"trustgate: warning: {visible_controls(warning, keep='')}", err=True)
        return
    label = f"decision {shown_id(entry.id)} (#{entry.seq})"
    if coverage.problem is not None:  # nothing on stdout: a redirect must not make a proof file
        click.echo(visible_controls(f"NOT PROVEN: {label}: {coverage.problem}", keep=""), err=True)
    elif coverage.refused:
        why = coverage.refused[0].describe()
        click.echo(
            visible_controls(f"NOT PROVEN: {label}: no checkpoint covering it verifies: {why}", keep=""),
            err=True,
        )
    else:
        raise DecisionLogError(
            f"{label} is not yet covered by a signed tree checkpoint",
            hint="sign one: `trustgate log checkpoint --key PATH`",
        )
    click.echo("  hint: run `trustgate log verify` against the checkpoints you kept", err=True)
    sys.exit(ExitCode.POLICY_FAILURE)


@log.command("verify-proof")
@click.argument("proof_file", metavar="PROOF.json", type=click.Path(dir_okay=False))
@click.option("--verifier-key", required=True, metavar="KEY", help="The log's vkey or PEM public key file.")
@click.option(
    "--witness-key",
    "witness_keys",
    multiple=True,
    metavar="VKEY",
    help="A witness that must have cosigned the proof's checkpoint (repeatable; `log witness "
    "--print-verifier-key`).",
)
def verify_proof_cmd(proof_file: str, verifier_key: str, witness_keys: tuple[str, ...]) -> None:
    """Check a `log prove` file offline: the record is in the log the signed checkpoint describes.

    With --witness-key, each witness must have cosigned that checkpoint
    (C2SP tlog-cosignature). Exit 0 proven, 1 the proof does not verify or a
    witness did not cosign, 3 the file or key is unusable.
    """
    from trustgate.decisions import merkle
    from trustgate.decisions.canonical import CanonicalError, canonical
    from trustgate.decisions.note import NoteError, open_checkpoint
    from trustgate.decisions.witness import CosignerKey
    from trustgate.errors import InputError

    note_verifier = _verifier_key(verifier_key)
    try:
        raw = Path(proof_file).read_bytes()
    except OSError as e:
        raise InputError(f"cannot read the proof: {e.strerror or e}", where=proof_file) from e
    data = _strict_json(raw, proof_file, "proof")
    index, size, leaf_hex, hashes, note, record = _proof_fields(data, proof_file)
    try:
        head = open_checkpoint(note, note_verifier)
    except NoteError as e:
        raise NoteError(f"its checkpoint: {e.message}", where=proof_file) from e
    if head.size != size:
        raise InputError(
            f"the proof is for a tree of {size} records, its checkpoint is of {head.size}",
            where=proof_file,
        )
    witnesses = [CosignerKey.parse(k) for k in witness_keys]
    try:
        leaf = merkle.leaf_hash(canonical(record))
    except CanonicalError as e:
        raise InputError(f"the record cannot be encoded canonically: {e}", where=proof_file) from e
    try:
        if leaf.hex() != leaf_hex:
            raise merkle.ProofError(
                "the record does not hash to the proof's leafHash (the record was altered)"
            )
        merkle.verify_inclusion(index, size, leaf, hashes, head.root)
        for cosigner in witnesses:
            try:
                cosigner.check(note)
            except NoteError as e:
                raise merkle.ProofError(e.message) from e
    except merkle.ProofError as e:
        click.echo(f"NOT PROVEN: {proof_file}: {e.message}")
        sys.exit(ExitCode.POLICY_FAILURE)
    click.echo(
        f"proven: decision {record.get('id')} is #{index + 1} of the {size} records of {head.origin} "
        "(checkpoint signed by the verifier key)"
    )


@log.command("prove-consistency")
@click.argument("old_size", type=click.IntRange(min=0))
@click.argument("new_size", type=click.IntRange(min=0))
@_store_options
def prove_consistency_cmd(
    old_size: int, new_size: int, store_url: str | None, config_path: str | None
) -> None:
    """Print the RFC 6962 consistency proof from the tree of OLD_SIZE records to the one of NEW_SIZE.

    The output, `{"oldSize", "newSize", "hashes"}` (hex), is what `log witness
    --proof` takes.
    """
    from trustgate.errors import DecisionLogError

    if old_size > new_size:
        raise DecisionLogError(f"OLD_SIZE {old_size} is larger than NEW_SIZE {new_size}")
    store = _open(store_url, config_path, read_only=True)
    try:
        size = store.tree_size()
        if new_size > size:
            raise DecisionLogError(f"the log has {size} records, not {new_size}", where=store.url)
        hashes = store.consistency_proof(old_size, new_size)
    finally:
        store.close()
    click.echo(json.dumps({"oldSize": old_size, "newSize": new_size, "hashes": [h.hex() for h in hashes]}))


@log.command("witness")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="The new checkpoint (signed by the log) to cosign.",
)
@click.option(
    "--state",
    "state_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="The witness's directory: the last checkpoint it cosigned, per log.",
)
@click.option(
    "--key",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The witness's Ed25519 key (PEM).",
)
@click.option("--verifier-key", required=True, metavar="KEY", help="The log's vkey or PEM public key file.")
@click.option(
    "--proof",
    "proof_file",
    type=click.Path(dir_okay=False),
    help="Consistency proof from the last cosigned checkpoint (`log prove-consistency OLD NEW`).",
)
@_store_options
@click.option("--name", help="The witness's key name (default: trustgate.dev/witness/<key hash>).")
@click.option(
    "--output", type=click.Path(dir_okay=False), help="Write the cosigned checkpoint here (default: stdout)."
)
@click.option(
    "--print-verifier-key", is_flag=True, help="Print the witness's key (vkey) for auditors, on stderr."
)
def witness_cmd(
    checkpoint_file: str,
    state_dir: str,
    key: str,
    verifier_key: str,
    proof_file: str | None,
    store_url: str | None,
    config_path: str | None,
    name: str | None,
    output: str | None,
    print_verifier_key: bool,
) -> None:
    """Cosign a checkpoint (C2SP tlog-cosignature) if it extends the last one this witness cosigned.

    The proof comes from --proof, or from the log itself (--store); a
    witness that runs apart from the log takes --proof. The first checkpoint
    of a log is trusted as it is. Exit 0 cosigned, 1 not consistent (not
    cosigned), 3 a file, key or proof is unusable.
    """
    import time

    from trustgate.decisions.keys import read_signer
    from trustgate.decisions.note import NoteError, open_checkpoint
    from trustgate.decisions.publish import WitnessState
    from trustgate.decisions.witness import Cosigner, NotConsistentError, default_name, witness
    from trustgate.errors import InputError

    try:
        private = read_signer(key).private_key
        cosigner = Cosigner(name or default_name(private.public_key()), private)
        log_verifier = _verifier_key(verifier_key)
        new_note = _read_text(checkpoint_file, "checkpoint")
        try:
            new = open_checkpoint(new_note, log_verifier)
        except NoteError as e:
            raise NoteError(e.message, where=checkpoint_file) from e
        state = WitnessState(Path(state_dir))
        # From reading the state to replacing it, under the state's lock: a concurrent run waits,
        # then sees this checkpoint and refuses a fork of it (otherwise both forks get cosigned).
        with state.locked():
            old = None
            text = state.read(new.origin)
            if text is not None:
                try:
                    old = open_checkpoint(text, log_verifier)
                except NoteError as e:
                    raise NoteError(
                        f"the witness state does not verify: {e.message}", where=str(state.path(new.origin))
                    ) from e
            proof: list[bytes] = []
            if old is not None and old.size < new.size:
                proof = _consistency(proof_file, store_url, config_path, old.size, new.size)
            cosigned = witness(
                cosigner, new_note=new_note, new=new, old=old, proof=proof, timestamp=int(time.time())
            )
            state.save(new.origin, new_note)  # durable before the cosignature leaves
        if output:
            try:
                Path(output).write_text(cosigned, encoding="utf-8")
            except OSError as e:
                raise InputError(f"cannot write: {e.strerror or e}", where=output) from e
    except NotConsistentError as e:
        click.echo(f"NOT COSIGNED: {checkpoint_file}: {e.message}")
        sys.exit(ExitCode.POLICY_FAILURE)
    if print_verifier_key:
        click.echo(cosigner.public.vkey(), err=True)
    if not output:
        with utf8_stdout() as out:  # a signed note: every signature line starts with an em dash
            out.write(cosigned)
    since = (
        f"extends the {old.size} records cosigned before" if old else "first checkpoint of this log, trusted"
    )
    click.echo(f"cosigned {new.origin} at {new.size} records by {cosigner.name} ({since})", err=True)


def _read_text(path: str, what: str) -> str:
    from trustgate.errors import InputError

    try:
        return Path(path).read_bytes().decode()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the {what}: {getattr(e, 'strerror', None) or e}", where=path) from e


def _consistency(
    proof_file: str | None, store_url: str | None, config_path: str | None, old_size: int, new_size: int
) -> list[bytes]:
    """The consistency proof from --proof (checked to be for these sizes) or from the store."""
    from trustgate.errors import InputError

    if proof_file is None:
        store = _open(store_url, config_path)
        try:
            return store.consistency_proof(old_size, new_size)
        finally:
            store.close()
    data = _strict_json(_read_text(proof_file, "proof"), proof_file, "consistency proof")
    if not isinstance(data, dict) or not isinstance(data.get("hashes"), list):
        raise InputError('not a consistency proof: not {"oldSize", "newSize", "hashes"}', where=proof_file)
    for name in ("oldSize", "newSize"):
        if type(data.get(name)) is not int:  # not a bool: True == 1
            raise InputError(f"not a consistency proof: {name} is not an integer", where=proof_file)
    hashes = _hex_hashes(data["hashes"], "hashes", proof_file)
    if (data.get("oldSize"), data.get("newSize")) != (old_size, new_size):
        raise InputError(
            f"the proof is from {data.get('oldSize')} to {data.get('newSize')} records; the witness needs "
            f"{old_size} to {new_size}",
            where=proof_file,
            hint=f"trustgate log prove-consistency {old_size} {new_size} --store URL",
        )
    return hashes


def _proof_fields(data: Any, where: str) -> tuple[int, int, str, list[bytes], str, dict[str, Any]]:
    from trustgate.errors import InputError

    if not isinstance(data, dict):
        raise InputError("the proof is not a JSON object", where=where)
    missing = [
        k for k in ("index", "treeSize", "leafHash", "hashes", "checkpoint", "record") if k not in data
    ]
    if missing:
        raise InputError(f"the proof lacks {', '.join(missing)}", where=where)
    index, size, leaf, hashes = data["index"], data["treeSize"], data["leafHash"], data["hashes"]
    if type(index) is not int or type(size) is not int or not 0 <= index < size:
        raise InputError("index and treeSize must be integers with 0 <= index < treeSize", where=where)
    if not isinstance(data["checkpoint"], str) or not isinstance(data["record"], dict):
        raise InputError("checkpoint must be the signed note text and record an object", where=where)
    _hex_hashes([leaf], "leafHash", where)
    if not isinstance(hashes, list):
        raise InputError("hashes must be a list of hex SHA-256 hashes", where=where)
    return index, size, leaf, _hex_hashes(hashes, "hashes", where), data["checkpoint"], data["record"]


_HASH_HEX = re.compile(r"[0-9a-f]{64}\Z")


def _hex_hashes(values: list[Any], field: str, where: str) -> list[bytes]:
    """SHA-256 hashes as `log prove` writes them: 64 lowercase hex digits each.

    Raises:
        InputError: any other value, naming the field.
    """
    from trustgate.errors import InputError

    for i, value in enumerate(values):
        if not isinstance(value, str) or not _HASH_HEX.match(value):
            at = field if field == "leafHash" else f"{field}[{i}]"
            raise InputError(
                f"{at} is not a SHA-256 hash in lowercase hex (64 digits): {str(value)[:80]!r}", where=where
            )
    return [bytes.fromhex(v) for v in values]


def _strict_json(raw: bytes | str, where: str, what: str) -> Any:
    """JSON as a proof file must be: no repeated keys, no NaN or Infinity, nesting Python can read.

    Raises:
        InputError: anything else, naming the file.
    """
    from trustgate.errors import InputError

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:  # which one counts is the reader's guess: refuse rather than guess
                raise ValueError(f"the key {key!r} appears twice in one object")
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(raw, object_pairs_hook=unique, parse_constant=constant)
    except RecursionError as e:
        raise InputError(f"the {what} is nested too deeply to read", where=where) from e
    except ValueError as e:
        raise InputError(f"the {what} is not JSON: {e}", where=where) from e
