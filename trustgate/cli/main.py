"""The `trustgate` command line.

Owns: flags, reading the config file named on the command line, and turning
errors into one clear message and an exit code (0 pass, 1 policy failure,
2 usage, 3 could not evaluate). Everything else is the gate's.

Start-up counts (a pre-commit hook runs `check` on one file, `--version` runs
in scripts): this module imports click and the light model only; the gate,
the configuration, the policy engines and the commands of other modules are
imported when a command runs (`_LazyGroup`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from trustgate import __version__
from trustgate.cli.options import (
    _DATA_OPTION,
    _REGO_VERSION_OPTION,
    collect_rarely,
    fail,
    printable_diagnostics,
)
from trustgate.cli.options import GATEKEEPER_ENGINES as GATEKEEPER_ENGINES
from trustgate.cli.options import ConfigFlags as ConfigFlags
from trustgate.cli.options import config_options as config_options
from trustgate.cli.options import emit_report as emit_report
from trustgate.errors import Error, InputError
from trustgate.model import ExitCode
from trustgate.report import FORMATS

if TYPE_CHECKING:
    from trustgate.config import Config, IdentityConfig
    from trustgate.manifests import variables
    from trustgate.policy import gator, rego


# Commands defined in other modules: (module, attribute), imported when used.
_LAZY_COMMANDS = {
    "verify": ("trustgate.cli.verify", "verify"),
    "log": ("trustgate.cli.log", "log"),
    "summaries": ("trustgate.cli.summaries", "summaries"),
    "presync": ("trustgate.cli.presync", "presync"),
    "serve": ("trustgate.cli.serve", "serve"),
    "webhook-config": ("trustgate.cli.serve", "webhook_config"),
    "ui": ("trustgate.cli.ui", "ui"),
}


class _LazyGroup(click.Group):
    """The top-level group: a command of another module is imported when it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_LAZY_COMMANDS})  # click's order: by name

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _LAZY_COMMANDS:
            module, attribute = _LAZY_COMMANDS[cmd_name]
            command: click.Command = getattr(importlib.import_module(module), attribute)
            if cmd_name == "verify" and isinstance(command, click.Group):
                command.add_command(verify_image)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; an `Error` from any of them is one line and exit 3 (`options.fail`)."""
        _escape_what_the_terminal_cannot_show()
        try:
            return super().invoke(ctx)
        except Error as e:
            fail(e)


def _escape_what_the_terminal_cannot_show() -> None:
    """Where stdout or stderr cannot encode a character (`✓` in a Latin-1 locale, a name with `é` on
    an ASCII one), print its escape (`\\u2713`) instead of ending the run with a traceback. Files
    written with `--output` are UTF-8 whatever the locale. Text a program reads (JSON, a signed
    note, an exported record) must not be escaped: it goes through `options.utf8_stdout`."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
            with contextlib.suppress(ValueError, OSError):  # closed or detached: nothing to print to
                stream.reconfigure(errors="backslashreplace")


