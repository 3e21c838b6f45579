"""Refuse before the chain what the ledger would refuse, judged when it would be recorded.

The custodian pays for every transaction it sends, and an access the contract refuses
(``AccessRefused``) or a consent it reverts costs gas like an accepted one. So every
rule the chain will apply is asked of the chain first, at no cost: its own ``check``
view evaluated at the time the record would be made (:meth:`ChainGateway.record_time`,
"Chain time" in docs/api.md), the access-nonce bitmap, the grantee's membership, the
grant id and the asset's status. Each check is written here once; ``verify`` and the
pull share :func:`access_verdict`, so a grant that verify calls allowed is one a pull
records, on an idle chain and on a busy one.
"""

from __future__ import annotations

from dataclasses import dataclass

from api import errors
from api.batcher import AccessRequest, Reservation
from api.chain import GrantView, RecordTime
from api.envelope import EnvelopeError, recover
from api.services import Services
from ledger import eip712
from ledger import models as ledger_models
from ledger.address import to_checksum_address
from ledger.models import AssetStatus, MemberStatus, Reason, Role

_UINT32_MAX = 2**32 - 1
_UINT16_MAX = 2**16 - 1
_UINT256_MAX = 2**256 - 1


@dataclass(frozen=True, slots=True)
class AccessVerdict:
    """The chain's ``check`` for an access recorded now: judged at ``at`` on ``block``."""

    allowed: bool
    reason: int
    block: int
    at: int


async def access_verdict(
    services: Services, grant_id: bytes, grantee: str, fields_mask: int
) -> AccessVerdict:
    """``check(grant, grantee, mask)`` on the latest state at the next block's time."""
    when = await services.chain.record_time()
    return await _verdict(services, grant_id, grantee, fields_mask, when)


async def _verdict(
    services: Services, grant_id: bytes, grantee: str, fields_mask: int, when: RecordTime
) -> AccessVerdict:
    allowed, reason, block = await services.reads.check(grant_id, grantee, fields_mask, at=when.at)
    return AccessVerdict(allowed, reason, block, when.judged_at)


@dataclass(frozen=True, slots=True)
class AdmittedPull:
    """A pull the chain will record: the grant as read, and the held nonce and use."""

    verdict: AccessVerdict
    view: GrantView
    reservation: Reservation


async def admit_pull(services: Services, request: AccessRequest) -> AdmittedPull:
    """Everything ``recordAccessBatch`` would refuse, refused here with its own problem.

    In the contract's order: the request's deadline (at the record time), its signature
    (by the caller), its nonce (the ledger's bitmap, and the pulls this process is
    recording), then ``check`` (grant status, window, uses, grantee, asset, fields). The
    caller releases the returned reservation once the pull is over.
    """
    when = await services.chain.record_time()
    # The contract refuses block.timestamp > deadline, so a deadline before the next block's
    # time is already spent.
    if request.deadline < when.at:
        raise errors.RequestSignatureExpiredError(
            f"the access request's deadline {request.deadline} is before {when.at}, "
            "the time it would be recorded",
            reason_code=int(Reason.SIGNATURE_EXPIRED),
            deadline=request.deadline,
            at=when.at,
        )
    if request.nonce > _UINT256_MAX:
        raise errors.InvalidRequestError("nonce: beyond uint256")
    domain = eip712.ledger_domain(services.deployment.chain_id, services.deployment.ledger_address)
    digest = eip712.access_digest(
        domain,
        ledger_models.AccessRequest(
            request.grant_id, request.fields_mask, request.nonce, request.deadline
        ),
    )
    try:
        signed_by = recover(digest, request.signature)
    except EnvelopeError as exc:
        raise errors.RequestSignatureInvalidError(str(exc)) from exc
    if signed_by.lower() != request.grantee.lower():
        raise errors.RequestSignatureInvalidError(
            f"the access request is signed by {signed_by}, not by the caller {request.grantee}"
        )
    if await services.reads.access_nonce_used(request.grantee, request.nonce):
        raise errors.AccessNonceUsedError(
            f"access request nonce {request.nonce} was already recorded",
            reason_code=int(Reason.NONCE_USED),
        )
    verdict = await _verdict(services, request.grant_id, request.grantee, request.fields_mask, when)
    if not verdict.allowed:
        raise errors.refusal(verdict.reason, block=verdict.block, at=verdict.at)
    view = await services.reads.grant(request.grant_id)
    # The key package opens every granted field, so the record must name all of them.
    if request.fields_mask != view.grant.fields_mask:
        raise errors.FieldsMaskMismatchError(
            f"the pull asks for fields {request.fields_mask:#b}, the grant covers "
            f"{view.grant.fields_mask:#b}: a pull names exactly the granted fields",
            grant_fields_mask=view.grant.fields_mask,
        )
    grant = view.grant
    uses_left = grant.max_uses - grant.uses if grant.max_uses else None
    # No await between the reads above and the reservation: this process's concurrent pulls
    # see each other's held nonces and uses.
    reservation = services.batcher.reserve(
        request.grantee, request.nonce, request.grant_id, uses_left
    )
    return AdmittedPull(verdict, view, reservation)


