"""The one transaction manager: senders, nonces, journal hooks, receipts, re-sends, replacement.

Rules this module keeps:

* One :class:`NonceManager` per signing key, behind a lock. A nonce is taken and
  the transaction handed to the node *inside* the lock, and the counter only
  advances once the node accepted it, so concurrent asyncio tasks never collide
  and a failed send leaves no gap. On a nonce error the counter is resynced from
  the chain (``eth_getTransactionCount(..., "pending")``) and the send retried.
  Several processes share one key only through :class:`SharedNonces` (a store every
  process locks, e.g. a database row); otherwise each process uses its own key.
* Gas is estimated before a nonce is taken; a revert there raises the decoded
  custom error and sends nothing.
* :class:`TxHooks` let a service journal every signed transaction *before* it leaves
  (``before_broadcast``) and drop it again when the node refuses it (``refused``);
  :meth:`AsyncTxManager.broadcast_raw` sends a transaction someone else signed under
  the same hooks.
* Receipts are awaited with a timeout and ``confirmations``; a transaction the
  node no longer knows (dropped from the pool, or lost with a node restart) is
  re-sent with the same signed payload; a stuck one can be replaced
  (:meth:`AsyncTxManager.replace`: same nonce, higher fees), and with ``replace_after``
  the waits replace it themselves (a few times at most) and accept whichever version
  is mined.
* A gas limit can come from an estimate cached per call shape
  (:meth:`AsyncTxManager.shape_gas`), forgotten when a transaction ran out of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ledger._senders import LocalKeySender, NodeAccountSender, Sender
from ledger.abi import LedgerAbi
from ledger.address import to_checksum_address
from ledger.errors import (
    ConfigurationError,
    ContractRevertError,
    ReceiptTimeoutError,
    RpcNonceError,
    RpcResponseError,
    TransactionDroppedError,
    TransactionRevertedError,
)
from ledger.models import Receipt
from ledger.rpc import AsyncRpcClient


def is_nonce_error(exc: RpcResponseError) -> bool:
    """Whether the node refused a transaction for its nonce (the transport types it)."""
    return isinstance(exc, RpcNonceError)


#: The highest priority fee the custodian offers (1 gwei): it never bids against members.
MAX_TIP_WEI = 10**9


@dataclass(frozen=True)
class SignedTx:
    """A signed transaction about to be broadcast: what a journal keeps to send it again."""

    tx_hash: str
    sender: str
    nonce: int
    raw: bytes
    #: The journal's label: the manager's own ``kind`` or what :meth:`broadcast_raw` was given.
    kind: str = "own"


@dataclass
class TxHooks:
    """A service's callbacks around every raw broadcast (each optional).

    ``before_broadcast`` runs before the bytes leave (a journal records them; if it raises,
    nothing is sent). ``refused`` runs when the node answers the broadcast with an error
    (the transaction was not accepted; a journal may forget it).
    """

    before_broadcast: Callable[[SignedTx], Awaitable[None]] | None = None
    refused: Callable[[SignedTx, RpcResponseError], Awaitable[None]] | None = None
    #: Runs before a stuck transaction is replaced (a journal may fill a nonce gap below it).
    stuck: Callable[[PendingTx], Awaitable[None]] | None = None


class SharedNonces(Protocol):
    """The next nonce of a key several processes share, kept where all of them lock it."""

    async def acquire(self, address: str) -> int:
        """Lock ``address``'s slot (waiting for other processes); its stored next nonce."""
        ...

    async def release(self, address: str, next_nonce: int | None) -> None:
        """Store ``next_nonce`` (None: keep what is stored) and unlock."""
        ...


@dataclass
class PendingTx:
    """A transaction accepted by the node, not yet confirmed."""

    tx_hash: str
    nonce: int
    tx: dict[str, Any]
    raw: bytes | None
    submitted_at: float = field(default_factory=time.monotonic)
    resends: int = 0
    replacements: int = 0
    #: The earlier versions this one replaced (same nonce): any of them may still be mined.
    superseded: list[str] = field(default_factory=list)

    @property
    def hashes(self) -> list[str]:
        """Every version's hash, the newest first."""
        return [self.tx_hash, *self.superseded]


