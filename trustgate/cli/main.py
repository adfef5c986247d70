"""The `trustgate` command line.

Owns: flags, reading the config file named on the command line, and turning
errors into one clear message and an exit code (0 pass, 1 policy failure,
2 usage, 3 could not evaluate). Everything else is the gate's.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from trustgate import __version__
from trustgate.cli.log import check_context, gate_decision_log, say_recorded
from trustgate.cli.log import log as log_group
from trustgate.config import BUILTIN_SETS, Config, PolicySource, builtin_policy_dir, load_config
from trustgate.errors import Error
from trustgate.gate import Gate, load_policy_data
from trustgate.model import ExitCode, Mode
from trustgate.policy import rego
from trustgate.policy.schema import available_versions
from trustgate.report import FORMATS, render


def _fail(error: Error) -> NoReturn:
    click.echo(f"trustgate: error: {error.diagnostics()}", err=True)
    sys.exit(ExitCode.NOT_EVALUATED)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="trustgate")
def main() -> None:
    """trustgate: one policy for manifests, images and commits, enforced at three gates.

    \b
    Exit codes: 0 pass, 1 policy failure, 2 usage error, 3 could not evaluate.
    """


@dataclasses.dataclass(frozen=True, slots=True)
class ConfigFlags:
    """Flags that change the configuration; every gate command takes them."""

    config_path: str | None
    mode: str | None
    policies: tuple[str, ...]
    namespaces: tuple[str, ...]
    rego_version: str
    no_builtin: bool
    data_files: tuple[str, ...]
    kubernetes_version: str | None
    strict: bool | None
    missing_schemas: str | None
    no_schemas: bool
    crds: tuple[str, ...]

    def load(self) -> Config:
        """The configuration file (or the embedded default) with the flags applied.

        Raises:
            ConfigError: the file is invalid.
        """
        config = load_config(self.config_path) if self.config_path else Config.default()
        sources = tuple(s for s in config.policies if not (self.no_builtin and s.builtin))
        sources += tuple(
            PolicySource(path=Path(p), namespaces=self.namespaces, rego_version=self.rego_version)
            for p in self.policies
        )
        kube = config.kubernetes
        kube = dataclasses.replace(
            kube,
            version=(self.kubernetes_version or kube.version).lstrip("v"),
            strict=kube.strict if self.strict is None else self.strict,
            missing_schemas=self.missing_schemas or kube.missing_schemas,
            schemas=kube.schemas and not self.no_schemas,
            crds=kube.crds + tuple(Path(c) for c in self.crds),
        )
        return dataclasses.replace(
            config,
            mode=Mode(self.mode) if self.mode else config.mode,
            policies=sources,
            data_files=config.data_files + tuple(Path(d) for d in self.data_files),
            kubernetes=kube,
        )


_DATA_OPTION = click.option(
    "-d",
    "--data",
    "data_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="JSON/YAML data file merged into `data` (repeatable).",
)
_REGO_VERSION_OPTION = click.option(
    "--rego-version",
    type=click.Choice(["v0", "v1"]),
    default="v1",
    show_default=True,
    help="Rego syntax of the policies given on the command line.",
)
_CONFIG_OPTIONS = [
    click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        envvar="TRUSTGATE_CONFIG",
        help="trustgate.yaml to use (default: the embedded default: bundled policies, schemas).",
    ),
    click.option("--mode", type=click.Choice([m.value for m in Mode]), help="Override the configured mode."),
    click.option(
        "-p",
        "--policy",
        "policies",
        multiple=True,
        type=click.Path(exists=True),
        help="Extra Rego policy file or directory (repeatable).",
    ),
    click.option(
        "-n",
        "--namespace",
        "namespaces",
        multiple=True,
        help="Only evaluate these Rego packages of --policy (repeatable).",
    ),
    _REGO_VERSION_OPTION,
    click.option("--no-builtin", is_flag=True, help="Do not apply the bundled policy sets."),
    _DATA_OPTION,
    click.option(
        "--kubernetes-version",
        help="Validate against this Kubernetes version's schemas (see `trustgate versions`).",
    ),
    click.option("--strict/--no-strict", default=None, help="Reject unknown fields (default: on)."),
    click.option("--missing-schemas", type=click.Choice(["skip", "fail"]), help="A kind without a schema."),
    click.option("--no-schemas", is_flag=True, help="Skip Kubernetes schema validation."),
    click.option(
        "--crd",
        "crds",
        multiple=True,
        type=click.Path(exists=True),
        help="CRD file or directory whose schemas validate custom resources (repeatable).",
    ),
]
_CONFIG_FIELDS = [f.name for f in dataclasses.fields(ConfigFlags)]


def config_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add the configuration flags to a command; it receives them as `flags: ConfigFlags`."""

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        flags = ConfigFlags(**{name: kwargs.pop(name) for name in _CONFIG_FIELDS})
        command(flags=flags, **kwargs)

    for option in reversed(_CONFIG_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(allow_dash=True))
