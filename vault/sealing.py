"""Sealing an asset (issuer, client-side) and opening it (owner, client-side).

``seal_asset`` takes the named fields in schema order (a field's index is its
bit in the on-chain fields mask) and produces a :class:`SealedAsset`:

* a random 32-byte asset key, HPKE-wrapped to the owner's key with
  ``info = lp("datasafe/vault/v1/asset-key", asset_id, u64(version), owner_digest)``;
* per field a key ``HKDF-SHA256(ikm=asset key, salt=none,
  info=lp("datasafe/vault/v1/field-key", asset_id, u64(version), name))``;
* per field ``AES-256-GCM(field key, random 96-bit nonce, salt(32) ‖ value,
  aad=lp("datasafe/vault/v1/field", asset_id, u64(version), name))``; each field key
  encrypts exactly one message, so a nonce never repeats under a key;
* per field the public salted commitment (see :mod:`vault.merkle`), the Merkle
  ``root`` the issuer anchors, and ``ciphertext_digest`` (also anchored):
  ``sha256("datasafe/vault/v1/ciphertext-set" ‖ lp(asset_id) ‖ u64(version) ‖
  for each field lp(name) ‖ lp(nonce) ‖ lp(ciphertext))``. It excludes the
  wrapped key so a key rotation (:func:`rewrap_asset`) keeps the anchor valid.

``open_asset`` checks the digest, unwraps, decrypts every field, checks each
commitment and the root (and ``expected_root`` read from the chain, if given);
it returns everything or raises — never a partial result.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault import wire
from vault._encoding import lp, require_bytes, u64
from vault.errors import (
    FieldError,
    InputTooLargeError,
    MalformedInputError,
    TamperedCiphertextError,
    TamperedProofError,
    WrongKeyError,
)
from vault.keys import EncryptionKeyPair, KeySource, PublicEncryptionKey, Suite, as_keyring
from vault.limits import DEFAULT_LIMITS, Limits
from vault.merkle import LEAF_PREFIX as _LEAF
from vault.merkle import SALT_LEN, commitment, merkle_root, root_of_leaves

SEALED_ASSET_KIND = "datasafe/sealed-asset"
ASSET_KEY_LABEL = b"datasafe/vault/v1/asset-key"
FIELD_KEY_LABEL = b"datasafe/vault/v1/field-key"
FIELD_AAD_LABEL = b"datasafe/vault/v1/field"
CIPHERTEXT_SET_LABEL = b"datasafe/vault/v1/ciphertext-set"
KEY_LEN = 32
NONCE_LEN = 12
TAG_LEN = 16
ID_LEN = 32

FieldsInput = Mapping[str, bytes] | Sequence[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """An HPKE ciphertext (``enc ‖ ct``) of a secret, for the key with ``recipient`` digest."""

    suite: Suite
    recipient: bytes
    ciphertext: bytes

    def to_wire(self) -> list[Any]:
        return [int(self.suite), self.recipient, self.ciphertext]

    @classmethod
    def from_wire(cls, obj: Any) -> WrappedKey:
        suite_id, recipient, ct = wire.expect_list(obj, "wrapped key", length=3)
        return cls(
            Suite.from_id(suite_id),
            wire.expect_bytes(recipient, "recipient digest", length=32),
            wire.expect_bytes(ct, "wrapped key ciphertext"),
        )


@dataclass(frozen=True, slots=True)
class FieldCiphertext:
    """One sealed field: its name, public commitment, nonce and AES-GCM ciphertext."""

    name: str
    commitment: bytes
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True, slots=True)
class SealedAsset:
    """What the issuer uploads and the custodian stores: ciphertext only."""

    asset_id: bytes
    version: int
    wrapped_key: WrappedKey
    fields: tuple[FieldCiphertext, ...]
    root: bytes
    ciphertext_digest: bytes

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def commitments(self) -> tuple[bytes, ...]:
        return tuple(f.commitment for f in self.fields)

    def index_of(self, name: str) -> int:
        for i, f in enumerate(self.fields):
            if f.name == name:
                return i
        raise FieldError(f"asset has no field {name!r}")

    def to_bytes(self) -> bytes:
        return wire.encode(
            [
                SEALED_ASSET_KIND,
                wire.WIRE_VERSION,
                self.asset_id,
                self.version,
                self.wrapped_key.to_wire(),
                [[f.name, f.commitment, f.nonce, f.ciphertext] for f in self.fields],
                self.root,
                self.ciphertext_digest,
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> SealedAsset:
        obj = wire.decode(data, max_size=limits.max_sealed_asset_bytes)
        _, _, asset_id, version, wk, fields, root, digest = wire.expect_envelope(
            obj, SEALED_ASSET_KIND, 8
        )
        field_list = wire.expect_list(fields, "fields")
        if len(field_list) > limits.max_fields:
            raise InputTooLargeError(f"{len(field_list)} fields exceeds {limits.max_fields}")
        parsed = []
        for item in field_list:
            name, c, nonce, ct = wire.expect_list(item, "field", length=4)
            parsed.append(
                FieldCiphertext(
                    wire.expect_text(name, "field name"),
                    wire.expect_bytes(c, "commitment", length=32),
                    wire.expect_bytes(nonce, "nonce", length=NONCE_LEN),
                    wire.expect_bytes(ct, "ciphertext"),
                )
            )
        _check_names([f.name for f in parsed], limits)
        return cls(
            wire.expect_bytes(asset_id, "asset id", length=ID_LEN),
            wire.expect_uint(version, "version"),
            WrappedKey.from_wire(wk),
            tuple(parsed),
            wire.expect_bytes(root, "root", length=32),
            wire.expect_bytes(digest, "ciphertext digest", length=32),
        )


@dataclass(frozen=True, slots=True)
class OpenedAsset:
    """A verified, decrypted asset: every field checked against ``root``."""

    asset_id: bytes
    version: int
    root: bytes
    fields: dict[str, bytes]


def _check_names(names: Sequence[str], limits: Limits) -> list[bytes]:
    """Check the names; returns each one UTF-8 encoded and length-prefixed (``lp(name)``)."""
    if not names:
        raise FieldError("an asset needs at least one field")
    if len(names) > limits.max_fields:
        raise InputTooLargeError(f"{len(names)} fields exceeds {limits.max_fields}")
    lp_names = []
    for name in names:
        if not isinstance(name, str) or not name:
            raise FieldError("field names must be non-empty strings")
        try:
            encoded = name.encode("utf-8")
        except UnicodeEncodeError:
            raise FieldError(f"field name {name!r} is not valid UTF-8") from None
        if len(encoded) > limits.max_field_name_bytes:
            raise InputTooLargeError(f"field name longer than {limits.max_field_name_bytes} bytes")
        lp_names.append(len(encoded).to_bytes(4, "big") + encoded)
    if len(set(names)) != len(names):
        raise FieldError("duplicate field names")
    return lp_names


def _normalise_fields(fields: FieldsInput, limits: Limits) -> list[tuple[str, bytes, bytes]]:
    """Checked ``(name, lp(UTF-8 name), value)`` triples in schema order."""
    items: Iterable[Any] = fields.items() if isinstance(fields, Mapping) else fields
    names: list[str] = []
    values: list[bytes] = []
    max_value = limits.max_field_value_bytes
    for item in items:
        if not isinstance(item, tuple) or len(item) != 2:
            raise MalformedInputError("fields must be (name, value) pairs")
        name, value = item
        if type(value) is not bytes:
            if not isinstance(value, _BYTES_LIKE):
                raise MalformedInputError(f"value of field {name!r} must be bytes")
            value = bytes(value)
        if len(value) > max_value:
            raise InputTooLargeError(f"field {name!r} is larger than {max_value}")
        names.append(name)
        values.append(value)
    return list(zip(names, _check_names(names, limits), values, strict=True))


_BYTES_LIKE = (bytes, bytearray)


def _check_context(asset_id: bytes, version: int) -> None:
    require_bytes(asset_id, "asset id", length=ID_LEN)
    u64(version)


def asset_key_info(asset_id: bytes, version: int, recipient: bytes) -> bytes:
    return lp(ASSET_KEY_LABEL, asset_id, u64(version), recipient)


# HKDF-SHA256 (RFC 5869) with no salt and a 32-byte output is one HMAC to extract and one to
# expand; the extract step depends on the asset key alone, so it is done once per asset and each
# field costs one HMAC. ``field_key`` gives the same bytes as cryptography's ``HKDF`` (checked by
# tests/vault against it): this is a faster path to the same keys, not another derivation.
_SHA256_BLOCK = hashlib.sha256().block_size
_IPAD = bytes(b ^ 0x36 for b in range(256))  # translation tables: key byte -> key byte ^ pad
_OPAD = bytes(b ^ 0x5C for b in range(256))
# The extract's HMAC key is the all-zero salt (RFC 5869 2.2), so its keyed states are constants.
_ZERO_SALT_INNER = hashlib.sha256(bytes(_SHA256_BLOCK).translate(_IPAD))
_ZERO_SALT_OUTER = hashlib.sha256(bytes(_SHA256_BLOCK).translate(_OPAD))


def _hkdf_extract(ikm: bytes) -> bytes:
    """HKDF-Extract(salt=none, ikm) = HMAC-SHA256(32 zero bytes, ikm), from the keyed states."""
    inner = _ZERO_SALT_INNER.copy()
    inner.update(ikm)
    outer = _ZERO_SALT_OUTER.copy()
    outer.update(inner.digest())
    return outer.digest()


class _FieldKeys:
    """Per-field keys and AADs of one asset version: the shared prefixes computed once."""

    __slots__ = ("_aad_prefix", "_inner", "_outer")

    def __init__(self, asset_key: bytes, asset_id: bytes, version: int) -> None:
        prk = _hkdf_extract(asset_key)
        context = lp(asset_id, u64(version))
        # HMAC(prk, info ‖ 0x01) by its definition (RFC 2104), with the keyed inner and outer
        # states hashed once: a copy per field costs a fraction of a fresh OpenSSL HMAC.
        block = prk.ljust(_SHA256_BLOCK, b"\0")
        self._inner = hashlib.sha256(block.translate(_IPAD))
        self._inner.update(lp(FIELD_KEY_LABEL) + context)
        self._outer = hashlib.sha256(block.translate(_OPAD))
        self._aad_prefix = lp(FIELD_AAD_LABEL) + context

    def key(self, name: str) -> bytes:
        return self.key_lp(lp(name.encode()))

    def key_lp(self, lp_name: bytes) -> bytes:
        """The key of the field whose length-prefixed UTF-8 name is ``lp_name``."""
        inner = self._inner.copy()
        inner.update(lp_name + b"\x01")
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def aad(self, name: str) -> bytes:
        return self._aad_prefix + lp(name.encode())

    def aad_lp(self, lp_name: bytes) -> bytes:
        return self._aad_prefix + lp_name


def field_key(asset_key: bytes, asset_id: bytes, version: int, name: str) -> bytes:
    """Per-field key: HKDF-SHA256 with info binding asset id, version and field name."""
    return _FieldKeys(asset_key, asset_id, version).key(name)


def field_keys(
    asset_key: bytes, asset_id: bytes, version: int, names: Sequence[str]
) -> list[bytes]:
    """``field_key`` of each name, sharing the per-asset HKDF extract."""
    keys = _FieldKeys(asset_key, asset_id, version)
    return [keys.key(name) for name in names]


def field_key_reference(asset_key: bytes, asset_id: bytes, version: int, name: str) -> bytes:
    """``field_key`` through cryptography's HKDF, the definition the fast path must match."""
    info = lp(FIELD_KEY_LABEL, asset_id, u64(version), name.encode())
    return HKDF(algorithm=hashes.SHA256(), length=KEY_LEN, salt=None, info=info).derive(asset_key)


