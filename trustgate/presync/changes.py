"""What a change set removes, and whether each removal of a protected object is approved.

Owns: the identity of a rendered object (API group, kind, namespace, name),
the objects present in the gated tree and missing from the candidate (or no
longer applied by a reconciler that applied them: `Seen.unapplied`), and
approvals: a `Trustgate-Approve-Deletion: Kind/namespace/name [in PATH]` trailer
(globs; `Kind/name` for cluster-scoped objects) in a commit of the range that
an allowed approver signed, whose own tree no longer holds the object, and
that is for this removal: PATH holds the object's file, or, naming no path,
the commit itself removes it under the gate's paths. And reconciler sources
(Flux sources, Kustomizations and HelmReleases, Flux Operator objects, Argo CD
Applications, ApplicationSets and AppProjects, Argo CD's own configuration,
and what a Flux Kustomization substitutes from or a HelmRelease takes values
from): adding, changing, removing one, or moving it where a
reconciler starts or stops reading it, is approved the same way (one `_saw`),
by a `Trustgate-Approve-Source` trailer; and a warning for a Flux
Kustomization that applies a path of this repository outside the gate's
paths (`unjudged_paths`); and what each Flux Kustomization and Argo CD
Application of the tree builds under the paths (`flux_builds`,
`argocd_builds`: its path, and what it adds to that path's kustomization),
which the runner renders. Leaves out: rendering
(the loader) and verifying signatures (git, `signatures.py`).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trustgate import kinds
from trustgate.manifests import variables
from trustgate.model import Document, DocumentResult, Finding, InputProblem, Severity, Source
from trustgate.presync import reconcilers
from trustgate.presync.git import APPROVAL_TRAILER, SOURCE_TRAILER, Commit, repo_path, secure_path, within
from trustgate.presync.signatures import signer_identities

_BUILT_IN = kinds.Scopes()  # the built-in kinds' scopes, for callers that give no CRDs


@dataclass(frozen=True, slots=True, order=True)
class ObjectKey:
    group: str
    kind: str
    namespace: str
    name: str
    # The reconciler source it is applied by (`source_path`): the entry of `presync.paths` it is
    # under, or, rendered, the kustomization that rendered it. The same object under two (two Flux
    # Kustomizations, two Argo CD Applications, two clusters, a base and its overlay) is two
    # objects, each of whose removal counts. "" when the caller gave no paths.
    path: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class Seen:
    """A rendered object of the gated tree: enough to report it once it is gone."""

    key: ObjectKey
    api_version: str
    source: Source
    # What, changed, has the reconciler replace it: its content besides metadata under Flux's force,
    # all of it under Argo CD's Replace/Force (which replaces on any drift); with the marker itself,
    # so that gaining one is a change an approval from before it did not see.
    digest: str = ""
    # It asks the reconciler to delete and create it again when it cannot be patched (Flux
    # `kustomize.toolkit.fluxcd.io/force: enabled`, Argo CD `Replace=true` or `Force=true`), it is
    # a hook (Argo CD's or Helm's annotation: deleted and created again at each sync), or
    # its tree holds a Flux Kustomization or an Argo CD Application that asks it for everything.
    recreate: bool = False
    # Why, for the finding: the object's own marker, or the file of the Kustomization or Application.
    why: str = ""
    # It carries kustomize's `config.kubernetes.io/local-config`: kustomize (every Flux path, Argo
    # CD's kustomize sources) leaves it out of what it builds, and the reconciler prunes it.
    local: bool = False
    # The reconcilers that would not apply it (`reconcilers.Views.unapplied`: a name Flux ignores, a
    # link, a `.json` file under Flux; a subdirectory under Argo CD's directory source), each with
    # why. Empty: every one applies it (or the caller worked out no views).
    unapplied: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # It tells a reconciler what to pull and apply (`reconciler_source`, `_argocd_config`), or a Flux
    # Kustomization of the tree substitutes its data into what it applies (`postBuild.substituteFrom`),
    # or a HelmRelease takes values from it (`valuesFrom`): any change of it needs a
    # `Trustgate-Approve-Source` (`sources`).
    directs: bool = False


# Annotations under which a reconciler deletes an object and creates it again rather than fail
# on an immutable field: for a protected kind, a change is then a deletion (a PVC's data with it).
_FLUX_FORCE = "kustomize.toolkit.fluxcd.io/force"
_ARGO_SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
# A hook is not synced like other resources: Argo CD (which honours Helm's hook annotations too)
# deletes it and creates it again at each sync it runs in (hook-delete-policy BeforeHookCreation,
# the default), or deletes it once it has run (HookSucceeded, HookFailed); `Skip` stops applying
# it. Any of them, with any policy, is taken as a marker: which policy holds is not worked out.
_HOOKS = ("argocd.argoproj.io/hook", "helm.sh/hook")


# kustomize drops an object carrying this annotation from its output (any value but "false" since
# kustomize api v0.12, any value at all before): a Flux Kustomization, which builds every path with
# kustomize (generating a kustomization.yaml where there is none), then prunes it from the cluster.
LOCAL_CONFIG = "config.kubernetes.io/local-config"


# What tells a reconciler what to pull and how to apply it: a GitRepository that follows `main`
# rather than the gated branch, a Kustomization with another `path`, patches or post-build
# substitutions, a HelmRelease building a chart from the repository, an Argo CD Application with
# another `targetRevision`, path or repository (or an ApplicationSet making one, an AppProject
# widening what they may pull). Changed, it points the cluster at content the gate never judges,
# and every later push there is applied past the gate: so any change of one (an addition, an edit,
# a removal, whose reconciler then prunes what it applied) needs an approval (`sources`). Which
# changes are harmless (a source that follows the gated ref, a path under `presync.paths`) is not
# worked out: that could only ask for an approval less. Every kind of the Flux source, kustomize
# and helm groups counts, so that a kind added in a later Flux release does too.
_SOURCE_GROUPS = frozenset(
    {
        "source.toolkit.fluxcd.io",  # GitRepository, OCIRepository, Bucket, HelmRepository, HelmChart
        "source.extensions.fluxcd.io",  # ArtifactGenerator
        "kustomize.toolkit.fluxcd.io",  # Kustomization
        "helm.toolkit.fluxcd.io",  # HelmRelease
        "fluxcd.controlplane.io",  # Flux Operator: FluxInstance, ResourceSet, ResourceSetInputProvider
    }
)
_SOURCE_KINDS = frozenset(
    {("argoproj.io", "Application"), ("argoproj.io", "ApplicationSet"), ("argoproj.io", "AppProject")}
)


def reconciler_source(key: ObjectKey) -> bool:
    """Whether the object tells a reconciler what to pull and apply (see `_SOURCE_GROUPS`)."""
    return key.group in _SOURCE_GROUPS or (key.group, key.kind) in _SOURCE_KINDS


# A Flux Kustomization's `postBuild.substituteFrom` names ConfigMaps and Secrets (in its own namespace)
# whose data replaces `${var}` in everything it applies: a GitRepository's `ref.branch: ${branch}`,
# an Application's `targetRevision`. A HelmRelease's `spec.valuesFrom` names ConfigMaps and Secrets (in
# its own namespace) whose data are the chart's values: an image, `privileged: true`. Changing one
# re-points a source, or changes what it applies, without touching it, so each object named there is a
# reconciler source itself (`Seen.directs`): its change needs the same approval. Only the
# Kustomizations and HelmReleases of the trees compared are known; `postBuild.substitute` and
# `values` are in the object itself, whose every change counts already.
_SUBSTITUTE_KINDS = frozenset({"ConfigMap", "Secret"})
_FLUX_KUSTOMIZE = variables.FLUX_KUSTOMIZE_GROUP
_FLUX_HELM = "helm.toolkit.fluxcd.io"

# A self-managed Argo CD's own configuration widens what its Applications may pull and do: `argocd-cm`
# (accounts, anonymous access, resource exclusions, config management plugins), `argocd-rbac-cm` (who
# may sync what), `argocd-cmd-params-cm` (the controllers' flags: `application.namespaces`, the
# repo-server's options), the trust stores for repositories (TLS certificates, SSH known hosts, GPG
# keys), and a Secret labelled `argocd.argoproj.io/secret-type` (a repository, its credentials, a
# cluster): each is a reconciler source. Matched by name in any namespace (where Argo CD is installed
# is not known here): that can only ask for an approval more.
_ARGOCD_CONFIG_MAPS = frozenset(
    {
        "argocd-cm",
        "argocd-rbac-cm",
        "argocd-cmd-params-cm",
        "argocd-tls-certs-cm",
        "argocd-ssh-known-hosts-cm",
        "argocd-gpg-keys-cm",
    }
)
_ARGOCD_SECRET_TYPE = "argocd.argoproj.io/secret-type"


def _argocd_config(key: ObjectKey, obj: Mapping[str, object]) -> bool:
    """Whether `obj` is a piece of Argo CD's own configuration (see `_ARGOCD_CONFIG_MAPS`)."""
    if key.group != "":
        return False
    if key.kind == "ConfigMap":
        return key.name in _ARGOCD_CONFIG_MAPS
    metadata = obj.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    return key.kind == "Secret" and isinstance(labels, Mapping) and _ARGOCD_SECRET_TYPE in labels


