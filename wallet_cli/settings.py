"""Wallet settings (env prefix ``DATASAFE_``), read once per command invocation."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from ledger.settings import BaseDataSafeSettings

#: The Web3 Secret Storage default work factor (what geth and eth-account write).
DEFAULT_SCRYPT_N = 262_144


class WalletSettings(BaseDataSafeSettings):
    """``DATASAFE_HOME``, ``DATASAFE_PROFILE``, ``DATASAFE_API``, ``DATASAFE_RPC_URL`` (formerly
    ``DATASAFE_RPC``, still read), ``DATASAFE_PASSPHRASE``, ``DATASAFE_SCRYPT_N``,
    ``DATASAFE_PIN`` (a deployment fingerprint confirmed out of band),
    ``DATASAFE_CONFIRM_TIMEOUT`` (seconds to wait for the chain to show an action the service
    reported).

    Of the shared settings (:class:`BaseDataSafeSettings`) the wallet reads ``rpc_url`` only,
    and it has no default chain: empty means "none given". Its keys live in ``home``, not in
    a node's data directory.
    """

    model_config = SettingsConfigDict(env_prefix="DATASAFE_")
    legacy_env: ClassVar[dict[str, str]] = {"DATASAFE_RPC": "rpc_url"}

    home: Path = Field(default_factory=lambda: Path.home() / ".datasafe-wallet")
    profile: str | None = None
    api: str | None = None
    rpc_url: str = ""
    passphrase: SecretStr | None = None
    scrypt_n: int = Field(DEFAULT_SCRYPT_N, ge=2**10, le=2**20)
    pin: str | None = None
    confirm_timeout: float = Field(30.0, ge=0.0, le=3600.0)


@lru_cache(maxsize=1)
def get_settings() -> WalletSettings:
    """The settings of this invocation: the CLI's entry point clears the cache, so each
    command reads the environment afresh (tests run many in one process)."""
    return WalletSettings()
