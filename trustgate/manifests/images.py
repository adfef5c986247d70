"""Where the images of a Kubernetes object are.

Owns: finding every image reference in an object, with the JSON path of the
field, for any kind: containers, initContainers and ephemeralContainers
wherever a pod spec sits (Pods, every workload template, CronJobs, and
custom resources that embed pod templates such as Argo Rollouts), and image
volumes (`volumes[].image.reference`, KEP-4639: an OCI image mounted into the
pod, run by its containers like any image's files) beside them; the steps,
sidecars and stepTemplate of Tekton (`tekton.dev`: Task, ClusterTask,
Pipeline, TaskRun, PipelineRun, embedded `taskSpec`/`pipelineSpec` included);
the templates of Argo Workflows (`argoproj.io`: Workflow, WorkflowTemplate,
ClusterWorkflowTemplate, CronWorkflow; a template's `container`, `script`,
`initContainers`, `sidecars`, `containerSet`, and Argo Events' `container`;
and the pod spec patches of Argo Workflows, `podSpecPatch`, a JSON or YAML
string that Argo merges into each pod it creates, containers by name);
and the OCI sources of Flux (`OCIRepository`), with the references that
cannot be known before Flux syncs (`ref.semver`), and the Helm charts Flux
pulls from an OCI `HelmRepository` (a `HelmChart`, a `HelmRelease`'s
`spec.chart`), resolved against the HelmRepositories judged with them
(`resolve_charts`). Leaves out: what an image
must satisfy (the artifacts layer decides), and images named elsewhere than
in the object (Tekton bundles and resolvers, Argo `templateRef`: what they
point at is not in the document).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from trustgate import yamlio
from trustgate.model import ChartPull, ImageUse, JsonPath

CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
# Where a kind's group keeps more containers: lists of them, and single ones.
_GROUP_LISTS = {"tekton.dev": ("steps", "sidecars"), "argoproj.io": ("sidecars",)}
_GROUP_SINGLE = {"tekton.dev": ("stepTemplate",), "argoproj.io": ("container", "script")}
# Where a kind's group keeps pod spec patches as text: Argo merges `podSpecPatch` (JSON or YAML, its
# parameters substituted first) into the pods it creates, so an image written there is what runs.
_GROUP_PATCHES = {"argoproj.io": ("podSpecPatch",)}
_PATCH_NODES = 100_000  # nodes a pod spec patch may expand to through YAML aliases
# Tekton Triggers' templates embed tekton.dev resources (TriggerTemplate resourcetemplates).
_GROUP_ALIASES = {"triggers.tekton.dev": "tekton.dev"}
_ARGO_CD_KINDS = frozenset({"Application", "ApplicationSet", "AppProject"})  # Workflows, Events: steps
# How far down a pod spec is looked for. A custom resource may embed a whole workload manifest that
# its controller creates, wrapped again by templating (a composition pipeline's provider Object):
# 12 levels missed such images. 200 bounds the recursion (YAML itself stops at 1,000).
_MAX_DEPTH = 200


def find_images(obj: Mapping[str, Any]) -> list[ImageUse]:
    """Every image reference in `obj`, in document order.

    Empty or non-string `image` fields are skipped here: the schema and the
    bundled policies report those.
    """
    out: list[ImageUse] = []
    if obj.get("kind") == "OCIRepository" and str(obj.get("apiVersion", "")).startswith(
        "source.toolkit.fluxcd.io/"
    ):
        out.extend(_flux_oci(obj))
    group = str(obj.get("apiVersion", "")).partition("/")[0]
    kind = obj.get("kind")
    if (group, kind) in _FLUX_CHARTS:
        out.extend(_flux_chart(obj, _FLUX_CHARTS[group, kind]))
    if group == "argoproj.io" and kind in _ARGO_CD_KINDS:
        group = ""  # an Argo CD Application's Helm values may hold any `script` or `container` key
    group = _GROUP_ALIASES.get(group, group)
    keys = _Keys(
        CONTAINER_LISTS + _GROUP_LISTS.get(group, ()),
        _GROUP_SINGLE.get(group, ()),
        _GROUP_PATCHES.get(group, ()),
    )
    spec = obj.get("spec")
    if isinstance(spec, Mapping):
        if group == "tekton.dev" and kind == "StepAction":  # the spec is the step
            _container(spec, ("spec",), out, _name(obj))
        _walk(spec, ("spec",), out, 0, keys)
    template = obj.get("template")  # PodTemplate keeps its pod spec at the top level
    if isinstance(template, Mapping):
        _walk(template, ("template",), out, 0, keys)
    cut = [i for i, use in enumerate(out) if use.unresolvable == TOO_DEEP]
    if len(cut) > 1:  # one place is enough to say why the object fails
        dropped = set(cut[1:])
        out = [use for i, use in enumerate(out) if i not in dropped]
    return out


@dataclass(frozen=True, slots=True)
class _Keys:
    lists: tuple[str, ...]  # keys holding lists of containers
    single: tuple[str, ...]  # keys holding one container
    patches: tuple[str, ...] = ()  # keys holding a pod spec patch as text


def _container(item: Mapping[str, Any], path: JsonPath, out: list[ImageUse], owner: str) -> None:
    image = item.get("image")
    if isinstance(image, str) and image.strip():
        name = item.get("name")
        out.append(ImageUse(image.strip(), (*path, "image"), name if isinstance(name, str) else owner))


def _walk(node: Mapping[str, Any], path: JsonPath, out: list[ImageUse], depth: int, keys: _Keys) -> None:
    if depth > _MAX_DEPTH:
        _too_deep(path, out)
        return
    owner = node.get("name")  # an Argo template's container has no name of its own: its template's
    owner = owner if isinstance(owner, str) else ""
    for key, value in node.items():
        if key == "volumes" and isinstance(value, list):
            _image_volumes(value, (*path, key), out)
        if key in keys.lists and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    _container(item, (*path, key, i), out, "")
        elif key in keys.single and isinstance(value, Mapping):
            _container(value, (*path, key), out, owner)
        elif key in keys.patches and isinstance(value, str):
            _pod_spec_patch(value, (*path, key), out, depth + 1, keys, owner)
        elif isinstance(value, Mapping):
            _walk(value, (*path, key), out, depth + 1, keys)
        elif isinstance(value, list):
            _walk_list(value, (*path, key), out, depth + 1, keys)


def _image_volumes(volumes: list[Any], path: JsonPath, out: list[ImageUse]) -> None:
    """A pod's image volumes (`image: {reference, pullPolicy}`): the kubelet pulls the reference
    as it pulls a container's image, and the containers mounting it may run what it holds."""
    for i, volume in enumerate(volumes):
        source = volume.get("image") if isinstance(volume, Mapping) else None
        reference = source.get("reference") if isinstance(source, Mapping) else None
        if isinstance(reference, str) and reference.strip():
            name = volume.get("name")
            owner = f"volume {name}" if isinstance(name, str) else "volume"
            out.append(ImageUse(reference.strip(), (*path, i, "image", "reference"), owner))