@config_options
@click.option("-o", "--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="Write the report here.")
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning"]),
    default="error",
    show_default=True,
    help="`warning` also fails on warnings.",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes for large inputs (default: CPU count).",
)
@click.option("--color/--no-color", default=None, help="Colour text output (default: when a terminal).")
@click.option(
    "--decision-log",
    metavar="URL",
    envvar="TRUSTGATE_DECISION_LOG",
    help="Record the decision: sqlite:///path.db or postgresql://... (default: decisionLog.url).",
)
def check(
    paths: tuple[str, ...],
    flags: ConfigFlags,
    fmt: str,
    output: str | None,
    fail_on: str,
    jobs: int | None,
    color: bool | None,
    decision_log: str | None,
) -> None:
    """Check Kubernetes manifests: files, directories, kustomizations, or - for stdin.

    \b
    Examples:
      trustgate check deploy/
      kubectl kustomize overlays/prod | trustgate check -
      trustgate check -c trustgate.yaml --format sarif --output trustgate.sarif .
    """
    log = None
    try:
        config = flags.load()
        log = gate_decision_log(config, decision_log)
        gate = Gate(config=config, jobs=jobs or os.cpu_count() or 1, decision_log=log)
        # Parsing builds many short-lived containers and few cycles: collect
        # rarely, and never scan what start-up loaded (also spares forked
        # workers the copy-on-write of those pages). ~10% of a large check.
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        stdin = sys.stdin.buffer.read() if "-" in paths else None
        decision = gate.check(paths, stdin=stdin, context=check_context(paths) if log else None)
    except Error as e:
        _fail(e)
    finally:
        if log is not None:
            log.close()
    if log is not None:
        say_recorded(decision, log)
    use_color = color if color is not None else (output is None and sys.stdout.isatty())
    text = render(decision, fmt, color=use_color)
    if output:
        try:
            Path(output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        except OSError as e:
            click.echo(f"trustgate: error: cannot write {output}: {e.strerror or e}", err=True)
            sys.exit(ExitCode.NOT_EVALUATED)
        if fmt != "text":  # a short human line for the log beside the machine report
            s = decision.summary
            click.echo(
                f"trustgate: {s.documents} documents: {s.passed} passed, {s.failed} failed, "
                f"{s.warnings} warnings, {s.errors} errors (report: {output})",
                err=True,
            )
    else:
        click.echo(text, nl=not text.endswith("\n"))
    sys.exit(decision.exit_code(fail_on_warning=fail_on == "warning"))


@main.group()
def policy() -> None:
    """Work with Rego policies."""


@policy.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="List passing tests too.")
@_REGO_VERSION_OPTION
@_DATA_OPTION
def policy_test(
    paths: tuple[str, ...], fmt: str, verbose: bool, rego_version: str, data_files: tuple[str, ...]
) -> None:
    """Run the Rego unit tests (`test_*` rules) of policy files and directories.

    The bundled library `data.trustgate.lib.k8s` is always loaded. Exits 0
    only when every test passes.
    """
    try:
        modules: list[rego.Module] = []
        lib_dir = builtin_policy_dir() / "lib"
        for raw in paths:
            modules.extend(rego.load_modules(Path(raw), tests=True))
        present = {os.path.realpath(m.path) for m in modules}
        if rego_version == "v1":
            modules.extend(m for m in rego.load_modules(lib_dir) if os.path.realpath(m.path) not in present)
        config = dataclasses.replace(Config.default(), data_files=tuple(Path(d) for d in data_files))
        policy_set = rego.RegoPolicy(modules, data=load_policy_data(config), rego_v0=rego_version == "v0")
        results = policy_set.evaluator().run_tests()
    except Error as e:
        _fail(e)
    failed = [r for r in results if not r.passed]
    if fmt == "json":
        payload: dict[str, Any] = {
            "summary": {"tests": len(results), "passed": len(results) - len(failed), "failed": len(failed)},
            "results": [dataclasses.asdict(r) for r in results],
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        for r in results:
            if r.passed and not verbose:
                continue
            status = "ok  " if r.passed else "FAIL"
            line = f"{status} data.{r.package}.{r.name} ({r.duration_ms:.2f} ms)"
            if r.error:
                line += f"\n       {r.error}"
            click.echo(line)
        if not results:
            click.echo("no tests found (rules named test_* in the given .rego files)")
        else:
            click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if not results:
        sys.exit(ExitCode.NOT_EVALUATED)
    sys.exit(ExitCode.POLICY_FAILURE if failed else ExitCode.PASS)


@main.command("schema")
def schema_cmd() -> None:
    """Print the JSON schema of trustgate.yaml."""
    from importlib import resources

    click.echo((resources.files("trustgate") / "schemas" / "config-v1alpha1.json").read_text("utf-8"))


@main.command("versions")
def versions_cmd() -> None:
    """List the Kubernetes versions with bundled schemas and the bundled policy sets."""
    click.echo("kubernetes schemas: " + ", ".join(available_versions()))
    click.echo("policy sets: " + ", ".join(BUILTIN_SETS))


main.add_command(log_group)
