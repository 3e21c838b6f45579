"""The one JSON-RPC transport against a real HTTP server that misbehaves on purpose.

A small node double answers over real HTTP (status codes, error objects, slow answers)
so that retries, the no-retry rule for broadcasts, typed errors and batch chunking are
observable; behaviour against a real chain is covered by every anvil-backed test.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ledger.errors import (
    LedgerError,
    RpcMethodNotFoundError,
    RpcNonceError,
    RpcResponseError,
    RpcUnavailableError,
)
from ledger.rpc import AsyncRpcClient, RpcClient, tls_context


class Node:
    """Answers from a script: each request pops the next (status, body-or-None) if any."""

    def __init__(self) -> None:
        self.script: list[tuple[int, Any]] = []
        self.requests: list[Any] = []
        self.delay = 0.0
        self.errors: dict[str, dict[str, Any]] = {}

    def answer(self, payload: Any) -> tuple[int, Any]:
        self.requests.append(payload)
        if self.script:
            return self.script.pop(0)
        if isinstance(payload, list):
            return 200, [self.reply(p) for p in payload]
        return 200, self.reply(payload)

    def reply(self, p: dict[str, Any]) -> dict[str, Any]:
        if p["method"] in self.errors:
            return {"jsonrpc": "2.0", "id": p["id"], "error": self.errors[p["method"]]}
        return {"jsonrpc": "2.0", "id": p["id"], "result": [p["method"], *p["params"]]}


@pytest.fixture
def node() -> Iterator[tuple[Node, str]]:
    state = Node()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            payload = json.loads(self.rfile.read(int(self.headers["content-length"])))
            status, body = state.answer(payload)
            time.sleep(state.delay)
            data = b"" if body is None else json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except BrokenPipeError:  # the client timed out and left
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_transient_http_errors_are_retried(node: tuple[Node, str]) -> None:
    state, url = node
    state.script = [(503, None), (429, None)]
    with RpcClient(url, retries=3) as rpc:
        assert rpc.call("eth_chainId") == ["eth_chainId"]
    assert len(state.requests) == 3


def test_outage_outlasting_the_retries_is_typed(node: tuple[Node, str]) -> None:
    state, url = node
    state.script = [(502, None)] * 3
    with RpcClient(url, retries=2) as rpc, pytest.raises(RpcUnavailableError, match="HTTP 502"):
        rpc.call("eth_chainId")
    assert len(state.requests) == 3


def test_a_broadcast_is_not_repeated_after_the_node_may_have_seen_it(
    node: tuple[Node, str],
) -> None:
    """A 5xx may come after the node accepted the transaction: no second broadcast."""
    state, url = node
    state.script = [(500, None), (200, None)]
    with RpcClient(url, retries=3) as rpc, pytest.raises(RpcUnavailableError):
        rpc.call("eth_sendRawTransaction", ["0x01"])
    assert len(state.requests) == 1


def test_json_rpc_errors_are_typed_and_not_retried(node: tuple[Node, str]) -> None:
    state, url = node
    state.errors = {
        "eth_sendRawTransaction": {"code": -32000, "message": "nonce too low"},
        "eth_foo": {"code": -32601, "message": "method not found"},
        "eth_bar": {"code": -32000, "message": "header not found"},
    }
    with RpcClient(url, retries=3) as rpc:
        with pytest.raises(RpcNonceError) as nonce:
            rpc.call("eth_sendRawTransaction", ["0x01"])
        with pytest.raises(RpcMethodNotFoundError):
            rpc.call("eth_foo")
        with pytest.raises(RpcResponseError) as other:
            rpc.call("eth_bar")
    assert not isinstance(other.value, RpcNonceError | RpcMethodNotFoundError)
    assert isinstance(nonce.value, LedgerError) and nonce.value.code == -32000
    assert len(state.requests) == 3


def test_batches_are_chunked_and_keep_order(node: tuple[Node, str]) -> None:
    state, url = node
    state.errors = {"eth_bad": {"code": -32000, "message": "boom"}}
    calls = [("eth_a", [i]) for i in range(5)] + [("eth_bad", [])]
    with RpcClient(url, max_batch=2) as rpc:
        out = rpc.batch(calls)
    assert out[:5] == [["eth_a", i] for i in range(5)]
    assert isinstance(out[5], RpcResponseError)
    assert [len(r) for r in state.requests] == [2, 2, 2]


def test_a_batch_reply_missing_an_answer_is_an_error_in_its_slot(node: tuple[Node, str]) -> None:
    state, url = node
    state.script = [(200, [{"jsonrpc": "2.0", "id": 2, "result": "0x2"}])]
    with RpcClient(url) as rpc:
        first, second = rpc.batch([("eth_a", []), ("eth_b", [])])
    assert isinstance(first, RpcUnavailableError) and second == "0x2"


def test_a_slow_node_times_out(node: tuple[Node, str]) -> None:
    state, url = node
    state.delay = 0.5
    with RpcClient(url, timeout=0.1, retries=1) as rpc, pytest.raises(RpcUnavailableError):
        rpc.call("eth_chainId")
    assert len(state.requests) == 2


async def test_async_client_shares_the_model(node: tuple[Node, str]) -> None:
    state, url = node
    state.script = [(503, None)]
    state.errors = {"eth_sendRawTransaction": {"code": -32000, "message": "already known"}}
    async with AsyncRpcClient(url, retries=2, max_batch=2) as rpc:
        assert await rpc.call("eth_chainId") == ["eth_chainId"]
        with pytest.raises(RpcNonceError):
            await rpc.call("eth_sendRawTransaction", ["0x01"])
        assert await rpc.batch([("eth_a", [1]), ("eth_a", [2]), ("eth_a", [3])]) == [
            ["eth_a", 1],
            ["eth_a", 2],
            ["eth_a", 3],
        ]
    state.script = [(500, None)]
    async with AsyncRpcClient(url, retries=2) as rpc:
        with pytest.raises(RpcUnavailableError):
            await rpc.call("eth_sendRawTransaction", ["0x01"])


def test_tls_contexts_are_shared_and_plain_http_trusts_no_one() -> None:
    """One CA-bundle load per process; an http:// client's context verifies but trusts no CA,
    so a TLS connection it were led to would fail closed rather than go unchecked."""
    secure = tls_context("https://rpc.example")
    assert secure is tls_context("https://other.example")
    assert secure.verify_mode == ssl.CERT_REQUIRED and secure.check_hostname
    assert secure.cert_store_stats()["x509_ca"] > 0  # the CA bundle, loaded once
    plain = tls_context("http://127.0.0.1:8545")
    assert plain is not secure and plain is tls_context("HTTP://localhost")
    assert plain.verify_mode == ssl.CERT_REQUIRED and plain.check_hostname
    assert plain.get_ca_certs() == [] and plain.cert_store_stats()["x509_ca"] == 0
