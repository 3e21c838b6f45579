"""The embedded chain's write-ahead journal: every raw transaction, fsync'd before anvil sees it.

One record per line, each ending in the CRC-32 of what precedes it on the line::

    T <unix ms> <raw transaction hex> <crc>     a transaction, journaled before it is forwarded
    A <tx hash> <status> <time> <crc>           anvil accepted it; receipt status and block
                                                time when it mined it at once (or ``?``)
    R <tx hash> <crc>                           anvil refused it (it never reached the chain)
    L <tx hash> <crc>                           an operator accepted its loss (``up --accept-loss``)

A power cut can leave a torn last line: :meth:`TxLog.open` keeps every complete, intact
record and cuts the file back to the end of the last one. A write that fails (disk full, file
size limit) is undone the same way before the error is reported: nothing half-written stays.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from eth_hash.auto import keccak

from node.errors import NodeError

JOURNAL_FILE = "tx-journal.log"


class JournalWriteError(NodeError):
    """The journal could not be written (disk full, file size limit, I/O error): the
    transaction was refused and nothing of it was kept."""


class JournalCorruptError(NodeError):
    """A record before the journal's last one is damaged: the journal cannot be trusted."""


@dataclass
class LoggedTx:
    raw: bytes
    at_ms: int
    tx_hash: str = field(init=False)
    accepted: bool = False
    #: receipt status when it was first mined (None: unknown)
    ok: bool | None = None
    #: timestamp of the block it was first mined in (None: unknown)
    block_time: int | None = None
    refused: bool = False
    loss_accepted: bool = False

    def __post_init__(self) -> None:
        self.tx_hash = "0x" + keccak(self.raw).hex()


def _line(body: str) -> bytes:
    return f"{body} {zlib.crc32(body.encode()):08x}\n".encode()


def _parse(line: bytes) -> tuple[str, list[str]] | None:
    try:
        text = line.decode().rstrip("\n")
        body, crc = text.rsplit(" ", 1)
        if int(crc, 16) != zlib.crc32(body.encode()):
            return None
        kind, *rest = body.split(" ")
    except ValueError:
        return None
    return kind, rest


class TxLog:
    """Append-only, fsync'd; thread-safe. ``entries`` are the transactions in journal order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[LoggedTx] = []
        self._by_hash: dict[str, LoggedTx] = {}
        self._lock = threading.Lock()
        self._fd = -1
        self._size = 0

    @classmethod
    def open(cls, path: Path) -> TxLog:
        log = cls(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = path.read_bytes() if path.exists() else b""
        good = 0
        lines = data.split(b"\n")
        for i, line in enumerate(lines[:-1]):  # the part after the last newline is torn
            parsed = _parse(line + b"\n")
            if parsed is None:
                if any(lines[i + 1 :]):
                    raise JournalCorruptError(
                        f"{path}: record {i + 1} is damaged and is not the last one"
                    )
                break
            log._apply(*parsed)
            good += len(line) + 1
        # A filesystem without a real file-size limit handles this; one with it only shrinks.
        log._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        if good != len(data):
            os.ftruncate(log._fd, good)
            os.fsync(log._fd)
        log._size = good
        # With RLIMIT_FSIZE, a write past the limit is an EFBIG error, not a killed process.
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        return log

    def _apply(self, kind: str, rest: list[str]) -> None:
        if kind == "T" and len(rest) == 2:
            tx = LoggedTx(bytes.fromhex(rest[1]), int(rest[0]))
            self.entries.append(tx)
            self._by_hash.setdefault(tx.tx_hash, tx)
        elif kind in ("A", "R", "L") and rest and rest[0] in self._by_hash:
            tx = self._by_hash[rest[0]]
            if kind == "A":
                tx.accepted, tx.refused = True, False
                tx.ok = {"1": True, "0": False}.get(rest[1]) if len(rest) > 1 else None
                tx.block_time = int(rest[2]) if len(rest) > 2 and rest[2].isdigit() else None
            elif kind == "R":
                tx.refused = not tx.accepted
            else:
                tx.loss_accepted = True

    def _write(self, data: bytes, *, sync: bool) -> None:
        """Append ``data`` entirely or not at all."""
        with self._lock:
            if self._fd < 0:
                raise JournalWriteError(f"{self.path} is closed")
            try:
                view = memoryview(data)
                while view:
                    n = os.write(self._fd, view)
                    view = view[n:]
                if sync:
                    os.fsync(self._fd)
            except OSError as exc:
                try:
                    os.ftruncate(self._fd, self._size)
                    os.fsync(self._fd)
                except OSError:
                    pass
                why = exc.strerror or exc
                raise JournalWriteError(
                    f"the transaction journal {self.path} cannot be written ({why}): "
                    "the transaction was refused and not forwarded"
                ) from exc
            self._size += len(data)

    def append(self, raws: list[bytes]) -> list[LoggedTx]:
        """Journal ``raws`` durably (one fsync for all of them)."""
        now = int(time.time() * 1000)
        txs = [LoggedTx(raw, now) for raw in raws]
        self._write(b"".join(_line(f"T {now} {raw.hex()}") for raw in raws), sync=True)
        for tx in txs:
            self.entries.append(tx)
            self._by_hash.setdefault(tx.tx_hash, tx)
        return txs

    def mark(self, kind: str, tx_hash: str, status: str = "", *, sync: bool = False) -> None:
        """An outcome (``A``/``R``/``L``); not fsync'd unless asked (the next append syncs it)."""
        rest = [tx_hash, *status.split()]
        self._write(_line(" ".join([kind, *rest])), sync=sync)
        self._apply(kind, rest)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                try:
                    os.fsync(self._fd)
                finally:
                    os.close(self._fd)
                    self._fd = -1
