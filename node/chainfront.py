"""The embedded chain's public JSON-RPC endpoint: a thin journaling front of anvil.

Anvil listens on an internal loopback port only; the node's RPC URL is this front. Reads pass
through byte for byte. Every ``eth_sendRawTransaction`` (alone or in a batch), from anyone —
the service, a department, a citizen, the governor — is appended to the write-ahead journal
(:mod:`node.txlog`) and fsync'd *before* it is forwarded, so whatever anvil mined, and so
whatever any client was ever told is mined, can be replayed after a power cut
(:mod:`node.replay`). Concurrent submissions share one fsync (group commit) and reach anvil
in journal order. An ``eth_sendTransaction`` (an account anvil unlocks) is journaled from the
bytes anvil signed before its hash is returned: the client learns of nothing the journal lacks.

If the journal cannot be written (disk full), the transaction is refused with a JSON-RPC
error and never forwarded. Only on the embedded chain: an external chain (QBFT) keeps its own
blocks durably and the node talks to it directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from concurrent.futures import Future
from typing import Any
from urllib.parse import urlsplit

from node.errors import NodeError
from node.txlog import JournalWriteError, TxLog

log = logging.getLogger("node.chainfront")

SEND_RAW = "eth_sendRawTransaction"
SEND_UNLOCKED = "eth_sendTransaction"
MAX_BODY = 32 * 1024 * 1024
#: JSON-RPC error code of a refusal by the front (server error range).
JOURNAL_ERROR_CODE = -32098


class FrontError(NodeError):
    """The journaling front could not start."""


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def _error(id_: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "error": {"code": code, "message": message}}


class _Pending:
    __slots__ = ("call", "done", "raw")

    def __init__(self, call: dict[str, Any], raw: bytes, done: asyncio.Future[Any]) -> None:
        self.call, self.raw, self.done = call, raw, done


class ChainFront:
    """Serve ``127.0.0.1:port``, journaling into ``journal``, forwarding to ``upstream``.

    Runs its own event loop on a daemon thread: :meth:`start` returns once it listens.
    """

    def __init__(self, journal: TxLog, upstream: str, port: int, host: str = "127.0.0.1") -> None:
        self.journal = journal
        self.upstream = upstream
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._queue: asyncio.Queue[_Pending] | None = None
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        parsed = urlsplit(upstream)
        self._up_host, self._up_port = parsed.hostname or "127.0.0.1", parsed.port or 80

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> ChainFront:
        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="chain-front", daemon=True
        )
        self._thread.start()
        try:
            ready.result(timeout)
        except OSError as exc:
            raise FrontError(f"the chain front cannot listen on {self.url}: {exc}") from exc
        return self

    def stop(self) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self, ready: Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(ready))
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                log.exception("chain front stopped")
        finally:
            loop.close()

    async def _serve(self, ready: Future[None]) -> None:
        self._stopped = asyncio.Event()
        self._queue = asyncio.Queue()
        server = await asyncio.start_server(self._client, self.host, self.port, limit=MAX_BODY)
        self.port = int(server.sockets[0].getsockname()[1])  # port 0: the one it got
        sequencer = asyncio.create_task(self._sequence())
        ready.set_result(None)
        async with server:
            await self._stopped.wait()
        sequencer.cancel()
        for _, w in self._idle:
            w.close()

    # ---- HTTP ---------------------------------------------------------------------------

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        try:
            while True:
                if sock is not None and hasattr(socket, "TCP_QUICKACK"):
                    # A client that writes headers and body apart waits for our ACK in between.
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (h.partition(":") for h in lines[1:] if h)
                }
                length = int(headers.get("content-length", "0"))
                if length > MAX_BODY:
                    return
                body = await reader.readexactly(length)
                if lines[0].startswith("POST"):
                    status, reply = 200, await self._handle(body)
                else:
                    status, reply = 405, b'{"error":"POST JSON-RPC only"}'
                close = headers.get("connection", "").lower() == "close"
                writer.write(
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'Method Not Allowed'}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(reply)}\r\n"
                    f"{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n".encode()
                    + reply
                )
                await writer.drain()
                if close:
                    return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except ValueError:
            pass
        finally:
            writer.close()

    async def _forward(self, body: bytes) -> bytes:
        """POST ``body`` to anvil over a pooled keep-alive connection (one write, no Nagle)."""
        for attempt in (0, 1):
            fresh = not self._idle
            try:
                if fresh:
                    reader, writer = await asyncio.open_connection(
                        self._up_host, self._up_port, limit=MAX_BODY
                    )
                else:
                    reader, writer = self._idle.pop()
                writer.write(
                    b"POST / HTTP/1.1\r\nHost: anvil\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body) + body
                )
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                reply = await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                if attempt == 0 and not fresh:
                    continue  # a keep-alive connection anvil had closed: once more, fresh
                return json.dumps(_error(None, -32603, f"chain unavailable: {exc}")).encode()
            if len(self._idle) < 32:
                self._idle.append((reader, writer))
            else:
                writer.close()
            return reply
        raise AssertionError("unreachable")

    async def _handle(self, body: bytes) -> bytes:
        if SEND_RAW.encode() not in body and SEND_UNLOCKED.encode() not in body:
            return await self._forward(body)  # a read: byte for byte
        try:
            request = json.loads(body)
        except ValueError:
            return await self._forward(body)
        if isinstance(request, list):
            # In order, one at a time: a batch's transactions reach anvil in journal order.
            return json.dumps([await self._call(c) for c in request]).encode()
        return json.dumps(await self._call(request)).encode()

    async def _call(self, call: Any) -> Any:
        if not isinstance(call, dict):
            return json.loads(await self._forward(json.dumps(call).encode()))
        method, params = call.get("method"), call.get("params")
        if method == SEND_RAW and isinstance(params, list) and params:
            try:
                raw = bytes.fromhex(str(params[0]).removeprefix("0x"))
            except ValueError:
                return _error(call.get("id"), -32602, "invalid raw transaction hex")
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            assert self._queue is not None
            await self._queue.put(_Pending(call, raw, done))
            return await done
        reply = json.loads(await self._forward(json.dumps(call).encode()))
        if method == SEND_UNLOCKED and isinstance(reply, dict) and "result" in reply:
            return await self._journal_unlocked(call, reply)
        return reply

    async def _journal_unlocked(self, call: dict[str, Any], reply: dict[str, Any]) -> Any:
        fetch = {"jsonrpc": "2.0", "id": 1, "method": "eth_getRawTransactionByHash"}
        got = json.loads(await self._forward(_dumps({**fetch, "params": [reply["result"]]})))
        raw = bytes.fromhex(str(got.get("result") or "").removeprefix("0x"))
        try:
            txs = await asyncio.to_thread(self.journal.append, [raw]) if raw else []
        except JournalWriteError as exc:
            return _error(call.get("id"), JOURNAL_ERROR_CODE, str(exc))
        if not txs:
            return _error(call.get("id"), JOURNAL_ERROR_CODE, "sent but cannot be journaled")
        self.journal.mark("A", txs[0].tx_hash, await self._status(txs[0].tx_hash))
        return reply

    # ---- the sequencer: group commit, then forward in journal order ----------------------

    async def _sequence(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                txs = await asyncio.to_thread(self.journal.append, [p.raw for p in batch])
            except JournalWriteError as exc:
                for p in batch:
                    p.done.set_result(_error(p.call.get("id"), JOURNAL_ERROR_CODE, str(exc)))
                continue
            for p, tx in zip(batch, txs, strict=True):
                reply = json.loads(await self._forward(json.dumps(p.call).encode()))
                status = await self._status(tx.tx_hash) if "result" in reply else None
                try:
                    if status is not None:
                        self.journal.mark("A", tx.tx_hash, status)
                    else:
                        self.journal.mark("R", tx.tx_hash)
                except JournalWriteError:
                    pass  # an outcome mark is a hint; the transaction itself is journaled
                p.done.set_result(reply)

    async def _status(self, tx_hash: str) -> str:
        """``<receipt status> <block timestamp>`` when anvil mined it at once (automine), else
        ``?``: the replay gives the block its original timestamp, hence its original hash."""
        call = {"jsonrpc": "2.0", "id": 1, "method": "eth_getTransactionReceipt"}
        try:
            for attempt in range(40):  # automine answers before the block is sealed
                got = json.loads(await self._forward(_dumps({**call, "params": [tx_hash]})))
                receipt = got.get("result")
                if receipt:
                    break
                await asyncio.sleep(0.001 if attempt else 0)
            else:
                return "?"
            block = {**call, "method": "eth_getBlockByNumber"}
            block["params"] = [receipt["blockNumber"], False]
            header = json.loads(await self._forward(_dumps(block))).get("result") or {}
            stamp = int(header["timestamp"], 16) if "timestamp" in header else "?"
            return f"{int(receipt['status'], 16)} {stamp}"
        except (ValueError, KeyError, TypeError, AttributeError):
            return "?"
