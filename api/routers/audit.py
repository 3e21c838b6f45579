"""``GET /v1/audit/verify``: the index checked against the chain, for a regulator.

The rows the trace serves for a block range are re-derived from ``eth_getLogs`` on the
node (``ledger.audit``), never from the index, and every difference is reported:
``missing`` (on chain, not served), ``extra`` (served, not on chain), ``altered``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from api import errors
from api.deps import Regulator, ServicesDep
from api.flows import audit as audit_flow
from api.flows.audit import AuditReportPublic
from api.routers._resource import ResourceRouter
from ledger.trace import TraceFilter

router = ResourceRouter(prefix="/audit", tags=["audit"])

_ADDRESS = r"^0x[0-9a-fA-F]{40}$"
_BYTES32 = r"^0x[0-9a-fA-F]{64}$"


@router.get(
    "/verify",
    response_model=AuditReportPublic,
    summary="Re-derive the trace rows of a block range from chain logs and report every "
    "difference with the index (regulator)",
    responses=errors.problem_responses(
        errors.RoleRequiredError,
        errors.InvalidRequestError,
        errors.AuditRangeTooLargeError,
        errors.NotReadyError,
        errors.ChainUnavailableError,
    ),
)
async def verify(
    _member: Regulator,
    services: ServicesDep,
    from_block: Annotated[
        int | None, Query(ge=0, le=2**63 - 1, description="Default: the deployment block")
    ] = None,
    to_block: Annotated[
        int | None, Query(ge=0, le=2**63 - 1, description="Default: the last indexed block")
    ] = None,
    subject: Annotated[str | None, Query(pattern=_ADDRESS)] = None,
    institution: Annotated[str | None, Query(pattern=_ADDRESS)] = None,
    asset_id: Annotated[str | None, Query(pattern=_BYTES32)] = None,
    issuer: Annotated[str | None, Query(pattern=_ADDRESS)] = None,
    purpose: Annotated[int | None, Query(ge=0, le=2**32 - 1)] = None,
    grant_id: Annotated[str | None, Query(pattern=_BYTES32)] = None,
) -> AuditReportPublic:
    flt = TraceFilter(
        subject=subject,
        institution=institution,
        asset_id=asset_id,
        issuer=issuer,
        purpose=purpose,
        grant_id=grant_id,
    )
    return await audit_flow.verify(services, from_block, to_block, flt)
