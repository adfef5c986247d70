"""Signatures and attestations: trust roots, Sigstore bundles, cosign payloads, DSSE and in-toto."""
