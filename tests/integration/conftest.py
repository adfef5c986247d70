from support.sigstore import sigstore, sigstore_root, sigstore_root_file  # noqa: F401
