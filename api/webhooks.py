"""Webhooks: institutions learn at once when a grant made to them is revoked, paused or expires.

Events come from the event index (the same rows as the regulator's trace, ``ledger.trace``),
so a notification is only ever sent for something the chain holds. One background task:

1. **enqueue**: for each active webhook, the index rows for its institution and event kinds
   after the webhook's position become delivery rows. A delivery's idempotency key is the
   event's identity (``<kind>:<block>:<log index>``; an expiry is ``expired:<grant id>``),
   unique per webhook, so re-scanning never enqueues an event twice;
2. **deliver**: due deliveries are POSTed as JSON, signed with the webhook's secret
   (``X-DataSafe-Webhook-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``) and
   carrying ``X-DataSafe-Idempotency-Key``. A 2xx settles it; anything else is retried with
   exponential backoff (``backoff * 2**(attempt-1)``, capped) up to ``max_attempts``, then
   marked failed. Every attempt is visible in the delivery log.

Delivery is at-least-once: a receiver that answered 2xx but whose answer was lost gets the
same event again with the same idempotency key and must drop the repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

import aiohttp
import sqlalchemy as sa
from anyio import to_thread
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import Engine

from ledger import trace
from ledger.trace import TraceFilter, TraceRow

log = logging.getLogger("api.webhooks")

EVENT_KINDS = ("revoked", "paused", "expired", "resumed")
DEFAULT_KINDS = ("revoked", "paused", "expired")

metadata = sa.MetaData()

webhooks = sa.Table(
    "api_webhooks",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("institution", sa.String(42), nullable=False, index=True),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("secret", sa.String(64), nullable=False),
    sa.Column("kinds", sa.JSON, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    #: the trace key after which events are new for this webhook
    sa.Column("after_key", sa.JSON, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

deliveries = sa.Table(
    "api_webhook_deliveries",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("webhook_id", sa.String(36), nullable=False),
    sa.Column("event_key", sa.String(200), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("last_status", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("delivered_at", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("webhook_id", "event_key", name="uq_webhook_event"),
    sa.Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)


class WebhookSettings(BaseSettings):
    """Delivery pacing (environment prefix ``DATASAFE_WEBHOOK_``)."""

    model_config = SettingsConfigDict(env_prefix="DATASAFE_WEBHOOK_", extra="ignore")

    poll_interval: float = Field(default=1.0, gt=0)
    backoff_seconds: float = Field(default=2.0, gt=0)
    max_backoff_seconds: float = Field(default=3600.0, gt=0)
    max_attempts: int = Field(default=10, ge=1)
    timeout_seconds: float = Field(default=10.0, gt=0)
    batch: int = Field(default=100, ge=1)


_migrated: weakref.WeakSet[Engine] = weakref.WeakSet()


def migrate(engine: Engine) -> None:
    """Create the webhook tables (idempotent; once per engine)."""
    if engine not in _migrated:
        metadata.create_all(engine)
        _migrated.add(engine)


def event_key(row: TraceRow) -> str:
    if row.kind == "expired":
        return f"expired:{row.grant_id}"
    return f"{row.kind}:{row.block_number}:{row.log_index}"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(secret: str, header: str, body: bytes, tolerance: int = 300) -> bool:
    """Receiver side: the header matches the body and is recent (what a receiver should run)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        ts = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, ts, body), header)


# ---- registration (called from the router, in a worker thread) -------------------------------


def create(engine: Engine, institution: str, url: str, kinds: list[str]) -> dict[str, Any]:
    migrate(engine)
    with engine.connect() as conn:
        try:
            now = trace.head_time(conn)
            last = trace.last_indexed_block(conn)
        except sa.exc.SQLAlchemyError:
            now = last = None
    # Only what happens after registration is sent: key past every row the index holds now.
    after = [now or 0, last or 0, 2**31 - 1, 2]
    row = {
        "id": str(uuid.uuid4()),
        "institution": institution.lower(),
        "url": url,
        "secret": secrets.token_hex(32),
        "kinds": sorted(set(kinds)),
        "active": True,
        "after_key": after,
        "created_at": int(time.time()),
    }
    with engine.begin() as conn:
        conn.execute(webhooks.insert().values(**row))
    return row


def list_for(engine: Engine, institution: str) -> list[dict[str, Any]]:
    migrate(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(webhooks)
            .where(webhooks.c.institution == institution.lower(), webhooks.c.active)
            .order_by(webhooks.c.created_at, webhooks.c.id)
        ).mappings()
        return [dict(r) for r in rows]


def get(engine: Engine, webhook_id: str) -> dict[str, Any] | None:
    migrate(engine)
    with engine.connect() as conn:
        row = conn.execute(sa.select(webhooks).where(webhooks.c.id == webhook_id)).mappings()
        found = row.first()
        return dict(found) if found is not None else None


def deactivate(engine: Engine, webhook_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(webhooks.update().where(webhooks.c.id == webhook_id).values(active=False))


def delivery_log(engine: Engine, webhook_id: str, limit: int = 1000) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(deliveries)
            .where(deliveries.c.webhook_id == webhook_id)
            .order_by(deliveries.c.id)
            .limit(limit)
        ).mappings()
        return [dict(r) for r in rows]


# ---- the dispatcher ---------------------------------------------------------------------------


