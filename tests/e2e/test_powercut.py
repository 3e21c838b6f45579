"""Power cuts at any moment (issue 14): the embedded node's journaling front, its replay,
the precise report of what cannot be restored and ``up --accept-loss``, SIGKILL of the API
(and the indexer it runs) alone, and a journal whose disk is full.

``test_chaos`` is bounded for CI: ``DATASAFE_CHAOS_ROUNDS`` cuts (default 6, one per order
the three processes can die in, at moments spread evenly over the workload's first seconds);
``scripts/chaos.py`` runs as many random ones as you like.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from _chaos import KILL_ORDERS, WALLET_KEY, Chaos, kill_plan
from _e2e_node import REPO, Node, Story, wait_dead, wait_indexed
from eth_account import Account

from ledger.chain import EmbeddedChain
from ledger.rpc import RpcClient
from node.errors import EXIT_CHAIN_BEHIND
from node.txlog import JOURNAL_FILE, TxLog, _line

ROUNDS = int(os.environ.get("DATASAFE_CHAOS_ROUNDS", str(len(KILL_ORDERS))))
PAD_TO = 16 * 1024 * 1024


def _kill_all(node: Node) -> None:
    info = node.info
    for pid in (info["anvil_pid"], info["api_pid"], info["pid"]):
        os.kill(pid, signal.SIGKILL)
    node.finish()
    for pid in (info["anvil_pid"], info["api_pid"]):
        wait_dead(pid)


def _transfer(rpc_url: str, key: str = WALLET_KEY, nonce: int | None = None) -> dict[str, object]:
    with RpcClient(rpc_url) as rpc:
        me = Account.from_key(key).address
        if nonce is None:
            nonce = int(rpc.call("eth_getTransactionCount", [me, "pending"]), 16)
        tx = {
            "to": Account.create().address,
            "value": 1,
            "gas": 21_000,
            "gasPrice": 2 * int(rpc.call("eth_gasPrice"), 16),
            "nonce": nonce,
            "chainId": 31337,
        }
        raw = "0x" + bytes(Account.sign_transaction(tx, key).raw_transaction).hex()
        reply = httpx.post(
            rpc_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": [raw]},
        ).json()
        return dict(reply)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = Node(tmp_path / "data")
    yield n
    if n.proc is not None and n.proc.poll() is None:
        n.stop()


@pytest.mark.timeout(1800)
def test_chaos(tmp_path: Path) -> None:
    """SIGKILL of node + anvil + API during a busy story, ROUNDS times (``kill_plan``)."""
    chaos = Chaos(tmp_path / "data", seed=int(os.environ.get("DATASAFE_CHAOS_SEED", "14")))
    started = time.monotonic()
    try:
        chaos.setup()
        for i, (after, order) in enumerate(kill_plan(ROUNDS)):
            out = chaos.round(after, order)
            print(f"round {i + 1}: cut at {after:.2f}s {order}, up {chaos.start_seconds[-1]:.1f}s")
            assert "running" in out, (i, out)
            assert not chaos.errors, (i, chaos.errors, out)
        told = chaos.check_told()
        # the index equals the chain, and the demo resumes on the restored chain
        chaos.check_index()
        assert not chaos.errors, chaos.errors
        # ... and the story resumes on the restored chain (members' fees never starve it).
        chaos.story.pull(chaos.node.info["api_url"], chaos.node.manifest)
        assert told > 0  # the kill points hit a busy node
        journal = TxLog.open(chaos.node.data_dir / "chain" / JOURNAL_FILE)
        assert len(journal.entries) >= told
        journal.close()
    finally:
        if chaos.node.proc is not None and chaos.node.proc.poll() is None:
            chaos.node.stop()
    print(
        f"chaos: {ROUNDS} kill points, {told} receipts checked, "
        f"{time.monotonic() - started:.0f}s, up median "
        f"{sorted(chaos.start_seconds)[len(chaos.start_seconds) // 2]:.1f}s"
    )


def test_sigkill_of_the_api_alone_loses_nothing(node: Node) -> None:
    """The API (which runs the indexer) SIGKILLed: the node restarts it; all told is kept."""
    node.start()
    story = Story()
    info, manifest = node.info, node.manifest
    story.admit_members(info["rpc_url"], manifest)
    story.publish_keys(info["api_url"])
    story.register_schema(info["api_url"], info["rpc_url"], manifest)
    story.issue(info["api_url"], info["rpc_url"], manifest)
    story.grant(info["api_url"], manifest)
    for use in (1, 2):
        assert story.pull(info["api_url"], manifest)["use"] == use
        os.kill(node.info["api_pid"], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while node.info["api_pid"] == info["api_pid"] or node.info["api_restarts"] < use:
            assert time.monotonic() < deadline, node.info
            time.sleep(0.2)
        info = node.info
        while httpx.get(f"{info['api_url']}/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert story.uses(info["api_url"]) == 2
    assert story.pull(info["api_url"], manifest)["use"] == 3
    wait_indexed(node)
    assert node.rows("accesses") == 3


def test_unrestorable_transactions_are_named_and_accept_loss_keeps_the_rest(node: Node) -> None:
    node.start()
    story = Story()
    info, manifest = node.info, node.manifest
    story.admit_members(info["rpc_url"], manifest)
    story.publish_keys(info["api_url"])
    story.register_schema(info["api_url"], info["rpc_url"], manifest)
    story.issue(info["api_url"], info["rpc_url"], manifest)
    code, out = node.stop(signal.SIGTERM)  # the state file holds all of the above
    assert code == 0, out
    state_file = node.data_dir / "chain" / "anvil-state.json"
    at_stop = state_file.read_bytes()

    node.start()
    info = node.info
    grant_id = story.grant(info["api_url"], manifest)
    kept = _transfer(info["rpc_url"])  # a member's own transaction, after the grant
    assert "result" in kept
    _kill_all(node)
    # The cut lost everything since the stop, whatever anvil wrote meanwhile (a busy machine
    # can let a state write land between the grant and the kill).
    state_file.write_bytes(at_stop)
    # Someone else used the chain meanwhile: the custodian's nonce the grant had is taken.
    custodian = (node.data_dir / "custodian.key").read_text().strip()
    with EmbeddedChain(state_dir=node.data_dir / "chain", state_interval=3600) as chain:
        nonce = int(
            httpx.post(
                chain.url,
                json={
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "eth_getTransactionCount",
                    "params": [Account.from_key(custodian).address, "latest"],
                },
            ).json()["result"],
            16,
        )
        assert "result" in _transfer(chain.url, custodian, nonce)
    # The transfer must be in the state the node starts from (anvil writes it on its way out).
    assert state_file.read_bytes() != at_stop, "the chain stopped without writing its state"
    grants_table = sa.create_engine(f"sqlite:///{node.data_dir / 'datasafe.db'}")
    with grants_table.connect() as conn:
        (grant_tx,) = conn.execute(sa.text("SELECT tx_hash FROM api_grants")).one()

    node.start(expect_running=False)
    code, out = node.finish()
    assert code == EXIT_CHAIN_BEHIND, out
    custodian_address = Account.from_key(custodian).address
    assert f"{grant_tx} (sender {custodian_address}, nonce {nonce})" in out, out
    assert f"api_grants {grant_id}" in out and "--accept-loss" in out, out
    assert "running" not in out

    out = node.start("--accept-loss")
    assert "accepted loss" in out and "quarantined" in out, out
    (quarantined,) = (node.data_dir / "quarantine").iterdir()
    saved = json.loads(quarantined.read_text())
    assert [g["grant_id"] for g in saved["api_grants"]] == [grant_id]
    with RpcClient(node.info["rpc_url"]) as rpc:  # everything else was restored
        assert rpc.call("eth_getTransactionReceipt", [kept["result"]]) is not None
    assert node.rows("api_grants") == 0 and node.rows("api_assets") == 1
    wait_indexed(node)
    # and the story goes on: a new grant, a pull
    story.grant(node.info["api_url"], manifest)
    assert story.pull(node.info["api_url"], manifest)["use"] == 1
    grants_table.dispose()
    # the next start has nothing to report
    code, out = node.stop(signal.SIGTERM)
    assert code == 0, out
    out = node.start()
    assert "lost" not in out, out


def _limit_file_size(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_journal_disk_full_refuses_cleanly(node: Node) -> None:
    """The journal cannot grow (a file-size limit on the node process): a transaction is
    refused with a clear error, is not forwarded, and the journal stays whole."""
    node.start()
    assert "result" in _transfer(node.info["rpc_url"])
    code, out = node.stop(signal.SIGTERM)
    assert code == 0, out
    journal = node.data_dir / "chain" / JOURNAL_FILE
    # The journal fills its disk: padded with valid records (outcome marks of no transaction)
    # to just under a file-size limit on the node process, far above any other file it writes.
    pad = _line(f"A 0x{'00' * 32} ?")
    with journal.open("ab") as f:
        f.write(pad * ((PAD_TO - journal.stat().st_size) // len(pad)))
    size = journal.stat().st_size
    limit = size + 200  # less than one more transaction record
    node.proc = subprocess.Popen(
        [sys.executable, "-m", "node", "up"],
        env=node.env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: _limit_file_size(limit),
    )
    assert node.proc.stdout is not None
    lines = []
    for line in node.proc.stdout:
        lines.append(line)
        if line.startswith("running"):
            break
    assert "".join(lines).rstrip().endswith("Ctrl-C to stop"), "".join(lines)
    rpc_url = node.info["rpc_url"]
    me = Account.from_key(WALLET_KEY).address
    with RpcClient(rpc_url) as rpc:
        before = int(rpc.call("eth_getTransactionCount", [me, "latest"]), 16)
        head = int(rpc.call("eth_blockNumber"), 16)
    reply = _transfer(rpc_url)
    assert "error" in reply, reply
    message = str(reply["error"])
    assert "journal" in message and "refused" in message, message
    with RpcClient(rpc_url) as rpc:  # not forwarded: nothing mined, nonce unchanged
        assert int(rpc.call("eth_getTransactionCount", [me, "latest"]), 16) == before
        assert int(rpc.call("eth_blockNumber"), 16) == head
    assert journal.stat().st_size <= limit
    code, out = node.stop(signal.SIGTERM)
    # nothing half-written: the journal reads back whole, with the old entries only
    log = TxLog.open(journal)
    assert len(log.entries) >= 1 and journal.stat().st_size == size, (size, out)
    log.close()


def test_backup_while_running_then_restore_on_an_empty_data_dir(node: Node, tmp_path: Path) -> None:
    """A consistent copy taken while the node runs brings back everything on a new data dir:
    database, blobs, manifest, the chain (state + journal, replayed) and the custodian key."""
    node.start()
    story = Story()
    info, manifest = node.info, node.manifest
    story.admit_members(info["rpc_url"], manifest)
    story.publish_keys(info["api_url"])
    story.register_schema(info["api_url"], info["rpc_url"], manifest)
    story.issue(info["api_url"], info["rpc_url"], manifest)
    grant_id = story.grant(info["api_url"], manifest)
    assert story.pull(info["api_url"], manifest)["use"] == 1
    told = _transfer(info["rpc_url"])
    backup = tmp_path / "backup"
    done = node.cli("backup", str(backup), "--include-custodian-key", timeout=180)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "copied chain/tx-journal.log" in done.stdout
    assert (backup / "custodian.key").stat().st_mode & 0o777 == 0o600
    _kill_all(node)  # and the machine is lost

    fresh = Node(tmp_path / "new-data")
    fresh.data_dir.mkdir()
    done = fresh.cli("restore", str(backup), timeout=180)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "restored chain/tx-journal.log" in done.stdout and "custodian.key" in done.stdout
    try:
        out = fresh.start()
        assert "replayed, 0 lost" in out, out
        with RpcClient(fresh.info["rpc_url"]) as rpc:
            assert rpc.call("eth_getTransactionReceipt", [told["result"]]) is not None
        url = fresh.info["api_url"]
        assert story.grant_id == grant_id and story.uses(url) == 1
        assert story.pull(url, fresh.manifest)["use"] == 2
    finally:
        if fresh.proc is not None and fresh.proc.poll() is None:
            fresh.stop()
