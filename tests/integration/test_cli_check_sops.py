"""SOPS-encrypted objects: Flux's kustomize-controller decrypts any object carrying `sops.mac`
(`isSOPSEncryptedResource`), whatever its kind, and applies the plaintext. trustgate judged the
ciphertext: a Pod encrypted whole (sops' default encrypts every value, `kind` included) passed as
an object of no known kind, and an object encrypted in part passed once an exception waived the
`sops` key's `schema-unknown-field`."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustgate.cli.main import main

Write = Callable[[str, str], Path]


def _enc(plain: str) -> str:
    """A value as sops writes it (the cipher text is never read here)."""
    tail = "iv:AAAAAAAAAAAAAAAAAAAAAA==,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str"
    return f"ENC[AES256_GCM,data:{plain.encode().hex()},{tail}]"


SOPS = textwrap.dedent(
    f"""\
    sops:
        age:
            - recipient: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
              enc: |
                -----BEGIN AGE ENCRYPTED FILE-----
                -----END AGE ENCRYPTED FILE-----
        lastmodified: "2026-01-01T00:00:00Z"
        mac: {_enc("mac")}
        encrypted_regex: ENCRYPTED
        version: 3.9.4
    """
)

# Encrypted whole, as `sops -e` writes a file by default: the plaintext is a privileged Pod.
WHOLE = textwrap.dedent(
    f"""\
        apiVersion: {_enc("v1")}
        kind: {_enc("Pod")}
        metadata:
            name: {_enc("debug")}
            namespace: {_enc("shop")}
        spec:
            containers:
                - name: {_enc("debug")}
                  image: {_enc("busybox:latest")}
                  securityContext:
                      privileged: {_enc("true")}
        """
) + SOPS.replace("ENCRYPTED", "''")

# `encrypted_regex: ^data$`: a ConfigMap whose data a policy of the user's judges.
PART = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n    name: settings\n    namespace: shop\n"
    f"data:\n    mode: {_enc('debug')}\n" + SOPS.replace("ENCRYPTED", "^data$")
)

POLICY = """\
package main

import rego.v1

deny contains msg if {
    input.kind == "ConfigMap"
    input.data.mode == "debug"
    msg := "mode debug is not allowed in shop"
}
"""

EXCEPTION = """\
  - name: {name}
    rules: {rules}
    owner: platform@example.com
    reason: the secret values are reviewed in the sealed-secrets process
    expires: "2999-01-01"
"""


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["check", *args, "-o", "json"], catch_exceptions=False)
    return result.exit_code, result.stdout


def _config(write: Write, *exceptions: tuple[str, str]) -> str:
    text = "apiVersion: trustgate.dev/v1alpha1\nkind: Config\nexceptions:\n" + "".join(
        EXCEPTION.format(name=name, rules=rules) for name, rules in exceptions
    )
    return str(write("trustgate.yaml", text))


def test_an_object_encrypted_whole_is_not_evaluated(write: Write) -> None:
    path = write("deploy/debug.yaml", WHOLE)
    code, out = run(str(path))
    assert code == 3, out
    (result,) = json.loads(out)["results"]
    (finding,) = result["findings"]
    assert finding["rule"] == "input/encrypted" and result["file"] == str(path) and finding["line"] == 1
    assert "Flux decrypts it and applies the plaintext" in finding["message"]
    assert "sops -d" in finding["fix"] and "input/encrypted" in finding["fix"]


@pytest.mark.parametrize("through", ["file", "kustomization"])
def test_an_exception_for_other_findings_does_not_pass_the_ciphertext(write: Write, through: str) -> None:
    deploy = write("deploy/settings.yaml", PART).parent
    if through == "kustomization":
        write("deploy/kustomization.yaml", "resources: [settings.yaml]\n")
    policy = str(write("policy/main.rego", POLICY))
    config = _config(write, ("sops-field", "[schema-unknown-field]"), ("legacy", "['input/*']"))
    code, out = run("-c", config, "-p", policy, str(deploy))
    assert code == 3, out
    findings = [f for r in json.loads(out)["results"] for f in r["findings"]]
    assert [f["rule"] for f in findings] == ["input/encrypted"]
    assert findings[0]["severity"] == "error" and "exception" not in findings[0]


def test_an_exception_naming_the_rule_accepts_it_unjudged(write: Write) -> None:
    deploy = write("deploy/settings.yaml", PART).parent
    config = _config(write, ("sealed-settings", "[input/encrypted]"))
    code, out = run("-c", config, str(deploy))
    assert code == 0, out
    (finding,) = json.loads(out)["results"][0]["findings"]
    assert finding["rule"] == "input/encrypted" and finding["severity"] == "info"
    assert finding["exception"]["name"] == "sealed-settings"
