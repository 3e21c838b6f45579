"""Typed calls of every ledger function, shared by the sync and async clients.

Each method returns a :class:`Read` (data + typed decoder) or a :class:`Write`
(calldata + result decoder for the return value); the clients only move bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ledger.abi import FunctionSpec, LedgerAbi, ledger_abi
from ledger.address import to_checksum_address
from ledger.eip712 import abi_encode, pack_access_batch
from ledger.errors import LedgerError
from ledger.lifecycle import Acknowledgement, SignedAcknowledgement, pack_ack_batch
from ledger.models import (
    AccessRequest,
    Asset,
    CheckResult,
    Grant,
    GrantTerms,
    Member,
    MemberKind,
    Reason,
    Role,
    Schema,
    SignedGrant,
    SignedKeyBinding,
    SignedStatusChange,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Read(Generic[T]):
    fn: FunctionSpec
    data: bytes
    decode: Callable[[bytes], T]


@dataclass(frozen=True)
class Write:
    fn: FunctionSpec
    data: bytes

    @property
    def name(self) -> str:
        return self.fn.name


def _one(value: tuple[Any, ...]) -> Any:
    return value[0]


class LedgerCalls:
    """Encoders for every function of ``IDataSafeLedger``."""

    def __init__(self, abi: LedgerAbi | None = None) -> None:
        self.abi = abi or ledger_abi()

    def _read(self, name: str, conv: Callable[[tuple[Any, ...]], T], *args: Any) -> Read[T]:
        fn = self.abi.fn(name)
        return Read(fn, fn.encode(*args), lambda data: conv(fn.decode_output(data)))

    def _write(self, name: str, *args: Any) -> Write:
        fn = self.abi.fn(name)
        return Write(fn, fn.encode(*args))

    # -- membership ------------------------------------------------------------------------
    def governor(self) -> Read[str]:
        return self._read("governor", lambda t: to_checksum_address(t[0]))

    def pending_governor(self) -> Read[str]:
        return self._read("pendingGovernor", lambda t: to_checksum_address(t[0]))

    def get_member(self, account: str) -> Read[Member]:
        return self._read("getMember", lambda t: Member.from_tuple(t[0]), _a(account))

    def has_roles(self, account: str, roles: int) -> Read[bool]:
        return self._read("hasRoles", _one, _a(account), int(roles))

    def is_agent(self, enterprise: str, agent: str) -> Read[bool]:
        return self._read("isAgent", _one, _a(enterprise), _a(agent))

    def is_trusted_forwarder(self, forwarder: str) -> Read[bool]:
        return self._read("isTrustedForwarder", _one, _a(forwarder))

    def agent_expiry(self, enterprise: str, agent: str) -> Read[int]:
        return self._read("agentExpiry", _one, _a(enterprise), _a(agent))

    def suspension_authority(self, account: str) -> Read[int]:
        """The role (GOVERNOR=1 or REGULATOR=8) that suspended ``account``; 0 if not suspended."""
        return self._read("suspensionAuthority", _one, _a(account))

    def admit_member(
        self, account: str, roles: int, kind: MemberKind, *, evidence_hash: bytes = b"\0" * 32
    ) -> Write:
        """Admission binds no encryption key: the member binds its own (``bindEncryptionKey*``)."""
        return self._write("admitMember", _a(account), int(Role(roles)), int(kind), evidence_hash)

    def admit_subject(
        self, account: str, kind: MemberKind, *, evidence_hash: bytes = b"\0" * 32
    ) -> Write:
        return self._write("admitSubject", _a(account), int(kind), evidence_hash)

    def set_roles(self, account: str, roles: int) -> Write:
        return self._write("setRoles", _a(account), int(roles))

    def suspend_member(self, account: str, reason_hash: bytes = b"\0" * 32) -> Write:
        return self._write("suspendMember", _a(account), reason_hash)

    def reinstate_member(self, account: str, reason_hash: bytes = b"\0" * 32) -> Write:
        return self._write("reinstateMember", _a(account), reason_hash)

    def bind_encryption_key(self, key_hash: bytes, key_proof: bytes) -> Write:
        """The caller binds (or rotates to) its own key (it pays the gas)."""
        return self._write("bindEncryptionKey", key_hash, key_proof)

    def bind_encryption_key_by_sig(self, b: SignedKeyBinding) -> Write:
        """Relay a member's signed key binding (see :func:`ledger.eip712.sign_key_binding`)."""
        return self._write(
            "bindEncryptionKeyBySig",
            _a(b.account),
            b.key_hash,
            b.key_proof,
            b.key_version,
            b.deadline,
            b.signature,
        )

    def hash_key_binding(
        self, account: str, key_hash: bytes, key_proof_hash: bytes, key_version: int, deadline: int
    ) -> Read[bytes]:
        return self._read(
            "hashKeyBinding", _one, _a(account), key_hash, key_proof_hash, key_version, deadline
        )

    def add_agent(self, agent: str, expiry: int) -> Write:
        return self._write("addAgent", _a(agent), expiry)

    def remove_agent(self, agent: str) -> Write:
        return self._write("removeAgent", _a(agent))

    def set_approval_threshold(self, purpose: int, threshold: int) -> Write:
        return self._write("setApprovalThreshold", purpose, threshold)

    def approval_policy(self, enterprise: str, purpose: int) -> Read[tuple[int, int]]:
        """(approvals needed for ``purpose``, the enterprise's approval epoch)."""
        return self._read(
            "approvalPolicy", lambda t: (int(t[0]), int(t[1])), _a(enterprise), purpose
        )

    def transfer_governance(self, new_governor: str) -> Write:
        return self._write("transferGovernance", _a(new_governor))

    def accept_governance(self) -> Write:
        return self._write("acceptGovernance")

    # -- schemas ---------------------------------------------------------------------------
    def register_schema(self, schema_id: bytes, field_count: int, fields_hash: bytes) -> Write:
        return self._write("registerSchema", schema_id, field_count, fields_hash)

    def set_schema_issuer(self, schema_id: bytes, issuer: str, authorized: bool) -> Write:
        return self._write("setSchemaIssuer", schema_id, _a(issuer), authorized)

    def is_schema_issuer(self, schema_id: bytes, issuer: str) -> Read[bool]:
        return self._read("isSchemaIssuer", _one, schema_id, _a(issuer))

    def get_schema(self, schema_id: bytes) -> Read[Schema]:
        return self._read("getSchema", lambda t: Schema.from_tuple(t[0]), schema_id)

    # -- assets ----------------------------------------------------------------------------
    def anchor_asset(
        self, asset_id: bytes, owner: str, schema_id: bytes, root: bytes, ciphertext_digest: bytes
    ) -> Write:
        return self._write("anchorAsset", asset_id, _a(owner), schema_id, root, ciphertext_digest)

    def supersede_asset(
        self, old_asset_id: bytes, new_asset_id: bytes, root: bytes, ciphertext_digest: bytes
    ) -> Write:
        return self._write("supersedeAsset", old_asset_id, new_asset_id, root, ciphertext_digest)

    def dispute_asset(self, asset_id: bytes, reason_hash: bytes) -> Write:
        return self._write("disputeAsset", asset_id, reason_hash)

    def resolve_dispute(self, asset_id: bytes, resolution_hash: bytes) -> Write:
        return self._write("resolveDispute", asset_id, resolution_hash)

    def retire_asset(self, asset_id: bytes, reason_hash: bytes) -> Write:
        return self._write("retireAsset", asset_id, reason_hash)

    def get_asset(self, asset_id: bytes) -> Read[Asset]:
        return self._read("getAsset", lambda t: Asset.from_tuple(t[0]), asset_id)

    # -- consents --------------------------------------------------------------------------
    def grant(self, terms: GrantTerms, nonce: int) -> Write:
        return self._write("grant", terms.as_tuple(), nonce)

    def grant_by_sig(self, signed: SignedGrant) -> Write:
        return self._write("grantBySig", signed.as_tuple())

    def grant_with_approvals(
        self, terms: GrantTerms, nonce: int, deadline: int, approvals: bytes
    ) -> Write:
        return self._write("grantWithApprovals", terms.as_tuple(), nonce, deadline, approvals)

    def grant_batch(self, terms: Sequence[GrantTerms], nonces: Sequence[int]) -> Write:
        return self._write("grantBatch", [t.as_tuple() for t in terms], list(nonces))

    def grant_by_sig_batch(self, signed: Sequence[SignedGrant]) -> Write:
        return self._write("grantBySigBatch", [s.as_tuple() for s in signed])

    def revoke(self, grant_id: bytes) -> Write:
        return self._write("revoke", grant_id)

    def pause(self, grant_id: bytes) -> Write:
        return self._write("pause", grant_id)

    def resume(self, grant_id: bytes) -> Write:
        return self._write("resume", grant_id)

    def revoke_by_sig(self, m: SignedStatusChange) -> Write:
        return self._write("revokeBySig", m.grant_id, _a(m.signer), m.deadline, m.signature)

    def pause_by_sig(self, m: SignedStatusChange) -> Write:
        return self._write("pauseBySig", m.grant_id, _a(m.signer), m.deadline, m.signature)

    def resume_by_sig(self, m: SignedStatusChange) -> Write:
        return self._write("resumeBySig", m.grant_id, _a(m.signer), m.deadline, m.signature)

    def record_access(self, request: AccessRequest, signature: bytes) -> Write:
        return self._write("recordAccess", request.as_tuple(), signature)

    def record_access_batch(
        self, requests: Sequence[AccessRequest], signatures: Sequence[bytes]
    ) -> Write:
        return self._write("recordAccessBatch", pack_access_batch(requests, signatures))

    def acknowledge_batch(self, signed: Sequence[SignedAcknowledgement]) -> Write:
        return self._write("acknowledgeBatch", pack_ack_batch(signed))

    def hash_acknowledgement(self, ack: Acknowledgement) -> Read[bytes]:
        return self._read("hashAcknowledgement", _one, *ack.as_args())

    def check(self, grant_id: bytes, grantee: str, fields_mask: int) -> Read[CheckResult]:
        return self._read(
            "check",
            lambda t: CheckResult(bool(t[0]), Reason(t[1])),
            grant_id,
            _a(grantee),
            fields_mask,
        )

    def get_grant(self, grant_id: bytes) -> Read[Grant]:
        return self._read("getGrant", lambda t: Grant.from_tuple(t[0]), grant_id)

    def grant_id_of(self, grantor: str, nonce: int) -> Read[bytes]:
        return self._read("grantIdOf", _one, _a(grantor), nonce)

    def nonces(self, signer: str) -> Read[int]:
        return self._read("nonces", _one, _a(signer))

    def is_access_nonce_used(self, grantee: str, nonce: int) -> Read[bool]:
        return self._read("isAccessNonceUsed", _one, _a(grantee), nonce)

    def domain_separator(self) -> Read[bytes]:
        return self._read("domainSeparator", _one)

    def hash_grant(self, terms: GrantTerms, nonce: int, deadline: int) -> Read[bytes]:
        return self._read("hashGrant", _one, terms.as_tuple(), nonce, deadline)

    def hash_revoke(self, grant_id: bytes, nonce: int, deadline: int) -> Read[bytes]:
        return self._read("hashRevoke", _one, grant_id, nonce, deadline)

    def hash_pause(self, grant_id: bytes, nonce: int, deadline: int) -> Read[bytes]:
        return self._read("hashPause", _one, grant_id, nonce, deadline)

    def hash_resume(self, grant_id: bytes, nonce: int, deadline: int) -> Read[bytes]:
        return self._read("hashResume", _one, grant_id, nonce, deadline)

    def hash_access_request(self, request: AccessRequest) -> Read[bytes]:
        return self._read("hashAccessRequest", _one, request.as_tuple())

    def version(self) -> Read[str]:
        return self._read("VERSION", _one)


def _a(address: str) -> str:
    try:
        return to_checksum_address(address)
    except (ValueError, TypeError) as exc:
        raise LedgerError(f"not an address: {address!r}") from exc


def grant_id_of(grantor: str, nonce: int) -> bytes:
    """keccak256(abi.encode(grantor, nonce)), computed client-side."""
    from eth_hash.auto import keccak

    return keccak(abi_encode(["address", "uint256"], [_a(grantor), nonce]))