def _pod_spec_patch(
    text: str, path: JsonPath, out: list[ImageUse], depth: int, keys: _Keys, owner: str
) -> None:
    """The images an Argo `podSpecPatch` writes: Argo merges it into the pod spec it built from the
    template (containers by name), so `{"containers": [{"name": "main", "image": ...}]}` replaces
    the image the template names (found in review: only the template's image was verified). A
    patch that cannot be read as a pod spec before Argo substitutes its parameters (the whole
    patch one `{{...}}`) may name any image: it is reported at the field as not an image that
    can be verified (`image-reference`), never skipped."""
    if not text.strip():
        return
    parsed = [d for d in yamlio.parse_stream(text.encode("utf-8", "replace"), max_nodes=_PATCH_NODES)]
    if len(parsed) == 1 and isinstance(parsed[0], yamlio.ParsedDocument):
        value = parsed[0].value
        if value is None:
            return
        if isinstance(value, Mapping):
            before = len(out)
            _walk(value, path, out, depth, keys)
            for i in range(before, len(out)):  # where the patch names them: one field, its text
                use = out[i]
                out[i] = ImageUse(use.reference, path, use.container or owner)
            return
    out.append(ImageUse(" ".join(text.split())[:200], path, owner, unresolvable=UNREADABLE_PATCH))


