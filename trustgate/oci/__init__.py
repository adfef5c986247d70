"""The OCI registry client: references, resolution, auth, referrers and cosign tags.

Import from the modules (`trustgate.oci.reference`, `.client`, `.discovery`,
`.errors`); this package stays empty so that parsing a reference does not
import httpx.
"""
