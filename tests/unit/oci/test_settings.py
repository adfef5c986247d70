"""`images.registries` (trustgate.config.RegistryConfig) meets the client's limits
(trustgate.oci.settings.RegistrySettings) in one mapping, `RegistrySettings.from_config`: every
field of either is shared (same name, same default, carried over) or named as the other side's
own, so adding a field to one of them and forgetting the other fails here."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from trustgate.config import RegistryConfig
from trustgate.oci.client import RegistrySettings as ReExported
from trustgate.oci.settings import NOT_FOR_THE_CLIENT, RegistrySettings

# The client's limits that the configuration does not offer (a reason each: they protect trustgate,
# or no registry has needed another value). Offering one means adding it to RegistryConfig with the
# same name and default, and removing it from here.
CLIENT_ONLY = frozenset(
    {
        "min_transfer_bytes_per_second",
        "slow_transfer_grace_seconds",
        "max_manifest_bytes",
        "max_blob_bytes",
        "retry_backoff_seconds",
        "max_index_depth",
        "max_platforms",
        "max_referrer_pages",
        "credential_helper_timeout_seconds",
        "max_redirects",
        "error_body_bytes",
        "max_connections",
        "max_keepalive_connections",
        "user_agent",
    }
)

CONFIG = {f.name: f for f in dataclasses.fields(RegistryConfig)}
CLIENT = {f.name: f for f in dataclasses.fields(RegistrySettings)}
SHARED = CONFIG.keys() & CLIENT.keys()


def test_every_configured_field_reaches_the_client_or_is_named_as_another_components() -> None:
    assert SHARED.isdisjoint(NOT_FOR_THE_CLIENT)
    assert set(CONFIG) == SHARED | NOT_FOR_THE_CLIENT, "map the new field, or name it in NOT_FOR_THE_CLIENT"


def test_every_client_limit_is_configurable_or_listed_as_the_clients_own() -> None:
    assert SHARED.isdisjoint(CLIENT_ONLY)
    assert set(CLIENT) == SHARED | CLIENT_ONLY, "offer the new limit in RegistryConfig, or list it here"


def _another(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value * 2 + 1
    if isinstance(value, tuple):
        return ("other.test:5000",)
    if value is None:
        return Path("/elsewhere/file")
    raise AssertionError(f"no other value for {value!r}; extend _another")


def test_every_shared_field_is_carried_over() -> None:
    values = {name: _another(CONFIG[name].default) for name in SHARED}
    settings = RegistrySettings.from_config(RegistryConfig(**values))
    assert {name: getattr(settings, name) for name in SHARED} == values
    for name in CLIENT_ONLY:
        assert getattr(settings, name) == CLIENT[name].default, name


def test_the_client_settings_come_from_the_configuration() -> None:
    assert ReExported is RegistrySettings  # still importable from the client
    settings = RegistrySettings.from_config(
        RegistryConfig(insecure=("r:5000",), timeout_seconds=3, max_retries=1, transfer_deadline_seconds=7)
    )
    assert (settings.insecure, settings.timeout_seconds, settings.max_retries) == (("r:5000",), 3, 1)
    assert settings.transfer_deadline_seconds == 7
    assert settings.max_blob_bytes == RegistrySettings().max_blob_bytes  # the client's own limit
    assert RegistrySettings.from_config(RegistryConfig(http2=False)).http2 is False


def test_the_configuration_and_the_client_agree_on_every_default_they_share() -> None:
    """images.registries and the client's limits name a setting once each way: same name, same default."""
    assert {"insecure", "ca_file", "timeout_seconds", "max_retries"} <= SHARED
    for name in SHARED:
        assert CLIENT[name].default == CONFIG[name].default, name