def field_aad(asset_id: bytes, version: int, name: str) -> bytes:
    return lp(FIELD_AAD_LABEL, asset_id, u64(version), name.encode())


_LEN4_NONCE = NONCE_LEN.to_bytes(4, "big")


def _ciphertext_digest_start(asset_id: bytes, version: int) -> hashlib._Hash:
    h = hashlib.sha256(CIPHERTEXT_SET_LABEL)
    h.update(lp(asset_id) + u64(version))
    return h


def ciphertext_digest(asset_id: bytes, version: int, fields: Sequence[FieldCiphertext]) -> bytes:
    h = _ciphertext_digest_start(asset_id, version)
    for f in fields:
        h.update(lp(f.name.encode(), f.nonce))
        h.update(len(f.ciphertext).to_bytes(4, "big"))
        h.update(f.ciphertext)
    return h.digest()


def seal_asset(
    fields: FieldsInput,
    *,
    asset_id: bytes,
    version: int,
    owner_key: PublicEncryptionKey,
    limits: Limits = DEFAULT_LIMITS,
) -> SealedAsset:
    """Encrypt ``fields`` (schema order) to ``owner_key`` and commit to them."""
    _check_context(asset_id, version)
    items = _normalise_fields(fields, limits)
    # One read of the random source for the asset key and every salt and nonce.
    randomness = os.urandom(KEY_LEN + _FIELD_RANDOM_LEN * len(items))
    return _seal(items, randomness, asset_id, version, owner_key)


