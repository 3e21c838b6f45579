"""Raw JSON-RPC over one persistent HTTP connection, sync and async, with batches.

web3.py's provider stack costs several HTTP requests and milliseconds per call;
the hot paths (relaying, checks) talk JSON-RPC directly and keep web3.py/eth-abi
for encoding only. Both clients share the request/response code below.

Transient failures (connection errors, timeouts, HTTP 429/5xx) are retried
``retries`` times with a short backoff; JSON-RPC error objects are not retried.
A revert (error with revert data) becomes a typed :class:`ContractRevertError`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import httpx

from ledger.errors import (
    ContractRevertError,
    ErrorRegistry,
    RpcResponseError,
    RpcUnavailableError,
    UnknownRevertError,
)

Call = tuple[str, Sequence[Any]]
_RETRY_STATUS = {429, 502, 503, 504}
_BACKOFF = 0.05


class _Codec:
    """Request building and response parsing shared by both transports."""

    def __init__(self, url: str, errors: ErrorRegistry | None) -> None:
        self.url = url
        self._errors = errors
        self._ids = itertools.count(1)

    def request(self, method: str, params: Sequence[Any]) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}

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
        return RpcResponseError(method, code, message, data)

    def decode_revert(self, data: bytes) -> ContractRevertError:
        registry = self._errors
        if registry is None:
            from ledger.errors import default_registry

            registry = default_registry()
        return registry.decode(data)

    def batch_results(self, calls: Sequence[Call], body: Any) -> list[Any | Exception]:
        if not isinstance(body, list):
            # A node may answer a whole batch with one error object.
            raise self.error("batch", body.get("error") if isinstance(body, dict) else body)
        by_id = {r.get("id"): r for r in body if isinstance(r, dict)}
        return [
            by_id.get(i + 1, {"error": {"code": -1, "message": "missing"}})
            for i in range(len(calls))
        ]


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


def _unwrap(codec: _Codec, calls: Sequence[Call], replies: list[Any]) -> list[Any | Exception]:
    out: list[Any | Exception] = []
    for (method, _), reply in zip(calls, replies, strict=True):
        try:
            out.append(codec.result(method, reply))
        except (RpcResponseError, ContractRevertError, RpcUnavailableError) as exc:
            out.append(exc)
    return out


class RpcClient:
    """Blocking JSON-RPC client over a persistent httpx connection (thread-safe)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        errors: ErrorRegistry | None = None,
    ) -> None:
        self._codec = _Codec(url, errors)
        self._retries = retries
        self._http = httpx.Client(timeout=timeout, headers={"content-type": "application/json"})

    @property
    def url(self) -> str:
        return self._codec.url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, payload: Any) -> Any:
        body = json.dumps(payload)
        for attempt in range(self._retries + 1):
            try:
                response = self._http.post(self.url, content=body)
                if response.status_code in _RETRY_STATUS and attempt < self._retries:
                    time.sleep(_BACKOFF * (attempt + 1))
                    continue
                return response.json()
            except (httpx.TransportError, ValueError) as exc:
                if attempt >= self._retries:
                    raise RpcUnavailableError(self.url, f"{type(exc).__name__}: {exc}") from exc
                time.sleep(_BACKOFF * (attempt + 1))
        raise RpcUnavailableError(self.url, "retries exhausted")  # pragma: no cover

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        return self._codec.result(method, self._post(self._codec.request(method, params)))

    def batch(self, calls: Sequence[Call]) -> list[Any | Exception]:
        """Send ``calls`` as one JSON-RPC batch; each slot is a result or the typed error."""
        if not calls:
            return []
        codec = _Codec(self.url, self._codec._errors)
        payload = [codec.request(m, p) for m, p in calls]
        return _unwrap(codec, calls, codec.batch_results(calls, self._post(payload)))


class AsyncRpcClient:
    """Asyncio JSON-RPC client over one persistent aiohttp session."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        errors: ErrorRegistry | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._codec = _Codec(url, errors)
        self._retries = retries
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owns_session = session is None

    @property
    def url(self) -> str:
        return self._codec.url

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=64)
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

    async def _post(self, payload: Any) -> Any:
        body = json.dumps(payload)
        headers = {"content-type": "application/json"}
        for attempt in range(self._retries + 1):
            try:
                async with self._get_session().post(self.url, data=body, headers=headers) as r:
                    if r.status in _RETRY_STATUS and attempt < self._retries:
                        await asyncio.sleep(_BACKOFF * (attempt + 1))
                        continue
                    return json.loads(await r.read())
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                if attempt >= self._retries:
                    raise RpcUnavailableError(self.url, f"{type(exc).__name__}: {exc}") from exc
                await asyncio.sleep(_BACKOFF * (attempt + 1))
        raise RpcUnavailableError(self.url, "retries exhausted")  # pragma: no cover

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        return self._codec.result(method, await self._post(self._codec.request(method, params)))

    async def batch(self, calls: Sequence[Call]) -> list[Any | Exception]:
        if not calls:
            return []
        codec = _Codec(self.url, self._codec._errors)
        payload = [codec.request(m, p) for m, p in calls]
        return _unwrap(codec, calls, codec.batch_results(calls, await self._post(payload)))


__all__ = ["AsyncRpcClient", "Call", "RpcClient", "UnknownRevertError"]
