"""Image policy: which images must be signed by whom, with which attestations; the verification cache."""
