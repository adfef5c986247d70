"""Gatekeeper ConstraintTemplates and Constraints, evaluated as Gatekeeper does.

Owns: reading templates (`templates.gatekeeper.sh` v1, v1beta1, v1alpha1)
and constraints (`constraints.gatekeeper.sh`, any generated kind),
validating parameters against the template's `openAPIV3Schema`, the
review Gatekeeper gives a template (`input.review` in the AdmissionRequest
shape, `input.parameters`), `data.inventory`, match semantics (kinds, scope,
namespaces, excludedNamespaces, labelSelector, namespaceSelector, name; for
the gate, also of a manifest that names no namespace yet, see `Placement`) and
`enforcementAction`, Gatekeeper's `Config` namespace exclusions per process
(`ProcessExclusions`), and ExpansionTemplates (`expansion.gatekeeper.sh`: the
Pod a Deployment or CronJob would create is judged as Gatekeeper judges it,
and its violations are reported on the parent with `[Implied by <name>]`).
Leaves out: what a violation means for the verdict (the gate applies modes
and exceptions), where Rego runs (an `Engine`), CEL and mutation.

How templates share one engine without clashing: each template's package is
renamed to `trustgate_gk_t.<kind>`, its libs (`package lib.x`) to
`trustgate_gk_t.<kind>.lib.x`, and its `data.lib` references follow; this is
what Gatekeeper's own rewriter does with other names. As in Gatekeeper, a
template may read `data.inventory` and its libs and no other data. One
generated rule evaluates every matching constraint for a document in a
single engine call, each with `with input as {"review": ..., "parameters": ...}`.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustgate import yamlio
from trustgate.config import Limits, builtin_policy_dir
from trustgate.errors import InputError, PolicyError
from trustgate.manifests import loader
from trustgate.model import Mode
from trustgate.policy import rego_text
from trustgate.policy.engine import UNDEFINED, EmbeddedEngine, Engine
from trustgate.policy.rego import Module

TEMPLATE_GROUP = "templates.gatekeeper.sh"
TEMPLATE_VERSIONS = ("v1", "v1beta1", "v1alpha1")
CONSTRAINT_GROUP = "constraints.gatekeeper.sh"
EXPANSION_GROUP = "expansion.gatekeeper.sh"
EXPANSION_VERSIONS = ("v1alpha1", "v1beta1")
CONFIG_GROUP = "config.gatekeeper.sh"
CONFIG_NAME = "config"  # Gatekeeper reconciles only the Config of this name, in its own namespace
# Gatekeeper's own namespace (util.GetNamespace: POD_NAMESPACE, else this), whose `config` it reads.
DEFAULT_NAMESPACE = "gatekeeper-system"
# What `processes: ["*"]` excludes from (Gatekeeper's pkg/controller/config/process `allProcesses`).
PROCESSES = ("audit", "webhook", "mutation-webhook", "sync")
MAX_EXPANSION_DEPTH = 30  # Gatekeeper's maxRecursionDepth; a guard against cycles
TARGET = "admission.k8s.gatekeeper.sh"
# A ConstraintTemplate annotated `trustgate.dev/pod-templates: judge` reads the pods of any kind
# through a PodTemplate (the bundled Pod Security port does): the gate hands its constraints each
# pod template of a custom workload that no path of theirs reaches (`gate.gatekeeper_check`).
POD_TEMPLATES_ANNOTATION = "trustgate.dev/pod-templates"
ACTIONS: Mapping[str, Mode] = {"deny": Mode.ENFORCE, "warn": Mode.WARN, "dryrun": Mode.AUDIT}

_TEMPLATE_ROOT = "trustgate_gk_t"
_PARAMS_ROOT = "trustgate_gk_params"
_AGGREGATE = "trustgate_gk"
ENGINES = ("rego", "cel", "both")  # which code of a template with Rego and CEL runs
FINDINGS_RULE = f"data.{_AGGREGATE}.findings"
_PACKAGE_LINE = re.compile(r"^(?P<indent>[ \t]*)package[ \t]+(?P<name>[\w.]+)", re.MULTILINE)
_VIOLATION = re.compile(r"^[ \t]*violation[ \t]*(\[|contains\b)", re.MULTILINE)


# -- the objects ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Template:
    """One ConstraintTemplate, ready to compile."""

    name: str
    kind: str  # the constraint kind it defines, e.g. K8sAllowedRepos
    file: str
    line: int
    rego: str = ""  # "" when unsupported
    rego_line: int = 1  # the file line the Rego starts on
    libs: tuple[tuple[str, int], ...] = ()  # (text, first line)
    schema: Mapping[str, Any] | None = None  # openAPIV3Schema of `parameters`
    unsupported: str = ""  # why trustgate cannot evaluate it (e.g. no code for the admission target)
    cel: Mapping[str, Any] | None = None  # the K8sNativeValidation source (gatekeeper_cel runs it)
    cel_path: str = ""  # where that source is, e.g. `spec.targets[0].code[0].source.`
    # Its constraints' parameters are pruned by the API server to what the schema declares: a v1
    # template, or any with `legacySchema: false` (v1beta1 and v1alpha1 default to true).
    prunes: bool = False
    pod_templates: bool = False  # annotated POD_TEMPLATES_ANNOTATION: judge

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def package(self) -> str:
        return f"{_TEMPLATE_ROOT}.{_ident(self.kind)}"

    @property
    def uses_inventory(self) -> bool:
        """Its Rego (or a lib) reads `data.inventory`, in whatever form (`data["inventory"]` too)."""
        texts = [self.rego, *(text for text, _ in self.libs)]
        return any("inventory" in rego_text.data_roots(t) for t in texts)

    def modules(self) -> list[Module]:
        """The template's Rego with its packages and `data.lib` references renamed.

        Raises:
            PolicyError: a lib is not in a `lib.` package, or the Rego reads data
                other than `data.inventory` and its libs.
        """
        if self.unsupported or not self.rego:
            return []
        main = _PACKAGE_LINE.search(self.rego)
        if main is None:
            raise PolicyError(f"template {self.name}: the Rego has no package", where=self.where)
        original = main.group("name")
        out = []
        sources = [(self.rego, self.rego_line, True), *((t, ln, False) for t, ln in self.libs)]
        for number, (text, first_line, is_main) in enumerate(sources):
            found = _PACKAGE_LINE.search(text)
            if found is None:
                raise PolicyError(
                    f"template {self.name}: a lib has no package", where=f"{self.file}:{first_line}"
                )
            name = found.group("name")
            if is_main:
                new_name = self.package
            elif name == "lib" or name.startswith("lib."):
                new_name = f"{self.package}.{name}"
            else:
                raise PolicyError(
                    f"template {self.name}: lib package {name!r} must start with `lib.`",
                    where=f"{self.file}:{first_line}",
                    hint="Gatekeeper requires libs in packages under `lib`",
                )
            text = text[: found.start()] + f"{found.group('indent')}package {new_name}" + text[found.end() :]
            text = rego_text.dotted(text)  # so that `data["lib"]` is renamed with `data.lib`
            text = re.sub(r"(?<![\w.])data\.lib\b", f"data.{self.package}.lib", text)
            if original != "lib" and not original.startswith("lib."):
                text = re.sub(rf"(?<![\w.])data\.{re.escape(original)}\b", f"data.{self.package}", text)
            code = rego_text.code(text)
            for ref in rego_text.DATA_REF.finditer(code):
                if ref.group("name") not in ("inventory", _TEMPLATE_ROOT):
                    raise PolicyError(
                        f"template {self.name}: the Rego reads data.{ref.group('name')}",
                        where=f"{self.file}:{first_line + code.count(chr(10), 0, ref.start())}",
                        hint="Gatekeeper gives templates only data.inventory and their libs (data.lib)",
                    )
            for ref in rego_text.DATA_ROOT.finditer(code):  # `data[x]`, `d := data`: what it reads is unknown
                raise PolicyError(
                    f"template {self.name}: the Rego reads `data` other than as data.inventory or data.lib",
                    where=f"{self.file}:{first_line + code.count(chr(10), 0, ref.start())}",
                    hint="Gatekeeper refuses data references that do not start with a name: "
                    'write data.inventory or data["inventory"]',
                )
            # Blank lines in front keep regorus' line numbers equal to the file's.
            path = self.file if is_main else f"{self.file} (lib {number})"
            compat = v0_compat(text, file=self.file, first_line=first_line)
            out.append(Module(path, "\n" * max(0, first_line - 1) + compat))
        if not _VIOLATION.search(self.rego):
            raise PolicyError(
                f"template {self.name}: the Rego defines no `violation` rule",
                where=f"{self.file}:{self.rego_line}",
                hint='Gatekeeper templates report with `violation[{"msg": msg}] { ... }`',
            )
        return out


# Rego v0 lexemes, for `v0_compat`: what is code, what is a string or a comment.
_TOKEN = re.compile(
    r"(?P<nl>\n)|(?P<ws>[ \t\r]+)|(?P<comment>#[^\n]*)"
    r'|(?P<string>"(?:\\.|[^"\\\n])*")|(?P<raw>`[^`]*`)'
    r"|(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<ident>[A-Za-z_]\w*)"
    r"|(?P<punct>:=|==|!=|<=|>=|[{}()\[\],;:.=<>+\-*/%&|!])"
)
_OPENERS = {"{": "}", "(": ")", "[": "]"}
_KEYWORDS = frozenset(
    ("not", "some", "with", "as", "else", "if", "in", "contains", "every", "default", "import", "package")
)
# Keywords that continue a rule (`p contains x`, `if {`, `} else = y {`) rather than start one.
_HEAD_KEYWORDS = frozenset(("if", "contains", "else", "in", "as"))
# Of those, the ones Rego v0 reads as keywords only when imported (`future.keywords.<name>`,
# `future.keywords`, `rego.v1`): otherwise a statement that starts with one defines a rule of that name.
_IMPORTED_KEYWORDS = frozenset(("if", "contains", "in"))
_KEYWORD_IMPORT = re.compile(r"^[ \t]*import[ \t]+(?:future\.keywords(?:\.(?P<name>\w+))?|rego\.v1)\b", re.M)
# Tokens after which a rule head cannot be complete: the next line continues it.
_HEAD_CONTINUES = frozenset(
    (":=", "=", "==", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/", "%", "&", "|", ",", ".")
)


@dataclass(slots=True)
class _Open:
    """An open bracket in `v0_compat`: which, and whether it is a rule body (a `{` that is no literal)."""

    char: str
    body: bool = False
    comprehension: bool = False  # a `|` at its level: what follows is a query, as in a body


def v0_compat(text: str, *, file: str = "<rego>", first_line: int = 1) -> str:
    """Rego v0 that OPA accepts, in the form regorus also parses; line numbers are kept.

    Two v0 forms regorus reads differently from OPA: a rule with several
    bodies (`p { a } { b }`, which regorus takes for `else`) becomes one rule
    per body on the same lines, and a line that starts with `(` after a
    complete expression in a query (which regorus takes for a call) gets the
    previous expression ended with `;`. The text is read as Rego lexemes, so a
    comment or a string holding `{`, `}` or `#` is never taken for code.

    Args:
        text: the module's Rego.
        file: where it is from, for errors.
        first_line: the file line `text` starts on, for errors.

    Text that is no Rego (an unterminated string, an unbalanced bracket) is
    returned as it is, for the engine to refuse with its own message.

    Raises:
        PolicyError: a further body belongs to a rule whose head spans lines
            or that has an `else`: rewriting it would be a guess, and regorus
            would read the body as an `else`.
    """
    try:
        return _v0_compat(text, file, first_line)
    except _NotRego:
        return text


class _NotRego(Exception):
    """`v0_compat` met text that does not lex or nest as Rego: the engine reports it."""


def _v0_compat(text: str, file: str, first_line: int) -> str:
    def refuse(message: str, offset: int, hint: str = "") -> PolicyError:
        return PolicyError(
            f"cannot normalise the template's Rego v0 for the embedded engine: {message}",
            where=f"{file}:{first_line + text.count(chr(10), 0, offset)}",
            hint=hint
            or "write each body of a rule with several as a rule of its own, with its head on one line",
        )

    imported: set[str] = set()
    for found in _KEYWORD_IMPORT.finditer(rego_text.code(text)):
        imported |= {found.group("name")} if found.group("name") else set(_IMPORTED_KEYWORDS)

    edits: list[tuple[int, int, str]] = []  # (start, end, replacement)
    stack: list[_Open] = []
    statement: int | None = None  # offset of the current top-level statement's first token
    head_end: int | None = None  # offset of its first body's `{`
    has_else = False
    directive = False  # `package` or `import`: ends with its line
    ended = True  # the statement is complete unless the next token continues it
    last: tuple[str, str, int, int] | None = None  # the previous code token: (kind, text, start, end)
    last_closed_body = False  # the previous code token is the `}` of a rule body
    line_start = True  # no code token yet on this line
    every_depth: int | None = None  # the depth of an `every` whose query's `{` is still to come
    position = 0
    while position < len(text):
        token = _TOKEN.match(text, position)
        if token is None:  # an unterminated string, a character Rego has not
            raise _NotRego
        kind, value, start = str(token.lastgroup), token.group(), position
        position = token.end()
        if kind == "nl":
            line_start = True
            if not stack:
                ended = ended or directive or last is None or last[1] not in _HEAD_CONTINUES
                directive = False
            continue
        if kind in ("ws", "comment"):
            continue
        if (
            line_start
            and value == "("
            and last is not None
            and (
                last[0] in ("number", "string", "raw")
                or last[1] in (")", "]")
                or (last[0] == "ident" and last[1] not in _KEYWORDS)
            )
            and stack
            and (stack[-1].body or stack[-1].comprehension)
        ):
            edits.append((last[3], last[3], ";"))
        line_start = False
        top = not stack
        if top and ended and value in _IMPORTED_KEYWORDS and value not in imported:
            # A rule named `if`, `in` or `contains` (v0 without the import): which rule its bodies
            # belong to would be a guess, and the engine may read the name as the keyword.
            raise refuse(
                f"a statement starts with `{value}`, which in this module (no `import "
                f"future.keywords.{value}`) is the name of a rule",
                start,
                hint=f"rename the rule: `{value}` is a keyword in Rego v1 and with the import",
            )
        if top and ended and kind == "ident" and value not in _HEAD_KEYWORDS:  # a name starts one
            statement, head_end, has_else, ended = start, None, False, False
            directive = value in ("package", "import")
        elif top:
            ended = False
        if top and value == "else":
            has_else = True
        if value in _OPENERS:
            is_body = False
            if top and not directive and value == "{":
                if last_closed_body:  # a further body of the same rule
                    if has_else:
                        raise refuse("a further body after an `else` chain", start)
                    if statement is None or head_end is None:
                        raise refuse("a body without a rule head", start)
                    head = text[statement:head_end].rstrip()
                    if "\n" in head:
                        raise refuse("a further body of a rule whose head spans lines", start)
                    edits.append((start, start + 1, f"{head} {{"))
                    is_body = True
                else:
                    # After an operator (`=`, `:=`, `contains`) a `{` opens an object or set literal.
                    is_body = last is None or not (
                        (last[0] == "punct" and last[1] not in (")", "]", "}"))
                        or last[1] in ("contains", "in")
                    )
                    if is_body and head_end is None:
                        head_end = start
            elif (
                value == "{"
                and every_depth == len(stack)
                and last is not None
                and (last[0] != "punct" or last[1] in (")", "]", "}"))
                and last[1] != "in"
            ):
                # The query of `every x in xs {`: a `{` after its domain (one right after `in` opens
                # a literal domain, `every x in {1, 2} {`).
                is_body, every_depth = True, None
            stack.append(_Open(value, body=is_body))
            last_closed_body = False
        elif value in (")", "]", "}"):
            if not stack or _OPENERS[stack[-1].char] != value:
                raise _NotRego
            closed = stack.pop()
            last_closed_body = not stack and closed.body
            if last_closed_body:
                ended = True
        else:
            if value == "|" and stack:
                stack[-1].comprehension = True
            if value == "every" and stack and (last is None or last[1] != "."):  # not `input.every`
                every_depth = len(stack)
            last_closed_body = False
        last = (kind, value, start, position)
    if stack:
        raise _NotRego
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


@dataclass(frozen=True, slots=True)
class Selector:
    """A Kubernetes label selector (matchLabels and matchExpressions, ANDed)."""

    labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (key, operator, values)

    def matches(self, labels: Mapping[str, Any]) -> bool:
        for key, value in self.labels:
            if labels.get(key) != value:
                return False
        for key, operator, values in self.expressions:
            present = key in labels
            if operator == "In" and not (present and labels[key] in values):
                return False
            if operator == "NotIn" and present and labels[key] in values:
                return False
            if operator == "Exists" and not present:
                return False
            if operator == "DoesNotExist" and present:
                return False
        return True


class NamespaceUnknownError(InputError):
    """A namespaceSelector needs a Namespace object that is not in the inventory.

    Caught by `ConstraintEvaluator.matching`, which fails closed on it; `namespace` names it.
    """

    def __init__(self, namespace: str) -> None:
        super().__init__(
            f"Namespace {namespace!r} is not in the change set or the Gatekeeper inventory",
            hint="give the Namespace via --inventory (manifests.gatekeeper.inventory) or the change set",
        )
        self.namespace = namespace


NamespaceUnknown = NamespaceUnknownError  # the name callers and tests knew


class Placement(enum.Enum):
    """Where an object reviewed without a namespace is taken to be (`Match.matches`).

    gator, and Gatekeeper's webhook, see the namespace the object is created in: none means
    cluster-scoped. A manifest at the gate is not yet created: `kubectl -n`, a Flux
    targetNamespace or an Argo CD destination puts a namespaced kind's object that names no
    namespace in one, which the gate cannot know, so it assumes one the constraint selects.
    """

    AS_REVIEWED = "as-reviewed"  # gator, admission, and any object with a namespace
    ANY_NAMESPACE = "any-namespace"  # the gate: a namespaced kind without metadata.namespace
    UNKNOWN_SCOPE = "unknown-scope"  # the gate, a kind of unknown scope: either of the above


@dataclass(frozen=True, slots=True)
class Match:
    """`spec.match` of a constraint (Gatekeeper's match semantics)."""

    kinds: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = ()  # (apiGroups, kinds)
    scope: str = "*"
    namespaces: tuple[str, ...] = ()
    excluded_namespaces: tuple[str, ...] = ()
    label_selector: Selector | None = None
    namespace_selector: Selector | None = None
    name: str = ""
    source: str = "All"  # All | Original | Generated (objects made by an ExpansionTemplate)

    def matches(
        self,
        obj: Mapping[str, Any],
        namespace: str,
        namespaces: Mapping[str, Mapping[str, Any]],
        *,
        generated: bool = False,
        placement: Placement = Placement.AS_REVIEWED,
    ) -> bool:
        """Whether the constraint applies to `obj` in `namespace` ("" when cluster-scoped).

        `generated` says that `obj` is the resultant of an ExpansionTemplate. `placement` says
        where an object without a namespace may be (see `Placement`): in any namespace, the
        scope Namespaced matches it and so do namespaces, excludedNamespaces and a
        namespaceSelector, since it may be created in a namespace they select (fail closed);
        the scope Cluster matches it only when its kind may be cluster-scoped.

        Raises:
            NamespaceUnknownError: a namespaceSelector needs a Namespace not in `namespaces`.
        """
        if self.source == ("Original" if generated else "Generated"):
            return False
        api_version = obj.get("apiVersion")
        group = api_version.rpartition("/")[0] if isinstance(api_version, str) else ""
        kind = obj.get("kind")
        metadata = obj.get("metadata")
        metadata = metadata if isinstance(metadata, Mapping) else {}
        is_namespace = is_namespace_kind(group, kind)
        if self.kinds and not any(
            (not kinds or "*" in kinds or kind in kinds) and (not groups or "*" in groups or group in groups)
            for groups, kinds in self.kinds
        ):
            return False
        # An object without a namespace that may be created in one is in one here; with `own`
        # left empty, the namespace conditions below then select it, as they select a
        # cluster-scoped object (Gatekeeper's namespacesMatch and excludedNamespacesMatch).
        unplaced = not namespace and not is_namespace and placement is not Placement.AS_REVIEWED
        cluster = is_namespace or (not namespace and placement is not Placement.ANY_NAMESPACE)
        if self.scope == "Cluster" and not cluster:
            return False
        if self.scope == "Namespaced" and (is_namespace or not (namespace or unplaced)):
            return False
        own = str(metadata.get("name", "")) if is_namespace else namespace
        if self.namespaces and own and not any(_wildcard(p, own) for p in self.namespaces):
            return False
        if self.excluded_namespaces and own and any(_wildcard(p, own) for p in self.excluded_namespaces):
            return False
        if self.label_selector is not None and not self.label_selector.matches(_labels(metadata)):
            return False
        if self.namespace_selector is not None:
            if is_namespace:
                if not self.namespace_selector.matches(_labels(metadata)):
                    return False
            elif namespace:
                ns_obj = namespaces.get(namespace)
                if ns_obj is None:
                    raise NamespaceUnknownError(namespace)
                ns_meta = ns_obj.get("metadata")
                if not self.namespace_selector.matches(
                    _labels(ns_meta if isinstance(ns_meta, Mapping) else {})
                ):
                    return False
        if not self.name:
            return True
        # Gatekeeper's namesMatch: the name, or else the generateName an object created with one
        # (its name is empty at admission) carries, as wildcard.MatchesGenerateName reads it.
        generate = metadata.get("generateName")
        return _wildcard(self.name, str(metadata.get("name", ""))) or (
            isinstance(generate, str) and _wildcard_generate_name(self.name, generate)
        )


@dataclass(frozen=True, slots=True)
class Constraint:
    """One constraint: a template kind, where it applies, its parameters, its action."""

    kind: str
    name: str
    file: str
    line: int
    match: Match = field(default_factory=Match)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    action: Mode | None = None  # None: enforcementAction unset or "" (Gatekeeper's default, deny)
    action_name: str = "deny"
    # What the binding of the ValidatingAdmissionPolicy Gatekeeper generates does ("" when there is
    # none): a `scoped` constraint's action for `vap.k8s.io` (see `_may_generate_vap`). The API server
    # enforces it, so the Config's webhook exclusions do not reach it.
    vap_action_name: str = ""

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class Violation:
    """One message from a constraint about one object."""

    constraint: Constraint
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)
    disagreement: bool = False  # engine `both`: Rego and CEL disagree on this constraint


