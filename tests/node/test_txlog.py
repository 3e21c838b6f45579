"""The write-ahead journal file: torn tails are cut, damage before the tail is refused, a
write past a real file-size limit is refused and undone."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from ledger.chain import DEV_PRIVATE_KEYS
from node.txlog import JournalCorruptError, TxLog


def _raw(nonce: int) -> bytes:
    tx = {
        "to": "0x000000000000000000000000000000000000dEaD",
        "value": 1,
        "gas": 21_000,
        "gasPrice": 10**9,
        "nonce": nonce,
        "chainId": 31337,
    }
    return bytes(Account.sign_transaction(tx, DEV_PRIVATE_KEYS[1]).raw_transaction)


def test_round_trip_with_outcomes(tmp_path: Path) -> None:
    log = TxLog.open(tmp_path / "j.log")
    a, b, c = log.append([_raw(0), _raw(1), _raw(2)])
    log.mark("A", a.tx_hash, "1 1700000000")
    log.mark("R", b.tx_hash)
    log.mark("L", c.tx_hash, sync=True)
    log.close()
    again = TxLog.open(tmp_path / "j.log")
    assert [t.raw for t in again.entries] == [_raw(0), _raw(1), _raw(2)]
    first, second, third = again.entries
    assert first.accepted and first.ok is True and first.block_time == 1_700_000_000
    assert second.refused and not second.accepted
    assert third.loss_accepted
    again.close()


def test_a_torn_last_record_is_cut(tmp_path: Path) -> None:
    path = tmp_path / "j.log"
    log = TxLog.open(path)
    log.append([_raw(0)])
    log.close()
    whole = path.stat().st_size
    with path.open("ab") as f:
        f.write(b"T 1700000000000 f86b0185")  # the power went out mid-append
    log = TxLog.open(path)
    assert len(log.entries) == 1 and path.stat().st_size == whole
    log.append([_raw(1)])  # and the journal goes on from the last whole record
    log.close()
    assert len(TxLog.open(path).entries) == 2


def test_damage_before_the_tail_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.log"
    log = TxLog.open(path)
    log.append([_raw(0)])
    log.append([_raw(1)])
    log.close()
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError, match="record 1 is damaged"):
        TxLog.open(path)


CHILD = """
import sys
from pathlib import Path
from node.txlog import JournalWriteError, TxLog
log = TxLog.open(Path(sys.argv[1]))
try:
    log.append([bytes.fromhex(sys.argv[2])])
except JournalWriteError as exc:
    print("refused:", exc)
"""


def test_a_write_past_the_file_size_limit_is_refused_and_undone(tmp_path: Path) -> None:
    path = tmp_path / "j.log"
    log = TxLog.open(path)
    log.append([_raw(0)])
    log.close()
    size = path.stat().st_size
    limit = size + 100  # less than one more record: the write is cut short by the kernel

    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), _raw(1).hex()],
        capture_output=True,
        text=True,
        preexec_fn=preexec,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "refused:" in done.stdout and "File too large" in done.stdout, done.stdout
    assert path.stat().st_size == size  # the partial record was cut back
    assert [t.raw for t in TxLog.open(path).entries] == [_raw(0)]


def test_a_state_file_cut_mid_write_is_set_aside(tmp_path: Path) -> None:
    from node.up import _set_aside_torn_state

    TxLog.open(tmp_path / "tx-journal.log").close()
    state = tmp_path / "anvil-state.json"
    state.write_text('{"block": {"number": "0x1"}, "accounts": {"0x')  # cut mid-write
    _set_aside_torn_state(state)
    assert not state.exists()
    assert [p.name.startswith("anvil-state.json.torn-") for p in tmp_path.iterdir()].count(True)
    state.write_text("{}")  # a whole one stays
    _set_aside_torn_state(state)
    assert state.exists()
