"""Citizens' gasless calls (dispute, agent changes) relayed through the ledger's forwarder;
the rules live in :mod:`api.flows.forward`."""

from __future__ import annotations

from api import errors
from api.deps import CurrentMember, ServicesDep
from api.flows import forward as forward_flow
from api.models import ForwardCreate, ForwardPublic
from api.routers._resource import ResourceRouter

router = ResourceRouter(prefix="/forward", tags=["forward"])


@router.post(
    "",
    response_model=ForwardPublic,
    summary="Relay the caller's own signed ForwardRequest (the service pays the gas)",
    responses=errors.problem_responses(
        errors.InvalidRequestError,
        errors.ForwardSignatureInvalidError,
        errors.ForwardExpiredError,
        errors.ForwardNonceError,
        errors.NotOwnerError,
        errors.ContractRejectedError,
    ),
)
async def forward(
    body: ForwardCreate, member: CurrentMember, services: ServicesDep
) -> ForwardPublic:
    return await forward_flow.relay_forward(services, member, body)
