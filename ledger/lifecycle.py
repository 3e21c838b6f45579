"""Recall and deletion acknowledgements (ILifecycle): messages, digests, signing, packing,
and the rules that say which grants owe one.

A grantee acknowledges, by its own EIP-712 signature, that it was told of a correction
(a recall: it pulled a version its department superseded) or that it deleted what it pulled
under a grant that ended. The custodian relays the signatures in packed batches
(``acknowledgeBatch``), like access records. The rules here are the contract's, restated so
that the indexer and ``audit verify`` can re-derive from logs alone who owes what.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_hash.auto import keccak

from ledger.eip712 import Domain, abi_encode, compact_signature, sign_digest, type_hash
from ledger.errors import LedgerError
from ledger.models import AckKind, GrantStatus

if TYPE_CHECKING:
    from eth_keys.datatypes import PrivateKey

#: Bytes per item: kind 1 ‖ grantId 32 ‖ uses 4 ‖ at 8 ‖ r 32 ‖ vs 32.
ACK_ITEM_SIZE = 109
#: The 16-bit use counter: a grant with maxUses 0 ends when it reaches this.
_USE_LIMIT = 0xFFFF

PRIMARY: dict[AckKind, str] = {
    AckKind.RECALL: "RecallAcknowledgement",
    AckKind.DELETION: "DeletionAcknowledgement",
}
_TYPEHASH = {kind: type_hash(name) for kind, name in PRIMARY.items()}


class LifecycleError(LedgerError):
    """An acknowledgement that the chain would refuse, caught before anything is done."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Acknowledgement:
    """What the grantee signs: the grant, the uses it covers (the chain's count), and when."""

    kind: AckKind
    grant_id: bytes
    uses: int
    at: int

    def message(self) -> dict[str, Any]:
        """The EIP-712 message (for :func:`ledger.eip712.typed_data`)."""
        return {"grantId": self.grant_id, "uses": self.uses, "at": self.at}

    def as_args(self) -> tuple[int, bytes, int, int]:
        """The arguments of the contract's ``hashAcknowledgement``."""
        return (int(self.kind), self.grant_id, self.uses, self.at)


@dataclass(frozen=True)
class SignedAcknowledgement:
    ack: Acknowledgement
    signature: bytes


def ack_digest(domain: Domain, ack: Acknowledgement) -> bytes:
    struct = abi_encode(
        ["bytes32", "bytes32", "uint32", "uint64"],
        [_TYPEHASH[ack.kind], ack.grant_id, ack.uses, ack.at],
    )
    return domain.digest(keccak(struct))


def sign_acknowledgement(
    private_key: bytes | str | PrivateKey, domain: Domain, ack: Acknowledgement
) -> SignedAcknowledgement:
    return SignedAcknowledgement(ack, sign_digest(private_key, ack_digest(domain, ack)))


def pack_ack_batch(signed: Sequence[SignedAcknowledgement]) -> bytes:
    """The ``acknowledgeBatch`` argument: one 109-byte item per signed acknowledgement, in order."""
    return b"".join(_pack(item) for item in signed)


def _pack(item: SignedAcknowledgement) -> bytes:
    ack = item.ack
    if len(ack.grant_id) != 32:
        raise LedgerError(f"a grant id is 32 bytes, got {len(ack.grant_id)}")
    try:
        head = (
            int(ack.kind).to_bytes(1, "big")
            + ack.grant_id
            + ack.uses.to_bytes(4, "big")
            + ack.at.to_bytes(8, "big")
        )
    except OverflowError as exc:
        raise LedgerError(f"an acknowledgement field is out of range: {exc}") from None
    return head + compact_signature(item.signature)


# -- who owes what (the contract's rules, for derivations from logs) --------------------------


def has_ended(status: GrantStatus, expiry: int, uses: int, max_uses: int, now: int) -> bool:
    """Revoked, expired, or out of uses: a deletion acknowledgement is owed."""
    limit = max_uses or _USE_LIMIT
    return status == GrantStatus.REVOKED or now >= expiry or uses >= limit


def recall_owed(uses: int, superseded: bool) -> bool:
    """A grant that pulled a version its department superseded owes a recall.

    Accesses to a superseded version are refused, so ``uses`` is the count of pulls of the
    old version and does not move after the supersession.
    """
    return superseded and uses > 0


def ended_at(
    status: GrantStatus,
    expiry: int,
    uses: int,
    max_uses: int,
    *,
    revoked_at: int | None,
    last_access_at: int | None,
    now: int,
) -> int | None:
    """When the grant ended (the earliest of revocation, expiry, last allowed use), or None if
    it is live at ``now``. The times come from logs: ``ConsentRevoked``, the last ``Accessed``.
    """
    if not has_ended(status, expiry, uses, max_uses, now):
        return None
    ends = [expiry] if now >= expiry else []
    if status == GrantStatus.REVOKED and revoked_at is not None:
        ends.append(revoked_at)
    if uses >= (max_uses or _USE_LIMIT) and last_access_at is not None:
        ends.append(last_access_at)
    return min(ends) if ends else now


def recall_rank(grant_id: str) -> int:
    """2 + the first 48 bits of the grant id: orders the trace's recall rows of one
    supersession, which share its log (ledger.trace: 0 event rows, 1 expiry rows)."""
    return 2 + int(grant_id.removeprefix("0x")[:12] or "0", 16)


def deletion_due(ended: int, retention: int) -> int:
    """The time by which the deletion acknowledgement is due."""
    return ended + retention