def _too_deep(path: JsonPath, out: list[ImageUse]) -> None:
    """What is nested deeper than `_MAX_DEPTH` is not read, and may hold a pod spec: reported at the
    place (`image-reference`), never skipped (found in review: an image there was never verified)."""
    out.append(ImageUse(f"(not read: nested deeper than {_MAX_DEPTH} levels)", path, unresolvable=TOO_DEEP))


# Why what is nested too deep is not verified (`ImageUse.unresolvable`).
TOO_DEEP = (
    f"this field is nested deeper than the {_MAX_DEPTH} levels trustgate reads for images, so the "
    "images it may hold cannot be known, nor verified"
)

# Why a pod spec patch that cannot be read is not verified (`ImageUse.unresolvable`, as the verifier
# words it for a reference that is no image reference).
UNREADABLE_PATCH = (
    "podSpecPatch cannot be read as a pod spec (JSON or YAML) before Argo substitutes its "
    "parameters, so the images it may set cannot be known, nor verified"
)


def _walk_list(items: list[Any], path: JsonPath, out: list[ImageUse], depth: int, keys: _Keys) -> None:
    """Each mapping of a list, and of the lists in it (Argo's `steps` is a list of lists)."""
    if depth > _MAX_DEPTH:
        _too_deep(path, out)
        return
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            _walk(item, (*path, i), out, depth, keys)
        elif isinstance(item, list):
            _walk_list(item, (*path, i), out, depth + 1, keys)