_FIELD_RANDOM_LEN = SALT_LEN + NONCE_LEN
# A field value (or ciphertext) up to this size is hashed as one copied buffer: a hash call costs
# more than copying a few KB. Larger ones are hashed where they lie. Same bytes hashed either way.
_HASH_COPY_MAX = 4096
# A frozen dataclass's __init__ sets each attribute through object.__setattr__; a seal makes one
# FieldCiphertext per field, so it fills the slots directly (the same object, half the cost).
_FIELD_SLOTS = tuple(
    getattr(FieldCiphertext, a).__set__ for a in ("name", "commitment", "nonce", "ciphertext")
)


def _seal(
    items: list[tuple[str, bytes, bytes]],
    randomness: bytes,
    asset_id: bytes,
    version: int,
    owner_key: PublicEncryptionKey,
) -> SealedAsset:
    """``seal_asset`` with its random bytes given: asset key, then per field salt ‖ nonce."""
    asset_key = randomness[:KEY_LEN]
    keys = _FieldKeys(asset_key, asset_id, version)
    key_lp, aad_lp, sha256, aesgcm = keys.key_lp, keys.aad_lp, hashlib.sha256, AESGCM
    new_field, (set_name, set_commitment, set_nonce, set_ciphertext) = object.__new__, _FIELD_SLOTS
    digest = _ciphertext_digest_start(asset_id, version)
    unhashed: list[bytes] = []  # the ciphertext digest's input not yet hashed, in order
    leaves = []
    sealed_fields = []
    at = KEY_LEN
    for name, lp_name, value in items:
        salt = randomness[at : at + SALT_LEN]
        nonce = randomness[at + SALT_LEN : at + _FIELD_RANDOM_LEN]
        at += _FIELD_RANDOM_LEN
        ct = aesgcm(key_lp(lp_name)).encrypt(nonce, salt + value, aad_lp(lp_name))
        # commitment(salt, name, value) and the ciphertext digest's part for this field
        head = salt + lp_name + len(value).to_bytes(4, "big")
        unhashed += (lp_name, _LEN4_NONCE, nonce, len(ct).to_bytes(4, "big"))
        if len(value) <= _HASH_COPY_MAX:
            c = sha256(head + value).digest()
            unhashed.append(ct)
        else:
            h = sha256(head)
            h.update(value)
            c = h.digest()
            digest.update(b"".join(unhashed))
            digest.update(ct)
            unhashed.clear()
        leaves.append(sha256(_LEAF + c).digest())
        f = new_field(FieldCiphertext)
        set_name(f, name)
        set_commitment(f, c)
        set_nonce(f, nonce)
        set_ciphertext(f, ct)
        sealed_fields.append(f)
    digest.update(b"".join(unhashed))
    recipient = owner_key.digest()
    wrapped = WrappedKey(
        owner_key.suite,
        recipient,
        owner_key.wrap(asset_key, asset_key_info(asset_id, version, recipient)),
    )
    return SealedAsset(
        asset_id=asset_id,
        version=version,
        wrapped_key=wrapped,
        fields=tuple(sealed_fields),
        root=root_of_leaves(leaves),
        ciphertext_digest=digest.digest(),
    )


