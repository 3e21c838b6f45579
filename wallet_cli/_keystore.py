"""Ethereum V3 keystores (Web3 Secret Storage) with ``cryptography`` and coincurve only.

eth-account's keystore code pulls in eth-keyfile and with it py_ecc's pairing code (about a
second of imports, and a recursion-limit side effect); the wallet needs none of it. The format
is the standard one, so a keystore written here opens in geth, MetaMask or eth-account and the
other way round (known-answer tests in ``tests/wallet_cli/test_wallet_keystore.py``):

* kdf ``scrypt`` (n, r, p, dklen 32, salt) or ``pbkdf2`` (hmac-sha256, c, salt);
* cipher ``aes-128-ctr`` keyed with ``dk[0:16]``;
* mac ``keccak256(dk[16:32] ‖ ciphertext)``.

:func:`open_keystore` returns the derived key ``dk`` beside the signing key: the wallet's
encryption keys are wrapped under a key derived from it (``wallet_cli._home``), so one
passphrase derivation opens everything a command needs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import coincurve
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from eth_hash.auto import keccak

from ledger.address import is_address, to_checksum_address
from wallet_cli.errors import UserError, WrongPassphraseError

_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class KeystoreError(UserError):
    """Not a V3 keystore this wallet can read (unknown kdf or cipher, missing fields)."""

    code = "bad_keystore"


@dataclass(frozen=True)
class Opened:
    """A keystore opened with its passphrase: the signing key and the kdf output."""

    key: bytes
    derived: bytes


def address_of(key: bytes) -> str:
    """The EIP-55 checksummed address of a secp256k1 private key."""
    check_private_key(key)
    pub = coincurve.PrivateKey(key).public_key.format(compressed=False)[1:]
    return checksum(keccak(pub)[-20:].hex())


def checksum(address: str) -> str:
    """EIP-55 spelling of a 20-byte hex address; a user's error for anything else."""
    if not is_address(address):
        raise UserError(f"{address!r} is not an address")
    return to_checksum_address(address)


def check_private_key(key: bytes) -> None:
    if len(key) != 32 or not 0 < int.from_bytes(key, "big") < _SECP256K1_N:
        raise UserError("that is not a valid 32-byte secp256k1 private key")


def _derive(crypto: dict[str, Any], passphrase: str) -> bytes:
    kdf, params = crypto["kdf"], crypto["kdfparams"]
    salt = bytes.fromhex(params["salt"])
    length = int(params.get("dklen", 32))
    if length < 32:
        raise KeystoreError("keystore dklen must be at least 32")
    if kdf == "scrypt":
        return _scrypt(passphrase, salt, int(params["n"]), int(params["r"]), int(params["p"]))
    if kdf == "pbkdf2":
        if params.get("prf", "hmac-sha256") != "hmac-sha256":
            raise KeystoreError(f"unsupported pbkdf2 prf {params['prf']!r}")
        pb = PBKDF2HMAC(hashes.SHA256(), length=length, salt=salt, iterations=int(params["c"]))
        return pb.derive(passphrase.encode())
    raise KeystoreError(f"unsupported keystore kdf {kdf!r}")


def _scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    """scrypt through OpenSSL (hashlib) with the memory the parameters need: ``cryptography``'s
    Scrypt refuses the spec's own r=1, p=8 vector for want of a few hundred bytes of maxmem."""
    if n > 2**20 or r * p > 64:
        raise KeystoreError(f"keystore scrypt parameters n={n} r={r} p={p} are out of range")
    if n >= 1 << (16 * r):
        # OpenSSL requires n < 2^(16 r); the spec's own vector (r=1, n=2^18) needs another
        # implementation: pycryptodome's, which eth-hash already brings along.
        from Crypto.Protocol.KDF import scrypt as pure_scrypt

        out = pure_scrypt(passphrase.encode(), salt, 32, n, r, p)  # type: ignore[arg-type]
        return bytes(out)  # type: ignore[arg-type]
    maxmem = 128 * r * (n + p + 2) + (1 << 20)
    return hashlib.scrypt(passphrase.encode(), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=32)


def _ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    c = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return c.update(data) + c.finalize()


def open_keystore(keystore: dict[str, Any], passphrase: str) -> Opened:
    """The signing key and ``dk``; :class:`WrongPassphraseError` when the MAC does not match."""
    try:
        crypto = keystore.get("crypto") or keystore["Crypto"]
        if crypto["cipher"] != "aes-128-ctr":
            raise KeystoreError(f"unsupported keystore cipher {crypto['cipher']!r}")
        ciphertext = bytes.fromhex(crypto["ciphertext"])
        iv = bytes.fromhex(crypto["cipherparams"]["iv"])
        mac = bytes.fromhex(crypto["mac"])
        derived = _derive(crypto, passphrase)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise KeystoreError(f"not a V3 keystore: {type(exc).__name__}: {exc}") from None
    if not hmac.compare_digest(keccak(derived[16:32] + ciphertext), mac):
        raise WrongPassphraseError("wrong passphrase for the keystore")
    key = _ctr(derived[:16], iv, ciphertext)
    check_private_key(key)
    return Opened(key=key, derived=derived)


def make_keystore(key: bytes, passphrase: str, *, n: int) -> tuple[dict[str, Any], Opened]:
    """A V3 keystore (scrypt n, r=8, p=1) of ``key``, and what opening it yields."""
    salt, iv = secrets.token_bytes(32), secrets.token_bytes(16)
    derived = _scrypt(passphrase, salt, n, 8, 1)
    ciphertext = _ctr(derived[:16], iv, key)
    keystore = {
        "version": 3,
        "id": str(uuid.uuid4()),
        "address": address_of(key)[2:].lower(),
        "crypto": {
            "cipher": "aes-128-ctr",
            "cipherparams": {"iv": iv.hex()},
            "ciphertext": ciphertext.hex(),
            "kdf": "scrypt",
            "kdfparams": {"dklen": 32, "n": n, "r": 8, "p": 1, "salt": salt.hex()},
            "mac": keccak(derived[16:32] + ciphertext).hex(),
        },
    }
    return keystore, Opened(key=key, derived=derived)
