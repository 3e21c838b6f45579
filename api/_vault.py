"""The service's view of the vault: where ciphertext and key packages live, and the
vault-format checks the service makes without any key.

The service never opens anything (it holds no encryption key). What it can and does check:

* a published encryption key parses (:class:`vault.keys.PublicEncryptionKey`) and its
  digest is the chain's ``encKeyHash``;
* an uploaded :class:`vault.sealing.SealedAsset` is self-consistent (ciphertext digest
  recomputed from the field ciphertexts, Merkle root recomputed from the commitments),
  matches the anchor transaction (id, version, root, digest), carries the schema's fields in
  order and is wrapped to the owner's on-chain key;
* a :class:`vault.packages.KeyPackage` is bound to the grant (grant id, asset, version,
  root, exactly the granted fields, the grantee's on-chain key);
* a pull answers with :func:`vault.packages.build_disclosure`: the granted fields only.

Format errors (:class:`vault.errors.VaultError`) are not caught here: they propagate to
:mod:`api._translate`, the one place where they become problems.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from api import _shred, errors
from api.db import key_packages, sealed_assets
from api.settings import ApiSettings
from vault.keys import PublicEncryptionKey
from vault.merkle import merkle_root
from vault.packages import Anchor, KeyPackage, build_disclosure
from vault.sealing import SealedAsset, ciphertext_digest
from vault.store import BlobStore

#: Parsed sealed assets kept in memory (by blob digest: content-addressed, so never stale).
_SEALED_CACHE_SIZE = 256
#: Encoded disclosures kept in memory (by blob, package digest and anchor).
_DISCLOSURE_CACHE_SIZE = 128


class VaultAdapter:
    def __init__(self, engine: Engine, blob_dir: Path | None, *, shred_inline: bool = True) -> None:
        self._engine = engine
        #: Finish shredding (:func:`api._shred.finish`) right after each deletion; False when
        #: the indexer does it once per indexed batch (PostgreSQL's VACUUM with the indexer on).
        self._shred_inline = shred_inline
        self._blobs = BlobStore(blob_dir) if blob_dir is not None else None
        self._parsed: OrderedDict[str, SealedAsset] = OrderedDict()
        self._disclosures: OrderedDict[tuple[str, bytes, Anchor], str] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def open(cls, settings: ApiSettings, engine: Engine) -> VaultAdapter:
        # SQLite's checkpoint is cheap and immediate; a VACUUM per revocation is not, and the
        # indexer runs one after the range that holds the revocation (it sees every one).
        inline = engine.dialect.name == "sqlite" or not settings.run_indexer
        return cls(engine, settings.blob_dir, shred_inline=inline)

    @property
    def blobs(self) -> BlobStore:
        if self._blobs is None:
            raise errors.VaultStoreError("this vault adapter has no blob store")
        return self._blobs

    # ---- encodings ---------------------------------------------------------------------

    @staticmethod
    def decode_b64(value: str, what: str) -> bytes:
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            try:
                return base64.urlsafe_b64decode(value)
            except (binascii.Error, ValueError) as exc:
                raise errors.InvalidRequestError(f"{what} is not base64") from exc

    # ---- keys --------------------------------------------------------------------------

    @staticmethod
    def key_digest_of(public_key: bytes) -> bytes:
        """The ``encKeyHash`` the chain holds for an encoded vault public key.

        Raises :class:`vault.errors.MalformedInputError` (→ ``invalid_vault_data``) for bytes
        that are not a ``PublicEncryptionKey`` encoding.
        """
        return PublicEncryptionKey.from_bytes(public_key).digest()

    def key_digest(self, public_key: bytes) -> bytes:
        return self.key_digest_of(public_key)

    # ---- sealed assets -----------------------------------------------------------------

    @staticmethod
    def check_sealed(
        data: bytes,
        *,
        asset_id: bytes,
        version: int,
        root: bytes,
        digest: bytes,
        schema_fields: Sequence[str],
        owner_key_digest: bytes,
    ) -> SealedAsset:
        """Parse an uploaded sealed asset and check it against its anchor; returns it parsed."""
        sealed = SealedAsset.from_bytes(data)

        def mismatch(what: str) -> errors.ApiError:
            return errors.SealedAssetMismatchError(what, asset_id="0x" + asset_id.hex())

        if sealed.asset_id != asset_id:
            raise mismatch(
                f"the sealed asset is for asset 0x{sealed.asset_id.hex()}, "
                f"the anchor for 0x{asset_id.hex()}"
            )
        if sealed.version != version:
            raise mismatch(f"the sealed asset is version {sealed.version}, the anchor {version}")
        recomputed = ciphertext_digest(sealed.asset_id, sealed.version, sealed.fields)
        if recomputed != sealed.ciphertext_digest:
            raise mismatch("the sealed asset's ciphertext digest does not match its ciphertexts")
        if recomputed != digest:
            raise mismatch(
                f"the anchor's ciphertextDigest 0x{digest.hex()} is not the sealed asset's "
                f"ciphertext digest 0x{recomputed.hex()}"
            )
        recomputed_root = merkle_root(sealed.commitments)
        if recomputed_root != sealed.root:
            raise mismatch("the sealed asset's root does not match its field commitments")
        if recomputed_root != root:
            raise mismatch(
                f"the anchor's root 0x{root.hex()} is not the sealed asset's Merkle root "
                f"0x{recomputed_root.hex()}"
            )
        if list(sealed.field_names) != list(schema_fields):
            raise mismatch(
                f"the sealed fields {list(sealed.field_names)} are not the schema's fields "
                f"{list(schema_fields)} in order"
            )
        if sealed.wrapped_key.recipient != owner_key_digest:
            raise mismatch(
                "the asset key is wrapped to key 0x"
                f"{sealed.wrapped_key.recipient.hex()}, not to the owner's current key "
                f"0x{owner_key_digest.hex()} on chain"
            )
        return sealed

    def put_sealed(self, asset_id: str, sealed: bytes, *, owner: str) -> None:
        """Content-addressed blob (crash-safe, vault ``BlobStore``) plus the asset -> blob row."""
        digest_hex = self.blobs.put(sealed).hex()
        with self._engine.begin() as conn:
            conn.execute(sealed_assets.delete().where(sealed_assets.c.asset_id == asset_id.lower()))
            conn.execute(
                sealed_assets.insert().values(
                    asset_id=asset_id.lower(), owner=owner.lower(), blob=digest_hex
                )
            )

    def _blob_of(self, asset_id: str) -> str | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(sealed_assets.c.blob).where(sealed_assets.c.asset_id == asset_id.lower())
            ).first()
        return None if row is None else str(row[0])

    def get_sealed(self, asset_id: str) -> bytes | None:
        blob = self._blob_of(asset_id)
        if blob is None or not self.blobs.exists(bytes.fromhex(blob)):
            return None
        return self.blobs.get(bytes.fromhex(blob))

    def get_sealed_asset(self, asset_id: str) -> SealedAsset | None:
        """The stored sealed asset, parsed (memoised by blob digest)."""
        blob = self._blob_of(asset_id)
        if blob is None:
            return None
        with self._lock:
            hit = self._parsed.get(blob)
            if hit is not None:
                self._parsed.move_to_end(blob)
                return hit
        digest = bytes.fromhex(blob)
        if not self.blobs.exists(digest):
            return None
        parsed = SealedAsset.from_bytes(self.blobs.get(digest))
        with self._lock:
            self._parsed[blob] = parsed
            while len(self._parsed) > _SEALED_CACHE_SIZE:
                self._parsed.popitem(last=False)
        return parsed

    def delete_sealed(self, asset_id: str) -> None:
        with self._engine.begin() as conn:
            row = conn.execute(
                sa.select(sealed_assets.c.blob).where(sealed_assets.c.asset_id == asset_id.lower())
            ).first()
            conn.execute(sealed_assets.delete().where(sealed_assets.c.asset_id == asset_id.lower()))
            if row is None:
                return
            still_used = conn.execute(
                sa.select(sa.func.count())
                .select_from(sealed_assets)
                .where(sealed_assets.c.blob == row[0])
            ).scalar_one()
        if not still_used:
            with self._lock:
                self._parsed.pop(str(row[0]), None)
            self.blobs.delete(bytes.fromhex(str(row[0])))

    # ---- key packages ------------------------------------------------------------------

    @staticmethod
    def check_key_package(
        data: bytes,
        *,
        grant_id: bytes,
        asset_id: bytes,
        version: int,
        root: bytes,
        fields: Sequence[str],
        grantee_key_digest: bytes,
    ) -> KeyPackage:
        """Parse a key package and check that it is bound to this grant (no key needed)."""
        package = KeyPackage.from_bytes(data)

        def mismatch(what: str) -> errors.ApiError:
            return errors.KeyPackageMismatchError(what, grant_id="0x" + grant_id.hex())

        if package.grant_id != grant_id:
            raise mismatch(
                f"the key package is for grant 0x{package.grant_id.hex()}, "
                f"this grant is 0x{grant_id.hex()}"
            )
        if package.asset_id != asset_id or package.version != version:
            raise mismatch("the key package is for another asset or asset version")
        if package.root != root:
            raise mismatch("the key package is for another root than the anchored one")
        if list(package.field_names) != list(fields):
            raise mismatch(
                f"the key package holds fields {list(package.field_names)}, "
                f"the grant's mask names {list(fields)}"
            )
        if package.wrapped.recipient != grantee_key_digest:
            raise mismatch(
                "the key package is wrapped to key 0x"
                f"{package.wrapped.recipient.hex()}, not to the grantee's current key "
                f"0x{grantee_key_digest.hex()} on chain"
            )
        return package

    def put_key_package(self, grant_id: str, package: bytes) -> None:
        with self._engine.begin() as conn:
            conn.execute(key_packages.delete().where(key_packages.c.grant_id == grant_id.lower()))
            conn.execute(key_packages.insert().values(grant_id=grant_id.lower(), package=package))

    def get_key_package(self, grant_id: str) -> bytes | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                sa.select(key_packages.c.package).where(key_packages.c.grant_id == grant_id.lower())
            ).first()
        return None if row is None else bytes(row[0])

    def delete_key_package(self, grant_id: str) -> None:
        """Crypto-shredding on revocation: the row is deleted, not flagged, and the deleted
        bytes are pushed out of the database's files (:func:`api._shred.finish`)."""
        with self._engine.begin() as conn:
            row = conn.execute(
                sa.select(key_packages.c.package).where(key_packages.c.grant_id == grant_id.lower())
            ).first()
            conn.execute(key_packages.delete().where(key_packages.c.grant_id == grant_id.lower()))
        if row is not None:
            self.forget_package(bytes(row[0]))
        if self._shred_inline:
            _shred.finish(self._engine)

    def forget_package(self, package: bytes) -> None:
        """Drop memoised disclosures that embed ``package`` (a revoked grant's key package
        must not outlive its row in memory either)."""
        digest = hashlib.sha256(package).digest()
        with self._lock:
            for key in [k for k in self._disclosures if k[1] == digest]:
                del self._disclosures[key]

    # ---- pulls -------------------------------------------------------------------------

    def disclose(
        self,
        asset_id: str,
        package: bytes,
        *,
        grant_mask: int,
        anchor: Anchor,
        blob: str | None = None,
    ) -> str:
        """The vault disclosure of a pull, base64: ciphertexts + Merkle proofs of the granted
        fields only, the key package and the anchor (:func:`vault.packages.build_disclosure`).

        The answer is a pure function of (sealed blob, package bytes, anchor), so it is
        memoised on exactly that key; the package is read from the database by the caller
        on every pull, so a revoked (deleted) package is never served from here. ``blob``:
        the asset's blob digest if the caller read it with the package (one statement,
        :func:`api._store.get_pull_rows`); otherwise it is read here.
        """
        if blob is None:
            blob = self._blob_of(asset_id)
        if blob is None:
            raise errors.AssetNotFoundError(f"the ciphertext of {asset_id} is gone")
        key = (blob, hashlib.sha256(package).digest(), anchor)
        with self._lock:
            hit = self._disclosures.get(key)
            if hit is not None:
                self._disclosures.move_to_end(key)
                return hit
        sealed = self.get_sealed_asset(asset_id)
        if sealed is None:
            raise errors.AssetNotFoundError(f"the ciphertext of {asset_id} is gone")
        disclosure = build_disclosure(
            sealed, KeyPackage.from_bytes(package), anchor=anchor, expected_mask=grant_mask
        )
        encoded = base64.b64encode(disclosure.to_bytes()).decode()
        with self._lock:
            self._disclosures[key] = encoded
            while len(self._disclosures) > _DISCLOSURE_CACHE_SIZE:
                self._disclosures.popitem(last=False)
        return encoded
