"""Service settings (env prefix ``DATASAFE_API_``), obtained through ``get_settings()``."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from ledger.settings import BaseDataSafeSettings


class ApiSettings(BaseDataSafeSettings):
    """Everything the service needs to start; nothing is read at import time.

    The chain (``rpc_url``), the database for nonces, relays, vault metadata and the event
    index (``database_url``), the manifest and the blob store come from
    :class:`BaseDataSafeSettings`: under the data directory unless set.
    """

    model_config = SettingsConfigDict(env_prefix="DATASAFE_API_")

    host: str = "127.0.0.1"
    port: int = Field(default=8700, ge=0, le=65535)
    #: Private key of the custodian account that relays signed messages and pays gas.
    custodian_key: SecretStr | None = None
    #: Blocks a relayed transaction must be buried under before it is reported.
    confirmations: int = Field(default=0, ge=0)
    #: Accepted clock skew of a signed request, in seconds, in both directions.
    request_window_seconds: int = Field(default=300, ge=5, le=3600)
    #: Largest accepted request body, enforced while it streams in (Content-Length or chunked).
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    #: Deepest JSON nesting accepted in a body, checked before the body is parsed.
    max_json_depth: int = Field(default=32, ge=2, le=256)
    #: Most JSON values per body (array items plus object members, all levels together).
    max_json_items: int = Field(default=1024, ge=16, le=1_000_000)
    #: Validation problems listed in one 422 answer (the count of all of them is sent too).
    max_validation_errors: int = Field(default=10, ge=1, le=1000)
    #: Open event streams (SSE) per member, and in this process.
    max_streams_per_member: int = Field(default=4, ge=1, le=1000)
    max_streams_total: int = Field(default=256, ge=1, le=100_000)
    #: Longest an event stream stays open (seconds); the client reconnects with Last-Event-ID.
    max_stream_seconds: float = Field(default=3600.0, gt=0, le=86_400)
    #: Readiness fails when the indexer is more than this many blocks behind.
    max_indexer_lag_blocks: int = Field(default=20, ge=0)
    #: Longest wait to gather access records into one batched transaction (ms).
    access_batch_window_ms: int = Field(default=5, ge=0, le=1000)
    #: Under load (other pulls announced and on their way), how long a batch may wait for
    #: them, from its first request (ms; 0: never). A lone pull waits only the window above.
    access_batch_busy_window_ms: int = Field(default=40, ge=0, le=1000)
    #: Most access records per batched transaction.
    access_batch_max: int = Field(default=64, ge=1, le=512)
    #: Run the event indexer inside the service.
    run_indexer: bool = True
    #: Seconds between indexer polls.
    indexer_interval_seconds: float = Field(default=0.5, gt=0)
    #: Seconds to wait for a transaction receipt before reporting chain_unavailable.
    tx_timeout_seconds: float = Field(default=60.0, gt=0)
    #: Seconds a custodian transaction may stay unmined before it is replaced (same nonce and
    #: call, fees raised >= 10 %); a few block times on a chain that does not mine at once.
    tx_replace_after_seconds: float = Field(default=3.0, gt=0)
    #: Most replacements of one stuck custodian transaction (each pays more than the last).
    tx_max_replacements: int = Field(default=3, ge=0, le=20)
    #: Seconds between blob scrub passes in the service (0: only ``datasafe-node scrub``).
    scrub_interval_seconds: float = Field(default=300.0, ge=0)
    #: Most blobs one scrub pass reads (the pass resumes from its cursor next time).
    scrub_max_blobs: int = Field(default=200, ge=1)
    #: Most bytes one scrub pass reads (at least one blob is read).
    scrub_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    #: Bearer token ``GET /metrics`` requires (``Authorization: Bearer <token>``); unset, the
    #: endpoint refuses every scrape. Metrics name routes, relay depth and custodian errors:
    #: operator information, not for any caller.
    metrics_token: SecretStr | None = None
    #: Set by ``datasafe-node``: how often it restarted a crashed API before this process.
    supervisor_restarts: int = Field(default=0, ge=0)
    #: Log level and JSON logs.
    log_level: str = "INFO"
    log_json: bool = True


@lru_cache(maxsize=1)
def get_settings() -> ApiSettings:
    return ApiSettings()
