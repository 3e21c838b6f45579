"""Ciphertext storage: a content-addressed blob store.

:class:`BlobStore` keeps blobs under ``<root>/<2 hex>/<64 hex>`` named by their
SHA-256. A put writes ``<root>/tmp/<random>``, fsyncs it, renames it into place
and fsyncs the directory, so a crash leaves either no blob or a whole one; puts
are idempotent. A get re-hashes the bytes and refuses (:class:`BlobCorruptedError`)
a blob that does not match its name. Opening the store removes leftover temp
files from interrupted writers.

The asset -> blob rows and the key packages (deleted on revocation: crypto-shredding) are
the service's (``api.db``: ``api_sealed_assets``, ``api_key_packages``), their one owner.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from vault.errors import (
    BlobCorruptedError,
    MalformedInputError,
    NotFoundError,
    StoreError,
)

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
