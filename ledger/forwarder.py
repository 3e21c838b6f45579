"""The ERC-2771 forwarder: citizens' signed calls the service relays and pays for.

A citizen signs an EIP-712 ``ForwardRequest`` (domain "DataSafeForwarder", "1", the
forwarder's address); anyone may submit it to ``DataSafeForwarder.execute``, which
calls the ledger with the signer appended. The ledger reads that sender only for the
calls listed in :data:`FORWARDABLE` (dispute, agents). The forwarder has no
immutables, so its runtime code hash is a build constant: :func:`check_forwarder`
compares the chain's code with this build's artifact, trusting no service.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_hash.auto import keccak

from ledger.abi import LedgerAbi, ledger_abi
from ledger.address import to_checksum_address
from ledger.artifacts import FORWARDER_CONTRACT, load_artifact
from ledger.eip712 import TYPES as LEDGER_TYPES
from ledger.eip712 import Domain, abi_encode, recover, sign_digest
from ledger.errors import LedgerError
from ledger.rpc import RpcClient

NAME = "DataSafeForwarder"
VERSION = "1"
#: Ledger functions that read the ERC-2771 sender; the service relays no other.
FORWARDABLE: frozenset[str] = frozenset(
    {"disputeAsset", "addAgent", "removeAgent", "setApprovalThreshold"}
)

_REQUEST_TYPE = "ForwardRequest(address from,address to,uint256 nonce,uint64 deadline,bytes data)"
TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": LEDGER_TYPES["EIP712Domain"],
    "ForwardRequest": [
        {"name": "from", "type": "address"},
        {"name": "to", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint64"},
        {"name": "data", "type": "bytes"},
    ],
}


class ForwarderError(LedgerError):
    """A forward request that is malformed or badly signed, or a forwarder that is not ours."""

    def __init__(self, message: str, *, code: str = "forwarder_invalid") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ForwardRequest:
    sender: str
    to: str
    nonce: int
    deadline: int
    data: bytes

    def as_tuple(self) -> tuple[str, str, int, int, bytes]:
        return (
            to_checksum_address(self.sender),
            to_checksum_address(self.to),
            self.nonce,
            self.deadline,
            self.data,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "from": to_checksum_address(self.sender),
            "to": to_checksum_address(self.to),
            "nonce": self.nonce,
            "deadline": self.deadline,
            "data": "0x" + self.data.hex(),
        }

    @property
    def message(self) -> dict[str, Any]:
        """The EIP-712 message (for ``eth_signTypedData_v4`` and the reference digest)."""
        return self.to_json() | {"data": self.data}


def forwarder_address(ledger: str) -> str:
    """The forwarder: the first contract the ledger's constructor creates (CREATE, nonce 1)."""
    raw = bytes.fromhex(to_checksum_address(ledger)[2:])
    return to_checksum_address(keccak(b"\xd6\x94" + raw + b"\x01")[12:])


@lru_cache(maxsize=1)
def forwarder_abi() -> LedgerAbi:
    return ledger_abi(load_artifact(FORWARDER_CONTRACT))


@lru_cache(maxsize=1)
def forwarder_code_hash() -> str:
    """keccak256 of the forwarder's runtime code in this build (no immutables: every deployment)."""
    return load_artifact(FORWARDER_CONTRACT).deployed_code_hash


def domain_separator(chain_id: int, forwarder: str) -> bytes:
    return Domain(chain_id, forwarder, NAME, VERSION).separator


def request_digest(chain_id: int, forwarder: str, request: ForwardRequest) -> bytes:
    sender, to, nonce, deadline, data = request.as_tuple()
    struct = abi_encode(
        ["bytes32", "address", "address", "uint256", "uint64", "bytes32"],
        [keccak(_REQUEST_TYPE.encode()), sender, to, nonce, deadline, keccak(data)],
    )
    return keccak(b"\x19\x01" + domain_separator(chain_id, forwarder) + keccak(struct))


def typed_data(chain_id: int, forwarder: str, request: ForwardRequest) -> dict[str, Any]:
    """The full EIP-712 document, as a hardware wallet would be asked to sign it."""
    return {
        "types": TYPES,
        "primaryType": "ForwardRequest",
        "domain": {
            "name": NAME,
            "version": VERSION,
            "chainId": chain_id,
            "verifyingContract": to_checksum_address(forwarder),
        },
        "message": request.message,
    }


