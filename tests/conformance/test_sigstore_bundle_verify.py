"""Sigstore conformance: every bundle-verify case through `trustgate verify blob`.

The cases are a copy of sigstore-conformance's bundle-verify assets (see the README and
SOURCE beside this file). Conventions (from the README): the artifact is `artifact` or
`../a.txt`; the identity and issuer default to the conformance beacon; `key.pub` means
key-based verification; `trusted_root.json` overrides the default public-good root
(embedded, offline). A `_fail` case must exit 1; any other case must exit 0.

Every case runs; none is skipped. One note: `managed-key-wrong-key_fail` ships a key.pub
whose base64 is deliberately corrupted, so it fails as an unreadable key (exit 1, the
expected verdict) before any signature is checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from trustgate.cli.main import main

CASES = Path(__file__).parent / "sigstore-bundle-verify"
DEFAULT_IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/"
    "extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
DEFAULT_ISSUER = "https://token.actions.githubusercontent.com"


def _cases() -> list[Path]:
    return sorted(p for p in CASES.iterdir() if p.is_dir())


def _args(case: Path) -> list[str]:
    artifact = case / "artifact" if (case / "artifact").exists() else CASES / "a.txt"
    args = ["verify", "blob", str(artifact), "--bundle", str(case / "bundle.sigstore.json")]
    if (case / "key.pub").exists():
        args += ["--key", str(case / "key.pub")]
    else:
        identity = (
            (case / "identity").read_text().strip() if (case / "identity").exists() else DEFAULT_IDENTITY
        )
        issuer = (case / "issuer").read_text().strip() if (case / "issuer").exists() else DEFAULT_ISSUER
        args += ["--certificate-identity", identity, "--certificate-oidc-issuer", issuer]
    if (case / "trusted_root.json").exists():
        args += ["--trusted-root", str(case / "trusted_root.json")]
    return args


def test_the_suite_is_there() -> None:
    names = [c.name for c in _cases()]
    assert len(names) >= 30
    assert any(n.endswith("_fail") for n in names) and any(not n.endswith("_fail") for n in names)
    assert (CASES / "README.md").exists() and (CASES / "SOURCE").exists()


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.name)
def test_conformance_case(case: Path) -> None:
    result = CliRunner().invoke(main, _args(case), catch_exceptions=False)
    expected = 1 if case.name.endswith("_fail") else 0
    assert result.exit_code == expected, result.output
    if expected == 0:
        assert result.output.startswith("verified: sha256:")
    else:
        assert "not verified:" in result.output or "trustgate: error:" in result.output
