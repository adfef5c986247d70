"""`trustgate ui`: the auditor's read-only web view of the decision log (ADR 11).

Owns: the command's flags, the rules on where it may listen (plain HTTP only
on a loopback address; elsewhere TLS and tokens or client certificates), the
token file, the kept checkpoints Verify checks against, and serving the
application with uvicorn. The pages are `trustgate.ui`'s. Exit codes: 2
usage, 3 the store, key, kept checkpoint, token file or address is unusable.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from trustgate.cli.log import (
    _ed25519,
    _settings,
    _store_options,
    _verifier_key,
    clock_skew_option,
    kept_checkpoint_options,
    kept_checkpoints,
    require_verifier_key,
    store_url_of,
)
from trustgate.errors import ConfigError

if TYPE_CHECKING:
    from trustgate.decisions.chain import Kept

MIN_TOKEN_CHARS = 16  # a guessable token is no access control
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")  # what a browser on the machine calls a loopback UI


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_tokens(path: str) -> tuple[str, ...]:
    """The tokens of a token file: one a line; blank lines and `#` comments skipped.

    Raises:
        ConfigError: unreadable, empty, or a token shorter than MIN_TOKEN_CHARS.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(
            f"cannot read the token file: {getattr(e, 'strerror', None) or e}", where=path
        ) from e
    tokens = tuple(
        line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    )
    if not tokens:
        raise ConfigError("the token file holds no token", where=path, hint="one token a line")
    for n, token in enumerate(tokens, start=1):
        if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
            raise ConfigError(
                f"token {n} is shorter than {MIN_TOKEN_CHARS} characters or holds spaces",
                where=path,
                hint="make one with `openssl rand -hex 32`",
            )
    return tokens


def _allowed_hosts(host: str, extra: tuple[str, ...]) -> frozenset[str]:
    """The host names requests may use: the bound address, the loopback names for a loopback
    address, and those given with --allowed-host (lower case, IPv6 in brackets; ports are not
    compared: a rebinding page has its own name, whatever the port)."""
    names = {*extra, host} if not _unspecified(host) else set(extra)
    if _loopback(host):
        names.update(LOOPBACK_NAMES)
    return frozenset((f"[{n}]" if ":" in n and not n.startswith("[") else n).lower() for n in names)


