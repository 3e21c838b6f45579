"""EIP-712 digests of the ledger's consent messages (domain "DataSafeLedger").

The service checks access requests locally before queueing them (so a
request signed by someone other than the caller never reaches the chain) and
the test-suite and SDK sign with the same code; ``hash*`` views on the
contract are the reference these digests are tested against.
"""

from __future__ import annotations

from eth_abi.abi import encode
from eth_hash.auto import keccak

from api.envelope import DOMAIN_TYPEHASH, recover, sign_digest

LEDGER_NAME = "DataSafeLedger"
LEDGER_VERSION = "1"
GRANT_TYPEHASH = keccak(
    b"GrantConsent(bytes32 assetId,address grantee,uint32 purpose,uint64 fieldsMask,"
    b"uint64 notBefore,uint64 expiry,uint32 maxUses,uint256 nonce,uint64 deadline)"
)
REVOKE_TYPEHASH = keccak(b"RevokeConsent(bytes32 grantId,uint256 nonce,uint64 deadline)")
PAUSE_TYPEHASH = keccak(b"PauseConsent(bytes32 grantId,uint256 nonce,uint64 deadline)")
RESUME_TYPEHASH = keccak(b"ResumeConsent(bytes32 grantId,uint256 nonce,uint64 deadline)")
ACCESS_TYPEHASH = keccak(
    b"AccessRequest(bytes32 grantId,uint64 fieldsMask,uint256 nonce,uint64 deadline)"
)
ACTION_TYPEHASHES = {"revoke": REVOKE_TYPEHASH, "pause": PAUSE_TYPEHASH, "resume": RESUME_TYPEHASH}


def ledger_domain(chain_id: int, ledger: str) -> bytes:
    return keccak(
        DOMAIN_TYPEHASH
        + keccak(LEDGER_NAME.encode())
        + keccak(LEDGER_VERSION.encode())
        + encode(["uint256", "address"], [chain_id, ledger])
    )


def _typed(domain: bytes, struct_hash: bytes) -> bytes:
    return keccak(b"\x19\x01" + domain + struct_hash)


def grant_digest(
    domain: bytes,
    *,
    asset_id: bytes,
    grantee: str,
    purpose: int,
    fields_mask: int,
    not_before: int,
    expiry: int,
    max_uses: int,
    nonce: int,
    deadline: int,
) -> bytes:
    struct = keccak(
        GRANT_TYPEHASH
        + encode(
            [
                "bytes32",
                "address",
                "uint32",
                "uint64",
                "uint64",
                "uint64",
                "uint32",
                "uint256",
                "uint64",
            ],
            [
                asset_id,
                grantee,
                purpose,
                fields_mask,
                not_before,
                expiry,
                max_uses,
                nonce,
                deadline,
            ],
        )
    )
    return _typed(domain, struct)


def action_digest(domain: bytes, action: str, grant_id: bytes, nonce: int, deadline: int) -> bytes:
    struct = keccak(
        ACTION_TYPEHASHES[action]
        + encode(["bytes32", "uint256", "uint64"], [grant_id, nonce, deadline])
    )
    return _typed(domain, struct)


def access_digest(
    domain: bytes, grant_id: bytes, fields_mask: int, nonce: int, deadline: int
) -> bytes:
    struct = keccak(
        ACCESS_TYPEHASH
        + encode(
            ["bytes32", "uint64", "uint256", "uint64"], [grant_id, fields_mask, nonce, deadline]
        )
    )
    return _typed(domain, struct)


def grant_id_of(grantor: str, nonce: int) -> bytes:
    return keccak(encode(["address", "uint256"], [grantor, nonce]))


__all__ = [
    "access_digest",
    "action_digest",
    "grant_digest",
    "grant_id_of",
    "ledger_domain",
    "recover",
    "sign_digest",
]
