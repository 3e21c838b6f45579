"""An enterprise's M-of-N grant approvals, judged against the chain the client reads itself.

The service keeps a proposal's approvals (signatures) off chain and says who approved; a
client believes none of it. :func:`judge_approvals` recovers every signature over the
``GrantApproval`` digest built from the terms and the enterprise's *current* approval epoch
(read from the pinned ledger), and counts each signer once, only while it is a live agent
(``isAgent``). A signature the service attributes to someone else is the service lying
(:class:`~ledger._pin.ServiceContradictedError`); an approval that recovers correctly but
no longer counts (removed, suspended, expired agent; an older epoch) is reported as stale.
The contract applies the same rules when the grant transaction runs (``grantWithApprovals``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ledger._pin import PinnedDeployment, ServiceContradictedError
from ledger.address import to_checksum_address
from ledger.calls import LedgerCalls
from ledger.eip712 import Domain, approval_digest, ledger_domain, recover
from ledger.errors import LedgerError
from ledger.models import GrantTerms
from ledger.rpc import RpcClient
from ledger.trust import read


@dataclass(frozen=True)
class ApprovalVerdict:
    """What the chain says of a proposal's approvals right now."""

    #: Approvals the enterprise's policy needs for the terms' purpose.
    needed: int
    #: The enterprise's approval epoch the signatures were checked against.
    epoch: int
    #: Distinct live agents whose signature verifies, in ascending address order.
    counted: tuple[str, ...]
    #: Signers whose signature verifies but who do not count now (not a live agent, or a
    #: signature from an earlier epoch), with the reason.
    stale: tuple[tuple[str, str], ...]

    @property
    def complete(self) -> bool:
        return len(self.counted) >= max(self.needed, 1)


def judge_approvals(
    rpc: RpcClient,
    pin: PinnedDeployment,
    enterprise: str,
    terms: GrantTerms,
    nonce: int,
    deadline: int,
    approvals: Sequence[tuple[str, bytes]],
    *,
    proposer: str | None = None,
) -> ApprovalVerdict:
    """The approvals that count now; raises if a signature is not the claimed signer's.

    With ``proposer``, its own approval must be among those that verify: the terms are then
    the ones it proposed, whatever else the service says of them.
    """
    calls = LedgerCalls()
    needed, epoch = read(rpc, pin, calls.approval_policy(enterprise, terms.purpose))
    domain = ledger_domain(pin.chain_id, pin.ledger_address)
    digest = approval_digest(domain, enterprise, epoch, terms, nonce, deadline)
    counted: set[str] = set()
    stale: list[tuple[str, str]] = []
    for listed, signature in approvals:
        claimed = _shown(listed)
        try:
            signer = recover(digest, signature)
        except LedgerError:
            signer = ""
        if signer.lower() != claimed.lower():
            if _signed_earlier(
                domain, enterprise, epoch, terms, nonce, deadline, claimed, signature
            ):
                stale.append(
                    (
                        to_checksum_address(claimed),
                        "signed before an agent was removed (earlier epoch)",
                    )
                )
                continue
            raise ServiceContradictedError(
                f"the service says {claimed} approved, but that signature is not {claimed}'s "
                "approval of these terms"
            )
        if signer.lower() in {c.lower() for c in counted}:
            raise ServiceContradictedError(f"the service counts {claimed}'s approval twice")
        if not read(rpc, pin, calls.is_agent(enterprise, signer)):
            stale.append((signer, "not a live agent of the enterprise now"))
            continue
        counted.add(signer)
    signers = {a.lower() for a in counted} | {a.lower() for a, _ in stale}
    if proposer is not None and proposer.lower() not in signers:
        raise ServiceContradictedError(
            f"the service shows terms its proposer {_shown(proposer)} did not approve (no "
            "signature of the proposer over these terms)",
            code="terms_not_proposed",
        )
    return ApprovalVerdict(
        needed, epoch, tuple(sorted(counted, key=lambda a: int(a, 16))), tuple(stale)
    )


def _shown(address: str) -> str:
    """A listed address as people read it (checksummed), or as given if it is none."""
    try:
        return to_checksum_address(address)
    except (ValueError, TypeError):
        return repr(address)


def _signed_earlier(
    domain: Domain,
    enterprise: str,
    epoch: int,
    terms: GrantTerms,
    nonce: int,
    deadline: int,
    claimed: str,
    signature: bytes,
) -> bool:
    """Whether ``signature`` is ``claimed``'s approval under one of the last few epochs."""
    for earlier in range(max(0, epoch - _EPOCHS_LOOKED_BACK), epoch):
        digest = approval_digest(domain, enterprise, earlier, terms, nonce, deadline)
        try:
            if recover(digest, signature).lower() == claimed.lower():
                return True
        except LedgerError:
            return False
    return False


#: How many earlier epochs a stale approval is recognised in (beyond that it reads as forged).
_EPOCHS_LOOKED_BACK = 16