def _flux(obj: Mapping[str, object], group: str, kind: str) -> Mapping[str, object] | None:
    """The spec of `obj` if it is a `kind` of the Flux API `group`, else None."""
    spec = obj.get("spec")
    return spec if kinds.is_kind(obj, group, kind) and isinstance(spec, Mapping) else None


# (the directory a Flux Kustomization's `spec.path` names, its `targetNamespace` or None)
_Applier = tuple[str, str | None]


def _appliers(documents: Iterable[Document], *, remotes: Sequence[str] | None = None) -> list[_Applier]:
    """The Flux Kustomizations of the tree: the path each applies (relative to its source's root,
    taken to be this repository's: one of another repository may then be taken to apply a file here,
    which can only widen what `_landing` allows) and the namespace it puts what it applies in.

    With `remotes` (the gated repository's URLs), only those whose GitRepository is (or may be) this
    repository (`_git_kustomizations`): for what must not be widened (a `substituteFrom` object
    taken to land where another repository's Kustomization puts its own gives values Flux never
    reads there).
    """
    documents = list(documents)
    ours = None if remotes is None else {id(k[0]) for k in _git_kustomizations(documents, remotes)}
    out: list[_Applier] = []
    for doc in documents:
        spec = _flux(doc.obj, _FLUX_KUSTOMIZE, "Kustomization")
        if spec is None or (ours is not None and id(doc) not in ours):
            continue
        path, target = spec.get("path"), spec.get("targetNamespace")
        out.append(
            (
                secure_path(path) if isinstance(path, str) else "",
                target if isinstance(target, str) and target else None,
            )
        )
    return out


def _landing(
    doc: Document, appliers: Sequence[_Applier], *, flux_only: bool = False
) -> frozenset[str] | None:
    """The namespaces `doc`'s object may land in (None: any, not known): its own, and the
    `targetNamespace` of each Flux Kustomization of the tree whose path holds its file (which
    overrides its own). Without a namespace of its own, and with a Kustomization that holds it and
    sets none (or none that holds it), where it lands is not known.

    `flux_only` (`presync.reconciler: flux`): Flux Kustomizations alone apply the tree, so where
    every one that holds the file sets a `targetNamespace`, its own namespace is none it lands in."""
    metadata = doc.obj.get("metadata")
    own = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    own = own if isinstance(own, str) and own else None
    files = [repo_path(f) for f in (doc.source.file, doc.source.rendered_from) if f is not None]
    holding = [target for path, target in appliers if any(within(f, path) for f in files)]
    if own is None and (not holding or None in holding):
        return None
    if flux_only and holding and None not in holding:
        own = None
    return frozenset({t for t in holding if t is not None} | ({own} if own is not None else set()))


def _substituted(documents: Sequence[Document]) -> set[tuple[str, str | None, str]]:
    """(kind, namespace, name) of what the tree's Flux Kustomizations substitute from and its
    HelmReleases take values from, in each namespace the Kustomization or HelmRelease may land in
    (`_landing`); the namespace is None (any) where that is not known."""
    appliers = _appliers(documents)
    out: set[tuple[str, str | None, str]] = set()
    for doc in documents:
        refs: object = None
        if (spec := _flux(doc.obj, _FLUX_KUSTOMIZE, "Kustomization")) is not None:
            post = spec.get("postBuild")
            refs = post.get("substituteFrom") if isinstance(post, Mapping) else None
        elif (spec := _flux(doc.obj, _FLUX_HELM, "HelmRelease")) is not None:
            refs = spec.get("valuesFrom")
        if not isinstance(refs, list):
            continue
        landing = _landing(doc, appliers)
        namespaces: list[str | None] = [*sorted(landing)] if landing is not None else [None]
        for ref in refs:
            if isinstance(ref, Mapping) and isinstance(ref.get("name"), str):
                kind = ref.get("kind")
                for k in [kind] if kind in _SUBSTITUTE_KINDS else sorted(_SUBSTITUTE_KINDS):
                    out.update((str(k), namespace, ref["name"]) for namespace in namespaces)
    return out


def substitute_from(documents: Sequence[Document]) -> list[str]:
    """The ConfigMaps and Secrets of `documents` (`ConfigMap/flux-system/vars`) that a Flux
    Kustomization of `documents` substitutes from (`postBuild.substituteFrom`, in its namespace)."""
    held = {
        (doc.obj.get("kind"), doc.namespace or "", doc.name)
        for doc in documents
        if doc.kubernetes and doc.obj.get("apiVersion") == "v1" and doc.obj.get("kind") in _SUBSTITUTE_KINDS
    }
    out: dict[str, None] = {}
    for doc in documents:
        spec = _flux(doc.obj, _FLUX_KUSTOMIZE, "Kustomization")
        post = spec.get("postBuild") if spec is not None else None
        refs = post.get("substituteFrom") if isinstance(post, Mapping) else None
        for ref in refs if isinstance(refs, list) else []:
            if not isinstance(ref, Mapping):
                continue
            key = (ref.get("kind"), doc.namespace or "", ref.get("name"))
            if key in held:
                out[variables.source_label(*key)] = None
    return list(out)


def _substitutes(
    key: ObjectKey, named: set[tuple[str, str | None, str]], landing: frozenset[str] | None
) -> bool:
    """Whether the object `key`, landing in `landing` (None: any namespace), is named in `named`."""
    if key.group != "":
        return False
    for kind, namespace, name in named:
        if (kind, name) == (key.kind, key.name) and (
            namespace is None or landing is None or namespace in landing
        ):
            return True
    return False


def _local_config(obj: Mapping[str, object]) -> bool:
    """Whether kustomize (some version of it) leaves `obj` out: the annotation at any value. Which
    reconciler applies the path, and with which kustomize, is not known here: an object that gains
    it is taken as removed, one that has it as possibly applied (`removals`)."""
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    return isinstance(annotations, Mapping) and LOCAL_CONFIG in annotations


