"""Dependencies as ``Annotated`` aliases: routes declare who may call them by type."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from api import errors
from api.auth import Member, MemberStatus, Role
from api.envelope import HEADER_SIGNATURE, Envelope
from api.services import Services

_signature_scheme = APIKeyHeader(
    name=HEADER_SIGNATURE,
    scheme_name="DataSafeEIP712",
    auto_error=False,
    description=(
        "EIP-712 signed request envelope. Send X-DataSafe-Signer, X-DataSafe-Timestamp, "
        "X-DataSafe-Nonce and X-DataSafe-Signature; the signature covers "
        "Request(string method,string path,bytes32 bodyDigest,uint64 timestamp,bytes32 nonce) "
        "in the domain {name: 'DataSafe API', version: '1', chainId, verifyingContract: ledger}. "
        "See docs/api.md."
    ),
)


async def get_services(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        raise errors.NotReadyError("the service is starting or stopping")
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def request_target(request: Request) -> str:
    """The request target exactly as the client sent it (what the envelope signs)."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    target = raw.decode("latin-1")
    query = request.scope.get("query_string", b"")
    return f"{target}?{query.decode('latin-1')}" if query else target


async def signed_envelope(
    request: Request,
    services: ServicesDep,
    _signature: Annotated[str | None, Depends(_signature_scheme)],
) -> Envelope:
    """The envelope whose signature over this exact request is proven (nothing written yet)."""
    body = await request.body()
    if len(body) > services.settings.max_body_bytes:
        raise errors.PayloadTooLargeError(
            f"body is {len(body)} bytes, limit {services.settings.max_body_bytes}"
        )
    env = services.authenticator.verify_signature(
        request.method, request_target(request), body, request.headers
    )
    request.state.signer = env.signer
    return env


SignedEnvelope = Annotated[Envelope, Depends(signed_envelope)]


async def signed_signer(env: SignedEnvelope, services: ServicesDep) -> str:
    # Any key (``/v1/whoami`` checks envelopes without a chain): its nonce is consumed here,
    # a row pruned after the request window. Member routes consume only after membership.
    await services.authenticator.consume(env)
    return env.signer


#: The proven signer of the request (any key, member or not).
Signer = Annotated[str, Depends(signed_signer)]


async def _member(env: Envelope, services: Services, *, suspended_ok: bool) -> Member:
    """Membership is read before the nonce is consumed, so a valid signature by a non-member
    (or a suspended member where one may not act) writes nothing at all."""
    member = await services.chain.member(env.signer)
    if member.status == MemberStatus.NONE:
        raise errors.NotMemberError(f"{env.signer} is not a member of this ledger")
    if member.status == MemberStatus.SUSPENDED and not suspended_ok:
        raise errors.MemberSuspendedError(f"{env.signer} is suspended (block {member.block})")
    await services.authenticator.consume(env)
    return member


async def any_member(env: SignedEnvelope, services: ServicesDep) -> Member:
    return await _member(env, services, suspended_ok=True)


#: A member, active or suspended, read from the chain at the latest block. Only for withdrawing
#: consent (revoke, pause) and seeing what there is to withdraw: a suspension stops a member
#: acting, never from taking back what it gave (the contract agrees, docs/contracts.md).
MemberAnyStatus = Annotated[Member, Depends(any_member)]


async def current_member(env: SignedEnvelope, services: ServicesDep) -> Member:
    return await _member(env, services, suspended_ok=False)


#: An active member, read from the chain at the latest block.
CurrentMember = Annotated[Member, Depends(current_member)]


def _require(role: Role) -> object:
    async def dependency(member: CurrentMember) -> Member:
        if not member.has(role):
            raise errors.RoleRequiredError(f"{member.address} lacks the {role.name} role")
        return member

    dependency.__name__ = f"require_{(role.name or 'role').lower()}"
    return Depends(dependency)


Issuer = Annotated[Member, _require(Role.ISSUER)]
Consumer = Annotated[Member, _require(Role.CONSUMER)]
Subject = Annotated[Member, _require(Role.SUBJECT)]
Regulator = Annotated[Member, _require(Role.REGULATOR)]
Governor = Annotated[Member, _require(Role.GOVERNOR)]