@click.group(
    cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(__version__, prog_name="trustgate")
def main() -> None:
    """trustgate: one policy for manifests, images and commits, enforced at three gates.

    \b
    Exit codes: 0 pass, 1 policy failure, 2 usage error, 3 could not evaluate.
    """


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
    "--exclude",
    "exclude",
    multiple=True,
    metavar="GLOB",
    help="Skip matching paths below each directory given (repeatable; gitignore-like: `Chart.yaml`,"
    " `charts/`, `apps/*/values.yaml`, `**/templates/**`). Adds to manifests.exclude.",
)
@click.option(
    "--combine",
    is_flag=True,
    help="As conftest: your own policies see all documents at once, as a list of"
    ' {"path", "contents"}; bundled checks still run per object.',
)
@click.option(
    "--decision-log",
    metavar="URL",
    envvar="TRUSTGATE_DECISION_LOG",
    help="Record the decision: sqlite:///path.db or postgresql://... (default: decisionLog.url).",
)
@click.option(
    "--flux-kustomization",
    "flux_kustomization",
    metavar="FILE",
    type=click.Path(exists=True, dir_okay=False),
    help="Judge the manifests as this Flux Kustomization applies them: its spec.postBuild variables"
    " substituted (substituteFrom objects read from FILE), as `flux build kustomization"
    " --kustomization-file` does.",
)
@click.option(
    "--flux-substitute",
    "flux_substitute",
    multiple=True,
    metavar="NAME=VALUE",
    help="Judge the manifests with this Flux post-build variable substituted (repeatable; over"
    " --flux-kustomization's). A variable not given keeps failing, its default included.",
)
def check(
    paths: tuple[str, ...],
    flags: ConfigFlags,
    fmt: str,
    output: str | None,
    fail_on: str,
    jobs: int | None,
    color: bool | None,
    exclude: tuple[str, ...],
    combine: bool,
    decision_log: str | None,
    flux_kustomization: str | None,
    flux_substitute: tuple[str, ...],
) -> None:
    """Check Kubernetes manifests: files, directories, kustomizations, or - for stdin.

    Other YAML, JSON and TOML (a GitHub workflow, Helm values, Terraform JSON)
    is checked by your own policies (-p) only.

    \b
    Examples:
      trustgate check deploy/
      kubectl kustomize overlays/prod | trustgate check -
      trustgate check -c trustgate.yaml --format sarif --output trustgate.sarif .
      trustgate check --flux-kustomization clusters/prod/team-a.yaml tenants/base
    """
    from trustgate.gate import Gate

    log = None
    substitution = _flux_substitution(flux_kustomization, flux_substitute)
    try:
        config = flags.load()
        if exclude:
            config = dataclasses.replace(config, exclude=config.exclude + exclude)
        if decision_log or config.decision_log.url:  # the log's commands load only for a log
            from trustgate.cli.log import gate_decision_log, log_reliance, refuse_missing_log

            relies = log_reliance(config, "check")
            log = gate_decision_log(config, decision_log, relies=relies)
            if log is not None and relies:
                refuse_missing_log(log.url, relies)
        with Gate(
            config=config,
            jobs=jobs or os.cpu_count() or 1,
            decision_log=log,
            combine=combine,
            substitution=substitution,
        ) as gate:
            collect_rarely()  # ~10% of a large check
            stdin = sys.stdin.buffer.read() if "-" in paths else None
            context = None
            if log is not None:
                from trustgate.cli.log import check_context

                context = check_context(paths)
            decision = gate.check(paths, stdin=stdin, context=context)
    finally:
        if log is not None:
            log.close()
    if log is not None:
        from trustgate.cli.log import say_recorded

        say_recorded(decision, log)
    emit_report(decision, fmt, output=output, color=color)
    sys.exit(decision.exit_code(fail_on_warning=fail_on == "warning"))


# What a Flux Kustomization changes besides its post-build variables, which `check` does not model.
_FLUX_BUILD_FIELDS = (
    "targetNamespace", "namePrefix", "nameSuffix", "patches", "images", "components", "commonMetadata",
)  # fmt: skip