def _recreates(obj: Mapping[str, object]) -> str:
    """ "hook", "flux", "argo" or "": Flux reads its force marker from labels or annotations
    (`ssa.AnyInMetadata`), Argo CD its sync options and hooks from annotations (labels are read
    too: a marker more can only ask for an approval more)."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping):
        return ""
    marks = [m for m in (metadata.get("labels"), metadata.get("annotations")) if isinstance(m, Mapping)]
    if any(hook in m for m in marks for hook in _HOOKS):
        return "hook"
    options = {o.strip().lower() for m in marks for o in str(m.get(_ARGO_SYNC_OPTIONS, "")).split(",")}
    if options & {"replace=true", "force=true"}:
        return "argo"
    if any(str(m.get(_FLUX_FORCE, "")).strip().lower() == "enabled" for m in marks):
        return "flux"
    return ""


def _tree_recreates(documents: Sequence[Document]) -> tuple[str, str]:
    """("flux" or "argo" or "", the file that says so): a marker for every object of the tree.

    A Flux Kustomization with `spec.force: true` replaces whatever it applies that cannot be
    patched; an Argo CD Application whose `syncPolicy.syncOptions` hold `Replace=true` or
    `Force=true` (or an ApplicationSet that may make one, `_replaces_anywhere`) syncs every
    resource with a replace. Which objects of the tree each one applies (its `spec.path`, its source) is not
    worked out here: every object of the tree counts as marked, which can only ask for an
    approval more, never for one less. Argo CD wins over Flux: it replaces on any drift.
    """
    found = ("", "")
    for doc in documents:
        obj = doc.obj
        api_version, kind, spec = obj.get("apiVersion"), obj.get("kind"), obj.get("spec")
        if not isinstance(api_version, str) or not isinstance(spec, Mapping):
            continue
        group = api_version.rpartition("/")[0]
        if group == "argoproj.io" and kind == "Application":
            policy = spec.get("syncPolicy")
            options = policy.get("syncOptions") if isinstance(policy, Mapping) else None
            if isinstance(options, list) and {str(o).strip().lower() for o in options} & _ARGO_REPLACE:
                return "argo", doc.source.file
        elif group == "argoproj.io" and kind == "ApplicationSet" and _replaces_anywhere(spec):
            return "argo", doc.source.file
        elif group == "kustomize.toolkit.fluxcd.io" and kind == "Kustomization" and spec.get("force") is True:
            found = found if found[0] else ("flux", doc.source.file)
    return found


_ARGO_REPLACE = frozenset({"replace=true", "force=true"})


def _replaces_anywhere(value: object) -> bool:
    """Whether an ApplicationSet may make Applications that sync with Replace or Force: a
    `syncOptions` list holding one anywhere in it (`spec.template`, a generator's own `template`,
    which Argo CD merges in), or the option's text in any string (`templatePatch`, a templated
    value), since what a template renders is not worked out here."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if any(option in item.lower().replace(" ", "") for option in _ARGO_REPLACE):
                return True
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _content_digest(obj: Mapping[str, object], marker: str, tree: str = "", *, whole: bool = False) -> str:
    """A digest of what, changed, has the reconciler replace the object (see `Seen.digest`); with
    `whole` (a reconciler source: any change of it counts), of all of it."""
    # Replaced on any drift (a hook: at every sync).
    whole = whole or marker in ("argo", "hook") or tree == "argo"
    body = dict(obj) if whole else {k: v for k, v in obj.items() if k != "metadata"}
    text = json.dumps([marker, tree, body] if tree else [marker, body], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


_LOCAL = "local:"  # the digest of a `Seen.local` object starts with it


@dataclass(frozen=True, slots=True)
class Approval:
    pattern: str
    commit: str
    approver: str
    # `in PATH`: the file or directory of the repository the approved object was written in (or the
    # kustomization that rendered it): where the trailer says its approval applies. "" when it
    # names none: then it approves only the removal its own commit makes (`before`).
    scope: str = ""
    # The approving commit's first parent ("" for a root commit): what its own change is against.
    parent: str = ""
    # What the approving commit's own tree holds (object -> content digest): it approves only the
    # removal of what it no longer holds, the replacement of what it holds as the candidate does
    # (its signer saw the change). None until the runner has looked.
    present: Mapping[ObjectKey, str] | None = None
    # What its first parent's tree holds, under the same paths: an approval that names no path
    # counts only for an object its own commit removes (or replaces) there. None until the runner
    # has looked, or when it did not need to (a scoped approval).
    before: Mapping[ObjectKey, str] | None = None
    # Of what `present` and `before` hold, the reconcilers that would not apply it (`Seen.unapplied`):
    # a tree that holds an object only where they do not read it no longer holds it for them.
    present_unapplied: Mapping[ObjectKey, frozenset[str]] | None = None
    before_unapplied: Mapping[ObjectKey, frozenset[str]] | None = None
    # A `Trustgate-Approve-Source` trailer: it approves a reconciler source's change (`sources`),
    # never a removal of a protected object (`removals`), nor the other way round.
    source: bool = False


def parse_approval(value: str) -> tuple[str, str]:
    """(pattern, scope) of a trailer value: `Kind/namespace/name` or `Kind/namespace/name in PATH`.

    PATH is a file or directory of the repository (`./` and trailing slashes dropped); one that
    names the whole repository (`.`, `/`) is kept as "." and covers nothing: an approval that
    reaches every gate of the repository is what the scope is there to rule out.
    """
    parts = value.split(None, 2)
    if len(parts) == 3 and parts[1] == "in":
        return parts[0], repo_path(parts[2]) or "."
    return value.strip(), ""


def _covers(scope: str, path: str | None) -> bool:
    if not path or scope in ("", "."):
        return False
    path = repo_path(path)
    return within(path, scope)  # scope is not the whole tree


def _places(seen: Seen) -> list[str]:
    """Where `seen` is, as an approval may name it: the kustomization that rendered it, and its file
    when that lies in the kustomization's directory (a base another gate's kustomization includes
    too is named by the kustomization, so an approval naming the shared file's path for one gate is
    not taken by the other), or its file alone (a plain directory)."""
    rendered, file = seen.source.rendered_from, seen.source.file
    if rendered is None:
        return [file]
    return [rendered, file] if _covers(repo_path(rendered), file) or not repo_path(rendered) else [rendered]


def approval_place(seen: Seen) -> str:
    """The path to name in a scoped approval of `seen`'s removal: the kustomization that rendered it,
    or the file it is written in."""
    for path in (seen.source.rendered_from, seen.source.file):
        if path and repo_path(path):
            return repo_path(path)
    return ""


def key_of(obj: Mapping[str, Any], scopes: kinds.Scopes = _BUILT_IN) -> ObjectKey | None:
    """The object's identity in the cluster: a cluster-scoped kind's is in no namespace, whatever
    its metadata.namespace says (the API server clears it), so an approval or exception for a
    namespace does not reach it."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    metadata = obj.get("metadata")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not isinstance(metadata, Mapping):
        return None
    name = metadata.get("name")
    if not isinstance(name, str):
        return None
    group = api_version.rpartition("/")[0]  # v1 -> "", apps/v1 -> apps: versions of a kind are one object
    return ObjectKey(group, kind, scopes.namespace_of(obj), name)


def source_path(source: Source, paths: Sequence[str]) -> str:
    """The reconciler source `source` is applied by ("" if no entry of `paths` holds it): for a file
    read as it is, the deepest entry of `paths` (normalised) that holds it, whatever their order
    (nested entries are nested Applications or Kustomizations: the one nearest the file reads it,
    `reconcilers.Views.base`); for a rendered object, the kustomization that rendered it (not its
    base file, which another entry may hold too).

    A reconciler source that renders points at one kustomization (a Flux Kustomization's path, an
    Argo CD kustomize source); two kustomizations under one entry, a base and the overlay that
    includes it (`deploy/base`, `deploy/overlays/prod` under `deploy`), are two sources, each of
    which applies its own copy: not one object defined twice, and a removal from either is a
    removal.
    """
    rendered = source.rendered_from
    where = repo_path(rendered if rendered is not None else source.file)
    holding = [p for p in map(repo_path, paths) if within(where, p)]
    if not holding:
        return ""
    if rendered is not None:
        return where or "."
    return max(holding, key=lambda p: (p.count("/") + bool(p), len(p))) or "."


def inventory(
    documents: Iterable[Document],
    scopes: kinds.Scopes = _BUILT_IN,
    paths: Sequence[str] = (),
    unapplied: Callable[[Source], Mapping[str, str]] | None = None,
) -> dict[ObjectKey, Seen]:
    """The objects of a rendered tree, by identity (and, given `paths`, by the entry they are under).

    An object defined twice under one entry is reported by `duplicates`; here the first copy stands
    for it, but a reconciler that applies any copy applies the object (`Seen.unapplied`, from
    `unapplied`: which reconcilers would not apply what a source holds, `reconcilers.Views`).
    """
    documents = list(documents)
    tree, tree_file = _tree_recreates(documents)
    named = _substituted(documents)
    appliers = _appliers(documents) if named else []
    out: dict[ObjectKey, Seen] = {}
    skipped: dict[ObjectKey, dict[str, str]] = {}
    for doc in documents:
        key = key_of(doc.obj, scopes)
        if key is not None and paths:
            key = dataclasses.replace(key, path=source_path(doc.source, paths))
        if key is not None and unapplied is not None:
            found = unapplied(doc.source)
            copies = skipped.get(key)
            skipped[key] = dict(found) if copies is None else {r: w for r, w in copies.items() if r in found}
        if key is not None and key not in out:
            marker = _recreates(doc.obj)
            source = (
                reconciler_source(key)
                or _argocd_config(key, doc.obj)
                or (key.group == "" and _substitutes(key, named, _landing(doc, appliers)))
            )
            # Not the tree's marker: it tells how what changes is applied, and is no change of a
            # source (whose every change counts, `whole`).
            digest = _content_digest(doc.obj, marker, "" if source else tree, whole=source)
            why = (
                "it is a hook (argocd.argoproj.io/hook or helm.sh/hook): Argo CD deletes it and creates "
                "it again at each sync it runs in (BeforeHookCreation, the default), or deletes it once run"
                if marker == "hook"
                else "it changes under an annotation that lets the reconciler replace it"
                if marker
                else f"{tree_file} has the reconciler replace what it cannot patch"
                if tree
                else ""
            )
            api_version = str(doc.obj.get("apiVersion"))
            local = _local_config(doc.obj)
            if local:  # a state of its own: what approves its removal must be told from it (`_saw`)
                digest = _LOCAL + digest
            out[key] = Seen(
                key, api_version, doc.source, digest, bool(marker or tree), why, local, directs=source
            )
    for key, found in skipped.items():
        if found:
            out[key] = dataclasses.replace(out[key], unapplied=found)
    return out


def approvals(commits: Sequence[Commit], approvers: Sequence[str]) -> list[Approval]:
    """Deletion approvals in the range: trailers of commits signed by a configured approver.

    What each may approve is narrowed by the runner (`Approval.present`): an approval counts for an
    object only where the approving commit descends from the gated commit and its own tree no
    longer holds the object, so an approval on an abandoned branch, merged in from either side,
    lends itself to no deletion it did not see.
    """
    out: list[Approval] = []
    if not approvers:
        return out
    for commit in commits:
        if not commit.approvals and not commit.source_approvals:
            continue
        identities = signer_identities(commit)
        approver = next(
            (i for i in identities if any(fnmatch.fnmatchcase(i.lower(), p.lower()) for p in approvers)), None
        )
        if approver is None:
            continue
        parent = commit.parents[0] if commit.parents else ""
        for values, source in ((commit.approvals, False), (commit.source_approvals, True)):
            for value in values:
                pattern, scope = parse_approval(value)
                out.append(Approval(pattern, commit.sha, approver, scope=scope, parent=parent, source=source))
    return out


def _applies(held: str | None, skipped: frozenset[str], lost: Collection[str]) -> bool:
    """Whether a tree that holds the object as `held` (a digest; None: not at all) has one of the
    `lost` reconcilers apply it (`skipped`: those that would not)."""
    return held is not None and any(r not in skipped for r in lost)


def _readers(held: str | None, skipped: Collection[str]) -> frozenset[str]:
    """The reconcilers that apply what a tree holds as `held` (None: nothing), `skipped` not."""
    return frozenset() if held is None else frozenset(r for r in reconcilers.RECONCILERS if r not in skipped)


def _saw(
    approval: Approval, key: ObjectKey, gone: Seen | None, now: Seen | None, lost: Collection[str] = ()
) -> str:
    """ "" when the approval covers this change, else why not: of a protected object (`gone` the
    gated tree's; `now` the candidate's when it is replaced, else None) or of a reconciler source
    (`approval.source`; `gone` None: an addition, `now` None: a removal).

    The approving commit's tree must show the change: the object gone, or as the candidate holds it
    (the same content, applied by the same reconcilers). Gone means gone for the reconcilers that
    lose it (`lost`; none given: every one that applied it), so a tree holding it only where they do
    not read it (a name Flux ignores) shows it gone. And the approval must be for this object
    *here*: one object (a PVC shop/data) can be defined under the paths of several gates of one
    repository (staging/, prod/), each with its own cluster, and the trailer alone does not say
    which. So a trailer with `in PATH` counts where PATH holds the object's file (or the
    kustomization that rendered it), and one without counts only where its own commit makes this
    change (removes, replaces, adds, moves it) under this gate's paths: what its signer saw in that
    commit's diff.
    """
    noun = "source" if approval.source else "object"
    if approval.present is None:
        return "its commit does not descend from the gated commit, or its tree cannot be rendered"
    holds = approval.present.get(key)
    skipped = (approval.present_unapplied or {}).get(key, frozenset())
    if gone is not None:
        lost = (
            lost or [r for r in reconcilers.RECONCILERS if r not in gone.unapplied] or reconcilers.RECONCILERS
        )
    # Holding it with kustomize's local-config annotation is not holding it only where that is the
    # change approved (gaining the annotation: `gone` had none). Where the gated tree had it
    # already, the approving commit that still holds it saw no removal.
    if (
        now is None
        and _applies(holds, skipped, lost)
        and not (holds is not None and holds.startswith(_LOCAL) and gone is not None and not gone.local)
    ):
        return f"its commit still holds the {noun}"
    if now is not None and (
        holds != now.digest or _readers(holds, skipped) != _readers(now.digest, now.unapplied)
    ):
        return f"its commit does not hold the {noun} as the candidate does"
    if approval.scope:
        if any(_covers(approval.scope, p) for seen in (gone, now) if seen is not None for p in _places(seen)):
            return ""
        return f"it names {approval.scope}, which does not hold the {noun} here"
    if approval.before is None and approval.parent:
        return "it names no path, and what its own commit changes is unknown (its parent cannot be rendered)"
    had = approval.before.get(key) if approval.before is not None else None
    had_skipped = (approval.before_unapplied or {}).get(key, frozenset())
    if approval.source:  # its commit changes the source (a root commit adds what it holds)
        made = (had, _readers(had, had_skipped)) != (holds, _readers(holds, skipped))
    else:  # its commit removes or replaces what its parent held
        made = had is not None and (
            had != holds
            or (now is None and _applies(had, had_skipped, lost) and not _applies(holds, skipped, lost))
        )
    if made:
        return ""
    if approval.source:
        return "it names no path, and its own commit does not make this change under this gate's paths"
    return "it names no path, and its own commit does not remove the object from this gate's paths"


def _judged(
    key: ObjectKey,
    seen: Seen,
    finding: Finding,
    *,
    granted: Sequence[Approval],
    source: bool,
    saw: Callable[[Approval], str],
    rollback_note: str,
    deleted: bool,
) -> DocumentResult:
    """The result of one change that needs an approval (`finding`, blocking): the first approval of
    its trailer (`source`: `Trustgate-Approve-Source`) whose pattern names the object and that
    `saw` takes makes it informational; so does a rollback. `deleted`: the object is reported
    where the gated tree held it."""
    trailer = finding.metadata["approvalTrailer"]
    approval, refused = None, []
    for candidate in granted:
        if candidate.source != source or not fnmatch.fnmatchcase(key.label, candidate.pattern):
            continue
        why_not = saw(candidate)
        if not why_not:
            approval = candidate
            break
        refused.append(f"the approval in commit {candidate.commit[:12]} does not count here: {why_not}")
    if refused and approval is None:
        finding.note = "; ".join(refused[:3]) + f"; write `{trailer}`"
    if approval is not None:
        finding.severity = Severity.INFO
        finding.note = f"approved by {approval.approver} in commit {approval.commit[:12]}"
        finding.metadata = {**finding.metadata, "approvedBy": approval.approver, "approval": approval.commit}
    elif rollback_note:
        finding.severity = Severity.INFO
        finding.note = rollback_note
    finding.message, finding.fix = reconcilers.printable(finding.message), reconcilers.printable(finding.fix)
    finding.note = reconcilers.printable(finding.note) if finding.note else finding.note
    where = seen.source
    if deleted:
        where = Source(f"(deleted) {where.file}", where.line, where.index, where.rendered_from)
    return DocumentResult(where, seen.api_version, key.kind, key.namespace or None, key.name, [finding])


def _trailer(name: str, key: ObjectKey, seen: Seen) -> tuple[str, str]:
    """The trailer that approves a change of `seen` (naming where it is), and how the fix says it."""
    place = approval_place(seen)
    trailer = f"{name}: {key.label}" + (f" in {place}" if place else "")
    how = f"have an approver (commits.approvers) sign a commit with the trailer `{trailer}`" + (
        f" (the commit that itself makes this change may leave out ` in {place}`)" if place else ""
    )
    return trailer, how


def removals(
    before: Mapping[ObjectKey, Seen],
    after: Mapping[ObjectKey, Seen],
    *,
    protected_kinds: Sequence[str],
    granted: Sequence[Approval],
    severity: Severity,
    rollback_note: str = "",
) -> list[DocumentResult]:
    """One result per protected object the candidate removes; a blocking finding unless approved.

    An object that stays but changes under an annotation that lets the reconciler delete and
    create it again (`Seen.recreate`) may be removed as well: it needs the same approval.
    """
    protected = set(protected_kinds)
    # Changed under the marker, or newly marked: a change that could not be applied before (the
    # gated ref moves whether the reconciler managed or not) is applied by replacing it now.
    # The digest holds the marker too (`Seen.digest`): gaining one is a change.
    replaced = {
        k for k, now in after.items() if k in before and now.recreate and now.digest != before[k].digest
    }
    # Gaining kustomize's local-config annotation: kustomize leaves the object out and the reconciler
    # prunes it. One that had it already may have been applied all the same (a reconciler that does
    # not build with kustomize): removing it is a deletion; keeping it is no change.
    dropped = {k for k, now in after.items() if k in before and now.local and not before[k].local}
    # Still in the tree, but where a reconciler that applied it no longer reads it (a name Flux's
    # source-controller ignores, a link, a `.json` file; a subdirectory under Argo CD's directory
    # source): that reconciler prunes it (`Seen.unapplied`). What the gate reads is the union of
    # what the reconcilers apply; what stays is only what each one that applied it still applies.
    unread = {k: lost for k, now in after.items() if k in before and (lost := _lost(before[k], now))}
    judged: list[tuple[ObjectKey, Seen, DocumentResult]] = []
    for key in sorted(
        k
        for k in before
        if (k not in after or k in replaced or k in dropped or k in unread) and k.kind in protected
    ):
        seen = before[key]
        lost = unread.get(key, {})
        now = None if key in dropped or lost else after.get(key)
        how = "would be deleted"
        if lost:
            how = f"would be deleted ({_reasons(lost)})"
        elif key in dropped:
            how = (
                f"would be deleted (it gains the {LOCAL_CONFIG} annotation: kustomize, with which Flux "
                "builds every path, leaves it out, and the reconciler prunes it)"
            )
        elif key in replaced:
            how = f"would be deleted and created again ({after[key].why})"
        trailer, fix = _trailer(APPROVAL_TRAILER, key, seen)
        finding = Finding(
            rule="destructive-change",
            severity=severity,
            message=f"{key.label} {how}: {key.kind} is a protected kind",
            source="presync",
            fix=f"keep it, or {fix}, or add an exception",
            policy="commits/protected-kinds",
            metadata={"deleted": key.label, "gatedSource": seen.source.file, "approvalTrailer": trailer}
            | ({"notAppliedBy": [r for r in reconcilers.RECONCILERS if r in lost]} if lost else {}),
        )
        result = _judged(
            key,
            seen,
            finding,
            granted=granted,
            source=False,
            saw=functools.partial(_saw, key=key, gone=seen, now=now, lost=list(lost)),
            rollback_note=rollback_note,
            deleted=True,
        )
        judged.append((key, seen, result))
    return _once(judged)


def _once(judged: Sequence[tuple[ObjectKey, Seen, DocumentResult]]) -> list[DocumentResult]:
    """The results, with the removals of one object under several reconciler sources (a file read as
    it is and the kustomization that renders it, `ObjectKey.path`) reported once, by the first one
    whose trailer's path covers where each of the others is (`_covers`, as `_saw` reads it), so
    that the one trailer it asks for approves them all; only where all are judged alike (blocking,
    approved), else each is reported."""
    groups: dict[tuple[str, str, str, str], list[tuple[ObjectKey, Seen, DocumentResult]]] = {}
    for item in judged:
        key = item[0]
        groups.setdefault((key.group, key.kind, key.namespace, key.name), []).append(item)
    out: list[DocumentResult] = []
    for items in groups.values():
        kept = None
        if len({r.findings[0].severity for _, _, r in items}) == 1:
            kept = next(
                (
                    result
                    for _, seen, result in items
                    if (place := approval_place(seen))
                    and all(any(_covers(place, p) for p in _places(other)) for _, other, _ in items)
                ),
                None,
            )
        out.extend([kept] if kept is not None else [r for _, _, r in items])
    return out


def _lost(before: Seen, after: Seen) -> dict[str, str]:
    """The reconcilers that applied `before` and do not apply `after`, each with why not."""
    return {r: why for r, why in after.unapplied.items() if r not in before.unapplied}


def _reasons(why: Mapping[str, str]) -> str:
    return "; ".join(why[r] for r in reconcilers.RECONCILERS if r in why)


def sources(
    before: Mapping[ObjectKey, Seen],
    after: Mapping[ObjectKey, Seen],
    *,
    granted: Sequence[Approval],
    severity: Severity,
    rollback_note: str = "",
) -> list[DocumentResult]:
    """One result per reconciler source (`Seen.directs`) the candidate adds, changes (any field),
    removes, or moves where a reconciler that applied it no longer reads it, or where one that did
    not now does (per reconciler, as `removals`: `Seen.unapplied`), against `before` (the gated
    tree's objects; empty on a first run, where every source of the tree is an addition: one that
    already follows `main` would otherwise never be looked at); a blocking finding unless a
    `Trustgate-Approve-Source` approval covers it (`_saw`, as `removals` approves).
    """
    out: list[DocumentResult] = []
    for key in sorted(
        k for k in {*before, *after} if any(s.directs for s in (before.get(k), after.get(k)) if s)
    ):
        gone, now = before.get(key), after.get(key)
        was = _readers(gone.digest, gone.unapplied) if gone is not None else frozenset()
        is_ = _readers(now.digest, now.unapplied) if now is not None else frozenset()
        if gone is not None and now is not None and gone.digest == now.digest and was == is_:
            continue
        seen = now or gone
        assert seen is not None
        if gone is None:
            how = "is added"
        elif now is None:
            how = "is removed (its reconciler prunes what it applied)"
        else:
            parts = ["changes"] if gone.digest != now.digest else []
            if lost := {r: w for r, w in now.unapplied.items() if r in was}:
                parts.append(
                    "is no longer applied by its reconciler, which prunes it and what it applied "
                    f"({_reasons(lost)})"
                )
            if gained := {r: w for r, w in gone.unapplied.items() if r in is_}:
                parts.append(f"is now applied where it was not (before: {_reasons(gained)})")
            how = " and ".join(parts)
        trailer, fix = _trailer(SOURCE_TRAILER, key, seen)
        finding = Finding(
            rule="reconciler-source",
            severity=severity,
            message=f"{key.label} {how}: a reconciler source tells Flux or Argo CD what to pull and how to "
            "apply it, so a change of it can point the cluster at content the gate never judges (another "
            "branch, path or repository, patches), past the gate",
            source="presync",
            fix=f"{fix}, or add an exception (rule reconciler-source)",
            policy="presync/reconciler-sources",
            metadata={"source": key.label, "file": seen.source.file, "approvalTrailer": trailer},
        )
        out.append(
            _judged(
                key,
                seen,
                finding,
                granted=granted,
                source=True,
                saw=functools.partial(_saw, key=key, gone=gone, now=now),
                rollback_note=rollback_note,
                deleted=now is None,
            )
        )
    return out


def duplicates(
    documents: Iterable[Document],
    paths: Sequence[str],
    *,
    scopes: kinds.Scopes = _BUILT_IN,
    severity: Severity,
) -> list[DocumentResult]:
    """One blocking result per further copy of an object defined more than once in one reconciler
    source (`source_path`: files read as they are under one entry of `paths`; one kustomization,
    which refuses such a copy itself).

    Which copy a reconciler applies differs: kustomize (every Flux path) refuses to build such a
    path, Argo CD's directory source applies the last copy (`DeduplicateTargetObjects`), and the
    gate's diff and UPDATE judgement took the first. Rather than guess, the change is refused.

    A copy without `metadata.namespace` of a kind that is namespaced (or of unknown scope) is a copy
    of the same kind and name in any namespace: the reconciler puts it in its destination namespace
    (Argo CD does so before `DeduplicateTargetObjects`, then keeps the last copy; a Flux
    Kustomization's `targetNamespace`, or the service account's namespace), which the gate does not
    know, so it may well be the namespace of the other copy.
    """
    first: dict[ObjectKey, Document] = {}
    # (group, kind, name, path) -> the first copy with a namespace, the first without one
    named: dict[tuple[str, str, str, str], tuple[Document | None, Document | None]] = {}
    out: list[DocumentResult] = []
    for doc in documents:
        if not doc.kubernetes or doc.list_role == "list":
            continue
        key = key_of(doc.obj, scopes)
        if key is None:
            continue
        key = dataclasses.replace(key, path=source_path(doc.source, paths))
        earlier = first.get(key)
        if earlier is None and scopes.namespaced(doc.obj) is not False:
            with_ns, without_ns = named.get((key.group, key.kind, key.name, key.path), (None, None))
            earlier = (with_ns or without_ns) if not key.namespace else without_ns
        if earlier is None:
            first[key] = doc
            group = (key.group, key.kind, key.name, key.path)
            with_ns, without_ns = named.get(group, (None, None))
            named[group] = (
                with_ns or (doc if key.namespace else None),
                without_ns or (None if key.namespace else doc),
            )
            continue
        was = earlier.source
        other = key_of(earlier.obj, scopes)
        label = other.label if other is not None and other.namespace else key.label
        unset = (
            " (one copy names no namespace: the reconciler puts it in its destination namespace, "
            "which may be the other's)"
            if other is not None and other.namespace != key.namespace
            else ""
        )
        finding = Finding(
            rule="duplicate-object",
            severity=severity,
            message=f"{label} is defined twice under {key.path or 'the paths'}: at {was.file}:{was.line} "
            f"and at {doc.source.file}:{doc.source.line}{unset}; kustomize (every Flux path) refuses to "
            "build that, Argo CD applies the last copy: what is applied is not what one copy says",
            source="presync",
            fix="keep one definition of the object"
            + (", and give every copy its namespace" if unset else ""),
            policy="presync",
            metadata={"object": label, "first": f"{was.file}:{was.line}"},
        )
        out.append(
            DocumentResult(doc.source, doc.api_version, key.kind, key.namespace or None, key.name, [finding])
        )
    return out


def same_repository(url: str, other: str) -> bool:
    """Whether two git URLs name one repository: scheme, user, `.git`, a trailing slash and case
    aside (`ssh://git@host/org/repo.git`, `git@host:org/repo`, `https://host/org/repo`)."""

    def bare(text: str) -> str:
        text = text.strip().lower().rstrip("/").removesuffix(".git")
        if "://" in text:
            text = text.split("://", 1)[1]
        elif ":" in text.split("/", 1)[0]:  # scp-like: git@host:org/repo
            text = text.replace(":", "/", 1)
        host, _, path = text.partition("/")
        host = host.rpartition("@")[2].split(":")[0]  # no user, no port
        return f"{host}/{path.strip('/')}"

    return bool(url.strip()) and bare(url) == bare(other)


def _git_kustomizations(
    documents: Sequence[Document], remotes: Sequence[str]
) -> list[tuple[Document, Mapping[str, object], Mapping[str, object], str, bool]]:
    """The Flux Kustomizations of the tree whose GitRepository is (or, not known, may be) the gated
    repository: (document, metadata, spec, its `spec.path` as a repository path, certain).

    `remotes`: the gated repository's URLs ("" or none: not known). A GitRepository of the tree with
    a `spec.url` that is none of them is another repository; one that is not in the tree (Flux's
    bootstrap one, in `flux-system`) may be this one.
    """
    urls = _repository_urls(documents)
    out = []
    for doc in documents:
        spec = _flux(doc.obj, _FLUX_KUSTOMIZE, "Kustomization")
        metadata = doc.obj.get("metadata")
        ref = spec.get("sourceRef") if spec is not None else None
        if spec is None or not isinstance(metadata, Mapping) or not isinstance(ref, Mapping):
            continue
        if ref.get("kind", "GitRepository") != "GitRepository" or not isinstance(spec.get("path", ""), str):
            continue
        url = _source_url(metadata, ref, urls)
        if _elsewhere(url, remotes):
            continue  # another repository
        certain = url is not None and any(same_repository(url, r) for r in remotes)
        out.append((doc, metadata, spec, secure_path(str(spec.get("path", ""))), certain))
    return out


def _repository_urls(documents: Sequence[Document]) -> dict[tuple[str, str], str]:
    """The `spec.url` of each GitRepository of the tree, by (namespace, name)."""
    urls: dict[tuple[str, str], str] = {}
    for doc in documents:
        spec = _flux(doc.obj, "source.toolkit.fluxcd.io", "GitRepository")
        metadata = doc.obj.get("metadata")
        if spec is not None and isinstance(metadata, Mapping):
            urls[(str(metadata.get("namespace") or ""), str(metadata.get("name")))] = str(spec.get("url", ""))
    return urls


def _of_another_repository(documents: Sequence[Document], remotes: Sequence[str]) -> set[int]:
    """The Flux Kustomizations of the tree (their `id`) whose GitRepository, in the tree, is known to
    be another repository than the gated one (`remotes`; none known: none is)."""
    if not any(remotes):
        return set()
    urls = _repository_urls(documents)
    out: set[int] = set()
    for doc in documents:
        spec = _flux(doc.obj, _FLUX_KUSTOMIZE, "Kustomization")
        metadata = doc.obj.get("metadata")
        ref = spec.get("sourceRef") if spec is not None else None
        if not isinstance(metadata, Mapping) or not isinstance(ref, Mapping):
            continue
        if ref.get("kind", "GitRepository") != "GitRepository":
            continue
        if _elsewhere(_source_url(metadata, ref, urls), remotes):
            out.add(id(doc))
    return out


def _source_url(
    metadata: Mapping[str, object], ref: Mapping[str, object], urls: Mapping[tuple[str, str], str]
) -> str | None:
    """The URL of the GitRepository a Kustomization's `sourceRef` names (in its own namespace unless
    the reference names one), when the tree holds it (`_repository_urls`)."""
    return urls.get((str(ref.get("namespace") or metadata.get("namespace") or ""), str(ref.get("name"))))


def _elsewhere(url: str | None, remotes: Sequence[str]) -> bool:
    """Whether a GitRepository's URL is known to be another repository than the gated one (`remotes`,
    its URLs; none known: it may be this one)."""
    return url is not None and any(remotes) and not any(same_repository(url, r) for r in remotes)


def _label(kind: str, metadata: Mapping[str, object]) -> str:
    return "/".join(str(p) for p in (kind, metadata.get("namespace"), metadata.get("name")) if p)


# What kustomize-controller writes into the kustomization of a Kustomization's path before it builds
# it (fluxcd/pkg kustomize/kustomize_generator.go `WriteFile`): the namespace, a name prefix and
# suffix, patches, images and components (paths relative to `spec.path`, appended to the
# kustomization's own). `commonMetadata` and `postBuild` are applied after the build, and are not
# modelled (a change of either is a change of the Kustomization, which needs an approval).
_FLUX_BUILD_FIELDS = ("targetNamespace", "namePrefix", "nameSuffix", "patches", "images", "components")


@dataclass(frozen=True, slots=True)
class FluxBuild:
    """What one Flux Kustomization of the tree builds: its `spec.path` of this repository, with what
    kustomize-controller adds to that path's kustomization (`_FLUX_BUILD_FIELDS`). Or (`reconciler`
    argocd) what one source of an Argo CD Application builds: its path, with what its `kustomize`
    adds (`argocd_builds`), or, where the path holds no kustomization, the files its directory
    source reads (`recurse`)."""

    label: str  # Kustomization/namespace/name, Application/namespace/name
    file: str  # the file it is written in
    path: str  # its spec.path, as a repository path ("" the root)
    namespace: str | None = None  # spec.targetNamespace
    name_prefix: str | None = None
    name_suffix: str | None = None
    patches: tuple[Mapping[str, object], ...] = ()
    images: tuple[Mapping[str, object], ...] = ()
    components: tuple[str, ...] = ()
    ignore_missing: bool = False  # spec.ignoreMissingComponents
    reconciler: str = reconcilers.FLUX
    recurse: bool = False  # an Argo CD directory source's directory.recurse
    # The Flux Kustomization, when it has a `spec.postBuild`: what it builds is substituted
    # (`variables.flux_substitution`), one application per Kustomization that substitutes differently.
    substitutes: Mapping[str, object] | None = None

    @property
    def plain(self) -> bool:
        """Whether it builds its path as it is written (nothing added to its kustomization, nothing
        substituted after the build)."""
        return not (
            self.substitutes is not None
            or self.namespace
            or self.name_prefix
            or self.name_suffix
            or self.patches
            or self.images
            or self.components
        )

    @property
    def identity(self) -> str:
        """What tells two builds apart (two Kustomizations building one path alike are one build)."""
        return json.dumps(
            [
                self.reconciler,
                self.recurse,
                self.path,
                self.namespace,
                self.name_prefix,
                self.name_suffix,
                self.patches,
                self.images,
                self.components,
                self.ignore_missing,
                _post_build(self.substitutes),
            ],
            sort_keys=True,
            default=str,
        )

    def kustomization(self, written: Mapping[str, object]) -> dict[str, object]:
        """The kustomization kustomize-controller builds: `written` (the path's own, or the one it
        generates) with what the Kustomization adds."""
        out = dict(written)
        if self.namespace:
            out["namespace"] = self.namespace
        if self.name_prefix:
            out["namePrefix"] = self.name_prefix
        if self.name_suffix:
            out["nameSuffix"] = self.name_suffix
        if self.patches:
            own = out.get("patches")
            out["patches"] = [*(own if isinstance(own, list) else []), *self.patches]
        if self.images:
            own = out.get("images")
            images = [dict(i) for i in own if isinstance(i, Mapping)] if isinstance(own, list) else []
            for image in self.images:
                # kustomize_generator.go: an entry of the same name (compared exactly) is replaced
                # whole (`kus.Images[index] = newImage`), not merged; another is appended.
                at = next((i for i, x in enumerate(images) if x.get("name") == image.get("name")), None)
                if at is None:
                    images.append(dict(image))
                else:
                    images[at] = dict(image)
            out["images"] = images
        if self.components:
            own = out.get("components")
            out["components"] = [*(own if isinstance(own, list) else []), *self.components]
        return out


# The fields of kustomize's Kustomization (sigs.k8s.io/kustomize/api/types): kustomize and
# kustomize-controller read a kustomization with sigs.k8s.io/yaml, which matches keys regardless of
# case (encoding/json), so `Patches:` is its patches.
KUSTOMIZATION_FIELDS = frozenset(
    {
        "apiVersion", "kind", "metadata", "openapi", "namePrefix", "nameSuffix", "namespace",
        "commonLabels", "labels", "commonAnnotations", "patchesStrategicMerge", "patchesJson6902",
        "patches", "images", "replacements", "replicas", "vars", "sortOptions", "resources",
        "components", "crds", "bases", "configMapGenerator", "secretGenerator", "helmGlobals",
        "helmCharts", "helmChartInflationGenerator", "generatorOptions", "configurations",
        "generators", "transformers", "validators", "buildMetadata",
    }
)  # fmt: skip
_FIELDS_FOLDED = {f.lower(): f for f in KUSTOMIZATION_FIELDS}
# Go's encoding/json (sigs.k8s.io/yaml, which kustomize and kustomize-controller read kustomizations
# with) matches a key to a field by Unicode simple folding (its foldName): besides ASCII case, U+017F
# LATIN SMALL LETTER LONG S folds to `s` and U+212A KELVIN SIGN to `k`. No other non-ASCII rune folds
# to an ASCII letter, and kustomize's fields are ASCII.
_GO_FOLDS = str.maketrans({"\u017f": "s", "\u212a": "k"})


def go_fold(key: str) -> str:
    """`key` as Go's encoding/json folds it to match a field of ASCII name: ASCII letters in lower
    case, the long s (U+017F) as `s`, the Kelvin sign (U+212A) as `k`; any other rune is kept (it
    cannot match an ASCII name)."""
    return "".join(c.lower() if c.isascii() else c for c in key.translate(_GO_FOLDS))


def case_variant_keys(kustomization: Mapping[Any, object]) -> list[str]:
    """The keys of `kustomization` that name one of kustomize's fields in another case (`Patches`, or
    `namespace` with a long s: Go's encoding/json folds keys as `go_fold` does), or that name one
    field twice: where the reconciler merges its own fields into that kustomization, which of them
    kustomize takes cannot be worked out, so the gate refuses it."""
    out: list[str] = []
    seen: dict[str, str] = {}
    for key in kustomization:
        if not isinstance(key, str):
            continue
        field = _FIELDS_FOLDED.get(go_fold(key))
        if field is None:
            continue
        if key != field or field in seen:
            out.append(key)
        seen[field] = key
    return out


def flux_builds(
    documents: Iterable[Document], paths: Sequence[str], *, remotes: Sequence[str]
) -> tuple[list[FluxBuild], list[InputProblem]]:
    """What the Flux Kustomizations of the tree (of this repository, `_git_kustomizations`) build
    under `paths`, once per distinct build; and a problem per Kustomization whose build cannot be
    worked out (a field of the wrong type, a component that is not a local relative path), so that
    the gate fails closed. One whose path lies outside `paths` is `unjudged_paths`' to warn of."""
    roots = [repo_path(p) for p in paths]
    out: dict[str, FluxBuild] = {}
    problems: list[InputProblem] = []
    for doc, metadata, spec, path, _ in _git_kustomizations(list(documents), remotes):
        if not any(within(path, root) for root in roots):
            continue
        label = _label("Kustomization", metadata)
        values, why = _build_values(spec, {f: f for f in _FLUX_BUILD_FIELDS}, "spec")
        if why:
            problems.append(
                InputProblem(
                    Source(doc.source.file, doc.source.line),
                    "presync/flux-build",
                    reconcilers.printable(
                        f"{label} applies {path or '.'}, but what it builds there cannot be worked out: {why}"
                    ),
                    "fix the Kustomization (kustomize-controller refuses it too)",
                )
            )
            continue
        build = FluxBuild(
            label,
            doc.source.file,
            path,
            namespace=values.get("targetNamespace"),
            name_prefix=values.get("namePrefix"),
            name_suffix=values.get("nameSuffix"),
            patches=tuple(values.get("patches", ())),
            images=tuple(values.get("images", ())),
            components=tuple(values.get("components", ())),
            ignore_missing=spec.get("ignoreMissingComponents") is True,
            substitutes=doc.obj if spec.get("postBuild") is not None else None,
        )
        out.setdefault(build.identity, build)
    return list(out.values()), problems


