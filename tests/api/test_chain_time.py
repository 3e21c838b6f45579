"""Chain time: a grant's window is judged when the access would be recorded.

On an idle chain (anvil automine: no block without a transaction) the latest block's
timestamp stands still while the node's clock goes on; the next block, the one that would
carry the access record, gets the clock's time. ``verify`` and the pull judge at that next
block's time (docs/api.md, "Chain time"), so they agree with each other and with the
record. Each test first shows that the chain's own ``check`` at the latest block says the
opposite, so it fails on a service that judges at the latest block.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import httpx
import pytest
from _api_server import LiveServer, assert_problem
from _api_world import World
from _refusal_helpers import (
    access_body,
    custodian_state,
    grant_request,
    issued_asset,
    pull,
    verify,
)

from api.chain import ChainGateway, RecordTime
from api.client import DataSafeClient
from ledger.client import LedgerClient

MASK = 0b11


def mine_at(world: World, timestamp: int) -> None:
    """Mine one empty block with this timestamp; the node's clock goes on from there."""
    world.w3.provider.make_request("evm_mine", [timestamp])  # type: ignore[arg-type]


def next_block_at(world: World, timestamp: int) -> None:
    """The timestamp the node gives its next block (no block is mined)."""
    world.w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])  # type: ignore[arg-type]


def pending_time(world: World) -> int:
    """The node's clock: the timestamp its next block would get."""
    return int(world.w3.eth.get_block("pending")["timestamp"])


def wait_for_clock(world: World, timestamp: int, limit: float = 10.0) -> None:
    """Let the node's clock (not the chain's head) pass ``timestamp``: a few seconds at most."""
    deadline = time.monotonic() + limit
    while pending_time(world) < timestamp:
        assert time.monotonic() < deadline, "the node's clock did not advance"
        time.sleep(0.1)


def chain_check(world: World, grant_id: str) -> tuple[bool, int]:
    """The ledger's own ``check`` at the latest block (what the old service answered)."""
    allowed, reason = world.ledger.functions.check(
        bytes.fromhex(grant_id[2:]), world.bank.address, MASK
    ).call()
    return bool(allowed), int(reason)


def make_grant(server: LiveServer, world: World, asset: Any, **terms: int) -> str:
    with DataSafeClient(server.url, world.citizen.key) as citizen:
        receipt = citizen.post("/v1/grants", grant_request(world, asset, world.bank, **terms))
    return str(receipt["grant_id"])


def client_check(world: World, grant_id: str) -> tuple[bool, int, int]:
    """What a client library judges (``LedgerClient.check_at_next_block``, the wallet's)."""
    with LedgerClient(world.rpc_url, world.ledger_address) as lc:
        result, at = lc.check_at_next_block(bytes.fromhex(grant_id[2:]), world.bank.address, MASK)
    return result.allowed, int(result.reason), at


def block_time(world: World, block: int) -> int:
    return int(world.w3.eth.get_block(block)["timestamp"])


def test_not_before_just_passed_on_an_idle_chain(server: LiveServer, world: World) -> None:
    asset = issued_asset(server, world)
    not_before = pending_time(world) + 30
    gid = make_grant(server, world, asset, not_before=not_before, expiry=not_before + 3600)
    mine_at(world, not_before - 1)  # the head is one second short
    next_block_at(world, not_before)  # the record would be made at not-before; idle till then
    assert chain_check(world, gid) == (False, 6)  # at the head: not yet valid
    verdict = verify(server, world.bank, gid, MASK)
    assert verdict["allowed"] is True and verdict["code"] == "ok"
    assert verdict["at"] == not_before
    assert client_check(world, gid) == (True, 0, not_before)  # the wallet agrees
    answer = pull(server, world.bank, access_body(world, world.bank, gid, MASK))
    assert answer.status_code == 200, answer.text
    assert block_time(world, answer.json()["access"]["block"]) == not_before


def test_expiry_just_passed_on_an_idle_chain(server: LiveServer, world: World) -> None:
    asset = issued_asset(server, world)
    expiry = pending_time(world) + 30
    gid = make_grant(server, world, asset, expiry=expiry)
    mine_at(world, expiry - 1)  # the head is still inside the window
    next_block_at(world, expiry)  # the record would be made at the expiry; idle till then
    assert chain_check(world, gid) == (True, 0)  # at the head: allowed
    verdict = verify(server, world.bank, gid, MASK)
    assert verdict["allowed"] is False and verdict["code"] == "grant_expired"
    assert verdict["at"] == expiry
    assert client_check(world, gid) == (False, 5, expiry)  # the wallet agrees
    before = custodian_state(world)
    problem = assert_problem(
        pull(server, world.bank, access_body(world, world.bank, gid, MASK)), 403, "grant_expired"
    )
    assert problem["at"] >= expiry
    assert custodian_state(world) == before  # refused before any transaction


