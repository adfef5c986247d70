"""Kubernetes manifests that tests repeat: a Widget CRD around a schema, a policy binding; and
`trustgate check` of a manifest against a CRD file.

The CRD is the shape of the Kubernetes documentation's examples (group `example.com`, kind
`Widget`); each test supplies the schema it is about.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from trustgate.cli.main import main

_WIDGET_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
"""

_VERSION = """\
  - name: {name}
    served: true
    storage: {storage}
    schema:
      openAPIV3Schema:
        type: object
        properties:
"""

# The documentation's transition rule (CRD validation rules, "Transition rules"):
# https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#transition-rules
# `self == oldSelf` makes a field immutable.
IMMUTABLE_SIZE = """\
spec:
  type: object
  properties:
    size:
      type: string
      maxLength: 10
      x-kubernetes-validations:
      - rule: "self == oldSelf"
        message: "size is immutable"
"""


def widget_crd(properties: str, *, versions: Sequence[str] = ("v1",)) -> str:
    """The YAML of a CRD for `widgets.example.com` served at `versions`, the first one stored.

    Args:
        properties: YAML of the `openAPIV3Schema.properties` mapping (`spec:` and so on), the
            same for every version.
        versions: the version names.

    Returns:
        The CRD manifest.
    """
    body = textwrap.indent(textwrap.dedent(properties), " " * 10)
    return _WIDGET_CRD + "".join(
        _VERSION.format(name=name, storage=str(i == 0).lower()) + body for i, name in enumerate(versions)
    )


def vap_binding(policy: str) -> str:
    """The YAML of a ValidatingAdmissionPolicyBinding that denies with `policy`, named as it is."""
    return f"""\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {policy}}}
spec:
  policyName: {policy}
  validationActions: [Deny]
"""


def widget_crd_object(spec_schema: dict[str, Any]) -> dict[str, Any]:
    """The Widget CRD as an object (one served version, v1) whose `spec` follows `spec_schema`."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec_schema}}},
                }
            ],
        },
    }


def check_with_crd(crd: Path, manifest: Path) -> tuple[int, list[dict[str, Any]]]:
    """`trustgate check --no-builtin --crd CRD MANIFEST -o json`: (exit code, every finding)."""
    result = CliRunner().invoke(
        main,
        ["check", "--no-builtin", "--crd", str(crd), "-o", "json", str(manifest)],
        catch_exceptions=False,
    )
    report = json.loads(result.stdout)
    return result.exit_code, [f for r in report["results"] for f in r["findings"]]


def server_accepts_widget(api: k8s.ApiClient, obj: dict[str, Any]) -> tuple[bool, str]:
    """Whether the API server accepts creating the Widget `obj` (a dry run), with its reason if not."""
    try:
        k8s.CustomObjectsApi(api).create_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", obj, dry_run="All"
        )
    except ApiException as e:
        if e.status == 422:
            return False, json.loads(e.body or "{}").get("message", "")
        raise
    return True, ""


def wait_widgets_served(api: k8s.ApiClient, probe: dict[str, Any], timeout: float = 60) -> None:
    """Wait until the API server serves the Widget CRD just created (`probe`: any Widget)."""
    end = time.monotonic() + timeout
    while True:
        try:
            server_accepts_widget(api, probe)
            return
        except ApiException as e:
            if e.status != 404 or time.monotonic() > end:
                raise
            time.sleep(0.5)
