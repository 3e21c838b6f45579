"""Proof of possession (PoP) of a member's HPKE private key, checked by every relying client.

The chain cannot verify HPKE, and X25519 cannot sign. So a member's X25519 key is
derived from an Ed25519 seed (:func:`vault.keys.x25519_scalar_of_seed`: both use the
scalar ``SHA-512(seed)[:32]``, clamped alike), and the proof is an Ed25519 signature
(RFC 8032, from ``cryptography``) whose public key maps to the bound X25519 key by the
RFC 7748 birational map ``u = (1 + y) / (1 - y) mod 2^255 - 19``. Only the holder of the
scalar can sign, and the same scalar opens HPKE messages to the key.

Wire (docs/wire-format.md, "Key proof of possession")::

    proof   = "DSKP" ‖ u8 version(1) ‖ ed25519 public key (32) ‖ ed25519 signature (64)
    message = "DataSafe key proof v1" ‖ 0x00 ‖ uint256 chainId ‖ ledger (20) ‖ account (20)
              ‖ keyHash (32)          keyHash = sha256(public key encoding)

The message names the deployment and the account, so a proof cannot be replayed on
another ledger or by another member (no unknown-key share), and it covers the whole
public key encoding (for the hybrid suite the ML-KEM half too).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from vault.errors import KeyProofError, MalformedInputError
from vault.keys import EncryptionKeyPair, PublicEncryptionKey

PROOF_MAGIC = b"DSKP"
PROOF_VERSION = 1
PROOF_LEN = 4 + 1 + 32 + 64
MESSAGE_PREFIX = b"DataSafe key proof v1\x00"
_P = 2**255 - 19


def _address(value: str, what: str) -> bytes:
    raw = value.removeprefix("0x")
    if len(raw) != 40:
        raise MalformedInputError(f"{what} must be a 20-byte hex address")
    try:
        return bytes.fromhex(raw)
    except ValueError:
        raise MalformedInputError(f"{what} must be a 20-byte hex address") from None


def proof_message(
    public_key: PublicEncryptionKey, *, chain_id: int, ledger: str, account: str
) -> bytes:
    """The bytes the Ed25519 key signs."""
    return (
        MESSAGE_PREFIX
        + chain_id.to_bytes(32, "big")
        + _address(ledger, "ledger")
        + _address(account, "account")
        + public_key.digest()
    )


def _montgomery_u(ed_public: bytes) -> bytes:
    """RFC 7748 4.1: the X25519 u-coordinate of an encoded Ed25519 point."""
    y = int.from_bytes(ed_public, "little") & ((1 << 255) - 1)
    if y >= _P or y == 1:
        raise KeyProofError("proof public key is not a usable Ed25519 point")
    u = (1 + y) * pow(1 - y, _P - 2, _P) % _P
    return u.to_bytes(32, "little")


def make_key_proof(
    keypair: EncryptionKeyPair, *, chain_id: int, ledger: str, account: str
) -> bytes:
    """The proof that ``account`` holds ``keypair`` on this deployment."""
    seed = keypair.proof_seed
    if seed is None:
        raise KeyProofError(
            "this key was made before proofs of possession; generate a new key and bind it"
        )
    signer = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    message = proof_message(keypair.public_key, chain_id=chain_id, ledger=ledger, account=account)
    return (
        PROOF_MAGIC
        + bytes([PROOF_VERSION])
        + signer.public_key().public_bytes_raw()
        + signer.sign(message)
    )


def verify_key_proof(
    public_key: PublicEncryptionKey, proof: bytes, *, chain_id: int, ledger: str, account: str
) -> None:
    """Raise :class:`KeyProofError` unless ``proof`` shows that ``account`` holds ``public_key``."""
    if len(proof) != PROOF_LEN or proof[:4] != PROOF_MAGIC:
        raise KeyProofError("malformed key proof (bad magic or length)")
    if proof[4] != PROOF_VERSION:
        raise KeyProofError(f"unsupported key proof version {proof[4]}")
    ed_public, signature = proof[5:37], proof[37:]
    if _montgomery_u(ed_public) != public_key.x25519_raw:
        raise KeyProofError("the proof's signing key is not the encryption key's X25519 half")
    try:
        # A low-order point would let anyone sign; X25519 refuses it (all-zero secret).
        x25519.X25519PrivateKey.generate().exchange(
            x25519.X25519PublicKey.from_public_bytes(public_key.x25519_raw)
        )
        verifier = ed25519.Ed25519PublicKey.from_public_bytes(ed_public)
        message = proof_message(public_key, chain_id=chain_id, ledger=ledger, account=account)
        verifier.verify(signature, message)
    except (InvalidSignature, ValueError):
        raise KeyProofError("the key proof does not verify for this account and ledger") from None


def key_proof_valid(
    public_key: bytes, proof: bytes, *, chain_id: int, ledger: str, account: str
) -> bool:
    """Boolean form over encoded bytes, for :func:`ledger.keybinding.verify_key_binding`."""
    try:
        key = PublicEncryptionKey.from_bytes(public_key)
        verify_key_proof(key, proof, chain_id=chain_id, ledger=ledger, account=account)
    except (KeyProofError, MalformedInputError):
        return False
    return True
