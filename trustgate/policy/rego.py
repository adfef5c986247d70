"""Rego policies in conftest conventions, evaluated in-process by regorus.

Owns: loading `.rego` modules (text in, never paths below `load_modules`),
finding the packages that define `deny`/`violation`/`warn` (and conftest's
`deny_<name>` forms), evaluating them against one input at a time, applying a
package's own conftest `exception` rule, normalising their messages, and
running Rego unit tests (`test_*` rules). Leaves out: what a message means for the
verdict (the gate applies modes and exceptions).

A regorus `Engine` cannot cross threads, so `RegoPolicy` is a compiled,
shareable description and `RegoEvaluator` is the per-thread (or per-process)
engine built from it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regorus

from trustgate.errors import PolicyError
from trustgate.kinds import api_group
from trustgate.manifests.loader import lone_surrogate, path_text, unevaluable
from trustgate.model import JsonPath
from trustgate.policy import _compile_cache
from trustgate.policy._normalise import add_extensions, code_fingerprint, normalise

BLOCK_RULES = ("deny", "violation")
WARN_RULES = ("warn",)
FINDING_RULES = BLOCK_RULES + WARN_RULES
# conftest's rule names (policy/engine.go isFailure/isWarning): `deny_<name>` and
# `violation_<name>` block, `warn_<name>` warns, as the bare names do.
_BLOCK_RULE = re.compile(r"(deny|violation)(_[a-zA-Z0-9]+)*")
_WARN_RULE = re.compile(r"warn(_[a-zA-Z0-9]+)*")
EXCEPTION_RULE = "exception"  # conftest: `exception contains rules if {...; rules := ["name"]}`
_LOCATION = re.compile(r"-->\s*(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)")
_UNDEFINED = "<undefined>"
_AGGREGATE_PACKAGE = "trustgate_internal_aggregate"


@dataclass(frozen=True, slots=True)
class Module:
    """One Rego source file: its name (for messages) and text."""

    path: str
    text: str


class PolicyData(dict[str, Any]):
    """The `data` document, and the documents it was merged from, in order.

    `sources` (a label such as the data file's path, and its document) only
    serve to name where a part of `data` came from when it is refused.
    """

    def __init__(
        self, value: Mapping[str, Any] | None = None, *, sources: Sequence[tuple[str, Mapping[str, Any]]] = ()
    ) -> None:
        super().__init__(value or {})
        self.sources = tuple(sources)


@dataclass(frozen=True, slots=True)
class RawFinding:
    """A message produced by a Rego rule, normalised."""

    package: str
    rule_name: str  # deny | violation | warn, or one of them with a `_<name>` suffix
    rule: str  # the id from the message, else "<package>.<rule_name>"
    message: str
    fix: str = ""
    path: JsonPath = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    exception: str = ""  # the package's conftest `exception` that waives it, as conftest's query

    @property
    def blocking(self) -> bool:
        return is_blocking_rule(self.rule_name)


def is_blocking_rule(name: str) -> bool:
    """`deny`, `violation`, `deny_<name>` or `violation_<name>` (conftest's failures)."""
    return _BLOCK_RULE.fullmatch(name) is not None


def is_finding_rule(name: str) -> bool:
    """A rule whose messages are findings: the blocking ones and `warn`, `warn_<name>`."""
    return is_blocking_rule(name) or _WARN_RULE.fullmatch(name) is not None


def exception_name(rule_name: str) -> str:
    """The name a conftest `exception` uses for a rule: without its `deny_`/`violation_`/`warn_` prefix.

    As conftest's removeRulePrefix: `deny_run_as_root` -> `run_as_root`; a bare
    `deny` stays `deny`.
    """
    for prefix in ("violation_", "deny_", "warn_"):
        rule_name = rule_name.removeprefix(prefix)
    return rule_name


@dataclass(frozen=True, slots=True)
class TestResult:
    package: str
    name: str
    passed: bool
    duration_ms: float
    error: str = ""
    file: str = ""


def load_modules(target: Path, *, tests: bool = False) -> list[Module]:
    """Read `.rego` files from a file or a directory tree, in a stable order.

    Args:
        target: a `.rego` file or a directory.
        tests: include `*_test.rego` files (for `policy test`).

    Raises:
        PolicyError: the path is missing or unreadable, or holds no policy.
    """
    if target.is_dir():
        # Hidden directories are skipped below the root only: `-p ../policy` and
        # `-p .github/policy` name their root explicitly.
        files = sorted(
            p
            for p in target.rglob("*.rego")
            if not any(part.startswith(".") for part in p.relative_to(target).parts)
        )
    elif target.is_file():
        files = [target]
    else:
        raise PolicyError("policy path does not exist", where=str(target))
    modules = []
    for f in files:
        if not tests and f.name.endswith("_test.rego"):
            continue
        try:
            modules.append(Module(str(f), f.read_text("utf-8")))
        except (OSError, UnicodeDecodeError) as e:
            raise PolicyError(f"cannot read policy: {e}", where=str(f)) from e
    return modules


def clean_engine_error(error: BaseException) -> str:
    """regorus' message without the Rust backtrace, as `file:line:col: message`."""
    text = str(error).split("Stack backtrace:", 1)[0].strip()
    match = _LOCATION.search(text)
    detail = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("error:")]
    message = (
        detail[-1].removeprefix("error:").strip() if detail else text.splitlines()[-1].strip() if text else ""
    )
    if match:
        source_line = ""
        for ln in text.splitlines():
            if ln.strip().startswith(f"{match.group('line')} |"):
                source_line = ln.split("|", 1)[1].strip()
        where = f"{match.group('file')}:{match.group('line')}:{match.group('col')}"
        return f"{where}: {message}" + (f"\n    {source_line}" if source_line else "")
    return message or type(error).__name__


# What regorus raises for an error of the module or the evaluation.
ENGINE_ERRORS = (RuntimeError, TypeError, ValueError, OverflowError)


def is_engine_panic(error: BaseException) -> bool:
    """A Rust panic inside regorus: pyo3's `pyo3_runtime.PanicException`.

    It derives from `BaseException` (not `Exception`), so `except Exception` lets it
    through, and it cannot be imported: it is told by its class's module and name. A
    panic leaves the engine unusable (the rule it was in reads as recursive from then
    on): the caller must drop that engine.
    """
    return any(
        cls.__name__ == "PanicException" and cls.__module__ == "pyo3_runtime" for cls in type(error).__mro__
    )


def panic_text(error: BaseException) -> str:
    """What to report for a regorus panic (an engine bug, never the policy's answer)."""
    detail = str(error).split("Stack backtrace:", 1)[0].strip().splitlines()
    return f"the Rego engine (regorus) panicked: {detail[0] if detail else type(error).__name__}"


def refuse_lone_surrogate(value: Any) -> None:
    """Refuse an input that holds a string that is not Unicode text (a lone surrogate).

    regorus' `set_input` crashes the process (SIGSEGV) on such a string instead of
    raising, so every path into the engine checks first (about 20 us for a 12 KB object).

    Raises:
        PolicyError: a key or value holds a lone surrogate; the message names its path.
    """
    bad = lone_surrogate(value)
    if bad is not None:
        raise PolicyError(
            f"input cannot be evaluated: the string at {path_text(bad)} holds a lone surrogate "
            "(a \\ud800-\\udfff escape without its pair), which is not Unicode text",
            hint="fix the input: write the character itself, or both halves of its surrogate pair",
        )


def refuse_unevaluable(value: Any, *, what: str = "input") -> None:
    """Refuse what regorus cannot evaluate as OPA would: a lone surrogate, an integer it rounds.

    One pass over `value` for both (`loader.unevaluable`). regorus crashes on a lone
    surrogate (see `refuse_lone_surrogate`), and turns an integer outside -2^63..2^64-1
    into a float64 without a word, so `input.n > 18446744073709551616` would be false for
    18446744073709551617, where OPA compares exactly: refused rather than evaluated as
    another number (ADR 0008).

    Args:
        value: the input document (or data).
        what: how to name `value` in the message (`input`, or a data file).

    Raises:
        PolicyError: such a string or integer; the message names its path.
    """
    bad = unevaluable(value)
    if bad is None:
        return
    kind, path = bad
    if kind == "surrogate":
        raise PolicyError(
            f"{what} cannot be evaluated: the string at {path_text(path)} holds a lone surrogate "
            "(a \\ud800-\\udfff escape without its pair), which is not Unicode text",
            hint="fix the input: write the character itself, or both halves of its surrogate pair",
        )
    raise PolicyError(
        f"{what} cannot be evaluated: the integer at {path_text(path)} is outside -2^63..2^64-1, "
        "which the Rego engine (regorus) would round to a float64 where OPA compares it exactly",
        hint="write the number as a string, or keep it within -9223372036854775808..18446744073709551615",
    )


def _new_engine(modules: Sequence[Module], data: Mapping[str, Any], rego_v0: bool) -> Any:
    engine = regorus.Engine()
    if rego_v0:
        engine.set_rego_v0(True)
    texts = normalise(tuple((m.path, m.text) for m in modules), rego_v0)  # OPA's semantics: ADR 0008
    add_extensions(engine, texts)  # what the rewritten modules call (ADR 0008)
    for module, text in zip(modules, texts, strict=True):
        try:
            engine.add_policy(module.path, text)
        except BaseException as e:
            if is_engine_panic(e):
                raise PolicyError(f"{module.path}: {panic_text(e)}", hint="please report this") from e
            if not isinstance(e, RuntimeError):
                raise
            message = clean_engine_error(e)
            hint = "fix the policy"
            if "`if` keyword is required" in message or "`contains` keyword" in message:
                hint = (
                    "this looks like Rego v0 syntax: set `regoVersion: v0` on the policy source "
                    "(or --rego-version v0), or add `if`/`contains`"
                )
            raise PolicyError(message, hint=hint) from e
    if data:
        try:
            engine.add_data_json(json.dumps(data))
        except ENGINE_ERRORS as e:
            raise PolicyError(f"policy data cannot be loaded: {clean_engine_error(e)}") from e
        except BaseException as e:
            if not is_engine_panic(e):
                raise
            raise PolicyError(f"policy data cannot be loaded: {panic_text(e)}") from e
    return engine


def _rule_heads(asts: list[Any], files: dict[str, set[str]]) -> dict[str, set[str]]:
    """Package name (without `data.`) -> names of the rules it defines.

    `files` is filled with package -> the module paths that define it.
    """
    heads: dict[str, set[str]] = {}
    for module in asts:
        ast = module.get("ast", {})
        package = _ref_text(ast.get("package", {}).get("refr"))
        if package is None:
            continue
        files.setdefault(package, set()).add(str(module.get("source", {}).get("file", "")))
        names = heads.setdefault(package, set())
        for rule in ast.get("rules", []):
            spec = rule.get("Spec") if isinstance(rule, dict) else None
            if not isinstance(spec, dict):
                continue
            head = spec.get("head", {})
            for variant in head.values():
                if isinstance(variant, dict):
                    name = _ref_text(variant.get("refr"), first_only=True)
                    if name:
                        names.add(name)
    return heads


def _rule_paths(asts: list[Any]) -> dict[tuple[str, ...], str]:
    """The path under `data` of every rule (OPA's rule tree), -> `file:line` of its first definition.

    A rule's path is its package and the string-keyed start of its head's reference:
    `deny contains m` -> (`main`, `deny`), `q.r[x] := 1` -> (`main`, `q`, `r`).
    """
    paths: dict[tuple[str, ...], str] = {}
    for module in asts:
        ast = module.get("ast", {})
        package = _ref_path(ast.get("package", {}).get("refr"))
        if not package:
            continue
        file = str(module.get("source", {}).get("file", ""))
        for rule in ast.get("rules", []):
            if not isinstance(rule, dict):
                continue
            refs = [rule["Default"].get("refr")] if isinstance(rule.get("Default"), dict) else []
            spec = rule.get("Spec")
            if isinstance(spec, dict):
                refs += [v.get("refr") for v in spec.get("head", {}).values() if isinstance(v, dict)]
            for ref in refs:
                path = _ref_path(ref)
                if path:
                    paths.setdefault((*package, *path), f"{file}:{_ref_line(ref)}")
    return paths


def _ref_path(ref: Any) -> list[str]:
    """The leading string keys of a reference (`a.b["c"][x].d` -> a, b, c)."""
    chain: list[str | None] = []
    while isinstance(ref, dict):
        if "Var" in ref:
            chain.append(ref["Var"].get("value"))
            break
        if "RefDot" in ref:
            fld = ref["RefDot"].get("field")
            chain.append(fld[1] if isinstance(fld, list) and len(fld) == 2 else None)
            ref = ref["RefDot"].get("refr")
        elif "RefBrack" in ref:
            index = ref["RefBrack"].get("index")
            value = index["String"].get("value") if isinstance(index, dict) and "String" in index else None
            chain.append(value)
            ref = ref["RefBrack"].get("refr")
        else:
            return []
    path: list[str] = []
    for key in reversed(chain):
        if not isinstance(key, str):
            break
        path.append(key)
    return path


def _ref_line(ref: Any) -> int:
    while isinstance(ref, dict):
        kind, body = next(iter(ref.items()), ("", None))
        if not isinstance(body, dict):
            return 0
        if kind == "Var":
            return int(body.get("span", {}).get("line", 0))
        ref = body.get("refr")
    return 0


def _summary(engine: Any, modules: Sequence[Module], rego_v0: bool) -> dict[str, Any]:
    """What the compiler needs from the modules' AST: rule heads, their files and paths.

    Fetching and decoding the AST costs about 30 ms for the bundled policies,
    so the summary is kept across runs in the compile cache, keyed like
    `normalise`'s entries; an entry of the wrong shape is ignored.
    """
    cache = _compile_cache.active()
    key = ""
    if cache is not None:
        key = cache.key(
            [b"rego-summary", _summary_code(), b"v0" if rego_v0 else b"v1"]
            + [part for m in modules for part in (m.path, m.text)]
        )
        hit = cache.load(key)
        if isinstance(hit, dict) and _is_summary(hit):
            return hit
    asts = json.loads(engine.get_ast_as_json())
    files: dict[str, set[str]] = {}
    heads = _rule_heads(asts, files)
    summary = {
        "heads": {p: sorted(names) for p, names in heads.items()},
        "files": {p: sorted(paths) for p, paths in files.items()},
        "paths": [[list(path), where] for path, where in _rule_paths(asts).items()],
    }
    if cache is not None:
        cache.store(key, summary)
    return summary


def _is_summary(value: Any) -> bool:
    def names(v: Any) -> bool:
        return isinstance(v, dict) and all(
            isinstance(k, str) and isinstance(n, list) and all(isinstance(x, str) for x in n)
            for k, n in v.items()
        )

    return (
        isinstance(value, dict)
        and names(value.get("heads"))
        and names(value.get("files"))
        and isinstance(value.get("paths"), list)
        and all(
            isinstance(e, list)
            and len(e) == 2
            and isinstance(e[0], list)
            and all(isinstance(k, str) for k in e[0])
            and isinstance(e[1], str)
            for e in value["paths"]
        )
    )


_SUMMARY_CODE: list[bytes] = []


def _summary_code() -> bytes:
    if not _SUMMARY_CODE:
        _SUMMARY_CODE.append(_compile_cache.code_fingerprint([__file__]) + code_fingerprint())
    return _SUMMARY_CODE[0]


def _refuse_data_over_rules(rule_paths: Mapping[tuple[str, ...], str], data: Mapping[str, Any]) -> None:
    """Data at or below a rule's path, or a non-object on the way to it: OPA refuses it.

    OPA's compiler (`checkPathConflicts` with `storage.NonEmpty`) fails with
    "conflicting rule for data path <path> found", whichever is loaded first;
    regorus let the data replace the rule, so a data file could switch off any
    rule, the bundled ones included. Data beside a package's rules is fine.

    Raises:
        PolicyError: such a conflict, naming the data's source and path, and the rule.
    """
    if not data:
        return
    rules = dict(rule_paths)
    rules[(_AGGREGATE_PACKAGE, "findings")] = "<trustgate aggregate>:3"
    rules[(_AGGREGATE_PACKAGE, "others")] = "<trustgate aggregate>:5"
    for path, where in sorted(rules.items()):
        node: Any = data
        at: tuple[str, ...] | None = None
        for i, key in enumerate(path):
            if not isinstance(node, Mapping):
                at = path[:i]  # a scalar, array or null where the rule's package or rule would be
                break
            if key not in node:
                break
            node = node[key]
        else:
            at = path
        if at is None:
            continue
        sources = data.sources if isinstance(data, PolicyData) else ()
        origin = next((label for label, doc in reversed(sources) if _has(doc, at)), "the policy data")
        raise PolicyError(
            f"{origin}: data `{'.'.join(at)}` conflicts with rule `data.{'.'.join(path)}` ({where}): "
            "OPA (conftest, Gatekeeper) refuses this (rego_compile_error: conflicting rule for data path "
            f"{'/'.join(path)} found)",
            hint="data may sit beside a package's rules, not at or below a rule: "
            "rename or remove that key of the data",
        )


def _refuse_unevaluable_data(data: Mapping[str, Any]) -> None:
    """`refuse_unevaluable` over the policy data, naming the data file that holds the value.

    Raises:
        PolicyError: a lone surrogate or an integer regorus would round, in some data document.
    """
    if not data:
        return
    sources = data.sources if isinstance(data, PolicyData) else ()
    for label, doc in sources:
        refuse_unevaluable(doc, what=f"data file {label}")
    refuse_unevaluable(data, what="the policy data")


def _has(doc: Any, path: tuple[str, ...]) -> bool:
    for key in path:
        if not isinstance(doc, Mapping) or key not in doc:
            return False
        doc = doc[key]
    return True


def _ref_text(ref: Any, *, first_only: bool = False) -> str | None:
    if not isinstance(ref, dict):
        return None
    if "Var" in ref:
        value = ref["Var"].get("value")
        return value if isinstance(value, str) else None
    if "RefDot" in ref:
        base = _ref_text(ref["RefDot"].get("refr"), first_only=first_only)
        if first_only:
            return base
        fld = ref["RefDot"].get("field")
        name = fld[1] if isinstance(fld, list) and len(fld) == 2 else None
        return f"{base}.{name}" if base and isinstance(name, str) else base
    if "RefBrack" in ref:
        return _ref_text(ref["RefBrack"].get("refr"), first_only=first_only)
    return None


@dataclass(frozen=True, slots=True)
class RuleFailure:
    """A finding rule (or a package's `exception`) that failed at run time on one input."""

    package: str
    rule: str
    message: str  # `file:line:col: message`, as `clean_engine_error` cuts it

    def text(self) -> str:
        return f"policy evaluation failed: rule data.{self.package}.{self.rule}: {self.message}"


class RuleEvaluationError(PolicyError):
    """Some rules failed at run time on one input; every other rule was evaluated.

    Attributes:
        failures: each rule that failed, with its package and the engine's message.
        findings: what the other rules found (a real violation among them is one).
    """

    def __init__(self, failures: Sequence[RuleFailure], findings: Sequence[RawFinding]) -> None:
        super().__init__("; ".join(f.text() for f in failures))
        self.failures = tuple(failures)
        self.findings = list(findings)


class RegoPolicy:
    """A compiled set of modules and data; makes per-thread evaluators.

    Construction compiles once to report syntax errors and to find which
    packages define `deny`, `violation` or `warn`.
    """

    def __init__(
        self,
        modules: Sequence[Module],
        *,
        data: Mapping[str, Any] | None = None,
        namespaces: Iterable[str] = (),
        rego_v0: bool = False,
    ) -> None:
        """Compile `modules`.

        Args:
            modules: every module to load (libraries included).
            data: the `data` document (merged under `data`).
            namespaces: evaluate only these packages (conftest `--namespace`); all when empty.
            rego_v0: parse as Rego v0 (no `if`/`contains` required).

        Raises:
            PolicyError: a module does not parse, a named namespace has no rules, or
                `data` has a value at or below a rule's path (OPA refuses it).
        """
        self.modules = tuple(modules)
        self.data = dict(data or {})
        self.rego_v0 = rego_v0
        _refuse_unevaluable_data(data or {})
        engine = _new_engine(self.modules, self.data, rego_v0)
        summary = _summary(engine, self.modules, rego_v0)
        _refuse_data_over_rules({tuple(path): where for path, where in summary["paths"]}, data or {})
        self.package_files: dict[str, set[str]] = {p: set(f) for p, f in summary["files"].items()}
        heads: dict[str, set[str]] = {p: set(names) for p, names in summary["heads"].items()}
        wanted = set(namespaces)
        missing = wanted - set(heads)
        if missing:
            raise PolicyError(
                f"no policy package named {', '.join(sorted(missing))}",
                hint=f"packages found: {', '.join(sorted(heads)) or 'none'}",
            )
        self.rules: dict[str, tuple[str, ...]] = {
            package: tuple(sorted(n for n in names if is_finding_rule(n)))
            for package, names in sorted(heads.items())
            if (not wanted or package in wanted) and any(is_finding_rule(n) for n in names)
        }
        # Packages with a conftest `exception` rule: it waives their own rules only.
        self.exceptions: frozenset[str] = frozenset(
            p for p, names in heads.items() if EXCEPTION_RULE in names
        )
        self.tests: dict[str, tuple[str, ...]] = {
            package: tuple(sorted(n for n in names if n.startswith("test_")))
            for package, names in sorted(heads.items())
            if any(n.startswith("test_") for n in names)
        }
        # Packages that find nothing unless input.kind is one of `gating_kinds` (`gate_on_kinds`).
        self.kind_gated: frozenset[str] = frozenset()
        self.gating_kinds: frozenset[str] = frozenset()
        self.gating_kind_groups: dict[str, frozenset[str]] = {}
        # The engine compiled above becomes the first evaluator: compiling
        # costs milliseconds that a small check would otherwise pay twice.
        self._spare: tuple[int, int, Any] | None = (os.getpid(), threading.get_ident(), engine)

    def restrict(self, packages: Iterable[str]) -> None:
        """Evaluate only these packages (before any evaluator is made)."""
        keep = set(packages)
        self.rules = {p: r for p, r in self.rules.items() if p in keep}

    def gate_on_kinds(
        self,
        packages: Iterable[str],
        kinds: Iterable[str],
        kind_groups: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        """Say that `packages` find nothing in an input whose `kind` is not one of `kinds`, nor
        a kind of `kind_groups` in one of its API groups (before any evaluator is made).

        Only for packages whose every finding rule provably requires such a kind: the
        caller vouches for it (the bundled sets, whose rules start from the library's
        `workload`; `tests/unit/policy/test_rego_kind_gate.py` checks them). An input of
        another kind is then evaluated against the other packages only, or not at all.
        `kind_groups` (kind -> API groups) are the declared custom workloads: a Knative
        `Service` gates, a core `Service` does not.
        """
        self.kind_gated = frozenset(packages) & frozenset(self.rules)
        self.gating_kinds = frozenset(kinds) if self.kind_gated else frozenset()
        self.gating_kind_groups = dict(kind_groups or {}) if self.kind_gated else {}

    @property
    def aggregate(self) -> Module:
        """The generated rules that gather every finding rule: `findings`, and `others`
        without the kind-gated packages (`gate_on_kinds`).

        A single eval_rule call costs a tenth of an ad-hoc query, which
        regorus parses on every call.
        """

        def gathered(packages: Iterable[str]) -> str:
            parts = [
                f'"{package}": {{'
                + ", ".join(f'"{r}": data.{package}.{r}' for r in self._queried(package))
                + "}"
                for package in packages
            ]
            return "{" + ", ".join(parts) + "}"

        others = [p for p in self.rules if p not in self.kind_gated]
        return Module(
            "<trustgate aggregate>",
            f"package {_AGGREGATE_PACKAGE}\n\nfindings := {gathered(self.rules)}\n\n"
            f"others := {gathered(others)}\n",
        )

    def _queried(self, package: str) -> tuple[str, ...]:
        rules = self.rules[package]
        return (*rules, EXCEPTION_RULE) if package in self.exceptions else rules

    def drop_spare(self) -> None:
        """Drop the compile-time engine now, in the thread that made it.

        For policies evaluated only on other threads: otherwise the engine
        lives until the policy is collected, perhaps by a garbage collection
        on another thread, and regorus engines may not be dropped there.
        """
        spare, self._spare = self._spare, None
        if spare is not None and spare[:2] != (os.getpid(), threading.get_ident()):
            self._spare = spare  # not ours to drop: keep it rather than crash
        del spare

    def evaluator(self) -> RegoEvaluator:
        """An engine for the calling thread (and process)."""
        spare = self._spare
        if spare is not None and spare[:2] == (os.getpid(), threading.get_ident()):
            self._spare = None
            aggregate = self.aggregate
            spare[2].add_policy(aggregate.path, aggregate.text)
            return RegoEvaluator(self, engine=spare[2])
        # Another thread: leave the spare where it is. An engine may only be dropped on the
        # thread that made it (regorus engines are unsendable).
        return RegoEvaluator(self)


class RegoEvaluator:
    """One regorus engine; use it from one thread only."""

    def __init__(self, policy: RegoPolicy, *, engine: Any = None) -> None:
        self.policy = policy
        self._engine = engine or _new_engine((*policy.modules, policy.aggregate), policy.data, policy.rego_v0)
        # Never evaluated: what replaces an engine a panic broke (a clone costs ~5 us, compiling ~170 ms,
        # which crafted inputs could otherwise make every request pay).
        self._pristine = self._engine.clone()

    def evaluate(self, obj: Mapping[str, Any] | Sequence[Any]) -> list[RawFinding]:
        """Evaluate every finding rule against `obj` as `input` (a list for conftest's --combine).

        One call evaluates every rule (the aggregate). When that call fails, the
        rules are evaluated one by one, so that one rule failing at run time
        does not hide what the others find (ADR 1).

        Raises:
            RuleEvaluationError: one or more rules fail at run time (e.g. conflicting
                values); it holds what every other rule found, and names each failing
                rule's package, rule and policy file and place.
            PolicyError: `obj` holds a lone surrogate or an integer regorus would round (see
                `refuse_unevaluable`), or the
                engine refuses the input itself.
        """
        policy = self.policy
        if not policy.rules:
            return []
        refuse_unevaluable(obj)
        packages: Iterable[str] = policy.rules
        rule = "findings"
        if policy.kind_gated and not _of_kinds(obj, policy.gating_kinds, policy.gating_kind_groups):
            # The kind-gated packages find nothing here: evaluate the others, if any.
            packages = [p for p in policy.rules if p not in policy.kind_gated]
            if not packages:
                return []
            rule = "others"
        self._set_input(obj)
        failures: list[RuleFailure] = []
        try:
            result = json.loads(self._engine.eval_rule_as_json(f"data.{_AGGREGATE_PACKAGE}.{rule}"))
        except ENGINE_ERRORS:
            result = _UNDEFINED  # some rule failed: ask one by one to find which, and keep the others
        except BaseException as e:
            if not is_engine_panic(e):
                raise
            self._renew(obj)  # the panic broke this engine; the rules are asked one by one below
            result = _UNDEFINED
        if result != _UNDEFINED:
            values: dict[str, dict[str, Any]] = result
        else:  # some rule is undefined (a complete rule with no value) or failed: ask one by one
            values = {}
            for package in packages:
                values[package] = {}
                for name in policy._queried(package):
                    try:
                        raw = json.loads(self._engine.eval_rule_as_json(f"data.{package}.{name}"))
                    except ENGINE_ERRORS as e:
                        failures.append(RuleFailure(package, name, clean_engine_error(e)))
                        continue
                    except BaseException as e:
                        if not is_engine_panic(e):
                            raise
                        failures.append(RuleFailure(package, name, panic_text(e)))
                        self._renew(obj)
                        continue
                    if raw != _UNDEFINED:
                        values[package][name] = raw
        out: list[RawFinding] = []
        for package, by_rule in values.items():
            # A failed `exception` waives nothing: its package's findings stand (and the failure is reported).
            exempt = _exempted(by_rule.get(EXCEPTION_RULE))
            for rule_name, messages in by_rule.items():
                if rule_name == EXCEPTION_RULE:
                    continue
                if isinstance(messages, bool):  # `deny if {...}` / `deny := true`
                    messages = [f"{package}.{rule_name}"] if messages else []
                elif not isinstance(messages, list):
                    messages = [messages]
                waived = ""
                name = exception_name(rule_name)
                if name in exempt:  # conftest: data.<package>.exception[_][_] == "<name>"
                    waived = f"data.{package}.exception[_][_] == {json.dumps(name)}"
                for m in messages:
                    finding = _normalise(package, rule_name, m)
                    out.append(dataclasses.replace(finding, exception=waived) if waived else finding)
        if failures:
            raise RuleEvaluationError(failures, out)
        return out

    def _set_input(self, obj: Any) -> None:
        try:
            self._engine.set_input(obj)
        except ENGINE_ERRORS as e:
            raise PolicyError(f"policy evaluation failed: {clean_engine_error(e)}") from e
        except BaseException as e:
            if not is_engine_panic(e):
                raise
            self._renew(None)
            raise PolicyError(f"policy evaluation failed: {panic_text(e)}") from e

    def _renew(self, obj: Any) -> None:
        """A new engine in place of one a panic left broken, with `obj` as input (when given)."""
        self._engine = self._pristine.clone()
        if obj is not None:
            self._set_input(obj)

    def run_tests(self) -> list[TestResult]:
        """Evaluate every `test_*` rule; a test passes when its value is `true`."""
        results = []
        module_of = _module_of_package(self.policy.modules)
        for package, names in self.policy.tests.items():
            for name in names:
                started = time.perf_counter()
                error = ""
                try:
                    value = json.loads(self._engine.eval_rule_as_json(f"data.{package}.{name}"))
                    passed = value is True
                    if not passed:
                        error = "undefined" if value == _UNDEFINED else f"evaluated to {json.dumps(value)}"
                except RuntimeError as e:
                    passed = False
                    error = clean_engine_error(e)
                except BaseException as e:
                    if not is_engine_panic(e):
                        raise
                    passed = False
                    error = panic_text(e)
                    self._renew(None)
                results.append(
                    TestResult(
                        package=package,
                        name=name,
                        passed=passed,
                        duration_ms=(time.perf_counter() - started) * 1000,
                        error=error,
                        file=module_of.get(package, ""),
                    )
                )
        return results


def _of_kinds(obj: Any, kinds: frozenset[str], kind_groups: Mapping[str, frozenset[str]]) -> bool:
    """`obj` is an object whose `kind` is one of `kinds` (as Rego's `input.kind in kinds` holds),
    or one of `kind_groups` whose apiVersion names one of its groups (`k8s.api_group`)."""
    kind = obj.get("kind") if isinstance(obj, Mapping) else None
    if not isinstance(kind, str):
        return False
    if kind in kinds:
        return True
    groups = kind_groups.get(kind)
    if groups is None:
        return False
    group = api_group(obj.get("apiVersion"))
    return group is not None and group in groups


def _exempted(value: Any) -> set[str]:
    """The rule names a conftest `exception` value lists (`exception[_][_]`)."""
    names: set[str] = set()
    outer = value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else ()
    for rules in outer:
        inner = rules.values() if isinstance(rules, Mapping) else rules if isinstance(rules, list) else ()
        names.update(r for r in inner if isinstance(r, str))
    return names


_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)", re.MULTILINE)


def _module_of_package(modules: Sequence[Module]) -> dict[str, str]:
    out: dict[str, str] = {}
    for module in modules:
        match = _PACKAGE.search(module.text)
        if match:
            out.setdefault(match.group(1), module.path)
    return out


_KNOWN_KEYS = ("msg", "message", "rule", "id", "fix", "path", "details")


def _normalise(package: str, rule_name: str, message: Any) -> RawFinding:
    default_id = f"{package}.{rule_name}"
    if isinstance(message, str):
        return RawFinding(package, rule_name, default_id, message)
    if not isinstance(message, Mapping):
        return RawFinding(package, rule_name, default_id, json.dumps(message, sort_keys=True))
    text = message.get("msg", message.get("message"))
    if not isinstance(text, str):
        text = json.dumps(message, sort_keys=True)
    rule = message.get("rule", message.get("id"))
    fix = message.get("fix")
    raw_path = message.get("path")
    path: JsonPath = ()
    if isinstance(raw_path, list) and all(
        isinstance(p, str | int) and not isinstance(p, bool) for p in raw_path
    ):
        path = tuple(raw_path)
    elif isinstance(raw_path, str) and raw_path:
        path = tuple(
            int(p) if p.isdigit() else p for p in raw_path.replace("[", ".").replace("]", "").split(".")
        )
    metadata = {k: v for k, v in message.items() if k not in _KNOWN_KEYS}
    details = message.get("details")
    if isinstance(details, Mapping):
        metadata.setdefault("details", dict(details))
    return RawFinding(
        package=package,
        rule_name=rule_name,
        rule=rule if isinstance(rule, str) and rule else default_id,
        message=text,
        fix=fix if isinstance(fix, str) else "",
        path=path,
        metadata=metadata,
    )
