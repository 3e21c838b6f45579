"""Putting transactions on the chain and waiting until they are confirmed.

Two paths: members' own signed transactions are pre-flighted (``eth_call`` as
the sender, so a revert is refused before anything is stored or broadcast) and
broadcast as-is; the custodian's transactions (relayed consents, access
records) are built, estimated and signed by ``ledger``'s transaction manager
(:class:`ledger.tx.AsyncTxManager`: one nonce manager behind a lock that resyncs
from the chain after any send failure). With a journal, both paths journal the
raw transaction before it leaves (the manager's ``before_broadcast`` hook) and the
custodian's nonce is allocated under the database row lock every replica shares.
"""

from __future__ import annotations

import asyncio

from anyio import to_thread

from api import errors
from api._rawtx import RawTx
from api._translate import revert_error
from api.chain import ChainGateway, RpcError
from api.journal import NonceSlot, TxJournal
from ledger import errors as lerr
from ledger.models import Receipt
from ledger.tx import AsyncTxManager, LocalKeySender, SignedTx, TxHooks

#: Re-tries of a custodian broadcast refused for its nonce (resynced from the chain each time).
_NONCE_RETRIES = 3


class _JournalNonces:
    """:class:`ledger.tx.SharedNonces` on the journal's row lock (shared by all replicas)."""

    def __init__(self, journal: TxJournal) -> None:
        self._journal = journal
        self._slots: dict[str, NonceSlot] = {}

    async def acquire(self, address: str) -> int:
        slot = await to_thread.run_sync(self._journal.nonce_slot, address)
        self._slots[address] = slot
        return slot.stored

    async def release(self, address: str, next_nonce: int | None) -> None:
        await to_thread.run_sync(self._slots.pop(address).release, next_nonce)


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
    ) -> None:
        self.chain = chain
        self.chain_id = chain_id
        self.confirmations = confirmations
        self.timeout = timeout
        self.poll_interval = poll_interval
        #: With a journal, every broadcast is journaled first and the custodian's nonce is
        #: allocated under the database row lock shared by all replicas.
        self.journal = journal
        hooks = TxHooks(self._journal_tx, self._forget_refused) if journal else TxHooks()
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
                shared_nonces=_JournalNonces(journal) if journal else None,
                nonce_retries=_NONCE_RETRIES,
                kind="custodian",
            )
            self.custodian = self.tx.address
        # Members' raw transactions go out under the same hooks (no key of ours involved).
        self._raw = self.tx or AsyncTxManager(
            chain.transport, _NoKey(), chain_id=chain_id, hooks=hooks
        )

    @property
    def sent(self) -> int:
        return self.tx.sent if self.tx is not None else 0

    @property
    def nonce_errors(self) -> int:
        return self.tx.nonce_errors if self.tx is not None else 0

    async def _journal_tx(self, tx: SignedTx) -> None:
        journal = self.journal
        assert journal is not None
        await to_thread.run_sync(
            lambda: journal.record(
                tx_hash=tx.tx_hash, sender=tx.sender, nonce=tx.nonce, raw=tx.raw, kind=tx.kind
            )
        )

    async def _forget_refused(self, tx: SignedTx, exc: lerr.RpcResponseError) -> None:
        """The node refused it outright: unless it is mined after all, it never will be."""
        if self.journal is not None and await self.receipt_or_none(tx.tx_hash) is None:
            await to_thread.run_sync(self.journal.forget, tx.tx_hash)

    # ---- members' transactions ----------------------------------------------------------

    async def preflight(self, sender: str, data: bytes) -> None:
        """Simulate the call as ``sender`` at the latest block; raise the decoded revert."""
        try:
            await self.chain.rpc(
                "eth_call",
                [
                    {"from": sender, "to": self.chain.ledger_address, "data": "0x" + data.hex()},
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

    async def send(self, data: bytes, *, gas: int | None = None, to: str | None = None) -> str:
        """Sign and send a call to the ledger (or ``to``: its forwarder) as the custodian."""
        tx = self._custodian()
        to = to or self.chain.ledger_address
        if gas is None:
            gas = await self.estimate(data, to=to)
        try:
            pending = await tx.submit(to, data, gas=gas)
        except lerr.RpcResponseError as exc:
            raise errors.RelayFailedError(
                f"the node refused the custodian transaction: {exc.rpc_message}"
            ) from exc
        except lerr.RpcUnavailableError as exc:
            raise errors.ChainUnavailableError(f"chain node unreachable: {exc.reason}") from exc
        return pending.tx_hash

    async def send_and_wait(self, data: bytes, *, gas: int | None = None) -> Receipt:
        return await self.wait(await self.send(data, gas=gas))

    # ---- receipts -----------------------------------------------------------------------

    async def wait(self, tx_hash: str) -> Receipt:
        """The receipt once buried under ``confirmations`` blocks; RelayFailed on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            receipt = await self.receipt_or_none(tx_hash)
            if receipt is not None and (
                self.confirmations == 0
                or await self.chain.block_number() >= receipt.block_number + self.confirmations
            ):
                if self.journal is not None:
                    await to_thread.run_sync(
                        self.journal.mined,
                        tx_hash,
                        receipt.block_number,
                        receipt.block_hash,
                        receipt.success,
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

    async def receipt_or_none(self, tx_hash: str) -> Receipt | None:
        raw = await self.chain.rpc("eth_getTransactionReceipt", [tx_hash])
        if raw is None or raw.get("blockNumber") is None:
            return None
        return Receipt.from_rpc(raw)

    async def explain_failure(self, receipt: Receipt, sender: str, data: bytes) -> errors.ApiError:
        """Why a mined transaction reverted: replay it at its block's parent state."""
        try:
            await self.chain.rpc(
                "eth_call",
                [
                    {"from": sender, "to": self.chain.ledger_address, "data": "0x" + data.hex()},
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
