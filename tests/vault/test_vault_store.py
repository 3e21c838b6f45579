"""Blob store and SQL metadata (real filesystem, real SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vault.errors import (
    BlobCorruptedError,
    MalformedInputError,
    NotFoundError,
    StoreError,
)
from vault.store import BlobStore

OWNER = "0x" + "ab" * 20
ISSUER = "0x" + "cd" * 20
GRANTEE = "0x" + "ef" * 20
REPO = Path(__file__).resolve().parents[2]


def test_blob_put_get_idempotent(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    d = store.put(b"hello")
    assert d == hashlib.sha256(b"hello").digest()
    assert store.put(b"hello") == d
    assert store.get(d) == b"hello"
    assert list(store) == [d]
    assert store.delete(d) is True
    assert store.delete(d) is False
    with pytest.raises(NotFoundError):
        store.get(d)


def test_corrupted_blob_is_never_served_and_a_put_repairs_it(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    d = store.put(b"payload")
    store.path_for(d).write_bytes(b"pAyload")
    with pytest.raises(BlobCorruptedError):
        store.get(d)
    store.put(b"payload")
    assert store.get(d) == b"payload"


def test_bad_digest(tmp_path: Path) -> None:
    with pytest.raises(MalformedInputError):
        BlobStore(tmp_path).get(b"\x00" * 31)


def test_unwritable_root(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_bytes(b"")
    with pytest.raises(StoreError):
        BlobStore(f / "sub")


_WRITER = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, sys.argv[2])
    import vault.store as store_mod

    def stall(src, dst):  # runs after the temp file is written and fsynced
        print("ready", flush=True)
        time.sleep(600)

    store_mod.os.replace = stall
    store_mod.BlobStore(sys.argv[1]).put(b"x" * 100_000)
    """
)


def test_writer_killed_before_rename_leaves_no_blob(tmp_path: Path) -> None:
    root = tmp_path / "blobs"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(root), str(REPO)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        leftovers = list((root / "tmp").iterdir())
        assert len(leftovers) == 1 and leftovers[0].stat().st_size == 100_000
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    digest = hashlib.sha256(b"x" * 100_000).digest()
    store = BlobStore(root)  # restart: recovery removes the leftover
    assert list((root / "tmp").iterdir()) == []
    with pytest.raises(NotFoundError):
        store.get(digest)
    assert list(store) == []
    assert store.put(b"x" * 100_000) == digest
    assert store.get(digest) == b"x" * 100_000


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from vault.settings import VaultSettings, get_settings

    monkeypatch.setenv("DATASAFE_VAULT_MAX_FIELDS", "12")
    s = VaultSettings()
    assert s.limits.max_fields == 12
    get_settings.cache_clear()
    try:
        assert get_settings() is get_settings()
        assert get_settings().limits.max_fields == 12
    finally:
        get_settings.cache_clear()
    assert os.environ["DATASAFE_VAULT_MAX_FIELDS"] == "12"