@dataclass(frozen=True, slots=True)
class ApplyTo:
    """One `spec.applyTo` entry of an ExpansionTemplate (exact names, as Gatekeeper compares).

    Gatekeeper's `match.ApplyTo` has groups, versions and kinds only: which operations expand is
    not the template's to say (`_APPLY_TO_FIELDS`).
    """

    groups: tuple[str, ...]
    versions: tuple[str, ...]
    kinds: tuple[str, ...]

    def matches(self, group: str, version: str, kind: str, operation: str = "CREATE") -> bool:
        return (
            group in self.groups
            and version in self.versions
            and kind in self.kinds
            and operation in _EXPANDED_OPERATIONS
        )


_EXPANDED_OPERATIONS = ("CREATE", "UPDATE")
# An ExpansionTemplate's applyTo entries (match.ApplyTo). Any other key, such as `operations`, is
# refused: the API server prunes it from the structural CRD (`kubectl apply` refuses it), so it
# would change nothing in the cluster, and honouring it here would skip expansion the cluster does.
_APPLY_TO_FIELDS = ("groups", "versions", "kinds")


@dataclass(frozen=True, slots=True)
class ExpansionTemplate:
    """An ExpansionTemplate: which objects generate which, from which field."""

    name: str
    file: str
    line: int
    apply_to: tuple[ApplyTo, ...]
    source: tuple[str, ...]  # templateSource split on ".", e.g. ("spec", "template")
    generated: tuple[str, str, str]  # generatedGVK: (group, version, kind)
    action: Mode | None = None  # enforcementAction override for the resultant's violations
    action_name: str = ""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def api_version(self) -> str:
        group, version, _ = self.generated
        return f"{group}/{version}" if group else version


