"""Verify: may the calling institution read these fields under this grant now?

The chain's own ``check`` on the latest state, judged at the time an access would be
recorded (:mod:`api.prechecks`); an unknown grant or another grantee is a problem, every
other refusal a verdict.
"""

from __future__ import annotations

from api import errors, prechecks
from api.auth import Member
from api.flows._shared import b32
from api.models import Verdict
from api.services import Services


async def verify(services: Services, member: Member, grant_id: str, fields_mask: int) -> Verdict:
    verdict = await prechecks.access_verdict(services, b32(grant_id), member.address, fields_mask)
    if verdict.reason in (1, 2):
        raise errors.refusal(verdict.reason, block=verdict.block)
    slug, words = errors.reason_problem(verdict.reason)
    return Verdict(
        grant_id=grant_id,
        grantee=member.address,
        fields_mask=fields_mask,
        allowed=verdict.allowed,
        reason_code=verdict.reason,
        code=slug,
        reason=words,
        block=verdict.block,
        at=verdict.at,
    )
