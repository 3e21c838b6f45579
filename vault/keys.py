"""Member encryption keys: HPKE (RFC 9180) key pairs, their encodings, digests and rotation.

Two suites, chosen per member (:class:`Suite`):

* ``X25519_HKDF_SHA256_AES256GCM`` (id 1, default): DHKEM(X25519, HKDF-SHA256),
  HKDF-SHA256, AES-256-GCM.
* ``MLKEM768X25519_HKDF_SHA256_AES256GCM`` (id 2): the post-quantum hybrid KEM
  ML-KEM-768+X25519, HKDF-SHA256, AES-256-GCM, for long-lived data. A wrapped
  32-byte key is 1,168 bytes (1,120-byte encapsulation + 32 + 16-byte tag).

Encodings (see docs/wire-format.md):

* public key  ``"DSPK" ‖ u8 version(1) ‖ u8 suite ‖ raw``; raw is the 32-byte X25519
  public key, or ML-KEM-768 public key (1,184) ‖ X25519 public key (32).
* private key ``"DSSK" ‖ u8 version ‖ u8 suite ‖ raw``. Version 2 (what
  :meth:`EncryptionKeyPair.generate` makes): raw is a 32-byte Ed25519 seed, or
  ML-KEM-768 seed (64) ‖ Ed25519 seed (32); the X25519 private key is the
  Ed25519 secret scalar ``SHA-512(seed)[:32]`` (clamped), so the key can prove its
  own possession (:mod:`vault.keyproof`). Version 1 (legacy): raw is the 32-byte
  X25519 private key, or ML-KEM-768 seed (64) ‖ X25519 private key (32); such a
  key opens data but cannot make a proof of possession. The wallet encrypts these
  bytes under a passphrase; the vault never stores them.
* on-chain key digest (``bytes32``): ``sha256(public key encoding)``.

Rotation: a :class:`Keyring` holds old and new key pairs by digest; sealed assets
and key packages name their recipient's digest, so old data keeps opening with
the old key until :func:`vault.sealing.rewrap_asset` moves it to the new one.
"""

from __future__ import annotations

import enum
import functools
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519

from vault.errors import (
    MalformedInputError,
    TamperedCiphertextError,
    UnknownSuiteError,
    UnsupportedVersionError,
    WrongKeyError,
)

PUBLIC_KEY_MAGIC = b"DSPK"
PRIVATE_KEY_MAGIC = b"DSSK"
KEY_ENCODING_VERSION = 1
PRIVATE_KEY_VERSION = 2

_X25519_LEN = 32
_MLKEM768_PUBLIC_LEN = 1184
_MLKEM768_SEED_LEN = 64


class Suite(enum.IntEnum):
    """HPKE suites a member key may use; the value is the wire identifier."""

    X25519_HKDF_SHA256_AES256GCM = 1
    MLKEM768X25519_HKDF_SHA256_AES256GCM = 2

    @classmethod
    def from_id(cls, value: object) -> Suite:
        """The suite for a wire identifier, else :class:`UnknownSuiteError`."""
        if not isinstance(value, int) or isinstance(value, bool):
            raise UnknownSuiteError(f"suite identifier must be an integer, got {value!r}")
        try:
            return cls(value)
        except ValueError:
            raise UnknownSuiteError(f"unknown suite identifier {value}") from None

    @property
    def hpke_suite(self) -> hpke.Suite:
        return _hpke_suite(self)

    @property
    def public_raw_len(self) -> int:
        if self is Suite.X25519_HKDF_SHA256_AES256GCM:
            return _X25519_LEN
        return _MLKEM768_PUBLIC_LEN + _X25519_LEN

    @property
    def private_raw_len(self) -> int:
        if self is Suite.X25519_HKDF_SHA256_AES256GCM:
            return _X25519_LEN
        return _MLKEM768_SEED_LEN + _X25519_LEN