def unwrap_asset_key(sealed: SealedAsset, keys: KeySource) -> bytes:
    """The asset key, for the holder of the recipient key (owner)."""
    kp = _recipient(as_keyring(keys), sealed.wrapped_key)
    asset_key = kp.unwrap(
        sealed.wrapped_key.ciphertext,
        asset_key_info(sealed.asset_id, sealed.version, sealed.wrapped_key.recipient),
    )
    if len(asset_key) != KEY_LEN:
        raise TamperedCiphertextError("asset key has the wrong length")
    return asset_key


def _recipient(ring: Any, wrapped: WrappedKey) -> EncryptionKeyPair:
    kp: EncryptionKeyPair = ring.get(wrapped.recipient)
    if kp.suite is not wrapped.suite:
        raise WrongKeyError("suite of the wrapped key does not match the recipient key")
    return kp


def decrypt_field(key: bytes, asset_id: bytes, version: int, f: FieldCiphertext) -> bytes:
    """Decrypt one field and check its commitment; returns the value."""
    return _decrypt_field(key, field_aad(asset_id, version, f.name), f)


def _decrypt_field(key: bytes, aad: bytes, f: FieldCiphertext) -> bytes:
    if len(f.ciphertext) < SALT_LEN + TAG_LEN:
        raise TamperedCiphertextError(f"field {f.name!r}: ciphertext truncated")
    try:
        plain = AESGCM(key).decrypt(f.nonce, f.ciphertext, aad)
    except InvalidTag:
        raise TamperedCiphertextError(f"field {f.name!r} does not authenticate") from None
    salt, value = plain[:SALT_LEN], plain[SALT_LEN:]
    if commitment(salt, f.name, value) != f.commitment:
        raise TamperedProofError(f"field {f.name!r} does not match its commitment")
    return value


