"""The same node against an external EVM RPC and PostgreSQL: no code change, no anvil of its own.

The "external" chain is an anvil this test starts itself (the node must not start or stop it);
the database is a fresh PostgreSQL database. ``up --rpc-url … --database-url …`` deploys (no
manifest yet), admits its custodian, serves the story, and a second ``up`` reuses the manifest.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from _e2e_node import Node, Story, alive
from _fixtures import start_anvil
from eth_account import Account

from ledger.chain import DEV_PRIVATE_KEYS, EmbeddedChain
from ledger.rpc import RpcClient


@pytest.fixture(scope="module")
def external_chain() -> Iterator[EmbeddedChain]:
    with start_anvil() as chain:
        yield chain


def _fund(rpc_url: str, address: str) -> None:
    """The operator's step: the governor pays the custodian's gas money (a real transfer)."""
    with RpcClient(rpc_url) as rpc:
        governor = Account.from_key(DEV_PRIVATE_KEYS[0])
        nonce = int(rpc.call("eth_getTransactionCount", [governor.address, "pending"]), 16)
        price = int(rpc.call("eth_gasPrice"), 16)
        tx = {"to": address, "value": 10**19, "gas": 21_000, "gasPrice": price * 2}
        tx |= {"nonce": nonce, "chainId": int(rpc.call("eth_chainId"), 16)}
        raw = Account.sign_transaction(tx, governor.key).raw_transaction
        tx_hash = rpc.call("eth_sendRawTransaction", ["0x" + bytes(raw).hex()])
        deadline = time.monotonic() + 30
        while rpc.call("eth_getTransactionReceipt", [tx_hash]) is None:
            assert time.monotonic() < deadline, "funding transfer not mined"
            time.sleep(0.05)


def _count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


def test_up_against_external_rpc_and_postgresql(
    external_chain: EmbeddedChain, pg_databases: object, tmp_path: Path
) -> None:
    db_url = pg_databases.create("node_external")  # type: ignore[attr-defined]
    node = Node(
        tmp_path / "data",
        extra_env={"DATASAFE_LEDGER_PRIVATE_KEY": DEV_PRIVATE_KEYS[0]},
    )
    args = ("--rpc-url", external_chain.url, "--database-url", db_url)
    try:
        out = node.start(*args)
        assert "deployed now" in out and "admitted now" in out, out
        info = node.info
        assert info["rpc_url"] == external_chain.url
        assert not info.get("anvil_pid"), info  # no chain of its own
        assert "postgresql" in out and "datasafe.db" not in out
        assert httpx.get(f"{info['api_url']}/readyz", timeout=10).status_code == 200
        # on a chain it does not own, the node never mints money: it tells the operator
        custodian = re.search(r"custodian\s+(0x[0-9a-fA-F]{40})", out)
        assert custodian is not None, out
        assert f"custodian {custodian[1]} has no balance" in out and "fund it" in out
        _fund(external_chain.url, custodian[1])

        story = Story()
        url, rpc, manifest = info["api_url"], external_chain.url, node.manifest
        story.admit_members(rpc, manifest)
        story.publish_keys(url)
        story.register_schema(url, rpc, manifest)
        story.issue(url, rpc, manifest)
        story.grant(url, manifest)
        assert story.pull(url, manifest)["use"] == 1
        code, _ = node.stop()
        assert code == 0
        assert external_chain.pid is not None and alive(external_chain.pid)

        # the second start reuses the manifest and the PostgreSQL rows; the chain kept running
        out = node.start(*args)
        assert "deployed now" not in out and "admitted now" not in out, out
        assert node.manifest == manifest
        assert story.pull(node.info["api_url"], manifest)["use"] == 2
        assert _count(db_url, "api_grants") == 1
        code, _ = node.stop()
        assert code == 0
    finally:
        if node.proc is not None and node.proc.poll() is None:
            node.stop()