def _flux_substitution(kustomization_file: str | None, pairs: Sequence[str]) -> variables.Substitution | None:
    """What `check --flux-kustomization/--flux-substitute` substitutes (None: neither given).

    Raises:
        click.BadParameter: a NAME=VALUE without `=`, or a name Flux refuses.
        InputError: FILE holds no Flux Kustomization (or several), none with a spec.postBuild, one
            that also changes what it builds (a targetNamespace, patches), or one whose substitution
            cannot be worked out.
    """
    from trustgate import kinds
    from trustgate.manifests import variables

    if kustomization_file is None and not pairs:
        return None
    given: dict[str, str] = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or variables.invalid_names({name: value}):
            raise click.BadParameter(
                f"{pair!r} is not NAME=VALUE with a variable name Flux takes (letters, digits, '_', "
                "not starting with a digit)",
                param_hint="--flux-substitute",
            )
        given[name] = value.replace("\n", "")  # Flux removes newlines from every value
    if kustomization_file is None:
        return variables.Substitution(
            "--flux-substitute",
            given,
            complete=False,
            unknown="its default is not taken: the Kustomization may set it (give it with --flux-substitute, "
            "or use --flux-kustomization with the Kustomization's file)",
        )
    objects = _kustomization_file_objects(kustomization_file)
    found = [o for o in objects if kinds.is_kind(o, variables.FLUX_KUSTOMIZE_GROUP, "Kustomization")]
    if len(found) != 1:
        raise InputError(
            f"holds {len(found)} Flux Kustomizations ({variables.FLUX_KUSTOMIZE_GROUP}): "
            "--flux-kustomization takes a file with exactly one",
            where=kustomization_file,
            hint="give the file of the Kustomization that applies the manifests",
        )
    metadata = found[0].get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    label = "/".join(str(p) for p in ("Kustomization", metadata.get("namespace"), metadata.get("name")) if p)
    spec = found[0].get("spec")
    builds = [
        f for f in _FLUX_BUILD_FIELDS if isinstance(spec, Mapping) and spec.get(f) not in (None, "", [], {})
    ]
    if builds:  # what they change is not judged here: refused rather than judged as if absent
        raise InputError(
            f"{label} sets {', '.join('spec.' + f for f in builds)}, which `check` does not apply "
            "(only its post-build variables)",
            where=kustomization_file,
            hint="render it as Flux does and check the output: `flux build kustomization NAME --path PATH "
            "--kustomization-file FILE --dry-run | trustgate check -`",
        )
    substitution, why = variables.flux_substitution(
        found[0], objects, applied_as=f"{label} ({kustomization_file})", where=kustomization_file
    )
    if why:
        raise InputError(
            f"{label}: what it substitutes cannot be worked out: {why}",
            where=kustomization_file,
            hint="fix its spec.postBuild (kustomize-controller refuses it too)",
        )
    if substitution is None:
        raise InputError(
            f"{label} has no spec.postBuild: Flux substitutes nothing in what it applies",
            where=kustomization_file,
            hint="check without --flux-kustomization, or give the Kustomization that substitutes",
        )
    if given:  # as if written in its postBuild.substitute: over every other value
        substitution = dataclasses.replace(substitution, values={**substitution.values, **given})
    return substitution


def _kustomization_file_objects(path: str) -> list[Mapping[str, Any]]:
    """The mappings of a YAML stream, for `--flux-kustomization`."""
    from trustgate import yamlio
    from trustgate.config import Limits

    try:
        with open(path, "rb") as f:
            data = f.read(Limits().max_file_bytes + 1)
    except OSError as e:
        raise InputError(f"cannot be read: {e.strerror or e}", where=path) from e
    if len(data) > Limits().max_file_bytes:
        raise InputError(
            "is larger than a manifest may be", where=path, hint="give the Kustomization's own file"
        )
    out: list[Mapping[str, Any]] = []
    for item in yamlio.parse_stream(data, max_nodes=Limits().max_yaml_nodes):
        if isinstance(item, yamlio.YamlProblem):
            raise InputError(f"line {item.line}: {item.message}", where=path, hint="fix the YAML")
        if isinstance(item.value, Mapping):
            out.append(item.value)
    return out


@main.group()
def policy() -> None:
    """Work with Rego policies."""


