"""Typed views of the ledger's structs, enums and events (frozen dataclasses).

Field order follows the Solidity structs so ``as_tuple()`` is the ABI encoding input
and ``from_tuple()`` accepts eth-abi's decoded tuple.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Any

from ledger.address import to_checksum_address


class Role(IntFlag):
    GOVERNOR = 1
    ISSUER = 2
    CONSUMER = 4
    REGULATOR = 8
    CUSTODIAN = 16
    SUBJECT = 32
    REGISTRAR = 64


class MemberKind(IntEnum):
    NONE = 0
    INDIVIDUAL = 1
    ENTERPRISE = 2
    BANK = 3
    NOTARY = 4
    INSURER = 5
    DEPARTMENT = 6
    REGULATOR = 7
    OPERATOR = 8


class MemberStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2


class AssetStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    DISPUTED = 2
    SUPERSEDED = 3
    RETIRED = 4


class GrantStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    PAUSED = 2
    REVOKED = 3


class Reason(IntEnum):
    """Reason codes of ``check`` and ``recordAccessBatch``."""

    OK = 0
    NOT_FOUND = 1
    NOT_GRANTEE = 2
    REVOKED = 3
    PAUSED = 4
    EXPIRED = 5
    NOT_YET_VALID = 6
    USES_EXHAUSTED = 7
    GRANTEE_SUSPENDED = 8
    ASSET_DISPUTED = 9
    ASSET_RETIRED = 10
    ASSET_SUPERSEDED = 11
    FIELDS_NOT_GRANTED = 12
    SIGNATURE_EXPIRED = 13
    SIGNATURE_INVALID = 14
    NONCE_USED = 15
    # Only reported by ``acknowledgeBatch`` (ILifecycle).
    GRANT_LIVE = 16
    NOT_RECALLED = 17
    ALREADY_ACKNOWLEDGED = 18
    USES_MISMATCH = 19
    ACK_IN_FUTURE = 20
    ACK_KIND_UNKNOWN = 21

    @property
    def text(self) -> str:
        """What the code means, in words (shown to people, e.g. in API problems)."""
        return REASON_TEXT[self]


REASON_TEXT: dict[Reason, str] = {
    Reason.OK: "allowed",
    Reason.NOT_FOUND: "no such grant",
    Reason.NOT_GRANTEE: "the grant was not made to this institution",
    Reason.REVOKED: "the subject revoked the grant",
    Reason.PAUSED: "the subject paused the grant",
    Reason.EXPIRED: "the grant has expired",
    Reason.NOT_YET_VALID: "the grant is not valid yet",
    Reason.USES_EXHAUSTED: "the grant's uses are exhausted",
    Reason.GRANTEE_SUSPENDED: "the institution is suspended",
    Reason.ASSET_DISPUTED: "the subject disputes the asset",
    Reason.ASSET_RETIRED: "the issuer retired the asset",
    Reason.ASSET_SUPERSEDED: "a newer version of the asset exists",
    Reason.FIELDS_NOT_GRANTED: "the grant does not cover the requested fields",
    Reason.SIGNATURE_EXPIRED: "the access request's deadline has passed",
    Reason.SIGNATURE_INVALID: "the access request signature is invalid",
    Reason.NONCE_USED: "the access request nonce was already used",
    Reason.GRANT_LIVE: "the grant has not ended (not revoked, expired or out of uses)",
    Reason.NOT_RECALLED: "no recall is owed (the version is current or was never pulled)",
    Reason.ALREADY_ACKNOWLEDGED: "the grantee already acknowledged this",
    Reason.USES_MISMATCH: "the acknowledgement covers a different number of uses than the chain's",
    Reason.ACK_IN_FUTURE: "the acknowledgement is dated after the block",
    Reason.ACK_KIND_UNKNOWN: "unknown acknowledgement kind",
}


class AckKind(IntEnum):
    """What a grantee acknowledges (ILifecycle); each is one bit of a grant's ``acks``."""

    RECALL = 1
    DELETION = 2


def _addr(value: Any) -> str:
    return to_checksum_address(value)


@dataclass(frozen=True)
class Member:
    roles: Role
    kind: MemberKind
    status: MemberStatus
    key_version: int
    admitted_at: int
    number: int
    enc_key_hash: bytes
    key_proof_hash: bytes

    @classmethod
    def from_tuple(cls, t: tuple[Any, ...]) -> Member:
        return cls(Role(t[0]), MemberKind(t[1]), MemberStatus(t[2]), t[3], t[4], t[5], t[6], t[7])

    @property
    def is_member(self) -> bool:
        return self.status != MemberStatus.NONE

    def has(self, roles: Role) -> bool:
        return self.status == MemberStatus.ACTIVE and (self.roles & roles) == roles

    def role_names(self) -> list[str]:
        """Lower-case names of the role bits held, in bit order (e.g. ``["issuer"]``)."""
        return [r.name.lower() for r in Role if r.name and self.roles & r]


@dataclass(frozen=True)
class Schema:
    issuer: str
    field_count: int
    registered_at: int
    fields_hash: bytes

    @classmethod
    def from_tuple(cls, t: tuple[Any, ...]) -> Schema:
        return cls(_addr(t[0]), t[1], t[2], t[3])

    @property
    def exists(self) -> bool:
        return self.field_count != 0