async def admit_grant(
    services: Services,
    terms: ledger_models.GrantTerms,
    deadline: int,
) -> ledger_models.Member:
    """What ``grantBySig`` would revert on, as 4xx problems, before anything is stored.

    Returns the grantee as the chain has it (its key digest binds the key package).
    """
    when = await services.chain.record_time()
    if deadline < when.at:
        raise errors.RequestSignatureExpiredError(
            f"the grant signature's deadline {deadline} is before {when.at}, "
            "the time it would be recorded",
            deadline=deadline,
            at=when.at,
        )
    if terms.expiry <= terms.not_before:
        raise errors.GrantWindowInvalidError(
            f"expiry {terms.expiry} is not after not_before {terms.not_before}",
            not_before=terms.not_before,
            expiry=terms.expiry,
        )
    if terms.expiry > _UINT32_MAX:
        raise errors.GrantWindowInvalidError(
            f"expiry {terms.expiry} is beyond {_UINT32_MAX} (the ledger stores 32-bit times)",
            expiry=terms.expiry,
        )
    if terms.expiry <= when.at:
        raise errors.GrantExpiryPastError(
            f"expiry {terms.expiry} is not after {when.at}, the time the grant would be recorded",
            expiry=terms.expiry,
            at=when.at,
        )
    if terms.fields_mask == 0:
        raise errors.InvalidRequestError("terms.fields_mask: a grant names at least one field")
    if terms.max_uses > _UINT16_MAX:
        raise errors.InvalidRequestError(f"terms.max_uses: at most {_UINT16_MAX}")
    grantee = await services.chain.member(to_checksum_address(terms.grantee))
    if not grantee.is_member:
        raise errors.GrantGranteeNotMemberError(
            f"{terms.grantee} is not a consortium member", grantee=terms.grantee
        )
    if grantee.status != MemberStatus.ACTIVE:
        raise errors.GrantGranteeSuspendedError(
            f"{terms.grantee} is suspended", grantee=terms.grantee
        )
    if not grantee.roles & Role.CONSUMER:
        raise errors.GrantGranteeNotConsumerError(
            f"{terms.grantee} does not hold the consumer role (it has "
            f"{', '.join(grantee.role_names()) or 'none'})",
            grantee=terms.grantee,
        )
    asset = await services.reads.asset(terms.asset_id)
    if not asset.exists:
        raise errors.AssetNotFoundError(f"asset {'0x' + terms.asset_id.hex()} is not on chain")
    if asset.status != AssetStatus.ACTIVE:
        raise errors.AssetNotActiveError(
            f"asset {'0x' + terms.asset_id.hex()} is {asset.status.name.lower()}",
            asset_status=asset.status.name.lower(),
        )
    return grantee