def open_asset(
    sealed: SealedAsset, keys: KeySource, *, expected_root: bytes | None = None
) -> OpenedAsset:
    """Unwrap, decrypt and verify every field (against ``expected_root`` too, if given)."""
    if expected_root is not None and expected_root != sealed.root:
        raise TamperedProofError("asset root differs from the anchored root")
    if ciphertext_digest(sealed.asset_id, sealed.version, sealed.fields) != (
        sealed.ciphertext_digest
    ):
        raise TamperedCiphertextError("ciphertext digest does not match the field ciphertexts")
    if merkle_root(sealed.commitments) != sealed.root:
        raise TamperedProofError("commitments do not hash to the root")
    field_keys = _FieldKeys(unwrap_asset_key(sealed, keys), sealed.asset_id, sealed.version)
    values = {
        f.name: _decrypt_field(field_keys.key(f.name), field_keys.aad(f.name), f)
        for f in sealed.fields
    }
    return OpenedAsset(sealed.asset_id, sealed.version, sealed.root, values)


def rewrap_asset(
    sealed: SealedAsset, old_keys: KeySource, new_owner_key: PublicEncryptionKey
) -> SealedAsset:
    """Re-wrap the asset key to a new owner key (rotation); ciphertexts and anchors unchanged."""
    asset_key = unwrap_asset_key(sealed, old_keys)
    recipient = new_owner_key.digest()
    wrapped = WrappedKey(
        new_owner_key.suite,
        recipient,
        new_owner_key.wrap(asset_key, asset_key_info(sealed.asset_id, sealed.version, recipient)),
    )
    return replace(sealed, wrapped_key=wrapped)
