"""Indexer settings (environment prefix ``DATASAFE_INDEXER_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IndexerSettings(BaseSettings):
    """Where to read the chain from, where to write the index, and how cautiously."""

    model_config = SettingsConfigDict(env_prefix="DATASAFE_INDEXER_", extra="ignore")

    rpc_url: str = "http://127.0.0.1:8545"
    ledger_address: str | None = None
    start_block: int = Field(default=0, ge=0, description="The ledger's deployment block.")
    data_dir: Path = Field(
        default=Path.home() / ".datasafe",
        validation_alias=AliasChoices("DATASAFE_INDEXER_DATA_DIR", "DATASAFE_DATA_DIR"),
    )
    db_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite file indexer.db in data_dir."
    )
    batch_size: int = Field(default=2000, ge=1, description="Largest eth_getLogs block range.")
    min_batch_size: int = Field(default=1, ge=1)
    confirmations: int = Field(default=0, ge=0, description="Blocks below the head not indexed.")
    reorg_window: int = Field(default=128, ge=1, description="Recent block hashes kept.")
    poll_interval: float = Field(default=2.0, gt=0)
    rpc_timeout: float = Field(default=30.0, gt=0)
    on_unknown_event: Literal["error", "skip"] = "error"

    def resolved_db_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.data_dir / 'indexer.db'}"


@lru_cache
def get_settings() -> IndexerSettings:
    return IndexerSettings()
