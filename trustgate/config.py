"""`trustgate.yaml`: the one configuration every gate reads.

Owns: the typed configuration, its JSON schema (`schemas/config-v1alpha1.json`),
loading and validating a file with errors that name the line, and the
embedded default used when no file is given. Leaves out: what the settings
do (the gate and the policy engines act on them).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from trustgate import yamlio
from trustgate.errors import ConfigError
from trustgate.model import Mode

API_VERSION = "trustgate.dev/v1alpha1"
KIND = "Config"
DEFAULT_KUBERNETES_VERSION = "1.35"
BUILTIN_SETS = ("pss-baseline", "pss-restricted", "supply-chain")
RESERVED_SECTIONS = ("images", "commits")


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one run reads; each with its unit and reason."""

    max_file_bytes: int = 16 * 1024 * 1024  # bytes; large CRD bundles reach a few MiB, more is a mistake
    max_documents_per_file: int = 20_000  # documents; a rendered platform repo stays far below
    max_yaml_nodes: int = 1_000_000  # nodes after alias expansion; stops "billion laughs" documents
    kustomize_timeout_seconds: float = 120.0  # seconds; remote bases are not fetched offline anyway


@dataclass(frozen=True, slots=True)
class PolicySource:
    """Where Rego policies come from: a bundled set or a path."""

    builtin: str | None = None
    path: Path | None = None
    mode: Mode | None = None  # None: the top-level mode
    namespaces: tuple[str, ...] = ()
    rego_version: str = "v1"

    @property
    def label(self) -> str:
        return f"builtin:{self.builtin}" if self.builtin else str(self.path)

    def resolve(self) -> Path:
        """The directory or file holding the source's `.rego` files."""
        if self.builtin is not None:
            return builtin_policy_dir() / self.builtin
        assert self.path is not None  # the schema requires one of the two
        return self.path


DEFAULT_POLICIES = tuple(PolicySource(builtin=name) for name in BUILTIN_SETS)


@dataclass(frozen=True, slots=True)
class ExceptionRule:
    """A waiver: what it covers, who owns it, why, and until when."""

    name: str
    rules: tuple[str, ...]
    owner: str
    reason: str
    expires: dt.date
    namespaces: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    images: tuple[str, ...] = ()

    def expired(self, today: dt.date) -> bool:
        return today > self.expires  # `expires` is the last day it applies


@dataclass(frozen=True, slots=True)
class KubernetesSettings:
    version: str = DEFAULT_KUBERNETES_VERSION
    strict: bool = True
    missing_schemas: str = "skip"  # "skip" | "fail"
    schemas: bool = True
    crds: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class DecisionLogSettings:
    """The `decisionLog` section: where decisions go and what happens when they cannot."""

    url: str | None = None  # sqlite:///path.db or postgresql://...; None: no log unless --decision-log
    failure_policy: str | None = None  # "closed" | "open"; None: closed in enforce mode, open otherwise
    store_inputs: bool = True
    max_input_bytes: int = 1_048_576  # bytes of input objects per record; beyond, only their hashes
    redact: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (path, kinds)
    checkpoint_key: Path | None = None  # Ed25519 PEM private key
    checkpoint_every_records: int = 10_000  # records between automatic signed checkpoints
    checkpoint_every_seconds: float = 3_600.0  # seconds between automatic signed checkpoints

    def fail_closed(self, mode: Mode) -> bool:
        """Whether a decision that cannot be recorded must not pass."""
        if self.failure_policy is None:
            return mode == Mode.ENFORCE
        return self.failure_policy == "closed"


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration, with paths resolved against the file's directory."""

    mode: Mode = Mode.ENFORCE
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)
    policies: tuple[PolicySource, ...] = DEFAULT_POLICIES
    data: Mapping[str, Any] = field(default_factory=dict)
    data_files: tuple[Path, ...] = ()
    exceptions: tuple[ExceptionRule, ...] = ()
    limits: Limits = field(default_factory=Limits)
    origin: str = "<embedded default>"
    # Not part of the policy revision (repr): where decisions are logged does not change them.
    decision_log: DecisionLogSettings = field(default_factory=DecisionLogSettings, repr=False)

    @classmethod
    def default(cls) -> Config:
        """The embedded default: bundled policy sets and schemas, enforce mode."""
        return cls()


def builtin_policy_dir() -> Path:
    """The bundled policy library shipped inside the package."""
    return Path(str(resources.files("trustgate") / "policies"))


