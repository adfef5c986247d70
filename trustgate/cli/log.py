"""`trustgate log ...`: what auditors and operators do with the decision log.

Owns: the `log` command group (verify, query, show, export, stats, prune,
checkpoint) and the glue gate commands use to open the configured log and
say where a decision went. Exit codes as everywhere: 0 fine, 1 the chain is
not intact (verify), 2 usage, 3 the store could not be read or written.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from trustgate.config import Config, load_config
from trustgate.errors import Error
from trustgate.model import Decision, ExitCode

if TYPE_CHECKING:
    from trustgate.decisions.chain import Entry
    from trustgate.decisions.log import DecisionLog, Store
    from trustgate.decisions.record import DecisionContext
    from trustgate.decisions.store import Filters

VERDICT_CHOICES = ("allow", "warn", "deny", "error")


def _fail(error: Error) -> NoReturn:
    click.echo(f"trustgate: error: {error.diagnostics()}", err=True)
    sys.exit(ExitCode.NOT_EVALUATED)


# -- for gate commands -----------------------------------------------------------


def gate_decision_log(config: Config, url: str | None) -> DecisionLog | None:
    """The decision log a gate writes to: `--decision-log` or `decisionLog.url`; None when neither.

    Raises:
        DecisionLogError: the URL is malformed.
        ConfigError: the checkpoint key is unusable.
    """
    url = url or config.decision_log.url
    if not url:
        return None
    from trustgate.decisions.log import CheckpointPolicy, DecisionLog

    settings = config.decision_log
    return DecisionLog.open(
        url,
        key=settings.checkpoint_key,
        checkpoints=CheckpointPolicy(
            every_records=settings.checkpoint_every_records, every_seconds=settings.checkpoint_every_seconds
        ),
    )


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


def _open(store_url: str | None, config_path: str | None, *, create: bool = False) -> Store:
    from trustgate.decisions.log import open_store
    from trustgate.errors import DecisionLogError

    url = store_url or _settings(config_path).decision_log.url
    if not url:
        raise DecisionLogError(
            "no decision log given",
            hint="pass --store URL, set TRUSTGATE_DECISION_LOG, or use -c trustgate.yaml",
        )
    return open_store(url, create=create)


def _filter_options(command: Callable[..., None]) -> Callable[..., None]:
    options = [
        click.option("--since", metavar="TIME", help="From this date or time on (2025-01-31, ...T12:00Z)."),
        click.option("--until", metavar="TIME", help="Before this time; a date includes that day."),
        click.option("--gate", "gates", multiple=True, help="ci, presync, admission (repeatable)."),
        click.option("--verdict", "verdicts", multiple=True, type=click.Choice(VERDICT_CHOICES)),
        click.option("--namespace", "namespaces", multiple=True, help="Namespace; `prefix*` allowed."),
        click.option(
            "--image", "images", multiple=True, help="Image reference (`ref*` prefix) or digest sha256:..."
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
        try:
            filters = Filters(
                since=parse_time(since) if since else None,
                until=parse_time(until, end=True) if until else None,
                **{name: kwargs.pop(name) for name in _FILTER_FIELDS},
            )
        except Error as e:
            _fail(e)
        command(filters=filters, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


_FILTER_FIELDS = ("gates", "verdicts", "namespaces", "images", "commits", "trees", "rules", "actors")


@log.command("verify")
@_store_options
@click.option(
    "--public-key",
    type=click.Path(exists=True, dir_okay=False),
    help="Ed25519 public key (PEM) every checkpoint must be signed by.",
)
@click.option("--deep", is_flag=True, help="Also check that every record is canonical JSON (slower).")
@click.option("-o", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify_cmd(
    store_url: str | None, config_path: str | None, public_key: str | None, deep: bool, fmt: str
) -> None:
    """Prove the log untampered: exit 0 when intact, 1 naming the first bad record.

    Checks every record's hash and link to its predecessor, the columns and
    query index against the records, and every checkpoint's signature and
    hash. Finds records altered, removed, inserted or reordered.
    """
    from trustgate.decisions.chain import Verifier, load_public_key

    try:
        key = load_public_key(public_key) if public_key else None
        store = _open(store_url, config_path)
        try:
            with store.snapshot():
                verifier = Verifier(checkpoints=store.checkpoints(), public_key=key, deep=deep)
                report = verifier.run(store.entries(), store.index_rows())
        finally:
            store.close()
    except Error as e:
        _fail(e)
    if fmt == "json":
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        span = f"#{report.first_seq}..#{report.last_seq}" if report.records else "no records"
        if report.ok:
            click.echo(f"intact: {report.records} records ({span}), head {report.head}")
        else:
            first = report.first_problem
            assert first is not None
            click.echo(f"NOT INTACT: {first.kind}: {first.message}")
            click.echo(f"  checked {report.records} records ({span}) before the first problem")
            for other in sorted(report.problems, key=lambda p: p.seq)[1:]:
                click.echo(f"  also: {other.kind}: {other.message}")
        if report.anchor is not None:
            click.echo(f"  starts after the prune of {report.anchor.time} at #{report.anchor.seq}")
        click.echo(
            f"  {report.checkpoints} checkpoints"
            + (f", signed by {', '.join(sorted(report.signed_by))}" if report.signed_by else "")
        )
        for warning in report.warnings:
            click.echo(f"  warning: {warning}")
    sys.exit(ExitCode.PASS if report.ok else ExitCode.POLICY_FAILURE)


@log.command("query")
@_store_options
@_filter_options
@click.option(
    "-o", "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
)
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True, help="0: no limit.")
@click.option("--oldest-first", is_flag=True, help="Oldest first (default: newest first).")
def query_cmd(
    store_url: str | None, config_path: str | None, filters: Filters, fmt: str, limit: int, oldest_first: bool
) -> None:
    """Find decisions: by time, gate, verdict, namespace, image, commit, rule or actor.

    \b
    Examples:
      trustgate log query --store sqlite:///decisions.db --verdict deny --since 2025-01-01
      trustgate log query --image sha256:3f2a... --format json
      trustgate log query --commit 1a2b3c4 --rule 'pss-*' --format csv > denials.csv
    """
    try:
        store = _open(store_url, config_path)
        try:
            rows = store.query(filters, limit=limit or None, newest_first=not oldest_first)
            if fmt == "json":
                _write_json(rows)
            elif fmt == "csv":
                _write_csv(rows)
            else:
                _write_table(rows)
        finally:
            store.close()
    except Error as e:
        _fail(e)


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


def _write_table(rows: Iterator[Entry]) -> None:
    header = ("TIME", "ID", "GATE", "VERDICT", "SUBJECT", "COMMIT", "RULES")
    lines = []
    for entry in rows:
        summary = _summary(entry.record())
        lines.append(
            (
                entry.time[:19] + "Z",
                entry.id,
                entry.gate,
                entry.verdict,
                summary["objects"],
                summary["commit"][:12],
                _clip(summary["rules"], 60),
            )
        )
    if not lines:
        click.echo("no decisions match", err=True)
        return
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    for line in (header, *lines):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _write_json(rows: Iterator[Entry]) -> None:
    out = sys.stdout
    out.write("[")
    count = 0
    for entry in rows:
        out.write(",\n" if count else "\n")
        out.write(_export_line(entry))
        count += 1
    out.write("\n]\n" if count else "]\n")
    out.flush()


def _write_csv(rows: Iterator[Entry]) -> None:
    fields = ["seq", "id", "time", "gate", "verdict", "namespaces", "objects", "images", "digests", "commit"]
    fields += ["rules", "actor"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for entry in rows:
        writer.writerow(
            {
                "seq": entry.seq,
                "id": entry.id,
                "time": entry.time,
                "gate": entry.gate,
                "verdict": entry.verdict,
                **_summary(entry.record()),
            }
        )
        if buffer.tell() > 65536:
            sys.stdout.write(buffer.getvalue())
            buffer.seek(0)
            buffer.truncate()
    sys.stdout.write(buffer.getvalue())


def _export_line(entry: Entry) -> str:
    """`{"hash", "prev", "record", "seq"}`: RFC 8785 JSON, so a reader can recompute the chain."""
    return (
        f'{{"hash":"{entry.hash}","prev":"{entry.prev}","record":'
        + entry.body.decode()
        + f',"seq":{entry.seq}}}'
    )


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
        store = _open(store_url, config_path)
        try:
            target = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
            try:
                for entry in store.query(filters, newest_first=False):
                    target.write(_export_line(entry) + "\n")
            finally:
                if output:
                    target.close()
                else:
                    target.flush()
        finally:
            store.close()
    except OSError as e:
        click.echo(f"trustgate: error: cannot write {output}: {e.strerror or e}", err=True)
        sys.exit(ExitCode.NOT_EVALUATED)
    except Error as e:
        _fail(e)


@log.command("show")
@click.argument("key", metavar="ID")
@_store_options
@click.option("-o", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def show_cmd(key: str, store_url: str | None, config_path: str | None, fmt: str) -> None:
    """Show one decision in full, explained: ID is the id (or a unique prefix) or #SEQ."""
    from trustgate.errors import DecisionLogError

    try:
        store = _open(store_url, config_path)
        try:
            entry = store.get(key)
            covering = None
            if entry is not None:
                later = [c for c in store.checkpoints() if c.seq >= entry.seq and c.kind != "prune"]
                covering = min(later, key=lambda c: c.seq) if later else None
        finally:
            store.close()
        if entry is None:
            raise DecisionLogError(f"no decision {key!r}", hint="`trustgate log query` lists ids")
    except Error as e:
        _fail(e)
    if fmt == "json":
        click.echo(_export_line(entry))
        return
    click.echo(_explain(entry, covering))


