"""`trustgate verify`: verify signatures directly, outside a gate.

Owns: the `verify` click group and its `blob` command (flags, reading the
files named on the command line, printing the result). The cryptography is
`trustgate.verify`'s.

Exit codes of `verify blob`: 0 verified; 1 not verified, for any reason (a bad
signature, a malformed bundle, an unreadable key or trusted root); 2 usage.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

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
def blob(
    file_or_digest: str,
    bundle_path: str,
    certificate_identity: str | None,
    certificate_identity_regexp: str | None,
    certificate_oidc_issuer: str | None,
    certificate_oidc_issuer_regexp: str | None,
    key_path: str | None,
    trusted_root_path: str | None,
    fmt: str,
) -> None:
    """Verify a Sigstore bundle for FILE_OR_DIGEST (a path, or sha256:<hex>).

    \b
    Keyless: --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp].
    With a key: --key cosign.pub (its log entry is checked against the trusted root).
    Exit codes: 0 verified, 1 not verified (any reason), 2 usage error.

    \b
    Examples:
      trustgate verify blob app.tar.gz --bundle app.tar.gz.sigstore.json \\
        --certificate-identity-regexp 'https://github.com/acme/app/.github/workflows/.*@refs/tags/v.*' \\
        --certificate-oidc-issuer https://token.actions.githubusercontent.com
      trustgate verify blob sha256:4f2c... --bundle b.json --key cosign.pub
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
    if _DIGEST.fullmatch(file_or_digest):
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
        TrustRoot,
        VerificationFailed,
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
    except VerificationFailed as e:
        if fmt == "json":
            click.echo(json.dumps({"verified": False, "failure": e.to_json()}, indent=2))
        else:
            click.echo(f"not verified: {e.reason} [{e.code}]")
            if e.detail:
                click.echo(f"  detail: {e.detail}")
        sys.exit(ExitCode.POLICY_FAILURE)
    except (Error, OSError) as e:
        message = e.diagnostics() if isinstance(e, Error) else f"{e.strerror or e}"
        if fmt == "json":
            click.echo(
                json.dumps({"verified": False, "failure": {"code": "config", "reason": message}}, indent=2)
            )
        click.echo(f"trustgate: error: {message}", err=True)
        sys.exit(ExitCode.POLICY_FAILURE)
    if fmt == "json":
        click.echo(json.dumps({"verified": True, "evidence": evidence.to_json()}, indent=2))
        return
    who = (
        f"{evidence.subject} (issuer {evidence.issuer})" if evidence.method == "keyless" else evidence.key_id
    )
    line = f"verified: {evidence.signed_digest} signed by {who}"
    if evidence.log_index is not None:
        line += f", logged at index {evidence.log_index}"
    if evidence.integrated_time:
        line += f" on {evidence.integrated_time}"
    click.echo(line)