def _name(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return name if isinstance(name, str) else ""


def _moved(spec: Mapping[str, Any]) -> str:
    """Why a Flux source's tag is not verified by the image rule. With spec.verify Flux's
    source-controller checks the signatures of what it pulls, by its own keys and identities: a
    check, but not the rule's, and the message says so rather than that nothing checks the pull."""
    if spec.get("verify"):
        return (
            "what it deploys is not what this rule checks now; spec.verify is Flux's own check, not "
            "this rule's: pin ref.digest"
        )
    return "whoever can push can re-point it to an artifact that was never verified"


def _flux_oci(obj: Mapping[str, Any]) -> list[ImageUse]:
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return []
    url = spec.get("url")
    if not isinstance(url, str) or not url.startswith("oci://"):
        return []
    reference = url.removeprefix("oci://")
    ref = spec.get("ref")
    if isinstance(ref, Mapping):
        digest, tag, semver = ref.get("digest"), ref.get("tag"), ref.get("semver")
        if isinstance(digest, str) and digest:
            return [ImageUse(f"{reference}@{digest}", ("spec", "url"))]  # Flux: it wins over semver and tag
        if isinstance(semver, str) and semver:
            # Flux: semver wins over tag, and picks among the registry's tags at each sync.
            also = f", over ref.tag {tag!r}" if isinstance(tag, str) and tag else ""
            filtered = ref.get("semverFilter")
            among = f" matching semverFilter {filtered!r}" if isinstance(filtered, str) and filtered else ""
            reason = (
                f"Flux resolves ref.semver {semver!r}{also} against the registry's tags{among} at each "
                "sync, so which artifact it deploys cannot be known, nor verified, before it does"
            )
            return [ImageUse(reference, ("spec", "ref", "semver"), unresolvable=reason)]
        if isinstance(tag, str) and tag:
            # Flux asks the registry what the tag points at at each sync, for as long as the
            # source exists, and no rule of trustgate's checks what it pulls then: whoever can
            # push re-points the tag (ADR 5). The digest checked now proves nothing.
            reason = f"Flux resolves ref.tag {tag!r} against the registry at each sync, so {_moved(spec)}"
            return [ImageUse(f"{reference}:{tag}", ("spec", "ref", "tag"), unresolvable=reason)]
    # No ref.tag, ref.semver or ref.digest: Flux pulls the tag `latest`, moved the same way.
    which = "with no ref.tag/semver/digest" if isinstance(ref, Mapping) else "without spec.ref"
    reason = f"{which} Flux resolves the tag latest against the registry at each sync, so {_moved(spec)}"
    return [ImageUse(reference, ("spec", "url"), unresolvable=reason)]


# Where a Flux kind writes the Helm chart it pulls (`chart`, `version`, `sourceRef`, `verify`): a
# HelmChart in its spec, a HelmRelease in the template helm-controller makes a HelmChart of.
_FLUX_CHARTS: Mapping[tuple[str, object], JsonPath] = {
    ("source.toolkit.fluxcd.io", "HelmChart"): ("spec",),
    ("helm.toolkit.fluxcd.io", "HelmRelease"): ("spec", "chart", "spec"),
}
# A chart version Flux takes as one tag rather than a range (Masterminds' StrictNewVersion).
_EXACT_VERSION = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(-(0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*)?"
    r"(\+[0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*)?"
)


def _flux_chart(obj: Mapping[str, Any], at: JsonPath) -> list[ImageUse]:
    """The chart a HelmChart (or a HelmRelease's chart template) pulls through a HelmRepository:
    which registry holds it is that object's `spec.url`, known once it is (`resolve_charts`).
    Charts from a GitRepository or Bucket are files of that source, no artifact of their own."""
    spec: Any = obj
    for key in at:
        spec = spec.get(key) if isinstance(spec, Mapping) else None
    if not isinstance(spec, Mapping):
        return []
    source, chart = spec.get("sourceRef"), spec.get("chart")
    if not isinstance(source, Mapping) or source.get("kind") != "HelmRepository":
        return []
    name, namespace = source.get("name"), source.get("namespace")
    if not isinstance(name, str) or not name or not isinstance(chart, str) or not chart.strip():
        return []  # the schema reports it; Flux pulls nothing
    version = spec.get("version")
    version = version.strip() if isinstance(version, str) and version.strip() else "*"
    namespace = namespace if isinstance(namespace, str) and at != ("spec",) else ""  # a HelmChart's: its own
    pull = ChartPull(namespace, name, chart.strip(), version, verify=bool(spec.get("verify")))
    where = (*at, "version") if "version" in spec else (*at, "chart")
    named = f"{namespace}/{name}" if namespace else name
    return [ImageUse(f"HelmRepository {named}: {pull.chart} {version}", where, chart=pull)]


def chart_repository(obj: Mapping[str, Any]) -> str | None:
    """Where a Flux HelmRepository's charts are pulled from: the registry and path of an OCI one
    (`oci://` URL), "" for any other (an HTTP index), None if `obj` is no HelmRepository."""
    if obj.get("kind") != "HelmRepository" or not str(obj.get("apiVersion", "")).startswith(
        "source.toolkit.fluxcd.io/"
    ):
        return None
    spec = obj.get("spec")
    url = spec.get("url") if isinstance(spec, Mapping) else None
    if not isinstance(url, str) or not url.strip().startswith("oci://"):
        return ""  # Flux refuses `type: oci` without an oci:// URL: nothing is pulled
    return url.strip().removeprefix("oci://").rstrip("/")


def resolve_charts(
    uses: Sequence[ImageUse], namespace: str, repositories: Mapping[tuple[str, str], Sequence[str]]
) -> list[ImageUse]:
    """`uses` of one object in `namespace`, each chart resolved to the OCI artifact Flux pulls.

    `repositories` maps each HelmRepository judged with it, (namespace, name), to its
    `chart_repository` values (several when one name is written more than once). A chart of an
    OCI repository is `<url>/<chart>:<version>`, resolved at each reconcile as Flux resolves it (a
    HelmChart names no digest), so it is a moving reference (`unresolvable`); a chart of an HTTP
    repository is no artifact and is dropped; one whose HelmRepository is not among them cannot be
    known (`UNKNOWN_CHART_SOURCE`, followed by the HelmRepositories that were checked).
    """
    out: list[ImageUse] = []
    for use in uses:
        pull = use.chart
        if pull is None or use.unresolvable:
            out.append(use)
            continue
        key = (pull.namespace or namespace, pull.repository)
        urls = repositories.get(key)
        if urls is None:
            reference = f"HelmRepository {_named(key)}"
            source_path = (*use.path[:-1], "sourceRef")
            reason = UNKNOWN_CHART_SOURCE + _checked(key, repositories)
            out.append(ImageUse(reference, source_path, use.container, use.line, reason, pull))
            continue
        for url in dict.fromkeys(u for u in urls if u):
            out.append(_chart_use(use, pull, url))
    return out


def _named(key: tuple[str, str]) -> str:
    return f"{key[0]}/{key[1]}" if key[0] else key[1]


def _checked(key: tuple[str, str], repositories: Mapping[tuple[str, str], Sequence[str]]) -> str:
    """What the documents checked held instead of `key`, the HelmRepository a chart names: those of
    its name first (in another namespace, sourceRef.namespace or the object's own is the likely slip)."""
    if not repositories:
        return "; no HelmRepository was checked with it"
    ordered = sorted(repositories, key=lambda k: (k[1] != key[1], k))
    listed = ", ".join(_named(k) for k in ordered[:_MAX_LISTED])
    more = f" and {len(ordered) - _MAX_LISTED} more" if len(ordered) > _MAX_LISTED else ""
    return f"; the HelmRepositories checked were {listed}{more}"


_MAX_LISTED = 5  # HelmRepositories named in the message of a chart whose own is not among them


def _chart_use(use: ImageUse, pull: ChartPull, url: str) -> ImageUse:
    exact = _EXACT_VERSION.fullmatch(pull.version) is not None
    if exact:  # Helm writes `+` of a version as `_` in its tag
        reference = f"{url}/{pull.chart}:{pull.version.replace('+', '_')}"
        reason = (
            f"Flux resolves the chart's tag {pull.version!r} against the registry at each reconcile "
            f"(a HelmChart names no digest), so {_moved_chart(pull)}"
        )
    else:
        reference = f"{url}/{pull.chart}"
        reason = (
            f"Flux resolves chart version {pull.version!r} against the registry's tags at each "
            "reconcile, so which artifact it deploys cannot be known, nor verified, before it does"
        )
    return ImageUse(reference, use.path, use.container, use.line, reason, pull)


def _moved_chart(pull: ChartPull) -> str:
    if pull.verify:
        return (
            "what it deploys is not what this rule checks now; spec.verify is Flux's own check, "
            "not this rule's"
        )
    return "whoever can push can re-point it to an artifact that was never verified"


# Why a chart whose HelmRepository is not judged with it is not verified (`ImageUse.unresolvable`;
# the message starts with the HelmRepository's name).
UNKNOWN_CHART_SOURCE = (
    "is not among the documents checked with the chart that names it in sourceRef, so whether Flux "
    "pulls the chart from an OCI registry, and which artifact, cannot be known, nor verified"
)
# How to have a chart of an OCI registry judged by the image rules (the fix of its image-digest).
CHART_PIN = (
    "pull the chart through an OCIRepository pinned by ref.digest (sha256:..., with a layerSelector "
    "for the chart's layer) named by the HelmRelease's spec.chartRef, so each change is checked"
)