@functools.cache
def _hpke_suite(suite: Suite) -> hpke.Suite:
    """The primitive's suite object, built once per suite (every wrap and unwrap uses one)."""
    x25519_only = suite is Suite.X25519_HKDF_SHA256_AES256GCM
    kem = hpke.KEM.X25519 if x25519_only else hpke.KEM.MLKEM768_X25519
    return hpke.Suite(kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


_HpkePublic = x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey
_HpkePrivate = x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey


def _parse_header(
    data: object, magic: bytes, what: str, versions: tuple[int, ...] = (KEY_ENCODING_VERSION,)
) -> tuple[int, Suite, bytes]:
    if not isinstance(data, bytes):
        raise MalformedInputError(f"{what}: expected bytes")
    if len(data) < 6 or data[:4] != magic:
        raise MalformedInputError(f"{what}: bad magic or truncated")
    if data[4] not in versions:
        raise UnsupportedVersionError(f"{what}: unsupported encoding version {data[4]}")
    return data[4], Suite.from_id(data[5]), data[6:]


def x25519_scalar_of_seed(seed: bytes) -> bytes:
    """The X25519 private key of an Ed25519 seed: its secret scalar ``SHA-512(seed)[:32]``.

    X25519 clamps it exactly as Ed25519 does, so the X25519 public key is the
    Montgomery form of the Ed25519 public key (RFC 7748 section 4.1 birational map).
    """
    return hashlib.sha512(seed).digest()[:32]


@functools.lru_cache(maxsize=1024)
def _hpke_public(suite: Suite, raw: bytes) -> _HpkePublic:
    """The primitive's public key object, parsed once per key (a seal per record reuses it)."""
    try:
        if suite is Suite.X25519_HKDF_SHA256_AES256GCM:
            return x25519.X25519PublicKey.from_public_bytes(raw)
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(raw[:_MLKEM768_PUBLIC_LEN]),
            x25519.X25519PublicKey.from_public_bytes(raw[_MLKEM768_PUBLIC_LEN:]),
        )
    except ValueError as exc:
        raise MalformedInputError(f"invalid {suite.name} public key: {exc}") from None


@functools.lru_cache(maxsize=1024)
def _key_digest(suite: Suite, raw: bytes) -> bytes:
    """``sha256`` of a public key's encoding, once per key (every seal names its recipient)."""
    return hashlib.sha256(_public_encoding(suite, raw)).digest()


def _public_encoding(suite: Suite, raw: bytes) -> bytes:
    return PUBLIC_KEY_MAGIC + bytes([KEY_ENCODING_VERSION, int(suite)]) + raw


@dataclass(frozen=True, slots=True)
class PublicEncryptionKey:
    """A member's public encryption key (what the service serves and the chain hashes)."""

    suite: Suite
    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != self.suite.public_raw_len:
            raise MalformedInputError(
                f"public key for {self.suite.name} must be {self.suite.public_raw_len} bytes"
            )

    def to_bytes(self) -> bytes:
        """Canonical encoding: ``"DSPK" ‖ version ‖ suite ‖ raw``."""
        return _public_encoding(self.suite, self.raw)

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicEncryptionKey:
        _, suite, raw = _parse_header(data, PUBLIC_KEY_MAGIC, "public key")
        key = cls(suite, raw)
        key._hpke_key()  # reject encodings the primitives refuse
        return key

    def digest(self) -> bytes:
        """The 32-byte on-chain key hash: ``sha256(self.to_bytes())``."""
        return _key_digest(self.suite, bytes(self.raw))  # hashable even if built from a bytearray

    @property
    def x25519_raw(self) -> bytes:
        """The X25519 component (the whole key, or the hybrid's last 32 bytes)."""
        return self.raw[-_X25519_LEN:]

    def _hpke_key(self) -> _HpkePublic:
        return _hpke_public(self.suite, self.raw)

    def wrap(self, plaintext: bytes, info: bytes) -> bytes:
        """HPKE base-mode single-shot seal: ``enc ‖ ciphertext`` (empty aad, context in info)."""
        return self.suite.hpke_suite.encrypt(plaintext, self._hpke_key(), info=info)


