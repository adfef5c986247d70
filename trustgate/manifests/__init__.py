"""Reading manifests: files, directories, stdin and kustomizations."""
