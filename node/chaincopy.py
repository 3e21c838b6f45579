"""The embedded chain's part of ``datasafe-node backup`` / ``restore``.

Copied *after* the database (``api.backup``), while the node runs: first anvil's last state
file and its genesis pin, then the transaction journal. The journal is append-only and every
transaction is in it before anvil sees it, so the copied journal holds every transaction the
copied database cites; whatever the (older) state file lacks, the next ``up`` replays from it
(:mod:`node.replay`). A torn last journal line (copied mid-append) is cut on open.

The custodian key is excluded unless asked for (``--include-custodian-key``): a backup that
holds it must be kept as secret as the key itself.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from node.datadir import CHAIN_DIR, CUSTODIAN_KEY_FILE
from node.txlog import JOURNAL_FILE, TxLog

#: In the order they are copied (the journal last).
CHAIN_FILES = ("genesis-timestamp", "anvil-state.json", JOURNAL_FILE)


def _copy_prefix(src: Path, dest: Path) -> None:
    """``src`` as far as it is written now (an append-only file may grow while we copy)."""
    size = src.stat().st_size
    with src.open("rb") as i, dest.open("wb") as o:
        o.write(i.read(size))
        o.flush()
        os.fsync(o.fileno())


def backup_chain(data_dir: Path, dest: Path, *, include_key: bool) -> list[str]:
    """Copy the chain files (and the custodian key if asked) into ``dest``; the names copied."""
    copied = []
    chain = data_dir / CHAIN_DIR
    if chain.is_dir():
        (dest / CHAIN_DIR).mkdir(mode=0o700, exist_ok=True)
        for name in CHAIN_FILES:
            if (chain / name).exists():
                _copy_prefix(chain / name, dest / CHAIN_DIR / name)
                copied.append(f"{CHAIN_DIR}/{name}")
        if (dest / CHAIN_DIR / JOURNAL_FILE).exists():
            TxLog.open(dest / CHAIN_DIR / JOURNAL_FILE).close()  # cut a torn last line
    key = data_dir / CUSTODIAN_KEY_FILE
    if include_key and key.exists():
        fd = os.open(dest / CUSTODIAN_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.read_bytes())
        copied.append(CUSTODIAN_KEY_FILE)
    return copied


def restore_chain(src: Path, data_dir: Path) -> list[str]:
    """Put the backup's chain files (and key) back where the data dir has none.

    A data dir that still has its journal keeps it: it is a longer history than the backup's
    (the journal only grows), and ``up`` restores the chain from it.
    """
    restored = []
    chain = data_dir / CHAIN_DIR
    if (src / CHAIN_DIR / JOURNAL_FILE).exists() and not (chain / JOURNAL_FILE).exists():
        chain.mkdir(parents=True, exist_ok=True)
        for name in CHAIN_FILES:
            if (src / CHAIN_DIR / name).exists():
                shutil.copy2(src / CHAIN_DIR / name, chain / name)
                restored.append(f"{CHAIN_DIR}/{name}")
    key = data_dir / CUSTODIAN_KEY_FILE
    if (src / CUSTODIAN_KEY_FILE).exists() and not key.exists():
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write((src / CUSTODIAN_KEY_FILE).read_bytes())
        restored.append(CUSTODIAN_KEY_FILE)
    return restored