class NonceManager:
    """The next nonce of one account, behind one asyncio lock (and a shared slot, if given).

    The counter is None until read from the chain, and again after any failure
    (:meth:`invalidate`): the next :meth:`reserve` resyncs from the chain's pending count.
    With :class:`SharedNonces`, the stored value of the locked slot is the truth in between
    (other processes advance it).
    """

    def __init__(
        self, rpc: AsyncRpcClient, address: str, shared: SharedNonces | None = None
    ) -> None:
        self._rpc = rpc
        self.address = to_checksum_address(address)
        self.lock = asyncio.Lock()
        self.shared = shared
        self._next: int | None = None
        #: The first nonce of the send in progress (None outside :meth:`reserve`).
        self.reserved: int | None = None

    async def chain_pending(self) -> int:
        return int(await self._rpc.call("eth_getTransactionCount", [self.address, "pending"]), 16)

    async def current(self) -> int:
        """Next nonce to use (call with :attr:`lock` held)."""
        if self._next is None:
            self._next = await self.chain_pending()
        return self._next

    def advance(self, count: int = 1) -> None:
        assert self._next is not None
        self._next += count

    def invalidate(self) -> None:
        """Forget the counter; the next :meth:`current` resyncs from the chain."""
        self._next = None

    @contextlib.asynccontextmanager
    async def reserve(self) -> AsyncIterator[int]:
        """Hold the lock (and the shared slot) around one send; yields the nonce to use.

        Call :meth:`advance` once the node accepted the transaction(s); an exception
        resyncs the counter from the chain on the next reserve.
        """
        async with self.lock:
            stored = await self.shared.acquire(self.address) if self.shared else None
            try:
                if self._next is not None and stored is not None:
                    self._next = stored
                self.reserved = await self.current()
                yield self.reserved
            except BaseException:
                self._next = None
                raise
            finally:
                self.reserved = None
                if self.shared is not None:
                    await self.shared.release(self.address, self._next)


