"""``datasafe-node up`` as a user runs it: writes, stop, resume, crash, recover, reset.

One data dir for the module, played in order: every test continues the story of the
previous one, so run the file as a whole (a failure makes the later steps fail too).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator

import httpx
import pytest
from _e2e_node import Node, Story, wait_dead, wait_indexed

from node.errors import EXIT_USAGE


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    n = Node(tmp_path_factory.mktemp("node") / "data")
    yield n
    if n.proc is not None and n.proc.poll() is None:
        n.stop()


@pytest.fixture(scope="module")
def story() -> Story:
    return Story()


def _status(node: Node) -> tuple[int, dict[str, object]]:
    done = node.cli("status", "--json")
    return done.returncode, json.loads(done.stdout)


def test_first_up_deploys_admits_and_serves(node: Node, story: Story) -> None:
    out = node.start()
    assert "deployed now" in out and "admitted now" in out and "funded 100 ETH" in out
    info = node.info
    for what in (node.data_dir, info["api_url"], info["rpc_url"], "deployment.json", "anvil.log"):
        assert str(what) in out
    key_file = node.data_dir / "custodian.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_text().strip() not in out  # the key is never printed
    assert httpx.get(f"{info['api_url']}/readyz").status_code == 200
    code, status = _status(node)
    assert code == 0, status
    assert status["ok"] is True and status["node"] == {  # type: ignore[comparison-overlap]
        "running": True,
        "pid": info["pid"],
        "data_dir": str(node.data_dir),
    }
    api = status["api"]
    assert isinstance(api, dict) and api["readyz"] == 200 and api["indexer_lag"] is not None

    # a second `up` on the same data dir is refused and changes nothing
    second = node.cli("up")
    assert second.returncode == 1
    assert f"another `datasafe-node up` (pid {info['pid']})" in second.stderr
    # reset refuses without --yes, and while the node runs
    assert node.cli("reset").returncode == EXIT_USAGE
    busy = node.cli("reset", "--yes")
    assert busy.returncode == 1 and "another `datasafe-node up`" in busy.stderr
    assert (node.data_dir / "deployment.json").exists()

    # real writes through the API: the custodian relays the grant and records the pull
    url, rpc, manifest = info["api_url"], info["rpc_url"], node.manifest
    story.admit_members(rpc, manifest)
    story.publish_keys(url)
    story.register_schema(url, rpc, manifest)
    story.issue(url, rpc, manifest)
    story.grant(url, manifest)
    assert story.pull(url, manifest)["use"] == 1


def test_sigterm_then_up_resumes_with_everything(node: Node, story: Story) -> None:
    before = node.info
    manifest = node.manifest
    code, out = node.stop(signal.SIGTERM)
    assert code == 0, out
    assert out.rstrip().endswith("stopped")
    for pid in (before["anvil_pid"], before["api_pid"]):
        wait_dead(pid, 5)
    assert not (node.data_dir / "node.json").exists()
    assert node.cli("status", "--json").returncode != 0  # chain is down with the node

    out = node.start()
    assert "reused" in out and "already admitted" in out
    assert node.manifest == manifest
    url = node.info["api_url"]
    assert story.uses(url) == 1
    assert node.rows("api_grants") == 1 and node.rows("api_assets") == 1
    assert story.pull(url, manifest)["use"] == 2


def test_sigkill_of_the_node_alone_loses_nothing(node: Node, story: Story) -> None:
    """The children get SIGTERM from the kernel (parent-death signal): anvil writes its state."""
    before = node.info
    code, _ = node.stop(signal.SIGKILL)
    assert code == -signal.SIGKILL
    for pid in (before["anvil_pid"], before["api_pid"]):
        wait_dead(pid)

    out = node.start()
    assert "reused" in out
    url, manifest = node.info["api_url"], node.manifest
    assert story.uses(url) == 2
    assert story.pull(url, manifest)["use"] == 3
    # nothing duplicated: one grant, one asset, and the index holds each access once
    assert node.rows("api_grants") == 1 and node.rows("api_assets") == 1
    wait_indexed(node)
    assert node.rows("accesses") == 3


def test_power_cut_restores_what_the_service_relayed(node: Node, story: Story) -> None:
    """SIGKILL of node, anvil and API together: anvil may lose the blocks since its last state
    write while the database still has them. ``up`` re-submits the journaled transactions (or
    finds them still on chain) and serves a chain that agrees with the database again; the
    refusal when that is impossible is shown by ``tests/e2e/test_resubmit.py``."""
    url, manifest = node.info["api_url"], node.manifest
    assert story.pull(url, manifest)["use"] == 4
    wait_indexed(node)
    info = node.info
    for pid in (info["anvil_pid"], info["api_pid"], info["pid"]):
        os.kill(pid, signal.SIGKILL)
    node.finish()
    for pid in (info["anvil_pid"], info["api_pid"]):
        wait_dead(pid)

    out = node.start()
    assert "running" in out, out
    wait_indexed(node)
    # nothing lost, nothing duplicated: four accesses, and the next pull is the fifth use
    assert node.rows("accesses") == 4
    assert story.pull(node.info["api_url"], manifest)["use"] == 5
    wait_indexed(node)
    assert node.rows("accesses") == 5
    code, out = node.stop()
    assert code == 0 and out.rstrip().endswith("stopped"), out


def test_reset_then_fresh_up_and_down(node: Node, story: Story) -> None:
    done = node.cli("reset", "--yes")
    assert done.returncode == 0, done.stderr
    for name in ("chain", "deployment.json", "datasafe.db", "blobs"):
        assert str(node.data_dir / name) in done.stdout
        assert not (node.data_dir / name).exists()
    assert (node.data_dir / "custodian.key").exists()

    out = node.start()
    assert "deployed now" in out and "admitted now" in out
    code, status = _status(node)
    assert code == 0, status
    pid = node.info["pid"]
    down = node.cli("down")
    assert down.returncode == 0, down.stderr
    assert f"stopped node pid {pid}" in down.stdout
    code, out = node.finish()
    assert code == 0 and out.rstrip().endswith("stopped")
    assert node.cli("down").stdout.startswith("no node running")
