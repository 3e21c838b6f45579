"""The indexer's reads over ledger's one JSON-RPC transport (:class:`ledger.rpc.RpcClient`).

The indexer needs four calls (``eth_blockNumber``, ``eth_getLogs``, batched
``eth_getBlockByNumber`` and, for the senders of access transactions, batched
``eth_getTransactionByHash``) and needs them fast, so it talks JSON-RPC directly
instead of going through web3's middleware and per-log formatting. Failures are the
indexer's own types: :class:`IndexerRpcError` when the node cannot be reached or
answers something that is not JSON-RPC, :class:`RpcResponseError` for an error answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

from ledger import errors as lerr
from ledger.indexer.errors import IndexerRpcError, RpcResponseError
from ledger.rpc import RpcClient, tx_senders

BATCH_CHUNK = 200


def _raise(method: str, exc: Exception) -> NoReturn:
    if isinstance(exc, lerr.RpcResponseError):
        raise RpcResponseError(exc.method, exc.code, exc.rpc_message) from exc
    if isinstance(exc, lerr.ContractRevertError):
        raise RpcResponseError(method, 3, str(exc)) from exc
    raise IndexerRpcError(f"{method}: {exc}") from exc


class JsonRpc:
    """A JSON-RPC client that keeps its HTTP connection open between calls."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self._client = RpcClient(url, timeout=timeout, trust_env=False, max_batch=BATCH_CHUNK)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> JsonRpc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        try:
            return self._client.call(method, params)
        except (lerr.RpcError, lerr.ContractRevertError) as exc:
            _raise(method, exc)

    def batch(self, method: str, params_list: Sequence[Sequence[Any]]) -> list[Any]:
        """Call ``method`` once per params entry, in batches; results in the same order."""
        try:
            replies = self._client.batch([(method, p) for p in params_list])
        except (lerr.RpcError, lerr.ContractRevertError) as exc:
            _raise(method, exc)
        for reply in replies:
            if isinstance(reply, Exception):
                _raise(method, reply)
        return replies

    # Typed helpers -------------------------------------------------------------------

    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def get_logs(
        self, address: str | Sequence[str], from_block: int, to_block: int
    ) -> list[dict[str, Any]]:
        where = address if isinstance(address, str) else list(address)
        params = [{"address": where, "fromBlock": hex(from_block), "toBlock": hex(to_block)}]
        logs = self.call("eth_getLogs", params)
        if not isinstance(logs, list):
            raise IndexerRpcError("eth_getLogs did not return a list")
        return logs

    def headers(self, numbers: Sequence[int]) -> dict[int, dict[str, Any] | None]:
        """Block headers (no transactions) by number; None for blocks the node does not have."""
        replies = self.batch("eth_getBlockByNumber", [[hex(n), False] for n in numbers])
        return dict(zip(numbers, replies, strict=True))

    def senders(self, tx_hashes: Sequence[str]) -> dict[str, str]:
        """The sender of each transaction (:func:`ledger.rpc.tx_senders`), by lowercase hash."""
        try:
            return tx_senders(self._client, tx_hashes)
        except (lerr.RpcError, lerr.ContractRevertError) as exc:
            _raise("eth_getTransactionByHash", exc)