def _post_build(kustomization: Mapping[str, object] | None) -> object:
    """What tells apart two substitutions: the postBuild and the namespace its objects are read in."""
    if kustomization is None:
        return None
    spec, metadata = kustomization.get("spec"), kustomization.get("metadata")
    return [
        spec.get("postBuild") if isinstance(spec, Mapping) else None,
        metadata.get("namespace") if isinstance(metadata, Mapping) else None,
    ]


def substitution_sources(
    written: Sequence[Document],
    built: Sequence[Document] = (),
    *,
    substituted: Callable[[Document], bool] = lambda doc: False,
    flux_only: bool = False,
    remotes: Sequence[str] = (),
) -> list[variables.SourceObject]:
    """The ConfigMaps and Secrets of the tree, each once in every namespace it may land in
    (`_landing`: its own, or a Flux Kustomization's `targetNamespace`), for what a Kustomization
    substitutes from (`variables.flux_substitution`). One whose namespace is not known is left out:
    what it sets stays unknown, and is judged so.

    kustomize-controller reads a `substituteFrom` object from the cluster, where it is as it was
    last applied: by a Kustomization that substitutes (`built`: the documents as each build of the
    tree applies them), substituted; by a reconciler that does not (`written`: as written),
    as written. A copy as written that only Kustomizations that substitute apply (`substituted`,
    `changes.substituted_only`) is not what the cluster holds: under `presync.reconciler: flux`
    (`flux_only`) it is left out once a build's copy of it is known, and until then, as under `any`
    (where another reconciler may apply it as written), a value of it holding `$` is taken as not
    known (`variables.SourceObject.settled`). Every copy names the document it is written in, so that
    copies of one object are one source, not a conflict.

    Where an object lands counts only the Kustomizations whose GitRepository is (or may be) this
    repository (`remotes`, the gated repository's URLs): one of another repository, or of an OCI or
    Bucket source, applies none of the tree's files, so its `targetNamespace` is not one they land
    in (its own objects are there, with values not known here). Under `flux_only`, an object whose
    every Kustomization sets a `targetNamespace` is not in its own namespace either (one of that
    name there lives only in the cluster).
    """
    documents = [*written, *built]
    appliers = _appliers(documents, remotes=remotes)
    origins = {_origin(doc) for doc in built}
    as_written = {id(doc) for doc in written}
    out: list[variables.SourceObject] = []
    for doc in documents:
        kind, api_version = doc.obj.get("kind"), doc.obj.get("apiVersion")
        if not doc.kubernetes or kind not in _SUBSTITUTE_KINDS or api_version != "v1":
            continue
        landing = _landing(doc, appliers, flux_only=flux_only)
        metadata = doc.obj.get("metadata")
        if landing is None or not isinstance(metadata, Mapping):
            continue
        origin = _origin(doc)
        settled = True
        if id(doc) in as_written and substituted(doc):
            if flux_only and origin in origins:
                continue
            settled = False
        for namespace in sorted(landing):
            obj = {**doc.obj, "metadata": {**metadata, "namespace": namespace}}
            out.append(variables.SourceObject(obj, origin, settled))
    return out


