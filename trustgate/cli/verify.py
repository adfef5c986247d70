"""`trustgate verify`: verify signatures directly, outside a gate.

Owns: the `verify` click group and its `blob` command (flags, reading the
files named on the command line, printing the result), and `conformance`,
the `verify-bundle` entry point of the Sigstore conformance suite's CLI
protocol (sigstore-conformance `docs/cli_protocol.md`), the same verification
under the suite's flags (console script `trustgate-conformance`, or
`python -m trustgate.cli.verify`). The cryptography is `trustgate.verify`'s.

Exit codes (ADR 2): 0 verified; 1 not verified (a bad signature, a malformed
bundle, an identity that does not match); 2 usage; 3 could not evaluate (an
unreadable key, trusted root, bundle or file).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from trustgate.errors import ConfigError, Error
from trustgate.model import ExitCode

_DIGEST = re.compile(r"sha256:[0-9a-fA-F]{64}")


@click.group("verify")
def verify() -> None:
    """Verify signatures and attestations directly."""


@verify.command("blob")
@click.argument("file_or_digest")
@click.option(
    "--bundle",
    "bundle_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Sigstore bundle (.sigstore.json) for the file.",
)
@click.option("--certificate-identity", help="Signer identity the certificate must name (exact).")
@click.option("--certificate-identity-regexp", help="Signer identity as a regular expression (full match).")
@click.option("--certificate-oidc-issuer", help="OIDC issuer the certificate must name (exact).")
@click.option("--certificate-oidc-issuer-regexp", help="OIDC issuer as a regular expression (full match).")
@click.option(
    "--key",
    "key_path",
    type=click.Path(exists=True, dir_okay=False),
    help="PEM public key (ECDSA P-256/P-384, Ed25519, RSA) instead of a keyless identity.",
)
@click.option(
    "--trusted-root",
    "trusted_root_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Sigstore trusted_root.json (default: the public-good root embedded in trustgate, offline).",
)
@click.option("-o", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def blob(file_or_digest: str, bundle_path: str, **flags: Any) -> None:
    """Verify a Sigstore bundle for FILE_OR_DIGEST (a path, or sha256:<hex>).

    \b
    Keyless: --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp].
    With a key: --key cosign.pub (its log entry is checked against the trusted root).
    Exit codes: 0 verified, 1 not verified, 2 usage error, 3 could not evaluate (an
    unreadable key, trusted root or file).

    \b
    Examples:
      trustgate verify blob app.tar.gz --bundle app.tar.gz.sigstore.json \\
        --certificate-identity-regexp 'https://github.com/acme/app/.github/workflows/.*@refs/tags/v.*' \\
        --certificate-oidc-issuer https://token.actions.githubusercontent.com
      trustgate verify blob sha256:4f2c... --bundle b.json --key cosign.pub
    """
    # The options arrive under _run's keyword names (certificate_identity, ..., fmt).
    sys.exit(_run(file_or_digest, bundle_path, **flags))


def _run(
    file_or_digest: str,
    bundle_path: str,
    *,
    certificate_identity: str | None,
    certificate_identity_regexp: str | None,
    certificate_oidc_issuer: str | None,
    certificate_oidc_issuer_regexp: str | None,
    key_path: str | None,
    trusted_root_path: str | None,
    fmt: str,
) -> int:
    """Verify one bundle and print the outcome; the exit code.

    Raises:
        click.UsageError: the flags do not make one authority.
        click.BadParameter: FILE_OR_DIGEST is neither a digest nor a readable file.
    """
    identity_given = any(
        v is not None
        for v in (
            certificate_identity,
            certificate_identity_regexp,
            certificate_oidc_issuer,
            certificate_oidc_issuer_regexp,
        )
    )
    if key_path and identity_given:
        raise click.UsageError("give either --key or the --certificate-* options, not both")
    if not key_path:
        if (certificate_identity is None) == (certificate_identity_regexp is None):
            raise click.UsageError(
                "give one of --certificate-identity and --certificate-identity-regexp (or --key)"
            )
        if (certificate_oidc_issuer is None) == (certificate_oidc_issuer_regexp is None):
            raise click.UsageError(
                "give one of --certificate-oidc-issuer and --certificate-oidc-issuer-regexp (or --key)"
            )
    artifact: bytes | None = None
    digest: str | None = None
    # A digest is sha256:<64 hex> that is not also a path on disk (the conformance protocol's rule).
    if _DIGEST.fullmatch(file_or_digest) and not Path(file_or_digest).exists():
        digest = file_or_digest.lower()
    else:
        try:
            artifact = Path(file_or_digest).read_bytes()
        except OSError as e:
            raise click.BadParameter(
                f"cannot read {file_or_digest}: {e.strerror or e} (give a file or sha256:<hex>)",
                param_hint="FILE_OR_DIGEST",
            ) from e

    # Imported here: the rest of the CLI starts without loading sigstore.
    from trustgate.verify import (
        IdentityMatcher,
        KeyAuthority,
        KeylessAuthority,
        SignatureVerificationError,
        TrustRoot,
        key_id,
        load_public_key,
        verify_blob,
    )

    try:
        root = TrustRoot.from_file(Path(trusted_root_path)) if trusted_root_path else TrustRoot.public_good()
        authority: KeyAuthority | KeylessAuthority
        if key_path:
            try:
                pem = Path(key_path).read_bytes()
            except OSError as e:
                raise ConfigError(f"cannot read the key: {e.strerror or e}", where=key_path) from e
            key = load_public_key(pem, where=key_path)
            authority = KeyAuthority(name=key_path, key=key, key_id=key_id(key), trust_root=root)
        else:
            try:
                matcher = IdentityMatcher(
                    subject=certificate_identity,
                    subject_regex=certificate_identity_regexp,
                    issuer=certificate_oidc_issuer,
                    issuer_regex=certificate_oidc_issuer_regexp,
                )
            except ConfigError as e:
                raise click.UsageError(e.message) from e
            authority = KeylessAuthority(name=root.name, trust_root=root, identities=(matcher,))
        bundle = Path(bundle_path).read_bytes()
        evidence = verify_blob(artifact=artifact, digest=digest, bundle=bundle, authority=authority)
    except SignatureVerificationError as e:
        if fmt == "json":
            click.echo(json.dumps({"verified": False, "failure": e.to_json()}, indent=2))
        else:
            click.echo(f"not verified: {e.reason} [{e.code}]")
            if e.detail:
                click.echo(f"  detail: {e.detail}")
        return ExitCode.POLICY_FAILURE
    except (Error, OSError) as e:
        message = e.diagnostics() if isinstance(e, Error) else f"{e.strerror or e}"
        if fmt == "json":
            click.echo(
                json.dumps({"verified": False, "failure": {"code": "config", "reason": message}}, indent=2)
            )
        click.echo(f"trustgate: error: {message}", err=True)
        return ExitCode.NOT_EVALUATED
    if fmt == "json":
        click.echo(json.dumps({"verified": True, "evidence": evidence.to_json()}, indent=2))
        return ExitCode.PASS
    who = (
        f"{evidence.subject} (issuer {evidence.issuer})" if evidence.method == "keyless" else evidence.key_id
    )
    line = f"verified: {evidence.signed_digest} signed by {who}"
    if evidence.log_index is not None:
        line += f", logged at index {evidence.log_index}"
    if evidence.integrated_time:
        line += f" on {evidence.integrated_time}"
    click.echo(line)
    return ExitCode.PASS


@click.group("trustgate-conformance")
def conformance() -> None:
    """The Sigstore conformance suite's client protocol (verification only)."""