def sign_request(
    private_key: bytes, chain_id: int, forwarder: str, request: ForwardRequest
) -> bytes:
    return sign_digest(private_key, request_digest(chain_id, forwarder, request))


def request_signer(chain_id: int, forwarder: str, request: ForwardRequest, signature: bytes) -> str:
    """The address that signed ``request``; :class:`ForwarderError` for a malformed signature."""
    try:
        return recover(request_digest(chain_id, forwarder, request), signature)
    except Exception as exc:  # eth-keys' BadSignature family, LedgerError
        raise ForwarderError(f"unreadable forward signature: {exc}") from exc


def forwardable_function(data: bytes) -> str:
    """The ledger function ``data`` calls, if it is one the forwarder may carry."""
    abi = ledger_abi()
    for name in FORWARDABLE:
        if data[:4] == abi.fn(name).selector:
            abi.fn(name).decode_input(data)  # well-formed, or LedgerError
            return name
    raise ForwarderError(
        "only disputeAsset, addAgent and removeAgent are relayed through the forwarder",
        code="forwarder_not_allowed",
    )


def encode_execute(request: ForwardRequest, signature: bytes) -> bytes:
    return forwarder_abi().fn("execute").encode(request.as_tuple(), signature)


def _call(rpc: RpcClient, to: str, data: bytes, block: str) -> bytes:
    raw = rpc.call("eth_call", [{"to": to_checksum_address(to), "data": "0x" + data.hex()}, block])
    return bytes.fromhex(str(raw).removeprefix("0x"))


def read_forwarder(rpc: RpcClient, ledger: str, expected_code_hash: str | None = None) -> str:
    """The ledger's forwarder, checked on the chain behind ``rpc`` (never taken from a service).

    The address follows from the ledger's; the ledger must trust it, it must run this
    build's forwarder code (or the pinned one) and name the ledger as its only target.
    """
    forwarder = forwarder_address(ledger)
    trusted = ledger_abi().fn("isTrustedForwarder")
    (ok,) = trusted.decode_output(_call(rpc, ledger, trusted.encode(forwarder), "latest"))
    if not ok:
        raise ForwarderError(
            f"the ledger at {ledger} does not trust {forwarder} (a ledger without a forwarder?)",
            code="forwarder_mismatch",
        )
    check_forwarder(rpc, forwarder, expected_code_hash)
    spec = forwarder_abi().fn("ledger")
    (target,) = spec.decode_output(_call(rpc, forwarder, spec.selector, "latest"))
    if str(target).lower() != ledger.lower():
        raise ForwarderError(
            f"the forwarder at {forwarder} serves {target}", code="forwarder_mismatch"
        )
    return forwarder


def read_nonce(rpc: RpcClient, forwarder: str, sender: str, block: str = "latest") -> int:
    spec = forwarder_abi().fn("nonces")
    (nonce,) = spec.decode_output(
        _call(rpc, forwarder, spec.encode(to_checksum_address(sender)), block)
    )
    return int(nonce)


def check_forwarder(rpc: RpcClient, forwarder: str, expected_code_hash: str | None = None) -> None:
    """Refuse a forwarder whose runtime code is not this build's (or the pinned) forwarder."""
    code = str(rpc.call("eth_getCode", [to_checksum_address(forwarder), "latest"]))
    actual = "no code"
    if code not in ("", "0x"):
        actual = "0x" + keccak(bytes.fromhex(code.removeprefix("0x"))).hex()
    wanted = (expected_code_hash or forwarder_code_hash()).lower()
    if actual != wanted:
        raise ForwarderError(
            f"the ledger's forwarder at {forwarder} runs other code ({actual}, expected {wanted})",
            code="forwarder_mismatch",
        )


__all__ = [
    "FORWARDABLE",
    "ForwardRequest",
    "ForwarderError",
    "check_forwarder",
    "domain_separator",
    "encode_execute",
    "forwardable_function",
    "forwarder_abi",
    "forwarder_address",
    "forwarder_code_hash",
    "read_forwarder",
    "read_nonce",
    "request_digest",
    "request_signer",
    "sign_request",
    "typed_data",
]
