"""Settings of the ``ledger`` package (env prefix ``DATASAFE_LEDGER_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from ledger._settings_base import (
    BLOB_DIR,
    DB_FILE,
    MANIFEST_FILE,
    BaseDataSafeSettings,
    default_database_url,
)

__all__ = [
    "BLOB_DIR",
    "DB_FILE",
    "MANIFEST_FILE",
    "BaseDataSafeSettings",
    "LedgerSettings",
    "default_database_url",
    "get_settings",
]


class LedgerSettings(BaseDataSafeSettings):
    """Where the chain is, who signs, and how long to wait (``datasafe-node`` reads these).

    The data directory, RPC URL and manifest come from :class:`BaseDataSafeSettings`.
    """

    model_config = SettingsConfigDict(env_prefix="DATASAFE_LEDGER_")

    #: Hex private key of the sender (governor/relayer). Prefer ``keystore_path`` outside dev.
    private_key: SecretStr | None = None
    keystore_path: Path | None = None
    keystore_password: SecretStr | None = None
    #: Address of a node-unlocked account to send from instead of a local key.
    node_account: str | None = None
    confirmations: int = Field(default=0, ge=0)
    receipt_timeout: float = Field(default=60.0, gt=0)
    poll_interval: float = Field(default=0.05, gt=0)
    rpc_timeout: float = Field(default=10.0, gt=0)
    rpc_retries: int = Field(default=3, ge=0)
    #: Re-send a transaction the node forgot after this many seconds without a receipt.
    resend_after: float = Field(default=5.0, gt=0)
    gas_multiplier: float = Field(default=1.2, ge=1.0)
    #: anvil binary; default: the repo's ``node_modules`` install.
    anvil_path: Path | None = None
    anvil_port: int = Field(default=8545, ge=0, le=65535)
    #: 0 = automine; otherwise ``--block-time`` seconds.
    block_time: float = Field(default=0, ge=0)
    chain_id: int = 31337
    state_interval: int = Field(default=5, ge=1)

    @property
    def resolved_manifest_path(self) -> Path:
        """The manifest (kept for the node's callers; the same as ``manifest_path``)."""
        return self.manifest_path


@lru_cache(maxsize=1)
def get_settings() -> LedgerSettings:
    return LedgerSettings()
