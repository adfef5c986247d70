"""Reading what the checks are compiled from: policies, data files, CRDs, Gatekeeper libraries.

Owns: every read from disk the gate needs before it evaluates anything (the
`data` document, Rego sources and their grouping by Rego version, CRDs into
the schema set, the Gatekeeper library and its static inventory), and
turning what is unusable there into a `ConfigError` or `PolicyError` that
names the file. Leaves out: evaluating (the checks in `trustgate.gate.checks`
take what is read here and never touch the disk).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustgate import kinds, yamlio
from trustgate.config import Config, PolicySource, builtin_policy_dir
from trustgate.errors import ConfigError, PolicyError
from trustgate.manifests import loader
from trustgate.model import Document, Mode
from trustgate.policy import rego, rego_text
from trustgate.policy.schema import SchemaSet

if TYPE_CHECKING:
    from trustgate.policy import gatekeeper  # loaded by `load_gatekeeper`: ~15 ms a plain check spares


@dataclass(frozen=True, slots=True)
class RegoGroup:
    """Rego sources of one Rego version, compiled together."""

    policy: rego.RegoPolicy
    modes: Mapping[str, Mode | None]  # package -> the mode of the source that defined it
    user: frozenset[str] = frozenset()  # packages of the user's own sources (not bundled): any input


@dataclass(slots=True)
class GatekeeperSources:
    """A Gatekeeper library as read: the constraint set and what could not be used of it."""

    constraints: gatekeeper.ConstraintSet
    inventory: list[Mapping[str, Any]] = field(default_factory=list)  # --inventory objects
    notes: list[str] = field(default_factory=list)
    unevaluable: list[gatekeeper.Unsupported] = field(default_factory=list)  # "could not evaluate" each
    exclusions: gatekeeper.ProcessExclusions | None = None  # Gatekeeper's Config


def load_policy_data(config: Config) -> rego.PolicyData:
    """The `data` document: data files in order, then the inline `manifests.data`.

    Each document is kept as a source (`<file>:<line>`), so that data which
    `RegoPolicy` refuses (a value at or below a rule's path) is named by file.

    Raises:
        ConfigError: a data file is unreadable, not YAML/JSON, or not a mapping.
    """
    data: dict[str, Any] = {}
    sources: list[tuple[str, Mapping[str, Any]]] = []

    def merge(label: str, value: dict[str, Any]) -> None:
        conflict = _deep_merge(data, value)
        if conflict is not None:
            path = ".".join(conflict)
            earlier = next(
                (where for where, seen in sources if _has_path(seen, conflict)), "an earlier document"
            )
            raise ConfigError(
                f"data documents conflict at {path}: {earlier} and {label} both set it",
                where=label,
                hint="OPA (and so conftest) refuses to merge data documents that set the same value; "
                "keep it in one of them",
            )
        sources.append((label, copy.deepcopy(value)))

    for path in config.data_files:
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise ConfigError(f"cannot read data file: {e.strerror or e}", where=str(path)) from e
        parsed = list(yamlio.parse_stream(raw, max_nodes=config.limits.max_yaml_nodes))
        for item in parsed:
            if isinstance(item, yamlio.YamlProblem):
                raise ConfigError(item.message, where=f"{path}:{item.line}")
            if not isinstance(item.value, dict):
                raise ConfigError("a data file must hold a mapping", where=f"{path}:{item.line}")
            merge(f"{path}:{item.line}", copy.deepcopy(item.value))  # merging mutates
    if config.data:
        merge(f"{config.origin}: manifests.data", copy.deepcopy(dict(config.data)))
    # Where the custom workloads keep their pod spec, for trustgate.lib.k8s `workload`.
    workloads = config.workload_table().rego_data()
    if workloads:
        merge(f"{config.origin}: workloads", {"trustgate": {"config": {"workloads": workloads}}})
    return rego.PolicyData(data, sources=sources)


def load_schemas(config: Config) -> SchemaSet | None:
    """The Kubernetes schemas of the target version with the configured CRDs, or None when off.

    Raises:
        ConfigError: a CRD path is missing, unreadable, or holds no usable CRD (or one the API
            server refuses for its group).
    """
    if not config.kubernetes.schemas:
        return None
    schemas = SchemaSet(version=config.kubernetes.version, strict=config.kubernetes.strict)
    for path in config.kubernetes.crds:
        _load_crds(schemas, path, config)
    return schemas


def read_crds(config: Config) -> list[Mapping[str, Any]]:
    """The CustomResourceDefinitions in the configured CRD paths (`--crd`), whether or not schemas
    are checked: admission policies need their kinds' plurals and scopes.

    Raises:
        ConfigError: a CRD path is missing or unreadable, or holds a CRD the API server refuses
            for its group.
    """
    return [doc.obj for path in config.kubernetes.crds for doc in _crd_documents(path, config)]


def _crd_documents(path: Path, config: Config) -> Iterator[Document]:
    if not path.exists():
        raise ConfigError("CRD path does not exist", where=str(path))
    for unit in loader.plan([str(path)]):
        docs, problems = loader.read_unit(unit, config.limits)
        if problems:
            p = problems[0]
            raise ConfigError(f"cannot read CRDs: {p.message}", where=f"{p.source.file}:{p.source.line}")
        for doc in docs:
            if doc.kind != "CustomResourceDefinition":
                continue
            # Refused as the API server refuses it: such a CRD would otherwise decide the scope
            # or schema of a built-in kind the cluster serves from its own handler.
            if refused := kinds.crd_group_error(doc.obj):
                raise ConfigError(
                    f"CustomResourceDefinition {doc.name or '?'}: {refused}",
                    where=f"{doc.source.file}:{doc.source.line}",
                )
            yield doc


def _load_crds(schemas: SchemaSet, path: Path, config: Config) -> None:
    count = 0
    for doc in _crd_documents(path, config):
        try:
            count += schemas.add_crd(doc.obj)
        except ConfigError as e:
            raise ConfigError(e.message, where=f"{doc.source.file}:{doc.source.line}") from e
    if count == 0:
        raise ConfigError("no CustomResourceDefinition with an openAPIV3Schema found", where=str(path))


# The bundled sets whose every finding rule starts from `data.trustgate.lib.k8s.workload`, and the
# built-in kinds that rule is defined for (policies/lib/k8s.rego), beside the custom workloads of
# the configuration (`Config.workload_table`, in their groups only): any other document is not
# evaluated against them (half of a repository: Services, ConfigMaps).
# tests/unit/gate/test_kind_gate.py checks both against the policies' text and by evaluating them.
WORKLOAD_GATED = frozenset({"trustgate.pss.baseline", "trustgate.pss.restricted", "trustgate.supplychain"})
WORKLOAD_KINDS = frozenset(kinds.BUILTIN_WORKLOADS)


def compile_rego(
    sources: Sequence[PolicySource],
    data: rego.PolicyData,
    *,
    mode: Mode,
    workloads: kinds.Workloads | None = None,
) -> list[RegoGroup]:
    """Compile the Rego sources, one group per Rego version (v0 sources apart from v1 ones).

    Args:
        sources: the policy sources, in the configured order.
        data: the `data` document (with the custom workloads' table, `load_policy_data`).
        mode: the top-level mode, which a source without its own mode takes.
        workloads: the custom workload kinds the bundled sets judge beside the built-in ones;
            None: the known ones (`kinds.KNOWN_WORKLOADS`).

    Raises:
        PolicyError: a policy does not parse, a path holds no .rego file, a named package is
            missing, or sources of different modes define the same package.
    """
    lib = rego.load_modules(builtin_policy_dir() / "lib")
    groups: list[RegoGroup] = []
    # conftest's `-n` (shared_namespaces): a name only some of the sources define is fine.
    shared_wanted: set[str] = set()
    shared_found: set[str] = set()
    shared_labels: list[str] = []
    for v0 in (False, True):
        chosen = [s for s in sources if (s.rego_version == "v0") == v0]
        if not chosen:
            continue
        # The library for v0 sources too (it imports rego.v1): without it their rules on it were undefined.
        modules: list[rego.Module] = list(lib)
        owners: list[tuple[PolicySource, set[str]]] = []
        for source in chosen:
            try:
                found = rego.load_modules(source.resolve())
            except PolicyError as e:
                raise PolicyError(
                    e.message, where=f"{source.label}: {e.where}".rstrip(": "), hint=e.hint
                ) from e
            if not found:
                raise PolicyError("no .rego files found", where=source.label, hint="check the policy path")
            # The bundled sets read no data.conftest (a test keeps it so): not scanned on every run.
            for module in () if source.builtin else found:
                if "conftest" in rego_text.data_roots(module.text):
                    raise PolicyError(
                        "the policy reads data.conftest, which conftest fills in for each file it "
                        "checks and trustgate does not: its rules would be undefined here",
                        where=f"{source.label}: {module.path}",
                        hint="read what you need from input instead",
                    )
            present = {m.path for m in modules}
            modules.extend(m for m in found if m.path not in present)
            owners.append((source, {m.path for m in found}))
        try:
            compiled = rego.RegoPolicy(modules, data=data, rego_v0=v0)
        except PolicyError as e:
            raise PolicyError(e.message, where=", ".join(s.label for s in chosen), hint=e.hint) from e
        # Which source defines each package decides its mode and whether it is evaluated.
        modes: dict[str, Mode | None] = {}
        definers: dict[str, PolicySource] = {}
        user: set[str] = set()
        for source, paths in owners:
            own = [p for p in compiled.rules if compiled.package_files.get(p, set()) & paths]
            missing = set(source.namespaces) - set(own)
            if source.shared_namespaces:
                shared_wanted.update(source.namespaces)
                shared_found.update(own)
                shared_labels.append(source.label)
            elif missing:
                raise PolicyError(
                    f"no policy package named {', '.join(sorted(missing))}",
                    where=source.label,
                    hint=f"packages with deny/violation/warn rules there: {', '.join(own) or 'none'}",
                )
            for package in own:
                if not source.namespaces or package in source.namespaces:
                    first = definers.setdefault(package, source)
                    if (first.mode or mode) != (source.mode or mode):
                        raise _mode_conflict(package, first, source, mode)
                    modes.setdefault(package, source.mode)
                    if source.builtin is None:
                        user.add(package)
        compiled.restrict(modes)
        bundled = {m.path for m in lib} | {p for s, paths in owners if s.builtin is not None for p in paths}
        if not v0 and all(
            files <= bundled
            for package, files in compiled.package_files.items()
            if package == "trustgate" or package.startswith("trustgate.")
        ):  # nobody else's module adds to (or redefines) the bundled packages: they find what they say
            table = workloads if workloads is not None else kinds.Workloads.of(())
            compiled.gate_on_kinds(WORKLOAD_GATED - user, WORKLOAD_KINDS, table.gating())
        groups.append(RegoGroup(compiled, modes, frozenset(user)))
    missing = shared_wanted - shared_found
    if missing:
        raise PolicyError(
            f"no policy package named {', '.join(sorted(missing))}",
            where=", ".join(shared_labels),
            hint="packages with deny/violation/warn rules there: "
            + (", ".join(sorted(shared_found)) or "none"),
        )
    return groups


def _mode_conflict(package: str, first: PolicySource, second: PolicySource, mode: Mode) -> PolicyError:
    """Two sources of different modes define `package`: Rego merges a package's rules, so which
    source a finding came from (and so its mode) is lost; taking either mode would enforce a trial
    rule or let an enforced one through as a warning."""

    def named(source: PolicySource) -> str:
        return f"{source.label} (mode {source.mode or mode}{'' if source.mode else ', the top-level mode'})"

    return PolicyError(
        f"package {package} is defined in {named(first)} and in {named(second)}: Rego merges the "
        "rules of a package, so they cannot keep the modes of their sources",
        hint="give the policy with its own mode (a trial policy) a package of its own, or give both "
        "sources the same mode",
    )


def load_gatekeeper(config: Config) -> GatekeeperSources | None:
    """The Gatekeeper library of `manifests.gatekeeper`, or None when no path is given.

    Raises:
        PolicyError, ConfigError: a template or constraint is broken; an inventory file is unreadable.
    """
    settings = config.gatekeeper
    if not settings.paths:
        return None
    from trustgate.policy import gatekeeper

    library = gatekeeper.load_library(settings.paths, limits=config.limits, namespace=settings.namespace)
    where = ", ".join(str(p) for p in settings.paths)
    notes: list[str] = []
    unevaluable_found = list(library.foreign)
    if not library.constraints and not library.templates and not library.foreign:
        unevaluable_found.append(
            gatekeeper.Unsupported(
                where, 1, "", "", "", "no Gatekeeper ConstraintTemplates or constraints there"
            )
        )
    elif not library.constraints:
        notes.append(f"no Gatekeeper constraints found in {where}")
    unevaluable: list[gatekeeper.Unsupported] = []
    for item in unevaluable_found:
        if settings.skip_unsupported:
            notes.append(f"{unsupported_message(item)}; skipped (skipUnsupported)")
        else:
            unevaluable.append(item)
    notes.extend(library.notes)
    if library.exclusions is not None:
        excluded = library.exclusions.excluded
        notes.append(
            f"Gatekeeper Config {library.exclusions.name} ({library.exclusions.where}) excludes namespaces: "
            + (
                "; ".join(
                    f"{process}: {', '.join(p or repr(p) for p in excluded[process])}"
                    for process in gatekeeper.PROCESSES
                    if excluded.get(process)
                )
                or "none"
            )
            + "; applied as the webhook's (and audit's, for manifests) exclusions, each excluded "
            "object named in its result"
        )
    if library.skipped:
        notes.append(
            f"skipped in the Gatekeeper paths ({where}), not templates or constraints: "
            + ", ".join(f"{n} {key}" for key, n in sorted(library.skipped.items()))
        )
    constraints = gatekeeper.ConstraintSet(
        library.templates.values(),
        library.constraints,
        library.expansions,
        engine=settings.engine,
        kubernetes_version=config.kubernetes.version,
    )
    for template in library.unsupported:
        users = [c.id for c in constraints.skipped if c.kind == template.kind]
        notes.append(
            f"Gatekeeper template {template.name} ({template.where}) is not supported: "
            + template.unsupported
            + (
                f"; its constraints ({', '.join(users)}) are not evaluated, and a document they match "
                + ("is noted (skipUnsupported)" if settings.skip_unsupported else "cannot be evaluated")
                if users
                else "; no constraint uses it"
            )
        )
    inventory: list[Mapping[str, Any]] = []
    for path in settings.inventory:
        inventory.extend(d.obj for d in gatekeeper.read_objects(path, limits=config.limits))
    return GatekeeperSources(constraints, inventory, notes, unevaluable, library.exclusions)


def unsupported_message(item: gatekeeper.Unsupported) -> str:
    """Why something given as Gatekeeper policy is not enforced."""
    if not item.kind:
        return f"{item.file}: {item.reason}, so nothing given as Gatekeeper policy is enforced"
    what = f"{item.kind} {item.name}" if item.name else item.kind
    return (
        f"{what} ({item.api_version}, {item.where}) is {item.reason}: "
        "trustgate evaluates only Gatekeeper policies"
    )


def _deep_merge(into: dict[str, Any], new: Mapping[str, Any]) -> tuple[str, ...] | None:
    """Merge `new` into `into` as OPA merges data documents: mappings merge, anything else set by
    both is a conflict; the path of the first conflict (then `into` is half merged), or None."""
    for key, value in new.items():
        if key not in into:
            into[key] = value
        elif isinstance(value, Mapping) and isinstance(into[key], dict):
            conflict = _deep_merge(into[key], value)
            if conflict is not None:
                return (str(key), *conflict)
        else:
            return (str(key),)
    return None


def _has_path(value: Any, path: Sequence[str]) -> bool:
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return False
        value = value[key]
    return True
