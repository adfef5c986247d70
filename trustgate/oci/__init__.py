"""The OCI registry client: references, resolution, auth, referrers and cosign tags.

Import from the modules (`trustgate.oci.reference`, `.client`, `.settings`,
`.transport`, `.discovery`, `.errors`); this package stays empty so that parsing a
reference does not import the HTTP stack (httpcore, in `.transport` only).
`trustgate.oci.client.registry_client(config.images.registries)` builds the
client a gate uses.
"""
