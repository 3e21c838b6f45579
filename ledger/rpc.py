"""The one JSON-RPC transport: sync and async clients over persistent HTTP, with batches.

Every part of the product that talks to a chain node goes through :class:`RpcClient`
(httpx, thread-safe) or :class:`AsyncRpcClient` (aiohttp, one session); web3.py's
provider stack is not used at run time. Both share one request/response/error model
(:class:`_Codec`):

* Transient failures (connection errors, timeouts, HTTP 429 and 5xx) are retried
  ``retries`` times with a growing backoff. Sending a transaction is retried only when
  the request cannot have reached the node (the connection was never made, or HTTP 429):
  a lost answer must not turn into a second broadcast.
* A node that stays unreachable raises :class:`RpcUnavailableError`.
* A JSON-RPC error object raises a typed :class:`RpcResponseError` (or its subclasses
  :class:`RpcNonceError`, :class:`RpcMethodNotFoundError`); it is not retried. A revert
  (error with revert data) becomes a :class:`ContractRevertError` decoded by selector.
* :meth:`RpcClient.batch` sends JSON-RPC batches of at most ``max_batch`` calls; each slot
  of the answer is the result or the typed error of that call.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx

from ledger.errors import (
    ContractRevertError,
    ErrorRegistry,
    RpcMethodNotFoundError,
    RpcNonceError,
    RpcResponseError,
    RpcUnavailableError,
    UnknownRevertError,
)

# aiohttp costs ~0.1-0.2 s of import; only the async client (service, node) needs it, never
# the wallet CLI, so it is imported when an AsyncRpcClient first talks to its node.
if TYPE_CHECKING:
    import ssl

    import aiohttp

Call = tuple[str, Sequence[Any]]
_BACKOFF = 0.05
#: Calls that change the node's state: never repeated once the request may have arrived.
_UNSAFE = frozenset({"eth_sendRawTransaction", "eth_sendTransaction"})
_NONCE_MESSAGES = (
    "nonce",
    "already known",
    "already imported",
    "known transaction",
    "replacement transaction",
)


def _retryable_status(status: int, safe: bool) -> bool:
    return status == 429 or (safe and status >= 500)


def _backoff(attempt: int) -> float:
    return _BACKOFF * (attempt + 1)


def _safe(calls: Sequence[Call]) -> bool:
    return not any(method in _UNSAFE for method, _ in calls)


class _Codec:
    """Request building, HTTP answer and JSON-RPC reply parsing shared by both clients."""

    def __init__(self, url: str, errors: ErrorRegistry | None) -> None:
        self.url = url
        self.errors = errors
        self._ids = itertools.count(1)

    def request(self, method: str, params: Sequence[Any], id_: int | None = None) -> dict[str, Any]:
        ident = next(self._ids) if id_ is None else id_
        return {"jsonrpc": "2.0", "id": ident, "method": method, "params": list(params)}

    def body(self, status: int, content: bytes) -> Any:
        """The decoded JSON body of an HTTP answer; a server failure is an outage."""
        if status >= 500 or (status >= 400 and not content):
            raise RpcUnavailableError(self.url, f"HTTP {status}")
        try:
            return json.loads(content)
        except ValueError as exc:
            raise RpcUnavailableError(self.url, f"HTTP {status} with a non-JSON body") from exc

    def result(self, method: str, reply: Any) -> Any:
        if not isinstance(reply, dict):
            raise RpcUnavailableError(self.url, f"not a JSON-RPC reply: {str(reply)[:200]}")
        error = reply.get("error")
        if error is not None:
            raise self.error(method, error)
        if "result" not in reply:
            raise RpcUnavailableError(self.url, f"reply without result: {str(reply)[:200]}")
        return reply["result"]

    def error(self, method: str, error: Any) -> Exception:
        if not isinstance(error, dict):
            return RpcResponseError(method, -1, str(error))
        code = int(error.get("code", -1))
        message = str(error.get("message", ""))
        data = error.get("data")
        revert = _revert_data(code, message, data)
        if revert is not None:
            return self.decode_revert(revert)
        if code == -32601:
            return RpcMethodNotFoundError(method, code, message, data)
        if any(s in message.lower() for s in _NONCE_MESSAGES):
            return RpcNonceError(method, code, message, data)
        return RpcResponseError(method, code, message, data)

    def decode_revert(self, data: bytes) -> ContractRevertError:
        registry = self.errors
        if registry is None:
            from ledger.errors import default_registry

            registry = default_registry()
        return registry.decode(data)

    def batch_payload(self, calls: Sequence[Call]) -> list[dict[str, Any]]:
        return [self.request(m, p, i + 1) for i, (m, p) in enumerate(calls)]

    def batch_results(self, calls: Sequence[Call], body: Any) -> list[Any | Exception]:
        """Each call's result or typed error, in the order of ``calls`` (ids 1..n)."""
        if not isinstance(body, list):
            # A node may answer a whole batch with one error object.
            raise self.error("batch", body.get("error") if isinstance(body, dict) else body)
        by_id = {r.get("id"): r for r in body if isinstance(r, dict)}
        out: list[Any | Exception] = []
        for i, (method, _) in enumerate(calls):
            try:
                if i + 1 not in by_id:
                    raise RpcUnavailableError(self.url, f"batch reply misses id {i + 1}")
                out.append(self.result(method, by_id[i + 1]))
            except (RpcResponseError, ContractRevertError, RpcUnavailableError) as exc:
                out.append(exc)
        return out


