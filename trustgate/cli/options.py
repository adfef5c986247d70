"""What every gate command shares: the configuration flags, the report, and the one error handler.

Owns: `ConfigFlags` (the flags that change the configuration, and loading
the configuration with them), the `config_options` decorator, choosing the
compile cache from the environment (`--no-cache` turns it off), writing a
report, and `fail`, the one place an `Error` becomes a line on stderr and
exit code 3 (ADR 2), which the top-level group applies to every command.
Leaves out: the commands themselves. Imported by `main` and by the modules
of other commands, so that none of them imports `main` (no cycle).

Start-up counts: this module imports click and the light model only.
"""

from __future__ import annotations

import codecs
import contextlib
import dataclasses
import functools
import gc
import io
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO, TypeVar

import click

from trustgate.errors import Error
from trustgate.model import ExitCode, Mode

if TYPE_CHECKING:
    from trustgate.config import Config
    from trustgate.model import Decision

_Command = TypeVar("_Command", bound=Callable[..., Any])

# trustgate.policy.gatekeeper.ENGINES, written out so that start-up does not import
# the Gatekeeper engine; a unit test keeps the two equal.
GATEKEEPER_ENGINES = ("rego", "cel", "both")


def fail(error: Error) -> NoReturn:
    """The one line and exit code of an error: `trustgate: error: <diagnostics>`, exit 3."""
    click.echo(f"trustgate: error: {printable_diagnostics(error)}", err=True)
    sys.exit(ExitCode.NOT_EVALUATED)


def printable_diagnostics(error: Error) -> str:
    """`error.diagnostics()` as it may reach a terminal: control and invisible characters escaped.

    A message can quote what trustgate read (a decision log's id column, a
    file name); an ESC or CR in it could repaint the lines above. The
    message's own line breaks and tabs stay (a policy error's `have:` and
    `want:` lines): a value from outside that could forge a line is escaped
    where the message is built.
    """
    from trustgate.report._common import visible_controls

    return visible_controls(error.diagnostics(), keep="\n\t")


