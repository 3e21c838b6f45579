"""Access records in batched transactions, without giving up "no record, no data".

Each pull hands its grantee-signed ``AccessRequest`` to :meth:`AccessBatcher.record`
and waits. A collector gathers the requests that arrive within a short window
(or until the batch is full) into one ``recordAccessBatch`` transaction; when
the receipt is confirmed, each waiter learns its own outcome from the
transaction's ``Accessed`` / ``AccessRefused`` events. Only a waiter whose
request produced an ``Accessed`` event gets a record back; everything else
(refusal, revert, chain down, timeout) is an error, so no data is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from eth_abi.abi import decode

from api import errors
from api.relay import Relayer
from ledger.abi import ledger_abi
from ledger.eip712 import pack_access_batch
from ledger.models import AccessRequest as LedgerAccessRequest
from ledger.models import Receipt
from ledger.uses import UseCounter, accessed_filter

_ABI = ledger_abi()
RECORD_ACCESS_BATCH = _ABI.fn("recordAccessBatch")
#: ``topics[0]`` of the batch's events, as the 0x-hex strings JSON-RPC logs carry.
ACCESSED = "0x" + _ABI.events_by_name["Accessed"].topic0.hex()
ACCESS_REFUSED = "0x" + _ABI.events_by_name["AccessRefused"].topic0.hex()

log = logging.getLogger("api.batcher")


@dataclass(frozen=True, slots=True)
class AccessRequest:
    grant_id: bytes
    fields_mask: int
    nonce: int
    deadline: int
    signature: bytes
    grantee: str


@dataclass(frozen=True, slots=True)
class AccessRecord:
    tx_hash: str
    block_number: int
    block_hash: str
    use: int
    batch_size: int


@dataclass
class _Pending:
    request: AccessRequest
    future: asyncio.Future[AccessRecord]


class Reservation:
    """A request admitted for recording: its nonce and one use of its grant are held.

    Taken synchronously right after the pre-checks (no await in between), released when
    the pull is over (recorded or not), so that concurrent pulls of this process cannot
    all pass the pre-checks for one nonce or for the last use of a grant and then be
    refused on chain, each at the custodian's expense.
    """

    def __init__(self, batcher: AccessBatcher, nonce_key: tuple[str, int], grant_id: bytes):
        self._batcher = batcher
        self._nonce_key = nonce_key
        self._grant_id = grant_id
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._batcher._release(self._nonce_key, self._grant_id)


class AccessBatcher:
    def __init__(
        self,
        relayer: Relayer,
        *,
        window_ms: int,
        max_batch: int,
        max_in_flight: int = 4,
        deploy_block: int = 0,
        busy_window_ms: int = 0,
    ) -> None:
        self._relayer = relayer
        #: Use numbers: the grants' Accessed events from the deployment block (ledger.uses).
        self._uses = UseCounter(deploy_block)
        self._window = window_ms / 1000
        self._busy_window = busy_window_ms / 1000
        #: Pulls announced (:meth:`expecting`) that have not handed in their request yet.
        self._coming = 0
        self._max = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._slots = asyncio.Semaphore(max_in_flight)
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self.batches = 0
        #: (grantee, nonce) of admitted requests not yet settled; uses held per grant.
        self._claimed: set[tuple[str, int]] = set()
        self._held_uses: dict[bytes, int] = {}

    def reserve(
        self, grantee: str, nonce: int, grant_id: bytes, uses_left: int | None
    ) -> Reservation:
        """Hold ``nonce`` and one use of ``grant_id`` (``uses_left`` None: no use limit).

        Raises ``access_nonce_used`` for a nonce another admitted request holds and
        ``uses_exhausted`` when admitted requests already hold every use left.
        """
        key = (grantee.lower(), nonce)
        if key in self._claimed:
            raise errors.AccessNonceUsedError(
                f"access request nonce {nonce} is being recorded for another pull",
                reason_code=15,
            )
        held = self._held_uses.get(grant_id, 0)
        if uses_left is not None and held >= uses_left:
            raise errors.UsesExhaustedError(
                f"the grant's {uses_left} remaining use(s) are held by pulls being recorded",
                reason_code=7,
                in_flight=held,
            )
        self._claimed.add(key)
        self._held_uses[grant_id] = held + 1
        return Reservation(self, key, grant_id)

    def _release(self, key: tuple[str, int], grant_id: bytes) -> None:
        self._claimed.discard(key)
        left = self._held_uses.get(grant_id, 0) - 1
        if left > 0:
            self._held_uses[grant_id] = left
        else:
            self._held_uses.pop(grant_id, None)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._inflight):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task
        while not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(errors.NotReadyError("the service is stopping"))

    @property
    def depth(self) -> int:
        """Access records waiting for a batch plus batches in flight (a metrics gauge)."""
        return self._queue.qsize() + len(self._inflight)

    @contextlib.contextmanager
    def expecting(self) -> Iterator[Callable[[AccessRequest], Awaitable[AccessRecord]]]:
        """Announce a pull from its start; yields its :meth:`record`.

        A batch being gathered waits (at most ``busy_window_ms`` from its first request) for
        the announced pulls still in their pre-checks or preparation, as a database's group
        commit waits ``commit_delay`` only while ``commit_siblings`` others are active: under
        load a transaction carries more pulls, each paying less of the transaction and of
        the block it makes (signing, receipt and logs, every replica's per-block reads, the
        indexer's pass); a lone pull waits for nobody.
        """
        self._coming += 1
        arrived = False

        async def record(request: AccessRequest) -> AccessRecord:
            nonlocal arrived
            if not arrived:
                arrived = True
                self._coming -= 1
            return await self.record(request)

        try:
            yield record
        finally:
            if not arrived:
                self._coming -= 1

    async def record(self, request: AccessRequest) -> AccessRecord:
        if self._task is None:
            raise errors.NotReadyError("the access recorder is not running")
        fut: asyncio.Future[AccessRecord] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(request, fut))
        return await asyncio.shield(fut)

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # Wait for a free slot first: while transactions are in flight the queue
            # keeps filling, so the next batch is as large as the load makes it.
            await self._slots.acquire()
            try:
                first = await self._queue.get()
            except BaseException:
                self._slots.release()
                raise
            batch = [first]
            started = loop.time()
            deadline = started + self._window
            while len(batch) < self._max:
                remaining = deadline - loop.time()
                try:
                    if remaining <= 0:
                        batch.append(self._queue.get_nowait())
                    else:
                        batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except (TimeoutError, asyncio.QueueEmpty):
                    break
            await self._wait_for_coming(batch, started + self._busy_window)
            await self._grow_while_sending(batch)
            task = loop.create_task(self._submit(batch))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _wait_for_coming(self, batch: list[_Pending], until: float) -> None:
        """While announced pulls are on their way (and ``until`` is ahead), keep adding."""
        loop = asyncio.get_running_loop()
        while len(batch) < self._max and (
            self._coming > 0 or self._inflight or not self._queue.empty()
        ):
            remaining = until - loop.time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break

    async def _grow_while_sending(self, batch: list[_Pending]) -> None:
        """While the custodian is sending, keep adding requests: the batch would wait anyway."""
        idle = self._relayer.idle
        while len(batch) < self._max and not idle.is_set():
            get = asyncio.ensure_future(self._queue.get())
            done = asyncio.ensure_future(idle.wait())
            try:
                await asyncio.wait((get, done), return_when=asyncio.FIRST_COMPLETED)
            finally:
                done.cancel()
                if not get.done():
                    get.cancel()
            if get.done() and not get.cancelled():
                batch.append(get.result())

    async def _submit(self, batch: list[_Pending]) -> None:
        try:
            data = RECORD_ACCESS_BATCH.encode(
                pack_access_batch(
                    [
                        LedgerAccessRequest(
                            p.request.grant_id,
                            p.request.fields_mask,
                            p.request.nonce,
                            p.request.deadline,
                        )
                        for p in batch
                    ],
                    [p.request.signature for p in batch],
                )
            )
            # The gas limit comes from an estimate cached per batch size: estimating every
            # batch would execute it (every signature recovery) a second time on the node,
            # the main cost of a pull. A batch that runs out of it is estimated and sent again.
            shape = ("recordAccessBatch", len(batch))
            receipt = await self._relayer.send_and_wait(data, shape=shape)
            self.batches += 1
            if not receipt.success:
                raise await self._relayer.explain_failure(
                    receipt, self._relayer.custodian or "", data
                )
            self._settle(batch, receipt, await self._use_numbers(batch, receipt))
        except BaseException as exc:
            mapped = exc if isinstance(exc, errors.ApiError) else errors.translate(exc)
            if mapped is None:
                log.exception("access batch failed", exc_info=exc)
            err = mapped or errors.RelayFailedError("the access record was not confirmed")
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(err)
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._slots.release()

    async def _use_numbers(
        self, batch: list[_Pending], receipt: Receipt
    ) -> dict[tuple[int, int], int]:
        """Use numbers of this receipt's Accessed logs: one eth_getLogs for the batch's grants
        (the event carries none; ``ledger.uses``)."""
        if not any(e.get("topics") and e["topics"][0] == ACCESSED for e in receipt.logs):
            return {}
        grants = {p.request.grant_id for p in batch}
        start, known = self._uses.span(grants, receipt.block_number)
        params = accessed_filter(
            self._relayer.chain.ledger_address, grants, start, receipt.block_number
        )
        logs = await self._relayer.chain.rpc("eth_getLogs", [params])
        return self._uses.number(logs, grants, receipt.block_number, known)

    def _settle(
        self, batch: list[_Pending], receipt: Receipt, uses: dict[tuple[int, int], int]
    ) -> None:
        ledger = self._relayer.chain.ledger_address.lower()
        unassigned = list(batch)
        for entry in receipt.logs:
            if str(entry.get("address", "")).lower() != ledger:
                continue
            topics = entry.get("topics", [])
            if not topics or topics[0] not in (ACCESSED, ACCESS_REFUSED):
                continue
            grant_id = bytes.fromhex(topics[1][2:])
            data = bytes.fromhex(str(entry["data"])[2:])
            if topics[0] == ACCESSED:
                # Accessed names no grantee: the contract records only the grant's own grantee, so
                # grant and nonce (a grantee's nonce is used once) identify the request.
                grantee = None
                _mask, nonce = decode(["uint64", "uint256"], data)
                use = uses[(receipt.block_number, int(str(entry["logIndex"]), 16))]
                reason = 0
            else:
                grantee = "0x" + topics[2][-40:]
                reason, nonce = decode(["uint8", "uint256"], data)
                use = 0
            for p in unassigned:
                r = p.request
                # A refusal for a bad signature names grantee 0: match it on grant and nonce.
                same_grantee = (
                    grantee is None
                    or r.grantee.lower() == grantee
                    or (reason != 0 and int(grantee, 16) == 0)
                )
                if r.grant_id == grant_id and r.nonce == nonce and same_grantee:
                    unassigned.remove(p)
                    if reason == 0:
                        p.future.set_result(
                            AccessRecord(
                                tx_hash=receipt.tx_hash,
                                block_number=receipt.block_number,
                                block_hash=receipt.block_hash,
                                use=int(use),
                                batch_size=len(batch),
                            )
                        )
                    else:
                        p.future.set_exception(
                            errors.refusal(int(reason), access_tx_hash=receipt.tx_hash)
                        )
                    break
        for p in unassigned:
            if not p.future.done():
                p.future.set_exception(
                    errors.ContractRejectedError(
                        "the access batch carried no outcome for this request "
                        "(its signature does not recover to the grantee)",
                        access_tx_hash=receipt.tx_hash,
                    )
                )
