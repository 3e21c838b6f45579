"""Typed ledger clients: :class:`AsyncLedgerClient` (FastAPI) and :class:`LedgerClient` (CLI).

Both take their calls from :class:`ledger.calls.LedgerCalls`, so encoding and
decoding exist once; the clients only move bytes. Reads are ``eth_call`` over a
persistent raw JSON-RPC connection; :meth:`read_many` sends many reads as one
JSON-RPC batch. Writes go through one :class:`ledger.tx.AsyncTxManager` per key.

The sync client runs reads on a blocking httpx connection and writes on a private
event loop in a background thread (so the transaction logic exists once).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ledger import trust
from ledger.abi import LedgerAbi, ledger_abi
from ledger.address import to_checksum_address
from ledger.calls import LedgerCalls, Read, Write
from ledger.eip712 import Domain
from ledger.errors import ConfigurationError
from ledger.models import Asset, CheckResult, Grant, Member, Receipt, Schema
from ledger.rpc import AsyncRpcClient, RpcClient
from ledger.settings import LedgerSettings

# The transaction manager signs with eth-account (and py_ecc behind its keystore code, ~1 s of
# import): only clients that send need it, not the wallet's reads.
if TYPE_CHECKING:
    from ledger.tx import AsyncTxManager, PendingTx, Sender

T = TypeVar("T")


def sender_from_settings(settings: LedgerSettings) -> Sender:
    """The configured sender: private key, keystore, or node-unlocked account."""
    from ledger.tx import LocalKeySender, NodeAccountSender

    if settings.private_key is not None:
        return LocalKeySender.from_key(settings.private_key.get_secret_value())
    if settings.keystore_path is not None:
        password = (
            settings.keystore_password.get_secret_value() if settings.keystore_password else ""
        )
        return LocalKeySender.from_keystore(str(settings.keystore_path), password)
    if settings.node_account is not None:
        return NodeAccountSender(settings.node_account)
    raise ConfigurationError(
        "no sender configured: set DATASAFE_LEDGER_PRIVATE_KEY, _KEYSTORE_PATH or _NODE_ACCOUNT"
    )


def _call_params(address: str, read: Read[Any], block: str) -> list[Any]:
    return [{"to": address, "data": "0x" + read.data.hex()}, block]


def _hex(value: Any) -> bytes:
    return bytes.fromhex(str(value)[2:])


class AsyncLedgerClient:
    """The ledger at ``address`` over an :class:`AsyncRpcClient`."""

    def __init__(
        self,
        rpc: AsyncRpcClient,
        address: str,
        *,
        tx: AsyncTxManager | None = None,
        abi: LedgerAbi | None = None,
        chain_id: int | None = None,
    ) -> None:
        self.rpc = rpc
        self.address = to_checksum_address(address)
        self.abi = abi or ledger_abi()
        self.calls = LedgerCalls(self.abi)
        self.tx = tx
        self._chain_id = chain_id

    @classmethod
    def from_settings(
        cls, settings: LedgerSettings, address: str, *, with_sender: bool = True
    ) -> AsyncLedgerClient:
        rpc = AsyncRpcClient(
            settings.rpc_url, timeout=settings.rpc_timeout, retries=settings.rpc_retries
        )
        abi = ledger_abi()
        tx = None
        if with_sender:
            from ledger.tx import AsyncTxManager

            tx = AsyncTxManager(
                rpc,
                sender_from_settings(settings),
                abi=abi,
                confirmations=settings.confirmations,
                receipt_timeout=settings.receipt_timeout,
                poll_interval=settings.poll_interval,
                resend_after=settings.resend_after,
                gas_multiplier=settings.gas_multiplier,
            )
        return cls(rpc, address, tx=tx, abi=abi)

    async def close(self) -> None:
        await self.rpc.close()

    async def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(await self.rpc.call("eth_chainId"), 16)
        return self._chain_id

    async def domain(self) -> Domain:
        return Domain(await self.chain_id(), self.address)

    async def read(self, read: Read[T], block: str = "latest") -> T:
        return read.decode(
            _hex(await self.rpc.call("eth_call", _call_params(self.address, read, block)))
        )

    async def read_many(self, reads: Sequence[Read[Any]], block: str = "latest") -> list[Any]:
        """Many reads in one JSON-RPC batch; a failing read raises its (typed) error."""
        replies = await self.rpc.batch(
            [("eth_call", _call_params(self.address, r, block)) for r in reads]
        )
        out = []
        for read, reply in zip(reads, replies, strict=True):
            if isinstance(reply, Exception):
                raise reply
            out.append(read.decode(_hex(reply)))
        return out

    def _tx(self) -> AsyncTxManager:
        if self.tx is None:
            raise ConfigurationError("this client has no sender; reads only")
        return self.tx

    async def send(self, write: Write, *, gas: int | None = None) -> Receipt:
        """Send a write and await its receipt; a revert raises the decoded custom error."""
        return await self._tx().send(self.address, write.data, gas=gas)

    async def submit(self, write: Write, *, gas: int | None = None) -> PendingTx:
        return await self._tx().submit(self.address, write.data, gas=gas)

    async def simulate(self, write: Write, sender: str | None = None) -> Any:
        """eth_call a write (as ``sender`` or the client's sender): its decoded return values."""
        frm = sender or (self.tx.address if self.tx else None)
        call: dict[str, Any] = {"to": self.address, "data": "0x" + write.data.hex()}
        if frm:
            call["from"] = frm
        out = _hex(await self.rpc.call("eth_call", [call, "latest"]))
        return write.fn.decode_output(out)

    # Typed shortcuts for the reads the service makes on every request.
    async def get_member(self, account: str) -> Member:
        return await self.read(self.calls.get_member(account))

    async def get_grant(self, grant_id: bytes) -> Grant:
        return await self.read(self.calls.get_grant(grant_id))

    async def get_asset(self, asset_id: bytes) -> Asset:
        return await self.read(self.calls.get_asset(asset_id))

    async def get_schema(self, schema_id: bytes) -> Schema:
        return await self.read(self.calls.get_schema(schema_id))

    async def check(self, grant_id: bytes, grantee: str, fields_mask: int) -> CheckResult:
        return await self.read(self.calls.check(grant_id, grantee, fields_mask))

    async def nonces(self, signer: str) -> int:
        return await self.read(self.calls.nonces(signer))


class _LoopThread:
    """A private event loop in a daemon thread, for running the async core synchronously."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
        self.loop.close()


class LedgerClient:
    """Blocking client with the same calls (for the CLI and scripts)."""

    def __init__(
        self,
        rpc_url: str,
        address: str,
        *,
        sender: Sender | None = None,
        settings: LedgerSettings | None = None,
        abi: LedgerAbi | None = None,
    ) -> None:
        s = settings or LedgerSettings(rpc_url=rpc_url)
        self.address = to_checksum_address(address)
        self.abi = abi or ledger_abi()
        self.calls = LedgerCalls(self.abi)
        self.rpc = RpcClient(
            rpc_url, timeout=s.rpc_timeout, retries=s.rpc_retries, errors=self.abi.errors
        )
        self._loop = _LoopThread()
        self._arpc = AsyncRpcClient(
            rpc_url, timeout=s.rpc_timeout, retries=s.rpc_retries, errors=self.abi.errors
        )
        tx = None
        if sender is not None:
            tx = self._loop.run(self._make_tx(sender, s))
        self._async = AsyncLedgerClient(self._arpc, self.address, tx=tx, abi=self.abi)
        self._chain_id: int | None = None
        self._overrides: bool | None = None

    async def _make_tx(self, sender: Sender, s: LedgerSettings) -> AsyncTxManager:
        from ledger.tx import AsyncTxManager

        # Created inside the loop so its asyncio.Lock belongs to it.
        return AsyncTxManager(
            self._arpc,
            sender,
            abi=self.abi,
            confirmations=s.confirmations,
            receipt_timeout=s.receipt_timeout,
            poll_interval=s.poll_interval,
            resend_after=s.resend_after,
            gas_multiplier=s.gas_multiplier,
        )

    def close(self) -> None:
        try:
            self._loop.run(self._arpc.close())
        finally:
            self._loop.close()
            self.rpc.close()

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.rpc.call("eth_chainId"), 16)
        return self._chain_id

    def domain(self) -> Domain:
        return Domain(self.chain_id(), self.address)

    def read(self, read: Read[T], block: str = "latest") -> T:
        return read.decode(_hex(self.rpc.call("eth_call", _call_params(self.address, read, block))))

    def read_many(self, reads: Sequence[Read[Any]], block: str = "latest") -> list[Any]:
        replies = self.rpc.batch(
            [("eth_call", _call_params(self.address, r, block)) for r in reads]
        )
        out = []
        for read, reply in zip(reads, replies, strict=True):
            if isinstance(reply, Exception):
                raise reply
            out.append(read.decode(_hex(reply)))
        return out

    def send(self, write: Write, *, gas: int | None = None) -> Receipt:
        return self._loop.run(self._async.send(write, gas=gas))

    def simulate(self, write: Write, sender: str | None = None) -> Any:
        return self._loop.run(self._async.simulate(write, sender))

    def get_member(self, account: str) -> Member:
        return self.read(self.calls.get_member(account))

    def get_grant(self, grant_id: bytes) -> Grant:
        return self.read(self.calls.get_grant(grant_id))

    def get_asset(self, asset_id: bytes) -> Asset:
        return self.read(self.calls.get_asset(asset_id))

    def get_schema(self, schema_id: bytes) -> Schema:
        return self.read(self.calls.get_schema(schema_id))

    def check(self, grant_id: bytes, grantee: str, fields_mask: int) -> CheckResult:
        return self.read(self.calls.check(grant_id, grantee, fields_mask))

    def check_at_next_block(
        self, grant_id: bytes, grantee: str, fields_mask: int
    ) -> tuple[CheckResult, int]:
        """``check`` on the latest state at the next block's time; (result, judged time).

        As the service's verify and pull judge (``ledger.chaintime``): on an idle chain the
        latest block's time stands still, the record would be made later. A node without
        ``eth_call`` block overrides is asked at the latest block (its time is returned).
        """
        read = self.calls.check(grant_id, grantee, fields_mask)
        result, at, self._overrides = trust.read_at_next_block(
            self.rpc, self.address, read, self._overrides
        )
        return result, at

    def nonces(self, signer: str) -> int:
        return self.read(self.calls.nonces(signer))
