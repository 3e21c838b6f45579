"""Salted field commitments and the Merkle tree whose root the issuer anchors on-chain.

Construction (worked vector in docs/wire-format.md):

* commitment ``c_i = sha256(salt ‖ u32(len name) ‖ name ‖ u32(len value) ‖ value)``
  with a 32-byte random salt and the UTF-8 field name (lengths big-endian);
* leaf   ``L_i = sha256(0x00 ‖ c_i)``; node ``N = sha256(0x01 ‖ left ‖ right)``
  (RFC 6962-style domain separation: a leaf can never pass for a node);
* leaves in schema field order (leaf index = the field's bit in the fields mask);
* a level with an odd number of nodes promotes its last node unchanged to the
  next level (no duplication, so no CVE-2012-2459-style second trees);
* the anchored root binds the leaf count: ``root = sha256(0x02 ‖ u32(n) ‖ top)``
  where ``top`` is the single node left at the last level (``L_0`` when n = 1);
  without it a proof could claim another index in a tree of another shape;
* zero leaves are refused.

A proof is ``(index, leaf_count, siblings)``: siblings bottom-up, one per level
where the node has a sibling (levels where it is promoted contribute nothing).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from vault._encoding import lp
from vault.errors import MalformedInputError, TamperedProofError

SALT_LEN = 32
HASH_LEN = 32
LEAF_PREFIX = b"\x00"  # for callers that hash leaves inline (the seal)
_LEAF = LEAF_PREFIX
_NODE = b"\x01"
_ROOT = b"\x02"


def commitment(salt: bytes, name: str, value: bytes) -> bytes:
    """The salted commitment ``sha256(salt ‖ lp(name) ‖ lp(value))``."""
    if len(salt) != SALT_LEN:
        raise MalformedInputError(f"salt must be {SALT_LEN} bytes")
    h = hashlib.sha256(salt)
    h.update(lp(name.encode()))
    h.update(len(value).to_bytes(4, "big"))
    h.update(value)
    return h.digest()


def leaf_hash(c: bytes) -> bytes:
    return hashlib.sha256(_LEAF + c).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _levels(commitments: Sequence[bytes]) -> list[list[bytes]]:
    if not commitments:
        raise MalformedInputError("a Merkle tree needs at least one leaf")
    sha256 = hashlib.sha256  # leaf_hash and node_hash, inlined: a seal hashes 2n - 1 of them
    level = [sha256(_LEAF + c).digest() for c in commitments]
    levels = [level]
    while len(level) > 1:
        level = _next_level(level)
        levels.append(level)
    return levels


def _next_level(level: list[bytes]) -> list[bytes]:
    sha256 = hashlib.sha256
    nxt = [sha256(_NODE + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        nxt.append(level[-1])
    return nxt


def _root(top: bytes, leaf_count: int) -> bytes:
    return hashlib.sha256(_ROOT + leaf_count.to_bytes(4, "big") + top).digest()


def root_of_leaves(leaves: list[bytes]) -> bytes:
    """The root over leaf hashes already computed (``leaf_hash`` of each commitment)."""
    if not leaves:
        raise MalformedInputError("a Merkle tree needs at least one leaf")
    level = leaves
    while len(level) > 1:
        level = _next_level(level)
    return _root(level[0], len(leaves))


def merkle_root(commitments: Sequence[bytes]) -> bytes:
    """Root over the commitments in schema order (binds the number of leaves)."""
    sha256 = hashlib.sha256
    return root_of_leaves([sha256(_LEAF + c).digest() for c in commitments])


@dataclass(frozen=True, slots=True)
class MerkleProof:
    """Inclusion proof of leaf ``index`` in a tree of ``leaf_count`` leaves."""

    index: int
    leaf_count: int
    siblings: tuple[bytes, ...]


def prove(commitments: Sequence[bytes], index: int) -> MerkleProof:
    """Inclusion proof for ``commitments[index]``."""
    if not 0 <= index < len(commitments):
        raise MalformedInputError(f"leaf index {index} out of range")
    siblings: list[bytes] = []
    pos = index
    for level in _levels(commitments)[:-1]:
        sib = pos ^ 1
        if sib < len(level):
            siblings.append(level[sib])
        pos //= 2
    return MerkleProof(index, len(commitments), tuple(siblings))


def root_from_proof(c: bytes, proof: MerkleProof) -> bytes:
    """The root implied by a commitment and its proof (malformed proofs raise)."""
    if not 0 <= proof.index < proof.leaf_count < 2**32:
        raise TamperedProofError("proof index out of range")
    node = leaf_hash(c)
    pos, width = proof.index, proof.leaf_count
    it = iter(proof.siblings)
    while width > 1:
        sib = pos ^ 1
        if sib < width:
            s = next(it, None)
            if s is None or len(s) != HASH_LEN:
                raise TamperedProofError("proof too short or sibling of wrong length")
            node = node_hash(node, s) if pos % 2 == 0 else node_hash(s, node)
        pos //= 2
        width = (width + 1) // 2
    if next(it, None) is not None:
        raise TamperedProofError("proof too long")
    return _root(node, proof.leaf_count)


def verify_proof(root: bytes, c: bytes, proof: MerkleProof) -> None:
    """Raise :class:`TamperedProofError` unless ``c`` is leaf ``proof.index`` under ``root``."""
    if root_from_proof(c, proof) != root:
        raise TamperedProofError(f"Merkle proof for leaf {proof.index} does not reach the root")
