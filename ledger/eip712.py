"""EIP-712 messages of the ledger: builders, fast digests, signers, recovery.

Two independent routes to every digest: :func:`typed_data` builds the full
EIP-712 JSON that eth-account's ``encode_typed_data`` hashes (the reference), and
the ``*_digest`` functions hash the same fields with eth-abi directly (used on
the hot path; about 10x faster). The tests check both against the contract's
``hash*`` views. Signing goes through eth-keys, which uses coincurve when it is
installed (:func:`signing_backend`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any, Literal

from eth_hash.auto import keccak

from ledger.address import to_checksum_address
from ledger.errors import LedgerError
from ledger.models import (
    AccessRequest,
    GrantTerms,
    SignedGrant,
    SignedKeyBinding,
    SignedStatusChange,
)

if TYPE_CHECKING:
    from eth_keys.datatypes import PrivateKey

NAME = "DataSafeLedger"
VERSION = "1"

_B32 = ("bytes32",)
TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "GrantConsent": [
        {"name": "assetId", "type": "bytes32"},
        {"name": "grantee", "type": "address"},
        {"name": "purpose", "type": "uint32"},
        {"name": "fieldsMask", "type": "uint64"},
        {"name": "notBefore", "type": "uint64"},
        {"name": "expiry", "type": "uint64"},
        {"name": "maxUses", "type": "uint32"},
        {"name": "retention", "type": "uint32"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint64"},
    ],
    "RevokeConsent": [
        {"name": "grantId", "type": "bytes32"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint64"},
    ],
    "PauseConsent": [
        {"name": "grantId", "type": "bytes32"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint64"},
    ],
    "ResumeConsent": [
        {"name": "grantId", "type": "bytes32"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint64"},
    ],
    "AccessRequest": [
        {"name": "grantId", "type": "bytes32"},
        {"name": "fieldsMask", "type": "uint64"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint64"},
    ],
    # An enterprise agent's approval of a grant (grantWithApprovals); `grant` is the GrantConsent
    # digest of the terms, nonce and deadline, `epoch` the enterprise's (removeAgent advances it).
    "GrantApproval": [
        {"name": "enterprise", "type": "address"},
        {"name": "epoch", "type": "uint32"},
        {"name": "grant", "type": "bytes32"},
    ],
    # The grantee's acknowledgements (ILifecycle): once per grant, ``uses`` = the chain's count.
    "RecallAcknowledgement": [
        {"name": "grantId", "type": "bytes32"},
        {"name": "uses", "type": "uint32"},
        {"name": "at", "type": "uint64"},
    ],
    "DeletionAcknowledgement": [
        {"name": "grantId", "type": "bytes32"},
        {"name": "uses", "type": "uint32"},
        {"name": "at", "type": "uint64"},
    ],
    # A member binds its own encryption key; keyVersion (current + 1) is the nonce.
    "KeyBinding": [
        {"name": "account", "type": "address"},
        {"name": "keyHash", "type": "bytes32"},
        {"name": "keyProofHash", "type": "bytes32"},
        {"name": "keyVersion", "type": "uint32"},
        {"name": "deadline", "type": "uint64"},
    ],
}

StatusKind = Literal["RevokeConsent", "PauseConsent", "ResumeConsent"]


def type_string(primary: str) -> str:
    fields = ",".join(f"{f['type']} {f['name']}" for f in TYPES[primary])
    return f"{primary}({fields})"


def type_hash(primary: str) -> bytes:
    return keccak(type_string(primary).encode())


_TYPEHASH = {name: type_hash(name) for name in TYPES}


@dataclass(frozen=True)
class Domain:
    """The ledger's EIP-712 domain on one chain."""

    chain_id: int
    verifying_contract: str
    #: The ledger's by default; the forwarder's domain differs only in these two.
    name: str = NAME
    version: str = VERSION

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.verifying_contract),
        }

    @cached_property
    def separator(self) -> bytes:
        return keccak(
            abi_encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [
                    _TYPEHASH["EIP712Domain"],
                    keccak(self.name.encode()),
                    keccak(self.version.encode()),
                    self.chain_id,
                    to_checksum_address(self.verifying_contract),
                ],
            )
        )

    def digest(self, struct_hash: bytes) -> bytes:
        return keccak(b"\x19\x01" + self.separator + struct_hash)


