"""Ciphertext storage: a content-addressed blob store plus SQL metadata.

:class:`BlobStore` keeps blobs under ``<root>/<2 hex>/<64 hex>`` named by their
SHA-256. A put writes ``<root>/tmp/<random>``, fsyncs it, renames it into place
and fsyncs the directory, so a crash leaves either no blob or a whole one; puts
are idempotent. A get re-hashes the bytes and refuses (:class:`BlobCorruptedError`)
a blob that does not match its name. Opening the store removes leftover temp
files from interrupted writers.

:class:`VaultStore` adds SQLModel tables (in their own ``MetaData``, named
``vault_*``) for sealed-asset metadata and key packages. Key packages live in
their table row; :meth:`VaultStore.delete_package` deletes the row
(crypto-shredding on revocation).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, col, select

from vault.errors import (
    BlobCorruptedError,
    ConflictError,
    InputTooLargeError,
    MalformedInputError,
    NotFoundError,
    StoreError,
)
from vault.limits import DEFAULT_LIMITS, Limits
from vault.packages import KeyPackage
from vault.sealing import SealedAsset

_TMP = "tmp"


def _check_digest(digest: bytes) -> str:
    if not isinstance(digest, bytes) or len(digest) != 32:
        raise MalformedInputError("blob digest must be 32 bytes")
    return digest.hex()


class BlobStore:
    """Content-addressed, crash-safe blobs on the local filesystem."""

    def __init__(self, root_dir: str | os.PathLike[str]) -> None:
        self.root = Path(root_dir)
        try:
            (self.root / _TMP).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create blob directory {self.root}: {exc}") from None
        self.recover()

    def recover(self) -> int:
        """Remove temp files left by interrupted writers; returns how many."""
        removed = 0
        for leftover in (self.root / _TMP).iterdir():
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
                removed += 1
        return removed

    def path_for(self, digest: bytes) -> Path:
        h = _check_digest(digest)
        return self.root / h[:2] / h

    def put(self, data: bytes) -> bytes:
        """Store ``data``; returns its SHA-256 (idempotent)."""
        digest = hashlib.sha256(data).digest()
        final = self.path_for(digest)
        if final.exists():
            try:
                self.get(digest)
                return digest
            except BlobCorruptedError:
                pass  # overwrite the damaged copy with the good bytes below
        tmp = self.root / _TMP / f"{secrets.token_hex(16)}.part"
        try:
            final.parent.mkdir(exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise StoreError(f"cannot write blob: {exc}") from None
        return digest

    def get(self, digest: bytes) -> bytes:
        """The blob's bytes, verified against ``digest``."""
        path = self.path_for(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"no blob {digest.hex()}") from None
        except OSError as exc:
            raise StoreError(f"cannot read blob: {exc}") from None
        if hashlib.sha256(data).digest() != digest:
            raise BlobCorruptedError(f"blob {digest.hex()} does not match its digest")
        return data

    def exists(self, digest: bytes) -> bool:
        return self.path_for(digest).exists()

    def delete(self, digest: bytes) -> bool:
        """Remove a blob; returns whether it existed."""
        path = self.path_for(digest)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StoreError(f"cannot delete blob: {exc}") from None
        _fsync_dir(path.parent)
        return True

    def __iter__(self) -> Iterator[bytes]:
        for sub in self.root.iterdir():
            if sub.name == _TMP or not sub.is_dir():
                continue
            for f in sub.iterdir():
                with contextlib.suppress(ValueError):
                    yield bytes.fromhex(f.name)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class VaultTable(SQLModel):
    """Base of the vault's tables: their own MetaData, apart from the indexer's."""

    metadata = sa.MetaData()


class VaultAssetRow(VaultTable, table=True):
    __tablename__ = "vault_assets"

    asset_id: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True, sa_type=sa.BigInteger)
    owner: str = Field(index=True, max_length=42)
    issuer: str = Field(index=True, max_length=42)
    schema_id: str = Field(max_length=66)
    blob_digest: str = Field(max_length=64)
    root: str = Field(max_length=64)
    ciphertext_digest: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


class VaultKeyPackageRow(VaultTable, table=True):
    __tablename__ = "vault_key_packages"

    grant_id: str = Field(primary_key=True, max_length=64)
    asset_id: str = Field(index=True, max_length=64)
    version: int = Field(sa_type=sa.BigInteger)
    grantee: str = Field(index=True, max_length=42)
    package: bytes = Field(sa_type=sa.LargeBinary)
    created_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class AssetRecord:
    """Metadata of a stored sealed asset (addresses and ids as lowercase hex)."""

    asset_id: bytes
    version: int
    owner: str
    issuer: str
    schema_id: str
    blob_digest: bytes
    root: bytes
    ciphertext_digest: bytes
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PackageRecord:
    grant_id: bytes
    asset_id: bytes
    version: int
    grantee: str
    created_at: datetime


def _record(row: VaultAssetRow) -> AssetRecord:
    return AssetRecord(
        asset_id=bytes.fromhex(row.asset_id),
        version=row.version,
        owner=row.owner,
        issuer=row.issuer,
        schema_id=row.schema_id,
        blob_digest=bytes.fromhex(row.blob_digest),
        root=bytes.fromhex(row.root),
        ciphertext_digest=bytes.fromhex(row.ciphertext_digest),
        created_at=row.created_at,
    )