def _revert_data(code: int, message: str, data: Any) -> bytes | None:
    if isinstance(data, dict):  # some nodes nest {"data": "0x..."}
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x") and (code == 3 or "revert" in message):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    if code == 3 or message.startswith("execution reverted"):
        return b""
    return None


def tls_context(url: str, trust_env: bool = True) -> ssl.SSLContext:
    """The TLS context of a client of ``url``: one verifying context per process, shared.

    httpx builds a fresh one per client, loading the CA bundle each time (30-60 ms here); a
    command that opens a service client and a few RPC clients paid that several times. A
    plain ``http://`` client never speaks TLS: it gets a context that trusts no one (any TLS
    it were led to would fail closed) and costs no bundle load.
    """
    if url.lower().startswith("http://"):
        return _trusting_no_one()
    return _verifying(trust_env)


@functools.cache
def _verifying(trust_env: bool) -> ssl.SSLContext:
    return httpx.create_ssl_context(trust_env=trust_env)


@functools.cache
def _trusting_no_one() -> ssl.SSLContext:
    import ssl

    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates and host names


def _chunks(calls: Sequence[Call], size: int) -> list[Sequence[Call]]:
    return [calls[i : i + size] for i in range(0, len(calls), max(1, size))]


class RpcClient:
    """Blocking JSON-RPC client over a persistent httpx connection (thread-safe)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        errors: ErrorRegistry | None = None,
        max_batch: int = 200,
        trust_env: bool = True,
    ) -> None:
        self._codec = _Codec(url, errors)
        self._retries = retries
        self.max_batch = max_batch
        self._http = httpx.Client(
            timeout=timeout,
            headers={"content-type": "application/json"},
            trust_env=trust_env,
            verify=tls_context(url, trust_env),
        )

    @property
    def url(self) -> str:
        return self._codec.url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, payload: Any, safe: bool) -> Any:
        content = json.dumps(payload)
        for attempt in range(self._retries + 1):
            last = attempt >= self._retries
            try:
                response = self._http.post(self.url, content=content)
            except httpx.HTTPError as exc:
                unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if last or not (safe or unsent):
                    raise RpcUnavailableError(self.url, f"{type(exc).__name__}: {exc}") from exc
                time.sleep(_backoff(attempt))
                continue
            if not last and _retryable_status(response.status_code, safe):
                time.sleep(_backoff(attempt))
                continue
            return self._codec.body(response.status_code, response.content)
        raise RpcUnavailableError(self.url, "retries exhausted")  # pragma: no cover

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        reply = self._post(self._codec.request(method, params), method not in _UNSAFE)
        return self._codec.result(method, reply)

    def batch(self, calls: Sequence[Call]) -> list[Any | Exception]:
        """Send ``calls`` as JSON-RPC batches; each slot is a result or the typed error."""
        out: list[Any | Exception] = []
        for chunk in _chunks(calls, self.max_batch):
            reply = self._post(self._codec.batch_payload(chunk), _safe(chunk))
            out += self._codec.batch_results(chunk, reply)
        return out


def tx_senders(client: RpcClient, tx_hashes: Sequence[str]) -> dict[str, str]:
    """The sender (``from``, lowercase) of each transaction, keyed by lowercase hash; one batch.

    ``Accessed`` events carry no custodian: the custodian is the sender of the transaction
    that emitted them, and every reader (indexer, audit, wallet trail) asks here.
    Raises :class:`RpcResponseError` for a transaction the node does not know.
    """
    wanted = sorted({h.lower() for h in tx_hashes})
    replies = client.batch([("eth_getTransactionByHash", [h]) for h in wanted])
    out: dict[str, str] = {}
    for tx_hash, tx in zip(wanted, replies, strict=True):
        if isinstance(tx, Exception):
            raise tx
        if not tx or not tx.get("from"):
            raise RpcResponseError(
                "eth_getTransactionByHash", -32000, f"unknown transaction {tx_hash}"
            )
        out[tx_hash] = str(tx["from"]).lower()
    return out


class AsyncRpcClient:
    """Asyncio JSON-RPC client over one persistent aiohttp session (its own or a shared one)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        errors: ErrorRegistry | None = None,
        session: aiohttp.ClientSession | None = None,
        max_batch: int = 200,
    ) -> None:
        self._codec = _Codec(url, errors)
        self._retries = retries
        self.max_batch = max_batch
        self._timeout = timeout
        self._session = session
        self._owns_session = session is None

    @property
    def url(self) -> str:
        return self._codec.url

    def _get_session(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                connector=aiohttp.TCPConnector(limit=64),
            )
            self._owns_session = True
        return self._session

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AsyncRpcClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _post(self, payload: Any, safe: bool) -> Any:
        import aiohttp

        content = json.dumps(payload)
        headers = {"content-type": "application/json"}
        for attempt in range(self._retries + 1):
            last = attempt >= self._retries
            try:
                async with self._get_session().post(self.url, data=content, headers=headers) as r:
                    if not last and _retryable_status(r.status, safe):
                        await asyncio.sleep(_backoff(attempt))
                        continue
                    return self._codec.body(r.status, await r.read())
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                unsent = isinstance(exc, aiohttp.ClientConnectorError)
                if last or not (safe or unsent):
                    raise RpcUnavailableError(self.url, f"{type(exc).__name__}: {exc}") from exc
                await asyncio.sleep(_backoff(attempt))
        raise RpcUnavailableError(self.url, "retries exhausted")  # pragma: no cover

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        reply = await self._post(self._codec.request(method, params), method not in _UNSAFE)
        return self._codec.result(method, reply)

    async def batch(self, calls: Sequence[Call]) -> list[Any | Exception]:
        """Send ``calls`` as JSON-RPC batches; each slot is a result or the typed error."""
        out: list[Any | Exception] = []
        for chunk in _chunks(calls, self.max_batch):
            reply = await self._post(self._codec.batch_payload(chunk), _safe(chunk))
            out += self._codec.batch_results(chunk, reply)
        return out


__all__ = ["AsyncRpcClient", "Call", "RpcClient", "UnknownRevertError", "tls_context"]
