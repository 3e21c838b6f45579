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

from eth_account import Account
from eth_utils.address import to_checksum_address

from api import errors
from api._rawtx import RawTx
from api._translate import revert_error
from api.chain import ChainGateway, RpcError


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
        try:
            await self.chain.rpc("eth_sendRawTransaction", ["0x" + tx.raw.hex()])
        except RpcError as exc:
            if "already known" in exc.message.lower():
                return tx.tx_hash
            raise errors.InvalidRequestError(
                f"the node refused the transaction: {exc.message}"
            ) from exc
        return tx.tx_hash

    # ---- the custodian's transactions ---------------------------------------------------

    async def send(self, data: bytes, *, gas: int | None = None) -> str:
        """Sign and send a call to the ledger as the custodian; returns the tx hash."""
        if self._key is None or self.custodian is None:
            raise errors.NotReadyError("no custodian key configured (DATASAFE_API_CUSTODIAN_KEY)")
        to = self.chain.ledger_address
        if gas is None:
            try:
                estimate = await self.chain.rpc(
                    "eth_estimateGas",
                    [{"from": self.custodian, "to": to, "data": "0x" + data.hex()}],
                )
            except RpcError as exc:
                raise revert_error(exc) from exc
            gas = int(estimate, 16) * 12 // 10 + 10_000
        async with self._lock:
            try:
                if self._nonce is None:
                    self._nonce = int(
                        await self.chain.rpc(
                            "eth_getTransactionCount", [self.custodian, "pending"]
                        ),
                        16,
                    )
                gas_price = int(await self.chain.rpc("eth_gasPrice", []), 16)
                tx = {
                    "type": 2,
                    "chainId": self.chain_id,
                    "nonce": self._nonce,
                    "to": to_checksum_address(to),
                    "value": 0,
                    "gas": gas,
                    "maxFeePerGas": gas_price * 2 + 1,
                    "maxPriorityFeePerGas": min(gas_price, 1_000_000_000),
                    "data": data,
                }
                signed = Account.sign_transaction(tx, self._key)
                tx_hash = await self.chain.rpc(
                    "eth_sendRawTransaction", ["0x" + bytes(signed.raw_transaction).hex()]
                )
                self._nonce += 1
                return str(tx_hash)
            except BaseException:
                self._nonce = None  # resync from the chain on the next send
                raise

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
