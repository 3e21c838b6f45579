"""Institutions' webhooks for revocation, pause and expiry of grants made to them: each
institution sees and stops only its own (another's is reported absent); targets pass the
egress policy (:mod:`api.egress`) when registered."""

from __future__ import annotations

from typing import Literal

from anyio import to_thread
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from api import errors, webhooks
from api.auth import Member
from api.services import Services

WebhookKind = Literal["revoked", "paused", "expired", "resumed", "recall"]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    kinds: list[WebhookKind] = Field(default=["revoked", "paused", "expired"], min_length=1)


class WebhookPublic(BaseModel):
    id: str
    url: str
    kinds: list[str]
    active: bool
    created_at: int


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="HMAC-SHA256 key of the signature header; shown only once")


class DeliveryPublic(BaseModel):
    event_key: str = Field(description="Idempotency key (X-DataSafe-Idempotency-Key)")
    type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: float
    created_at: int
    delivered_at: int | None


async def create(services: Services, member: Member, body: WebhookCreate) -> WebhookCreated:
    cfg = services.extras.get("webhooks")
    policy = (
        cfg if isinstance(cfg, webhooks.WebhookSettings) else webhooks.WebhookSettings()
    ).policy()
    # A refused target raises egress.TargetRefusedError: the fixed ``egress_refused`` problem.
    row = await to_thread.run_sync(
        webhooks.create,
        services.engine,
        member.address,
        str(body.url),
        [str(k) for k in body.kinds],
        policy,
    )
    return WebhookCreated(**_public(row).model_dump(), secret=str(row["secret"]))


async def list_webhooks(services: Services, member: Member) -> list[WebhookPublic]:
    rows = await to_thread.run_sync(webhooks.list_for, services.engine, member.address)
    return [_public(r) for r in rows]


async def delete(services: Services, member: Member, webhook_id: str) -> WebhookPublic:
    row = await _own(services, member, webhook_id)
    await to_thread.run_sync(webhooks.deactivate, services.engine, webhook_id)
    return _public({**row, "active": False})


async def deliveries(services: Services, member: Member, webhook_id: str) -> list[DeliveryPublic]:
    await _own(services, member, webhook_id, active=False)
    rows = await to_thread.run_sync(webhooks.delivery_log, services.engine, webhook_id)
    return [
        DeliveryPublic(
            event_key=r["event_key"],
            type=r["payload"]["type"],
            status=r["status"],
            attempts=r["attempts"],
            last_status=r["last_status"],
            last_error=r["last_error"],
            next_attempt_at=r["next_attempt_at"],
            created_at=r["created_at"],
            delivered_at=r["delivered_at"],
        )
        for r in rows
    ]


def _public(row: dict[str, object]) -> WebhookPublic:
    return WebhookPublic(
        id=str(row["id"]),
        url=str(row["url"]),
        kinds=list(row["kinds"]),  # type: ignore[call-overload]
        active=bool(row["active"]),
        created_at=int(row["created_at"]),  # type: ignore[call-overload]
    )


async def _own(
    services: Services, member: Member, webhook_id: str, *, active: bool = True
) -> dict[str, object]:
    row = await to_thread.run_sync(webhooks.get, services.engine, webhook_id)
    # Another institution's webhook is reported as absent, not as forbidden.
    if (
        row is None
        or row["institution"] != member.address.lower()
        or (active and not row["active"])
    ):
        raise errors.NotFoundError(f"no webhook {webhook_id}")
    return row
