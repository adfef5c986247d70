"""`trustgate serve` and `trustgate webhook-config`: the admission gate's commands.

Owns: the flags of the webhook and turning start-up errors into one line and
exit code 3. Everything else is `trustgate.server`'s.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
import yaml

from trustgate.cli.log import gate_decision_log, log_reliance, refuse_missing_log
from trustgate.cli.options import ConfigFlags, config_options, printable_diagnostics


@click.command()
@config_options
@click.option(
    "--tls-cert",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="PEM certificate (chain); reloaded when the file changes.",
)
@click.option(
    "--tls-key",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="PEM private key; reloaded with the certificate.",
)
@click.option(
    "--client-ca",
    type=click.Path(exists=True, dir_okay=False),
    help="Require client certificates signed by this CA (the API server's client certificate).",
)
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8443,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port, printed on stderr).",
)
@click.option(
    "--health-port",
    default=8081,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Plain-HTTP port for /healthz, /readyz, /metrics and /checkpoint, without a client certificate "
    "(kubelet probes, Prometheus); 0: any free port, printed on stderr.",
)
@click.option(
    "--max-connections-per-client",
    default=128,
    show_default=True,
    type=click.IntRange(min=1),
    help="Open connections per client address and worker (of 512); past it, that client's idle and "
    "slowest connections are shed first.",
)
@click.option(
    "--allow-delete-by",
    "delete_actors",
    multiple=True,
    metavar="USERNAME",
    help="Who may delete protected kinds without the approval annotation (a username glob; "
    "repeatable; replaces admission.protectedDeletes.allowedActors, by default the kube-system "
    "controllers; '' for nobody).",
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Worker processes (default: CPU count)."
)
@click.option(
    "--evaluators",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Evaluator threads per worker: requests evaluated at once while registries are slow.",
)
@click.option(
    "--decision-log",
    metavar="URL",
    envvar="TRUSTGATE_DECISION_LOG",
    help="Record every decision: sqlite:///path.db or postgresql://... (default: decisionLog.url).",
)
@click.option(
    "--log-writer",
    type=click.Choice(["process", "thread"]),
    default="process",
    show_default=True,
    envvar="TRUSTGATE_LOG_WRITER",
    help="Who commits the decision log: one writer process shared by the workers (its commits do not "
    "wait for a busy worker's GIL), or a thread in each worker.",
)
def serve(
    flags: ConfigFlags,
    tls_cert: str,
    tls_key: str,
    client_ca: str | None,
    host: str,
    port: int,
    health_port: int,
    max_connections_per_client: int,
    delete_actors: tuple[str, ...],
    workers: int | None,
    evaluators: int,
    decision_log: str | None,
    log_writer: str,
) -> None:
    """Serve the admission webhook: /validate (HTTPS); /healthz, /readyz, /metrics, /checkpoint on both ports.

    \b
    Examples:
      trustgate serve --tls-cert tls.crt --tls-key tls.key
      trustgate serve -c /etc/trustgate/trustgate.yaml --tls-cert tls.crt --tls-key tls.key \\
          --decision-log postgresql://trustgate@db/trustgate
    """
    from trustgate.server.connections import ConnectionLimits
    from trustgate.server.http import TLSSettings
    from trustgate.server.workers import ServeOptions
    from trustgate.server.workers import serve as run

    try:
        config = flags.load()
        relies = log_reliance(config, "serve")
        log_probe = gate_decision_log(config, decision_log, relies=relies)  # a malformed URL fails here
        if log_probe is not None:
            log_probe.close()
            if relies:
                _say_if_missing(log_probe.url, relies)
        options = ServeOptions(
            config=config,
            tls=TLSSettings(Path(tls_cert), Path(tls_key), Path(client_ca) if client_ca else None),
            host=host,
            port=port,
            workers=workers or os.cpu_count() or 1,
            evaluators=evaluators,
            # None without a log: no writer process is started (there is nothing for it to write).
            decision_log=(
                (lambda: gate_decision_log(config, decision_log, relies=relies))
                if log_probe is not None
                else None
            ),
            log_writer=log_writer == "process",
            health_port=health_port,
            limits=ConnectionLimits(per_client=max_connections_per_client),
            delete_actors=tuple(a for a in delete_actors if a) if delete_actors else None,
        )
        code = run(options)
    except OSError as e:
        click.echo(f"trustgate: error: cannot serve on {host}:{port}: {e.strerror or e}", err=True)
        sys.exit(3)
    sys.exit(code)


def _say_if_missing(url: str, relies: str) -> None:
    """One line at start-up when the log the webhook relies on is not there. It serves all the
    same (not a crash loop): each worker probes the log, and its decisions go as when the log
    cannot be written (`LogWatch`: the failure policy, /readyz 503 where it is closed) until
    `trustgate log init` starts it; no summary counts meanwhile (revocations unread)."""
    from trustgate.errors import DecisionLogMissingError

    try:
        refuse_missing_log(url, relies)
    except DecisionLogMissingError as e:
        click.echo(f"trustgate serve: error: {printable_diagnostics(e)}", err=True)


@click.command("webhook-config")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="TRUSTGATE_CONFIG",
    help="The trustgate.yaml `serve` is given: what it judges is sent; its admission section sets "
    "namespaces, timeouts, protected kinds and admission.resources.",
)
@click.option("--service", default="trustgate", show_default=True, help="The webhook's Service name.")
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM CA that signed the serving certificate (omit with cert-manager's CA injector).",
)
@click.option(
    "--url", help="Call this https:// URL instead of the Service (an API server outside the cluster)."
)
@click.option(
    "--kubernetes-version",
    metavar="VERSION",
    help="The oldest API server version it is applied to; matchConditions is left out before 1.28. "
    "Default: the configuration's kubernetes.version.",
)
@click.option(
    "--admission-policy",
    "admission_policies",
    multiple=True,
    type=click.Path(exists=True),
    help="ValidatingAdmissionPolicy file or directory `serve` is given beside the configuration's "
    "manifests.admissionPolicies: the operations and resources their rules name are sent.",
)
@click.option(
    "-p",
    "--policy",
    "policies",
    multiple=True,
    type=click.Path(exists=True),
    help="Rego policy file or directory `serve` is given (--policy): its kinds cannot be derived, so "
    "admission.resources must say what to send.",
)
@click.option(
    "--no-builtin", is_flag=True, help="`serve` runs without the bundled policy sets (--no-builtin)."
)
@click.option(
    "--gatekeeper",
    multiple=True,
    help="Gatekeeper library `serve` is given (--gatekeeper): the kinds its constraints match are sent.",
)
@click.option(
    "--crd",
    "crds",
    multiple=True,
    type=click.Path(exists=True),
    help="CRD file or directory `serve` is given (--crd): custom kinds are sent under their plurals.",
)
def webhook_config(
    config_path: str | None,
    service: str,
    ca_bundle: str | None,
    url: str | None,
    kubernetes_version: str | None,
    admission_policies: tuple[str, ...],
    policies: tuple[str, ...],
    no_builtin: bool,
    gatekeeper: tuple[str, ...],
    crds: tuple[str, ...],
) -> None:
    """Print the ValidatingWebhookConfiguration for `trustgate serve` (YAML).

    CREATE and UPDATE are sent for what the configuration (with the same flags as `serve`)
    judges: the bundled policies' workloads, the kinds Gatekeeper constraints match, the rules
    of ValidatingAdmissionPolicies, and admission.resources, which a configuration with Rego
    policies of its own must set.
    """
    from trustgate.cli.options import ConfigFlags
    from trustgate.server.webhookconfig import (
        parse_version,
        read_scope,
        scope_notes,
        unlabelled_namespaces_note,
        webhook_configuration,
    )

    try:
        if kubernetes_version is not None:
            parse_version(kubernetes_version)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--kubernetes-version") from e

    flags = ConfigFlags(
        config_path=config_path,
        mode=None,
        policies=policies,
        namespaces=(),
        all_namespaces=False,
        rego_version="v1",
        no_builtin=no_builtin,
        data_files=(),
        kubernetes_version=None,
        strict=None,
        missing_schemas=None,
        no_schemas=False,
        crds=crds,
        gatekeeper=gatekeeper,
        admission_policies=admission_policies,
    )
    config = flags.load()  # an Error exits 3
    version = kubernetes_version or config.kubernetes.version  # the schema holds it to 1.N[.N]
    scope = read_scope(config)
    manifest = webhook_configuration(
        config.admission,
        service=service,
        ca_bundle=Path(ca_bundle).read_bytes() if ca_bundle else None,
        url=url,
        kubernetes_version=version,
        scope=scope,
    )
    for note in scope_notes(scope):
        click.echo(f"trustgate: note: {note}", err=True)
    unlabelled = unlabelled_namespaces_note(manifest, version)
    if unlabelled is not None:
        click.echo(f"trustgate: warning: {unlabelled}", err=True)
    click.echo(yaml.dump(manifest, Dumper=_PlainDumper, sort_keys=False), nl=False)


class _PlainDumper(yaml.SafeDumper):
    """No anchors and aliases: the API server and reviewers read plain YAML."""

    def ignore_aliases(self, data: object) -> bool:
        return True
