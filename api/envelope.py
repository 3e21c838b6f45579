"""The signed request envelope: an EIP-712 ``Request`` bound to chain and ledger.

Every privileged HTTP call carries four headers::

    X-DataSafe-Signer:    0x-address of the member key that signed
    X-DataSafe-Timestamp: unix seconds when the request was signed
    X-DataSafe-Nonce:     0x + 64 hex, random per request
    X-DataSafe-Signature: 0x + 130 hex, (r, s, v) over the EIP-712 digest of

    Request(string method,string path,bytes32 bodyDigest,uint64 timestamp,bytes32 nonce)

in the domain ``{name: "DataSafe API", version: "1", chainId, verifyingContract:
ledger}``. ``path`` is the request target as sent (percent-encoded path plus
``?query`` if any), ``bodyDigest`` is keccak-256 of the exact body bytes (of
``b""`` when there is none). The domain name differs from the ledger
contract's, so a signed API request can never be replayed as a contract message.

Hashing and recovery use coincurve directly: eth-account's recovery is an
order of magnitude slower and would bound the service's throughput.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import coincurve
from eth_hash.auto import keccak

from ledger.address import to_checksum_address

DOMAIN_NAME = "DataSafe API"
DOMAIN_VERSION = "1"
REQUEST_TYPE = (
    "Request(string method,string path,bytes32 bodyDigest,uint64 timestamp,bytes32 nonce)"
)
DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
REQUEST_TYPEHASH = keccak(REQUEST_TYPE.encode())
DOMAIN_TYPEHASH = keccak(DOMAIN_TYPE.encode())

HEADER_SIGNER = "X-DataSafe-Signer"
HEADER_TIMESTAMP = "X-DataSafe-Timestamp"
HEADER_NONCE = "X-DataSafe-Nonce"
HEADER_SIGNATURE = "X-DataSafe-Signature"

_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = _SECP256K1_N // 2
_UINT64_MAX = 2**64 - 1


class EnvelopeError(ValueError):
    """A malformed envelope or signature (mapped to ``bad_signature`` / ``unauthenticated``)."""


def _addr_bytes(address: str) -> bytes:
    raw = address[2:] if address[:2] in ("0x", "0X") else address
    if len(raw) != 40:
        raise EnvelopeError(f"not an address: {address!r}")
    try:
        return bytes.fromhex(raw)
    except ValueError as exc:
        raise EnvelopeError(f"not an address: {address!r}") from exc


def domain_separator(chain_id: int, verifying_contract: str) -> bytes:
    return keccak(
        DOMAIN_TYPEHASH
        + keccak(DOMAIN_NAME.encode())
        + keccak(DOMAIN_VERSION.encode())
        + chain_id.to_bytes(32, "big")
        + _addr_bytes(verifying_contract).rjust(32, b"\0")
    )


_EMPTY_DIGEST = keccak(b"")


def body_digest(body: bytes) -> bytes:
    return keccak(body) if body else _EMPTY_DIGEST


@lru_cache(maxsize=4096)
def _string_hash(value: str) -> bytes:
    """keccak of short strings that repeat (methods, paths without ids)."""
    return keccak(value.encode())


@lru_cache(maxsize=65536)
def checksum(address_lower_hex: str) -> str:
    return str(to_checksum_address(address_lower_hex))


def request_digest(
    domain_sep: bytes,
    method: str,
    path: str,
    body_hash: bytes,
    timestamp: int,
    nonce: bytes,
) -> bytes:
    if len(body_hash) != 32 or len(nonce) != 32:
        raise EnvelopeError("bodyDigest and nonce must be 32 bytes")
    if not 0 <= timestamp <= _UINT64_MAX:
        raise EnvelopeError("timestamp out of range")
    struct_hash = keccak(
        REQUEST_TYPEHASH
        + _string_hash(method.upper())
        + (_string_hash(path) if len(path) < 64 else keccak(path.encode()))
        + body_hash
        + timestamp.to_bytes(32, "big")
        + nonce
    )
    return keccak(b"\x19\x01" + domain_sep + struct_hash)


def sign_digest(private_key: bytes, digest: bytes) -> bytes:
    """65-byte Ethereum signature ``r ‖ s ‖ v`` with ``v`` in {27, 28}."""
    sig = coincurve.PrivateKey(private_key).sign_recoverable(digest, hasher=None)
    return sig[:64] + bytes([sig[64] + 27])


def recover(digest: bytes, signature: bytes) -> str:
    """Checksummed address that signed ``digest``; rejects malleable (high-s) signatures."""
    if len(signature) != 65:
        raise EnvelopeError("signature must be 65 bytes")
    # Only the documented form (docs/api.md): v in {27, 28}. 0/1, EIP-155 or any other byte
    # would be a second spelling of the same signature.
    if signature[64] not in (27, 28):
        raise EnvelopeError("signature v must be 27 or 28")
    v = signature[64] - 27
    s = int.from_bytes(signature[32:64], "big")
    if not 0 < s <= _HALF_N:
        raise EnvelopeError("signature s is not canonical (EIP-2)")
    try:
        pub = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v]), digest, hasher=None
        )
    except Exception as exc:  # coincurve raises bare Exception/ValueError
        raise EnvelopeError("signature does not recover to a key") from exc
    return checksum("0x" + keccak(pub.format(compressed=False)[1:])[12:].hex())


def address_of(private_key: bytes) -> str:
    pub = coincurve.PrivateKey(private_key).public_key.format(compressed=False)[1:]
    return to_checksum_address(keccak(pub)[12:])


@dataclass(frozen=True, slots=True)
class Envelope:
    signer: str
    timestamp: int
    nonce: bytes
    signature: bytes

    def to_headers(self) -> dict[str, str]:
        return {
            HEADER_SIGNER: self.signer,
            HEADER_TIMESTAMP: str(self.timestamp),
            HEADER_NONCE: "0x" + self.nonce.hex(),
            HEADER_SIGNATURE: "0x" + self.signature.hex(),
        }

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Envelope | None:
        """Parse the four headers; ``None`` when none is present."""
        get = headers.get
        values = [get(h) for h in (HEADER_SIGNER, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)]
        if all(v is None for v in values):
            return None
        if any(v is None for v in values):
            raise EnvelopeError("all four X-DataSafe-* headers are required")
        signer, ts, nonce, sig = (str(v) for v in values)
        try:
            timestamp = int(ts)
            nonce_b = bytes.fromhex(nonce.removeprefix("0x"))
            sig_b = bytes.fromhex(sig.removeprefix("0x"))
        except ValueError as exc:
            raise EnvelopeError("malformed X-DataSafe-* header") from exc
        if len(nonce_b) != 32:
            raise EnvelopeError("nonce must be 32 bytes")
        _addr_bytes(signer)
        return cls(signer=signer, timestamp=timestamp, nonce=nonce_b, signature=sig_b)


def sign_request(
    private_key: bytes,
    *,
    chain_id: int,
    ledger_address: str,
    method: str,
    path: str,
    body: bytes = b"",
    timestamp: int | None = None,
    nonce: bytes | None = None,
) -> Envelope:
    """Client side: the envelope for one request (fresh random nonce by default)."""
    ts = int(time.time()) if timestamp is None else timestamp
    n = secrets.token_bytes(32) if nonce is None else nonce
    digest = request_digest(
        domain_separator(chain_id, ledger_address), method, path, body_digest(body), ts, n
    )
    return Envelope(
        signer=address_of(private_key),
        timestamp=ts,
        nonce=n,
        signature=sign_digest(private_key, digest),
    )