@dataclass(frozen=True, slots=True)
class Resultant:
    """An object an ExpansionTemplate makes from a parent (Gatekeeper's "mock resource").

    `path` is where it came from inside the outermost parent, so that a
    finding can point at the parent's own lines.
    """

    obj: dict[str, Any]
    template: ExpansionTemplate
    path: tuple[str | int, ...]


class ExpansionError(Exception):
    """An object matched by an ExpansionTemplate cannot be expanded (Gatekeeper rejects it too)."""


@dataclass(frozen=True, slots=True)
class Unsupported:
    """A document in the Gatekeeper paths that is a policy trustgate would not enforce."""

    file: str
    line: int
    api_version: str
    kind: str
    name: str
    reason: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class ProcessExclusions:
    """The namespaces Gatekeeper's `Config` (config.gatekeeper.sh) takes away from its processes.

    Follows Gatekeeper's `process.Excluder`: `processes: ["*"]` is every process, a pattern is
    a prefix (`kube-*`) or suffix (`*-system`) wildcard, and a Namespace object is judged by its
    own name, anything else by its namespace.
    """

    file: str
    line: int
    name: str  # <namespace>/<name>
    excluded: Mapping[str, tuple[str, ...]]  # process -> namespace patterns

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def excluding(self, process: str, review: Mapping[str, Any]) -> str | None:
        """The pattern that excludes the reviewed object from `process`, or None."""
        patterns = self.excluded.get(process, ())
        if not patterns:
            return None
        obj = review.get("object")
        namespace: Any = review.get("namespace") or ""
        if reviews_namespace(review):
            namespace = _get(obj, "metadata", "name") if isinstance(obj, Mapping) else review.get("name")
        if not isinstance(namespace, str):
            return None
        return next((p for p in patterns if _wildcard(p, namespace)), None)


@dataclass(slots=True)
class Library:
    """Everything read from Gatekeeper paths."""

    templates: dict[str, Template] = field(default_factory=dict)  # by constraint kind
    constraints: list[Constraint] = field(default_factory=list)
    expansions: list[ExpansionTemplate] = field(default_factory=list)
    foreign: list[Unsupported] = field(default_factory=list)  # other engines' policies: not enforced
    skipped: dict[str, int] = field(default_factory=dict)  # "apiVersion kind" -> count (suites, samples)
    notes: list[str] = field(default_factory=list)  # e.g. a constraint that replaces another
    exclusions: ProcessExclusions | None = None  # from Gatekeeper's Config

    @property
    def unsupported(self) -> list[Template]:
        return [t for t in self.templates.values() if t.unsupported]


# -- reading -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Doc:
    obj: Mapping[str, Any]
    file: str
    line: int
    tree: Any


def read_objects(path: Path, *, limits: Limits | None = None) -> list[_Doc]:
    """Every YAML/JSON document of a file, or of the files under a directory.

    Raises:
        PolicyError: the path is missing, or a file is unreadable or not YAML.
    """
    return _read_objects(path, limits=limits)[0]


def _read_objects(
    path: Path, *, limits: Limits | None = None, lenient: bool = False
) -> tuple[list[_Doc], list[str]]:
    """`read_objects`; with `lenient`, documents that are not Kubernetes objects (a
    kustomization.yaml without apiVersion) are returned by place instead of raising."""
    limits = limits or Limits()
    others: list[str] = []
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix in loader.MANIFEST_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
    elif path.is_file():
        files = [path]
    else:
        raise PolicyError("no such file or directory", where=str(path), hint="check the Gatekeeper path")
    out: list[_Doc] = []
    for file in files:
        try:
            data = file.read_bytes()
        except OSError as e:
            raise PolicyError(f"cannot read: {e.strerror or e}", where=str(file)) from e
        documents, problems = loader.parse_bytes(data, str(file), limits)
        if lenient:
            others.extend(
                f"{p.source.file}:{p.source.line}"
                for p in problems
                if p.rule == "input/not-a-kubernetes-object"
            )
            problems = [p for p in problems if p.rule != "input/not-a-kubernetes-object"]
        if problems:
            p = problems[0]
            raise PolicyError(p.message, where=f"{p.source.file}:{p.source.line}", hint=p.hint)
        out.extend(_Doc(d.obj, d.source.file, d.source.line, d.tree) for d in documents)
    return out, others


def is_template(obj: Mapping[str, Any]) -> bool:
    api = obj.get("apiVersion")
    return (
        obj.get("kind") == "ConstraintTemplate"
        and isinstance(api, str)
        and api.startswith(f"{TEMPLATE_GROUP}/")
    )


def is_constraint(obj: Mapping[str, Any]) -> bool:
    api = obj.get("apiVersion")
    return isinstance(api, str) and api.startswith(f"{CONSTRAINT_GROUP}/")


def is_expansion(obj: Mapping[str, Any]) -> bool:
    api = obj.get("apiVersion")
    return (
        obj.get("kind") == "ExpansionTemplate"
        and isinstance(api, str)
        and api.startswith(f"{EXPANSION_GROUP}/")
    )


def is_config(obj: Mapping[str, Any]) -> bool:
    api = obj.get("apiVersion")
    return obj.get("kind") == "Config" and isinstance(api, str) and api.startswith(f"{CONFIG_GROUP}/")


def parse_config(obj: Mapping[str, Any], *, file: str, line: int = 1) -> ProcessExclusions:
    """The namespace exclusions of a Gatekeeper `Config` (`spec.match[]`).

    Raises:
        PolicyError: spec.match is not a list of entries with `[]string` excludedNamespaces
            and processes, as the Config CRD's schema requires.
    """
    where = f"{file}:{line}"
    name = f"{_get(obj, 'metadata', 'namespace') or ''}/{_get(obj, 'metadata', 'name') or ''}"
    for part in ("metadata", "spec"):
        # The Config CRD's schema: objects (a `spec: []` would otherwise read as no exclusions).
        if obj.get(part) is not None and not isinstance(obj.get(part), Mapping):
            raise PolicyError(f"Config {name}: {part} must be a mapping, not {obj[part]!r}", where=where)
    excluded: dict[str, list[str]] = {}
    entries = _get(obj, "spec", "match")
    if entries is not None and not isinstance(entries, list):
        raise PolicyError(f"Config {name}: spec.match must be a list, not {entries!r}", where=where)
    for index, entry in enumerate(entries or []):
        if not isinstance(entry, Mapping):
            raise PolicyError(f"Config {name}: spec.match[{index}] must be a mapping", where=where)
        namespaces = string_list(
            entry.get("excludedNamespaces"), f"Config {name}: spec.match[{index}].excludedNamespaces", where
        )
        processes = string_list(
            entry.get("processes"), f"Config {name}: spec.match[{index}].processes", where
        )
        for process in processes:
            for target in PROCESSES if process == "*" else (process,):
                excluded.setdefault(target, []).extend(n for n in namespaces if n not in excluded[target])
    return ProcessExclusions(file, line, name, {k: tuple(v) for k, v in excluded.items()})