def _origin(doc: Document) -> str:
    """The document `doc` is written in, as `file:line`."""
    return f"{repo_path(doc.source.file)}:{doc.source.line}"


def substituted_only(
    documents: Sequence[Document],
    paths: Sequence[str],
    *,
    remotes: Sequence[str],
    includes: Mapping[str, Sequence[str]] | None = None,
) -> Callable[[Document], bool]:
    """Whether a document read as written is applied by no one as written: each Flux Kustomization
    of the tree that applies its file (or the kustomization it was rendered from) substitutes
    (`spec.postBuild`), and is one `flux_builds` builds (of this repository, under `paths`), so
    that its build, substituted, is judged in its place. None applying it, one that substitutes
    nothing, one whose GitRepository may be this repository but that is not built: applied (or
    possibly) as written, judged so.

    A Kustomization applies what its build reads (`includes`: a kustomization's directory -> the
    repository paths it names, directories and files): the kustomization of its `spec.path` and what
    that includes, in turn (an overlay's `../base`), or, where the path has none, the plain files
    below it and the kustomizations kustomize-controller's generated one names (the uppermost below
    it); its `spec.components` too. A kustomization below the path that its build leaves out is not
    applied by it (another reconciler may point at it): judged as written. A Kustomization whose
    GitRepository is known to be another repository (a tenant's own, in Flux's multi-tenancy layout)
    applies none of these files, so it holds none (one of an OCI or Bucket source, which may be
    built from this repository, does).
    """
    built = {
        id(doc)
        for doc, _, spec, path, _ in _git_kustomizations(list(documents), remotes)
        if any(within(path, root) for root in map(repo_path, paths)) and spec.get("postBuild") is not None
    }
    includes = includes or {}
    elsewhere = _of_another_repository(documents, remotes)
    holders: list[tuple[str, frozenset[str], bool]] = []
    for doc in documents:
        spec = _flux(doc.obj, _FLUX_KUSTOMIZE, "Kustomization")
        if spec is not None and id(doc) not in elsewhere:
            path = spec.get("path")
            path = secure_path(path) if isinstance(path, str) else ""
            components = spec.get("components")
            starts = [path] if path in includes else _uppermost([d for d in includes if within(d, path)])
            if isinstance(components, list):
                starts.extend(secure_path(f"{path}/{c}") for c in components if isinstance(c, str))
            holders.append((path, _reach(starts, includes), id(doc) in built))
    if not any(substituting for _, _, substituting in holders):
        return lambda doc: False

    def only(doc: Document) -> bool:
        file, rendered = doc.source.file, doc.source.rendered_from
        if rendered is None:  # a plain file: below a path, or named by a kustomization the build reads
            file = repo_path(file)
            held = [
                s
                for path, reached, s in holders
                if (within(file, path) and path not in includes) or file in reached
            ]
        else:  # rendered from a kustomization: one the build reads
            rendered = repo_path(rendered)
            held = [s for _, reached, s in holders if rendered in reached]
        return bool(held) and all(held)

    return only


