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

Egress (``api.egress``): a URL is checked at registration and again on every connection, after
resolving its host once, and the connection goes to exactly the checked addresses; redirects
are not followed. A refused target is logged with the fixed reason ``egress_refused`` and
marked failed at once; no log entry ever carries a response body or a connection error text.
Operators allow internal receivers with ``DATASAFE_WEBHOOK_ALLOW_NETWORKS``.

One delivery per event across replicas: a dispatcher *claims* a due delivery
(``UPDATE ... SET claimed_by = me WHERE claimed_by IS NULL OR claim_expires < now``, one row at
a time, in its own transaction) before sending it, and only the claimant settles it. A replica
that dies mid-send leaves a claim that expires after ``claim_seconds``.

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
import os
import secrets
import socket
import time
import uuid
import weakref
from dataclasses import dataclass
from typing import Any

import aiohttp
import anyio
import sqlalchemy as sa
from anyio import to_thread
from pydantic import Field, IPvAnyNetwork
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from api import db, egress
from api.db import webhook_deliveries as deliveries
from api.db import webhooks
from ledger import trace
from ledger.trace import TraceFilter, TraceRow

log = logging.getLogger("api.webhooks")

EVENT_KINDS = ("revoked", "paused", "expired", "resumed", "recall")
DEFAULT_KINDS = ("revoked", "paused", "expired")


class WebhookSettings(BaseSettings):
    """Delivery pacing (environment prefix ``DATASAFE_WEBHOOK_``)."""

    model_config = SettingsConfigDict(env_prefix="DATASAFE_WEBHOOK_", extra="ignore")

    poll_interval: float = Field(default=1.0, gt=0)
    backoff_seconds: float = Field(default=2.0, gt=0)
    max_backoff_seconds: float = Field(default=3600.0, gt=0)
    max_attempts: int = Field(default=10, ge=1)
    timeout_seconds: float = Field(default=10.0, gt=0)
    batch: int = Field(default=100, ge=1)
    #: How long a claim on a delivery holds before another replica may take it over.
    claim_seconds: float = Field(default=60.0, gt=0)
    #: Networks webhooks may reach although the egress policy refuses them (loopback,
    #: private ranges): JSON list, e.g. ``["10.1.2.0/24", "127.0.0.1/32"]``. Empty by default.
    allow_networks: list[IPvAnyNetwork] = Field(default_factory=list)

    def policy(self) -> egress.EgressPolicy:
        return egress.EgressPolicy.of(self.allow_networks)


_migrated: weakref.WeakSet[Engine] = weakref.WeakSet()


def migrate(engine: Engine) -> None:
    """Bring the service's tables (webhooks' among them) to head; once per engine."""
    if engine not in _migrated:
        db.migrate(engine)
        _migrated.add(engine)


def event_key(row: TraceRow) -> str:
    if row.kind in ("expired", "recall"):
        # Neither is a log of its own: one per grant (a version is superseded once).
        return f"{row.kind}:{row.grant_id}"
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


def create(
    engine: Engine,
    institution: str,
    url: str,
    kinds: list[str],
    policy: egress.EgressPolicy | None = None,
) -> dict[str, Any]:
    """Register a webhook; :class:`egress.TargetRefusedError` when the target is not permitted."""
    egress.check_url(url, policy or egress.EgressPolicy())
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
                added += _insert_once(
                    conn,
                    webhook_id=hook["id"],
                    event_key=payload["id"],
                    payload=payload,
                    status="pending",
                    attempts=0,
                    next_attempt_at=0.0,
                    created_at=now_s,
                )
            conn.execute(
                webhooks.update()
                .where(webhooks.c.id == hook["id"])
                .values(after_key=list(rows[-1].key))
            )
    return added


def _insert_once(conn: sa.Connection, **values: Any) -> int:
    """Insert a delivery unless (webhook, event) exists: replicas enqueue the same events."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        stmt: Any = postgresql.insert(deliveries).on_conflict_do_nothing(
            constraint="uq_webhook_event"
        )
    elif dialect == "sqlite":
        stmt = sqlite.insert(deliveries).on_conflict_do_nothing()
    else:  # pragma: no cover - the two databases we support are above
        stmt = deliveries.insert()
    return int(conn.execute(stmt.values(**values)).rowcount or 0)


def worker_id() -> str:
    """A dispatcher's identity in claims: host, process and a random part."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


@dataclass
class _Due:
    id: int
    url: str
    secret: str
    event_key: str
    payload: dict[str, Any]
    attempts: int