@lru_cache(maxsize=64)
def ledger_domain(chain_id: int, verifying_contract: str) -> Domain:
    """The domain of one deployment, memoised so request paths hash its separator once.

    Cached per spelling of the address too (checksumming costs a keccak), while every
    spelling of one address shares one :class:`Domain`.
    """
    return _ledger_domain(chain_id, to_checksum_address(verifying_contract))


@lru_cache(maxsize=16)
def _ledger_domain(chain_id: int, verifying_contract: str) -> Domain:
    return Domain(chain_id, verifying_contract)


# -- reference route: full EIP-712 JSON --------------------------------------------------------


def typed_data(domain: Domain, primary: str, message: dict[str, Any]) -> dict[str, Any]:
    """The full EIP-712 document (as for ``eth_signTypedData_v4``)."""
    return {
        "types": {"EIP712Domain": TYPES["EIP712Domain"], primary: TYPES[primary]},
        "primaryType": primary,
        "domain": domain.as_dict(),
        "message": message,
    }


def grant_message(terms: GrantTerms, nonce: int, deadline: int) -> dict[str, Any]:
    return {
        "assetId": terms.asset_id,
        "grantee": to_checksum_address(terms.grantee),
        "purpose": terms.purpose,
        "fieldsMask": terms.fields_mask,
        "notBefore": terms.not_before,
        "expiry": terms.expiry,
        "maxUses": terms.max_uses,
        "retention": terms.retention,
        "nonce": nonce,
        "deadline": deadline,
    }


def status_message(grant_id: bytes, nonce: int, deadline: int) -> dict[str, Any]:
    return {"grantId": grant_id, "nonce": nonce, "deadline": deadline}


def access_message(request: AccessRequest) -> dict[str, Any]:
    return {
        "grantId": request.grant_id,
        "fieldsMask": request.fields_mask,
        "nonce": request.nonce,
        "deadline": request.deadline,
    }


def key_binding_message(
    account: str, key_hash: bytes, key_proof: bytes, key_version: int, deadline: int
) -> dict[str, Any]:
    return {
        "account": to_checksum_address(account),
        "keyHash": key_hash,
        "keyProofHash": keccak(key_proof),
        "keyVersion": key_version,
        "deadline": deadline,
    }


def reference_digest(document: dict[str, Any]) -> bytes:
    """Digest of a typed-data document computed by eth-account."""
    # The reference route only: eth-account imports py_ecc (about half a second).
    from eth_account.messages import _hash_eip191_message, encode_typed_data

    digest: bytes = _hash_eip191_message(encode_typed_data(full_message=document))
    return bytes(digest)


# -- fast route ------------------------------------------------------------------------------


def abi_encode(types: list[str], values: Sequence[Any]) -> bytes:
    """eth-abi's ``encode``, imported on the first digest: eth-abi and eth-utils behind it
    (~0.1 s) stay off every ``datasafe`` command's start-up."""
    from eth_abi.abi import encode

    return encode(types, values)


def grant_digest(domain: Domain, terms: GrantTerms, nonce: int, deadline: int) -> bytes:
    struct = abi_encode(
        [
            "bytes32",
            "bytes32",
            "address",
            "uint32",
            "uint64",
            "uint64",
            "uint64",
            "uint32",
            "uint32",
            "uint256",
            "uint64",
        ],
        [_TYPEHASH["GrantConsent"], *terms.as_tuple(), nonce, deadline],
    )
    return domain.digest(keccak(struct))


