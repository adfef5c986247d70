"""Media types, artifact types and annotation keys the registry layer knows by name.

Owns: the names (OCI and Docker manifests and indexes, Sigstore bundles, cosign artifacts and
annotations). Leaves out: what is accepted where (client.py, discovery.py).
"""

from __future__ import annotations

from typing import Final

OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_V1: Final = "application/vnd.docker.distribution.manifest.v1+prettyjws"

INDEXES: Final = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_MANIFESTS: Final = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MANIFESTS: Final = INDEXES | IMAGE_MANIFESTS
# Preference order for the Accept header: all four, indexes first so a tag resolves to the index digest.
ACCEPT_MANIFESTS: Final = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST))

OCI_EMPTY: Final = "application/vnd.oci.empty.v1+json"
OCI_LAYER: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG: Final = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER: Final = "application/vnd.docker.image.rootfs.diff.tar.gzip"

SIGSTORE_BUNDLE: Final = "application/vnd.dev.sigstore.bundle.v0.3+json"
SIGSTORE_BUNDLE_PREFIX: Final = "application/vnd.dev.sigstore.bundle"  # v0.1 .. v0.3
COSIGN_SIMPLESIGNING: Final = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE: Final = "application/vnd.dsse.envelope.v1+json"
COSIGN_ARTIFACT_SIG: Final = "application/vnd.dev.cosign.artifact.sig.v1+json"
COSIGN_ARTIFACT_ATT: Final = "application/vnd.dev.cosign.artifact.att.v1+json"

ANNOTATION_SIGNATURE: Final = "dev.cosignproject.cosign/signature"
ANNOTATION_CERTIFICATE: Final = "dev.sigstore.cosign/certificate"
ANNOTATION_CHAIN: Final = "dev.sigstore.cosign/chain"
ANNOTATION_BUNDLE: Final = "dev.sigstore.cosign/bundle"
ANNOTATION_PREDICATE_TYPE: Final = "predicateType"
COSIGN_ANNOTATIONS: Final = (
    ANNOTATION_SIGNATURE,
    ANNOTATION_CERTIFICATE,
    ANNOTATION_CHAIN,
    ANNOTATION_BUNDLE,
    ANNOTATION_PREDICATE_TYPE,
)