# Policies of other engines (and Gatekeeper's own mutators): given as Gatekeeper
# sources they would not be enforced, so they are not skipped like samples are.
_FOREIGN_KINDS: Mapping[str, str] = {
    "admissionregistration.k8s.io/ValidatingAdmissionPolicy": "a ValidatingAdmissionPolicy (CEL)",
    "admissionregistration.k8s.io/ValidatingAdmissionPolicyBinding": "a ValidatingAdmissionPolicy binding",
    "admissionregistration.k8s.io/MutatingAdmissionPolicy": "a MutatingAdmissionPolicy",
    "admissionregistration.k8s.io/MutatingAdmissionPolicyBinding": "a MutatingAdmissionPolicy binding",
    "policy.sigstore.dev/ClusterImagePolicy": "a sigstore policy-controller policy",
}
_FOREIGN_GROUPS: Mapping[str, str] = {
    "kyverno.io": "a Kyverno policy",
    "policies.kyverno.io": "a Kyverno policy",
    "policies.kubewarden.io": "a Kubewarden policy",
    "mutations.gatekeeper.sh": "a Gatekeeper mutator (trustgate does not mutate)",
}


def foreign_policy(obj: Mapping[str, Any]) -> str:
    """What kind of non-Gatekeeper policy `obj` is ("" when it is none)."""
    api, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api, str) or not isinstance(kind, str):
        return ""
    group = api.rpartition("/")[0]
    return _FOREIGN_KINDS.get(f"{group}/{kind}") or _FOREIGN_GROUPS.get(group, "")


def load_library(
    paths: Iterable[Path], *, limits: Limits | None = None, namespace: str = DEFAULT_NAMESPACE
) -> Library:
    """Read templates, constraints and ExpansionTemplates from files and directories.

    Other Kubernetes documents (suites, samples, kustomization.yaml) are
    skipped and counted in `Library.skipped` (not those of the bundled sets); policies of other engines
    (Kyverno, ValidatingAdmissionPolicy, Gatekeeper mutators) are listed in
    `Library.foreign`, since they would silently not be enforced. Templates
    are read first, so a constraint may come before its template. Of
    Gatekeeper's `Config`s, only `<namespace>/config` is applied (`namespace`
    is Gatekeeper's own), as Gatekeeper reconciles only that one.

    Raises:
        PolicyError: a path is unreadable, a template or ExpansionTemplate is
            malformed, two templates define one kind, a constraint names an
            unknown kind, or its parameters do not match the template's schema;
            a Config is malformed, or Gatekeeper's own is given twice with other exclusions.
    """
    docs: list[_Doc] = []
    library = Library()
    # The bundled sets hold their suites and samples beside the constraints: skipping those is no news.
    bundled = (builtin_policy_dir() / "gatekeeper").resolve()

    def count(file: str | Path, key: str, n: int = 1) -> None:
        if not Path(file).resolve().is_relative_to(bundled):
            library.skipped[key] = library.skipped.get(key, 0) + n

    for path in paths:
        found, others = _read_objects(path, limits=limits, lenient=True)
        docs.extend(found)
        if others:  # kustomization.yaml and other files that are no Kubernetes objects
            count(path, "non-Kubernetes document", len(others))
    for doc in docs:
        if is_template(doc.obj):
            template = parse_template(doc.obj, file=doc.file, line=doc.line, tree=doc.tree)
            other = library.templates.get(template.kind)
            if other is not None and other.where != template.where:
                raise PolicyError(
                    f"two templates define the constraint kind {template.kind}: also {other.where}",
                    where=template.where,
                )
            library.templates[template.kind] = template
    seen: dict[str, Constraint] = {}
    expansions: dict[str, ExpansionTemplate] = {}
    for doc in docs:
        if is_expansion(doc.obj):
            expansion = parse_expansion(doc.obj, file=doc.file, line=doc.line)
            if expansion.name in expansions and expansions[expansion.name].where != expansion.where:
                raise PolicyError(
                    f"ExpansionTemplate {expansion.name} is defined twice: also "
                    + expansions[expansion.name].where,
                    where=expansion.where,
                )
            expansions[expansion.name] = expansion
            continue
        if is_template(doc.obj):
            continue
        if is_config(doc.obj):
            _add_config(library, doc, namespace)
            continue
        if not is_constraint(doc.obj):
            reason = foreign_policy(doc.obj)
            api, kind = str(doc.obj.get("apiVersion", "?")), str(doc.obj.get("kind", "?"))
            if reason:
                name = str(_get(doc.obj, "metadata", "name") or "")
                library.foreign.append(Unsupported(doc.file, doc.line, api, kind, name, reason))
            else:
                count(doc.file, f"{api} {kind}")
            continue
        if is_constraint(doc.obj):
            constraint = parse_constraint(doc.obj, library.templates, file=doc.file, line=doc.line)
            if constraint.id in seen:
                # One object per kind and name in the cluster: the last applied stays (a library's
                # samples reuse names), so the later one replaces the earlier, with a note.
                first = seen[constraint.id]
                library.notes.append(
                    f"constraint {constraint.id} is defined more than once; {constraint.file}:"
                    f"{constraint.line} replaces {first.file}:{first.line}, as applying them in order would"
                )
                library.constraints.remove(first)
            seen[constraint.id] = constraint
            library.constraints.append(constraint)
    library.expansions = sorted(expansions.values(), key=lambda e: e.name)
    return library


def _add_config(library: Library, doc: _Doc, namespace: str) -> None:
    """Take a Gatekeeper Config's exclusions, as Gatekeeper would: only `<namespace>/config`
    (config_controller's `CfgKey`); any other is ignored with a note naming it.

    Raises:
        PolicyError: the Config is malformed, or `<namespace>/config` was already given with other
            exclusions (two objects cannot have one namespace and name, and which the cluster holds
            is unknown).
    """
    exclusions = parse_config(doc.obj, file=doc.file, line=doc.line)
    wanted = f"{namespace}/{CONFIG_NAME}"
    if exclusions.name != wanted:
        unplaced = exclusions.name == f"/{CONFIG_NAME}"
        library.notes.append(
            f"Gatekeeper Config {exclusions.name} ({exclusions.where}) is ignored: Gatekeeper reads only "
            f"{wanted}, the Config named {CONFIG_NAME!r} in its own namespace"
            + (
                " (this one names no metadata.namespace: set it, so that where it is applied is known)"
                if unplaced
                else " (manifests.gatekeeper.namespace sets that namespace)"
            )
        )
        return
    if library.exclusions is not None:
        if library.exclusions.excluded == exclusions.excluded:
            # A library checkout repeats it (gatekeeper-library's sync.yaml files): which one the
            # cluster holds changes nothing here.
            library.notes.append(
                f"Gatekeeper Config {wanted} is given more than once ({library.exclusions.where}, "
                f"{exclusions.where}), with the same namespace exclusions"
            )
            return
        raise PolicyError(
            f"Gatekeeper Config {wanted} is given twice, with different namespace exclusions: also "
            f"{library.exclusions.where}",
            where=exclusions.where,
            hint="a cluster holds one object of a namespace and name, and which of the two it would "
            "be is unknown; keep one",
        )
    library.exclusions = exclusions


def parse_expansion(obj: Mapping[str, Any], *, file: str, line: int = 1) -> ExpansionTemplate:
    """Build an `ExpansionTemplate`, with the checks Gatekeeper's `ValidateTemplate` makes.

    Raises:
        PolicyError: an unknown version, no name (or 64 characters or more), no
            templateSource, generatedGVK or applyTo, an applyTo key other than
            groups, versions and kinds, an enforcementAction other
            than deny, warn or dryrun, or a template that expands its own output.
    """
    where = f"{file}:{line}"
    version = str(obj.get("apiVersion", "")).partition("/")[2]
    if version not in EXPANSION_VERSIONS:
        raise PolicyError(
            f"ExpansionTemplate version {version} is not supported",
            where=where,
            hint=f"use {EXPANSION_GROUP}/v1beta1 or v1alpha1",
        )
    name = str(_get(obj, "metadata", "name") or "")
    if not name:
        raise PolicyError("ExpansionTemplate has empty name field", where=where)
    if len(name) >= 64:
        raise PolicyError(f"ExpansionTemplate {name}: the name must be less than 64 characters", where=where)
    label = f"ExpansionTemplate {name}"
    spec = obj.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    source = spec.get("templateSource")
    if not isinstance(source, str) or not source:
        raise PolicyError(f"{label} has empty source field", where=where, hint="set spec.templateSource")
    gvk = spec.get("generatedGVK")
    gvk = gvk if isinstance(gvk, Mapping) else {}
    generated = (str(gvk.get("group") or ""), str(gvk.get("version") or ""), str(gvk.get("kind") or ""))
    if generated == ("", "", ""):
        raise PolicyError(f"{label} has empty generatedGVK field", where=where)
    apply_to = []
    for i, item in enumerate(_items(spec.get("applyTo"), f"{label}: spec.applyTo", where)):
        if not isinstance(item, Mapping):
            raise PolicyError(f"{label}: spec.applyTo entries must be mappings", where=where)
        at = f"{label}: spec.applyTo[{i}]"
        unknown = sorted(str(k) for k in item if k not in _APPLY_TO_FIELDS)
        if unknown:
            raise PolicyError(
                f"{at}: {', '.join(unknown)} is not a field of applyTo (it has groups, versions and kinds)",
                where=where,
                hint="the API server drops fields the ExpansionTemplate CRD does not declare, so it "
                "would change nothing in the cluster: Gatekeeper expands on CREATE and UPDATE whatever "
                "it says; remove it",
            )
        apply_to.append(
            ApplyTo(
                groups=string_list(item.get("groups"), f"{at}.groups", where),
                versions=string_list(item.get("versions"), f"{at}.versions", where),
                kinds=string_list(item.get("kinds"), f"{at}.kinds", where),
            )
        )
    if not apply_to:
        raise PolicyError(f"{label} must specify ApplyTo", where=where)
    if any(
        generated[0] in a.groups and generated[1] in a.versions and generated[2] in a.kinds for a in apply_to
    ):
        raise PolicyError(
            f"{label} generates {'/'.join(generated)}, but also applies to that same kind", where=where
        )
    raw_action = spec.get("enforcementAction")
    action: Mode | None = None
    action_name = ""
    if raw_action:
        action_name = str(raw_action)
        if action_name not in ACTIONS:
            raise PolicyError(
                f"{label}: enforcementAction {raw_action!r} is not deny, warn or dryrun", where=where
            )
        action = ACTIONS[action_name]
    return ExpansionTemplate(
        name=name,
        file=file,
        line=line,
        apply_to=tuple(apply_to),
        source=tuple(source.split(".")),
        generated=generated,
        action=action,
        action_name=action_name,
    )


