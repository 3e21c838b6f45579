"""Explicit size limits, checked before any parsing or crypto.

The defaults are generous for citizen records and small documents; the service
can lower or raise them through :class:`vault.settings.VaultSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Upper bounds on what the vault accepts."""

    max_fields: int = 256
    max_field_name_bytes: int = 128
    max_field_value_bytes: int = 16 * 1024 * 1024
    max_sealed_asset_bytes: int = 64 * 1024 * 1024
    max_key_package_bytes: int = 64 * 1024
    max_disclosure_bytes: int = 64 * 1024 * 1024


DEFAULT_LIMITS = Limits()