def approval_digest(
    domain: Domain, enterprise: str, epoch: int, terms: GrantTerms, nonce: int, deadline: int
) -> bytes:
    """What each agent of ``enterprise`` signs to approve ``terms`` under the owner's ``nonce``."""
    struct = abi_encode(
        ["bytes32", "address", "uint32", "bytes32"],
        [
            _TYPEHASH["GrantApproval"],
            to_checksum_address(enterprise),
            epoch,
            grant_digest(domain, terms, nonce, deadline),
        ],
    )
    return domain.digest(keccak(struct))


def pack_approvals(approvals: Sequence[tuple[str, bytes]]) -> bytes:
    """``grantWithApprovals``' argument: the (signer, signature) pairs' signatures, sorted by
    signer (the contract refuses any other order, so none counts twice)."""
    ordered = sorted(approvals, key=lambda pair: int(pair[0], 16))
    return b"".join(signature for _, signature in ordered)


def status_digest(
    domain: Domain, kind: StatusKind, grant_id: bytes, nonce: int, deadline: int
) -> bytes:
    struct = abi_encode(
        ["bytes32", "bytes32", "uint256", "uint64"], [_TYPEHASH[kind], grant_id, nonce, deadline]
    )
    return domain.digest(keccak(struct))


def access_digest(domain: Domain, request: AccessRequest) -> bytes:
    struct = abi_encode(
        ["bytes32", "bytes32", "uint64", "uint256", "uint64"],
        [_TYPEHASH["AccessRequest"], *request.as_tuple()],
    )
    return domain.digest(keccak(struct))


def key_binding_digest(
    domain: Domain, account: str, key_hash: bytes, key_proof: bytes, key_version: int, deadline: int
) -> bytes:
    struct = abi_encode(
        ["bytes32", "address", "bytes32", "bytes32", "uint32", "uint64"],
        [
            _TYPEHASH["KeyBinding"],
            to_checksum_address(account),
            key_hash,
            keccak(key_proof),
            key_version,
            deadline,
        ],
    )
    return domain.digest(keccak(struct))


# -- signing ---------------------------------------------------------------------------------


def signing_backend() -> str:
    """Name of the eth-keys backend (``CoinCurveECCBackend`` when coincurve is installed)."""
    from eth_keys.main import KeyAPI

    return type(KeyAPI().backend).__name__


def _key(private_key: bytes | str | PrivateKey) -> PrivateKey:
    from eth_keys.datatypes import PrivateKey

    if isinstance(private_key, PrivateKey):
        return private_key
    raw = (
        bytes.fromhex(private_key.removeprefix("0x"))
        if isinstance(private_key, str)
        else private_key
    )
    try:
        return PrivateKey(raw)
    except Exception as exc:
        raise LedgerError(f"invalid private key: {exc}") from exc


def sign_digest(private_key: bytes | str | PrivateKey, digest: bytes) -> bytes:
    """65-byte ``r ‖ s ‖ v``, ``v ∈ {27, 28}``, low ``s`` (what the contract accepts)."""
    sig = _key(private_key).sign_msg_hash(digest)
    r: int = sig.r
    s: int = sig.s
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([int(sig.v) + 27])


def recover(digest: bytes, signature: bytes) -> str:
    if len(signature) != 65 or signature[64] not in (27, 28):
        raise LedgerError("signature must be 65 bytes with v in {27, 28}")
    from eth_keys.main import KeyAPI

    sig = KeyAPI.Signature(signature[:64] + bytes([signature[64] - 27]))
    return sig.recover_public_key_from_msg_hash(digest).to_checksum_address()


def address_of(private_key: bytes | str | PrivateKey) -> str:
    return _key(private_key).public_key.to_checksum_address()


# ---- recordAccessBatch's packed input (IConsents.recordAccessBatch) ----------------------

#: Bytes per item: grantId 32 ‖ fieldsMask 8 ‖ nonce 32 ‖ deadline 8 ‖ r 32 ‖ vs 32.
ACCESS_ITEM_SIZE = 144
#: secp256k1n / 2: the contract refuses a larger s (the malleable twin of a valid one).
_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


