"""Merkle construction: the fixed vector of docs/wire-format.md, proofs, tampering."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.errors import MalformedInputError, TamperedProofError
from vault.merkle import (
    MerkleProof,
    commitment,
    leaf_hash,
    merkle_root,
    node_hash,
    prove,
    root_from_proof,
    verify_proof,
)

VECTOR_FIELDS = [("name", b"Alice"), ("dob", b"1990-01-01"), ("city", b"Shenzhen")]
VECTOR_COMMITMENTS = [
    "cc84a5a3a2055999792db87246a1cb6ef367fe28fa86e8d424b2161e8e8f3b90",
    "24d2fb688ccbe7eb2b31ef8bd57eb2d99ef7f40f1fac64d6ea24e3bbdb533d7c",
    "72716247d2319cda1517d6f3765883ec51effdded6ee880886f96bbc3196a6f3",
]
VECTOR_TOP = "36e0ab150b7cfb47b373582032fabaa46da8af77effa04b72ae204cc79b358b3"
VECTOR_ROOT = "c23c96191d826e5c52fb5f69c4572b3873db18cb8129c97cdf9432ba4d9a4a76"


def _sha(*parts: bytes) -> bytes:
    return hashlib.sha256(b"".join(parts)).digest()


def test_fixed_vector_matches_docs_and_an_independent_computation() -> None:
    cs = []
    for i, (name, value) in enumerate(VECTOR_FIELDS):
        salt = bytes([i + 1]) * 32
        expected = _sha(
            salt,
            len(name).to_bytes(4, "big"),
            name.encode(),
            len(value).to_bytes(4, "big"),
            value,
        )
        c = commitment(salt, name, value)
        assert c == expected
        assert c.hex() == VECTOR_COMMITMENTS[i]
        cs.append(c)
    leaves = [_sha(b"\x00", c) for c in cs]
    top = _sha(b"\x01", _sha(b"\x01", leaves[0], leaves[1]), leaves[2])
    assert top.hex() == VECTOR_TOP
    independent_root = _sha(b"\x02", (3).to_bytes(4, "big"), top)
    assert merkle_root(cs) == independent_root
    assert merkle_root(cs).hex() == VECTOR_ROOT


def test_single_leaf_and_empty_tree() -> None:
    c = b"\x07" * 32
    assert merkle_root([c]) == hashlib.sha256(b"\x02\x00\x00\x00\x01" + leaf_hash(c)).digest()
    assert prove([c], 0) == MerkleProof(0, 1, ())
    with pytest.raises(MalformedInputError):
        merkle_root([])
    with pytest.raises(MalformedInputError):
        prove([c], 1)


def test_leaf_and_node_are_domain_separated() -> None:
    a, b = b"\x01" * 32, b"\x02" * 32
    # a two-leaf tree's root must differ from a one-leaf tree whose commitment is the node input
    two = hashlib.sha256(b"\x02\x00\x00\x00\x02" + node_hash(leaf_hash(a), leaf_hash(b)))
    assert merkle_root([a, b]) == two.digest()
    assert merkle_root([leaf_hash(a) + leaf_hash(b)]) != merkle_root([a, b])


def test_a_proof_cannot_claim_another_position_in_another_shape() -> None:
    # Without binding the leaf count, leaf 2 of 3 (promoted) would verify as leaf 1 of 2.
    cs = [bytes([i]) * 32 for i in range(3)]
    root = merkle_root(cs)
    n01 = node_hash(leaf_hash(cs[0]), leaf_hash(cs[1]))
    verify_proof(root, cs[2], MerkleProof(2, 3, (n01,)))
    with pytest.raises(TamperedProofError):
        verify_proof(root, cs[2], MerkleProof(1, 2, (n01,)))


def test_salt_length_enforced() -> None:
    with pytest.raises(MalformedInputError):
        commitment(b"short", "n", b"v")


def test_commitment_encoding_is_unambiguous() -> None:
    salt = b"\x00" * 32
    assert commitment(salt, "ab", b"c") != commitment(salt, "a", b"bc")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40, unique=True),
    st.data(),
)
def test_every_proof_verifies_and_any_flip_fails(cs: list[bytes], data: st.DataObject) -> None:
    root = merkle_root(cs)
    for i, c in enumerate(cs):
        verify_proof(root, c, prove(cs, i))
    i = data.draw(st.integers(0, len(cs) - 1))
    proof = prove(cs, i)
    # flip a bit in the commitment, a sibling, the root, or move the index
    what = data.draw(st.sampled_from(["commitment", "sibling", "root", "index", "count"]))
    bit = data.draw(st.integers(0, 255))
    c, r = cs[i], root
    if what == "commitment":
        c = _flip(c, bit)
    elif what == "root":
        r = _flip(r, bit)
    elif what == "sibling" and proof.siblings:
        j = data.draw(st.integers(0, len(proof.siblings) - 1))
        sibs = list(proof.siblings)
        sibs[j] = _flip(sibs[j], bit)
        proof = MerkleProof(proof.index, proof.leaf_count, tuple(sibs))
    elif what == "index" and len(cs) > 1:
        proof = MerkleProof((proof.index + 1) % len(cs), proof.leaf_count, proof.siblings)
    elif what == "count":
        proof = MerkleProof(proof.index, proof.leaf_count + 1, proof.siblings)
    else:
        return  # a one-leaf tree has no sibling or other index to tamper with
    with pytest.raises(TamperedProofError):
        verify_proof(r, c, proof)


def test_proof_length_is_checked() -> None:
    cs = [bytes([i]) * 32 for i in range(5)]
    p = prove(cs, 1)
    with pytest.raises(TamperedProofError):
        root_from_proof(cs[1], MerkleProof(1, 5, p.siblings[:-1]))
    with pytest.raises(TamperedProofError):
        root_from_proof(cs[1], MerkleProof(1, 5, (*p.siblings, b"\x00" * 32)))
    with pytest.raises(TamperedProofError):
        root_from_proof(cs[1], MerkleProof(7, 5, p.siblings))
    with pytest.raises(TamperedProofError):
        root_from_proof(cs[1], MerkleProof(1, 5, (b"\x00" * 31, *p.siblings[1:])))


def _flip(b: bytes, bit: int) -> bytes:
    out = bytearray(b)
    out[(bit // 8) % len(out)] ^= 1 << (bit % 8)
    return bytes(out)
