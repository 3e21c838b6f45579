"""Indexer settings (environment prefix ``DATASAFE_INDEXER_``)."""

from __future__ import annotations

from functools import lru_cache
from typing import ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ledger._settings_base import BaseDataSafeSettings


class IndexerSettings(BaseDataSafeSettings):
    """Where to read the chain from, where to write the index, and how cautiously.

    The index goes into ``database_url``: by default the data directory's database, the one
    the service reads (:class:`BaseDataSafeSettings`).
    """

    model_config = SettingsConfigDict(env_prefix="DATASAFE_INDEXER_")
    legacy_env: ClassVar[dict[str, str]] = {"DATASAFE_INDEXER_DB_URL": "database_url"}

    ledger_address: str | None = None
    start_block: int = Field(default=0, ge=0, description="The ledger's deployment block.")
    batch_size: int = Field(default=2000, ge=1, description="Largest eth_getLogs block range.")
    min_batch_size: int = Field(default=1, ge=1)
    confirmations: int = Field(default=0, ge=0, description="Blocks below the head not indexed.")
    reorg_window: int = Field(default=128, ge=1, description="Recent block hashes kept.")
    poll_interval: float = Field(default=2.0, gt=0)
    rpc_timeout: float = Field(default=30.0, gt=0)
    on_unknown_event: Literal["error", "skip"] = "error"


@lru_cache(maxsize=1)
def get_settings() -> IndexerSettings:
    return IndexerSettings()
