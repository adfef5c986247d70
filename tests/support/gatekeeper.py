"""Gatekeeper objects several test files share, as the YAML a file would hold."""

from __future__ import annotations

# A ConstraintTemplate (kind K8sAlwaysDeny) whose Rego denies every object it is asked about.
ALWAYS_DENY_TEMPLATE = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8salwaysdeny}
spec:
  crd: {spec: {names: {kind: K8sAlwaysDeny}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8salwaysdeny
        violation[{"msg": "denied"}] { true }
"""

# What the schema-reference tests' server answers, were anything to fetch a reference.
SCHEMA_BODY = '{"type": "string", "minLength": 100}'

# ConstraintTemplate k8sx (kind K8sX) up to its parameter schema's `properties:`, for str.format: a
# test adds the properties (indented 12) and the targets.
K8SX_SCHEMA_HEAD = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {{name: k8sx}}
spec:
  crd:
    spec:
      names: {{kind: K8sX}}
      validation:
        openAPIV3Schema:
          type: object
          properties:
"""
