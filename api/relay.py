"""Putting transactions on the chain and waiting until they are confirmed.

Two paths: members' own signed transactions are pre-flighted (``eth_call`` as
the sender, so a revert is refused before anything is stored or broadcast) and
broadcast as-is; the custodian's transactions (relayed consents, access
records) are built, estimated and signed by ``ledger``'s transaction manager
(:class:`ledger.tx.AsyncTxManager`: one nonce manager behind a lock that resyncs
from the chain after any send failure). With a journal, both paths journal the
raw transaction before it leaves (the manager's ``before_broadcast`` hook) and the
custodian's nonce is allocated under the database lock every replica shares; the
custodian's journal entry and its next nonce are written in one database transaction.

A custodian transaction not mined within ``replace_after`` seconds is replaced (same
nonce and call, fees raised; at most ``max_replacements`` times): the waits accept
whichever version is mined, and that one's receipt is what callers (and their clients)
get. Batches (``shape``) take their gas limit from an estimate cached per shape.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Hashable
from typing import Any

from anyio import to_thread

from api import errors
from api._nonce_slots import PgNonceSlots
from api._rawtx import RawTx
from api._translate import revert_error
from api.chain import ChainGateway, RpcError
from api.journal import NonceSlot, TxJournal
from ledger import errors as lerr
from ledger.models import Receipt
from ledger.tx import AsyncTxManager, LocalKeySender, NonceManager, PendingTx, SignedTx, TxHooks

#: Re-tries of a custodian broadcast refused for its nonce (resynced from the chain each time).
_NONCE_RETRIES = 3


class _ThreadSlots:
    """The journal's synchronous nonce slots (SQLite: one process) behind the async interface
    of :class:`api._nonce_slots.PgNonceSlots`, each step in a worker thread."""

    def __init__(self, journal: TxJournal) -> None:
        self._journal = journal
        self._held: dict[str, NonceSlot] = {}

    async def acquire(self, sender: str) -> int:
        slot = await to_thread.run_sync(self._journal.nonce_slot, sender)
        self._held[sender] = slot
        return slot.stored

    def holds(self, sender: str) -> bool:
        return sender in self._held

    async def journal(self, sender: str, entry: dict[str, Any], next_nonce: int) -> None:
        await to_thread.run_sync(self._held[sender].journal, entry, next_nonce)

    async def release(self, sender: str, next_nonce: int | None) -> None:
        await to_thread.run_sync(self._held.pop(sender).release, next_nonce)

    async def aclose(self) -> None:
        return None


class _JournalNonces:
    """:class:`ledger.tx.SharedNonces` on the journal's nonce lock (shared by all replicas).

    On PostgreSQL the slot lives on the event loop (:class:`api._nonce_slots.PgNonceSlots`: no
    worker-thread hop while every replica waits for it); on SQLite (one process) it is the
    journal's synchronous slot in a worker thread (:class:`_ThreadSlots`).
    """

    def __init__(self, journal: TxJournal) -> None:
        self._slots: PgNonceSlots | _ThreadSlots = journal.event_loop_slots() or _ThreadSlots(
            journal
        )
        #: The nonce manager whose slot this is (set once the manager exists).
        self.nonces: NonceManager | None = None

    async def acquire(self, address: str) -> int:
        return await self._slots.acquire(address)

    async def release(self, address: str, next_nonce: int | None) -> None:
        await self._slots.release(address, next_nonce)

    async def journal(self, tx: SignedTx) -> bool:
        """Journal ``tx`` with its next nonce in the held slot; False: not this send's."""
        first = self.nonces.reserved if self.nonces is not None else None
        if first is None or tx.nonce < first or not self._slots.holds(tx.sender):
            return False  # no send in progress, or an earlier nonce's replacement
        entry = TxJournal.entry(
            tx_hash=tx.tx_hash, sender=tx.sender, nonce=tx.nonce, raw=tx.raw, kind=tx.kind
        )
        await self._slots.journal(tx.sender, entry, tx.nonce + 1)
        return True

    async def aclose(self) -> None:
        await self._slots.aclose()