def expand(
    obj: Mapping[str, Any],
    templates: Sequence[ExpansionTemplate],
    *,
    operation: str = "CREATE",
    path: tuple[str | int, ...] = (),
    depth: int = 0,
) -> list[Resultant]:
    """The objects `obj` generates, as Gatekeeper's expansion system makes them.

    Each template whose applyTo names the object's group, version and kind
    takes the mapping at its templateSource, sets the generated apiVersion
    and kind, the parent's namespace, the name `<parent>-<kind>` in lower
    case and an ownerReference to the parent; resultants are expanded again
    (a CronJob's Job makes a Pod). Resultants come in Gatekeeper's order:
    the deepest first.

    Raises:
        ExpansionError: the source field is missing or not a mapping, or
            expansion nests deeper than Gatekeeper allows.
    """
    if not templates:
        return []
    if depth >= MAX_EXPANSION_DEPTH:
        raise ExpansionError(f"maximum recursion depth of {MAX_EXPANSION_DEPTH} reached")
    api_version = obj.get("apiVersion")
    group, _, version = api_version.rpartition("/") if isinstance(api_version, str) else ("", "", "")
    kind = str(obj.get("kind") or "")
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    parent_name = str(metadata.get("name") or "")
    out: list[Resultant] = []
    for template in templates:
        if not any(a.matches(group, version, kind, operation) for a in template.apply_to):
            continue
        source: Any = obj
        for part in template.source:
            source = source.get(part) if isinstance(source, Mapping) else None
        if not isinstance(source, Mapping):
            raise ExpansionError(
                f"ExpansionTemplate {template.name}: could not find source field "
                f"{'.'.join(template.source)!r} in {kind} {parent_name}"
            )
        resultant: dict[str, Any] = json.loads(json.dumps(source))  # a deep copy, as unstructured is
        raw_meta = resultant.get("metadata")
        meta: dict[str, Any] = dict(raw_meta) if isinstance(raw_meta, Mapping) else {}
        resultant["apiVersion"] = template.api_version
        resultant["kind"] = template.generated[2]
        if metadata.get("namespace"):
            meta["namespace"] = metadata["namespace"]
        suffix = f"-{template.generated[2]}" if template.generated[2] else ""
        meta["name"] = f"{parent_name}{suffix}".lower()
        owners = [o for o in meta.get("ownerReferences") or [] if isinstance(o, Mapping)]
        owner = {"apiVersion": api_version, "kind": kind, "name": parent_name}
        if (
            api_version
            and kind
            and parent_name
            and not any(
                (o.get("apiVersion"), o.get("kind"), o.get("name")) == (api_version, kind, parent_name)
                for o in owners
            )
        ):
            meta["ownerReferences"] = [*owners, owner]
        resultant["metadata"] = meta
        out.append(Resultant(resultant, template, (*path, *template.source)))
    nested: list[Resultant] = []
    for item in out:
        nested.extend(expand(item.obj, templates, operation=operation, path=item.path, depth=depth + 1))
    return [*nested, *out]


def parse_template(obj: Mapping[str, Any], *, file: str, line: int = 1, tree: Any = None) -> Template:
    """Build a `Template` from a ConstraintTemplate object.

    Raises:
        PolicyError: not a ConstraintTemplate, or it lacks the kind or the
            admission target.
    """
    where = f"{file}:{line}"
    if not is_template(obj):
        raise PolicyError(
            f"not a ConstraintTemplate (apiVersion {obj.get('apiVersion')!r}, kind {obj.get('kind')!r})",
            where=where,
            hint=f"expected apiVersion {TEMPLATE_GROUP}/v1 and kind ConstraintTemplate",
        )
    version = str(obj["apiVersion"]).split("/", 1)[1]
    if version not in TEMPLATE_VERSIONS:
        raise PolicyError(f"ConstraintTemplate version {version} is not supported", where=where)
    name = str(_get(obj, "metadata", "name") or "")
    kind = _get(obj, "spec", "crd", "spec", "names", "kind")
    if not isinstance(kind, str) or not kind:
        raise PolicyError(f"template {name or '?'}: spec.crd.spec.names.kind is missing", where=where)
    if name and name != kind.lower():
        raise PolicyError(
            f"template {name}: metadata.name must be the lowercase kind ({kind.lower()})",
            where=where,
            hint="Gatekeeper rejects templates whose name is not the lowercase of spec.crd.spec.names.kind",
        )
    schema = _get(obj, "spec", "crd", "spec", "validation", "openAPIV3Schema")
    _check_schema(schema, name, where)
    pod_templates = _pod_templates(obj, name, where)
    legacy = _get(obj, "spec", "crd", "spec", "validation", "legacySchema")
    prunes = legacy is False or (version == "v1" and legacy is not True)
    targets = _get(obj, "spec", "targets")
    if not isinstance(targets, list):
        raise PolicyError(f"template {name}: spec.targets is missing", where=where)
    for index, target in enumerate(targets):
        if not isinstance(target, Mapping) or target.get("target") != TARGET:
            continue
        base: tuple[str | int, ...] = ("spec", "targets", index)
        rego, libs, rego_path, libs_path = (
            target.get("rego"),
            target.get("libs"),
            (*base, "rego"),
            (*base, "libs"),
        )
        engines = []
        cel_source: Mapping[str, Any] | None = None
        cel_path = ""
        for j, code in enumerate(target.get("code") or []):
            if not isinstance(code, Mapping):
                continue
            engines.append(str(code.get("engine")))
            source = code.get("source")
            if (
                code.get("engine") == "K8sNativeValidation"
                and isinstance(source, Mapping)
                and cel_source is None
            ):
                cel_source, cel_path = source, f"spec.targets[{index}].code[{j}].source."
            if code.get("engine") == "Rego" and isinstance(source, Mapping) and not rego:
                rego, libs = source.get("rego"), source.get("libs")
                rego_path = (*base, "code", j, "source", "rego")
                libs_path = (*base, "code", j, "source", "libs")
        if (not isinstance(rego, str) or not rego.strip()) and cel_source is not None:
            return Template(
                name,
                kind,
                file,
                line,
                schema=_mapping(schema),
                cel=cel_source,
                cel_path=cel_path,
                prunes=prunes,
                pod_templates=pod_templates,
            )
        if not isinstance(rego, str) or not rego.strip():
            reason = (
                f"only {', '.join(engines)} code, which trustgate does not evaluate"
                if engines
                else "no Rego for the admission target"
            )
            return Template(
                name, kind, file, line, schema=_mapping(schema), unsupported=reason, prunes=prunes
            )
        lib_list = []
        for k, lib in enumerate(libs if isinstance(libs, list) else []):
            if isinstance(lib, str):
                lib_list.append((lib, _block_line(tree, (*libs_path, k), line)))
        return Template(
            name=name,
            kind=kind,
            file=file,
            line=line,
            rego=rego,
            rego_line=_block_line(tree, rego_path, line),
            libs=tuple(lib_list),
            schema=_mapping(schema),
            cel=cel_source,
            cel_path=cel_path,
            prunes=prunes,
            pod_templates=pod_templates,
        )
    raise PolicyError(f"template {name}: no target {TARGET}", where=where)


def _pod_templates(obj: Mapping[str, Any], name: str, where: str) -> bool:
    """Whether the template asks for the pod templates of custom workloads (POD_TEMPLATES_ANNOTATION).

    Raises:
        PolicyError: the annotation has another value: a misspelt opt-in would leave those pods
            unjudged (a silent pass).
    """
    annotations = _get(obj, "metadata", "annotations")
    value = annotations.get(POD_TEMPLATES_ANNOTATION) if isinstance(annotations, Mapping) else None
    if value is None:
        return False
    if value != "judge":
        raise PolicyError(
            f"template {name}: annotation {POD_TEMPLATES_ANNOTATION} is {value!r}",
            where=where,
            hint='set it to "judge" (its constraints are then handed the pod templates of custom '
            "workloads as PodTemplates), or remove it",
        )
    return True


def parse_constraint(
    obj: Mapping[str, Any], templates: Mapping[str, Template], *, file: str, line: int = 1
) -> Constraint:
    """Build a `Constraint` and check it against its template.

    Raises:
        PolicyError: no template defines its kind, its match or enforcementAction
            is malformed, or its parameters violate the template's schema.
    """
    kind = str(obj.get("kind") or "")
    name = str(_get(obj, "metadata", "name") or "")
    where = f"{file}:{line}"
    label = f"constraint {kind}/{name}"
    template = templates.get(kind)
    if template is None:
        raise PolicyError(
            f"{label}: no ConstraintTemplate defines the kind {kind}",
            where=where,
            hint="add the template to the Gatekeeper paths"
            + (f" (known kinds: {', '.join(sorted(templates))})" if templates else ""),
        )
    if not name:
        raise PolicyError(f"{label}: metadata.name is missing", where=where)
    spec = obj.get("spec") or {}
    if not isinstance(spec, Mapping):
        raise PolicyError(f"{label}: spec must be a mapping", where=where)
    parameters = spec.get("parameters")
    if parameters is None:
        parameters = {}
    parameters = validate_parameters(template, parameters, label=label, where=where)
    raw_action = spec.get("enforcementAction")
    action: Mode | None = None
    action_name = "deny"
    vap_action_name = ""
    if raw_action is not None and raw_action != "":  # "" is deny, as unset (GetEnforcementAction)
        action_name = str(raw_action)
        if action_name == "scoped":
            scoped = spec.get("scopedEnforcementActions")
            vap = _may_generate_vap(template)
            action_name = _scoped_action(scoped, label, where, vap=vap)
            if vap:
                vap_action_name = _strictest(_actions_for(scoped, label, where, {_VAP_POINT, "*"}), "")
        if action_name not in ACTIONS:
            raise PolicyError(
                f"{label}: enforcementAction {raw_action!r} is not deny, warn or dryrun", where=where
            )
        action = ACTIONS[action_name]
    return Constraint(
        kind=kind,
        name=name,
        file=file,
        line=line,
        match=_parse_match(spec.get("match"), label, where),
        parameters=parameters,
        action=action,
        action_name=action_name,
        vap_action_name=vap_action_name,
    )


