"""Chain reads on the request path: ledger's JSON-RPC transport, cached per block.

Writes (relaying signed messages) go through ``ledger``'s transaction sender;
reads that every request makes (member roles and status, ``check``) are
issued here directly so that the per-block cache and request coalescing in
:mod:`api._blocks` keep the node out of the hot path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from api import errors
from api._blocks import BlockClock, PerBlockCache, SingleFlight
from api.auth import Member
from ledger import chaintime, models
from ledger import errors as lerr
from ledger.abi import ledger_abi
from ledger.address import to_checksum_address
from ledger.rpc import AsyncRpcClient

# Encoders/decoders come from the generated ABI (ledger.abi); only the transport is ours.
_ABI = ledger_abi()
GET_MEMBER = _ABI.fn("getMember")
CHECK = _ABI.fn("check")
GET_GRANT = _ABI.fn("getGrant")
GET_ASSET = _ABI.fn("getAsset")
GET_SCHEMA = _ABI.fn("getSchema")
NONCES = _ABI.fn("nonces")
IS_AGENT = _ABI.fn("isAgent")
APPROVAL_POLICY = _ABI.fn("approvalPolicy")
IS_SCHEMA_ISSUER = _ABI.fn("isSchemaIssuer")
ACCESS_NONCE_USED = _ABI.fn("isAccessNonceUsed")

log = logging.getLogger("api.chain")

#: How long a pending-block read is reused for the same latest block (seconds).
PENDING_REUSE_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class RecordTime:
    """When something sent now would be recorded: the chain's next block, not its last.

    On an idle chain (anvil automine: no block without a transaction) the latest block's
    timestamp stands still while time goes on; the next block gets the node's clock. When
    the node builds a pending block (anvil, geth), its timestamp is the node's own answer:
    ``at = max(latest.timestamp, pending.timestamp)`` (anvil's clock, including its time
    controls; after ``evm_revert`` anvil may even repeat the parent's timestamp). A node
    whose "pending" is the latest block says nothing, and then ``at = max(latest.timestamp
    + 1, wall clock)``. ``overrides`` says whether the node evaluates ``eth_call`` at
    ``at`` (a block-time override); without it, views see the latest block.
    """

    block: int
    latest_timestamp: int
    at: int
    source: str
    overrides: bool

    @property
    def judged_at(self) -> int:
        """The timestamp a view call made with :meth:`ChainGateway.call_at` sees."""
        return self.at if self.overrides else self.latest_timestamp


#: A JSON-RPC error answer of the node (a revert, decoded by selector, or another error).
RpcError = (lerr.RpcResponseError, lerr.ContractRevertError)


#: Read-only methods whose concurrent calls may share one JSON-RPC batch.
COALESCED = frozenset(
    {"eth_call", "eth_blockNumber", "eth_getBlockByNumber", "eth_getTransactionReceipt"}
)


class ReadCoalescer:
    """Reads issued in one event-loop turn go to the node as one JSON-RPC batch.

    Under load every pull and verify makes reads of its own (an access nonce, a grant at a
    new block) and the relayer polls receipts; an HTTP round trip each costs the event loop
    more than the answer. A read waits for no timer: the batch leaves on the loop's next
    turn, and a lone read is sent as a plain call. Each caller gets its own result or typed
    error; an outage fails every call of the batch.
    """

    def __init__(self, transport: AsyncRpcClient) -> None:
        self._transport = transport
        self._queue: list[tuple[str, list[Any], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()
        #: Batches sent and calls they carried (a benchmark reads them).
        self.batches = 0
        self.batched_calls = 0

    async def call(self, method: str, params: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.append((method, params, fut))
        if len(self._queue) == 1:
            loop.call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[str, list[Any], asyncio.Future[Any]]]) -> None:
        results: list[Any]
        try:
            if len(batch) == 1:
                method, params, _ = batch[0]
                results = [await self._transport.call(method, params)]
            else:
                self.batches += 1
                self.batched_calls += len(batch)
                results = await self._transport.batch([(m, p) for m, p, _ in batch])
        except Exception as exc:
            results = [exc] * len(batch)
        except BaseException as exc:  # cancelled: the callers must not wait forever
            for _, _, fut in batch:
                if not fut.done():
                    fut.set_exception(ConnectionError(f"read cancelled: {exc!r}"))
            raise
        for (_, _, fut), result in zip(batch, results, strict=True):
            if fut.done():
                continue
            if isinstance(result, Exception):
                fut.set_exception(result)
            else:
                fut.set_result(result)


class ChainGateway:
    def __init__(self, rpc_url: str, ledger_address: str, session: aiohttp.ClientSession) -> None:
        self.rpc_url = rpc_url
        self.ledger_address = to_checksum_address(ledger_address)
        self._session = session
        #: ledger's one JSON-RPC transport, on the service's shared session.
        self.transport = AsyncRpcClient(rpc_url, session=session, errors=_ABI.errors)
        self._reads = ReadCoalescer(self.transport)
        self.clock = BlockClock(self.block_number)
        self._members: PerBlockCache[Member] = PerBlockCache()
        self.reads: PerBlockCache[bytes] = PerBlockCache()
        self._headers: PerBlockCache[tuple[int, str]] = PerBlockCache(max_entries=16)
        self._pending = SingleFlight(self._pending_header)
        #: (latest block, monotonic time, pending header) of the last pending read.
        self._pending_seen: tuple[int, float, dict[str, Any] | None] | None = None
        self._overrides: bool | None = None
        #: The host's clock, used only when the node builds no pending block.
        self.wall_clock: Callable[[], float] = time.time

    async def rpc(self, method: str, params: list[Any]) -> Any:
        """One call over ledger's transport; an outage is :class:`errors.ChainUnavailableError`.

        A JSON-RPC error answer raises one of :data:`RpcError` (see
        :func:`api._translate.revert_error`). Reads issued in the same event-loop turn share
        one HTTP request (:class:`ReadCoalescer`).
        """
        try:
            if method in COALESCED:
                return await self._reads.call(method, params)
            return await self.transport.call(method, params)
        except lerr.RpcUnavailableError as exc:
            raise errors.ChainUnavailableError(f"chain node unreachable: {exc.reason}") from exc

    async def block_number(self) -> int:
        return int(await self.rpc("eth_blockNumber", []), 16)

    async def chain_id(self) -> int:
        return int(await self.rpc("eth_chainId", []), 16)

    async def code_at(self, address: str) -> bytes:
        return bytes.fromhex(str(await self.rpc("eth_getCode", [address, "latest"]))[2:])

    async def call(self, data: bytes, block: int | str = "latest") -> bytes:
        tag = hex(block) if isinstance(block, int) else block
        result = await self.rpc(
            "eth_call", [{"to": self.ledger_address, "data": "0x" + data.hex()}, tag]
        )
        return bytes.fromhex(str(result)[2:])

    async def call_at(self, data: bytes, block: int, at: int) -> bytes:
        """``eth_call`` on the state of ``block`` with ``block.timestamp`` = ``at``.

        A node that ignores block overrides answers at ``block`` itself (see
        :meth:`time_overrides`).
        """
        if not await self.time_overrides():
            return await self.call(data, block)
        result = await self.rpc(
            "eth_call", chaintime.call_at_params(self.ledger_address, data, block, at)
        )
        return bytes.fromhex(str(result)[2:])

    async def time_overrides(self) -> bool:
        """Whether the node honours an ``eth_call`` block-time override (probed once)."""
        if self._overrides is None:
            try:
                supported = chaintime.probe_answered(
                    await self.rpc("eth_call", chaintime.probe_params())
                )
            except RpcError:
                supported = False
            if not supported:
                log.warning(
                    "the chain node ignores eth_call block overrides: grant windows are "
                    "judged at the latest block's time, not at the next block's"
                )
            self._overrides = supported
        return self._overrides

    async def header(self, block: int) -> tuple[int, str]:
        """(timestamp, hash) of ``block``, memoised while it is the latest."""
        return await self._headers.get(block, "header", lambda: self._read_header(block))

    async def _read_header(self, block: int) -> tuple[int, str]:
        raw = await self.rpc("eth_getBlockByNumber", [hex(block), False])
        if not raw:
            raise errors.ChainUnavailableError(f"the chain node does not know block {block}")
        return int(raw["timestamp"], 16), str(raw["hash"])

    async def _pending_header(self) -> dict[str, Any] | None:
        try:
            raw = await self.rpc("eth_getBlockByNumber", ["pending", False])
        except RpcError:
            return None  # nodes without a pending block
        return raw if isinstance(raw, dict) else None

    async def _pending_for(self, block: int) -> dict[str, Any] | None:
        """The pending header, re-read at most every ``PENDING_REUSE_SECONDS`` per block.

        Under load this keeps the node from building a pending block per request; the
        judged time is then at most that much behind the node's clock.
        """
        seen = self._pending_seen
        now = time.monotonic()
        if seen is not None and seen[0] == block and now - seen[1] < PENDING_REUSE_SECONDS:
            return seen[2]
        pending = await self._pending.get()
        self._pending_seen = (block, now, pending)
        return pending

    async def record_time(self) -> RecordTime:
        """The time a transaction sent now would be recorded at (see :class:`RecordTime`)."""
        block = await self.clock.latest()
        # Sequential: each is a memo hit on the hot path (no task per read).
        latest_ts, latest_hash = await self.header(block)
        pending = await self._pending_for(block)
        overrides = await self.time_overrides()
        at, source = chaintime.next_block_time(
            block, latest_ts, latest_hash, pending, self.wall_clock()
        )
        return RecordTime(block, latest_ts, at, source, overrides)

    async def cached_call(self, data: bytes) -> tuple[bytes, int]:
        """``eth_call`` at the latest block, memoised for that block; returns (result, block)."""
        block = await self.clock.latest()
        result = await self.reads.get(block, data, lambda: self.call(data, block))
        return result, block

    async def member(self, address: str) -> Member:
        block = await self.clock.latest()
        key = address.lower()
        return await self._members.get(block, key, lambda: self._read_member(address, block))

    async def _read_member(self, address: str, block: int) -> Member:
        raw = await self.call(GET_MEMBER.encode(address), block)
        (member,) = GET_MEMBER.decode_output(raw)
        m = models.Member.from_tuple(member)
        return Member(**vars(m), address=to_checksum_address(address), block=block)


@dataclass(frozen=True, slots=True)
class GrantView:
    """A grant as the chain had it at ``block``.

    ``status`` is the lower-case name (``"revoked"``) that the HTTP contract and the relay
    journal use; the decoded ledger model, with its enum, is ``grant``.
    """

    grant_id: bytes
    grant: models.Grant
    block: int

    @property
    def status(self) -> str:
        return self.grant.status.name.lower()

    @property
    def exists(self) -> bool:
        return self.grant.exists


@dataclass(frozen=True)
class AssetView(models.Asset):
    """An asset as the chain had it at ``block``."""

    asset_id: bytes
    block: int


@dataclass(frozen=True)
class SchemaView(models.Schema):
    schema_id: bytes


class LedgerReads:
    """Typed views of the ledger at the latest block (memoised per block)."""

    def __init__(self, chain: ChainGateway) -> None:
        self.chain = chain

    @staticmethod
    def check_calldata(grant_id: bytes, grantee: str, mask: int) -> bytes:
        """``CHECK.encode`` by hand (static types only): eth-abi costs more than the cached read."""
        return (
            CHECK.selector
            + grant_id
            + bytes.fromhex(grantee[2:]).rjust(32, b"\0")
            + mask.to_bytes(32, "big")
        )

    async def check(
        self, grant_id: bytes, grantee: str, mask: int, *, at: int | None = None
    ) -> tuple[bool, int, int]:
        """The chain's ``check`` at the latest block, or with ``block.timestamp`` = ``at``.

        Pass ``at`` = :meth:`ChainGateway.record_time` to judge a grant's window when the
        access would be recorded (memoised per block and time).
        """
        data = self.check_calldata(grant_id, grantee, mask)
        if at is None:
            raw, block = await self.chain.cached_call(data)
        else:
            block = await self.chain.clock.latest()
            raw = await self.chain.reads.get(
                block, (data, at), lambda: self.chain.call_at(data, block, at)
            )
        allowed, reason = CHECK.decode_output(raw)
        return bool(allowed), int(reason), block

    async def access_nonce_used(self, grantee: str, nonce: int) -> bool:
        """Whether the ledger's bitmap already holds ``grantee``'s access-request ``nonce``."""
        raw, _ = await self.chain.cached_call(ACCESS_NONCE_USED.encode(grantee, nonce))
        return bool(ACCESS_NONCE_USED.decode_output(raw)[0])

    async def grant(self, grant_id: bytes) -> GrantView:
        raw, block = await self.chain.cached_call(GET_GRANT.encode(grant_id))
        grant = models.Grant.from_tuple(GET_GRANT.decode_output(raw)[0])
        return GrantView(grant_id, grant, block)

    async def asset(self, asset_id: bytes) -> AssetView:
        raw, block = await self.chain.cached_call(GET_ASSET.encode(asset_id))
        asset = models.Asset.from_tuple(GET_ASSET.decode_output(raw)[0])
        return AssetView(**vars(asset), asset_id=asset_id, block=block)

    async def schema(self, schema_id: bytes) -> SchemaView:
        raw, _ = await self.chain.cached_call(GET_SCHEMA.encode(schema_id))
        schema = models.Schema.from_tuple(GET_SCHEMA.decode_output(raw)[0])
        return SchemaView(**vars(schema), schema_id=schema_id)

    async def consent_nonce(self, signer: str) -> int:
        raw, _ = await self.chain.cached_call(NONCES.encode(signer))
        return int(NONCES.decode_output(raw)[0])

    async def is_agent(self, owner: str, agent: str) -> bool:
        raw, _ = await self.chain.cached_call(IS_AGENT.encode(owner, agent))
        return bool(IS_AGENT.decode_output(raw)[0])

    async def approval_policy(self, enterprise: str, purpose: int) -> tuple[int, int]:
        """(approvals needed for ``purpose``, the enterprise's approval epoch)."""
        raw, _ = await self.chain.cached_call(APPROVAL_POLICY.encode(enterprise, purpose))
        needed, epoch = APPROVAL_POLICY.decode_output(raw)
        return int(needed), int(epoch)

    async def is_schema_issuer(self, schema_id: bytes, issuer: str) -> bool:
        """Whether ``issuer`` registered the schema or was authorised on chain by its registrant."""
        raw, _ = await self.chain.cached_call(IS_SCHEMA_ISSUER.encode(schema_id, issuer))
        return bool(IS_SCHEMA_ISSUER.decode_output(raw)[0])
