"""A power cut loses the chain's tail; ``up`` gives the chain back what the service relayed.

Anvil writes its ``--state`` only on a clean stop here (a one-hour interval), so a
SIGKILL of node, anvil and API together loses every block mined since the last
clean stop, while the service's database still records those writes. The next
``up`` must re-broadcast the journaled raw transactions (same bytes, so the same
hashes and grant ids), let the index follow, and serve a chain that agrees with
the database again, with nothing duplicated.
"""

from __future__ import annotations

import os
import secrets
import signal
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from _e2e_node import Node, Story, wait_dead, wait_indexed
from eth_hash.auto import keccak

from ledger.rpc import RpcClient
from node.errors import EXIT_CHAIN_BEHIND


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    n = Node(tmp_path_factory.mktemp("resubmit") / "data")
    yield n
    if n.proc is not None and n.proc.poll() is None:
        n.stop()


@pytest.fixture(scope="module")
def story() -> Story:
    return Story()


def _query(node: Node, sql: str) -> list[tuple[object, ...]]:
    engine = sa.create_engine(f"sqlite:///{node.data_dir / 'datasafe.db'}")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql)).all()]
    finally:
        engine.dispose()


def test_power_cut_then_up_resubmits_the_lost_writes(node: Node, story: Story) -> None:
    node.start()
    rpc_url, manifest = node.info["rpc_url"], node.manifest
    story.admit_members(rpc_url, manifest)
    story.publish_keys(node.info["api_url"])
    # A clean stop writes the chain state: members and keys are safe on disk.
    code, out = node.stop(signal.SIGTERM)
    assert code == 0, out

    node.start()
    url, rpc_url = node.info["api_url"], node.info["rpc_url"]
    # Writes through the API after the last state write: a member-signed schema and
    # anchor, a custodian-relayed grant, two custodian-batched access records.
    story.register_schema(url, rpc_url, manifest)
    story.issue(url, rpc_url, manifest)
    grant_id = story.grant(url, manifest)
    for use in (1, 2):
        assert story.pull(url, manifest)["use"] == use
    wait_indexed(node)
    journal = _query(node, "SELECT tx_hash, kind, block FROM api_tx_journal ORDER BY seq")
    kinds = sorted(str(k) for _, k, _ in journal)
    # + the two members' key bindings the custodian relayed before the clean stop
    assert kinds == ["custodian"] * 5 + ["member"] * 2, journal
    assert all(block is not None for _, _, block in journal)
    (grant_tx,) = _query(node, "SELECT tx_hash FROM api_grants")[0:1]
    with RpcClient(rpc_url) as rpc:
        head_before = int(rpc.call("eth_blockNumber"), 16)

    info = node.info
    for pid in (info["anvil_pid"], info["api_pid"], info["pid"]):
        os.kill(pid, signal.SIGKILL)
    node.finish()
    for pid in (info["anvil_pid"], info["api_pid"]):
        wait_dead(pid)

    out = node.start()
    # The node's own journal gives the chain back the five lost transactions before the
    # service's check runs; the service then finds them all on chain again.
    assert "5 replayed, 0 lost" in out, out
    url, rpc_url = node.info["api_url"], node.info["rpc_url"]
    with RpcClient(rpc_url) as rpc:
        # The very same transactions are back: same hashes, all successful.
        for tx_hash, _, _ in journal:
            receipt = rpc.call("eth_getTransactionReceipt", [tx_hash])
            assert receipt is not None and int(receipt["status"], 16) == 1, tx_hash
        assert int(rpc.call("eth_blockNumber"), 16) >= head_before - 5
        grant_receipt = rpc.call("eth_getTransactionReceipt", [grant_tx[0]])
    # The database's record of the grant points at the block the chain mined it in again.
    assert _query(node, "SELECT block FROM api_grants") == [
        (int(grant_receipt["blockNumber"], 16),)
    ]
    assert story.uses(url) == 2
    wait_indexed(node)
    # Nothing duplicated: one grant, one asset, two accesses, in the service and the index.
    assert node.rows("api_grants") == 1 and node.rows("api_assets") == 1
    assert node.rows("grants") == 1 and node.rows("accesses") == 2
    assert _query(node, "SELECT grant_id FROM grants") == [(grant_id,)]
    # And the node keeps working on the restored chain.
    assert story.pull(url, manifest)["use"] == 3
    code, out = node.stop(signal.SIGTERM)
    assert code == 0, out


def test_unrestorable_loss_is_refused(node: Node, story: Story) -> None:
    """Without the journals (the node's and the service's) nothing can be re-submitted: refuse."""
    # The previous test ended with a clean stop: everything so far is in the state file.
    story.schema_id = keccak(b"second schema " + secrets.token_bytes(8))
    story.asset_id = keccak(b"second asset " + secrets.token_bytes(8))
    node.start()
    url, rpc_url, manifest = node.info["api_url"], node.info["rpc_url"], node.manifest
    story.register_schema(url, rpc_url, manifest)
    story.issue(url, rpc_url, manifest)
    story.grant(url, manifest)
    wait_indexed(node)
    info = node.info
    for pid in (info["anvil_pid"], info["api_pid"], info["pid"]):
        os.kill(pid, signal.SIGKILL)
    node.finish()
    for pid in (info["anvil_pid"], info["api_pid"]):
        wait_dead(pid)
    engine = sa.create_engine(f"sqlite:///{node.data_dir / 'datasafe.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM api_tx_journal"))
    engine.dispose()
    (node.data_dir / "chain" / "tx-journal.log").unlink()
    grants_before = node.rows("api_grants")

    node.start(expect_running=False)
    code, out = node.finish()
    assert code == EXIT_CHAIN_BEHIND, out
    assert "the chain is behind the database" in out and "reset --yes" in out
    assert "running" not in out
    assert not (node.data_dir / "node.json").exists()
    assert node.rows("api_grants") == grants_before  # the refusal changed nothing
