"""Wallet settings (env prefix ``DATASAFE_``), read once per command invocation."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The Web3 Secret Storage default work factor (what geth and eth-account write).
DEFAULT_SCRYPT_N = 262_144


class WalletSettings(BaseSettings):
    """``DATASAFE_HOME``, ``DATASAFE_PROFILE``, ``DATASAFE_API``, ``DATASAFE_RPC``,
    ``DATASAFE_PASSPHRASE``, ``DATASAFE_SCRYPT_N``, ``DATASAFE_PIN`` (a deployment fingerprint
    confirmed out of band), ``DATASAFE_CONFIRM_TIMEOUT`` (seconds to wait for the chain to show
    an action the service reported)."""

    model_config = SettingsConfigDict(env_prefix="DATASAFE_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".datasafe-wallet")
    profile: str | None = None
    api: str | None = None
    rpc: str | None = None
    passphrase: SecretStr | None = None
    scrypt_n: int = Field(DEFAULT_SCRYPT_N, ge=2**10, le=2**20)
    pin: str | None = None
    confirm_timeout: float = Field(30.0, ge=0.0, le=3600.0)


def get_settings() -> WalletSettings:
    """Fresh settings: the CLI reads the environment on every invocation (tests change it)."""
    return WalletSettings()
