"""The wallet directory: profiles, their keystores, encryption keys, receipts, contacts.

Layout under ``--home`` (default ``~/.datasafe-wallet``)::

    config.json                     {"default": "<profile>"}
    contacts.json                   {"<name>": "<address>"}  (the person's address book)
    profiles/<name>/profile.json    address, kind, api and rpc URLs (public)
    profiles/<name>/keystore.json   Ethereum V3 keystore (scrypt) of the signing key
    profiles/<name>/enc-keys.json   HPKE private keys, each AES-256-GCM under a key derived
                                    (HKDF) from the keystore's scrypt output, so one
                                    derivation opens both; old keys are kept for old data
    profiles/<name>/receipts/       consent receipts, one JSON per grant

Secrets exist only encrypted on disk and decrypted in memory; files are 0600.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ledger.address import is_address
from vault.errors import VaultError
from vault.keys import EncryptionKeyPair, Keyring, Suite
from wallet_cli._keyagent import Secret
from wallet_cli._keystore import checksum, open_keystore
from wallet_cli.errors import UserError, WalletError, WrongPassphraseError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_ENC_LABEL = b"datasafe-wallet/v1/enc-key"


def _write_private(path: Path, data: Any) -> None:
    """Atomic write, readable by the owner only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
    os.replace(tmp, path)


def _read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as exc:
        raise WalletError(f"cannot read {path}: {exc}") from exc


def check_name(name: str, what: str = "profile name") -> str:
    if not _NAME.match(name):
        raise UserError(f"invalid {what} {name!r}: use letters, digits, '.', '_', '-'")
    return name


@dataclass
class StoredEncKey:
    """One HPKE key of a profile as stored (encrypted) on disk."""

    digest: str
    suite: int
    public_key: str  # hex of the DSPK encoding
    created: int
    current: bool
    registered_block: int | None
    blob: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "suite": self.suite,
            "public_key": self.public_key,
            "created": self.created,
            "current": self.current,
            "registered_block": self.registered_block,
            "blob": self.blob,
        }

    def public_info(self) -> dict[str, Any]:
        return {k: v for k, v in self.as_dict().items() if k != "blob"}