def enqueue(engine: Engine) -> int:
    """New index rows of every active webhook become pending deliveries (idempotently)."""
    added = 0
    with engine.connect() as conn:
        hooks = [
            dict(r) for r in conn.execute(sa.select(webhooks).where(webhooks.c.active)).mappings()
        ]
    for hook in hooks:
        flt = TraceFilter(kinds=frozenset(hook["kinds"]), institution=hook["institution"])
        k = [int(v) for v in hook["after_key"]]
        with engine.connect() as conn:
            try:
                rows = trace.fetch(conn, flt, after=(k[0], k[1], k[2], k[3]), limit=500)
            except trace.TraceError:
                return added  # the index is not built yet
        if not rows:
            continue
        now_s = int(time.time())
        with engine.begin() as conn:
            for row in rows:
                payload = {
                    "id": event_key(row),
                    "type": f"grant.{row.kind}",
                    "webhook_id": hook["id"],
                    "data": row.to_json(),
                }
                exists = conn.execute(
                    sa.select(deliveries.c.id).where(
                        deliveries.c.webhook_id == hook["id"],
                        deliveries.c.event_key == payload["id"],
                    )
                ).first()
                if exists is None:
                    conn.execute(
                        deliveries.insert().values(
                            webhook_id=hook["id"],
                            event_key=payload["id"],
                            payload=payload,
                            status="pending",
                            attempts=0,
                            next_attempt_at=0.0,
                            created_at=now_s,
                        )
                    )
                    added += 1
            conn.execute(
                webhooks.update()
                .where(webhooks.c.id == hook["id"])
                .values(after_key=list(rows[-1].key))
            )
    return added


@dataclass
class _Due:
    id: int
    url: str
    secret: str
    event_key: str
    payload: dict[str, Any]
    attempts: int


def _due(engine: Engine, batch: int) -> list[_Due]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(deliveries, webhooks.c.url, webhooks.c.secret)
            .join(webhooks, webhooks.c.id == deliveries.c.webhook_id)
            .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= time.time())
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(batch)
        ).mappings()
        return [
            _Due(r["id"], r["url"], r["secret"], r["event_key"], r["payload"], r["attempts"])
            for r in rows
        ]


def _settle(
    engine: Engine, d: _Due, ok: bool, status: int | None, error: str | None, cfg: WebhookSettings
) -> None:
    attempts = d.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "last_status": status, "last_error": error}
    if ok:
        values.update(status="delivered", delivered_at=int(time.time()))
    elif attempts >= cfg.max_attempts:
        values.update(status="failed")
    else:
        delay = min(cfg.max_backoff_seconds, cfg.backoff_seconds * 2 ** (attempts - 1))
        values.update(next_attempt_at=time.time() + delay)
    with engine.begin() as conn:
        conn.execute(deliveries.update().where(deliveries.c.id == d.id).values(**values))


async def _post(
    session: aiohttp.ClientSession, d: _Due, cfg: WebhookSettings
) -> tuple[bool, int | None, str | None]:
    body = json.dumps(d.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "content-type": "application/json",
        "X-DataSafe-Idempotency-Key": d.event_key,
        "X-DataSafe-Webhook-Signature": sign(d.secret, int(time.time()), body),
        "X-DataSafe-Delivery-Attempt": str(d.attempts + 1),
    }
    try:
        async with session.post(
            d.url,
            data=body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=cfg.timeout_seconds),
        ) as resp:
            await resp.read()
            return (
                200 <= resp.status < 300,
                resp.status,
                None if resp.status < 300 else f"HTTP {resp.status}",
            )
    except (aiohttp.ClientError, TimeoutError) as exc:
        return False, None, f"{exc.__class__.__name__}: {exc}"[:500]


async def run_once(engine: Engine, session: aiohttp.ClientSession, cfg: WebhookSettings) -> int:
    """One enqueue + one round of due deliveries; returns deliveries attempted."""
    await to_thread.run_sync(migrate, engine)
    await to_thread.run_sync(enqueue, engine)
    due = await to_thread.run_sync(_due, engine, cfg.batch)
    if not due:
        return 0
    results = await asyncio.gather(*(_post(session, d, cfg) for d in due))
    for d, (ok, status, error) in zip(due, results, strict=True):
        await to_thread.run_sync(_settle, engine, d, ok, status, error, cfg)
    return len(due)


async def _loop(engine: Engine, session: aiohttp.ClientSession, cfg: WebhookSettings) -> None:
    while True:
        try:
            await run_once(engine, session, cfg)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the loop must survive a bad round; the log shows it
            log.warning("webhook round failed: %s", exc)
        await asyncio.sleep(cfg.poll_interval)


async def start(services: Any) -> None:
    """Create the tables and start the dispatcher (cancelled with ``services.tasks``)."""
    cfg = WebhookSettings()
    try:
        await to_thread.run_sync(migrate, services.engine)
    except sa.exc.SQLAlchemyError as exc:  # readiness reports the database; retry in the loop
        log.warning("webhook tables not created yet: %s", exc)
    task = asyncio.create_task(_loop(services.engine, services.session, cfg), name="webhooks")
    services.tasks.append(task)
    services.extras["webhooks"] = cfg


async def stop(services: Any) -> None:
    for task in list(services.tasks):
        if task.get_name() == "webhooks":
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
