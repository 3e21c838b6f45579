"""Indexer against a real anvil and real SQLite/PostgreSQL databases: a node that refuses log
ranges, and an unreachable node or database.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from _indexer_world import (
    Ledger,
    assert_index_matches_chain,
    busy_history,
    make_indexer,
)

from ledger import db
from ledger.chain import free_port
from ledger.indexer import (
    Indexer,
    LogRangeRefusedError,
)


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
def proxy(anvil_chain: Any) -> Iterator[_RefusingProxy]:
    p = _RefusingProxy(anvil_chain.url)
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


def test_unreachable_node_and_database_are_typed(ledger: Ledger, tmp_path: Path) -> None:
    from ledger.indexer import IndexerDatabaseError, IndexerRpcError

    dead = Indexer(
        rpc_url=f"http://127.0.0.1:{free_port()}",
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