def _kek(passphrase: str, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(passphrase.encode())


def seal_enc_key(kp: EncryptionKeyPair, passphrase: str, address: str, n: int) -> dict[str, Any]:
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    aad = _ENC_LABEL + address.lower().encode() + kp.digest()
    ct = AESGCM(_kek(passphrase, salt, n)).encrypt(nonce, kp.private_bytes(), aad)
    return {
        "kdf": "scrypt",
        "n": n,
        "r": 8,
        "p": 1,
        "salt": salt.hex(),
        "cipher": "aes-256-gcm",
        "nonce": nonce.hex(),
        "ciphertext": ct.hex(),
    }


def _keystore_kek(derived: bytes, address: str, digest: bytes) -> bytes:
    """The key an encryption key is sealed under: HKDF-SHA256 over the keystore's kdf output,
    bound to the member and the key (no second passphrase derivation)."""
    info = _ENC_LABEL + b"/kek/" + address.lower().encode() + digest
    return HKDF(hashes.SHA256(), length=32, salt=None, info=info).derive(derived)


def seal_enc_key_under(kp: EncryptionKeyPair, derived: bytes, address: str) -> dict[str, Any]:
    """Seal under the keystore's kdf output (``kdf: keystore-hkdf``, the current format)."""
    nonce = secrets.token_bytes(12)
    aad = _ENC_LABEL + address.lower().encode() + kp.digest()
    kek = _keystore_kek(derived, address, kp.digest())
    ct = AESGCM(kek).encrypt(nonce, kp.private_bytes(), aad)
    return {"kdf": "keystore-hkdf", "cipher": "aes-256-gcm", "nonce": nonce.hex(),
            "ciphertext": ct.hex()}  # fmt: skip


def open_enc_key_with(stored: StoredEncKey, secret: Secret, address: str) -> EncryptionKeyPair:
    """Open with what unlocking yielded: no derivation for keys in the current format."""
    if stored.blob.get("kdf") != "keystore-hkdf":
        if secret.passphrase is None:
            raise WalletError("an old-format encryption key needs the passphrase: unlock again")
        return open_enc_key(stored, secret.passphrase, address)
    kek = _keystore_kek(secret.derived, address, bytes.fromhex(stored.digest))
    return _open_blob(stored, address, kek)


def open_enc_key(stored: StoredEncKey, passphrase: str, address: str) -> EncryptionKeyPair:
    """Open a key sealed the old way (its own scrypt salt: one derivation per key)."""
    b = stored.blob
    try:
        kek = Scrypt(salt=bytes.fromhex(b["salt"]), length=32, n=b["n"], r=b["r"], p=b["p"])
        key = kek.derive(passphrase.encode())
    except (KeyError, ValueError) as exc:
        raise WalletError(f"encryption key file is damaged: {exc}") from exc
    return _open_blob(stored, address, key)


def _open_blob(stored: StoredEncKey, address: str, kek: bytes) -> EncryptionKeyPair:
    b = stored.blob
    aad = _ENC_LABEL + address.lower().encode() + bytes.fromhex(stored.digest)
    try:
        raw = AESGCM(kek).decrypt(bytes.fromhex(b["nonce"]), bytes.fromhex(b["ciphertext"]), aad)
    except InvalidTag:
        raise WrongPassphraseError("wrong passphrase for the encryption key") from None
    except (KeyError, ValueError) as exc:
        raise WalletError(f"encryption key file is damaged: {exc}") from exc
    try:
        kp = EncryptionKeyPair.from_private_bytes(raw)
    except VaultError as exc:
        raise WalletError(f"encryption key file is damaged: {exc}") from exc
    if kp.digest().hex() != stored.digest:
        raise WalletError("encryption key file is damaged: digest mismatch")
    return kp


class LazyKeyring(Keyring):
    """A profile's keys, each opened only when a record needs it (old keys usually never)."""

    def __init__(self, stored: list[StoredEncKey], secret: Secret, address: str) -> None:
        super().__init__()
        self._stored = {bytes.fromhex(k.digest): k for k in stored}
        self._secret, self._address = secret, address
        self._current_digest = next((d for d, k in self._stored.items() if k.current), None)

    def _load(self, digest: bytes) -> EncryptionKeyPair:
        if digest not in self._by_digest:
            kp = open_enc_key_with(self._stored[digest], self._secret, self._address)
            self.add(kp, current=digest == self._current_digest)
        return self._by_digest[digest]

    @property
    def current(self) -> EncryptionKeyPair:
        if self._current_digest is None:
            return super().current
        return self._load(self._current_digest)

    def get(self, digest: bytes) -> EncryptionKeyPair:
        if digest in self._stored:
            return self._load(digest)
        return super().get(digest)

    def __contains__(self, digest: object) -> bool:
        return digest in self._stored or super().__contains__(digest)

    def __iter__(self) -> Iterator[EncryptionKeyPair]:
        return iter([self._load(d) for d in self._stored])

    def __len__(self) -> int:
        return len(self._stored)


class Profile:
    """One identity (a person, or the enterprise they act for) in the wallet."""

    def __init__(self, home: Path, name: str) -> None:
        self.home = home
        self.name = check_name(name)
        self.dir = home / "profiles" / name

    # ---- public metadata ---------------------------------------------------------------

    @property
    def exists(self) -> bool:
        return (self.dir / "keystore.json").exists()

    def meta(self) -> dict[str, Any]:
        data: dict[str, Any] = _read_json(self.dir / "profile.json", {})
        return data

    def save_meta(self, meta: dict[str, Any]) -> None:
        _write_private(self.dir / "profile.json", meta)

    @property
    def address(self) -> str:
        return str(self.meta()["address"])

    # ---- signing key -------------------------------------------------------------------

    def keystore(self) -> dict[str, Any]:
        data = _read_json(self.dir / "keystore.json")
        if data is None:
            raise UserError(f"profile {self.name!r} has no keystore")
        ks: dict[str, Any] = data
        return ks

    def save_keystore(self, keystore: dict[str, Any]) -> None:
        _write_private(self.dir / "keystore.json", keystore)

    def open(self, passphrase: str) -> Secret:
        """One key derivation: the signing key and what opens the encryption keys.

        The passphrase itself is kept only while an encryption key sealed the old way (its
        own scrypt salt) is left, since only it opens that key.
        """
        try:
            opened = open_keystore(self.keystore(), passphrase)
        except WrongPassphraseError:
            raise WrongPassphraseError(f"wrong passphrase for profile {self.name!r}") from None
        legacy = any(k.blob.get("kdf") != "keystore-hkdf" for k in self.enc_keys())
        return Secret(opened.key, opened.derived, passphrase if legacy else None)

    def unlock(self, passphrase: str) -> bytes:
        """The signing key, or :class:`WrongPassphraseError`."""
        return self.open(passphrase).key

    # ---- encryption keys ---------------------------------------------------------------

    def enc_keys(self) -> list[StoredEncKey]:
        data = _read_json(self.dir / "enc-keys.json", {"keys": []})
        return [StoredEncKey(**k) for k in data["keys"]]

    def save_enc_keys(self, keys: list[StoredEncKey]) -> None:
        _write_private(self.dir / "enc-keys.json", {"keys": [k.as_dict() for k in keys]})

    def current_enc_key(self) -> StoredEncKey:
        for k in self.enc_keys():
            if k.current:
                return k
        raise UserError(f"profile {self.name!r} has no encryption key")

    def add_enc_key(
        self, secret: Secret, suite: Suite = Suite.X25519_HKDF_SHA256_AES256GCM
    ) -> StoredEncKey:
        """Generate a new current key; older keys stay (they open older data)."""
        kp = EncryptionKeyPair.generate(suite)
        keys = self.enc_keys()
        for k in keys:
            k.current = False
        new = StoredEncKey(
            digest=kp.digest().hex(),
            suite=int(suite),
            public_key=kp.public_key.to_bytes().hex(),
            created=int(time.time()),
            current=True,
            registered_block=None,
            blob=seal_enc_key_under(kp, secret.derived, self.address),
        )
        keys.append(new)
        self.save_enc_keys(keys)
        return new

    def mark_registered(self, digest: str, block: int) -> None:
        keys = self.enc_keys()
        for k in keys:
            if k.digest == digest:
                k.registered_block = block
        self.save_enc_keys(keys)

    def keyring(self, passphrase: str) -> Keyring:
        """Every key of this profile, each opened when first needed."""
        return self.ring(self.open(passphrase))

    def ring(self, secret: Secret) -> LazyKeyring:
        return LazyKeyring(self.enc_keys(), secret, self.address)

    # ---- receipts ----------------------------------------------------------------------

    def save_receipt(self, receipt: dict[str, Any], suffix: str = "") -> Path:
        """Consent receipts are ``<grant>.json``; later actions ``<grant>-<action>-<block>``."""
        path = self.dir / "receipts" / f"{receipt['grant_id']}{suffix}.json"
        _write_private(path, receipt)
        return path

    def receipts(self) -> list[dict[str, Any]]:
        folder = self.dir / "receipts"
        if not folder.exists():
            return []
        return [_read_json(p) for p in sorted(folder.glob("0x*.json")) if len(p.stem) == 66]


class Home:
    """The wallet directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def profile(self, name: str) -> Profile:
        return Profile(self.path, name)

    def profiles(self) -> list[Profile]:
        root = self.path / "profiles"
        if not root.exists():
            return []
        return [Profile(self.path, p.name) for p in sorted(root.iterdir()) if p.is_dir()]

    @property
    def default_name(self) -> str | None:
        cfg = _read_json(self.path / "config.json", {})
        name = cfg.get("default")
        return str(name) if name else None

    def set_default(self, name: str) -> None:
        cfg = _read_json(self.path / "config.json", {})
        cfg["default"] = name
        _write_private(self.path / "config.json", cfg)

    def resolve(self, name: str | None) -> Profile:
        """The named profile, else the default, else the only one."""
        chosen = name or self.default_name
        if chosen is None:
            existing = self.profiles()
            if len(existing) == 1:
                chosen = existing[0].name
            elif not existing:
                raise UserError(
                    f"no profile in {self.path}: run `datasafe account create NAME` first"
                )
            else:
                raise UserError("several profiles: choose one with --profile NAME")
        p = self.profile(chosen)
        if not p.exists:
            raise UserError(f"no profile named {chosen!r} in {self.path}")
        return p

    # ---- contacts (the person's names for institutions) --------------------------------

    def contacts(self) -> dict[str, str]:
        data: dict[str, str] = _read_json(self.path / "contacts.json", {})
        return data

    def set_contact(self, name: str, address: str) -> None:
        if not is_address(address):
            raise UserError(f"{address!r} is not an address")
        data = self.contacts()
        data[name] = checksum(address)
        _write_private(self.path / "contacts.json", data)

    def remove_contact(self, name: str) -> None:
        data = self.contacts()
        if name not in data:
            raise UserError(f"no contact named {name!r}")
        del data[name]
        _write_private(self.path / "contacts.json", data)
