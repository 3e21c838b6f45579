"""Carrying a grant to a corrected version: what the subject signs anew, read from the chain.

When a department supersedes a version, a grant on it can no longer be used (``check``
answers ``ASSET_SUPERSEDED``) and is never moved by anyone but the subject: she signs a new
grant on the current version (issue 17, "never silently"). :func:`plan_carry` reads the old
grant, its asset and the chain of ``next`` versions from the caller's own node and returns
the terms of that new grant, the old ones carried unchanged or narrowed, never widened:

* same grantee, purpose, fields mask, not-before, expiry and retention;
* the reads left (``max_uses - uses``; unlimited stays unlimited).

It refuses, with a :class:`CarryError` code and before anything is signed: an unknown grant
(``grant_not_found``), a grant on someone else's asset (``not_your_grant``), an asset that
was not superseded (``asset_not_superseded``), a grant that is no longer live (revoked,
paused, expired, used up, grantee suspended: ``grant_not_active``), and a current version
that cannot be shared (disputed or retired: ``asset_<status>``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import trust
from ledger.abi import ledger_abi
from ledger.calls import LedgerCalls
from ledger.errors import LedgerError
from ledger.models import Asset, AssetStatus, Grant, GrantTerms, Reason
from ledger.rpc import RpcClient
from ledger.trust import PinnedDeployment

#: ``check`` reasons of a grant that would still be live were its asset not superseded.
_LIVE = frozenset({Reason.ASSET_SUPERSEDED, Reason.NOT_YET_VALID})
#: Versions followed at most (a chain of supersessions is short; this bounds a lying node).
_MAX_HOPS = 256


class CarryError(LedgerError):
    """A carry the wallet refuses before signing anything; ``code`` is a stable slug."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Carry:
    """The old grant and version, the current version, and the terms to sign for it."""

    grant_id: bytes
    grant: Grant
    old_asset: Asset
    new_asset_id: bytes
    new_asset: Asset
    terms: GrantTerms


def plan_carry(rpc: RpcClient, pin: PinnedDeployment, grant_id: bytes, owner: str) -> Carry:
    """The carry of ``grant_id`` for ``owner``, from the pinned ledger on ``rpc``."""
    gid = "0x" + grant_id.hex()
    grant = trust.get_grant(rpc, pin, grant_id)
    if not grant.exists:
        raise CarryError(f"grant {gid} is not on the chain", code="grant_not_found")
    old = trust.get_asset(rpc, pin, grant.asset_id)
    if old.owner.lower() != owner.lower():
        raise CarryError(
            f"grant {gid} is on an asset of {old.owner}, not yours ({owner})",
            code="not_your_grant",
        )
    if old.status != AssetStatus.SUPERSEDED:
        raise CarryError(
            f"the asset of grant {gid} (version {old.version}) is {old.status.name.lower()}, "
            "not superseded: there is no newer version to carry it to",
            code="asset_not_superseded",
        )
    read = LedgerCalls(ledger_abi()).check(grant_id, grant.grantee, grant.fields_mask)
    verdict, _, _ = trust.read_at_next_block(rpc, pin.ledger_address, read)
    if verdict.reason not in _LIVE:
        raise CarryError(
            f"grant {gid} is no longer live ({verdict.reason.name.lower()}): only a live grant "
            "is carried; grant the new version anew instead",
            code="grant_not_active",
        )
    new_id, new = _current(rpc, pin, old)
    if new.status != AssetStatus.ACTIVE:
        status = new.status.name.lower()
        raise CarryError(
            f"the current version {new.version} (0x{new_id.hex()}) is {status}; it cannot be "
            "shared",
            code=f"asset_{status}",
        )
    left = 0 if grant.max_uses == 0 else grant.max_uses - grant.uses
    terms = GrantTerms(
        new_id,
        grant.grantee,
        grant.purpose,
        grant.fields_mask,
        grant.not_before,
        grant.expiry,
        left,
        grant.retention,
    )
    return Carry(grant_id, grant, old, new_id, new, terms)


def _current(rpc: RpcClient, pin: PinnedDeployment, old: Asset) -> tuple[bytes, Asset]:
    """The version that superseded ``old``, followed to the newest one (same owner)."""
    asset, asset_id = old, b""
    for _ in range(_MAX_HOPS):
        if asset.status != AssetStatus.SUPERSEDED:
            return asset_id, asset
        asset_id = asset.next
        nxt = trust.get_asset(rpc, pin, asset_id)
        if not nxt.exists or nxt.owner.lower() != old.owner.lower():
            raise CarryError(
                f"the chain names 0x{asset_id.hex()} as the next version, but holds no such "
                "version of this owner",
                code="asset_not_found",
            )
        asset = nxt
    raise CarryError(f"more than {_MAX_HOPS} versions to follow", code="asset_not_found")


__all__ = ["Carry", "CarryError", "plan_carry"]
