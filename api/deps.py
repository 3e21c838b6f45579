"""Dependencies as ``Annotated`` aliases: routes declare who may call them by type.

Each caller alias (:data:`Signer`, :data:`CurrentMember`, :data:`Consumer`, ...) is ONE
dependency: a :class:`SignedRequest` security scheme that proves the envelope, reads the
membership, spends the nonce and checks the role in a single call. FastAPI resolves every
dependency node of every request on the event loop, and the nested chain this replaces
(services -> header scheme -> envelope -> member -> role) cost more than the checks
themselves (docs/benchmarks.md, "Verify and pull throughput"). The order of the checks is
unchanged: signature, then membership and status, then the nonce, then the role.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from api import errors
from api.auth import Member, MemberStatus, Role
from api.envelope import HEADER_SIGNATURE, Envelope
from api.services import Services

#: Where :class:`api._edge.BodyGuardMiddleware` leaves the envelope it proved over the body
#: it replays (scope state is the server's own, never the client's).
PROVEN_ENVELOPE = "datasafe_envelope"

_SCHEME_DESCRIPTION = (
    "EIP-712 signed request envelope. Send X-DataSafe-Signer, X-DataSafe-Timestamp, "
    "X-DataSafe-Nonce and X-DataSafe-Signature; the signature covers "
    "Request(string method,string path,bytes32 bodyDigest,uint64 timestamp,bytes32 nonce) "
    "in the domain {name: 'DataSafe API', version: '1', chainId, verifyingContract: ledger}. "
    "See docs/api.md."
)


def services_of(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        raise errors.NotReadyError("the service is starting or stopping")
    return services


async def get_services(request: Request) -> Services:
    return services_of(request)


ServicesDep = Annotated[Services, Depends(get_services)]


def request_target(request: Request) -> str:
    """The request target exactly as the client sent it (what the envelope signs)."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    target = raw.decode("latin-1")
    query = request.scope.get("query_string", b"")
    return f"{target}?{query.decode('latin-1')}" if query else target


async def proven_envelope(request: Request, services: Services) -> Envelope:
    """The envelope whose signature over this exact request is proven (nothing written yet).

    A request with a body was proven by the edge middleware over the very bytes it hands
    on; one without (GET) is proven here.
    """
    state = request.scope.get("state")
    env: Envelope | None = state.get(PROVEN_ENVELOPE) if state is not None else None
    if env is None:
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


class SignedRequest(APIKeyHeader):
    """The ``DataSafeEIP712`` security scheme, doubling as the whole caller check.

    ``member=False``: any key (``/v1/whoami`` checks envelopes without a chain); its nonce is
    consumed at once, a row pruned after the request window. Otherwise a member read from
    the chain at the latest block (``suspended_ok``: withdrawing consent and seeing what
    there is to withdraw), holding ``role`` if one is named.
    """

    def __init__(
        self, *, member: bool = True, suspended_ok: bool = False, role: Role | None = None
    ) -> None:
        super().__init__(
            name=HEADER_SIGNATURE,
            scheme_name="DataSafeEIP712",
            auto_error=False,
            description=_SCHEME_DESCRIPTION,
        )
        self._member = member
        self._suspended_ok = suspended_ok
        self._role = role

    async def __call__(self, request: Request) -> Any:  # type: ignore[override]
        services = services_of(request)
        env = await proven_envelope(request, services)
        if not self._member:
            await services.authenticator.consume(env)
            return env.signer
        member = await _member(env, services, suspended_ok=self._suspended_ok)
        if self._role is not None and not member.has(self._role):
            raise errors.RoleRequiredError(f"{member.address} lacks the {self._role.name} role")
        return member


#: The proven signer of the request (any key, member or not).
Signer = Annotated[str, Depends(SignedRequest(member=False))]

#: A member, active or suspended, read from the chain at the latest block. Only for withdrawing
#: consent (revoke, pause) and seeing what there is to withdraw: a suspension stops a member
#: acting, never from taking back what it gave (the contract agrees, docs/contracts.md).
MemberAnyStatus = Annotated[Member, Depends(SignedRequest(suspended_ok=True))]

#: An active member, read from the chain at the latest block.
CurrentMember = Annotated[Member, Depends(SignedRequest())]

Issuer = Annotated[Member, Depends(SignedRequest(role=Role.ISSUER))]
Consumer = Annotated[Member, Depends(SignedRequest(role=Role.CONSUMER))]
Subject = Annotated[Member, Depends(SignedRequest(role=Role.SUBJECT))]
Regulator = Annotated[Member, Depends(SignedRequest(role=Role.REGULATOR))]
Governor = Annotated[Member, Depends(SignedRequest(role=Role.GOVERNOR))]