@conformance.command("verify-bundle")
@click.option("--staging", is_flag=True, help="Sigstore staging: needs --trusted-root (none is embedded).")
@click.option("--bundle", "bundle_path", required=True, type=click.Path(dir_okay=False))
@click.option("--certificate-identity", help="The identity the certificate must name (exact).")
@click.option("--certificate-oidc-issuer", help="The OIDC issuer the certificate must name (exact).")
@click.option("--key", "key_path", type=click.Path(dir_okay=False), help="PEM public key, instead.")
@click.option("--trusted-root", "trusted_root_path", type=click.Path(dir_okay=False))
@click.argument("file_or_digest")
def verify_bundle(
    staging: bool,
    bundle_path: str,
    certificate_identity: str | None,
    certificate_oidc_issuer: str | None,
    key_path: str | None,
    trusted_root_path: str | None,
    file_or_digest: str,
) -> None:
    """Verify FILE_OR_DIGEST against a Sigstore bundle, as the conformance harness asks.

    \b
    verify-bundle [--staging] --bundle FILE
      (--certificate-identity I --certificate-oidc-issuer U | --key K)
      [--trusted-root FILE] FILE_OR_DIGEST
    Exit codes as `trustgate verify blob`: 0 verified, 1 not verified, 2 usage, 3 could not
    evaluate.
    """
    if staging and trusted_root_path is None:
        click.echo(
            "trustgate: error: --staging: trustgate embeds only the public-good trusted root; "
            "pass the staging instance's trusted_root.json with --trusted-root",
            err=True,
        )
        sys.exit(ExitCode.NOT_EVALUATED)
    for name, path in (("--bundle", bundle_path), ("--key", key_path), ("--trusted-root", trusted_root_path)):
        if path is not None and not Path(path).is_file():
            click.echo(f"trustgate: error: {name} {path}: no such file", err=True)
            sys.exit(ExitCode.NOT_EVALUATED)
    sys.exit(
        _run(
            file_or_digest,
            bundle_path,
            certificate_identity=certificate_identity,
            certificate_identity_regexp=None,
            certificate_oidc_issuer=certificate_oidc_issuer,
            certificate_oidc_issuer_regexp=None,
            key_path=key_path,
            trusted_root_path=trusted_root_path,
            fmt="text",
        )
    )


if __name__ == "__main__":
    conformance()
