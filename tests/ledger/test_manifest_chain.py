"""Deployment manifest checks, unreachable RPC, embedded chain lifecycle and persistence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from typer.testing import CliRunner

from ledger.chain import DEV_PRIVATE_KEYS, HISTORY_STATES, EmbeddedChain, free_port
from ledger.client import LedgerClient
from ledger.errors import (
    ChainMismatchError,
    ChainProcessError,
    CodeMismatchError,
    LedgerError,
    ManifestInvalidError,
    ManifestNotFoundError,
    RpcError,
    RpcUnavailableError,
)
from ledger.manifest import Manifest, deploy_ledger, load_verified, verify_manifest
from ledger.models import MemberKind, MemberStatus, Role
from ledger.rpc import AsyncRpcClient, RpcClient
from ledger.tx import LocalKeySender
from node.cli import app

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_dev_keys_are_the_nodes_accounts(anvil_chain: EmbeddedChain) -> None:
    with RpcClient(anvil_chain.url) as rpc:
        accounts = [a.lower() for a in rpc.call("eth_accounts")]
    assert [Account.from_key(k).address.lower() for k in DEV_PRIVATE_KEYS] == accounts[:10]


def test_manifest_roundtrip_and_verify(
    ledger_manifest: Manifest, anvil_chain: Any, tmp_path: Path
) -> None:
    path = tmp_path / "m.json"
    ledger_manifest.save(path)
    raw = json.loads(path.read_text())
    assert raw["chainId"] == 31337 and raw["ledger"] == ledger_manifest.ledger_address
    assert raw["addresses"] == {
        "DataSafeLedger": ledger_manifest.ledger_address,
        "DataSafeForwarder": raw["forwarder"],
        **raw["companions"],
    }
    with RpcClient(anvil_chain.url) as rpc:
        assert load_verified(path, rpc) == ledger_manifest
        # the forwarder's code is part of what a manifest pins
        other = ledger_manifest.model_copy(update={"forwarder_code_hash": "0x" + "00" * 32})
        with pytest.raises(CodeMismatchError):
            verify_manifest(rpc, other)


def test_wrong_chain_id_is_refused(ledger_manifest: Manifest, anvil_chain: Any) -> None:
    wrong = ledger_manifest.model_copy(update={"chain_id": 1})
    with RpcClient(anvil_chain.url) as rpc, pytest.raises(ChainMismatchError) as info:
        verify_manifest(rpc, wrong)
    assert (info.value.expected, info.value.actual) == (1, 31337)


def test_code_mismatch_is_refused(ledger_manifest: Manifest, anvil_chain: Any) -> None:
    no_code = ledger_manifest.model_copy(update={"ledger_address": "0x" + "12" * 20})
    other_hash = ledger_manifest.model_copy(update={"code_hash": "0x" + "00" * 32})
    with RpcClient(anvil_chain.url) as rpc:
        with pytest.raises(CodeMismatchError, match="no code"):
            verify_manifest(rpc, no_code)
        with pytest.raises(CodeMismatchError):
            verify_manifest(rpc, other_hash)


def test_missing_and_invalid_manifest(tmp_path: Path) -> None:
    with pytest.raises(ManifestNotFoundError):
        Manifest.load(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"chainId": "x"}')
    with pytest.raises(ManifestInvalidError):
        Manifest.load(bad)


async def test_unreachable_rpc_is_typed() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with RpcClient(url, retries=1, timeout=2) as rpc, pytest.raises(RpcUnavailableError):
        rpc.call("eth_chainId")
    async with AsyncRpcClient(url, retries=1, timeout=2) as arpc:
        with pytest.raises(RpcUnavailableError):
            await arpc.call("eth_chainId")


def test_cli_status_reports_failures(
    tmp_path: Path, anvil_chain: Any, ledger_manifest: Manifest
) -> None:
    runner = CliRunner()
    env = {"DATASAFE_LEDGER_RPC_URL": anvil_chain.url}
    from ledger.settings import get_settings

    get_settings.cache_clear()
    try:
        missing = runner.invoke(app, ["status", "--data-dir", str(tmp_path), "--json"], env=env)
        assert missing.exit_code == 1
        assert json.loads(missing.stdout)["error"] == "ManifestNotFoundError"
        ledger_manifest.model_copy(update={"chain_id": 5}).save(tmp_path / "deployment.json")
        wrong = runner.invoke(app, ["status", "--data-dir", str(tmp_path), "--json"], env=env)
        assert wrong.exit_code == 1
        assert json.loads(wrong.stdout)["error"] == "ChainMismatchError"
        ledger_manifest.save(tmp_path / "deployment.json")
        ok = runner.invoke(app, ["status", "--data-dir", str(tmp_path), "--json"], env=env)
        assert ok.exit_code == 0, ok.output
        assert json.loads(ok.stdout)["ledger"] == ledger_manifest.ledger_address
    finally:
        get_settings.cache_clear()


def test_restart_keeps_state_and_leaves_no_process(tmp_path: Path) -> None:
    governor = LocalKeySender.from_key(DEV_PRIVATE_KEYS[0])
    member = Account.from_key(DEV_PRIVATE_KEYS[5]).address
    with EmbeddedChain(state_dir=tmp_path) as chain:
        pid = chain.pid
        manifest = deploy_ledger(chain.url, governor, manifest_path=tmp_path / "m.json")
        with LedgerClient(chain.url, manifest.ledger_address, sender=governor) as client:
            client.send(client.calls.admit_member(member, Role.CONSUMER, MemberKind.BANK))
    assert pid is not None and not _alive(pid)
    assert chain.state_file is not None and chain.state_file.is_file()

    with EmbeddedChain(state_dir=tmp_path) as chain:
        with RpcClient(chain.url) as rpc:
            verify_manifest(rpc, Manifest.load(tmp_path / "m.json"))
        with LedgerClient(chain.url, manifest.ledger_address) as client:
            record = client.get_member(member)
    assert record.status is MemberStatus.ACTIVE
    assert record.roles == Role.CONSUMER


def test_embedded_chain_keeps_a_bounded_history() -> None:
    """A request reads at the block it pinned while other requests mine on: the embedded
    anvil answers up to ``HISTORY_STATES`` blocks back (one that keeps no history refuses
    the block one behind its head), and keeps no more (memory stays bounded)."""
    address = Account.from_key(DEV_PRIVATE_KEYS[5]).address
    with EmbeddedChain() as chain, RpcClient(chain.url, retries=0) as rpc:
        rpc.call("anvil_mine", [hex(HISTORY_STATES + 20)])
        head = int(rpc.call("eth_blockNumber"), 16)
        for back in (1, HISTORY_STATES - 1):
            assert int(rpc.call("eth_getBalance", [address, hex(head - back)]), 16) > 0
        with pytest.raises(RpcError, match="BlockOutOfRange"):
            rpc.call("eth_getBalance", [address, hex(head - HISTORY_STATES - 10)])


def test_no_stray_process_after_exception(tmp_path: Path) -> None:
    pid = None
    with pytest.raises(RuntimeError, match="boom"), EmbeddedChain() as chain:
        pid = chain.pid
        raise RuntimeError("boom")
    assert pid is not None and not _alive(pid)


def test_bad_binary_and_failed_start(tmp_path: Path) -> None:
    with pytest.raises(ChainProcessError, match="does not exist"):
        EmbeddedChain(anvil_path=tmp_path / "nope")
    with EmbeddedChain() as first:
        # Same port: the second anvil exits during startup.
        second = EmbeddedChain(port=first.port, startup_timeout=10)
        with pytest.raises(ChainProcessError, match="in use"):
            second.start()
        assert second.proc is None


def test_node_up_deploys_then_reuses(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATASAFE_LEDGER_ANVIL_PORT": str(free_port()),
        "DATASAFE_LEDGER_DATA_DIR": str(tmp_path),
        "DATASAFE_API_PORT": str(free_port()),
    }
    env.pop("DATASAFE_LEDGER_PRIVATE_KEY", None)
    outputs = []
    for _ in range(2):
        proc = subprocess.Popen(
            [sys.executable, "-c", "from node.cli import main; main()", "up"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("running"):
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outputs.append("".join(lines) + out)
    assert "deployed now" in outputs[0]
    assert "reused" in outputs[1]
    assert "stopped" in outputs[1]
    manifest = Manifest.load(tmp_path / "deployment.json")
    assert manifest.chain_id == 31337


def test_every_failure_is_a_ledger_error() -> None:
    for cls in (
        ChainMismatchError,
        CodeMismatchError,
        ManifestNotFoundError,
        RpcUnavailableError,
        ChainProcessError,
    ):
        assert issubclass(cls, LedgerError)