def _address(value: str) -> str:
    v = value.lower()
    if len(v) != 42 or not v.startswith("0x"):
        raise MalformedInputError(f"not an address: {value!r}")
    try:
        bytes.fromhex(v[2:])
    except ValueError:
        raise MalformedInputError(f"not an address: {value!r}") from None
    return v


class VaultStore:
    """Sealed assets (blob + metadata) and key packages, in SQL via SQLModel."""

    def __init__(
        self,
        db_url: str,
        blob_dir: str | os.PathLike[str],
        *,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.limits = limits
        self.blobs = BlobStore(blob_dir)
        try:
            self.engine = sa.create_engine(db_url)
            VaultTable.metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the vault database: {exc}") from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> VaultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with Session(self.engine) as session:
                yield session
        except IntegrityError as exc:
            raise ConflictError(f"conflicting row: {exc.orig}") from None
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {exc}") from None

    # ---- assets -------------------------------------------------------------------------------

    def put_asset(
        self, sealed: SealedAsset, *, owner: str, issuer: str, schema_id: str
    ) -> AssetRecord:
        """Store a sealed asset; idempotent for identical bytes, conflict otherwise."""
        owner, issuer = _address(owner), _address(issuer)
        data = sealed.to_bytes()
        if len(data) > self.limits.max_sealed_asset_bytes:
            raise InputTooLargeError("sealed asset exceeds the size limit")
        digest = self.blobs.put(data)
        with self._session() as s:
            existing = s.get(VaultAssetRow, (sealed.asset_id.hex(), sealed.version))
            if existing is not None:
                if existing.blob_digest != digest.hex():
                    raise ConflictError(
                        f"asset {sealed.asset_id.hex()} v{sealed.version} already stored "
                        "with other content"
                    )
                return _record(existing)
            row = VaultAssetRow(
                asset_id=sealed.asset_id.hex(),
                version=sealed.version,
                owner=owner,
                issuer=issuer,
                schema_id=schema_id,
                blob_digest=digest.hex(),
                root=sealed.root.hex(),
                ciphertext_digest=sealed.ciphertext_digest.hex(),
                created_at=datetime.now(UTC),
            )
            s.add(row)
            s.commit()
            s.refresh(row)
            return _record(row)

    def get_asset_record(self, asset_id: bytes, version: int | None = None) -> AssetRecord:
        """Metadata of ``asset_id`` at ``version`` (default: the latest stored)."""
        with self._session() as s:
            stmt = select(VaultAssetRow).where(VaultAssetRow.asset_id == asset_id.hex())
            if version is not None:
                stmt = stmt.where(VaultAssetRow.version == version)
            row = s.exec(stmt.order_by(col(VaultAssetRow.version).desc())).first()
            if row is None:
                raise NotFoundError(f"no asset {asset_id.hex()} (version {version})")
            return _record(row)

    def get_asset(self, asset_id: bytes, version: int | None = None) -> SealedAsset:
        """The sealed asset, read from a verified blob."""
        record = self.get_asset_record(asset_id, version)
        sealed = SealedAsset.from_bytes(self.blobs.get(record.blob_digest), limits=self.limits)
        if sealed.asset_id != record.asset_id or sealed.version != record.version:
            raise BlobCorruptedError("blob holds another asset than its metadata says")
        return sealed

    def list_assets(self, owner: str) -> list[AssetRecord]:
        with self._session() as s:
            rows = s.exec(
                select(VaultAssetRow)
                .where(VaultAssetRow.owner == _address(owner))
                .order_by(col(VaultAssetRow.asset_id), col(VaultAssetRow.version))
            ).all()
            return [_record(r) for r in rows]

    # ---- key packages -------------------------------------------------------------------------

    def put_package(self, package: KeyPackage, *, grantee: str) -> PackageRecord:
        """Store the key package of a grant (idempotent for identical bytes)."""
        grantee = _address(grantee)
        data = package.to_bytes()
        with self._session() as s:
            existing = s.get(VaultKeyPackageRow, package.grant_id.hex())
            if existing is not None:
                if existing.package != data:
                    raise ConflictError(f"grant {package.grant_id.hex()} has another package")
            else:
                existing = VaultKeyPackageRow(
                    grant_id=package.grant_id.hex(),
                    asset_id=package.asset_id.hex(),
                    version=package.version,
                    grantee=grantee,
                    package=data,
                    created_at=datetime.now(UTC),
                )
                s.add(existing)
                s.commit()
                s.refresh(existing)
            return PackageRecord(
                bytes.fromhex(existing.grant_id),
                bytes.fromhex(existing.asset_id),
                existing.version,
                existing.grantee,
                existing.created_at,
            )

    def get_package(self, grant_id: bytes) -> KeyPackage:
        with self._session() as s:
            row = s.get(VaultKeyPackageRow, grant_id.hex())
            if row is None:
                raise NotFoundError(f"no key package for grant {grant_id.hex()}")
            data = bytes(row.package)
        return KeyPackage.from_bytes(data, limits=self.limits)

    def delete_package(self, grant_id: bytes) -> None:
        """Crypto-shredding on revocation: the row is deleted, not flagged."""
        with self._session() as s:
            row = s.get(VaultKeyPackageRow, grant_id.hex())
            if row is None:
                raise NotFoundError(f"no key package for grant {grant_id.hex()}")
            s.delete(row)
            s.commit()
