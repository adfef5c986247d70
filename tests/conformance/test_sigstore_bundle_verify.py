"""Sigstore conformance: every bundle-verify case through `verify-bundle`, the entry point that
speaks the suite's CLI protocol (`trustgate-conformance`; the same code as `trustgate verify blob`).

The cases are a copy of sigstore-conformance's bundle-verify assets (see the README and
SOURCE beside this file). Conventions (from the README): the artifact is `artifact` or
`../a.txt`; the identity and issuer default to the conformance beacon; `key.pub` means
key-based verification; `trusted_root.json` overrides the default public-good root
(embedded, offline). A `_fail` case must exit 1 (not verified), or 3 (could not evaluate) where
its own key or trusted root is the broken input (the protocol asks only for a non-zero exit);
any other case must exit 0.

Every case runs; none is skipped. `managed-key-wrong-key_fail` ships a key.pub whose base64 is
deliberately corrupted, so it fails as an unreadable key before any signature is checked.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from trustgate.cli.verify import conformance

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
    # In the protocol's order: --bundle, the identity (or --key), --trusted-root, FILE_OR_DIGEST.
    args = ["verify-bundle", "--bundle", str(case / "bundle.sigstore.json")]
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
    return [*args, str(artifact)]


def test_the_suite_is_there() -> None:
    names = [c.name for c in _cases()]
    assert len(names) >= 30
    assert any(n.endswith("_fail") for n in names) and any(not n.endswith("_fail") for n in names)
    assert (CASES / "README.md").exists() and (CASES / "SOURCE").exists()


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.name)
def test_conformance_case(case: Path) -> None:
    result = CliRunner().invoke(conformance, _args(case), catch_exceptions=False)
    if not case.name.endswith("_fail"):
        assert result.exit_code == 0, result.output
        assert result.output.startswith("verified: sha256:")
    elif result.exit_code == 3:
        # Could not evaluate: only where the case's own key or trusted root is the broken input.
        assert "trustgate: error:" in result.output
        broken = [n for n in ("key.pub", "trusted_root.json") if (case / n).exists()]
        assert any(
            n.replace(".pub", "") in result.output or "trusted root" in result.output for n in broken
        ), result.output
    else:
        assert result.exit_code == 1, result.output
        assert "not verified:" in result.output


def test_the_entry_point_runs_as_a_program_the_harness_can_call() -> None:
    """The harness runs `${ENTRYPOINT} verify-bundle ...` as a process; one case each way."""
    passing = next(c for c in _cases() if not c.name.endswith("_fail"))
    failing = CASES / "bundle-invalid-base64-signature_fail"
    for case, code in ((passing, 0), (failing, 1)):
        done = subprocess.run(
            [sys.executable, "-m", "trustgate.cli.verify", *_args(case)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == code, done.stdout + done.stderr


def test_staging_without_a_trusted_root_cannot_be_evaluated() -> None:
    case = next(c for c in _cases() if not c.name.endswith("_fail"))
    args = _args(case)
    result = CliRunner().invoke(conformance, [args[0], "--staging", *args[1:]], catch_exceptions=False)
    if (case / "trusted_root.json").exists():
        assert result.exit_code == 0
    else:
        assert result.exit_code == 3 and "--trusted-root" in result.output