class SignatureFormatError(LedgerError):
    """A signature the contract would refuse for its form (length, v, high s)."""


def compact_signature(signature: bytes) -> bytes:
    """EIP-2098: 65-byte ``r ‖ s ‖ v`` as 64-byte ``r ‖ vs`` (vs = s with v - 27 in its top bit)."""
    if len(signature) != 65 or signature[64] not in (27, 28):
        raise SignatureFormatError("signature must be 65 bytes with v in {27, 28}")
    s = int.from_bytes(signature[32:64], "big")
    if s > _HALF_ORDER:
        raise SignatureFormatError("signature s is in the upper half of the curve order")
    return signature[:32] + (s | (signature[64] - 27) << 255).to_bytes(32, "big")


def pack_access_batch(requests: Sequence[AccessRequest], signatures: Sequence[bytes]) -> bytes:
    """The ``recordAccessBatch`` argument: one 144-byte item per signed request, in order."""
    if len(requests) != len(signatures):
        raise LedgerError(f"{len(requests)} requests but {len(signatures)} signatures")
    return b"".join(_pack_access(r, sig) for r, sig in zip(requests, signatures, strict=True))


def _pack_access(request: AccessRequest, signature: bytes) -> bytes:
    if len(request.grant_id) != 32:
        raise LedgerError(f"a grant id is 32 bytes, got {len(request.grant_id)}")
    try:
        head = (
            request.grant_id
            + request.fields_mask.to_bytes(8, "big")
            + request.nonce.to_bytes(32, "big")
            + request.deadline.to_bytes(8, "big")
        )
    except OverflowError as exc:
        raise LedgerError(f"an access request field is out of range: {exc}") from None
    return head + compact_signature(signature)


def sign_grant(
    private_key: bytes | str | PrivateKey,
    domain: Domain,
    terms: GrantTerms,
    nonce: int,
    deadline: int,
) -> SignedGrant:
    key = _key(private_key)
    signature = sign_digest(key, grant_digest(domain, terms, nonce, deadline))
    return SignedGrant(terms, key.public_key.to_checksum_address(), nonce, deadline, signature)


def sign_status_change(
    private_key: bytes | str | PrivateKey,
    domain: Domain,
    kind: StatusKind,
    grant_id: bytes,
    nonce: int,
    deadline: int,
) -> SignedStatusChange:
    """Sign a Revoke/Pause/ResumeConsent; ``nonce`` is the signer's ``nonces(signer)``."""
    key = _key(private_key)
    signature = sign_digest(key, status_digest(domain, kind, grant_id, nonce, deadline))
    return SignedStatusChange(grant_id, key.public_key.to_checksum_address(), deadline, signature)


def sign_access_request(
    private_key: bytes | str | PrivateKey, domain: Domain, request: AccessRequest
) -> bytes:
    return sign_digest(private_key, access_digest(domain, request))


def sign_key_binding(
    private_key: bytes | str | PrivateKey,
    domain: Domain,
    key_hash: bytes,
    key_proof: bytes,
    key_version: int,
    deadline: int,
) -> SignedKeyBinding:
    """The member's own signature binding ``key_hash`` (with its proof of possession) as its
    key ``key_version`` (the chain's ``keyVersion + 1``); anyone may relay it."""
    key = _key(private_key)
    account = key.public_key.to_checksum_address()
    digest = key_binding_digest(domain, account, key_hash, key_proof, key_version, deadline)
    return SignedKeyBinding(
        account, key_hash, key_proof, key_version, deadline, sign_digest(key, digest)
    )


def sign_typed_data_reference(private_key: bytes | str, document: dict[str, Any]) -> bytes:
    """eth-account's own signer over a typed-data document (slow; for cross-checks)."""
    from eth_account import Account

    signed = Account.sign_typed_data(private_key, full_message=document)
    return bytes(signed.signature)