def test_the_clock_moves_while_no_block_is_mined(server: LiveServer, world: World) -> None:
    """No time controls: a couple of seconds pass on the node's clock, none on the chain."""
    asset = issued_asset(server, world)
    edge = pending_time(world) + 3
    starts = make_grant(server, world, asset, not_before=edge, expiry=edge + 3600)
    ends = make_grant(server, world, asset, expiry=edge)
    wait_for_clock(world, edge)
    head = world.now()
    assert head < edge  # idle: the head is still before the edge
    assert chain_check(world, starts) == (False, 6) and chain_check(world, ends) == (True, 0)
    # the grant that ended: refused in verify and in the pull, nothing sent
    assert verify(server, world.bank, ends, MASK)["code"] == "grant_expired"
    before = custodian_state(world)
    assert_problem(
        pull(server, world.bank, access_body(world, world.bank, ends, MASK)), 403, "grant_expired"
    )
    assert custodian_state(world) == before
    # the grant that began: allowed in verify and recorded by the pull
    assert verify(server, world.bank, starts, MASK)["allowed"] is True
    answer = pull(server, world.bank, access_body(world, world.bank, starts, MASK))
    assert answer.status_code == 200, answer.text


@pytest.fixture
def busy_chain(world: World) -> Iterator[World]:
    """A block every second whether or not there are transactions (as QBFT does)."""
    world.w3.provider.make_request("evm_setIntervalMining", [1])  # type: ignore[arg-type]
    try:
        yield world
    finally:
        world.w3.provider.make_request("evm_setIntervalMining", [0])  # type: ignore[arg-type]
        world.w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]


def test_edges_on_a_busy_chain(server: LiveServer, busy_chain: World) -> None:
    """Blocks keep coming: once verify turns, the pull agrees (time only moves forward)."""
    world = busy_chain
    asset = issued_asset(server, world)
    edge = pending_time(world) + 4
    starts = make_grant(server, world, asset, not_before=edge, expiry=edge + 3600)
    ends = make_grant(server, world, asset, expiry=edge)

    assert verify(server, world.bank, starts, MASK)["code"] == "grant_not_yet_valid"
    assert verify(server, world.bank, ends, MASK)["allowed"] is True
    deadline = time.monotonic() + 15
    while not (turned := verify(server, world.bank, starts, MASK))["allowed"]:
        assert time.monotonic() < deadline, "the window did not turn"
        time.sleep(0.2)
    assert turned["at"] >= edge
    # judged later, so at or past the edge too: the other grant has ended
    assert verify(server, world.bank, ends, MASK)["code"] == "grant_expired"
    before = custodian_state(world)[0]
    assert_problem(
        pull(server, world.bank, access_body(world, world.bank, ends, MASK)), 403, "grant_expired"
    )
    assert custodian_state(world)[0] == before
    answer = pull(server, world.bank, access_body(world, world.bank, starts, MASK))
    assert answer.status_code == 200, answer.text
    assert block_time(world, answer.json()["access"]["block"]) >= edge


@contextlib.contextmanager
def node_without_pending(upstream: str) -> Iterator[str]:
    """A JSON-RPC front of anvil that behaves like a node with no pending block and no
    ``eth_call`` overrides (Besu-like): "pending" answers the latest block, a third
    ``eth_call`` parameter is an error."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            params = list(body.get("params", []))
            if body["method"] == "eth_call" and len(params) > 2:
                reply: dict[str, Any] = {
                    "jsonrpc": "2.0",
                    "id": body["id"],
                    "error": {"code": -32602, "message": "invalid params"},
                }
            else:
                if body["method"] == "eth_getBlockByNumber" and params[0] == "pending":
                    params[0] = "latest"
                reply = httpx.post(upstream, json=body | {"params": params}).json()
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_time_source_with_and_without_a_pending_block(world: World) -> None:
    """The node's pending block when it has one; else the clock, at least a second on."""

    async def record_time(url: str, wall: float | None = None) -> RecordTime:
        async with aiohttp.ClientSession() as session:
            gateway = ChainGateway(url, world.ledger_address, session)
            if wall is not None:
                gateway.wall_clock = lambda: wall
            return await gateway.record_time()

    head = world.now()
    next_block_at(world, head + 40)
    anvil = asyncio.run(record_time(world.rpc_url))
    assert (anvil.source, anvil.overrides, anvil.at, anvil.judged_at) == (
        "pending",
        True,
        head + 40,
        head + 40,
    )
    with node_without_pending(world.rpc_url) as url:
        ahead = asyncio.run(record_time(url, wall=head + 100))
        behind = asyncio.run(record_time(url, wall=head - 100))
    assert (ahead.source, ahead.overrides, ahead.at) == ("wall", False, head + 100)
    assert ahead.judged_at == head  # without overrides the view sees the latest block
    assert behind.at == head + 1
    world.w3.provider.make_request("evm_mine", [])  # spend the set timestamp
