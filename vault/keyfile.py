"""An HPKE private key sealed under a passphrase, for keeping it on disk.

The construction is the wallet's first format (``wallet_cli._home.seal_enc_key``, which the
wallet still opens; its new keys are sealed under its keystore's derivation): scrypt(passphrase,
salt; n, r=8, p=1) gives a 32-byte key; AES-256-GCM encrypts the ``DSSK`` private-key
encoding with associated data ``label ‖ lowercase address ‖ key digest``, so a sealed key
cannot be passed off as another member's or another key. The account (signing) key beside it
is a standard Ethereum V3 keystore (``eth_account.Account.encrypt``); this module covers the
encryption key, which V3 keystores cannot hold.
"""

from __future__ import annotations

import secrets
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from vault.errors import DecryptionError, MalformedInputError
from vault.keys import EncryptionKeyPair

#: The wallet's label: a key sealed here opens in the wallet and the other way round.
LABEL = b"datasafe-wallet/v1/enc-key"


def _kek(passphrase: str, salt: bytes, n: int, r: int = 8, p: int = 1) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())


def seal_private_key(
    pair: EncryptionKeyPair, passphrase: str, address: str, *, n: int
) -> dict[str, Any]:
    """The sealed key as JSON-able fields (kdf parameters, salt, nonce, ciphertext, digest)."""
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    aad = LABEL + address.lower().encode() + pair.digest()
    ct = AESGCM(_kek(passphrase, salt, n)).encrypt(nonce, pair.private_bytes(), aad)
    return {
        "digest": pair.digest().hex(),
        "kdf": "scrypt",
        "n": n,
        "r": 8,
        "p": 1,
        "salt": salt.hex(),
        "cipher": "aes-256-gcm",
        "nonce": nonce.hex(),
        "ciphertext": ct.hex(),
    }


def open_private_key(sealed: dict[str, Any], passphrase: str, address: str) -> EncryptionKeyPair:
    """The key pair; :class:`DecryptionError` for a wrong passphrase or another member's key,
    :class:`MalformedInputError` for a damaged file."""
    try:
        digest = bytes.fromhex(sealed["digest"])
        kek = _kek(passphrase, bytes.fromhex(sealed["salt"]), sealed["n"], sealed["r"], sealed["p"])
        nonce, ct = bytes.fromhex(sealed["nonce"]), bytes.fromhex(sealed["ciphertext"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedInputError(f"sealed key file is damaged: {exc}") from exc
    try:
        raw = AESGCM(kek).decrypt(nonce, ct, LABEL + address.lower().encode() + digest)
    except InvalidTag:
        raise DecryptionError("wrong passphrase, or the key is not this member's") from None
    pair = EncryptionKeyPair.from_private_bytes(raw)
    if pair.digest() != digest:
        raise MalformedInputError("sealed key file is damaged: digest mismatch")
    return pair
