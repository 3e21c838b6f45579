"""Indexer against a real anvil and real SQLite/PostgreSQL databases.

The chain driver here deploys the forge-built DataSafeLedger and produces every
kind of ledger event through the contract's public functions.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from eth_account import Account
from eth_utils import keccak
from web3 import Web3

from ledger import db
from ledger.indexer import (
    ChainBehindDatabaseError,
    ChainMismatchError,
    Cursor,
    Indexer,
    LogRangeRefusedError,
    ReorgTooDeepError,
    UnknownEventError,
)
from ledger.indexer._abi import load_abi

ROOT = Path(__file__).resolve().parents[2]
# The platform binary itself (the npm shim would leave it orphaned when terminated).
_ANVIL_NATIVE = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
ANVIL = _ANVIL_NATIVE if _ANVIL_NATIVE.exists() else ROOT / "node_modules" / ".bin" / "anvil"

ISSUER, CONSUMER, SUBJECT = 2, 4, 32
KIND_INDIVIDUAL, KIND_ENTERPRISE, KIND_BANK, KIND_DEPARTMENT = 1, 2, 3, 6

EVENT_TABLES = (
    "member_events",
    "schemas",
    "asset_events",
    "grant_events",
    "accesses",
    "access_refusals",
    "skipped_logs",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _artifact() -> dict[str, Any]:
    # forge may be rewriting out/ concurrently: retry a missing/partial file for a while.
    deadline = time.monotonic() + 120
    while True:
        try:
            return _read_artifact()
        except (OSError, ValueError, KeyError):
            if time.monotonic() > deadline:
                pytest.fail("DataSafeLedger artifact missing (forge build / gen_artifacts.py)")
            time.sleep(1)


def _read_artifact() -> dict[str, Any]:
    for path in (
        ROOT / "ledger" / "artifacts" / "DataSafeLedger.json",
        ROOT / "out" / "DataSafeLedger.sol" / "DataSafeLedger.json",
    ):
        if path.is_file():
            data = json.loads(path.read_text())
            bytecode = data.get("bytecode")
            if isinstance(bytecode, dict):
                bytecode = bytecode["object"]
            return {"abi": data["abi"], "bytecode": bytecode}
    raise OSError("no artifact")


class AnvilProcess:
    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(ANVIL), "--host", "127.0.0.1", "--port", str(self.port), "--silent"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("anvil did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilProcess]:
    node = AnvilProcess()
    yield node
    node.stop()


@dataclass
class Ledger:
    w3: Web3
    address: str
    deploy_block: int
    contract: Any
    governor: str
    issuer: str
    subject: str
    bank_key: Any
    url: str

    def tx(self, fn: Any, sender: str) -> Any:
        tx_hash = fn.transact({"from": sender})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        assert receipt["status"] == 1
        return receipt

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        return self.w3.provider.make_request(method, params or [])["result"]  # type: ignore[arg-type]

    def mine(self, n: int = 1) -> None:
        self.rpc("anvil_mine", [hex(n)])

    # Domain actions ------------------------------------------------------------------

    def anchor(self, tag: str) -> str:
        asset_id = keccak(text=f"asset:{tag}")
        self.tx(
            self.contract.functions.anchorAsset(
                asset_id, self.subject, SCHEMA_ID, keccak(text=f"root:{tag}"), keccak(text=tag)
            ),
            self.issuer,
        )
        return "0x" + asset_id.hex()

    def grant(self, asset_id: str, nonce: int, max_uses: int = 0) -> str:
        now = self.w3.eth.get_block("latest")["timestamp"]
        terms = (bytes.fromhex(asset_id[2:]), self.bank, 1, 0b11, 0, now + 10**6, max_uses)
        self.tx(self.contract.functions.grant(terms, nonce), self.subject)
        gid = self.contract.functions.grantIdOf(self.subject, nonce).call()
        return "0x" + bytes(gid).hex()

    def access(self, grant_ids: list[str], first_nonce: int) -> None:
        requests, sigs = [], []
        for i, gid in enumerate(grant_ids):
            req = (bytes.fromhex(gid[2:]), 0b01, first_nonce + i, 2**40)
            digest = self.contract.functions.hashAccessRequest(req).call()
            sigs.append(self.bank_key.unsafe_sign_hash(digest).signature)
            requests.append(req)
        self.tx(self.contract.functions.recordAccessBatch(requests, sigs), self.governor)

    @property
    def bank(self) -> str:
        return str(self.bank_key.address)


SCHEMA_ID = keccak(text="schema:identity")


@pytest.fixture
def ledger(anvil: AnvilProcess) -> Iterator[Ledger]:
    """A freshly deployed ledger with members and a schema; chain state reverted afterwards."""
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    art = _artifact()
    accounts = w3.eth.accounts
    governor, issuer, subject = accounts[0], accounts[1], accounts[2]
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor(governor).transact({"from": governor})
    )
    contract = w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])
    bank_key = Account.from_key(keccak(text="bank"))
    led = Ledger(
        w3,
        receipt["contractAddress"],
        receipt["blockNumber"],
        contract,
        governor,
        issuer,
        subject,
        bank_key,
        anvil.url,
    )
    key = keccak(text="evidence")
    led.tx(contract.functions.admitMember(issuer, ISSUER, KIND_DEPARTMENT, key), governor)
    led.tx(contract.functions.admitMember(subject, SUBJECT, KIND_INDIVIDUAL, key), governor)
    led.tx(contract.functions.admitMember(led.bank, CONSUMER, KIND_BANK, key), governor)
    led.tx(contract.functions.registerSchema(SCHEMA_ID, 4, keccak(text="fields")), issuer)
    yield led
    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]


def make_indexer(ledger: Ledger, db_url: str, **kw: Any) -> Indexer:
    return Indexer(
        rpc_url=kw.pop("rpc_url", ledger.url),
        ledger_address=ledger.address,
        engine=db.make_engine(db_url),
        start_block=ledger.deploy_block,
        **kw,
    )


def chain_logs(ledger: Ledger) -> set[tuple[int, int, str, str]]:
    logs = ledger.rpc(
        "eth_getLogs",
        [{"address": ledger.address, "fromBlock": hex(ledger.deploy_block), "toBlock": "latest"}],
    )
    return {
        (
            int(lg["blockNumber"], 16),
            int(lg["logIndex"], 16),
            lg["blockHash"],
            lg["transactionHash"],
        )
        for lg in logs
    }


def db_logs(engine: sa.Engine) -> list[tuple[int, int, str, str]]:
    rows: list[tuple[int, int, str, str]] = []
    with engine.connect() as conn:
        for name in EVENT_TABLES:
            table = db.INDEXER_METADATA.tables[name]
            rows.extend(
                (r.block_number, r.log_index, r.block_hash, r.tx_hash)
                for r in conn.execute(
                    sa.select(
                        table.c.block_number, table.c.log_index, table.c.block_hash, table.c.tx_hash
                    )
                )
            )
    return rows


def assert_index_matches_chain(ledger: Ledger, engine: sa.Engine) -> None:
    rows = db_logs(engine)
    assert len(rows) == len(set(rows)), "duplicate event rows"
    assert set(rows) == chain_logs(ledger)
    # Current-state rows agree with the contract's storage.
    with engine.connect() as conn:
        for g in conn.execute(sa.select(db.grants)).mappings():
            onchain = ledger.contract.functions.getGrant(bytes.fromhex(g["grant_id"][2:])).call()
            assert g["uses"] == onchain[7]
            assert g["status"] == {1: "active", 2: "paused", 3: "revoked"}[onchain[8]]
            assert g["fields_mask"] == onchain[3]
        for m in conn.execute(sa.select(db.members)).mappings():
            onchain = ledger.contract.functions.getMember(
                Web3.to_checksum_address(m["address"])
            ).call()
            assert (m["roles"], m["kind"]) == (onchain[0], onchain[1])
            assert m["status"] == {1: "active", 2: "suspended"}[onchain[2]]
        for a in conn.execute(sa.select(db.assets)).mappings():
            onchain = ledger.contract.functions.getAsset(bytes.fromhex(a["asset_id"][2:])).call()
            assert (
                a["status"]
                == {1: "active", 2: "disputed", 3: "superseded", 4: "retired"}[onchain[1]]
            )


def busy_history(ledger: Ledger) -> list[str]:
    """One of every kind of event: assets, grants, status changes, accesses, refusals."""
    c = ledger.contract
    a1 = ledger.anchor("a1")
    a2 = ledger.anchor("a2")
    new_a1 = keccak(text="asset:a1v2")
    ledger.tx(
        c.functions.supersedeAsset(
            bytes.fromhex(a1[2:]), new_a1, keccak(text="r2"), keccak(text="d2")
        ),
        ledger.issuer,
    )
    ledger.tx(c.functions.disputeAsset(bytes.fromhex(a2[2:]), keccak(text="wrong")), ledger.subject)
    ledger.tx(
        c.functions.resolveDispute(bytes.fromhex(a2[2:]), keccak(text="fixed")), ledger.issuer
    )
    g1 = ledger.grant("0x" + new_a1.hex(), 1)
    g2 = ledger.grant(a2, 2, max_uses=5)
    ledger.access([g1, g2, g1], 100)
    ledger.tx(c.functions.pause(bytes.fromhex(g2[2:])), ledger.subject)
    ledger.access([g2], 200)  # refused: paused
    ledger.tx(c.functions.resume(bytes.fromhex(g2[2:])), ledger.subject)
    ledger.tx(c.functions.revoke(bytes.fromhex(g1[2:])), ledger.subject)
    ledger.tx(c.functions.bindEncryptionKey(keccak(text="enc2"), b"proof"), ledger.subject)
    ledger.tx(c.functions.suspendMember(ledger.bank, keccak(text="audit")), ledger.governor)
    ledger.tx(c.functions.reinstateMember(ledger.bank, keccak(text="ok")), ledger.governor)
    return [g1, g2]


# Tests -------------------------------------------------------------------------------


def test_indexes_every_event_kind_and_is_idempotent(ledger: Ledger, db_url: str) -> None:
    busy_history(ledger)
    indexer = make_indexer(ledger, db_url, batch_size=3)
    result = indexer.sync_once()
    assert result.events == len(chain_logs(ledger))
    assert result.last_block == ledger.w3.eth.block_number
    assert_index_matches_chain(ledger, indexer.engine)
    # A second sync and a second indexer on the same DB add nothing.
    assert indexer.sync_once().events == 0
    again = make_indexer(ledger, db_url)
    assert again.sync_once().events == 0
    assert_index_matches_chain(ledger, indexer.engine)
    with indexer.engine.connect() as conn:
        kinds = {r[0] for r in conn.execute(sa.text("select event from grant_events"))}
        assert kinds == {"ConsentGranted", "ConsentRevoked", "ConsentPaused", "ConsentResumed"}
        assert conn.execute(sa.text("select count(*) from accesses")).scalar_one() == 3
        assert conn.execute(sa.text("select count(*) from access_refusals")).scalar_one() == 1
        owners = {r[0] for r in conn.execute(sa.text("select owner from accesses"))}
        assert owners == {ledger.subject.lower()}
    indexer.close()
    again.close()


def test_reorg_rolls_back_to_common_ancestor_and_reindexes(ledger: Ledger, db_url: str) -> None:
    grants = busy_history(ledger)
    indexer = make_indexer(ledger, db_url, batch_size=4)
    indexer.sync_once()
    fork_point = ledger.w3.eth.block_number
    snapshot = ledger.rpc("evm_snapshot")
    # Branch A: indexed, then abandoned.
    a3 = ledger.anchor("a3")
    ledger.grant(a3, 3)
    ledger.access([grants[1], grants[1]], 300)
    ledger.tx(
        ledger.contract.functions.suspendMember(ledger.subject, keccak(text="x")), ledger.governor
    )
    indexer.sync_once()
    branch_a_head = ledger.w3.eth.block_number
    assert_index_matches_chain(ledger, indexer.engine)
    # Branch B: different events from the fork point, and longer.
    ledger.rpc("evm_revert", [snapshot])
    a4 = ledger.anchor("a4")
    g4 = ledger.grant(a4, 4)
    ledger.access([g4, grants[1]], 400)
    ledger.mine(branch_a_head - ledger.w3.eth.block_number + 2)
    result = indexer.sync_once()
    assert result.rolled_back_to == fork_point
    assert_index_matches_chain(ledger, indexer.engine)
    with indexer.engine.connect() as conn:
        assert (
            conn.execute(
                sa.text("select count(*) from assets where asset_id = :a"), {"a": a3}
            ).scalar_one()
            == 0
        )
        status = conn.execute(
            sa.text("select status from members where address = :a"), {"a": ledger.subject.lower()}
        ).scalar_one()
        assert status == "active"
    indexer.close()


def test_node_behind_database_is_a_typed_error_then_recovers(ledger: Ledger, db_url: str) -> None:
    busy_history(ledger)
    snapshot = ledger.rpc("evm_snapshot")
    behind = ledger.w3.eth.block_number
    ledger.anchor("later")
    ledger.mine(3)
    indexer = make_indexer(ledger, db_url)
    indexer.sync_once()
    ledger.rpc("evm_revert", [snapshot])  # the node now serves a shorter prefix of the same chain
    with pytest.raises(ChainBehindDatabaseError) as info:
        indexer.sync_once()
    assert info.value.chain_head == behind
    assert indexer.cursor() is not None and indexer.cursor().last_block > behind  # type: ignore[union-attr]
    # The node moves on along another history: the index rolls back and follows it.
    ledger.anchor("other")
    ledger.mine(6)
    result = indexer.sync_once()
    assert result.rolled_back_to == behind
    assert_index_matches_chain(ledger, indexer.engine)
    indexer.close()


def test_reorg_deeper_than_kept_hashes_is_a_typed_error(ledger: Ledger, db_url: str) -> None:
    snapshot = ledger.rpc("evm_snapshot")
    ledger.anchor("x")
    ledger.mine(6)
    indexer = make_indexer(ledger, db_url, reorg_window=2)
    indexer.sync_once()
    before = indexer.cursor()
    ledger.rpc("evm_revert", [snapshot])
    ledger.anchor("y")
    ledger.mine(10)
    with pytest.raises(ReorgTooDeepError):
        indexer.sync_once()
    assert indexer.cursor() == before  # nothing written
    indexer.close()


def test_database_of_another_chain_is_refused(ledger: Ledger, db_url: str) -> None:
    indexer = make_indexer(ledger, db_url)
    indexer.sync_once()
    other = AnvilProcess()
    try:
        stranger = make_indexer(ledger, db_url, rpc_url=other.url)
        with pytest.raises(ChainMismatchError, match="genesis hash"):
            stranger.sync_once()
        stranger.close()
    finally:
        other.stop()
    indexer.close()


def _emitter(ledger: Ledger, topics: list[bytes], data: bytes = b"") -> str:
    """Put code at a fresh address that emits one log with ``topics`` on every call."""
    code = b""
    if data:
        # Store the data word(s) in memory first.
        for i in range(0, len(data), 32):
            code += b"\x7f" + data[i : i + 32].ljust(32, b"\0") + b"\x60" + bytes([i]) + b"\x52"
    for topic in reversed(topics):
        code += b"\x7f" + topic
    code += b"\x60" + bytes([len(data)]) + b"\x60\x00" + bytes([0xA0 + len(topics)]) + b"\x00"
    address = Web3.to_checksum_address(keccak(text=f"emitter{topics!r}")[:20])
    ledger.rpc("anvil_setCode", [address, "0x" + code.hex()])
    ledger.w3.eth.wait_for_transaction_receipt(
        ledger.w3.eth.send_transaction({"from": ledger.governor, "to": address, "gas": 100_000})
    )
    return address


def test_unknown_event_is_a_typed_error_by_default(ledger: Ledger, db_url: str) -> None:
    address = _emitter(ledger, [keccak(text="Surprise(uint256)")])
    indexer = Indexer(
        rpc_url=ledger.url,
        ledger_address=address,
        engine=db.make_engine(db_url),
        start_block=ledger.deploy_block,
    )
    with pytest.raises(UnknownEventError) as info:
        indexer.sync_once()
    assert info.value.topic0 == "0x" + keccak(text="Surprise(uint256)").hex()
    cursor = indexer.cursor()
    assert cursor is not None and cursor.last_block < ledger.w3.eth.block_number
    indexer.close()


def test_unknown_event_is_recorded_when_skipping(ledger: Ledger, db_url: str) -> None:
    address = _emitter(ledger, [keccak(text="Surprise(uint256)")], (7).to_bytes(32, "big"))
    indexer = Indexer(
        rpc_url=ledger.url,
        ledger_address=address,
        engine=db.make_engine(db_url),
        start_block=ledger.deploy_block,
        on_unknown_event="skip",
    )
    indexer.sync_once()
    with indexer.engine.connect() as conn:
        rows = conn.execute(sa.text("select topic0, data from skipped_logs")).all()
    assert rows == [
        ("0x" + keccak(text="Surprise(uint256)").hex(), "0x" + (7).to_bytes(32, "big").hex())
    ]
    indexer.close()


def test_known_topic_with_wrong_layout_is_a_decode_error(ledger: Ledger, db_url: str) -> None:
    from ledger.indexer import EventDecodeError

    revoked = next(
        e for e in load_abi() if e.get("type") == "event" and e["name"] == "ConsentRevoked"
    )
    from eth_utils import event_abi_to_log_topic

    address = _emitter(ledger, [event_abi_to_log_topic(revoked)])  # indexed args missing
    indexer = Indexer(
        rpc_url=ledger.url,
        ledger_address=address,
        engine=db.make_engine(db_url),
        start_block=ledger.deploy_block,
    )
    with pytest.raises(EventDecodeError, match="ConsentRevoked"):
        indexer.sync_once()
    indexer.close()


class _RefusingProxy:
    """A real HTTP JSON-RPC hop in front of anvil that refuses wide eth_getLogs ranges."""

    def __init__(self, upstream: str) -> None:
        self.max_span: int | None = None
        self.refuse_all = False
        self.refusals = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                req = json.loads(body)
                reply: bytes
                if isinstance(req, dict) and req.get("method") == "eth_getLogs":
                    f = req["params"][0]
                    span = int(f["toBlock"], 16) - int(f["fromBlock"], 16) + 1
                    limit = 0 if proxy.refuse_all else proxy.max_span
                    if limit is not None and span > limit:
                        proxy.refusals += 1
                        reply = json.dumps(
                            {
                                "jsonrpc": "2.0",
                                "id": req["id"],
                                "error": {"code": -32005, "message": f"range exceeds {limit}"},
                            }
                        ).encode()
                        self._send(reply)
                        return
                self._send(
                    httpx.post(
                        upstream, content=body, headers={"content-type": "application/json"}
                    ).content
                )

            def _send(self, reply: bytes) -> None:
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(anvil: AnvilProcess) -> Iterator[_RefusingProxy]:
    p = _RefusingProxy(anvil.url)
    yield p
    p.close()


def test_refused_ranges_shrink_and_grow_back(
    ledger: Ledger, db_url: str, proxy: _RefusingProxy
) -> None:
    busy_history(ledger)
    ledger.mine(20)
    proxy.max_span = 2
    indexer = make_indexer(ledger, db_url, batch_size=16, rpc_url=proxy.url)
    indexer.sync_once()
    assert proxy.refusals > 0
    assert indexer.range_span < 16  # shrunk; it may have re-grown to 4 after two successes
    assert_index_matches_chain(ledger, indexer.engine)
    proxy.max_span = None
    ledger.anchor("more")
    ledger.mine(200)
    indexer.sync_once()
    assert indexer.range_span == 16
    assert_index_matches_chain(ledger, indexer.engine)
    indexer.close()


def test_single_block_refusal_is_a_typed_error(
    ledger: Ledger, db_url: str, proxy: _RefusingProxy
) -> None:
    ledger.mine(3)
    proxy.refuse_all = True
    indexer = make_indexer(ledger, db_url, batch_size=8, rpc_url=proxy.url)
    with pytest.raises(LogRangeRefusedError) as info:
        indexer.sync_once()
    assert info.value.from_block == info.value.to_block == ledger.deploy_block
    assert proxy.refusals == 4  # 8 -> 4 -> 2 -> 1 -> refused
    indexer.close()


def test_run_in_background_thread_until_stopped(ledger: Ledger, db_url: str) -> None:
    busy_history(ledger)
    indexer = make_indexer(ledger, db_url)
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            indexer.run(stop, poll_interval=0.05)
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    head = ledger.w3.eth.block_number
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not errors:
            cursor = indexer.cursor()
            if cursor is not None and cursor.last_block >= head:
                break
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive() and not errors
    assert_index_matches_chain(ledger, indexer.engine)
    indexer.close()


def _indexer_process(ledger: Ledger, db_url: str, *extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATASAFE_INDEXER_RPC_URL": ledger.url,
        "DATASAFE_INDEXER_LEDGER_ADDRESS": ledger.address,
        "DATASAFE_INDEXER_START_BLOCK": str(ledger.deploy_block),
        "DATASAFE_INDEXER_DB_URL": db_url,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "ledger.indexer", *extra],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_kill_9_mid_batch_then_restart_gives_exactly_the_chain(ledger: Ledger, db_url: str) -> None:
    grants = busy_history(ledger)
    for i in range(25):
        ledger.anchor(f"k{i}")
        if i % 5 == 0:
            ledger.access([grants[1]], 1000 + i)
    head = ledger.w3.eth.block_number
    engine = db.make_engine(db_url)
    db.create_tables(engine)
    proc = _indexer_process(ledger, db_url, "--batch-size", "1", "--poll-interval", "0.05")
    cursor_table = db.indexer_cursor
    try:
        # Wait until the indexer has committed a few ranges.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            with engine.connect() as conn:
                last = conn.execute(sa.select(cursor_table.c.last_block)).scalar_one_or_none()
            if last is not None and last >= ledger.deploy_block + 5:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        # Freeze the indexer inside a range transaction, then kill it there.
        blocker = engine.connect()
        if engine.dialect.name == "postgresql":
            tx = blocker.begin()
            blocker.execute(sa.select(cursor_table).with_for_update())
            ledger.anchor("after-lock")  # there is always one more range to write
            head = ledger.w3.eth.block_number
            waiting = 0
            while time.monotonic() < deadline and not waiting:
                blocker.execute(sa.text("select pg_stat_clear_snapshot()"))
                waiting = blocker.execute(
                    sa.text(
                        "select count(*) from pg_stat_activity where wait_event_type = 'Lock' "
                        "and query like 'UPDATE indexer_cursor%'"
                    )
                ).scalar_one()
            assert waiting == 1  # rows of the range written, cursor update blocked
        else:
            blocker.exec_driver_sql("BEGIN IMMEDIATE")
            tx = None
            ledger.anchor("after-lock")  # there is always one more range to write
            head = ledger.w3.eth.block_number
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if tx is not None:
            tx.rollback()
        else:
            blocker.exec_driver_sql("ROLLBACK")
        blocker.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with engine.connect() as conn:
        killed_at = conn.execute(sa.select(cursor_table.c.last_block)).scalar_one()
    assert killed_at < head
    rows = db_logs(engine)
    assert len(rows) == len(set(rows))
    assert all(block <= killed_at for block, *_ in rows)  # nothing past the cursor survived
    restart = _indexer_process(ledger, db_url, "--once")
    _out, err = restart.communicate(timeout=120)
    assert restart.returncode == 0, err.decode()
    assert_index_matches_chain(ledger, engine)
    engine.dispose()


def test_cli_reports_typed_error_and_exit_code(ledger: Ledger, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATASAFE_INDEXER_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger.indexer",
            "--once",
            "--db-url",
            f"sqlite:///{tmp_path}/x.db",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert b"LEDGER_ADDRESS" in proc.stderr


def test_second_indexer_advancing_the_cursor_is_detected(ledger: Ledger, db_url: str) -> None:
    from ledger.indexer import ConcurrentIndexerError

    busy_history(ledger)
    first = make_indexer(ledger, db_url, batch_size=2)
    second = make_indexer(ledger, db_url)
    first.cursor()  # tables exist before both start

    def meanwhile() -> bool:
        second.sync_once()  # runs between `first` reading the cursor and writing its range
        return False

    with pytest.raises(ConcurrentIndexerError):
        first.sync_once(should_stop=meanwhile)
    assert_index_matches_chain(ledger, second.engine)
    first.close()
    second.close()


def test_reorg_between_cursor_check_and_fetch_writes_nothing(ledger: Ledger, db_url: str) -> None:
    from ledger.indexer import ChainMovedError

    indexer = make_indexer(ledger, db_url)
    indexer.sync_once()
    snapshot = ledger.rpc("evm_snapshot")
    ledger.anchor("p")
    indexer.sync_once()
    before = indexer.cursor()
    ledger.mine(2)

    def reorg() -> bool:
        ledger.rpc("evm_revert", [snapshot])
        ledger.anchor("q")
        ledger.mine(4)
        return False

    with pytest.raises(ChainMovedError):
        indexer.sync_once(should_stop=reorg)
    assert indexer.cursor() == before
    indexer.sync_once()  # the next sync rolls back and follows the new branch
    assert_index_matches_chain(ledger, indexer.engine)
    indexer.close()


def test_event_about_state_before_start_block_is_inconsistent(ledger: Ledger, db_url: str) -> None:
    from ledger.indexer import InconsistentEventError

    live_grant = busy_history(ledger)[1]
    start = ledger.w3.eth.block_number + 1  # the grant's creation lies before this block
    ledger.tx(ledger.contract.functions.pause(bytes.fromhex(live_grant[2:])), ledger.subject)
    indexer = Indexer(
        rpc_url=ledger.url,
        ledger_address=ledger.address,
        engine=db.make_engine(db_url),
        start_block=start,
    )
    with pytest.raises(InconsistentEventError, match=live_grant):
        indexer.sync_once()
    assert indexer.cursor() == Cursor(start - 1, None)  # nothing written
    indexer.close()


def test_unreachable_node_and_database_are_typed(ledger: Ledger, tmp_path: Path) -> None:
    from ledger.indexer import IndexerDatabaseError, IndexerRpcError

    dead = Indexer(
        rpc_url=f"http://127.0.0.1:{_free_port()}",
        ledger_address=ledger.address,
        engine=db.make_engine(f"sqlite:///{tmp_path}/a.db"),
    )
    with pytest.raises(IndexerRpcError):
        dead.sync_once()
    dead.close()
    (tmp_path / "dir.db").mkdir()  # a directory where the SQLite file should be
    broken = Indexer(
        rpc_url=ledger.url,
        ledger_address=ledger.address,
        engine=db.make_engine(f"sqlite:///{tmp_path}/dir.db"),
    )
    with pytest.raises(IndexerDatabaseError):
        broken.sync_once()
    broken.close()


def test_from_settings_builds_a_working_indexer(ledger: Ledger, db_url: str) -> None:
    from ledger.indexer import IndexerSettings

    settings = IndexerSettings(
        rpc_url=ledger.url,
        ledger_address=ledger.address,
        start_block=ledger.deploy_block,
        db_url=db_url,
        batch_size=2,
    )
    indexer = Indexer.from_settings(settings)
    assert indexer.sync_once().events == len(chain_logs(ledger))
    assert_index_matches_chain(ledger, indexer.engine)
    indexer.close()


def test_event_hook_runs_in_the_range_transaction(ledger: Ledger, db_url: str) -> None:
    """``on_events`` sees every decoded event once, inside the range's transaction: a hook that
    fails leaves the index (and the hook's own writes) at the previous cursor."""
    busy_history(ledger)
    seen: list[str] = []

    def failing(conn: Any, events: Any) -> None:
        conn.execute(sa.text("CREATE TABLE IF NOT EXISTS hook_probe (n INTEGER)"))
        conn.execute(sa.text("INSERT INTO hook_probe VALUES (1)"))
        raise RuntimeError("the service's write failed")

    broken = make_indexer(ledger, db_url, on_events=failing)
    with pytest.raises(RuntimeError):
        broken.sync_once()
    assert broken.cursor() in (None, Cursor(ledger.deploy_block - 1, None))
    with broken.engine.connect() as conn:
        assert not sa.inspect(conn).has_table("hook_probe") or (
            conn.execute(sa.text("SELECT count(*) FROM hook_probe")).scalar_one() == 0
        )
    broken.close()

    def record(conn: Any, events: Any) -> None:
        seen.extend(e.name for e in events)

    indexer = make_indexer(ledger, db_url, on_events=record, batch_size=3)
    result = indexer.sync_once()
    assert len(seen) == result.events == len(chain_logs(ledger))
    assert seen.count("ConsentRevoked") == 1
    assert indexer.sync_once().events == 0 and len(seen) == result.events
    indexer.close()
