"""The registry client's settings: every limit it keeps, with its unit and reason.

Owns: `RegistrySettings` (TLS, credentials, timeouts, retries, size and
rate limits, connection pool) and the one mapping from the configuration's
`images.registries` (`trustgate.config.RegistryConfig`) to it, with the
names of the configuration's fields that are not the client's
(`NOT_FOR_THE_CLIENT`). Leaves out: using them (client.py, authorizer.py,
body.py, transport.py) and reading the configuration file (trustgate.config).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from trustgate.oci.model import MAX_PLATFORMS

if TYPE_CHECKING:
    from trustgate.config import RegistryConfig

__all__ = ["NOT_FOR_THE_CLIENT", "RegistrySettings"]

# Fields of `images.registries` that the client does not take: the verifier's and the breaker's.
NOT_FOR_THE_CLIENT: Final = frozenset(
    {
        "concurrency",  # ImageVerifier: images verified at once
        "node_local",  # ImageStage: node-local registries trustgate shares with the nodes (admission)
        "deadline_seconds",  # ImageVerifier: one image's whole verification (oci/deadline.py)
        "breaker_threshold",  # Breakers (oci/breaker.py)
        "breaker_base_seconds",
        "breaker_max_seconds",
        "max_requests_per_registry",  # Breakers' bulkhead
        "queue_seconds",
        "max_artifacts",  # DiscoveryLimits (oci/discovery.py): artifacts examined per image digest
        "max_payload_bytes",  # DiscoveryLimits: bytes per signature/attestation payload
        "max_total_payload_bytes",  # DiscoveryLimits: bytes of payloads per image
    }
)


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """How the client talks to registries; every limit with its unit."""

    ca_file: Path | None = None  # PEM CA bundle trusted in addition to the public roots
    insecure: tuple[str, ...] = ()  # host[:port] allowed over plain HTTP (and only these)
    docker_config: Path | None = None  # None: $DOCKER_CONFIG/config.json or ~/.docker/config.json
    timeout_seconds: float = 10.0  # seconds per connect / read / write
    transfer_deadline_seconds: float = 120.0  # seconds for one whole response; stops trickling servers
    min_transfer_bytes_per_second: float = 1024.0  # below this a body is abandoned (after the grace below)
    slow_transfer_grace_seconds: float = 2.0  # seconds a body may start slowly before its rate is judged
    max_manifest_bytes: int = 4 * 1024 * 1024  # bytes; the distribution spec's manifest limit
    max_blob_bytes: int = 16 * 1024 * 1024  # bytes; signature layers are a few KiB, SBOMs a few MiB
    max_retries: int = 3  # extra attempts after a 429, a 5xx or a dropped connection
    max_retry_after_seconds: float = 30.0  # seconds; a longer Retry-After fails now, to be retried later
    retry_backoff_seconds: float = 0.5  # seconds before the first retry without Retry-After; doubles
    max_index_depth: int = 4  # nested indexes followed; deeper is reported as a loop
    max_platforms: int = MAX_PLATFORMS  # image manifests under one index; real multi-arch images list a dozen
    max_referrer_pages: int = 16  # pages of the referrers API followed through Link headers
    credential_helper_timeout_seconds: float = 10.0  # seconds for `docker-credential-<name> get`
    max_redirects: int = 5  # hops; registries redirect blobs to storage once
    error_body_bytes: int = 64 * 1024  # bytes read of an error or token answer; enough for any
    max_connections: int = 64  # open connections (all registries together); one per thread is enough
    max_keepalive_connections: int = 32  # idle connections kept for reuse
    http2: bool = True  # HTTP/2 where a registry offers it over TLS (ALPN); False: HTTP/1.1 only
    user_agent: str = "trustgate/0.1"

    @classmethod
    def from_config(cls, config: RegistryConfig) -> RegistrySettings:
        """The client's settings from `images.registries`: every field the two share by name, the
        others at their defaults (the one place the configuration meets the client's limits; a
        test fails when a field of either is neither shared nor named as the other's own)."""
        shared = {f.name for f in dataclasses.fields(cls)} & {f.name for f in dataclasses.fields(config)}
        return cls(**{name: getattr(config, name) for name in shared})