def validate_parameters(template: Template, parameters: Any, *, label: str, where: str) -> Mapping[str, Any]:
    """The parameters as the template's constraints see them: with the schema's defaults, checked.

    Defaults fill what the constraint leaves out, as Gatekeeper does (frameworks'
    `withDefaultParams`) and the API server would, then the result is checked
    against the openAPIV3Schema. Where the API server prunes the parameters (see
    `Template.prunes`), a field the schema does not declare is refused: the
    cluster would drop it (and `kubectl apply` refuses it), so a policy here
    would see what the cluster's never does.

    Raises:
        PolicyError: the parameters do not match (every problem is listed).
    """
    if not isinstance(parameters, Mapping):
        raise PolicyError(f"{label}: spec.parameters must be a mapping", where=where)
    if not template.schema:
        return dict(parameters)
    import jsonschema  # only when constraints are read

    from trustgate.policy.schema import apply_defaults, parameters_validator

    # As the API server decodes a custom resource: a null the schema neither allows (`nullable`) nor
    # defaults is dropped (PruneNonNullableNullsWithoutDefaults), then defaults fill the rest.
    defaulted = apply_defaults(parameters, template.schema, prune_nulls=True)
    try:
        validator = parameters_validator(template.schema, strict=template.prunes)
    except jsonschema.SchemaError as e:
        place = ".".join(str(p) for p in ("openAPIV3Schema", *e.absolute_path))
        raise PolicyError(
            f"{label}: template {template.name} has a parameter schema that cannot be used: "
            f"spec.crd.spec.validation.{place}: {e.message}",
            where=template.where,
            hint="fix the template's schema: the API server refuses a CustomResourceDefinition "
            "with it, so Gatekeeper cannot create the constraint kind",
        ) from e
    from referencing.exceptions import Unresolvable

    try:
        errors = sorted(validator.iter_errors(defaulted), key=lambda e: list(e.absolute_path))
    except Unresolvable as e:  # `_check_schema` refuses `$ref`; nothing is ever fetched for one
        raise PolicyError(
            f"{label}: template {template.name} has a parameter schema with a reference that cannot "
            f"be resolved: {e}",
            where=template.where,
            hint="remove $ref from the schema: the API server refuses it in a CustomResourceDefinition",
        ) from e
    if errors:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in ('parameters', *e.absolute_path))}: {e.message}" for e in errors
        )
        pruned = any(e.validator == "additionalProperties" for e in errors) and template.prunes
        raise PolicyError(
            f"{label}: parameters do not match the schema of template {template.name}: {problems}",
            where=where,
            hint=f"see spec.crd.spec.validation.openAPIV3Schema in {template.where}"
            + (
                "; the API server drops fields that schema does not declare (a v1 template's "
                "parameters are pruned), so declare them there or remove them"
                if pruned
                else ""
            ),
        )
    return defaulted


def _check_schema(schema: Any, name: str, where: str) -> None:
    """Refuse a parameter schema the API server refuses (Gatekeeper creates a CRD from it).

    Raises:
        PolicyError: a `type` outside the OpenAPI types, or a `pattern` Go cannot compile.
    """
    if schema is None:
        return
    from trustgate.policy.schema import crd_schema_problems

    problems = crd_schema_problems(schema, "spec.crd.spec.validation.openAPIV3Schema")
    if problems:
        raise PolicyError(
            f"template {name or '?'}: " + "; ".join(f"{place}: {problem}" for place, problem in problems),
            where=where,
            hint="fix the schema: the API server refuses a CustomResourceDefinition with it, so "
            "Gatekeeper cannot create the template's constraint kind",
        )


# -- reviews and inventory -----------------------------------------------------