def _explain(entry: Entry, covering: Any) -> str:
    r = entry.record()
    verdict_words = {
        "allow": "allowed",
        "warn": "allowed, with warnings",
        "deny": "DENIED: a blocking finding",
        "error": "NOT ALLOWED: something could not be evaluated",
    }
    lines = [
        f"decision {entry.id}  (#{entry.seq} in the chain)",
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
        where = "/".join(str(x) for x in (target.get("kind"), target.get("name")) if x)
        path = f" at {f['path']}" if f.get("path") else ""
        lines.append(f"  {f.get('severity'):<8} {f.get('rule')}: {f.get('message')} [{where}{path}]")
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
    lines.append(f"  hash       {entry.hash}")
    lines.append(f"  prev       {entry.prev}")
    if covering is not None:
        signed = f"signed by {covering.key_id}" if covering.signature else "unsigned"
        lines.append(
            f"  covered by the {covering.kind} checkpoint at #{covering.seq} of {covering.time} ({signed})"
        )
    else:
        lines.append("  not yet covered by a checkpoint")
    return "\n".join(lines)


@log.command("stats")
@_store_options
@_filter_options
@click.option("-o", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--top", type=click.IntRange(min=1), default=20, show_default=True, help="Rules and namespaces shown."
)
def stats_cmd(store_url: str | None, config_path: str | None, filters: Filters, fmt: str, top: int) -> None:
    """Counts of decisions by verdict, gate, day, rule and namespace."""
    try:
        store = _open(store_url, config_path)
        try:
            total = store.count(filters)
            stats = store.stats(filters, top=top)
        finally:
            store.close()
    except Error as e:
        _fail(e)
    if fmt == "json":
        click.echo(json.dumps({"decisions": total, **{k: dict(v) for k, v in stats.items()}}, indent=2))
        return
    click.echo(f"decisions: {total}")
    for name in ("verdict", "gate", "rule", "namespace", "day"):
        click.echo(f"by {name}:")
        for value, count in stats[name]:
            click.echo(f"  {value:<40} {count}")


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
    """
    from trustgate.decisions.canonical import timestamp
    from trustgate.decisions.chain import Checkpoint, CheckpointSigner
    from trustgate.decisions.store import parse_time

    try:
        key_path = key or _settings(config_path).decision_log.checkpoint_key
        signer = CheckpointSigner.from_file(key_path) if key_path else None
        cutoff = parse_time(before)

        def anchor(seq: int, digest: str) -> Checkpoint:
            if signer is None:
                return Checkpoint(seq, digest, timestamp(), "prune")
            return signer.sign(seq=seq, hash=digest, time=timestamp(), kind="prune")

        store = _open(store_url, config_path)
        try:
            result = store.prune(cutoff, anchor)
        finally:
            store.close()
    except Error as e:
        _fail(e)
    if result.anchor is None:
        click.echo(f"nothing older than {cutoff}")
        return
    signed = f"signed by {result.anchor.key_id}" if result.anchor.signature else "UNSIGNED (no key given)"
    click.echo(
        f"removed {result.removed} decisions up to #{result.anchor.seq}; "
        f"prune checkpoint {result.anchor.hash} {signed}"
    )


@log.command("checkpoint")
@_store_options
@click.option("--key", type=click.Path(exists=True, dir_okay=False), help="Ed25519 private key (PEM).")
def checkpoint_cmd(store_url: str | None, config_path: str | None, key: str | None) -> None:
    """Sign the current head of the chain now (on demand; writers also do it periodically)."""
    from trustgate.decisions.chain import CheckpointSigner
    from trustgate.decisions.log import DecisionLog
    from trustgate.errors import DecisionLogError

    try:
        key_path = key or _settings(config_path).decision_log.checkpoint_key
        if not key_path:
            raise DecisionLogError(
                "a checkpoint needs a key", hint="pass --key PATH (an Ed25519 PEM private key)"
            )
        signer = CheckpointSigner.from_file(key_path)
        with DecisionLog(store=_open(store_url, config_path), signer=signer) as decision_log:
            cp = decision_log.checkpoint()
    except Error as e:
        _fail(e)
    click.echo(f"checkpoint at #{cp.seq}: {cp.hash} signed by {cp.key_id} at {cp.time}")