def _uppermost(directories: Sequence[str]) -> list[str]:
    """Those of `directories` below none of the others."""
    return [d for d in directories if not any(o != d and within(d, o) for o in directories)]


def _reach(starts: Sequence[str], includes: Mapping[str, Sequence[str]]) -> frozenset[str]:
    """The repository paths a build of the kustomizations at `starts` reads: themselves and what
    they include, in turn (`includes`)."""
    out: set[str] = set()
    stack = list(starts)
    while stack:
        path = stack.pop()
        if path not in out:
            out.add(path)
            stack.extend(includes.get(path, ()))
    return frozenset(out)


# What an Argo CD Application's `source.kustomize` adds to the kustomization of its path, as the
# repo-server does (`kustomize edit`): the namespace, name affixes, patches and components. Its
# `images`, `commonLabels`, `commonAnnotations`, `replicas` and the like are not modelled (a change of
# them is a change of the Application, which needs an approval).
def _build_values(
    source: Mapping[str, Any], fields: Mapping[str, str], at: str
) -> tuple[dict[str, Any], str]:
    """The build fields `source` sets (`fields`: its name -> ours in `_FLUX_BUILD_FIELDS`), by our
    names, and why one of them cannot be worked out ("" when all can); `at` names `source`."""
    values: dict[str, Any] = {}
    why = ""
    for field, ours in fields.items():
        value = source.get(field)
        if value is None or value == "" or value == []:
            continue
        why = _build_field_problem(ours, value, f"{at}.{field}") or why
        values[ours] = value
    return values, why


