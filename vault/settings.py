"""Vault settings (env prefix ``DATASAFE_VAULT_``), obtained through :func:`get_settings`.

Only the limits: the vault stores nothing itself (the service owns the tables and the blob
store), and it does not derive from ``ledger``'s settings base because ``vault`` and
``ledger`` never import each other.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

from vault.limits import Limits


class VaultSettings(BaseSettings):
    """How much the vault accepts."""

    model_config = SettingsConfigDict(env_prefix="DATASAFE_VAULT_", extra="ignore")

    max_fields: int = 256
    max_field_name_bytes: int = 128
    max_field_value_bytes: int = 16 * 1024 * 1024
    max_sealed_asset_bytes: int = 64 * 1024 * 1024
    max_key_package_bytes: int = 64 * 1024
    max_disclosure_bytes: int = 64 * 1024 * 1024

    @property
    def limits(self) -> Limits:
        return Limits(
            max_fields=self.max_fields,
            max_field_name_bytes=self.max_field_name_bytes,
            max_field_value_bytes=self.max_field_value_bytes,
            max_sealed_asset_bytes=self.max_sealed_asset_bytes,
            max_key_package_bytes=self.max_key_package_bytes,
            max_disclosure_bytes=self.max_disclosure_bytes,
        )


@lru_cache(maxsize=1)
def get_settings() -> VaultSettings:
    return VaultSettings()