class Relayer:
    def __init__(
        self,
        chain: ChainGateway,
        *,
        chain_id: int,
        confirmations: int,
        timeout: float,
        custodian_key: bytes | None,
        poll_interval: float = 0.005,
        journal: TxJournal | None = None,
        replace_after: float | None = None,
        max_replacements: int = 3,
    ) -> None:
        self.chain = chain
        self.chain_id = chain_id
        self.confirmations = confirmations
        self.timeout = timeout
        self.poll_interval = poll_interval
        #: With a journal, every broadcast is journaled first and the custodian's nonce is
        #: allocated under the database lock shared by all replicas.
        self.journal = journal
        hooks = (
            TxHooks(self._journal_tx, self._forget_refused, self._fill_gap)
            if journal
            else TxHooks()
        )
        self._slots = _JournalNonces(journal) if journal else None
        self.tx: AsyncTxManager | None = None
        self.custodian: str | None = None
        if custodian_key:
            self.tx = AsyncTxManager(
                chain.transport,
                LocalKeySender.from_key(custodian_key),
                chain_id=chain_id,
                gas_multiplier=1.2,
                gas_margin=10_000,
                hooks=hooks,
                shared_nonces=self._slots,
                nonce_retries=_NONCE_RETRIES,
                kind="custodian",
                replace_after=replace_after,
                max_replacements=max_replacements,
            )
            self.custodian = self.tx.address
            if self._slots is not None:
                self._slots.nonces = self.tx.nonces
        #: The custodian's transactions sent and not yet waited for, by hash.
        self._sent: dict[str, PendingTx] = {}
        #: Set while no custodian transaction of this process is being signed and sent
        #: (the access batcher keeps filling a batch while it is clear).
        self.idle = asyncio.Event()
        self.idle.set()
        self._sending = 0
        # Members' raw transactions go out under the same hooks (no key of ours involved).
        self._raw = self.tx or AsyncTxManager(
            chain.transport, _NoKey(), chain_id=chain_id, hooks=hooks
        )

    @property
    def sent(self) -> int:
        return self.tx.sent if self.tx is not None else 0

    async def aclose(self) -> None:
        """Close the nonce slot's own database connection (PostgreSQL; idempotent)."""
        if self._slots is not None:
            await self._slots.aclose()

    @property
    def nonce_errors(self) -> int:
        return self.tx.nonce_errors if self.tx is not None else 0

    @property
    def replaced(self) -> int:
        """Replacements of stuck custodian transactions sent (a metrics counter)."""
        return self.tx.replaced if self.tx is not None else 0

    async def _journal_tx(self, tx: SignedTx) -> None:
        journal = self.journal
        assert journal is not None
        if self._slots is not None and await self._slots.journal(tx):
            return
        await to_thread.run_sync(
            lambda: journal.record(
                tx_hash=tx.tx_hash, sender=tx.sender, nonce=tx.nonce, raw=tx.raw, kind=tx.kind
            )
        )

    async def _forget_refused(self, tx: SignedTx, exc: lerr.RpcResponseError) -> None:
        """The node refused it outright: unless it is mined after all, it never will be."""
        if self.journal is not None and await self.receipt_or_none(tx.tx_hash) is None:
            await to_thread.run_sync(self.journal.forget, tx.tx_hash)

    async def _fill_gap(self, pending: PendingTx) -> None:
        """Before a stuck custodian transaction is replaced: broadcast what the node never got.

        A replica that died between journaling a transaction (with the next nonce) and
        broadcasting it leaves a nonce gap every later transaction queues behind; its
        journaled bytes fill it.
        """
        journal, tx = self.journal, self.tx
        assert journal is not None and tx is not None
        mined = int(await tx.rpc.call("eth_getTransactionCount", [tx.address, "latest"]), 16)
        if mined >= pending.nonce:
            return
        for raw in await to_thread.run_sync(journal.unmined_raw, tx.address, mined, pending.nonce):
            with contextlib.suppress(lerr.RpcResponseError):  # known, or another version won
                await tx.rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()])

    # ---- members' transactions ----------------------------------------------------------

    async def preflight(self, sender: str, data: bytes, to: str | None = None) -> None:
        """Simulate the call as ``sender`` at the latest block; raise the decoded revert.

        ``to`` is the ledger unless a companion of it is named."""
        target = to or self.chain.ledger_address
        try:
            await self.chain.rpc(
                "eth_call",
                [
                    {"from": sender, "to": target, "data": "0x" + data.hex()},
                    "latest",
                ],
            )
        except RpcError as exc:
            raise revert_error(exc) from exc

    async def broadcast(self, tx: RawTx) -> str:
        signed = SignedTx(tx.tx_hash, tx.sender, tx.nonce, tx.raw, "member")
        try:
            return await self._raw.broadcast_raw(signed)
        except lerr.RpcResponseError as exc:
            raise errors.InvalidRequestError(
                f"the node refused the transaction: {exc.rpc_message}"
            ) from exc
        except lerr.RpcUnavailableError as exc:
            raise errors.ChainUnavailableError(f"chain node unreachable: {exc.reason}") from exc

    # ---- the custodian's transactions ---------------------------------------------------

    def _custodian(self) -> AsyncTxManager:
        if self.tx is None:
            raise errors.NotReadyError("no custodian key configured (DATASAFE_API_CUSTODIAN_KEY)")
        return self.tx

    async def estimate(self, data: bytes, *, to: str | None = None) -> int:
        """Gas limit for a custodian call (estimate + 20 %); a revert raises its problem.

        The estimate executes the call, so it is also the pre-flight: a call the ledger
        would revert is refused here, before anything is written or sent.
        """
        tx = self._custodian()
        try:
            return await tx.estimate_gas(to or self.chain.ledger_address, data)
        except RpcError as exc:
            raise revert_error(exc) from exc
        except lerr.RpcUnavailableError as exc:
            raise errors.ChainUnavailableError(f"chain node unreachable: {exc.reason}") from exc

    async def send(
        self,
        data: bytes,
        *,
        gas: int | None = None,
        to: str | None = None,
        shape: Hashable | None = None,
    ) -> str:
        """Sign and send a call to the ledger (or ``to``: its forwarder) as the custodian.

        The gas limit is ``gas``, else the estimate cached for ``shape``, else an estimate.
        """
        return (await self._send(data, gas=gas, to=to, shape=shape)).tx_hash

    async def _send(
        self, data: bytes, *, gas: int | None, to: str | None, shape: Hashable | None
    ) -> PendingTx:
        tx = self._custodian()
        to = to or self.chain.ledger_address
        self._sending += 1
        self.idle.clear()
        try:
            if gas is None:
                gas = await self._gas(data, to, shape)
            pending = await tx.submit(to, data, gas=gas)
        except lerr.RpcResponseError as exc:
            if shape is not None:
                tx.forget_shape(shape)  # e.g. "intrinsic gas too low": estimate it anew
            raise errors.RelayFailedError(
                f"the node refused the custodian transaction: {exc.rpc_message}"
            ) from exc
        except lerr.RpcUnavailableError as exc:
            raise errors.ChainUnavailableError(f"chain node unreachable: {exc.reason}") from exc
        finally:
            self._sending -= 1
            if not self._sending:
                self.idle.set()
        self._sent[pending.tx_hash] = pending
        return pending

    async def _gas(self, data: bytes, to: str, shape: Hashable | None) -> int:
        if shape is None:
            return await self.estimate(data, to=to)
        try:
            return await self._custodian().shape_gas(shape, to, data)
        except RpcError as exc:
            raise revert_error(exc) from exc

    async def send_and_wait(
        self, data: bytes, *, gas: int | None = None, shape: Hashable | None = None
    ) -> Receipt:
        """Send and wait; with a ``shape``, a transaction that ran out of gas goes again once.

        A failed transaction of a cached shape is estimated again: a revert there is the
        call's own (raised); an estimate above the limit it had means the cached one was
        too low (replaced, and the call sent again with it).
        """
        pending = await self._send(data, gas=gas, to=None, shape=shape)
        receipt = await self.wait(pending.tx_hash)
        if receipt.success or shape is None or gas is not None:
            return receipt
        self._custodian().forget_shape(shape)
        if await self._gas(data, self.chain.ledger_address, shape) <= int(pending.tx["gas"]):
            return receipt  # not out of gas: the caller explains the revert
        return await self.wait(await self.send(data, shape=shape))

    # ---- receipts -----------------------------------------------------------------------

    async def wait(self, tx_hash: str) -> Receipt:
        """The receipt once buried under ``confirmations`` blocks; RelayFailed on timeout.

        For a custodian transaction of this process, the receipt of whichever version was
        mined (the original or a replacement sent while it was stuck).
        """
        pending = self._sent.pop(tx_hash, None)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            receipt = await self._mined(tx_hash, pending)
            if receipt is not None and (
                self.confirmations == 0
                or await self.chain.block_number() >= receipt.block_number + self.confirmations
            ):
                if self.journal is not None:
                    await to_thread.run_sync(
                        self.journal.mined,
                        receipt.tx_hash,
                        receipt.block_number,
                        receipt.block_hash,
                        receipt.success,
                        pending.hashes if pending is not None else (),
                    )
                return receipt
            if loop.time() > deadline:
                # Resync the custodian nonce from the chain before the next send (a dropped
                # transaction would otherwise leave a gap every later one queues behind).
                if self.tx is not None:
                    async with self.tx.nonces.lock:
                        self.tx.nonces.invalidate()
                raise errors.RelayFailedError(
                    f"transaction {tx_hash} not confirmed within {self.timeout}s", tx_hash=tx_hash
                )
            await asyncio.sleep(self.poll_interval)

    async def _mined(self, tx_hash: str, pending: PendingTx | None) -> Receipt | None:
        """The mined receipt; not mined yet, a stuck custodian transaction is replaced."""
        if pending is None or self.tx is None:
            return await self.receipt_or_none(tx_hash)
        try:
            raw = await self.tx.mined(pending)
            if raw is None:
                await self.tx.nudge(pending)
                return None
        except lerr.RpcUnavailableError as exc:
            raise errors.ChainUnavailableError(f"chain node unreachable: {exc.reason}") from exc
        except lerr.LedgerError as exc:
            raise errors.RelayFailedError(
                f"transaction {tx_hash} cannot be mined: {exc}", tx_hash=tx_hash
            ) from exc
        return Receipt.from_rpc(raw)

    async def receipt_or_none(self, tx_hash: str) -> Receipt | None:
        raw = await self.chain.rpc("eth_getTransactionReceipt", [tx_hash])
        if raw is None or raw.get("blockNumber") is None:
            return None
        return Receipt.from_rpc(raw)

    async def explain_failure(
        self, receipt: Receipt, sender: str, data: bytes, to: str | None = None
    ) -> errors.ApiError:
        """Why a mined transaction reverted: replay it at its block's parent state."""
        target = to or self.chain.ledger_address
        try:
            await self.chain.rpc(
                "eth_call",
                [
                    {"from": sender, "to": target, "data": "0x" + data.hex()},
                    hex(receipt.block_number - 1),
                ],
            )
        except RpcError as exc:
            return revert_error(exc, tx_hash=receipt.tx_hash)
        return errors.ContractRejectedError(
            f"transaction {receipt.tx_hash} reverted", tx_hash=receipt.tx_hash
        )


class _NoKey:
    """The sender of a relayer without a custodian key: it only broadcasts members' bytes."""

    address = "0x0000000000000000000000000000000000000000"

    def sign(self, tx: dict[str, object]) -> tuple[str, bytes | None]:
        raise errors.NotReadyError("no custodian key configured (DATASAFE_API_CUSTODIAN_KEY)")

    async def send(self, rpc: object, tx: dict[str, object]) -> tuple[str, bytes | None]:
        raise errors.NotReadyError("no custodian key configured (DATASAFE_API_CUSTODIAN_KEY)")