class EncryptionKeyPair:
    """A private encryption key with its public half."""

    __slots__ = ("_private", "_proof_seed", "_public", "_raw", "suite")

    def __init__(self, suite: Suite, raw_private: bytes, *, proof_seed: bool = False) -> None:
        """``raw_private`` as in the version-1 encoding; with ``proof_seed`` its last 32 bytes
        are an Ed25519 seed (version 2) from which the X25519 key is derived."""
        if len(raw_private) != suite.private_raw_len:
            raise MalformedInputError(
                f"private key for {suite.name} must be {suite.private_raw_len} bytes"
            )
        self.suite = suite
        self._raw = raw_private
        self._proof_seed: bytes | None = None
        if proof_seed:
            seed = raw_private[-_X25519_LEN:]
            self._proof_seed = seed
            raw_private = raw_private[:-_X25519_LEN] + x25519_scalar_of_seed(seed)
        private: _HpkePrivate
        try:
            if suite is Suite.X25519_HKDF_SHA256_AES256GCM:
                xk = x25519.X25519PrivateKey.from_private_bytes(raw_private)
                private = xk
                public_raw = xk.public_key().public_bytes_raw()
            else:
                mk = mlkem.MLKEM768PrivateKey.from_seed_bytes(raw_private[:_MLKEM768_SEED_LEN])
                xk = x25519.X25519PrivateKey.from_private_bytes(raw_private[_MLKEM768_SEED_LEN:])
                private = hpke.MLKEM768X25519PrivateKey(mk, xk)
                public_raw = mk.public_key().public_bytes_raw() + xk.public_key().public_bytes_raw()
        except ValueError as exc:
            raise MalformedInputError(f"invalid {suite.name} private key: {exc}") from None
        self._private = private
        self._public = PublicEncryptionKey(suite, public_raw)

    @classmethod
    def generate(cls, suite: Suite = Suite.X25519_HKDF_SHA256_AES256GCM) -> EncryptionKeyPair:
        """A new key pair; its X25519 half comes from an Ed25519 seed (so it proves possession)."""
        ed_seed = ed25519.Ed25519PrivateKey.generate().private_bytes_raw()
        if suite is Suite.X25519_HKDF_SHA256_AES256GCM:
            return cls(suite, ed_seed, proof_seed=True)
        seed = mlkem.MLKEM768PrivateKey.generate().private_bytes_raw()
        return cls(suite, seed + ed_seed, proof_seed=True)

    @property
    def proof_seed(self) -> bytes | None:
        """The Ed25519 seed behind the X25519 key (None for a legacy version-1 key)."""
        return self._proof_seed

    @property
    def public_key(self) -> PublicEncryptionKey:
        return self._public

    def digest(self) -> bytes:
        """The on-chain digest of the public key."""
        return self._public.digest()

    def private_bytes(self) -> bytes:
        """Secret encoding ``"DSSK" ‖ version ‖ suite ‖ raw`` (encrypt it before storing)."""
        version = PRIVATE_KEY_VERSION if self._proof_seed is not None else KEY_ENCODING_VERSION
        return PRIVATE_KEY_MAGIC + bytes([version, int(self.suite)]) + self._raw

    @classmethod
    def from_private_bytes(cls, data: bytes) -> EncryptionKeyPair:
        version, suite, raw = _parse_header(
            data, PRIVATE_KEY_MAGIC, "private key", (KEY_ENCODING_VERSION, PRIVATE_KEY_VERSION)
        )
        return cls(suite, raw, proof_seed=version == PRIVATE_KEY_VERSION)

    def unwrap(self, wrapped: bytes, info: bytes) -> bytes:
        """Open an HPKE ciphertext made by :meth:`PublicEncryptionKey.wrap` for this key."""
        try:
            return self.suite.hpke_suite.decrypt(wrapped, self._private, info=info)
        except (InvalidTag, ValueError):
            raise TamperedCiphertextError("HPKE open failed (tampered or wrong context)") from None

    def __repr__(self) -> str:
        return f"EncryptionKeyPair(suite={self.suite.name}, digest={self.digest().hex()})"


class Keyring:
    """Several key pairs of one member, by public-key digest (old keys kept for rotation)."""

    def __init__(self, keypairs: Iterable[EncryptionKeyPair] = ()) -> None:
        self._by_digest: dict[bytes, EncryptionKeyPair] = {}
        self._current: EncryptionKeyPair | None = None
        for kp in keypairs:
            self.add(kp)

    def add(self, keypair: EncryptionKeyPair, *, current: bool = True) -> None:
        """Add a key pair; by default it becomes the current one (new data goes to it)."""
        self._by_digest[keypair.digest()] = keypair
        if current or self._current is None:
            self._current = keypair

    def remove(self, digest: bytes) -> None:
        """Forget a key (after every package was re-wrapped); data left for it is lost."""
        kp = self._by_digest.pop(digest, None)
        if kp is None:
            raise WrongKeyError(f"no key with digest {digest.hex()}")
        if self._current is kp:
            self._current = next(reversed(self._by_digest.values()), None)

    @property
    def current(self) -> EncryptionKeyPair:
        if self._current is None:
            raise WrongKeyError("keyring is empty")
        return self._current

    def get(self, digest: bytes) -> EncryptionKeyPair:
        try:
            return self._by_digest[digest]
        except KeyError:
            raise WrongKeyError(f"no key with digest {digest.hex()} in the keyring") from None

    def __contains__(self, digest: object) -> bool:
        return digest in self._by_digest

    def __iter__(self) -> Iterator[EncryptionKeyPair]:
        return iter(self._by_digest.values())

    def __len__(self) -> int:
        return len(self._by_digest)


KeySource = EncryptionKeyPair | Keyring


def as_keyring(keys: KeySource) -> Keyring:
    """Accept a single key pair wherever a keyring is expected."""
    return keys if isinstance(keys, Keyring) else Keyring([keys])
