"""Service description a client needs before it can sign (unauthenticated) and ``whoami``."""

from __future__ import annotations

from pydantic import BaseModel

from api import errors
from api.deps import ServicesDep, Signer
from api.envelope import DOMAIN_NAME, DOMAIN_VERSION, REQUEST_TYPE
from api.routers._resource import ResourceRouter

router = ResourceRouter(tags=["meta"])


class SigningDomain(BaseModel):
    name: str
    version: str
    chain_id: int
    verifying_contract: str


class ServiceInfo(BaseModel):
    chain_id: int
    ledger_address: str
    deploy_block: int
    request_type: str
    domain: SigningDomain
    request_window_seconds: int
    problem_types: list[str]


class WhoAmI(BaseModel):
    address: str


@router.get("/info", response_model=ServiceInfo, summary="Chain, ledger and signing domain")
async def info(services: ServicesDep) -> ServiceInfo:
    d = services.deployment
    return ServiceInfo(
        chain_id=d.chain_id,
        ledger_address=d.ledger_address,
        deploy_block=d.deploy_block,
        request_type=REQUEST_TYPE,
        domain=SigningDomain(
            name=DOMAIN_NAME,
            version=DOMAIN_VERSION,
            chain_id=d.chain_id,
            verifying_contract=d.ledger_address,
        ),
        request_window_seconds=services.settings.request_window_seconds,
        problem_types=sorted(errors.PROBLEM_TYPE_PREFIX + s for s in errors.ApiError.registry),
    )


@router.get(
    "/whoami",
    response_model=WhoAmI,
    summary="The address that signed this request (checks the envelope only)",
    responses=errors.problem_responses(
        errors.UnauthenticatedError,
        errors.BadSignatureError,
        errors.RequestExpiredError,
        errors.ReplayedRequestError,
    ),
)
async def whoami(signer: Signer) -> WhoAmI:
    return WhoAmI(address=signer)
