"""Trust roots and public keys.

Owns: `TrustRoot` (a named Sigstore trust root: the public-good root embedded in
the `sigstore` package, or a private `trusted_root.json`), loading PEM public
keys, and key ids. Leaves out: verification itself (`bundle.py`, `cosign.py`)
and where the configuration names these roots (`trustgate.config`).

Nothing here touches the network: the public-good root is read from the copy
that ships inside `sigstore` (its TUF bootstrap data), never refreshed over TUF,
so a run is reproducible and works air-gapped.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning

from trustgate.errors import ConfigError

if TYPE_CHECKING:
    from datetime import datetime

    from sigstore._internal.trust import RekorKeyring
    from sigstore.models import TrustedRoot

    from trustgate.verify._sigstore import TrustgateVerifier, WindowedKeyring

PublicKey: TypeAlias = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

# The directory sigstore keeps its embedded production TUF data in (`sigstore._store`).
_PUBLIC_GOOD_STORE = "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
_SUPPORTED_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)


class TrustRoot:
    """A named Sigstore trust root: certificate authorities, CT logs, Rekor logs, timestamp authorities.

    Build one with `TrustRoot.public_good()` or `TrustRoot.from_file(path)`. A `TrustRoot` is
    immutable and thread-safe; it keeps one sigstore verifier for every verification made with it.
    """

    def __init__(self, *, name: str, trusted_root: TrustedRoot, source: str) -> None:
        self.name = name
        self.source = source
        self._trusted_root = trusted_root
        self._lock = threading.Lock()
        self._verifier: TrustgateVerifier | None = None
        self._rekor_keyring: WindowedKeyring | None = None

    def __repr__(self) -> str:
        return f"TrustRoot(name={self.name!r}, source={self.source!r})"

    @classmethod
    def public_good(cls) -> TrustRoot:
        """The Sigstore public-good production root, as embedded in the installed `sigstore` package.

        Offline: no TUF refresh, no network, no cache directory. Loaded once per process.
        """
        return _public_good()

    @classmethod
    def from_file(cls, path: Path, name: str | None = None) -> TrustRoot:
        """A private trust root from a `trusted_root.json` file.

        Raises:
            ConfigError: the file cannot be read or is not a Sigstore trusted root.
        """
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise ConfigError(
                f"cannot read the trusted root: {e.strerror or e}",
                where=str(path),
                hint="give the path of a Sigstore trusted_root.json",
            ) from e
        return cls.from_json(data, name=name or Path(path).stem, where=str(path))

    @classmethod
    def from_json(cls, data: bytes, *, name: str, where: str = "trusted root") -> TrustRoot:
        """A trust root from the bytes of a `trusted_root.json`.

        Raises:
            ConfigError: the bytes are not a valid Sigstore trusted root.
        """
        from sigstore.errors import Error as SigstoreError
        from sigstore.models import TrustedRoot
        from sigstore_models.trustroot import v1 as trustroot_v1

        try:
            inner = trustroot_v1.TrustedRoot.from_json(data)
            root = TrustedRoot(inner)
            # Fail now, not at the first verification, when a part is unusable.
            root.get_fulcio_certs()
            if not root._inner.tlogs:
                raise ConfigError("the trusted root names no transparency log", where=where)
        except ConfigError:
            raise
        except (SigstoreError, ValueError, TypeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(
                f"not a usable Sigstore trusted root: {first}",
                where=where,
                hint="expected application/vnd.dev.sigstore.trustedroot+json;version=0.1 with "
                "certificateAuthorities, tlogs and ctlogs",
            ) from e
        return cls(name=name, trusted_root=root, source=where)

    @property
    def trusted_root(self) -> TrustedRoot:
        """The wrapped `sigstore.models.TrustedRoot`."""
        return self._trusted_root

    def verifier(self) -> TrustgateVerifier:
        """The sigstore verifier for this root, made once and shared (it keeps no per-call state)."""
        verifier = self._verifier
        if verifier is None:
            with self._lock:
                if self._verifier is None:
                    from trustgate.verify._sigstore import TrustgateVerifier

                    self._verifier = TrustgateVerifier(trusted_root=self._trusted_root)
                verifier = self._verifier
        return verifier

    def rekor_keyring(self, *, at: datetime | None) -> RekorKeyring:
        """The Rekor log keys of this root (for inclusion promises and checkpoints) whose `validFor`
        window covers `at`, the entry's integrated time; every key when None.

        Raises:
            MetadataError: the root lists no Rekor key (sigstore's).
        """
        keyring = self._rekor_keyring
        if keyring is None:
            from sigstore._internal.trust import KeyringPurpose

            from trustgate.verify._sigstore import WindowedKeyring as Windowed

            with self._lock:
                if self._rekor_keyring is None:
                    self._trusted_root.rekor_keyring(KeyringPurpose.VERIFY)  # raises without keys
                    self._rekor_keyring = Windowed(self._trusted_root._inner.tlogs, what="transparency log")
                keyring = self._rekor_keyring
        from sigstore._internal.trust import RekorKeyring as Rekor

        return Rekor(keyring.at(at))


_public_good_lock = threading.Lock()
_public_good_root: TrustRoot | None = None


def public_good_trusted_root_json() -> bytes:
    """The bytes of the public-good `trusted_root.json` embedded in the installed `sigstore`."""
    store = importlib.resources.files("sigstore._store")
    return store.joinpath(_PUBLIC_GOOD_STORE, "trusted_root.json").read_bytes()


def _public_good() -> TrustRoot:
    global _public_good_root
    with _public_good_lock:
        if _public_good_root is None:
            _public_good_root = TrustRoot.from_json(
                public_good_trusted_root_json(),
                name="sigstore-public-good",
                where="sigstore public-good trusted root (embedded)",
            )
        return _public_good_root


def load_public_key(pem: bytes, *, where: str) -> PublicKey:
    """A PEM public key (SubjectPublicKeyInfo): ECDSA P-256/P-384/P-521, Ed25519 or RSA (2048+ bits).

    Raises:
        ConfigError: not a PEM public key, or a kind of key that cannot sign here.
    """
    hint = "give a PEM public key (-----BEGIN PUBLIC KEY-----), e.g. the cosign.pub of a cosign key pair"
    try:
        # cryptography 51 deprecates DSA and warns when a DSA key is loaded; such a key is refused
        # below with a clear message, so its deprecation warning would only be noise.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=CryptographyDeprecationWarning, message="DSA")
            key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as e:
        raise ConfigError("not a PEM public key", where=where, hint=hint) from e
    except UnsupportedAlgorithm as e:
        # A release without DSA (or any other algorithm it cannot load) ends here.
        raise ConfigError(f"unsupported key type: {e}", where=where, hint=hint) from e
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, _SUPPORTED_CURVES):
            raise ConfigError(f"unsupported elliptic curve {key.curve.name}", where=where, hint=hint)
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ConfigError(f"RSA key of {key.key_size} bits is too short", where=where, hint=hint)
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise ConfigError(
        f"unsupported key type {type(key).__name__}: signing keys are ECDSA (P-256, P-384, P-521), "
        "Ed25519 or RSA (2048 bits or more)",
        where=where,
        hint=hint,
    )


def key_id(key: PublicKey) -> str:
    """`sha256:<hex>` of the key's DER SubjectPublicKeyInfo."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()