def review_of(
    obj: Mapping[str, Any],
    *,
    operation: str = "CREATE",
    old: Mapping[str, Any] | None = None,
    user_info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`input.review` for an object, in the AdmissionRequest shape Gatekeeper uses."""
    api_version = obj.get("apiVersion")
    group, _, version = api_version.rpartition("/") if isinstance(api_version, str) else ("", "", "")
    metadata = obj.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    review: dict[str, Any] = {
        "kind": {"group": group, "version": version, "kind": obj.get("kind", "")},
        "name": metadata.get("name", ""),
        "operation": operation,
        "userInfo": dict(user_info or {}),
        "object": obj,
    }
    if metadata.get("namespace"):
        review["namespace"] = metadata["namespace"]
    if old is not None:
        review["oldObject"] = old
    return review


def is_admission_review(obj: Mapping[str, Any]) -> bool:
    api = obj.get("apiVersion")
    return (
        obj.get("kind") == "AdmissionReview" and isinstance(api, str) and api.startswith("admission.k8s.io/")
    )


def review_of_admission(obj: Mapping[str, Any]) -> dict[str, Any]:
    """`input.review` from an AdmissionReview (its `request`, as Gatekeeper passes it).

    Raises:
        ValueError: no request, or neither object nor oldObject.
    """
    request = obj.get("request")
    if not isinstance(request, Mapping):
        raise ValueError("the AdmissionReview has no request")
    review = dict(request)
    if not isinstance(review.get("object"), Mapping) and not isinstance(review.get("oldObject"), Mapping):
        raise ValueError('the AdmissionRequest has neither "object" nor "oldObject" to review')
    if review.get("operation") == "DELETE" and not isinstance(review.get("object"), Mapping):
        review["object"] = review["oldObject"]  # as Gatekeeper does for deletes
    target: Mapping[str, Any] = (
        review["object"] if isinstance(review.get("object"), Mapping) else review["oldObject"]
    )
    if not isinstance(review.get("kind"), Mapping):
        review["kind"] = review_of(target)["kind"]
    raw_meta = target.get("metadata")
    meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
    review.setdefault("name", meta.get("name", ""))
    if meta.get("namespace"):
        review.setdefault("namespace", meta["namespace"])
    review.setdefault("userInfo", {})
    return review


# The namespace the gate files a manifest of a namespaced kind that names none under, in the
# inventory and in the review its inventory-reading templates see (`inventory_of`).
UNPLACED_NAMESPACE = "(no metadata.namespace)"


def inventory_of(
    objects: Iterable[Mapping[str, Any]],
    *,
    namespaced: Callable[[Mapping[str, Any]], bool | None] | None = None,
) -> dict[str, Any]:
    """`data.inventory`: cluster[groupVersion][kind][name], namespace[ns][groupVersion][kind][name].

    Without `namespaced`, objects are filed as written, as gator's and Gatekeeper's sync file what
    exists: one without `metadata.namespace` under `cluster`. The gate passes `namespaced` (the
    kind's scope, None when unknown) and files manifests where the API server would put them once
    applied: a cluster-scoped kind under `cluster` whatever namespace it names (it is cleared),
    and a namespaced kind that names none, which `kubectl -n` or a reconciler puts in a namespace
    the gate does not know, under `UNPLACED_NAMESPACE`, with that namespace in its metadata: the
    namespace every such manifest of the change set shares, as one reconciler applies them
    together. Its own review names it too (`ConstraintEvaluator.review`), so a uniqueness template
    sees it among the others and not as a conflict with itself. A kind of unknown scope is filed
    both ways.
    """
    cluster: dict[str, Any] = {}
    namespaced_root: dict[str, Any] = {}
    for obj in objects:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        metadata = obj.get("metadata")
        if not isinstance(api_version, str) or not isinstance(kind, str) or not isinstance(metadata, Mapping):
            continue
        name, namespace = metadata.get("name"), metadata.get("namespace")
        if not isinstance(name, str):
            continue
        named = isinstance(namespace, str) and bool(namespace)
        places: list[tuple[dict[str, Any], Mapping[str, Any]]] = []
        scope = namespaced(obj) if namespaced is not None else named
        if scope is not False:  # namespaced, or unknown: in the namespace it names, or the unplaced one
            where = str(namespace) if named else UNPLACED_NAMESPACE
            copy = obj if named else {**obj, "metadata": {**metadata, "namespace": where}}
            places.append((namespaced_root.setdefault(where, {}), copy))
        if scope is not True:  # cluster-scoped, or unknown: as created, without a namespace
            copy = (
                {**obj, "metadata": {k: v for k, v in metadata.items() if k != "namespace"}} if named else obj
            )
            places.append((cluster, copy))
        for root, placed in places:
            root.setdefault(api_version, {}).setdefault(kind, {})[name] = placed
    return {"cluster": cluster, "namespace": namespaced_root}


def unplaced_review(review: Mapping[str, Any]) -> dict[str, Any]:
    """The review of an object that names no namespace, as applied in `UNPLACED_NAMESPACE`: what
    templates that read the inventory see, consistently with where `inventory_of` files it."""
    out = dict(review)
    out["namespace"] = UNPLACED_NAMESPACE
    for key in ("object", "oldObject"):
        obj = review.get(key)
        if isinstance(obj, Mapping):
            metadata = obj.get("metadata")
            metadata = metadata if isinstance(metadata, Mapping) else {}
            out[key] = {**obj, "metadata": {**metadata, "namespace": UNPLACED_NAMESPACE}}
    return out


def namespaces_of(objects: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Namespace objects by name (for namespaceSelector)."""
    out: dict[str, Mapping[str, Any]] = {}
    for obj in objects:
        metadata = obj.get("metadata")
        if obj.get("kind") == "Namespace" and obj.get("apiVersion") == "v1" and isinstance(metadata, Mapping):
            name = metadata.get("name")
            if isinstance(name, str):
                out[name] = obj
    return out


# -- compiling and evaluating --------------------------------------------------


class ConstraintSet:
    """Templates and constraints compiled into one engine's worth of modules."""

    def __init__(
        self,
        templates: Iterable[Template],
        constraints: Sequence[Constraint],
        expansions: Sequence[ExpansionTemplate] = (),
        *,
        engine: str = "cel",
        kubernetes_version: str | None = None,
    ) -> None:
        """Prepare the modules (renamed templates plus the generated aggregate) and the CEL.

        `skipped` are the constraints whose template trustgate cannot evaluate
        (no code for the admission target); `expansions` are the ExpansionTemplates
        reviews go through. `engine` picks the code of templates that have both:
        `cel` (as Gatekeeper), `rego`, or `both` (each runs; a disagreement is a finding). A template
        with one kind of code runs it whatever `engine` says. CEL is compiled as the API
        server of `kubernetes_version` runs it.

        Raises:
            PolicyError: a template's Rego breaks Gatekeeper's rules (see `Template.modules`),
                or its CEL does not compile.
        """
        if engine not in ENGINES:
            raise PolicyError(f"unknown Gatekeeper engine {engine!r}; expected one of {', '.join(ENGINES)}")
        by_kind = {t.kind: t for t in templates}
        self.templates = by_kind
        self.engine = engine
        self.expansions = tuple(expansions)
        self.constraints = [c for c in constraints if not by_kind[c.kind].unsupported]
        self.skipped = [c for c in constraints if by_kind[c.kind].unsupported]
        used = {c.kind for c in self.constraints}
        self.rego_kinds = {k for k in used if by_kind[k].rego and (engine != "cel" or by_kind[k].cel is None)}
        self.template_modules = {kind: by_kind[kind].modules() for kind in sorted(self.rego_kinds)}
        self.inventory_kinds = {k for k in self.rego_kinds if by_kind[k].uses_inventory}
        # Constraint kinds whose templates are handed custom workloads' pod templates (`pod_templates`).
        self.pod_template_kinds = frozenset(k for k in used if by_kind[k].pod_templates)
        self.cel: dict[str, tuple[Any, str]] = {}  # kind -> compiled CEL (gatekeeper_cel)
        cel_kinds = {
            k for k in used if by_kind[k].cel is not None and (engine != "rego" or not by_kind[k].rego)
        }
        if cel_kinds:
            from trustgate.policy import gatekeeper_cel  # imports this module: load it only when needed

            self.cel = {
                k: gatekeeper_cel.compile_template(by_kind[k], kubernetes_version=kubernetes_version)
                for k in sorted(cel_kinds)
            }
        self.aggregate = self._aggregate()
        rego_constraints = [c for c in self.constraints if c.kind in self.rego_kinds]
        self.uses_inventory = any(c.kind in self.inventory_kinds for c in rego_constraints)
        self.needs_namespaces = any(c.match.namespace_selector is not None for c in self.constraints) or any(
            compiled[0].reads("namespaceObject") for compiled in self.cel.values()
        )
        self.parameters = {c.id: dict(c.parameters) for c in rego_constraints}

    def _aggregate(self) -> Module:
        clauses = []
        for c in self.constraints:
            if c.kind not in self.rego_kinds:
                continue
            key = json.dumps(c.id)
            # A template that reads the inventory sees an unplaced object where the inventory has it.
            review = "inventory_review" if c.kind in self.inventory_kinds else "input.review"
            clauses.append(
                "findings[id] := v if {\n"
                f"\tid := {key}\n"
                "\tinput.constraints[id]\n"
                f"\tv := data.{self.templates[c.kind].package}.violation with input as "
                f'{{"review": {review}, "parameters": data.{_PARAMS_ROOT}[{key}]}}\n'
                "}\n"
            )
        unplaced = "inventory_review := input.unplaced if input.unplaced\n\telse := input.review\n\n"
        text = f"package {_AGGREGATE}\n\nimport rego.v1\n\n{unplaced}" + "\n".join(clauses)
        return Module("<trustgate gatekeeper>", text)

    def compile(self, engine: Engine) -> ConstraintEvaluator:
        """Load the modules and parameters into `engine`.

        Raises:
            PolicyError: a template does not compile; the message names the file,
                the template and the line.
        """
        for kind, modules in self.template_modules.items():
            template = self.templates[kind]
            try:
                engine.add_modules(modules)
            except PolicyError as e:
                raise PolicyError(
                    f"template {template.name} does not compile: {e.message}",
                    where=template.file,
                    hint=e.hint,
                ) from e
        engine.add_modules([self.aggregate])
        engine.set_data(_PARAMS_ROOT, self.parameters)
        return ConstraintEvaluator(self, engine)


class ReviewError(PolicyError):
    """Templates failed at run time on a review; `violations` are what the other constraints found,
    `failed` each failing constraint with its error."""

    def __init__(self, violations: list[Violation], failed: list[tuple[Constraint, PolicyError]]) -> None:
        first = failed[0][1]
        super().__init__(first.message, where=first.where, hint=first.hint)
        self.violations = violations
        self.failed = failed


class ConstraintEvaluator:
    """A `ConstraintSet` loaded into one engine; use it from one thread."""

    def __init__(self, constraints: ConstraintSet, engine: Engine) -> None:
        self.set = constraints
        self.engine = engine
        self.namespaces: Mapping[str, Mapping[str, Any]] = {}

    def set_inventory(
        self,
        objects: Sequence[Mapping[str, Any]],
        *,
        namespaced: Callable[[Mapping[str, Any]], bool | None] | None = None,
    ) -> None:
        """Replace `data.inventory` (and the Namespaces namespaceSelector looks at).

        `namespaced` (the gate's kind scopes) files manifests as applied, see `inventory_of`.
        """
        if self.set.uses_inventory:
            self.engine.set_data("inventory", inventory_of(objects, namespaced=namespaced))
        self.namespaces = namespaces_of(objects)

    def matching(
        self,
        review: Mapping[str, Any],
        *,
        generated: bool = False,
        skipped: bool = False,
        placement: Placement = Placement.AS_REVIEWED,
    ) -> tuple[list[Constraint], list[tuple[Constraint, str]]]:
        """Constraints that apply to the review, and those whose Namespace is unknown.

        Args:
            review: the `input.review`.
            generated: the reviewed object is the resultant of an ExpansionTemplate.
            skipped: match the constraints that cannot be evaluated (`ConstraintSet.skipped`)
                instead of the others.
            placement: where a review without a namespace may be (the gate); gator's default
                takes it as cluster-scoped.
        """
        objects = [o for o in (review.get("object"), review.get("oldObject")) if isinstance(o, Mapping)]
        namespace = str(review.get("namespace") or "")
        matched, unknown = [], []
        for constraint in self.set.skipped if skipped else self.set.constraints:
            try:
                if any(
                    constraint.match.matches(
                        o, namespace, self.namespaces, generated=generated, placement=placement
                    )
                    for o in objects
                ):
                    matched.append(constraint)
            except NamespaceUnknownError as e:
                unknown.append((constraint, e.namespace))
        return matched, unknown

    def review(
        self,
        review: Mapping[str, Any],
        constraints: Sequence[Constraint],
        *,
        placement: Placement = Placement.AS_REVIEWED,
    ) -> list[Violation]:
        """Evaluate `constraints` (already matched) against one review.

        `placement` is where a review without a namespace may be (see `Placement`): one that
        may be in a namespace cannot give CEL that reads `namespaceObject` the Namespace.

        Raises:
            ReviewError: a template failed at run time; it carries what the other constraints found.
        """
        if not constraints:
            return []
        failed: list[tuple[Constraint, PolicyError]] = []
        rego = [c for c in constraints if c.kind in self.set.rego_kinds]
        unplaced = (
            unplaced_review(review)
            if placement is not Placement.AS_REVIEWED
            and not review.get("namespace")
            and any(c.kind in self.set.inventory_kinds for c in rego)
            else None
        )
        try:
            out = self._review_rego(review, rego, unplaced) if rego else []
        except PolicyError:  # one template failed: the others' violations must not go with it
            out = []
            for constraint in rego:
                try:
                    out.extend(self._review_rego(review, [constraint], unplaced))
                except PolicyError as e:
                    failed.append((constraint, e))
        cel = [c for c in constraints if c.kind in self.set.cel]
        if cel:
            from trustgate.policy import gatekeeper_cel

            for constraint in cel:
                compiled = self.set.cel[constraint.kind]
                try:
                    messages = gatekeeper_cel.review(
                        compiled,
                        constraint,
                        review,
                        namespace_object=self._namespace_object(compiled, review, placement),
                    )
                except PolicyError as e:
                    failed.append((constraint, e))
                    continue
                if constraint.kind not in self.set.rego_kinds:
                    out.extend(Violation(constraint, m) for m in messages)
                    continue
                found = any(v.constraint.id == constraint.id for v in out)
                if found != bool(messages):  # engine `both`: Rego's violations stand; say they disagree
                    out.append(
                        Violation(
                            constraint,
                            f"the Rego and CEL code of template {self.set.templates[constraint.kind].name} "
                            f"disagree: Rego {'denies' if found else 'allows'}, CEL "
                            + (f"denies ({'; '.join(messages)})" if messages else "allows"),
                            disagreement=True,
                        )
                    )
        if failed:
            raise ReviewError(out, failed)
        return out

    def _namespace_object(
        self, compiled: tuple[Any, str], review: Mapping[str, Any], placement: Placement
    ) -> Mapping[str, Any] | None:
        """`namespaceObject` for CEL that reads it: the Namespace of a namespaced review (None for a
        cluster-scoped one), as Gatekeeper's CEL driver gives it.

        Raises:
            PolicyError: the Namespace is neither in the change set nor in the inventory, or the
                object names none and may be created in any: what the code would decide is
                unknown (fail closed).
        """
        namespace = str(review.get("namespace") or "")
        if not compiled[0].reads("namespaceObject"):
            return None
        if not namespace and placement is not Placement.AS_REVIEWED:
            raise PolicyError(
                "the template's CEL reads namespaceObject, and the object names no namespace (it may "
                "be created in any), so what it decides is unknown",
                hint="set metadata.namespace",
            )
        if not namespace:
            return None
        found = self.namespaces.get(namespace)
        if found is None:
            raise PolicyError(
                f"the template's CEL reads namespaceObject, and Namespace {namespace!r} is not in the "
                "change set or the Gatekeeper inventory, so what it decides is unknown",
                hint="give the Namespace via --inventory (manifests.gatekeeper.inventory) or the change set",
            )
        return found

    def _review_rego(
        self,
        review: Mapping[str, Any],
        constraints: Sequence[Constraint],
        unplaced: Mapping[str, Any] | None = None,
    ) -> list[Violation]:
        request: dict[str, Any] = {"review": review, "constraints": {c.id: True for c in constraints}}
        if unplaced is not None:  # what templates that read the inventory see (`unplaced_review`)
            request["unplaced"] = unplaced
        value = self.engine.eval_rule(FINDINGS_RULE, request)
        if value is UNDEFINED or not isinstance(value, Mapping):
            return []
        out = []
        for constraint in constraints:
            for item in value.get(constraint.id) or []:
                if isinstance(item, Mapping):
                    msg = item.get("msg")
                    details = item.get("details")
                    out.append(
                        Violation(
                            constraint,
                            msg if isinstance(msg, str) else json.dumps(item, sort_keys=True),
                            dict(details) if isinstance(details, Mapping) else {},
                        )
                    )
                else:
                    out.append(Violation(constraint, json.dumps(item, sort_keys=True)))
        return out


def resultant_review(resultant: Resultant, parent: Mapping[str, Any]) -> dict[str, Any]:
    """`input.review` for a resultant: its own kind, name and namespace, the parent's operation and user."""
    user_info = parent.get("userInfo")
    return review_of(
        resultant.obj,
        operation=str(parent.get("operation") or "CREATE"),
        user_info=user_info if isinstance(user_info, Mapping) else None,
    )


def implied(resultant: Resultant, message: str) -> str:
    """A resultant's violation message as Gatekeeper reports it on the parent."""
    return f"[Implied by {resultant.template.name}] {message}"


def container_path(resultant: Resultant, message: str) -> tuple[str | int, ...]:
    """Where in the parent a resultant's violation points: the container the message names, if one does.

    Gatekeeper's messages carry no path; when exactly one container of the
    resultant's pod spec is named in the message, the path goes down to it,
    else it stays at the templateSource (e.g. `spec.template`).
    """
    found = named_container(resultant.obj.get("spec"), message)
    return (*resultant.path, "spec", *found) if found is not None else resultant.path


CONTAINER_FIELDS = ("containers", "initContainers", "ephemeralContainers")


def named_container(spec: Any, message: str) -> tuple[str, int] | None:
    """The container of pod spec `spec` that `message` names, as (its list, its index), when exactly
    one does (by its name, as a whole word)."""
    found: list[tuple[str, int]] = []
    for field_name in CONTAINER_FIELDS:
        items = spec.get(field_name) if isinstance(spec, Mapping) else None
        for index, item in enumerate(items if isinstance(items, list) else []):
            name = item.get("name") if isinstance(item, Mapping) else None
            if (
                isinstance(name, str)
                and name
                and re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", message)
            ):
                found.append((field_name, index))
    return found[0] if len(found) == 1 else None


def embedded_engine() -> EmbeddedEngine:
    """The default engine for templates: regorus in Rego v0 mode (Gatekeeper's syntax)."""
    return EmbeddedEngine(rego_v0=True)


EngineFactory = Callable[[], Engine]


# -- helpers -------------------------------------------------------------------


def _ident(kind: str) -> str:
    return re.sub(r"\W", "_", kind.lower())


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


def _mapping(value: Any) -> Mapping[str, Any] | None:
    return value if isinstance(value, Mapping) else None


def _labels(metadata: Mapping[str, Any]) -> Mapping[str, Any]:
    labels = metadata.get("labels")
    return labels if isinstance(labels, Mapping) else {}


def _wildcard(pattern: str, value: str) -> bool:
    """Gatekeeper's `Wildcard.Matches`: `*x*` contains, `*x` suffix, `x*` prefix, else exact.

    Only a leading or trailing `*` is special (pkg/wildcard/wildcard.go); `?`, `[` and an inner
    `*` are plain characters, as there.
    """
    if len(pattern) >= 2 and pattern.startswith("*") and pattern.endswith("*"):
        return pattern[1:-1] in value
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return pattern == value


def _wildcard_generate_name(pattern: str, generate_name: str) -> bool:
    """Gatekeeper's `Wildcard.MatchesGenerateName`: could a name generated from `generate_name`
    match? `*x*` if it contains x, `x*` if it starts with x (`_wildcard`'s two branches for a
    trailing `*`); a suffix or exact pattern never (the generated suffix is unknown)."""
    return pattern.endswith("*") and _wildcard(pattern, generate_name)


def is_namespace_kind(group: Any, kind: Any) -> bool:
    """Whether a group and kind are the core Namespace (what Gatekeeper judges by its own name)."""
    return kind == "Namespace" and not group


def reviews_namespace(review: Mapping[str, Any]) -> bool:
    """Whether `input.review` is of a core Namespace (by the review's `kind`)."""
    kind = review.get("kind")
    return isinstance(kind, Mapping) and is_namespace_kind(kind.get("group"), kind.get("kind"))


def _block_line(tree: Any, path: tuple[str | int, ...], default: int) -> int:
    """The file line a block scalar's text starts on (the line after its key or `- |`)."""
    found = yamlio.locate(tree, path) if tree is not None else None
    return (found + 1) if found else default


def _selector(value: Any, label: str, where: str, what: str) -> Selector | None:
    return parse_selector(value, f"{label}: spec.match.{what}", where)


def parse_selector(value: Any, field_name: str, where: str) -> Selector | None:
    """A metav1.LabelSelector, its shape checked as the API server's OpenAPI schema would.

    Args:
        value: the selector as read (None when absent).
        field_name: who and which field, for messages (`K8sNoPriv/x: spec.match.labelSelector`).
        where: `file:line` of the object.

    Returns:
        The selector, or None when `value` is None.

    Raises:
        PolicyError: the selector is not a mapping, `matchLabels` is not a map of
            strings, `matchExpressions` is not a list of {key, operator, values}
            with string values, or an operator is unknown or lacks values.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise PolicyError(f"{field_name} must be a label selector (a mapping)", where=where)
    labels = value.get("matchLabels")
    if labels is None:
        labels = {}
    if not isinstance(labels, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise PolicyError(
            f"{field_name}.matchLabels must be a mapping of strings to strings, not {labels!r}", where=where
        )
    expressions = []
    for i, item in enumerate(_items(value.get("matchExpressions"), f"{field_name}.matchExpressions", where)):
        at = f"{field_name}.matchExpressions[{i}]"
        if not isinstance(item, Mapping):
            raise PolicyError(f"{at} must be a mapping (key, operator, values)", where=where)
        key = item.get("key")
        if not isinstance(key, str) or not key:
            raise PolicyError(f"{at}.key must be a non-empty string", where=where)
        operator = item.get("operator")
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise PolicyError(
                f"{at}: operator {operator!r} is not In, NotIn, Exists or DoesNotExist", where=where
            )
        values = string_list(item.get("values"), f"{at}.values", where)
        if operator in ("In", "NotIn") and not values:
            raise PolicyError(f"{at}: {operator} needs values", where=where)
        if operator in ("Exists", "DoesNotExist") and values:
            raise PolicyError(f"{at}: {operator} takes no values", where=where)
        expressions.append((key, str(operator), values))
    return Selector(tuple(labels.items()), tuple(expressions))


def _items(value: Any, field_name: str, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PolicyError(f"{field_name} must be a list, not {value!r}", where=where)
    return value


def string_list(value: Any, field_name: str, where: str) -> tuple[str, ...]:
    """A `[]string` field: None is empty; anything but a list of strings is refused.

    Raises:
        PolicyError: `value` is not a list of strings (a bare string, say, which
            the API server's schema refuses and which would otherwise match nothing).
    """
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{field_name} must be a list of strings, not {value!r}", where=where)
    return tuple(value)


def _string(value: Any, field_name: str, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PolicyError(f"{field_name} must be a string, not {value!r}", where=where)
    return value


def _parse_match(value: Any, label: str, where: str) -> Match:
    if value is None:
        return Match()
    if not isinstance(value, Mapping):
        raise PolicyError(f"{label}: spec.match must be a mapping", where=where)
    at = f"{label}: spec.match"
    kinds = []
    for i, item in enumerate(_items(value.get("kinds"), f"{at}.kinds", where)):
        if not isinstance(item, Mapping):
            raise PolicyError(f"{label}: spec.match.kinds entries must be mappings", where=where)
        kinds.append(
            (
                string_list(item.get("apiGroups"), f"{at}.kinds[{i}].apiGroups", where),
                string_list(item.get("kinds"), f"{at}.kinds[{i}].kinds", where),
            )
        )
    return Match(
        kinds=tuple(kinds),
        scope=_string(value.get("scope"), f"{at}.scope", where) or "*",
        namespaces=string_list(value.get("namespaces"), f"{at}.namespaces", where),
        excluded_namespaces=string_list(value.get("excludedNamespaces"), f"{at}.excludedNamespaces", where),
        label_selector=_selector(value.get("labelSelector"), label, where, "labelSelector"),
        namespace_selector=_selector(value.get("namespaceSelector"), label, where, "namespaceSelector"),
        name=_string(value.get("name"), f"{at}.name", where),
        source=_match_source(value.get("source"), label, where),
    )


def _match_source(value: Any, label: str, where: str) -> str:
    if value is None or value == "":
        return "All"
    if value not in ("All", "Original", "Generated"):
        raise PolicyError(
            f"{label}: spec.match.source {value!r} is not All, Original or Generated", where=where
        )
    return str(value)


def _may_generate_vap(template: Template) -> bool:
    """Whether a binding to a ValidatingAdmissionPolicy Gatekeeper generates may enforce the template.

    The constraint controller creates the binding for a `scoped` constraint that names
    `vap.k8s.io` only if the template has K8sNativeValidation code (`HasVAPCel`) and the cluster
    serves the VAP API; the template controller creates the policy it binds unless the code's
    `generateVAP` is false (unset, the `--default-create-vap-for-templates` flag decides). What
    depends on the cluster and its flags is taken to be on (fail closed).
    """
    return template.cel is not None and template.cel.get("generateVAP") is not False


def _scoped_action(value: Any, label: str, where: str, *, vap: bool = False) -> str:
    """The action a `scoped` constraint takes at trustgate's gates.

    They stand in for Gatekeeper's webhook (`validation.gatekeeper.sh`), for gator in CI
    (`gator.gatekeeper.sh`) and, when `vap` (see `_may_generate_vap`), for the
    ValidatingAdmissionPolicy Gatekeeper generates (`vap.k8s.io`): the strictest action named
    for one of them, or for `*`, wins (deny, then warn, then dryrun), so no gate allows what one
    of them denies. When none names them (audit only, say), none acts: `dryrun`.

    Raises:
        PolicyError: scopedEnforcementActions is not a list of {action, enforcementPoints}.
    """
    points = {"validation.gatekeeper.sh", "gator.gatekeeper.sh", "*"} | ({_VAP_POINT} if vap else set())
    return _strictest(_actions_for(value, label, where, points), "dryrun")


_VAP_POINT = "vap.k8s.io"  # the enforcement point of the ValidatingAdmissionPolicy Gatekeeper generates


def _actions_for(value: Any, label: str, where: str, points: set[str]) -> set[str]:
    """The actions scopedEnforcementActions names for any of `points` (Gatekeeper's
    `ScopedActionForEP`, where `*` names every enforcement point).

    Raises:
        PolicyError: scopedEnforcementActions is not a list of {action, enforcementPoints}.
    """
    field_name = f"{label}: spec.scopedEnforcementActions"
    actions = set()
    for i, item in enumerate(_items(value, field_name, where)):
        if not isinstance(item, Mapping):
            raise PolicyError(f"{field_name}[{i}] must be a mapping", where=where)
        named = _items(item.get("enforcementPoints"), f"{field_name}[{i}].enforcementPoints", where)
        if not all(isinstance(p, Mapping) for p in named):
            raise PolicyError(f"{field_name}[{i}].enforcementPoints entries must be mappings", where=where)
        if {p.get("name") for p in named} & points:
            actions.add(str(item.get("action")))
    return actions


def _strictest(actions: set[str], none: str) -> str:
    """deny, then warn, then dryrun; `none` when there is no action (an unknown one is refused by
    the caller)."""
    for action in ("deny", "warn", "dryrun"):
        if action in actions:
            return action
    return next(iter(sorted(actions)), none)
