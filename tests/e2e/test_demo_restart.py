"""The demo survives the node being stopped mid-scenario: SIGTERM, then SIGKILL of the node
process (its anvil and API children die with it and anvil writes its state), ``up`` again,
``datasafe-node demo --resume`` continues the same run from its first incomplete step
(and re-plays steps whose effects landed but were not recorded without repeating them).

Afterwards nothing is lost and nothing is duplicated: the same members and assets, each
asset anchored once, each grant made once, key packages kept only for live grants, and the
index holds exactly the grants and accesses counted here from ``eth_getLogs``.
"""

from __future__ import annotations

import json
import signal
import stat
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from _e2e_node import Node, wait_dead, wait_indexed

from ledger.abi import ledger_abi
from ledger.rpc import RpcClient
from node.demo import STEPS


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    n = Node(tmp_path_factory.mktemp("demo-restart") / "data")
    n.start()
    yield n
    if n.proc is not None and n.proc.poll() is None:
        n.stop()


def _demo(node: Node, *args: str) -> dict[str, Any]:
    done = node.cli("demo", "--json", *args, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def _events(node: Node) -> list[Any]:
    abi = ledger_abi()
    with RpcClient(node.info["rpc_url"]) as rpc:
        logs = rpc.call(
            "eth_getLogs",
            [
                {
                    "address": node.manifest.ledger_address,
                    "fromBlock": hex(node.manifest.deploy_block),
                    "toBlock": "latest",
                }
            ],
        )
    return [e for e in (abi.decode_log(lg) for lg in logs) if e is not None]


def _column(node: Node, table: str, column: str) -> list[str]:
    engine = sa.create_engine(f"sqlite:///{node.data_dir / 'datasafe.db'}")
    try:
        with engine.connect() as conn:
            return [str(v).lower() for v in conn.scalars(sa.text(f"SELECT {column} FROM {table}"))]
    finally:
        engine.dispose()


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def test_demo_resumes_after_sigterm_and_sigkill(node: Node) -> None:
    # 1. two steps (members admitted, records issued), then the node is stopped (SIGTERM)
    first = _demo(node, "--stop-after", "2")
    assert first["ok"] is False and first["run"] == 1
    assert first["completed"] == ["admit", "issue"] and first["grants"] == {}
    folder = node.data_dir / "demo" / "run-1"
    # the members' keys are in wallet homes of their own, encrypted; no plaintext key file
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not (folder / "members.json").exists()
    for who in first["members"]:
        home = folder / "wallets" / who
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        keystore = home / "profiles" / who / "keystore.json"
        assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    saved = json.loads((folder / "state.json").read_text())
    assert saved["completed"] == ["admit", "issue"] and set(saved["issued"]) == set(first["assets"])
    # as if the demo had died after both steps' effects but before recording them (the
    # per-record checkpoints of the issue step are kept): both steps are played again
    saved.update(completed=[], narration=[])
    (folder / "state.json").write_text(json.dumps(saved))
    code, _ = node.stop(signal.SIGTERM)
    assert code == 0

    # 2. up again; resume: the same run and members, the loan and the notary steps
    node.start()
    second = _demo(node, "--resume", "--stop-after", "4")
    assert second["run"] == 1 and second["resumed"] is True and second["ok"] is False
    assert second["completed"] == list(STEPS[:4])
    assert second["members"] == first["members"] and second["assets"] == first["assets"]
    assert set(second["grants"]) == {"loan_identity", "loan_housing_fund", "notary"}
    notes = [n for step in second["steps"] for n in step["notes"]]
    assert "11 member(s) were already admitted (resumed)" in notes

    # 3. SIGKILL of the node process alone: its children go down with it
    before = node.info
    code, _ = node.stop(signal.SIGKILL)
    assert code == -signal.SIGKILL
    for pid in (before["anvil_pid"], before["api_pid"]):
        wait_dead(pid)
    out = node.start()
    assert "reused" in out
    done = _demo(node, "--resume")
    assert done["ok"] is True and done["run"] == 1 and done["completed"] == list(STEPS)
    assert done["members"] == first["members"] and done["assets"] == first["assets"]
    assert done["steps"][0]["step"].startswith("The big-data bureau")
    assert len(done["steps"]) == 14  # every step narrated once across the three sessions
    pulls = [(a["by"], a["grant"], a["use"], a["uses_on_chain"]) for a in done["accesses"]]
    assert pulls == [
        ("bank", "loan_identity", 1, 1),
        ("bank", "loan_housing_fund", 1, 1),
        ("notary", "notary", 1, 1),
        ("bank", "valuation", 1, 1),
    ]
    assert done["correction"]["new_version"] == 2
    assert done["trace"]["citizen_accesses"] == done["trace"]["chain_citizen_accesses"] == 4
    assert done["claim"]["status"] == "fulfilled"
    assert done["sealed"]["seal_id"] in done["oversight"]["overdue_seals"]
    # a finished run is not resumed again, and an unknown run is one clear line
    again = node.cli("demo", "--resume")
    assert again.returncode != 0 and "no unfinished demo run" in again.stderr
    assert "no demo run 7" in node.cli("demo", "--run", "7").stderr

    # 4. chain, index and service agree: nothing lost, nothing duplicated
    wait_indexed(node)
    events = _events(node)
    names = Counter(e.name for e in events)
    anchored = [_hex(e.args["assetId"]) for e in events if e.name == "AssetAnchored"]
    assert len(anchored) == len(set(anchored)) == 6  # five records and the claimed certificate
    claimed = done["claim"]["asset_id"]
    assert {a["asset_id"] for a in done["assets"].values()} | {claimed} == set(anchored)
    superseded = [e for e in events if e.name == "AssetSuperseded"]
    assert len(superseded) == 2
    assert names["RecallAcknowledged"] == names["DeletionAcknowledged"] == 1
    granted = [_hex(e.args["grantId"]) for e in events if e.name == "ConsentGranted"]
    revoked = {_hex(e.args["grantId"]) for e in events if e.name == "ConsentRevoked"}
    assert len(granted) == len(set(granted)) == 4
    assert {g["grant_id"] for g in done["grants"].values()} == set(granted)
    assert names["Accessed"] == 4 and len(revoked) == 2
    admitted = [str(e.args["account"]).lower() for e in events if e.name == "MemberAdmitted"]
    assert len(admitted) == len(set(admitted))
    assert {m["address"].lower() for m in done["members"].values()} <= set(admitted)

    # the service's tables
    assert sorted(_column(node, "api_grants", "grant_id")) == sorted(granted)
    assert sorted(_column(node, "api_key_packages", "grant_id")) == sorted(set(granted) - revoked)
    api_assets = _column(node, "api_assets", "asset_id")
    # five records, two versions 2 and the claimed certificate
    assert len(api_assets) == len(set(api_assets)) == 8
    assert set(anchored) < set(api_assets)
    # the index
    assert sorted(_column(node, "grants", "grant_id")) == sorted(granted)
    assert sorted(_column(node, "accesses", "tx_hash")) == sorted(
        e.tx_hash.lower() for e in events if e.name == "Accessed"
    )