@dataclass(frozen=True)
class Asset:
    owner: str
    status: AssetStatus
    version: int
    issuer: str
    schema_id: bytes
    root: bytes
    ciphertext_digest: bytes
    previous: bytes
    next: bytes

    @classmethod
    def from_tuple(cls, t: tuple[Any, ...]) -> Asset:
        return cls(_addr(t[0]), AssetStatus(t[1]), t[2], _addr(t[3]), t[4], t[5], t[6], t[7], t[8])

    @property
    def exists(self) -> bool:
        return self.status != AssetStatus.NONE


#: ``setApprovalThreshold``'s purpose key for an enterprise's default threshold (IMembership).
ANY_PURPOSE = 0xFFFFFFFF


@dataclass(frozen=True)
class GrantTerms:
    asset_id: bytes
    grantee: str
    purpose: int
    fields_mask: int
    not_before: int
    expiry: int
    max_uses: int
    #: Seconds the grantee may keep what it pulled after the grant ends (0: delete at the end).
    retention: int = 0

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.asset_id,
            _addr(self.grantee),
            self.purpose,
            self.fields_mask,
            self.not_before,
            self.expiry,
            self.max_uses,
            self.retention,
        )

    @classmethod
    def from_tuple(cls, t: tuple[Any, ...]) -> GrantTerms:
        return cls(t[0], _addr(t[1]), t[2], t[3], t[4], t[5], t[6], t[7])

    @classmethod
    def from_json(cls, t: dict[str, Any]) -> GrantTerms:
        """From the service's JSON terms (``asset_id`` as 0x-hex, snake_case names)."""
        return cls(
            bytes.fromhex(str(t["asset_id"])[2:]),
            t["grantee"],
            t["purpose"],
            t["fields_mask"],
            t["not_before"],
            t["expiry"],
            t["max_uses"],
            t.get("retention", 0),
        )


@dataclass(frozen=True)
class Grant:
    asset_id: bytes
    grantee: str
    purpose: int
    fields_mask: int
    not_before: int
    expiry: int
    max_uses: int
    uses: int
    status: GrantStatus
    retention: int = 0
    #: Bits of :class:`AckKind` the grantee has recorded.
    acks: int = 0

    @classmethod
    def from_tuple(cls, t: tuple[Any, ...]) -> Grant:
        return cls(
            t[0], _addr(t[1]), t[2], t[3], t[4], t[5], t[6], t[7], GrantStatus(t[8]), t[9], t[10]
        )

    def acknowledged(self, kind: AckKind) -> bool:
        return bool(self.acks & kind)

    @property
    def exists(self) -> bool:
        return self.status != GrantStatus.NONE


@dataclass(frozen=True)
class SignedGrant:
    terms: GrantTerms
    grantor: str
    nonce: int
    deadline: int
    signature: bytes

    def as_tuple(self) -> tuple[Any, ...]:
        return (
            self.terms.as_tuple(),
            _addr(self.grantor),
            self.nonce,
            self.deadline,
            self.signature,
        )


@dataclass(frozen=True)
class AccessRequest:
    grant_id: bytes
    fields_mask: int
    nonce: int
    deadline: int

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.grant_id, self.fields_mask, self.nonce, self.deadline)


@dataclass(frozen=True)
class SignedStatusChange:
    """A signed Revoke/Pause/ResumeConsent message, ready to relay."""

    grant_id: bytes
    signer: str
    deadline: int
    signature: bytes


@dataclass(frozen=True)
class SignedKeyBinding:
    """A member's signed ``KeyBinding`` (key hash + proof of possession), ready to relay.

    ``key_version`` is the member's next version (current + 1); it doubles as the nonce.
    """

    account: str
    key_hash: bytes
    key_proof: bytes
    key_version: int
    deadline: int
    signature: bytes


@dataclass(frozen=True)
class CheckResult:
    allowed: bool
    reason: Reason


@dataclass(frozen=True)
class Event:
    """A decoded ledger log."""

    name: str
    args: dict[str, Any]
    address: str
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int


@dataclass(frozen=True)
class Receipt:
    """A mined transaction: its block, status, raw logs and (when decoded) ledger events.

    The one receipt type of the product: ``ledger``'s transaction manager and the
    service's relayer both build it with :meth:`from_rpc`.
    """

    tx_hash: str
    block_number: int
    block_hash: str
    status: int
    gas_used: int
    contract_address: str | None
    events: list[Event] = field(default_factory=list)
    result: Any = None
    #: The receipt's logs as the node returned them (JSON-RPC dicts).
    logs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.status == 1

    @classmethod
    def from_rpc(cls, raw: dict[str, Any], events: list[Event] | None = None) -> Receipt:
        """A receipt from ``eth_getTransactionReceipt``'s answer (a mined transaction)."""
        return cls(
            tx_hash=str(raw["transactionHash"]),
            block_number=int(raw["blockNumber"], 16),
            block_hash=str(raw["blockHash"]),
            status=int(raw.get("status", "0x1"), 16),
            gas_used=int(raw.get("gasUsed", "0x0"), 16),
            contract_address=raw.get("contractAddress"),
            events=list(events or []),
            logs=list(raw.get("logs", [])),
        )

    def events_named(self, name: str) -> list[Event]:
        return [e for e in self.events if e.name == name]
