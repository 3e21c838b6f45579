"""Institutions' webhooks for revocation, pause and expiry of grants made to them; claim
webhooks (kind ``claim``) for departments and subjects (:mod:`api._claim_webhooks`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, status

from api import errors
from api.deps import CurrentMember, ServicesDep
from api.flows import webhooks as webhook_flows
from api.flows.webhooks import DeliveryPublic, WebhookCreate, WebhookCreated, WebhookPublic
from api.routers._resource import ResourceRouter

router = ResourceRouter(prefix="/webhooks", tags=["webhooks"])

WebhookId = Annotated[str, Path(pattern=r"^[0-9a-f-]{36}$")]


_PROBLEMS = errors.problem_responses(errors.RoleRequiredError, errors.NotFoundError)
_CREATE_PROBLEMS = errors.problem_responses(
    errors.RoleRequiredError, errors.NotFoundError, errors.EgressRefusedError
)


@router.post(
    "",
    response_model=WebhookCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Register a webhook for revoke / pause / expiry of grants made to me (institution), "
    "or (kind `claim`) for claims filed to me (department) or answered to me (subject)",
    responses=_CREATE_PROBLEMS,
)
async def create_webhook(
    body: WebhookCreate, member: CurrentMember, services: ServicesDep
) -> WebhookCreated:
    return await webhook_flows.create(services, member, body)


@router.get("", response_model=list[WebhookPublic], summary="My webhooks", responses=_PROBLEMS)
async def list_webhooks(member: CurrentMember, services: ServicesDep) -> list[WebhookPublic]:
    return await webhook_flows.list_webhooks(services, member)


@router.delete(
    "/{webhook_id}",
    response_model=WebhookPublic,
    summary="Stop a webhook (its delivery log stays readable)",
    responses=_PROBLEMS,
)
async def delete_webhook(
    webhook_id: WebhookId, member: CurrentMember, services: ServicesDep
) -> WebhookPublic:
    return await webhook_flows.delete(services, member, webhook_id)


@router.get(
    "/{webhook_id}/deliveries",
    response_model=list[DeliveryPublic],
    summary="Delivery log: every event, its attempts and outcome",
    responses=_PROBLEMS,
)
async def deliveries(
    webhook_id: WebhookId, member: CurrentMember, services: ServicesDep
) -> list[DeliveryPublic]:
    return await webhook_flows.deliveries(services, member, webhook_id)