def _build_field_problem(field: str, value: Any, spelled: str) -> str:
    """Why `value` cannot be the build field `field` (as `_FLUX_BUILD_FIELDS` names it; `spelled` as
    the reconciler object writes it), or ""."""
    if field in ("targetNamespace", "namePrefix", "nameSuffix") and not isinstance(value, str):
        return f"{spelled} is not a string"
    if field in ("patches", "images") and not (
        isinstance(value, list) and all(isinstance(v, Mapping) for v in value)
    ):
        return f"{spelled} is not a list of objects"
    if field == "components" and not (
        isinstance(value, list) and all(isinstance(v, str) and _local_relative(v) for v in value)
    ):
        return f"{spelled} is not a list of local relative paths"
    return ""


_ARGOCD_BUILD_FIELDS = {
    "namespace": "targetNamespace",
    "namePrefix": "namePrefix",
    "nameSuffix": "nameSuffix",
    "patches": "patches",
    "components": "components",
}


def argocd_builds(
    documents: Iterable[Document], paths: Sequence[str], *, remotes: Sequence[str]
) -> tuple[list[FluxBuild], list[InputProblem]]:
    """What the sources of the Argo CD Applications of the tree build under `paths` (as
    `flux_builds`): each source (`spec.source`, every one of `spec.sources`) whose `repoURL` is (or,
    the remotes not known, may be) the gated repository, that names a `path` under `paths` and is
    neither a Helm chart nor a plugin. Where its path holds a kustomization, the runner builds it
    with what `kustomize` adds; where it holds none, it reads the files of its directory source."""
    roots = [repo_path(p) for p in paths]
    out: dict[str, FluxBuild] = {}
    problems: list[InputProblem] = []
    for doc in documents:
        obj, metadata = doc.obj, doc.obj.get("metadata")
        api_version, spec = obj.get("apiVersion"), obj.get("spec")
        if (
            obj.get("kind") != "Application"
            or not isinstance(api_version, str)
            or api_version.rpartition("/")[0] != "argoproj.io"
            or not isinstance(spec, Mapping)
            or not isinstance(metadata, Mapping)
        ):
            continue
        label = _label("Application", metadata)
        listed = spec.get("sources")
        sources = [*(listed if isinstance(listed, list) else []), spec.get("source")]
        for source in sources:
            if not isinstance(source, Mapping) or not isinstance(source.get("path"), str):
                continue
            url = source.get("repoURL")
            if isinstance(url, str) and any(remotes) and not any(same_repository(url, r) for r in remotes):
                continue  # another repository
            if "chart" in source or source.get("helm") is not None or source.get("plugin") is not None:
                continue
            path = repo_path(str(source["path"]))
            if not any(within(path, root) for root in roots):
                continue
            kustomize = source.get("kustomize")
            kustomize = kustomize if isinstance(kustomize, Mapping) else {}
            values, why = _build_values(kustomize, _ARGOCD_BUILD_FIELDS, "kustomize")
            if why:
                problems.append(
                    InputProblem(
                        Source(doc.source.file, doc.source.line),
                        "presync/argocd-build",
                        reconcilers.printable(
                            f"{label} applies {path or '.'}, but what it builds there cannot be worked "
                            f"out: {why}"
                        ),
                        "fix the Application (Argo CD refuses it too)",
                    )
                )
                continue
            if kustomize.get("images") not in (None, "", []):
                # Argo CD sets them as `kustomize edit set image` does (a digest, a tag, a name
                # replacing what the kustomization says): not modelled, so not judged: refused.
                problems.append(
                    InputProblem(
                        Source(doc.source.file, doc.source.line),
                        "presync/argocd-build",
                        reconcilers.printable(
                            f"{label} applies {path or '.'} with kustomize.images, which the gate does not "
                            "apply: the images it deploys there cannot be judged"
                        ),
                        f"set the images in the kustomization of {path or '.'} (images:) instead of in "
                        "the Application",
                    )
                )
                continue
            directory = source.get("directory")
            build = FluxBuild(
                label,
                doc.source.file,
                path,
                namespace=values.get("targetNamespace"),
                name_prefix=values.get("namePrefix"),
                name_suffix=values.get("nameSuffix"),
                patches=tuple(values.get("patches", ())),
                components=tuple(values.get("components", ())),
                ignore_missing=kustomize.get("ignoreMissingComponents") is True,
                reconciler=reconcilers.ARGOCD,
                recurse=isinstance(directory, Mapping) and directory.get("recurse") is True,
            )
            out.setdefault(build.identity, build)
    return list(out.values()), problems


