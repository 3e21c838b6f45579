"""Proof of possession of an HPKE key: known answers, round trips and every refusal."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from vault.errors import KeyProofError, MalformedInputError
from vault.keyproof import (
    PROOF_LEN,
    _montgomery_u,
    key_proof_valid,
    make_key_proof,
    verify_key_proof,
)
from vault.keys import EncryptionKeyPair, PublicEncryptionKey, Suite

# RFC 8032 section 7.1, TEST 1.
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
CTX = {"chain_id": 31337, "ledger": "0x" + "11" * 20, "account": "0x" + "22" * 20}
# Regression vector: the proof for the RFC 8032 seed in CTX (Ed25519 is deterministic).
PROOF_KAT = bytes.fromhex(
    "44534b5001d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a8f3e2625022d"
    "0529c4e114e46385d1ee5d0ba2d2cf21eddee4984eb7f3701863fe48c9f431d5b296f848b24098f1fd8a67"
    "56a375baeb93190be41a051ed3ad03"
)


def test_birational_map_sends_the_ed25519_base_point_to_u_9() -> None:
    # RFC 7748 4.1: the Edwards base point (y = 4/5) is the Montgomery base point u = 9.
    base = bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666")
    assert _montgomery_u(base) == (9).to_bytes(32, "little")


def test_x25519_key_of_an_ed25519_seed_is_the_montgomery_form_of_its_public_key() -> None:
    assert (
        ed25519.Ed25519PrivateKey.from_private_bytes(RFC8032_SEED).public_key().public_bytes_raw()
        == RFC8032_PUBLIC
    )
    kp = EncryptionKeyPair(Suite.X25519_HKDF_SHA256_AES256GCM, RFC8032_SEED, proof_seed=True)
    assert kp.public_key.raw == _montgomery_u(RFC8032_PUBLIC)
    assert make_key_proof(kp, **CTX) == PROOF_KAT
    verify_key_proof(kp.public_key, PROOF_KAT, **CTX)


@pytest.mark.parametrize("suite", list(Suite))
def test_proof_round_trips_and_survives_the_private_encoding(suite: Suite) -> None:
    kp = EncryptionKeyPair.generate(suite)
    again = EncryptionKeyPair.from_private_bytes(kp.private_bytes())
    assert kp.private_bytes()[4] == 2
    assert again.public_key == kp.public_key
    proof = make_key_proof(again, **CTX)
    assert len(proof) == PROOF_LEN
    assert proof == make_key_proof(kp, **CTX)
    verify_key_proof(kp.public_key, proof, **CTX)
    assert key_proof_valid(kp.public_key.to_bytes(), proof, **CTX)
    wrapped = kp.public_key.wrap(b"k" * 32, b"info")
    assert again.unwrap(wrapped, b"info") == b"k" * 32


@pytest.mark.parametrize(
    "change",
    [
        {"chain_id": 1},
        {"ledger": "0x" + "33" * 20},
        {"account": "0x" + "44" * 20},
    ],
)
def test_proof_names_its_chain_ledger_and_account(change: dict[str, object]) -> None:
    kp = EncryptionKeyPair.generate()
    proof = make_key_proof(kp, **CTX)
    with pytest.raises(KeyProofError):
        verify_key_proof(kp.public_key, proof, **(CTX | change))  # type: ignore[arg-type]


def test_proof_of_one_key_does_not_prove_another() -> None:
    kp, other = EncryptionKeyPair.generate(), EncryptionKeyPair.generate()
    with pytest.raises(KeyProofError, match="X25519 half"):
        verify_key_proof(other.public_key, make_key_proof(kp, **CTX), **CTX)
    # the hybrid key's ML-KEM half is covered too (the message signs the whole key's hash)
    hybrid = EncryptionKeyPair.generate(Suite.MLKEM768X25519_HKDF_SHA256_AES256GCM)
    swapped = PublicEncryptionKey(
        hybrid.suite,
        EncryptionKeyPair.generate(hybrid.suite).public_key.raw[:-32]
        + hybrid.public_key.x25519_raw,
    )
    with pytest.raises(KeyProofError, match="does not verify"):
        verify_key_proof(swapped, make_key_proof(hybrid, **CTX), **CTX)


@pytest.mark.parametrize(
    ("mangle", "match"),
    [
        (lambda p: p[:-1], "malformed"),
        (lambda p: b"XXXX" + p[4:], "malformed"),
        (lambda p: p[:4] + b"\x02" + p[5:], "version"),
        (lambda p: p[:-1] + bytes([p[-1] ^ 1]), "does not verify"),
        (lambda p: p[:40] + bytes([p[40] ^ 1]) + p[41:], "does not verify"),
    ],
)
def test_tampered_proofs_are_refused(mangle: object, match: str) -> None:
    kp = EncryptionKeyPair.generate()
    proof = mangle(make_key_proof(kp, **CTX))  # type: ignore[operator]
    with pytest.raises(KeyProofError, match=match):
        verify_key_proof(kp.public_key, proof, **CTX)
    assert not key_proof_valid(kp.public_key.to_bytes(), proof, **CTX)


def test_low_order_key_cannot_be_proven() -> None:
    # y = p - 1 maps to u = 0, a point of small order: anyone could "sign" for it.
    y = (2**255 - 19 - 1).to_bytes(32, "little")
    zero_key = PublicEncryptionKey(Suite.X25519_HKDF_SHA256_AES256GCM, _montgomery_u(y))
    proof = b"DSKP\x01" + y + b"\x00" * 64
    with pytest.raises(KeyProofError):
        verify_key_proof(zero_key, proof, **CTX)


def test_legacy_key_opens_data_but_cannot_prove() -> None:
    raw = x25519.X25519PrivateKey.generate().private_bytes_raw()
    legacy = EncryptionKeyPair.from_private_bytes(b"DSSK\x01\x01" + raw)
    assert legacy.proof_seed is None
    assert legacy.private_bytes()[4] == 1
    with pytest.raises(KeyProofError, match="generate a new key"):
        make_key_proof(legacy, **CTX)


def test_bad_context_and_key_bytes_are_typed() -> None:
    kp = EncryptionKeyPair.generate()
    with pytest.raises(MalformedInputError):
        make_key_proof(kp, chain_id=1, ledger="0x1234", account=CTX["account"])  # type: ignore[arg-type]
    assert not key_proof_valid(b"not a key", make_key_proof(kp, **CTX), **CTX)  # type: ignore[arg-type]
