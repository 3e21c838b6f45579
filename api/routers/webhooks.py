"""Institutions' webhooks for revocation, pause and expiry of grants made to them."""

from __future__ import annotations

from typing import Annotated, Literal

from anyio import to_thread
from fastapi import APIRouter, Path, status
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from api import errors, webhooks
from api.auth import Member
from api.deps import Consumer, ServicesDep

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

WebhookKind = Literal["revoked", "paused", "expired", "resumed"]
WebhookId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")]


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


_PROBLEMS = errors.problem_responses(errors.RoleRequiredError, errors.NotFoundError)
_CREATE_PROBLEMS = errors.problem_responses(
    errors.RoleRequiredError, errors.NotFoundError, errors.EgressRefusedError
)


def _public(row: dict[str, object]) -> WebhookPublic:
    return WebhookPublic(
        id=str(row["id"]),
        url=str(row["url"]),
        kinds=list(row["kinds"]),  # type: ignore[call-overload]
        active=bool(row["active"]),
        created_at=int(row["created_at"]),  # type: ignore[call-overload]
    )


async def _own(
    services: ServicesDep, member: Member, webhook_id: str, *, active: bool = True
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


@router.post(
    "",
    response_model=WebhookCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Register a webhook for revoke / pause / expiry of grants made to me (institution)",
    responses=_CREATE_PROBLEMS,
)
async def create_webhook(
    body: WebhookCreate, member: Consumer, services: ServicesDep
) -> WebhookCreated:
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


@router.get("", response_model=list[WebhookPublic], summary="My webhooks", responses=_PROBLEMS)
async def list_webhooks(member: Consumer, services: ServicesDep) -> list[WebhookPublic]:
    rows = await to_thread.run_sync(webhooks.list_for, services.engine, member.address)
    return [_public(r) for r in rows]


@router.delete(
    "/{webhook_id}",
    response_model=WebhookPublic,
    summary="Stop a webhook (its delivery log stays readable)",
    responses=_PROBLEMS,
)
async def delete_webhook(
    webhook_id: WebhookId, member: Consumer, services: ServicesDep
) -> WebhookPublic:
    row = await _own(services, member, webhook_id)
    await to_thread.run_sync(webhooks.deactivate, services.engine, webhook_id)
    return _public({**row, "active": False})


@router.get(
    "/{webhook_id}/deliveries",
    response_model=list[DeliveryPublic],
    summary="Delivery log: every event, its attempts and outcome",
    responses=_PROBLEMS,
)
async def deliveries(
    webhook_id: WebhookId, member: Consumer, services: ServicesDep
) -> list[DeliveryPublic]:
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
