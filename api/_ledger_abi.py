"""The few ``IDataSafeLedger`` calls the service makes or checks, encoded with eth-abi.

Only selectors and argument types (from ``contracts/src/interfaces``); the
hot-path reads are encoded here by hand because building a web3 contract call
per request costs more than the call itself. Revert data is decoded with the
ledger package's error registry (see :mod:`api._translate`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from eth_abi.abi import decode, encode
from eth_hash.auto import keccak

TERMS = "(bytes32,address,uint32,uint64,uint64,uint64,uint32)"
ACCESS_REQUEST = "(bytes32,uint64,uint256,uint64)"


@dataclass(frozen=True)
class Fn:
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...] = ()

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.inputs)})"

    @cached_property
    def selector(self) -> bytes:
        return keccak(self.signature.encode())[:4]

    def encode(self, *args: Any) -> bytes:
        return self.selector + encode(list(self.inputs), list(args))

    def decode_input(self, data: bytes) -> tuple[Any, ...]:
        if data[:4] != self.selector:
            raise ValueError(f"not a {self.name} call")
        return tuple(decode(list(self.inputs), data[4:]))

    def decode_output(self, data: bytes) -> tuple[Any, ...]:
        return tuple(decode(list(self.outputs), data))


ANCHOR_ASSET = Fn("anchorAsset", ("bytes32", "address", "bytes32", "bytes32", "bytes32"))
SUPERSEDE_ASSET = Fn("supersedeAsset", ("bytes32", "bytes32", "bytes32", "bytes32"))
DISPUTE_ASSET = Fn("disputeAsset", ("bytes32", "bytes32"))
RESOLVE_DISPUTE = Fn("resolveDispute", ("bytes32", "bytes32"))
RETIRE_ASSET = Fn("retireAsset", ("bytes32", "bytes32"))
REGISTER_SCHEMA = Fn("registerSchema", ("bytes32", "uint16", "bytes32"))
ROTATE_KEY = Fn("rotateEncryptionKey", ("bytes32",))
GRANT_BY_SIG = Fn("grantBySig", (f"({TERMS},address,uint256,uint64,bytes)",), ("bytes32",))
REVOKE_BY_SIG = Fn("revokeBySig", ("bytes32", "address", "uint64", "bytes"))
PAUSE_BY_SIG = Fn("pauseBySig", ("bytes32", "address", "uint64", "bytes"))
RESUME_BY_SIG = Fn("resumeBySig", ("bytes32", "address", "uint64", "bytes"))
RECORD_ACCESS_BATCH = Fn("recordAccessBatch", (f"{ACCESS_REQUEST}[]", "bytes[]"), ("uint8[]",))
CHECK = Fn("check", ("bytes32", "address", "uint64"), ("bool", "uint8"))
GET_GRANT = Fn(
    "getGrant",
    ("bytes32",),
    ("(bytes32,address,uint32,uint64,uint64,uint64,uint32,uint32,uint8)",),
)
GET_ASSET = Fn(
    "getAsset",
    ("bytes32",),
    ("(address,uint8,uint32,address,bytes32,bytes32,bytes32,bytes32,bytes32)",),
)
GET_SCHEMA = Fn("getSchema", ("bytes32",), ("(address,uint16,uint64,bytes32)",))
HASH_ACCESS_REQUEST = Fn("hashAccessRequest", (ACCESS_REQUEST,), ("bytes32",))
NONCES = Fn("nonces", ("address",), ("uint256",))
IS_AGENT = Fn("isAgent", ("address", "address"), ("bool",))


def topic(signature: str) -> str:
    return "0x" + keccak(signature.encode()).hex()


ACCESSED = topic("Accessed(bytes32,address,address,uint64,uint32,uint256)")
ACCESS_REFUSED = topic("AccessRefused(bytes32,address,address,uint8,uint256)")
CONSENT_GRANTED = topic(
    f"ConsentGranted(bytes32,bytes32,address,address,address,{TERMS},uint256,uint64)"
)

ASSET_STATUS = ("none", "active", "disputed", "superseded", "retired")
GRANT_STATUS = ("none", "active", "paused", "revoked")

#: ``check`` reason codes (IConsents) -> problem slug and words.
REASONS: dict[int, tuple[str, str]] = {
    0: ("ok", "allowed"),
    1: ("grant_not_found", "no such grant"),
    2: ("not_grantee", "the grant was not made to this institution"),
    3: ("grant_revoked", "the subject revoked the grant"),
    4: ("grant_paused", "the subject paused the grant"),
    5: ("grant_expired", "the grant has expired"),
    6: ("grant_not_yet_valid", "the grant is not valid yet"),
    7: ("uses_exhausted", "the grant's uses are exhausted"),
    8: ("grantee_suspended", "the institution is suspended"),
    9: ("asset_disputed", "the subject disputes the asset"),
    10: ("asset_retired", "the issuer retired the asset"),
    11: ("asset_superseded", "a newer version of the asset exists"),
    12: ("fields_not_granted", "the grant does not cover the requested fields"),
    13: ("request_signature_expired", "the access request's deadline has passed"),
    14: ("request_signature_invalid", "the access request signature is invalid"),
    15: ("access_nonce_used", "the access request nonce was already used"),
}