def _claim(engine: Engine, batch: int, worker: str, lease: float) -> list[_Due]:
    """Claim up to ``batch`` due deliveries for ``worker``; each claim is one atomic UPDATE."""
    now = time.time()
    free = sa.or_(deliveries.c.claimed_by.is_(None), deliveries.c.claim_expires < now)
    due = sa.and_(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now, free)
    with engine.connect() as conn:
        candidates = [
            r.id
            for r in conn.execute(
                sa.select(deliveries.c.id)
                .where(due)
                .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
                .limit(batch)
            )
        ]
    claimed: list[int] = []
    for delivery_id in candidates:
        with engine.begin() as conn:
            # The WHERE repeats every condition: of two dispatchers racing for this row, the
            # second one's UPDATE matches nothing once the first has committed its claim.
            taken = conn.execute(
                deliveries.update()
                .where(deliveries.c.id == delivery_id, due)
                .values(claimed_by=worker, claim_expires=now + lease)
            ).rowcount
        if taken == 1:
            claimed.append(delivery_id)
    if not claimed:
        return []
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(deliveries, webhooks.c.url, webhooks.c.secret)
            .join(webhooks, webhooks.c.id == deliveries.c.webhook_id)
            .where(deliveries.c.id.in_(claimed), deliveries.c.claimed_by == worker)
            .order_by(deliveries.c.id)
        ).mappings()
        return [
            _Due(r["id"], r["url"], r["secret"], r["event_key"], r["payload"], r["attempts"])
            for r in rows
        ]


def _settle(
    engine: Engine,
    d: _Due,
    ok: bool,
    status: int | None,
    error: str | None,
    cfg: WebhookSettings,
    worker: str,
) -> None:
    attempts = d.attempts + 1
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_status": status,
        "last_error": error,
        "claimed_by": None,
        "claim_expires": None,
    }
    if ok:
        values.update(status="delivered", delivered_at=int(time.time()))
    elif error == egress.REFUSED or attempts >= cfg.max_attempts:
        values.update(status="failed")
    else:
        delay = min(cfg.max_backoff_seconds, cfg.backoff_seconds * 2 ** (attempts - 1))
        values.update(next_attempt_at=time.time() + delay)
    with engine.begin() as conn:
        conn.execute(
            deliveries.update()
            .where(deliveries.c.id == d.id, deliveries.c.claimed_by == worker)
            .values(**values)
        )


async def _post(d: _Due, cfg: WebhookSettings) -> tuple[bool, int | None, str | None]:
    """One attempt. Errors are fixed codes: nothing the target said or revealed is logged."""
    policy = cfg.policy()
    try:
        with anyio.fail_after(cfg.timeout_seconds):
            host, addresses = await egress.resolve_checked(d.url, policy)
    except egress.TargetRefusedError:
        return False, None, egress.REFUSED
    except TimeoutError:
        return False, None, "timeout"
    body = json.dumps(d.payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "content-type": "application/json",
        "X-DataSafe-Idempotency-Key": d.event_key,
        "X-DataSafe-Webhook-Signature": sign(d.secret, int(time.time()), body),
        "X-DataSafe-Delivery-Attempt": str(d.attempts + 1),
    }
    connector = egress.pinned_connector(host, addresses, policy)
    try:
        async with (
            aiohttp.ClientSession(connector=connector, trust_env=False) as session,
            session.post(
                d.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=cfg.timeout_seconds),
            ) as resp,
        ):
            # Read (bounded) and drop the answer: it is never stored or shown.
            await resp.content.read(4096)
            ok = 200 <= resp.status < 300
            return ok, resp.status, None if ok else f"HTTP {resp.status}"
    except (aiohttp.ClientError, OSError) as exc:
        if egress.is_refusal(exc):
            return False, None, egress.REFUSED
        if isinstance(exc, TimeoutError):
            return False, None, "timeout"
        return False, None, "connect_failed"


async def deliver_due(engine: Engine, cfg: WebhookSettings, worker: str) -> int:
    """Claim the due deliveries, send each once, settle them; returns deliveries attempted."""
    due = await to_thread.run_sync(_claim, engine, cfg.batch, worker, cfg.claim_seconds)
    if not due:
        return 0
    results = await asyncio.gather(*(_post(d, cfg) for d in due))
    for d, (ok, status, error) in zip(due, results, strict=True):
        await to_thread.run_sync(_settle, engine, d, ok, status, error, cfg, worker)
    return len(due)


async def run_once(engine: Engine, cfg: WebhookSettings, worker: str) -> int:
    """One enqueue + one round of due deliveries; returns deliveries attempted."""
    await to_thread.run_sync(migrate, engine)
    await to_thread.run_sync(enqueue, engine)
    return await deliver_due(engine, cfg, worker)


async def _loop(engine: Engine, cfg: WebhookSettings) -> None:
    worker = worker_id()
    while True:
        try:
            await run_once(engine, cfg, worker)
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
    task = asyncio.create_task(_loop(services.engine, cfg), name="webhooks")
    services.tasks.append(task)
    services.extras["webhooks"] = cfg


async def stop(services: Any) -> None:
    for task in list(services.tasks):
        if task.get_name() == "webhooks":
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
