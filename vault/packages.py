"""Key packages (owner -> grantee) and disclosures (what a pull returns).

A :class:`KeyPackage` for grant ``grant_id`` over fields F carries only the
per-field keys of F (32 bytes each, concatenated in schema order), HPKE-wrapped
to the grantee's key with::

    info = lp("datasafe/vault/v1/key-package", grant_id, asset_id, u64(version),
              root, grantee_digest, u32(|F|), name_1, ..., name_n)

so the package opens only for that grant, asset version, root, grantee and
field list. Keys of fields outside F are never in it (they come from the asset
key by HKDF, which the grantee does not get), so those fields stay sealed.

A :class:`Disclosure` is what the custodian returns on a pull: the package, the
ciphertexts and commitments of exactly the granted fields with their Merkle
proofs, and the :class:`Anchor` (root, issuer, block). :func:`open_disclosure`
checks everything against the root the caller read from the chain and returns
all granted values or raises. ``anchor.issuer`` and ``anchor.block_number`` are
hints the caller must check on-chain itself; pass ``expected_issuer`` to have
the issuer compared here.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vault import wire
from vault._encoding import lp, require_bytes, u64
from vault.errors import (
    FieldError,
    InputTooLargeError,
    TamperedCiphertextError,
    TamperedProofError,
    WrongKeyError,
)
from vault.keys import KeySource, PublicEncryptionKey, as_keyring
from vault.limits import DEFAULT_LIMITS, Limits
from vault.merkle import MerkleProof, prove, verify_proof
from vault.sealing import (
    ID_LEN,
    KEY_LEN,
    NONCE_LEN,
    FieldCiphertext,
    SealedAsset,
    WrappedKey,
    _check_names,
    _recipient,
    decrypt_field,
    field_keys,
    unwrap_asset_key,
)

KEY_PACKAGE_KIND = "datasafe/key-package"
DISCLOSURE_KIND = "datasafe/disclosure"
KEY_PACKAGE_LABEL = b"datasafe/vault/v1/key-package"
ADDRESS_LEN = 20


def _package_info(
    grant_id: bytes,
    asset_id: bytes,
    version: int,
    root: bytes,
    recipient: bytes,
    names: Sequence[str],
) -> bytes:
    return lp(
        KEY_PACKAGE_LABEL,
        grant_id,
        asset_id,
        u64(version),
        root,
        recipient,
        struct.pack(">I", len(names)),
        *(n.encode() for n in names),
    )


@dataclass(frozen=True, slots=True)
class KeyPackage:
    """Field keys of one grant, wrapped to the grantee."""

    grant_id: bytes
    asset_id: bytes
    version: int
    root: bytes
    field_names: tuple[str, ...]
    wrapped: WrappedKey

    def to_wire(self) -> list[Any]:
        return [
            KEY_PACKAGE_KIND,
            wire.WIRE_VERSION,
            self.grant_id,
            self.asset_id,
            self.version,
            self.root,
            list(self.field_names),
            self.wrapped.to_wire(),
        ]

    def to_bytes(self) -> bytes:
        return wire.encode(self.to_wire())

    @classmethod
    def from_wire(cls, obj: Any, limits: Limits) -> KeyPackage:
        _, _, grant_id, asset_id, version, root, names, wrapped = wire.expect_envelope(
            obj, KEY_PACKAGE_KIND, 8
        )
        name_list = [wire.expect_text(n, "field name") for n in wire.expect_list(names, "names")]
        _check_names(name_list, limits)
        return cls(
            wire.expect_bytes(grant_id, "grant id", length=ID_LEN),
            wire.expect_bytes(asset_id, "asset id", length=ID_LEN),
            wire.expect_uint(version, "version"),
            wire.expect_bytes(root, "root", length=32),
            tuple(name_list),
            WrappedKey.from_wire(wrapped),
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> KeyPackage:
        return cls.from_wire(wire.decode(data, max_size=limits.max_key_package_bytes), limits)

    def _info(self, grant_id: bytes, root: bytes) -> bytes:
        return _package_info(
            grant_id, self.asset_id, self.version, root, self.wrapped.recipient, self.field_names
        )

    def open(self, grantee_keys: KeySource, *, grant_id: bytes, root: bytes) -> dict[str, bytes]:
        """The field keys (name -> key), for the grantee of ``grant_id`` on ``root`` only."""
        if grant_id != self.grant_id:
            raise WrongKeyError("key package belongs to another grant")
        if root != self.root:
            raise TamperedProofError("key package is for another root")
        kp = _recipient(as_keyring(grantee_keys), self.wrapped)
        blob = kp.unwrap(self.wrapped.ciphertext, self._info(grant_id, root))
        if len(blob) != KEY_LEN * len(self.field_names):
            raise TamperedCiphertextError("key package has the wrong number of keys")
        return {
            name: blob[i * KEY_LEN : (i + 1) * KEY_LEN] for i, name in enumerate(self.field_names)
        }


def build_key_package(
    sealed: SealedAsset,
    owner_keys: KeySource,
    *,
    grant_id: bytes,
    fields: Sequence[str],
    grantee_key: PublicEncryptionKey,
) -> KeyPackage:
    """Wrap the keys of ``fields`` (any order; stored in schema order) to the grantee."""
    require_bytes(grant_id, "grant id", length=ID_LEN)
    wanted = list(fields)
    if not wanted:
        raise FieldError("a grant needs at least one field")
    if len(set(wanted)) != len(wanted):
        raise FieldError("duplicate field names in the grant")
    indices = sorted(sealed.index_of(n) for n in wanted)
    names = tuple(sealed.fields[i].name for i in indices)
    asset_key = unwrap_asset_key(sealed, owner_keys)
    blob = b"".join(field_keys(asset_key, sealed.asset_id, sealed.version, names))
    recipient = grantee_key.digest()
    info = _package_info(grant_id, sealed.asset_id, sealed.version, sealed.root, recipient, names)
    return KeyPackage(
        grant_id=grant_id,
        asset_id=sealed.asset_id,
        version=sealed.version,
        root=sealed.root,
        field_names=names,
        wrapped=WrappedKey(grantee_key.suite, recipient, grantee_key.wrap(blob, info)),
    )


def rewrap_key_package(
    package: KeyPackage, grantee_keys: KeySource, new_grantee_key: PublicEncryptionKey
) -> KeyPackage:
    """Grantee-side rotation: move a package to the grantee's new key."""
    keys = package.open(grantee_keys, grant_id=package.grant_id, root=package.root)
    blob = b"".join(keys[n] for n in package.field_names)
    recipient = new_grantee_key.digest()
    info = _package_info(
        package.grant_id,
        package.asset_id,
        package.version,
        package.root,
        recipient,
        package.field_names,
    )
    return KeyPackage(
        package.grant_id,
        package.asset_id,
        package.version,
        package.root,
        package.field_names,
        WrappedKey(new_grantee_key.suite, recipient, new_grantee_key.wrap(blob, info)),
    )


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where the asset is anchored: root, issuer address (20 bytes) and block number."""

    root: bytes
    issuer: bytes
    block_number: int


@dataclass(frozen=True, slots=True)
class DisclosedField:
    """A granted field as served: ciphertext, commitment and Merkle proof."""

    field: FieldCiphertext
    proof: MerkleProof


@dataclass(frozen=True, slots=True)
class Disclosure:
    """What the service returns on a pull."""

    anchor: Anchor
    package: KeyPackage
    fields: tuple[DisclosedField, ...]

    def to_bytes(self) -> bytes:
        leaf_count = self.fields[0].proof.leaf_count if self.fields else 0
        return wire.encode(
            [
                DISCLOSURE_KIND,
                wire.WIRE_VERSION,
                [self.anchor.root, self.anchor.issuer, self.anchor.block_number],
                self.package.to_wire(),
                leaf_count,
                [
                    [
                        d.proof.index,
                        d.field.name,
                        d.field.commitment,
                        d.field.nonce,
                        d.field.ciphertext,
                        list(d.proof.siblings),
                    ]
                    for d in self.fields
                ],
            ]
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, limits: Limits = DEFAULT_LIMITS) -> Disclosure:
        obj = wire.decode(data, max_size=limits.max_disclosure_bytes)
        _, _, anchor, package, leaf_count, fields = wire.expect_envelope(obj, DISCLOSURE_KIND, 6)
        root, issuer, block = wire.expect_list(anchor, "anchor", length=3)
        count = wire.expect_uint(leaf_count, "leaf count")
        if count > limits.max_fields:
            raise InputTooLargeError(f"{count} leaves exceeds {limits.max_fields}")
        items = wire.expect_list(fields, "fields")
        if len(items) > limits.max_fields:
            raise InputTooLargeError(f"{len(items)} fields exceeds {limits.max_fields}")
        disclosed = []
        for item in items:
            index, name, c, nonce, ct, sibs = wire.expect_list(item, "field", length=6)
            siblings = tuple(
                wire.expect_bytes(s, "sibling", length=32)
                for s in wire.expect_list(sibs, "siblings")
            )
            if len(siblings) > 64:
                raise InputTooLargeError("Merkle proof too long")
            disclosed.append(
                DisclosedField(
                    FieldCiphertext(
                        wire.expect_text(name, "field name"),
                        wire.expect_bytes(c, "commitment", length=32),
                        wire.expect_bytes(nonce, "nonce", length=NONCE_LEN),
                        wire.expect_bytes(ct, "ciphertext"),
                    ),
                    MerkleProof(wire.expect_uint(index, "leaf index"), count, siblings),
                )
            )
        return cls(
            Anchor(
                wire.expect_bytes(root, "anchor root", length=32),
                wire.expect_bytes(issuer, "issuer", length=ADDRESS_LEN),
                wire.expect_uint(block, "block number"),
            ),
            KeyPackage.from_wire(package, limits),
            tuple(disclosed),
        )


def fields_mask(sealed: SealedAsset, names: Sequence[str]) -> int:
    """The on-chain fields mask of ``names``: bit i = field i in schema order."""
    mask = 0
    for name in names:
        mask |= 1 << sealed.index_of(name)
    return mask


def build_disclosure(
    sealed: SealedAsset,
    package: KeyPackage,
    *,
    anchor: Anchor,
    expected_mask: int | None = None,
) -> Disclosure:
    """Service side: select the granted fields' ciphertexts and prove them (no keys needed).

    ``expected_mask`` is the grant's on-chain fields mask; when given, the package must
    cover exactly those fields (:class:`FieldError` otherwise).
    """
    if package.asset_id != sealed.asset_id or package.version != sealed.version:
        raise FieldError("key package is for another asset version")
    if expected_mask is not None and fields_mask(sealed, package.field_names) != expected_mask:
        raise FieldError("key package fields differ from the grant's fields mask")
    require_bytes(anchor.issuer, "issuer", length=ADDRESS_LEN)
    commitments = sealed.commitments
    disclosed = []
    for name in package.field_names:
        i = sealed.index_of(name)
        disclosed.append(DisclosedField(sealed.fields[i], prove(commitments, i)))
    return Disclosure(anchor, package, tuple(disclosed))


def open_disclosure(
    disclosure: Disclosure,
    grantee_keys: KeySource,
    *,
    grant_id: bytes,
    expected_root: bytes,
    expected_issuer: bytes | None = None,
) -> dict[str, bytes]:
    """Grantee side: decrypt exactly the granted fields and prove each against the root."""
    if disclosure.anchor.root != expected_root:
        raise TamperedProofError("disclosure anchor root differs from the anchored root")
    if expected_issuer is not None and disclosure.anchor.issuer != expected_issuer:
        raise TamperedProofError("disclosure names another issuer")
    package = disclosure.package
    if tuple(d.field.name for d in disclosure.fields) != package.field_names:
        raise FieldError("disclosed fields differ from the granted fields")
    keys = package.open(grantee_keys, grant_id=grant_id, root=expected_root)
    values: dict[str, bytes] = {}
    for d in disclosure.fields:
        value = decrypt_field(keys[d.field.name], package.asset_id, package.version, d.field)
        verify_proof(expected_root, d.field.commitment, d.proof)
        values[d.field.name] = value
    return values


def open_key_package(
    sealed: SealedAsset,
    package: KeyPackage,
    grantee_keys: KeySource,
    *,
    grant_id: bytes,
    expected_root: bytes,
) -> dict[str, bytes]:
    """Grantee holding the whole sealed asset: same checks as :func:`open_disclosure`."""
    anchor = Anchor(sealed.root, bytes(ADDRESS_LEN), 0)
    return open_disclosure(
        build_disclosure(sealed, package, anchor=anchor),
        grantee_keys,
        grant_id=grant_id,
        expected_root=expected_root,
    )
