"""The member's own key binding, read from the chain: the one check every key user makes.

Only the member's signature sets ``encKeyHash`` and ``keyProofHash`` on chain
(``bindEncryptionKey``/``bindEncryptionKeyBySig``), so the chain's record *is* the
member's signed binding. Whoever seals or wraps to a member (issuer, grantor, the
service publishing keys) checks that the key it was handed

1. hashes to the chain's ``encKeyHash`` (sha256 of the key encoding),
2. comes with a proof whose keccak256 is the chain's ``keyProofHash``, and
3. that the proof verifies for this chain, ledger and account.

Step 3 is HPKE/Ed25519 work and lives in ``vault.keyproof``; ledger and vault do not
import each other, so callers pass :func:`vault.keyproof.key_proof_valid` in as
``verify_proof`` (see :func:`check_member_key`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from eth_hash.auto import keccak

from ledger.address import to_checksum_address
from ledger.errors import LedgerError
from ledger.models import Member, MemberStatus

if TYPE_CHECKING:
    from ledger.client import LedgerClient

_ZERO = b"\0" * 32


class KeyBindingError(LedgerError):
    """A member's encryption key is not the one the member bound on chain (or no key is bound)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        #: ``not_member``, ``no_key``, ``key_mismatch``, ``proof_mismatch`` or ``proof_invalid``
        self.reason = reason


class ProofVerifier(Protocol):
    def __call__(
        self, public_key: bytes, proof: bytes, *, chain_id: int, ledger: str, account: str
    ) -> bool: ...


@dataclass(frozen=True)
class KeyBinding:
    """What the chain says about one member's key."""

    chain_id: int
    ledger: str
    account: str
    key_version: int
    key_hash: bytes
    key_proof_hash: bytes

    @classmethod
    def from_member(cls, member: Member, *, chain_id: int, ledger: str, account: str) -> KeyBinding:
        """From a ``getMember`` record the caller read from the chain itself."""
        if member.status == MemberStatus.NONE:
            raise KeyBindingError(f"{account} is not a member", reason="not_member")
        if member.key_version == 0 or member.enc_key_hash == _ZERO:
            raise KeyBindingError(
                f"{account} has not bound an encryption key (admission binds none)",
                reason="no_key",
            )
        return cls(
            chain_id,
            to_checksum_address(ledger),
            to_checksum_address(account),
            member.key_version,
            member.enc_key_hash,
            member.key_proof_hash,
        )

    def verify(self, public_key: bytes, proof: bytes, verify_proof: ProofVerifier) -> None:
        """Raise :class:`KeyBindingError` unless ``public_key`` + ``proof`` are this binding."""
        if hashlib.sha256(public_key).digest() != self.key_hash:
            raise KeyBindingError(
                f"the key offered for {self.account} is not the one it bound on chain "
                f"(version {self.key_version}, hash 0x{self.key_hash.hex()})",
                reason="key_mismatch",
            )
        if keccak(proof) != self.key_proof_hash:
            raise KeyBindingError(
                f"the proof of possession offered for {self.account} is not the one it signed",
                reason="proof_mismatch",
            )
        if not verify_proof(
            public_key, proof, chain_id=self.chain_id, ledger=self.ledger, account=self.account
        ):
            raise KeyBindingError(
                f"{self.account}'s proof of possession of its encryption key does not verify",
                reason="proof_invalid",
            )


def read_key_binding(chain: LedgerClient, account: str) -> KeyBinding:
    """Read ``account``'s binding from the chain the client is connected to."""
    return KeyBinding.from_member(
        chain.get_member(account), chain_id=chain.chain_id(), ledger=chain.address, account=account
    )


def check_member_key(
    chain: LedgerClient,
    account: str,
    public_key: bytes,
    proof: bytes,
    verify_proof: ProofVerifier,
) -> KeyBinding:
    """The check: ``public_key`` is the key ``account`` itself bound, with a valid proof."""
    binding = read_key_binding(chain, account)
    binding.verify(public_key, proof, verify_proof)
    return binding
