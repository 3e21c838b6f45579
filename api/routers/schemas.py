"""Data schemas: issuers register the ordered field list of a data type (the rules:
:mod:`api.flows.schemas`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request, Response, status

from api import _paging, errors
from api.deps import CurrentMember, Issuer, ServicesDep
from api.flows import schemas
from api.models import SchemaCreate, SchemaPublic
from api.routers._resource import ResourceRouter

router = ResourceRouter(prefix="/schemas", tags=["schemas"])

SchemaId = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SchemaPublic,
    summary="Register a schema's field list (relaying the issuer's registerSchema transaction)",
    responses=errors.problem_responses(
        errors.RoleRequiredError,
        errors.InvalidRequestError,
        errors.NotIssuerError,
        errors.ContractRejectedError,
        errors.ConflictError,
    ),
)
async def register_schema(
    body: SchemaCreate, member: Issuer, services: ServicesDep
) -> SchemaPublic:
    return await schemas.register(services, member, body)


@router.get(
    "",
    response_model=list[SchemaPublic],
    summary="Registered schemas (any member), one page at a time",
    responses={
        200: {"description": "One page", "headers": _paging.PAGE_HEADERS},
        **errors.problem_responses(errors.InvalidCursorError),
    },
)
async def list_schemas(
    request: Request,
    response: Response,
    member: CurrentMember,
    services: ServicesDep,
    limit: _paging.Limit = _paging.PAGE_DEFAULT,
    cursor: _paging.Cursor = None,
) -> list[SchemaPublic]:
    return await schemas.list_schemas(services, request, response, limit=limit, cursor=cursor)


@router.get(
    "/{schema_id}",
    response_model=SchemaPublic,
    summary="One schema's field list (any member)",
    responses=errors.problem_responses(errors.NotFoundError),
)
async def get_schema(
    schema_id: SchemaId, member: CurrentMember, services: ServicesDep
) -> SchemaPublic:
    return await schemas.get_schema(services, schema_id)
