"""Claims: a subject files her signed claim (relayed, gasless) and lists hers; a department
works its queue (fulfil with the asset it issued, or refuse with a reason); a regulator sees,
per department, what is outstanding and how long answers took. Rules in
:mod:`api.flows.claims`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request, Response, status

from api import _paging, errors
from api.deps import CurrentMember, Issuer, Regulator, ServicesDep, Subject
from api.flows import claims as flow
from api.models import ClaimAnswer, ClaimCreate, ClaimPublic, ClaimStats
from api.routers._resource import ResourceRouter

router = ResourceRouter(prefix="/claims", tags=["claims"])

ClaimId = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="bytes32 claim id")]
_PAGE: dict[int | str, dict[str, Any]] = {
    200: {"description": "One page", "headers": _paging.PAGE_HEADERS}
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ClaimPublic,
    summary="Relay a subject's own signed claim to a department (the service pays the gas)",
    responses=errors.problem_responses(
        errors.InvalidRequestError,
        errors.ClaimSignatureInvalidError,
        errors.ClaimExpiredError,
        errors.ClaimNonceError,
        errors.ClaimRejectedError,
        errors.RelayFailedError,
    ),
)
async def file_claim(body: ClaimCreate, member: Subject, services: ServicesDep) -> ClaimPublic:
    return await flow.file_claim(services, member, body)


@router.get(
    "",
    response_model=list[ClaimPublic],
    summary="Claims the caller may see: a subject its own, a department its queue, a regulator all",
    responses={
        **_PAGE,
        **errors.problem_responses(
            errors.RoleRequiredError, errors.InvalidCursorError, errors.ForbiddenError
        ),
    },
)
async def list_claims(
    request: Request,
    response: Response,
    member: CurrentMember,
    services: ServicesDep,
    limit: _paging.Limit = _paging.PAGE_DEFAULT,
    cursor: _paging.Cursor = None,
    status: Annotated[
        str | None, Query(max_length=16, description="open, fulfilled or refused")
    ] = None,
    department: Annotated[
        str | None, Query(pattern=r"^0x[0-9a-fA-F]{40}$", description="one department's")
    ] = None,
) -> list[ClaimPublic]:
    return await flow.list_claims(
        services,
        member,
        request,
        response,
        status=status,
        department=department,
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/stats",
    response_model=list[ClaimStats],
    summary="Regulator: per department, claims outstanding and how long answers took",
    responses={**_PAGE, **errors.problem_responses(errors.InvalidCursorError)},
)
async def claim_stats(
    request: Request,
    response: Response,
    member: Regulator,
    services: ServicesDep,
    limit: _paging.Limit = _paging.PAGE_DEFAULT,
    cursor: _paging.Cursor = None,
) -> list[ClaimStats]:
    return await flow.stats(services, request, response, limit=limit, cursor=cursor)


@router.get(
    "/{claim_id}",
    response_model=ClaimPublic,
    summary="One claim, read from the chain (its subject, its department or a regulator)",
    responses=errors.problem_responses(errors.ClaimNotFoundError, errors.ForbiddenError),
)
async def get_claim(claim_id: ClaimId, member: CurrentMember, services: ServicesDep) -> ClaimPublic:
    return await flow.get_claim(services, member, claim_id)


_ANSWER_ERRORS = errors.problem_responses(
    errors.InvalidRequestError,
    errors.ClaimNotFoundError,
    errors.ClaimNotDepartmentError,
    errors.ClaimClosedError,
    errors.ClaimRejectedError,
    errors.RelayFailedError,
)


@router.post(
    "/{claim_id}/fulfil",
    response_model=ClaimPublic,
    summary="Relay the department's signed fulfilClaim (links the asset it issued)",
    responses=_ANSWER_ERRORS,
)
async def fulfil_claim(
    claim_id: ClaimId, body: ClaimAnswer, member: Issuer, services: ServicesDep
) -> ClaimPublic:
    return await flow.answer(services, member, claim_id, body, "fulfilClaim")


@router.post(
    "/{claim_id}/refuse",
    response_model=ClaimPublic,
    summary="Relay the department's signed refuseClaim (reason code and reason hash)",
    responses=_ANSWER_ERRORS,
)
async def refuse_claim(
    claim_id: ClaimId, body: ClaimAnswer, member: Issuer, services: ServicesDep
) -> ClaimPublic:
    return await flow.answer(services, member, claim_id, body, "refuseClaim")
