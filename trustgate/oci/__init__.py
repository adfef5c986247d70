"""The OCI registry client: references, resolution, auth, referrers and cosign tags."""