def _local_relative(path: str) -> bool:
    """fluxcd/pkg `IsLocalRelativePath`: not absolute, no URL."""
    return bool(path) and not path.startswith("/") and "://" not in path and not path.startswith("\\")


def unjudged_paths(
    documents: Iterable[Document], paths: Sequence[str], *, remotes: Sequence[str], severity: Severity
) -> list[DocumentResult]:
    """A warning per Flux Kustomization of the tree whose `spec.path`, in a GitRepository that is
    (or, not known, may be) the gated repository, lies outside `paths`: it applies files of the gated
    ref that the gate never reads. Its approval approved pointing there, not what is there.

    `remotes`: the gated repository's URLs ("" or none: not known). A GitRepository of the tree with
    a `spec.url` that is none of them is another repository; one that is not in the tree (Flux's
    bootstrap one, in `flux-system`) may be this one.
    """
    roots = [repo_path(p) for p in paths]
    out: list[DocumentResult] = []
    for doc, metadata, _, path, certain in _git_kustomizations(list(documents), remotes):
        if any(within(path, root) for root in roots):
            continue
        verb = "applies" if certain else "may apply (if its GitRepository is this repository)"
        label = _label("Kustomization", metadata)
        finding = Finding(
            rule="reconciler-path",
            severity=severity,
            message=reconcilers.printable(
                f"{label} {verb} {path or '.'}, which presync.paths does not hold: the gate never judges "
                "what the gated ref holds there"
            ),
            source="presync",
            fix=f"add {path or '.'} to presync.paths",
            policy="presync/reconciler-sources",
            metadata={"source": label, "path": path or "."},
        )
        out.append(
            DocumentResult(
                doc.source,
                str(doc.obj.get("apiVersion")),
                "Kustomization",
                str(metadata.get("namespace") or "") or None,
                str(metadata.get("name")),
                [finding],
            )
        )
    return out
