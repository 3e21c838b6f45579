"""Assets: issuers push sealed data and relay their signed anchors; subjects list and fetch
their own; disputes and their resolution; new versions. The rules live in :mod:`api.flows`
(``issue``, ``dispute``, ``assets``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request, Response, status

from api import _paging, errors
from api.deps import CurrentMember, Issuer, ServicesDep
from api.flows import assets, issue
from api.flows import dispute as dispute_flow
from api.models import AssetAction, AssetCreate, AssetPublic, AssetSealed, AssetVersionCreate
from api.routers._resource import ResourceRouter

router = ResourceRouter(prefix="/assets", tags=["assets"])

AssetId = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")]


_ISSUE_ERRORS = errors.problem_responses(
    errors.RoleRequiredError,
    errors.InvalidRequestError,
    errors.InvalidVaultDataError,
    errors.SealedAssetMismatchError,
    errors.NotIssuerError,
    errors.ContractRejectedError,
    errors.RelayFailedError,
    errors.ConflictError,
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AssetPublic,
    summary="Store a sealed asset and relay the issuer's signed anchorAsset transaction; "
    "answers once it is confirmed",
    responses=_ISSUE_ERRORS,
)
async def issue_asset(body: AssetCreate, member: Issuer, services: ServicesDep) -> AssetPublic:
    return await issue.issue(services, member, body)


@router.post(
    "/{asset_id}/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=AssetPublic,
    summary="Publish a new version (relaying the issuer's supersedeAsset transaction)",
    responses=_ISSUE_ERRORS,
)
async def new_version(
    asset_id: AssetId, body: AssetVersionCreate, member: Issuer, services: ServicesDep
) -> AssetPublic:
    return await issue.new_version(services, member, asset_id, body)


_ACTION_ERRORS = errors.problem_responses(
    errors.AssetNotFoundError,
    errors.NotOwnerError,
    errors.NotIssuerError,
    errors.InvalidRequestError,
    errors.ContractRejectedError,
)


@router.post(
    "/{asset_id}/dispute",
    response_model=AssetPublic,
    summary="Relay the owner's (or agent's) signed disputeAsset transaction",
    responses=_ACTION_ERRORS,
)
async def dispute(
    asset_id: AssetId, body: AssetAction, member: CurrentMember, services: ServicesDep
) -> AssetPublic:
    return await dispute_flow.dispute(services, member, asset_id, body)


@router.post(
    "/{asset_id}/resolution",
    response_model=AssetPublic,
    summary="Relay the issuer's signed resolveDispute transaction",
    responses=_ACTION_ERRORS,
)
async def resolve(
    asset_id: AssetId, body: AssetAction, member: Issuer, services: ServicesDep
) -> AssetPublic:
    return await dispute_flow.resolve(services, member, asset_id, body)


@router.get(
    "",
    response_model=list[AssetPublic],
    summary="Assets the caller may see: a subject its own, an issuer those it issued, "
    "a regulator all",
    responses={
        200: {"description": "One page", "headers": _paging.PAGE_HEADERS},
        **errors.problem_responses(errors.RoleRequiredError, errors.InvalidCursorError),
    },
)
async def list_assets(
    request: Request,
    response: Response,
    member: CurrentMember,
    services: ServicesDep,
    limit: _paging.Limit = _paging.PAGE_DEFAULT,
    cursor: _paging.Cursor = None,
) -> list[AssetPublic]:
    return await assets.list_assets(services, member, request, response, limit=limit, cursor=cursor)


@router.get(
    "/{asset_id}",
    response_model=AssetPublic,
    summary="One asset's metadata and on-chain status (owner/agent, issuer, regulator)",
    responses=errors.problem_responses(errors.AssetNotFoundError, errors.ForbiddenError),
)
async def get_asset(asset_id: AssetId, member: CurrentMember, services: ServicesDep) -> AssetPublic:
    return await assets.get_asset(services, member, asset_id)


@router.get(
    "/{asset_id}/sealed",
    response_model=AssetSealed,
    summary="The sealed asset, to open locally (owner or its agent only)",
    responses=errors.problem_responses(errors.AssetNotFoundError, errors.NotOwnerError),
)
async def get_sealed(
    asset_id: AssetId, member: CurrentMember, services: ServicesDep
) -> AssetSealed:
    return await assets.get_sealed(services, member, asset_id)
