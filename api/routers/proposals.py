"""Grant proposals of enterprises with an M-of-N policy: propose, list, show, approve. The
rules live in :mod:`api.flows.proposals`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request, Response, status

from api import _paging, errors
from api.deps import CurrentMember, ServicesDep
from api.flows import proposals
from api.models import ApprovalCreate, ProposalCreate, ProposalPublic
from api.routers._resource import ResourceRouter

router = ResourceRouter(prefix="/proposals", tags=["proposals"])

ProposalId = Annotated[
    str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="bytes32: the grant id it will have")
]

_RELAY_ERRORS = (
    errors.ApprovalSignatureInvalidError,
    errors.NotAgentError,
    errors.ContractRejectedError,
    errors.RelayFailedError,
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProposalPublic,
    summary="A live agent proposes a grant of its enterprise's asset, with its own approval",
    responses=errors.problem_responses(
        *_RELAY_ERRORS,
        errors.InvalidRequestError,
        errors.InvalidVaultDataError,
        errors.KeyPackageMismatchError,
        errors.AssetNotFoundError,
        errors.GrantExpiryPastError,
        errors.GrantWindowInvalidError,
        errors.GrantGranteeNotMemberError,
        errors.GrantGranteeNotConsumerError,
        errors.GrantGranteeSuspendedError,
        errors.ConflictError,
    ),
)
async def create_proposal(
    body: ProposalCreate, member: CurrentMember, services: ServicesDep
) -> ProposalPublic:
    return await proposals.propose(services, member, body)


@router.get(
    "",
    response_model=list[ProposalPublic],
    summary="An enterprise's grant proposals (the enterprise or its live agents)",
    responses={
        200: {"description": "One page", "headers": _paging.PAGE_HEADERS},
        **errors.problem_responses(errors.ForbiddenError, errors.InvalidCursorError),
    },
)
async def list_proposals(
    request: Request,
    response: Response,
    member: CurrentMember,
    services: ServicesDep,
    enterprise: Annotated[str, Query(pattern=r"^0x[0-9a-fA-F]{40}$")],
    limit: _paging.Limit = _paging.PAGE_DEFAULT,
    cursor: _paging.Cursor = None,
) -> list[ProposalPublic]:
    return await proposals.list_proposals(
        services, member, request, response, enterprise=enterprise, limit=limit, cursor=cursor
    )


@router.get(
    "/{proposal_id}",
    response_model=ProposalPublic,
    summary="One proposal: the terms, who proposed, who approved and whether each counts now",
    responses=errors.problem_responses(errors.ProposalNotFoundError, errors.ForbiddenError),
)
async def get_proposal(
    proposal_id: ProposalId, member: CurrentMember, services: ServicesDep
) -> ProposalPublic:
    return await proposals.get_proposal(services, member, proposal_id)


@router.post(
    "/{proposal_id}/approvals",
    response_model=ProposalPublic,
    summary="A live agent approves; the grant is relayed once enough live agents have",
    responses=errors.problem_responses(
        *_RELAY_ERRORS,
        errors.ProposalNotFoundError,
        errors.ProposalClosedError,
        errors.ApprovalExistsError,
        errors.InvalidRequestError,
    ),
)
async def approve_proposal(
    proposal_id: ProposalId, body: ApprovalCreate, member: CurrentMember, services: ServicesDep
) -> ProposalPublic:
    return await proposals.approve(services, member, proposal_id, body)