@policy.command("test")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="List passing tests too.")
@_REGO_VERSION_OPTION
@_DATA_OPTION
@click.option(
    "--gatekeeper-engine",
    type=click.Choice(GATEKEEPER_ENGINES),
    default="cel",
    show_default=True,
    help="The code of templates with Rego and CEL (K8sNativeValidation) that suites run (cel: as gator);"
    " `both` runs"
    " each and fails a case where they disagree. A template with one kind of code runs it.",
)
def policy_test(
    paths: tuple[str, ...],
    fmt: str,
    verbose: bool,
    rego_version: str,
    data_files: tuple[str, ...],
    gatekeeper_engine: str,
) -> None:
    """Run Rego unit tests (`test_*` rules) and gator suites (Gatekeeper `Suite` files).

    A `.rego` file or a directory runs its Rego unit tests; the bundled
    library `data.trustgate.lib.k8s` is always loaded. A `suite.yaml` (or any
    gator Suite file), and every `suite.yaml` under a directory, runs as
    `gator verify` runs it. Exits 0 only when every test passes, 1 when one
    fails, 3 when something could not be evaluated.
    """
    from trustgate.policy import gator

    rego_paths: list[Path] = []
    suite_files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            suite_files.extend(gator.find_suites(path))
            if path.suffix == ".rego" or any(path.rglob("*.rego")):
                rego_paths.append(path)
        elif path.suffix == ".rego":
            rego_paths.append(path)
        else:
            suite_files.append(path)
    results: list[rego.TestResult] = []
    rego_error: Error | None = None
    if rego_paths:
        try:
            results = _rego_tests(rego_paths, rego_version, data_files)
        except Error as e:
            rego_error = e
            click.echo(f"trustgate: error: {printable_diagnostics(e)}", err=True)
    suites = [gator.run_suite(path, code=gatekeeper_engine) for path in suite_files]
    failed = [r for r in results if not r.passed]
    cases = [c for s in suites for t in s.tests for c in t.cases if not c.skipped]
    failed_cases = [c for c in cases if not c.passed]
    broken = [s for s in suites if s.broken]
    if fmt == "json":
        payload: dict[str, Any] = {
            "summary": {
                "tests": len(results),
                "passed": len(results) - len(failed),
                "failed": len(failed),
                "suites": len(suites),
                "suitesFailed": sum(1 for s in suites if not s.passed),
                "cases": len(cases),
                "casesFailed": len(failed_cases),
            },
            "results": [dataclasses.asdict(r) for r in results],
            "suites": [s.to_json() for s in suites],
        }
        if rego_error is not None:
            payload["error"] = rego_error.diagnostics()
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
        if rego_paths and rego_error is None:
            if not results:
                click.echo("no tests found (rules named test_* in the given .rego files)")
            else:
                click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
        for suite in suites:
            click.echo(_suite_text(suite, verbose), nl=False)
        if suites:
            click.echo(
                f"gator suites: {sum(1 for s in suites if s.passed)} of {len(suites)} passed; "
                f"cases: {len(cases) - len(failed_cases)} passed, {len(failed_cases)} failed"
            )
    if rego_error is not None or broken or (rego_paths and not results and not suites):
        sys.exit(ExitCode.NOT_EVALUATED)
    if not results and not suites:
        click.echo("no tests found (rules named test_* in .rego files, or gator suite.yaml files)")
        sys.exit(ExitCode.NOT_EVALUATED)
    sys.exit(ExitCode.POLICY_FAILURE if failed or failed_cases else ExitCode.PASS)


def _rego_tests(paths: list[Path], rego_version: str, data_files: tuple[str, ...]) -> list[rego.TestResult]:
    from trustgate.config import Config, builtin_policy_dir
    from trustgate.gate import load_policy_data
    from trustgate.policy import rego

    modules: list[rego.Module] = []
    lib_dir = builtin_policy_dir() / "lib"
    for path in paths:
        modules.extend(rego.load_modules(path, tests=True))
    present = {os.path.realpath(m.path) for m in modules}
    # The library is Rego v1 (`import rego.v1`): v0 modules read it as well (`compile_rego`).
    modules.extend(m for m in rego.load_modules(lib_dir) if os.path.realpath(m.path) not in present)
    config = dataclasses.replace(Config.default(), data_files=tuple(Path(d) for d in data_files))
    policy_set = rego.RegoPolicy(modules, data=load_policy_data(config), rego_v0=rego_version == "v0")
    return policy_set.evaluator().run_tests()