def _schema() -> dict[str, Any]:
    text = (resources.files("trustgate") / "schemas" / "config-v1alpha1.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def load_config(path: str | Path) -> Config:
    """Read and validate a `trustgate.yaml`.

    Raises:
        ConfigError: the file is unreadable, not YAML, or does not match the
            schema; the message names `file:line` and lists every problem.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the config: {e.strerror or e}", where=str(path)) from e
    docs = list(yamlio.parse_stream(data, max_nodes=Limits().max_yaml_nodes))
    for item in docs:
        if isinstance(item, yamlio.YamlProblem):
            raise ConfigError(item.message, where=f"{path}:{item.line}")
    parsed = [d for d in docs if isinstance(d, yamlio.ParsedDocument)]
    if len(parsed) != 1:
        raise ConfigError(
            f"expected one YAML document, found {len(parsed)}",
            where=str(path),
            hint=f"a config starts with `apiVersion: {API_VERSION}` and `kind: {KIND}`",
        )
    doc = parsed[0]
    return parse_config(doc.value, origin=str(path), base=path.parent, tree=doc.node)


def parse_config(value: Any, *, origin: str, base: Path, tree: Any = None) -> Config:
    """Validate a parsed config document and build the typed `Config`.

    Raises:
        ConfigError: the document does not match the schema.
    """
    import jsonschema  # only when a file is read: its import costs more than a whole small check

    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        lines = []
        for error in errors:
            where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
            line = yamlio.locate(tree, tuple(error.absolute_path))
            prefix = f"{origin}:{line}" if line else origin
            lines.append(f"{prefix}: {where}: {_explain(error)}")
        raise ConfigError(
            "invalid configuration:\n  " + "\n  ".join(lines),
            hint="the schema is trustgate/schemas/config-v1alpha1.json; see the README for an example",
        )
    for section in RESERVED_SECTIONS:
        if value.get(section):
            line = yamlio.locate(tree, (section,))
            raise ConfigError(
                f"the `{section}` section is not supported by this version of trustgate",
                where=f"{origin}:{line}" if line else origin,
                hint="remove it; it would not be enforced",
            )

    kube = value.get("kubernetes", {})
    manifests = value.get("manifests", {})
    limits = value.get("limits", {})
    exceptions = []
    for item in value.get("exceptions", []):
        try:
            expires = dt.date.fromisoformat(item["expires"])
        except ValueError as e:
            raise ConfigError(
                f"exception {item['name']!r}: expires {item['expires']!r} is not a date", where=origin
            ) from e
        exceptions.append(
            ExceptionRule(
                name=item["name"],
                rules=tuple(item["rules"]),
                owner=item["owner"],
                reason=item["reason"],
                expires=expires,
                namespaces=tuple(item.get("namespaces", ())),
                kinds=tuple(item.get("kinds", ())),
                names=tuple(item.get("names", ())),
                images=tuple(item.get("images", ())),
            )
        )
    names = [e.name for e in exceptions]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"exception names must be unique: {', '.join(duplicates)}", where=origin)

    if "policies" in manifests:
        policies = tuple(
            PolicySource(
                builtin=src.get("builtin"),
                path=(base / src["path"]) if "path" in src else None,
                mode=Mode(src["mode"]) if "mode" in src else None,
                namespaces=tuple(src.get("namespaces", ())),
                rego_version=src.get("regoVersion", "v1"),
            )
            for src in manifests["policies"]
        )
    else:
        policies = DEFAULT_POLICIES
    defaults = Limits()
    log = value.get("decisionLog", {})
    checkpoint = log.get("checkpoint", {})
    log_defaults = DecisionLogSettings()
    decision_log = DecisionLogSettings(
        url=log.get("url"),
        failure_policy=log.get("failurePolicy"),
        store_inputs=log.get("storeInputs", True),
        max_input_bytes=log.get("maxInputBytes", log_defaults.max_input_bytes),
        redact=tuple(
            (r, ()) if isinstance(r, str) else (r["path"], tuple(r.get("kinds", ())))
            for r in log.get("redact", ())
        ),
        checkpoint_key=base / checkpoint["key"] if "key" in checkpoint else None,
        checkpoint_every_records=checkpoint.get("everyRecords", log_defaults.checkpoint_every_records),
        checkpoint_every_seconds=checkpoint.get("everySeconds", log_defaults.checkpoint_every_seconds),
    )
    return Config(
        mode=Mode(value.get("mode", "enforce")),
        kubernetes=KubernetesSettings(
            version=kube.get("version", DEFAULT_KUBERNETES_VERSION).lstrip("v"),
            strict=kube.get("strict", True),
            missing_schemas=kube.get("missingSchemas", "skip"),
            schemas=kube.get("schemas", True),
            crds=tuple(base / p for p in kube.get("crds", ())),
        ),
        policies=policies,
        data=manifests.get("data", {}),
        data_files=tuple(base / p for p in manifests.get("dataFiles", ())),
        exceptions=tuple(exceptions),
        limits=Limits(
            max_file_bytes=limits.get("maxFileBytes", defaults.max_file_bytes),
            max_documents_per_file=limits.get("maxDocumentsPerFile", defaults.max_documents_per_file),
            max_yaml_nodes=limits.get("maxYamlNodes", defaults.max_yaml_nodes),
            kustomize_timeout_seconds=limits.get(
                "kustomizeTimeoutSeconds", defaults.kustomize_timeout_seconds
            ),
        ),
        origin=origin,
        decision_log=decision_log,
    )


def _explain(error: Any) -> str:  # a jsonschema.ValidationError
    if error.validator == "additionalProperties":
        return f"{error.message} (check the spelling against the schema)"
    if error.validator == "oneOf" and list(error.absolute_path)[:2] == ["manifests", "policies"]:
        return "a policy source needs exactly one of `builtin` or `path`"
    return str(error.message)