@dataclasses.dataclass(frozen=True, slots=True)
class ConfigFlags:
    """Flags that change the configuration; every gate command takes them."""

    config_path: str | None
    mode: str | None
    policies: tuple[str, ...]
    namespaces: tuple[str, ...]
    all_namespaces: bool
    rego_version: str
    no_builtin: bool
    data_files: tuple[str, ...]
    kubernetes_version: str | None
    strict: bool | None
    missing_schemas: str | None
    no_schemas: bool
    crds: tuple[str, ...]
    gatekeeper: tuple[str, ...] = ()
    inventory: tuple[str, ...] = ()
    skip_unsupported: bool = False
    admission_policies: tuple[str, ...] = ()
    gatekeeper_engine: str | None = None
    no_cache: bool = False

    def load(self) -> Config:
        """The configuration file (or the embedded default) with the flags applied.

        Raises:
            ConfigError: the file is invalid.
        """
        from trustgate.config import Config, PolicySource, load_config

        config = load_config(self.config_path) if self.config_path else Config.default()
        if self.mode:
            config = config.with_mode(Mode(self.mode))
        sources = tuple(s for s in config.policies if not (self.no_builtin and s.builtin))
        # As conftest: `-n` names packages of all --policy sources together, and
        # --all-namespaces (every package with finding rules, trustgate's default) wins over it.
        namespaces = () if self.all_namespaces else self.namespaces
        sources += tuple(
            PolicySource(
                path=Path(p), namespaces=namespaces, rego_version=self.rego_version, shared_namespaces=True
            )
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
        gk = config.gatekeeper
        gk = dataclasses.replace(
            gk,
            paths=gk.paths + tuple(_gatekeeper_flag(p) for p in self.gatekeeper),
            inventory=gk.inventory + tuple(Path(p) for p in self.inventory),
            skip_unsupported=gk.skip_unsupported or self.skip_unsupported,
            engine=self.gatekeeper_engine or gk.engine,
        )
        return dataclasses.replace(
            config,
            gatekeeper=gk,
            admission_policies=config.admission_policies + tuple(Path(p) for p in self.admission_policies),
            policies=sources,
            data_files=config.data_files + tuple(Path(d) for d in self.data_files),
            kubernetes=kube,
        )


def _gatekeeper_flag(value: str) -> Path:
    from trustgate.config import gatekeeper_path

    path = gatekeeper_path(Path.cwd(), value)
    if not path.exists():
        raise click.BadParameter(
            f"{value}: no such file, directory or bundled set", param_hint="--gatekeeper"
        )
    return path


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


def _paths_option(*decls: str, help: str) -> Callable[[_Command], _Command]:
    """A repeatable option naming files or directories that exist."""
    return click.option(*decls, multiple=True, type=click.Path(exists=True), help=help)


_CONFIG_OPTIONS = [
    click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        envvar="TRUSTGATE_CONFIG",
        help="trustgate.yaml to use (default: the embedded default: bundled policies, schemas).",
    ),
    click.option(
        "--mode",
        type=click.Choice([m.value for m in Mode]),
        help="Use this mode for everything: it overrides the configured mode and every per-source one"
        " (policy sources, image rules, the Gatekeeper default).",
    ),
    _paths_option("-p", "--policy", "policies", help="Extra Rego policy file or directory (repeatable)."),
    click.option(
        "-n",
        "--namespace",
        "namespaces",
        multiple=True,
        help="Only evaluate these Rego packages of the --policy sources, taken together (repeatable;"
        " default: every package with deny/violation/warn rules).",
    ),
    click.option(
        "--all-namespaces",
        is_flag=True,
        help="Evaluate every package of the --policy sources that has deny/violation/warn rules"
        " (the default; overrides -n, as in conftest).",
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
    _paths_option(
        "--crd", "crds", help="CRD file or directory whose schemas validate custom resources (repeatable)."
    ),
    click.option(
        "--gatekeeper",
        multiple=True,
        help="Gatekeeper ConstraintTemplates and Constraints: a file, a directory, or builtin:pss-baseline"
        " / builtin:pss-restricted (repeatable).",
    ),
    _paths_option(
        "--inventory", help="Objects for Gatekeeper's data.inventory beside the checked files (repeatable)."
    ),
    click.option(
        "--skip-unsupported",
        is_flag=True,
        default=False,
        help="Note, instead of failing with exit 3, Gatekeeper policy trustgate cannot evaluate"
        " (templates of other engines whose constraints match; Kyverno or other policies in the"
        " Gatekeeper paths).",
    ),
    click.option(
        "--gatekeeper-engine",
        type=click.Choice(GATEKEEPER_ENGINES),
        default=None,
        help="The code of Gatekeeper templates with Rego and CEL: cel (default: Gatekeeper and gator"
        " run it), rego, or both (a disagreement is an error finding). A template with one kind of code"
        " runs it.",
    ),
    click.option(
        "--no-cache",
        is_flag=True,
        help="Neither read nor write the compile cache ($XDG_CACHE_HOME/trustgate/compiled):"
        " rewrite the policies and assemble the schemas afresh.",
    ),
    _paths_option(
        "--admission-policy",
        "admission_policies",
        help="ValidatingAdmissionPolicies and their bindings (and params): a file or directory (repeatable).",
    ),
]
_CONFIG_FIELDS = [f.name for f in dataclasses.fields(ConfigFlags)]


def config_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add the configuration flags to a command; it receives them as `flags: ConfigFlags`."""

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        flags = ConfigFlags(**{name: kwargs.pop(name) for name in _CONFIG_FIELDS})
        choose_compile_cache(off=flags.no_cache)
        command(flags=flags, **kwargs)

    for option in reversed(_CONFIG_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def choose_compile_cache(*, off: bool) -> None:
    """The compile cache of this process: the user's (from this environment), or none (`--no-cache`).

    Chosen here, at the edge, so that the policy layer never reads the environment for it.
    """
    from trustgate.policy import _compile_cache

    if off:
        _compile_cache.use(None)
    else:
        _compile_cache.use_for_user(os.environ)


@contextlib.contextmanager
def utf8_stdout() -> Iterator[TextIO]:
    """Standard output for machine-readable text (JSON, JSON lines, CSV, XML): UTF-8 whatever the
    terminal's encoding, never escaped by it (an exported record's bytes are what its hash covers).

    Human-readable output goes through `sys.stdout` as it is, with the terminal's encoding and
    escapes for what it cannot show (`cli.main`).
    """
    stream = sys.stdout
    buffer = getattr(stream, "buffer", None)
    encoding = getattr(stream, "encoding", None) or ""
    if buffer is None or _is_utf8(encoding):
        yield stream
        return
    stream.flush()
    wrapper = io.TextIOWrapper(buffer, encoding="utf-8", write_through=True)
    try:
        yield wrapper
    finally:
        wrapper.flush()
        wrapper.detach()  # the buffer stays open: it is sys.stdout's


def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        return False


def collect_rarely() -> None:
    """Set the collector for a run that reads many documents (`check`, `presync`): never scan what
    start-up loaded (also spares forked workers the copy-on-write of those pages), and collect
    rarely, as parsing builds many short-lived containers and few cycles. A full collection over
    what a run holds took 0.5-1 s each in `presync` on 1,000 substituted objects, ~40 % of it."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def emit_report(decision: Decision, fmt: str, *, output: str | None, color: bool | None) -> None:
    """Print or write the report; with --output, a one-line summary goes to stderr."""
    from trustgate.report import render

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
    elif fmt == "text":
        click.echo(text, nl=not text.endswith("\n"))
    else:  # JSON, SARIF, JUnit XML, GitHub's workflow commands: read by programs, as UTF-8
        with utf8_stdout() as out:
            out.write(text if text.endswith("\n") else text + "\n")