def _suite_text(suite: gator.SuiteResult, verbose: bool) -> str:
    """One suite the way `gator verify` prints it (Go test style)."""
    lines: list[str] = []
    if suite.error:
        lines.append(f"    {suite.error}")
    for test in suite.tests:
        if test.skipped:
            if verbose:
                lines.append(f"--- SKIP: {test.name}")
            continue
        if test.passed and not verbose:
            continue
        lines.append(f"--- {'PASS' if test.passed else 'FAIL'}: {test.name} ({test.duration_ms / 1000:.3f}s)")
        if test.error:
            lines.extend(f"    {ln}" for ln in test.error.splitlines())
        for case in test.cases:
            if case.skipped:
                if verbose:
                    lines.append(f"    --- SKIP: {case.name}")
                continue
            if case.passed and not verbose:
                continue
            lines.append(
                f"    --- {'PASS' if case.passed else 'FAIL'}: {case.name} ({case.duration_ms / 1000:.3f}s)"
            )
            if case.error:
                lines.extend(f"        {ln}" for ln in case.error.splitlines())
    status = "skip" if suite.skipped else "ok  " if suite.passed else "FAIL"
    lines.append(f"{status}\t{suite.path}\t{suite.duration_ms / 1000:.3f}s")
    return "\n".join(lines) + "\n"


@main.command("schema")
def schema_cmd() -> None:
    """Print the JSON schema of trustgate.yaml."""
    from importlib import resources

    click.echo((resources.files("trustgate") / "schemas" / "config-v1alpha1.json").read_text("utf-8"))


@main.command("versions")
def versions_cmd() -> None:
    """List the Kubernetes versions with bundled schemas and the bundled policy sets."""
    from trustgate.config import BUILTIN_SETS
    from trustgate.policy.schema import available_versions

    click.echo("kubernetes schemas: " + ", ".join(available_versions()))
    click.echo("policy sets: " + ", ".join(BUILTIN_SETS))


