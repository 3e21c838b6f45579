"""Raw JSON-RPC over one persistent HTTP connection, with batches.

The indexer needs three calls (``eth_blockNumber``, ``eth_getLogs`` and batched
``eth_getBlockByNumber``) and needs them fast, so it talks JSON-RPC directly
instead of going through web3's middleware and per-log formatting.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import Any

import httpx

from ledger.indexer.errors import IndexerRpcError, RpcResponseError

BATCH_CHUNK = 200


class JsonRpc:
    """A JSON-RPC client that keeps its HTTP connection open between calls."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self._url = url
        self._ids = itertools.count(1)
        self._http = httpx.Client(
            timeout=timeout, headers={"content-type": "application/json"}, trust_env=False
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> JsonRpc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, payload: object) -> Any:
        try:
            response = self._http.post(self._url, content=json.dumps(payload))
        except httpx.HTTPError as exc:
            raise IndexerRpcError(f"JSON-RPC transport to {self._url} failed: {exc!r}") from exc
        if response.status_code >= 400 and not response.content:
            raise IndexerRpcError(f"JSON-RPC endpoint answered HTTP {response.status_code}")
        try:
            return json.loads(response.content)
        except ValueError as exc:
            raise IndexerRpcError(
                f"JSON-RPC endpoint answered HTTP {response.status_code} with non-JSON body"
            ) from exc

    @staticmethod
    def _result(method: str, reply: Any) -> Any:
        if not isinstance(reply, dict):
            raise IndexerRpcError(f"{method}: malformed JSON-RPC reply {reply!r:.200}")
        error = reply.get("error")
        if error is not None:
            if isinstance(error, dict):
                raise RpcResponseError(
                    method, int(error.get("code", 0)), str(error.get("message", ""))
                )
            raise RpcResponseError(method, 0, str(error))
        if "result" not in reply:
            raise IndexerRpcError(f"{method}: JSON-RPC reply without result")
        return reply["result"]

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        return self._result(method, self._post(payload))

    def batch(self, method: str, params_list: Sequence[Sequence[Any]]) -> list[Any]:
        """Call ``method`` once per params entry, in batches; results in the same order."""
        results: list[Any] = []
        for start in range(0, len(params_list), BATCH_CHUNK):
            chunk = params_list[start : start + BATCH_CHUNK]
            ids = [next(self._ids) for _ in chunk]
            payload = [
                {"jsonrpc": "2.0", "id": i, "method": method, "params": list(p)}
                for i, p in zip(ids, chunk, strict=True)
            ]
            reply = self._post(payload)
            if not isinstance(reply, list):
                # Some nodes answer a refused batch with a single error object.
                self._result(method, reply)
                raise IndexerRpcError(f"{method}: batch reply is not a list")
            by_id = {item.get("id"): item for item in reply if isinstance(item, dict)}
            for i in ids:
                if i not in by_id:
                    raise IndexerRpcError(f"{method}: batch reply misses id {i}")
                results.append(self._result(method, by_id[i]))
        return results

    # Typed helpers -------------------------------------------------------------------

    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def get_logs(self, address: str, from_block: int, to_block: int) -> list[dict[str, Any]]:
        params = [{"address": address, "fromBlock": hex(from_block), "toBlock": hex(to_block)}]
        logs = self.call("eth_getLogs", params)
        if not isinstance(logs, list):
            raise IndexerRpcError("eth_getLogs did not return a list")
        return logs

    def headers(self, numbers: Sequence[int]) -> dict[int, dict[str, Any] | None]:
        """Block headers (no transactions) by number; None for blocks the node does not have."""
        replies = self.batch("eth_getBlockByNumber", [[hex(n), False] for n in numbers])
        return dict(zip(numbers, replies, strict=True))
