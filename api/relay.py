"""Putting transactions on the chain and waiting until they are confirmed.

Two paths: members' own signed transactions are pre-flighted (``eth_call`` as
the sender, so a revert is refused before anything is stored or broadcast) and
broadcast as-is; the custodian's transactions (relayed consents, access
records) are built, estimated and signed here, one nonce manager behind a lock
that resyncs from the chain after any send failure.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from anyio import to_thread
from eth_account import Account
from eth_utils.address import to_checksum_address

from api import errors
from api._rawtx import RawTx
from api._translate import revert_error
from api.chain import ChainGateway, RpcError
from api.journal import TxJournal

#: Re-tries of a custodian broadcast refused for its nonce (resynced from the chain each time).
_NONCE_RETRIES = 3


def _is_nonce_error(exc: RpcError) -> bool:
    text = exc.message.lower()
    return "nonce" in text or "replacement transaction" in text or "already known" in text


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    block_number: int
    block_hash: str
    success: bool
    logs: list[dict[str, Any]] = field(default_factory=list)


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
        self._key = custodian_key
        self.custodian = Account.from_key(custodian_key).address if custodian_key else None
        self._nonce: int | None = None
        self._lock = asyncio.Lock()
        #: With a journal, every broadcast is journaled first and the custodian's nonce is
        #: allocated under the database row lock shared by all replicas.
        self.journal = journal
        self._resync = True
        self.sent = 0
        self.nonce_errors = 0

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
        if self.journal is not None:
            journal = self.journal
            await to_thread.run_sync(
                lambda: journal.record(
                    tx_hash=tx.tx_hash, sender=tx.sender, nonce=tx.nonce, raw=tx.raw, kind="member"
                )
            )
        try:
            await self.chain.rpc("eth_sendRawTransaction", ["0x" + tx.raw.hex()])
        except RpcError as exc:
            if "already known" in exc.message.lower():
                return tx.tx_hash
            if self.journal is not None and await self.receipt_or_none(tx.tx_hash) is None:
                await to_thread.run_sync(self.journal.forget, tx.tx_hash)
            raise errors.InvalidRequestError(
                f"the node refused the transaction: {exc.message}"
            ) from exc
        return tx.tx_hash

    # ---- the custodian's transactions ---------------------------------------------------

    async def estimate(self, data: bytes, *, to: str | None = None) -> int:
        """Gas limit for a custodian call (estimate + 20 %); a revert raises its problem.

        The estimate executes the call, so it is also the pre-flight: a call the ledger
        would revert is refused here, before anything is written or sent.
        """
        if self._key is None or self.custodian is None:
            raise errors.NotReadyError("no custodian key configured (DATASAFE_API_CUSTODIAN_KEY)")
        target = to or self.chain.ledger_address
        call = {"from": self.custodian, "to": target, "data": "0x" + data.hex()}
        try:
            estimate = await self.chain.rpc("eth_estimateGas", [call])
        except RpcError as exc:
            raise revert_error(exc) from exc
        return int(estimate, 16) * 12 // 10 + 10_000

    async def send(self, data: bytes, *, gas: int | None = None, to: str | None = None) -> str:
        """Sign and send a call to the ledger (or ``to``: its forwarder) as the custodian."""
        if self._key is None or self.custodian is None:
            raise errors.NotReadyError("no custodian key configured (DATASAFE_API_CUSTODIAN_KEY)")
        to = to or self.chain.ledger_address
        if gas is None:
            gas = await self.estimate(data, to=to)
        async with self._lock:
            if self.journal is not None:
                return await self._send_shared(data, gas, to)
            try:
                if self._nonce is None:
                    self._nonce = await self._pending_nonce()
                tx_hash, _ = await self._sign_and_send(data, gas, to, self._nonce)
                self._nonce += 1
                return tx_hash
            except BaseException:
                self._nonce = None  # resync from the chain on the next send
                raise

    async def _pending_nonce(self) -> int:
        assert self.custodian is not None
        return int(await self.chain.rpc("eth_getTransactionCount", [self.custodian, "pending"]), 16)

    async def _send_shared(self, data: bytes, gas: int, to: str) -> str:
        """Allocate the nonce and broadcast under the row lock every replica shares."""
        assert self.journal is not None and self.custodian is not None
        journal = self.journal
        slot = await to_thread.run_sync(journal.nonce_slot, self.custodian)
        next_nonce: int | None = None
        try:
            for attempt in range(_NONCE_RETRIES + 1):
                # The chain's pending count is the truth at start and after a failure; otherwise
                # the stored next nonce, kept under the row lock every replica takes, is (and it
                # also covers a node whose pending view lags behind, e.g. load-balanced RPC).
                # A nonce taken outside the service is refused by the node: resync and retry.
                nonce = await self._pending_nonce() if self._resync else slot.stored
                try:
                    tx_hash, _ = await self._sign_and_send(data, gas, to, nonce, journal=journal)
                except RpcError as exc:
                    # Someone else (outside this service) took the nonce: resync and retry.
                    if not _is_nonce_error(exc) or attempt == _NONCE_RETRIES:
                        raise errors.RelayFailedError(
                            f"the node refused the custodian transaction: {exc.message}"
                        ) from exc
                    self._resync = True
                    continue
                next_nonce = nonce + 1
                self._resync = False
                return tx_hash
            raise AssertionError("unreachable")
        except BaseException:
            self._resync = True
            raise
        finally:
            await to_thread.run_sync(slot.release, next_nonce)

    async def _sign_and_send(
        self, data: bytes, gas: int, to: str, nonce: int, *, journal: TxJournal | None = None
    ) -> tuple[str, bytes]:
        assert self._key is not None and self.custodian is not None
        gas_price = int(await self.chain.rpc("eth_gasPrice", []), 16)
        tx = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": to_checksum_address(to),
            "value": 0,
            "gas": gas,
            "maxFeePerGas": gas_price * 2 + 1,
            "maxPriorityFeePerGas": min(gas_price, 1_000_000_000),
            "data": data,
        }
        signed = Account.sign_transaction(tx, self._key)
        raw = bytes(signed.raw_transaction)
        tx_hash = "0x" + bytes(signed.hash).hex()
        if journal is not None:
            sender = self.custodian
            await to_thread.run_sync(
                lambda: journal.record(
                    tx_hash=tx_hash, sender=sender, nonce=nonce, raw=raw, kind="custodian"
                )
            )
        try:
            sent = await self.chain.rpc("eth_sendRawTransaction", ["0x" + raw.hex()])
        except RpcError as exc:
            if _is_nonce_error(exc):
                self.nonce_errors += 1
            if journal is not None and await self.receipt_or_none(tx_hash) is None:
                await to_thread.run_sync(journal.forget, tx_hash)
            raise
        self.sent += 1
        return str(sent), raw

    async def send_and_wait(self, data: bytes, *, gas: int | None = None) -> Receipt:
        return await self.wait(await self.send(data, gas=gas))

    # ---- receipts -----------------------------------------------------------------------

    async def wait(self, tx_hash: str) -> Receipt:
        """The receipt once buried under ``confirmations`` blocks; ChainUnavailable on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            raw = await self.chain.rpc("eth_getTransactionReceipt", [tx_hash])
            if raw is not None and raw.get("blockNumber") is not None:
                block = int(raw["blockNumber"], 16)
                if (
                    self.confirmations == 0
                    or await self.chain.block_number() >= block + self.confirmations
                ):
                    if self.journal is not None:
                        await to_thread.run_sync(
                            self.journal.mined,
                            tx_hash,
                            block,
                            str(raw["blockHash"]),
                            int(raw["status"], 16) == 1,
                        )
                    return Receipt(
                        tx_hash=tx_hash,
                        block_number=block,
                        block_hash=str(raw["blockHash"]),
                        success=int(raw["status"], 16) == 1,
                        logs=list(raw.get("logs", [])),
                    )
            if loop.time() > deadline:
                # Resync the custodian nonce from the chain before the next send (a dropped
                # transaction would otherwise leave a gap every later one queues behind).
                async with self._lock:
                    self._nonce = None
                    self._resync = True
                raise errors.RelayFailedError(
                    f"transaction {tx_hash} not confirmed within {self.timeout}s", tx_hash=tx_hash
                )
            await asyncio.sleep(self.poll_interval)

    async def receipt_or_none(self, tx_hash: str) -> Receipt | None:
        raw = await self.chain.rpc("eth_getTransactionReceipt", [tx_hash])
        if raw is None or raw.get("blockNumber") is None:
            return None
        return Receipt(
            tx_hash=tx_hash,
            block_number=int(raw["blockNumber"], 16),
            block_hash=str(raw["blockHash"]),
            success=int(raw["status"], 16) == 1,
            logs=list(raw.get("logs", [])),
        )

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