def _unspecified(host: str) -> bool:
    """0.0.0.0 or ::, every address of the machine: no name a client would use."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


@click.command("ui")
@_store_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port, printed on stderr).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    help="Bearer tokens, one a line: every request needs `Authorization: Bearer TOKEN`.",
)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="PEM certificate (chain).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="PEM private key.")
@click.option(
    "--client-ca",
    type=click.Path(exists=True, dir_okay=False),
    help="Require client certificates signed by this CA.",
)
@click.option(
    "--allowed-host",
    "allowed_host_names",
    multiple=True,
    metavar="NAME",
    help="A host name clients reach the UI by (repeatable); requests naming another are refused. "
    "Always allowed: the --host address, and localhost, 127.0.0.1 and [::1] on a loopback address.",
)
@click.option(
    "--verifier-key",
    metavar="KEY",
    help="Pin the log's key, for the Verify button and every checkpoint, proof and archive the pages "
    "vouch for: a vkey or a PEM public key file (as `log verify`).",
)
@kept_checkpoint_options(
    file_help="A checkpoint you kept (`log checkpoint --output`): Verify requires the log to extend it, as "
    "`log verify --checkpoint` does (repeatable; needs --verifier-key).",
    dir_help="A directory checkpoints are published to: every checkpoint in it counts as kept, read again "
    "at each Verify (repeatable; needs --verifier-key).",
)
@clock_skew_option(
    "How far Verify lets a record's time lie beyond its bounds before it is misdated, as `log "
    "verify --clock-skew` [default: decisionLog.checkpoint.clockSkewSeconds of -c, else 300]."
)
def ui(
    store_url: str | None,
    config_path: str | None,
    host: str,
    port: int,
    token_file: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    client_ca: str | None,
    allowed_host_names: tuple[str, ...],
    verifier_key: str | None,
    kept_files: tuple[str, ...],
    kept_dirs: tuple[str, ...],
    clock_skew: float | None,
) -> None:
    """Serve a read-only web view of the decision log for auditors.

    Decisions with the filters of `log query`, each explained as `log show`
    does with its inclusion proof; the latest checkpoint and a Verify button;
    an overview with charts; evidence archives (records, checkpoint, proofs)
    that `log verify-proof` checks offline; a printable report. Nothing it
    serves writes to the log.

    Without --tls-cert it listens on a loopback address only. On any other
    address it needs TLS and --token-file or --client-ca. It answers only to
    requests whose Host names it: its address, the loopback names on a
    loopback address, and each --allowed-host (a DNS-rebinding page cannot
    use it); on 0.0.0.0 or :: it needs --allowed-host.

    Verify checks the log against the checkpoints you kept (--checkpoint,
    --checkpoint-dir, with --verifier-key) as `log verify` does; without
    them it can only show that the log is self-consistent, and says so.

    The store is --store URL, $TRUSTGATE_DECISION_LOG, or decisionLog.url of
    -c trustgate.yaml, as for `trustgate log` (a read-only role will do).

    \b
    Examples:
      trustgate ui --store sqlite:///var/lib/trustgate/decisions.db
      trustgate ui -c /etc/trustgate/trustgate.yaml
      trustgate ui --store postgresql://auditor@db/trustgate --host 0.0.0.0 --port 8443 \\
          --allowed-host audit.example.com --tls-cert tls.crt --tls-key tls.key \\
          --token-file /etc/trustgate/ui-tokens
    """
    import ssl

    import uvicorn

    from trustgate.decisions.log import open_store
    from trustgate.ui.app import Settings, create_app

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if client_ca and not tls_cert:
        raise click.UsageError("--client-ca needs --tls-cert and --tls-key")
    if not tls_cert and not _loopback(host):
        raise click.UsageError(
            f"without TLS the UI listens on a loopback address only, not {host!r}: "
            "pass --tls-cert and --tls-key (and --token-file)"
        )
    if not _loopback(host) and not (token_file or client_ca):
        raise click.UsageError(f"on {host!r} the UI needs --token-file or --client-ca: the log is not public")
    if _unspecified(host) and not allowed_host_names:
        raise click.UsageError(
            f"on {host!r} the UI needs --allowed-host NAME: the host names clients reach it by"
        )
    require_verifier_key(kept_files, kept_dirs, verifier_key)
    if clock_skew is None:
        clock_skew = _settings(config_path).decision_log.checkpoint_clock_skew_seconds
    tokens = read_tokens(token_file) if token_file else ()
    note_verifier = _verifier_key(verifier_key) if verifier_key else None
    public_key = _ed25519(note_verifier) if note_verifier is not None else None
    kept: Callable[[], list[Kept]] | None = None
    if note_verifier is not None and (kept_files or kept_dirs):
        kept = functools.partial(kept_checkpoints, kept_files, kept_dirs, note_verifier)
        kept()  # a missing or foreign checkpoint fails now; directories are read again at each Verify
    # Read-only: a log of an older schema is refused, not migrated (no route writes to the log).
    url = store_url_of(store_url, config_path)
    open_store(url, create=False, read_only=True).close()  # a wrong URL fails now, not later

    settings = Settings(
        open_store=lambda: open_store(url, create=False, read_only=True),
        allowed_hosts=_allowed_hosts(host, allowed_host_names),
        tokens=tokens,
        public_key=public_key,
        kept=kept,
        kept_sources=(*kept_files, *kept_dirs),
        tls=bool(tls_cert),
        clock_skew=clock_skew,
    )
    config = uvicorn.Config(
        create_app(settings),
        log_level="warning",
        server_header=False,
        proxy_headers=False,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        ssl_ca_certs=client_ca,
        ssl_cert_reqs=ssl.CERT_REQUIRED if client_ca else ssl.CERT_NONE,
    )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        click.echo(f"trustgate: error: cannot listen on {host}:{port}: {e.strerror or e}", err=True)
        sys.exit(3)
    bound = sock.getsockname()[1]
    scheme = "https" if tls_cert else "http"
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    access = "bearer token" if tokens else "client certificate" if client_ca else "no token (loopback only)"
    click.echo(f"trustgate: auditor UI on {scheme}://{shown}:{bound}/ ({access})", err=True)
    uvicorn.Server(config).run(sockets=[sock])