class AsyncTxManager:
    """Builds, signs, sends and confirms transactions of one sender."""

    def __init__(
        self,
        rpc: AsyncRpcClient,
        sender: Sender,
        *,
        abi: LedgerAbi | None = None,
        confirmations: int = 0,
        receipt_timeout: float = 60.0,
        poll_interval: float = 0.05,
        resend_after: float = 5.0,
        gas_multiplier: float = 1.2,
        gas_margin: int = 0,
        chain_id: int | None = None,
        hooks: TxHooks | None = None,
        shared_nonces: SharedNonces | None = None,
        nonce_retries: int = 2,
        kind: str = "own",
        replace_after: float | None = None,
        max_replacements: int = 3,
    ) -> None:
        self.rpc = rpc
        self.sender = sender
        self.abi = abi
        self.confirmations = confirmations
        self.receipt_timeout = receipt_timeout
        self.poll_interval = poll_interval
        self.resend_after = resend_after
        self.gas_multiplier = gas_multiplier
        self.gas_margin = gas_margin
        self.hooks = hooks or TxHooks()
        self.nonce_retries = nonce_retries
        self.kind = kind
        #: Seconds a waited-on transaction may stay unmined before it is replaced (None: never).
        self.replace_after = replace_after
        self.max_replacements = max_replacements
        self.nonces = NonceManager(rpc, sender.address, shared_nonces)
        self._chain_id = chain_id
        self._fees: tuple[float, int, int] | None = None
        #: Raw gas estimates per call shape (:meth:`shape_gas`).
        self.shape_estimates: dict[Hashable, int] = {}
        #: Broadcasts the node accepted, refusals for a nonce, replacements sent (for metrics).
        self.sent = 0
        self.nonce_errors = 0
        self.replaced = 0

    @property
    def address(self) -> str:
        return self.sender.address

    async def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(await self.rpc.call("eth_chainId"), 16)
        return self._chain_id

    async def _fee_fields(self, *, fresh: bool = False) -> dict[str, int]:
        now = time.monotonic()
        if fresh or self._fees is None or now - self._fees[0] > 2.0:
            price = int(await self.rpc.call("eth_gasPrice"), 16)
            tip = min(price, MAX_TIP_WEI)
            # The fee cap follows the base fee, not eth_gasPrice: the node's price suggestion
            # includes other senders' tips, and members bidding ever higher tips would
            # otherwise price the custodian out of its own balance ("insufficient funds").
            base = await self._base_fee()
            cap = price * 2 + tip if base is None else base * 2 + tip
            self._fees = (now, cap, tip)
        return {"maxFeePerGas": self._fees[1], "maxPriorityFeePerGas": self._fees[2], "type": 2}

    async def _base_fee(self) -> int | None:
        """The latest block's base fee; None on a chain without EIP-1559 blocks."""
        block = await self.rpc.call("eth_getBlockByNumber", ["latest", False])
        if not isinstance(block, dict) or block.get("baseFeePerGas") is None:
            return None
        return int(block["baseFeePerGas"], 16)

    def _call_obj(self, to: str | None, data: bytes, value: int = 0) -> dict[str, Any]:
        obj: dict[str, Any] = {"from": self.address, "data": "0x" + data.hex()}
        if to is not None:
            obj["to"] = to_checksum_address(to)
        if value:
            obj["value"] = hex(value)
        return obj

    async def estimate_gas(self, to: str | None, data: bytes, value: int = 0) -> int:
        """Estimated gas with the safety multiplier; a revert raises the decoded error."""
        return int(await self._estimate(to, data, value) * self.gas_multiplier) + self.gas_margin

    async def _estimate(self, to: str | None, data: bytes, value: int = 0) -> int:
        return int(await self.rpc.call("eth_estimateGas", [self._call_obj(to, data, value)]), 16)

    async def shape_gas(
        self, shape: Hashable, to: str | None, data: bytes, *, multiplier: float = 1.5
    ) -> int:
        """A gas limit for ``data`` from the estimate cached for its ``shape``.

        A shape is what decides the gas a call needs (e.g. function and batch size): the
        first call of a shape is estimated (which executes it on the node, so a revert
        raises here), the later ones reuse it. Call :meth:`forget_shape` when a
        transaction ran out of the limit it got.
        """
        if shape not in self.shape_estimates:
            self.shape_estimates[shape] = await self._estimate(to, data)
        return int(self.shape_estimates[shape] * multiplier) + self.gas_margin

    def forget_shape(self, shape: Hashable) -> None:
        self.shape_estimates.pop(shape, None)

    async def _build(self, to: str | None, data: bytes, gas: int, value: int) -> dict[str, Any]:
        tx: dict[str, Any] = {
            "chainId": await self.chain_id(),
            "gas": gas,
            "value": value,
            "data": "0x" + data.hex(),
            **(await self._fee_fields()),
        }
        if to is not None:
            tx["to"] = to_checksum_address(to)
        return tx

    async def submit(
        self, to: str | None, data: bytes, *, gas: int | None = None, value: int = 0
    ) -> PendingTx:
        """Estimate (unless ``gas``), take a nonce, sign and hand to the node."""
        if gas is None:
            gas = await self.estimate_gas(to, data, value)
        tx = await self._build(to, data, gas, value)
        for attempt in range(self.nonce_retries + 1):
            try:
                async with self.nonces.reserve() as nonce:
                    tx["nonce"] = nonce
                    tx_hash, raw = await self._sign_and_send(tx)
                    self.nonces.advance()
            except RpcNonceError:
                # Someone else took the nonce (the counter resyncs from the chain): retry.
                if attempt < self.nonce_retries:
                    continue
                raise
            return PendingTx(tx_hash, tx["nonce"], dict(tx), raw)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _sign_and_send(self, tx: dict[str, Any]) -> tuple[str, bytes | None]:
        tx_hash, raw = self.sender.sign(tx)
        if raw is None:  # a node account: the node signs
            tx_hash, _ = await self.sender.send(self.rpc, tx)
            self.sent += 1
            return tx_hash, None
        await self._broadcast(SignedTx(tx_hash, self.address, int(tx["nonce"]), raw, self.kind))
        return tx_hash, raw

    async def _broadcast(self, signed: SignedTx) -> None:
        """The hooks around one ``eth_sendRawTransaction``."""
        if self.hooks.before_broadcast is not None:
            await self.hooks.before_broadcast(signed)
        try:
            await self.rpc.call("eth_sendRawTransaction", ["0x" + signed.raw.hex()])
        except RpcResponseError as exc:
            if isinstance(exc, RpcNonceError):
                self.nonce_errors += 1
            # "already known" / "already imported": the node holds these very bytes (pending or
            # mined), so they were not refused.
            known = _node_holds(exc)
            if self.hooks.refused is not None and not known:
                await self.hooks.refused(signed, exc)
            raise
        self.sent += 1

    async def broadcast_raw(self, signed: SignedTx) -> str:
        """Broadcast a transaction signed elsewhere (a member's own), under the same hooks.

        A node that already holds it is no failure; other refusals raise the typed
        :class:`RpcResponseError` after the ``refused`` hook.
        """
        try:
            await self._broadcast(signed)
        except RpcResponseError as exc:
            if not _node_holds(exc):
                raise
        return signed.tx_hash

    async def replace(self, pending: PendingTx, *, fee_bump: float = 1.125) -> PendingTx:
        """Replace a stuck transaction: same nonce and call, fees raised by ``fee_bump``.

        Nodes accept a replacement only if it pays at least 10 % more; the fees are also
        raised to what a new transaction would pay now. Returns the replacement (the old
        hash may still be mined instead: wait on the new one, which fails if so).
        """
        if fee_bump < 1.1:
            raise ConfigurationError(f"fee_bump {fee_bump} is below the 10 % nodes require")
        now = await self._fee_fields(fresh=True)
        tx = dict(pending.tx)
        tip = max(int(tx["maxPriorityFeePerGas"] * fee_bump) + 1, now["maxPriorityFeePerGas"])
        tx["maxPriorityFeePerGas"] = tip
        tx["maxFeePerGas"] = max(int(tx["maxFeePerGas"] * fee_bump) + 1, now["maxFeePerGas"], tip)
        counted = self.nonce_errors
        try:
            tx_hash, raw = await self._sign_and_send(tx)
        except RpcNonceError:
            # Its nonce is used, normally by a version of this very transaction mined
            # meanwhile: no nonce clash of the sender's (the metric counts those).
            self.nonce_errors = counted
            raise
        self.replaced += 1
        return PendingTx(tx_hash, pending.nonce, tx, raw)

    async def _bump(self, pending: PendingTx) -> None:
        """Replace ``pending`` in place: it becomes the new version, the old hash is kept."""
        pending.replacements += 1
        pending.submitted_at = time.monotonic()
        if self.hooks.stuck is not None:
            await self.hooks.stuck(pending)
            if await self.mined(pending) is not None:
                return  # what the hook did got it mined
        try:
            new = await self.replace(pending)
        except RpcResponseError:
            # Refused (a version was mined meanwhile, or the node wants more): the next
            # receipt poll finds a mined version; otherwise the next bump tries again.
            return
        pending.superseded.insert(0, pending.tx_hash)
        pending.tx_hash, pending.tx, pending.raw = new.tx_hash, new.tx, new.raw

    async def submit_many(self, calls: Sequence[tuple[str | None, bytes, int]]) -> list[PendingTx]:
        """Sign many (to, data, gas) transactions with consecutive nonces; send as one batch.

        Only for local keys. No estimation (give gas); items the node rejects raise after
        the batch, and the counter is resynced.
        """
        if not calls:
            return []
        txs = [await self._build(to, data, gas, 0) for to, data, gas in calls]
        async with self.nonces.reserve() as first:
            signed: list[tuple[dict[str, Any], SignedTx]] = []
            for i, tx in enumerate(txs):
                tx["nonce"] = first + i
                tx_hash, raw = self.sender.sign(tx)
                if raw is None:
                    raise ConfigurationError("submit_many needs a local signing key")
                signed.append((tx, SignedTx(tx_hash, self.address, first + i, raw, self.kind)))
            if self.hooks.before_broadcast is not None:
                for _, one in signed:
                    await self.hooks.before_broadcast(one)
            results = await self.rpc.batch(
                [("eth_sendRawTransaction", ["0x" + one.raw.hex()]) for _, one in signed]
            )
            failures = [
                (one, r)
                for (_, one), r in zip(signed, results, strict=True)
                if isinstance(r, Exception)
            ]
            for one, exc in failures:
                if self.hooks.refused is not None and isinstance(exc, RpcResponseError):
                    await self.hooks.refused(one, exc)
            if failures:
                raise failures[0][1]
            self.sent += len(signed)
            self.nonces.advance(len(signed))
        return [PendingTx(one.tx_hash, one.nonce, tx, one.raw) for tx, one in signed]

    async def send(
        self, to: str | None, data: bytes, *, gas: int | None = None, value: int = 0
    ) -> Receipt:
        return await self.wait(await self.submit(to, data, gas=gas, value=value))

    async def _resend(self, pending: PendingTx) -> None:
        pending.resends += 1
        pending.submitted_at = time.monotonic()
        try:
            if pending.raw is not None:
                await self.rpc.call("eth_sendRawTransaction", ["0x" + pending.raw.hex()])
            else:
                tx_hash, _ = await self.sender.send(self.rpc, pending.tx)
                pending.tx_hash = tx_hash
        except RpcResponseError as exc:
            if _node_holds(exc) or (pending.superseded and await self.mined(pending)):
                return  # the node has it, or an earlier version of it was mined meanwhile
            # The nonce was used by something else: this transaction can never be mined.
            raise TransactionDroppedError(
                f"transaction {pending.tx_hash} (nonce {pending.nonce}) was dropped and cannot "
                f"be re-sent: {exc.rpc_message}"
            ) from exc

    async def _receipts(self, pending: Sequence[PendingTx]) -> list[dict[str, Any] | None]:
        """The receipt of each transaction's mined version (None: none yet), in one request."""
        calls = [("eth_getTransactionReceipt", [h]) for p in pending for h in p.hashes]
        if len(calls) == 1:
            replies: list[Any] = [await self.rpc.call(*calls[0])]
        else:
            replies = await self.rpc.batch(calls)
        out: list[dict[str, Any] | None] = []
        for p in pending:
            versions, replies = replies[: len(p.hashes)], replies[len(p.hashes) :]
            mined = [r for r in versions if isinstance(r, dict) and r.get("blockNumber")]
            out.append(mined[0] if mined else None)
        return out

    async def mined(self, pending: PendingTx) -> dict[str, Any] | None:
        """The JSON-RPC receipt of whichever version of ``pending`` was mined, if any."""
        return (await self._receipts([pending]))[0]

    async def nudge(self, pending: PendingTx) -> None:
        """Not mined yet: replace it once stuck (``replace_after``); re-send it if dropped."""
        age = time.monotonic() - pending.submitted_at
        if (
            self.replace_after is not None
            and age >= self.replace_after
            and pending.replacements < self.max_replacements
            and pending.raw is not None
        ):
            await self._bump(pending)
        elif age >= self.resend_after:
            if await self.rpc.call("eth_getTransactionByHash", [pending.tx_hash]) is None:
                await self._resend(pending)
            else:
                pending.submitted_at = time.monotonic()

    async def wait(self, pending: PendingTx, *, max_wait: float | None = None) -> Receipt:
        """Await the receipt (and confirmations) of whichever version is mined.

        Meanwhile the transaction is re-sent if the node forgot it, and replaced when it is
        stuck (see :meth:`nudge`).
        """
        limit = self.receipt_timeout if max_wait is None else max_wait
        deadline = time.monotonic() + limit
        while True:
            raw = await self.mined(pending)
            if raw is None:
                await self.nudge(pending)
            elif self.confirmations <= 1 or (
                int(await self.rpc.call("eth_blockNumber"), 16) - int(raw["blockNumber"], 16) + 1
                >= self.confirmations
            ):
                return await self._finish(pending, raw)
            if time.monotonic() >= deadline:
                raise ReceiptTimeoutError(pending.tx_hash, limit)
            await asyncio.sleep(self.poll_interval)

    async def wait_many(self, pending: Sequence[PendingTx]) -> list[Receipt]:
        """Receipts of many transactions, polled in JSON-RPC batches."""
        out: dict[int, Receipt] = {}
        deadline = time.monotonic() + self.receipt_timeout
        todo = list(range(len(pending)))
        while todo:
            replies = await self._receipts([pending[i] for i in todo])
            left = []
            for i, reply in zip(todo, replies, strict=True):
                if reply is not None:
                    out[i] = await self._finish(pending[i], reply)
                else:
                    left.append(i)
            todo = left
            if todo:
                if time.monotonic() >= deadline:
                    raise ReceiptTimeoutError(pending[todo[0]].tx_hash, self.receipt_timeout)
                for i in todo:
                    await self.nudge(pending[i])
                await asyncio.sleep(self.poll_interval)
        return [out[i] for i in range(len(pending))]

    async def _finish(self, pending: PendingTx, raw: dict[str, Any]) -> Receipt:
        receipt = Receipt.from_rpc(raw)
        if not receipt.success:
            raise await self._revert_reason(pending, receipt.block_number)
        if self.abi is None:
            return receipt
        events = [e for e in (self.abi.decode_log(log) for log in receipt.logs) if e is not None]
        return replace(receipt, events=events)

    async def _revert_reason(self, pending: PendingTx, block: int) -> Exception:
        """Replay a failed transaction as a call to recover its custom error."""
        call = {
            "from": self.address,
            "data": pending.tx.get("data", "0x"),
            "gas": hex(int(pending.tx.get("gas", 0))),
        }
        if pending.tx.get("to"):
            call["to"] = pending.tx["to"]
        try:
            await self.rpc.call("eth_call", [call, hex(block - 1)])
        except ContractRevertError as exc:
            exc.tx_hash = pending.tx_hash  # type: ignore[attr-defined]
            return exc
        except RpcResponseError:
            pass
        return TransactionRevertedError(pending.tx_hash, block)


def _node_holds(exc: RpcResponseError) -> bool:
    """The node refused a broadcast because it already has these bytes (pool or chain)."""
    message = exc.rpc_message.lower()
    return "already known" in message or "already imported" in message


__all__ = [
    "MAX_TIP_WEI",
    "AsyncTxManager",
    "LocalKeySender",
    "NodeAccountSender",
    "NonceManager",
    "PendingTx",
    "Sender",
    "SharedNonces",
    "SignedTx",
    "TxHooks",
    "is_nonce_error",
]