@click.command("image")
@click.argument("references", nargs=-1, required=True)
@config_options
@click.option(
    "--key", "key_path", type=click.Path(exists=True, dir_okay=False), help="Cosign public key (PEM)."
)
@click.option("--certificate-identity", "identity", help="Keyless: the signer identity, exactly.")
@click.option("--certificate-identity-regexp", "identity_regexp", help="Keyless: the identity as a regex.")
@click.option("--certificate-oidc-issuer", "issuer", help="Keyless: the OIDC issuer, exactly.")
@click.option("--certificate-oidc-issuer-regexp", "issuer_regexp", help="Keyless: the issuer as a regex.")
@click.option(
    "--trusted-root",
    type=click.Path(exists=True, dir_okay=False),
    help="Sigstore trusted_root.json: keyless, the root (default: the embedded public-good one); "
    "with --key, the log that must hold each signature.",
)
@click.option(
    "--attestation",
    "attestation_types",
    multiple=True,
    help="Require an attestation of this predicate type (URI or slsaprovenance1, vuln, ...; repeatable).",
)
@click.option(
    "--insecure-registry", "insecure", multiple=True, help="Reach this host[:port] over plain HTTP."
)
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), help="CA bundle for registry HTTPS.")
@click.option("-o", "--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="Write the report here.")
@click.option("--color/--no-color", default=None, help="Colour text output (default: when a terminal).")
@click.option(
    "--summary",
    is_flag=True,
    help="Show the verification summaries (SLSA VSAs) on each image and whether they count under "
    "its rule's summaries.accept, instead of verifying it (-o text or json).",
)
def verify_image(
    references: tuple[str, ...],
    flags: ConfigFlags,
    key_path: str | None,
    identity: str | None,
    identity_regexp: str | None,
    issuer: str | None,
    issuer_regexp: str | None,
    trusted_root: str | None,
    attestation_types: tuple[str, ...],
    insecure: tuple[str, ...],
    ca_file: str | None,
    fmt: str,
    output: str | None,
    color: bool | None,
    summary: bool,
) -> None:
    """Verify images against the image rules of the config, or the signer given by flags.

    \b
    Examples:
      trustgate verify image -c trustgate.yaml ghcr.io/acme/api:v1.4.2
      trustgate verify image --key cosign.pub registry.example.com/app@sha256:...
      trustgate verify image ghcr.io/acme/api:v1 \\
          --certificate-identity-regexp 'https://github.com/acme/.+@refs/tags/v.+' \\
          --certificate-oidc-issuer https://token.actions.githubusercontent.com \\
          --attestation slsaprovenance1
    """
    from trustgate.config import IdentityConfig
    from trustgate.gate import Gate

    keyless = identity or identity_regexp or issuer or issuer_regexp
    if key_path and keyless:
        raise click.UsageError(
            "give either --key or --certificate-identity/--certificate-oidc-issuer, not both"
        )
    if keyless and not ((identity or identity_regexp) and (issuer or issuer_regexp)):
        raise click.UsageError(
            "keyless verification needs an identity (--certificate-identity[-regexp]) "
            "and an issuer (--certificate-oidc-issuer[-regexp])"
        )
    config = flags.load()
    config = _command_line_images(
        config,
        key_path=key_path,
        identity=IdentityConfig(identity, identity_regexp, issuer, issuer_regexp) if keyless else None,
        trusted_root=trusted_root,
        attestation_types=attestation_types,
        insecure=insecure,
        ca_file=ca_file,
    )
    if not config.images.rules:
        raise click.UsageError(
            "no image rules to verify against: give a config with images.rules (-c), "
            "or a signer with --key or --certificate-identity and --certificate-oidc-issuer"
        )
    if summary:
        from trustgate.cli.summaries import show_summaries

        show_summaries(config, references, "json" if fmt == "json" else "text")
    with Gate(config=config) as gate:
        decision = gate.verify_images(references, gate="verify")
    emit_report(decision, fmt, output=output, color=color)
    sys.exit(decision.exit_code())


def _command_line_images(
    config: Config,
    *,
    key_path: str | None,
    identity: IdentityConfig | None,
    trusted_root: str | None,
    attestation_types: tuple[str, ...],
    insecure: tuple[str, ...],
    ca_file: str | None,
) -> Config:
    """The config with the signer named by flags as its one image rule (matching every image)."""
    from trustgate.config import (
        PREDICATE_ALIASES,
        PUBLIC_GOOD,
        AttestationRequirement,
        AuthorityConfig,
        ImageRule,
    )

    images = config.images
    registries = dataclasses.replace(
        images.registries,
        insecure=images.registries.insecure + insecure,
        ca_file=Path(ca_file) if ca_file else images.registries.ca_file,
    )
    images = dataclasses.replace(images, registries=registries)
    if key_path is None and identity is None:
        if attestation_types or trusted_root:
            raise click.UsageError("--attestation and --trusted-root need --key or --certificate-identity")
        return dataclasses.replace(config, images=images)
    roots = dict(images.trust_roots)
    if key_path is not None:
        try:
            pem = Path(key_path).read_bytes()
        except OSError as e:
            raise click.UsageError(f"cannot read {key_path}: {e.strerror or e}") from e
        key_root = None
        if trusted_root:  # with a key, the trusted root's log must hold the signature
            key_root = "command-line"
            roots[key_root] = Path(trusted_root)
        authority = AuthorityConfig(
            name="command-line", key_pem=pem, key_origin=key_path, key_trust_root=key_root
        )
    else:
        assert identity is not None
        root = PUBLIC_GOOD
        if trusted_root:
            root = "command-line"
            roots[root] = Path(trusted_root)
        authority = AuthorityConfig(name="command-line", trust_root=root, identities=(identity,))
    rule = ImageRule(
        name="command-line",
        images=("**",),
        authorities=(authority.name,),
        attestations=tuple(
            AttestationRequirement(
                name=f"attestation-{i + 1}",
                predicate_type=PREDICATE_ALIASES.get(t, t),
                authorities=(authority.name,),
            )
            for i, t in enumerate(attestation_types)
        ),
    )
    images = dataclasses.replace(images, trust_roots=roots, authorities=(authority,), rules=(rule,))
    return dataclasses.replace(config, images=images)
