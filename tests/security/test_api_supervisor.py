"""A crashed API does not stop the node: the supervisor restarts it and counts it.

``datasafe-node up`` runs for real (embedded anvil, ``python -m api`` child); the API is
killed with SIGSEGV, as the deep-nesting crash did, and must come back while the chain
process keeps running with its state.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from _e2e_node import Node, alive, wait_dead

from api.app import create_app
from api.settings import ApiSettings
from ledger.rpc import RpcClient
from node.supervise import API_RESTART_MAX_DELAY, ApiSupervisor


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = Node(tmp_path / "data")
    n.start()
    yield n
    if n.proc is not None and n.proc.poll() is None:
        n.stop()


def wait_for_restart(node: Node, old_pid: int, restarts: int) -> dict[str, Any]:
    """The run file once it names a new API process (bounded: 120 s of 0.2 s polls)."""
    for _ in range(600):
        info = node.info
        if info.get("api_pid") != old_pid and info.get("api_restarts") == restarts:
            return info
        assert node.proc is not None and node.proc.poll() is None, node.finish()[1]
        time.sleep(0.2)
    raise AssertionError(f"the API was not restarted: {node.info}")


def head(rpc_url: str) -> int:
    with RpcClient(rpc_url) as rpc:
        return int(rpc.call("eth_blockNumber"), 16)


def test_sigsegv_in_the_api_restarts_it_and_the_chain_keeps_running(node: Node) -> None:
    before = node.info
    anvil_pid, api_pid = before["anvil_pid"], before["api_pid"]
    ledger = node.manifest.ledger_address
    with RpcClient(before["rpc_url"]) as rpc:
        code = rpc.call("eth_getCode", [ledger, "latest"])
    head_before = head(before["rpc_url"])

    os.kill(api_pid, signal.SIGSEGV)
    wait_dead(api_pid)
    info = wait_for_restart(node, api_pid, 1)

    assert alive(anvil_pid) and info["anvil_pid"] == anvil_pid  # the chain was not touched
    assert head(info["rpc_url"]) >= head_before
    with RpcClient(info["rpc_url"]) as rpc:
        assert rpc.call("eth_getCode", [ledger, "latest"]) == code
    assert info["api_last_exit"] == -signal.SIGSEGV
    assert httpx.get(info["api_url"] + "/v1/info", timeout=10).status_code == 200

    done = node.cli("status", "--json")
    status = json.loads(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert status["api"]["restarts"] == 1
    assert status["api"]["last_exit"] == -signal.SIGSEGV
    assert "restarted 1 time" in node.cli("status").stdout

    # A second crash is counted too; the node still serves and stops cleanly.
    os.kill(info["api_pid"], signal.SIGKILL)
    wait_dead(info["api_pid"])
    info = wait_for_restart(node, info["api_pid"], 2)
    assert httpx.get(info["api_url"] + "/v1/info", timeout=10).status_code == 200
    returncode, output = node.stop()
    assert returncode == 0, output
    assert "restart 1" in output and "restart 2" in output


def test_backoff_grows_while_the_api_keeps_crashing() -> None:
    sup = ApiSupervisor()
    delays = [sup.crashed(-11) for _ in range(10)]
    assert delays[0] < delays[1] < delays[2]
    assert max(delays) == API_RESTART_MAX_DELAY
    assert sup.restarts == 10 and sup.last_exit == -11
    sup.up_since -= 3600  # up for an hour: the next crash starts the backoff again
    assert sup.crashed(1) == delays[0]


def test_metrics_count_the_restarts() -> None:
    app = create_app(ApiSettings(supervisor_restarts=3))
    assert b"datasafe_api_restarts 3.0" in app.state.metrics.render()
