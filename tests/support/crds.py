"""A test CustomResourceDefinition: one served version of `widgets.example.com`, kind Widget."""

from __future__ import annotations

from typing import Any


def widget_crd(spec_schema: dict[str, Any]) -> dict[str, Any]:
    """The CRD whose custom resources' `spec` follows `spec_schema` (apiextensions.k8s.io/v1)."""
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
