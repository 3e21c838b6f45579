"""The signed request envelope against eth-account's reference EIP-712 encoder."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from hypothesis import given, settings
from hypothesis import strategies as st

from api.envelope import (
    DOMAIN_NAME,
    DOMAIN_VERSION,
    Envelope,
    EnvelopeError,
    address_of,
    body_digest,
    domain_separator,
    recover,
    request_digest,
    sign_request,
)

KEY = bytes.fromhex("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
LEDGER = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def reference_digest(
    chain_id: int, method: str, path: str, body: bytes, ts: int, nonce: bytes
) -> bytes:
    msg = encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Request": [
                    {"name": "method", "type": "string"},
                    {"name": "path", "type": "string"},
                    {"name": "bodyDigest", "type": "bytes32"},
                    {"name": "timestamp", "type": "uint64"},
                    {"name": "nonce", "type": "bytes32"},
                ],
            },
            "primaryType": "Request",
            "domain": {
                "name": DOMAIN_NAME,
                "version": DOMAIN_VERSION,
                "chainId": chain_id,
                "verifyingContract": LEDGER,
            },
            "message": {
                "method": method,
                "path": path,
                "bodyDigest": body_digest(body),
                "timestamp": ts,
                "nonce": nonce,
            },
        }
    )
    from eth_account.messages import _hash_eip191_message

    return bytes(_hash_eip191_message(msg))


@settings(max_examples=25, deadline=None)
@given(
    chain_id=st.integers(1, 2**40),
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    path=st.text(min_size=1, max_size=40),
    body=st.binary(max_size=64),
    ts=st.integers(0, 2**64 - 1),
    nonce=st.binary(min_size=32, max_size=32),
)
def test_digest_matches_eth_account(
    chain_id: int, method: str, path: str, body: bytes, ts: int, nonce: bytes
) -> None:
    ours = request_digest(
        domain_separator(chain_id, LEDGER), method, path, body_digest(body), ts, nonce
    )
    assert ours == reference_digest(chain_id, method, path, body, ts, nonce)


def test_signature_is_what_eth_account_produces_and_recovers() -> None:
    nonce = bytes(range(32))
    env = sign_request(
        KEY,
        chain_id=31337,
        ledger_address=LEDGER,
        method="POST",
        path="/v1/x?a=1",
        body=b"{}",
        timestamp=1_700_000_000,
        nonce=nonce,
    )
    digest = reference_digest(31337, "POST", "/v1/x?a=1", b"{}", 1_700_000_000, nonce)
    theirs = Account._sign_hash(digest, KEY)
    assert env.signature == bytes(theirs.signature)
    assert recover(digest, env.signature) == Account.from_key(KEY).address == env.signer
    assert address_of(KEY) == env.signer


def test_wrong_chain_id_recovers_someone_else() -> None:
    env = sign_request(KEY, chain_id=1, ledger_address=LEDGER, method="GET", path="/v1/whoami")
    digest = request_digest(
        domain_separator(31337, LEDGER),
        "GET",
        "/v1/whoami",
        body_digest(b""),
        env.timestamp,
        env.nonce,
    )
    assert recover(digest, env.signature) != env.signer


def test_high_s_signature_is_rejected() -> None:
    env = sign_request(KEY, chain_id=1, ledger_address=LEDGER, method="GET", path="/")
    digest = request_digest(
        domain_separator(1, LEDGER), "GET", "/", body_digest(b""), env.timestamp, env.nonce
    )
    r, s, v = env.signature[:32], int.from_bytes(env.signature[32:64], "big"), env.signature[64]
    flipped = r + (_N - s).to_bytes(32, "big") + bytes([55 - v])  # 27 <-> 28
    with pytest.raises(EnvelopeError, match="canonical"):
        recover(digest, flipped)


@pytest.mark.parametrize(
    "signature",
    [b"", b"\x00" * 64, b"\x01" * 64 + b"\x05", b"\x00" * 65],
)
def test_malformed_signatures_are_rejected(signature: bytes) -> None:
    with pytest.raises(EnvelopeError):
        recover(b"\x11" * 32, signature)


def test_headers_roundtrip_and_partial_headers_rejected() -> None:
    env = sign_request(KEY, chain_id=1, ledger_address=LEDGER, method="GET", path="/")
    headers = env.to_headers()
    assert Envelope.from_headers(headers) == env
    assert Envelope.from_headers({}) is None
    headers.pop("X-DataSafe-Nonce")
    with pytest.raises(EnvelopeError):
        Envelope.from_headers(headers)
    bad = env.to_headers() | {"X-DataSafe-Nonce": "0x1234"}
    with pytest.raises(EnvelopeError):
        Envelope.from_headers(bad)
