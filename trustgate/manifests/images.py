"""Where the images of a Kubernetes object are.

Owns: finding every image reference in an object, with the JSON path of the
field, for any kind: containers, initContainers and ephemeralContainers
wherever a pod spec sits (Pods, every workload template, CronJobs, and
custom resources that embed pod templates such as Argo Rollouts or Tekton
tasks), and the OCI sources of Flux (`OCIRepository`). Leaves out: what an
image must satisfy (the artifacts layer decides).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trustgate.model import ImageUse, JsonPath

CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_MAX_DEPTH = 12  # a pod spec sits at most a few levels down; deeper trees are data, not templates


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
    spec = obj.get("spec")
    if isinstance(spec, Mapping):
        _walk(spec, ("spec",), out, 0)
    template = obj.get("template")  # PodTemplate keeps its pod spec at the top level
    if isinstance(template, Mapping):
        _walk(template, ("template",), out, 0)
    return out


def _walk(node: Mapping[str, Any], path: JsonPath, out: list[ImageUse], depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    for key, value in node.items():
        if key in CONTAINER_LISTS and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    image = item.get("image")
                    if isinstance(image, str) and image.strip():
                        name = item.get("name")
                        out.append(
                            ImageUse(
                                image.strip(), (*path, key, i, "image"), name if isinstance(name, str) else ""
                            )
                        )
        elif isinstance(value, Mapping):
            _walk(value, (*path, key), out, depth + 1)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    _walk(item, (*path, key, i), out, depth + 1)


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
        digest, tag = ref.get("digest"), ref.get("tag")
        if isinstance(digest, str) and digest:
            reference += f"@{digest}"
        elif isinstance(tag, str) and tag:
            reference += f":{tag}"
    return [ImageUse(reference, ("spec", "url"))]
