"""Everything the lifespan builds once and the routes share (``app.state.services``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from anyio import to_thread
from sqlalchemy.engine import Engine

from api import db, errors
from api._rawtx import RawTx
from api._vault import VaultAdapter
from api.auth import Authenticator
from api.batcher import AccessBatcher
from api.chain import ChainGateway, LedgerReads
from api.journal import TxJournal
from api.nonces import NonceStore
from api.outbox import Outbox
from api.relay import Relayer
from api.settings import ApiSettings
from ledger.manifest import Manifest
from ledger.models import Receipt

log = logging.getLogger("api.services")


@dataclass
class Services:
    settings: ApiSettings
    #: The deployment manifest written by ``ledger`` (chain id, address, block, code hash).
    deployment: Manifest
    engine: Engine
    session: aiohttp.ClientSession
    chain: ChainGateway
    nonces: NonceStore
    authenticator: Authenticator
    reads: LedgerReads
    relayer: Relayer
    outbox: Outbox
    batcher: AccessBatcher
    vault: VaultAdapter
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)
    #: Relays of this process between outbox claim and settlement (a metrics gauge).
    relays_in_flight: int = 0

    @property
    def journal(self) -> TxJournal | None:
        return self.relayer.journal

    async def relay_custodian(
        self,
        *,
        key: str,
        kind: str,
        payload: dict[str, Any],
        data: bytes,
        on_confirmed: Callable[[str, int], None],
        to: str | None = None,
    ) -> Receipt:
        """Send a call as the custodian; store its effects only once it is confirmed.

        The gas estimate is the pre-flight: a call the ledger would revert is refused
        before the outbox row is written (no "failed" row for a refused request). Then the
        row is written; a revert once mined settles it as failed and nothing is stored; a
        chain outage leaves it pending for recovery.
        """
        await to_thread.run_sync(self.outbox.check_claimable, key, kind)
        gas = await self.relayer.estimate(data, to=to)
        await to_thread.run_sync(self.outbox.begin, key, kind, payload)
        self.relays_in_flight += 1
        try:
            return await self._relay_custodian(key, data, gas, on_confirmed, to)
        finally:
            self.relays_in_flight -= 1

    async def _relay_custodian(
        self,
        key: str,
        data: bytes,
        gas: int,
        on_confirmed: Callable[[str, int], None],
        to: str | None = None,
    ) -> Receipt:
        try:
            tx_hash = await self.relayer.send(data, gas=gas, to=to)
        except errors.ApiError as exc:
            # A refused pre-flight changed nothing; an outage may or may not have sent
            # the transaction, so the row stays pending for recovery to decide.
            if exc.status < 500:
                await to_thread.run_sync(self.outbox.settle, key, "failed", exc.slug)
            raise
        await to_thread.run_sync(self.outbox.sent, key, tx_hash)
        receipt = await self.relayer.wait(tx_hash)
        self.chain.clock.unpin()  # later reads in this request must see the new block
        if not receipt.success:
            err = await self.relayer.explain_failure(receipt, self.relayer.custodian or "", data)
            await to_thread.run_sync(self.outbox.settle, key, "failed", err.slug)
            raise err
        await to_thread.run_sync(on_confirmed, receipt.tx_hash, receipt.block_number)
        await to_thread.run_sync(self.outbox.settle, key, "confirmed", None)
        return receipt

    async def relay_member_tx(
        self,
        *,
        key: str,
        kind: str,
        payload: dict[str, Any],
        tx: RawTx,
        prepare: Callable[[], None] | None = None,
        on_confirmed: Callable[[str, int], None],
        on_failed: Callable[[], None] | None = None,
    ) -> Receipt:
        """Broadcast a member's own signed transaction after a pre-flight, same guarantees."""
        await self.relayer.preflight(tx.sender, tx.data, to=tx.to)
        await to_thread.run_sync(self.outbox.begin, key, kind, payload | {"tx_hash": tx.tx_hash})
        self.relays_in_flight += 1
        try:
            return await self._relay_member_tx(key, tx, prepare, on_confirmed, on_failed)
        finally:
            self.relays_in_flight -= 1

    async def _relay_member_tx(
        self,
        key: str,
        tx: RawTx,
        prepare: Callable[[], None] | None,
        on_confirmed: Callable[[str, int], None],
        on_failed: Callable[[], None] | None,
    ) -> Receipt:
        try:
            if prepare is not None:
                await to_thread.run_sync(prepare)
            await self.relayer.broadcast(tx)
        except errors.ApiError as exc:
            if exc.status < 500:
                if on_failed is not None:
                    await to_thread.run_sync(on_failed)
                await to_thread.run_sync(self.outbox.settle, key, "failed", exc.slug)
            raise
        await to_thread.run_sync(self.outbox.sent, key, tx.tx_hash)
        receipt = await self.relayer.wait(tx.tx_hash)
        self.chain.clock.unpin()  # later reads in this request must see the new block
        if not receipt.success:
            err = await self.relayer.explain_failure(receipt, tx.sender, tx.data, tx.to)
            if on_failed is not None:
                await to_thread.run_sync(on_failed)
            await to_thread.run_sync(self.outbox.settle, key, "failed", err.slug)
            raise err
        await to_thread.run_sync(on_confirmed, receipt.tx_hash, receipt.block_number)
        await to_thread.run_sync(self.outbox.settle, key, "confirmed", None)
        return receipt


@contextlib.asynccontextmanager
async def build_services(settings: ApiSettings) -> AsyncIterator[Services]:
    if settings.manifest_path is None:
        raise errors.NotReadyError("DATASAFE_API_MANIFEST_PATH is not set")
    # A missing or malformed manifest is a start-up error (ledger.errors.ManifestError):
    # the service never guesses which contract it serves.
    deployment = Manifest.load(settings.manifest_path)
    engine = db.make_engine(settings.database_url)
    await to_thread.run_sync(db.migrate, engine)
    connector = aiohttp.TCPConnector(limit=64, keepalive_timeout=30)
    session = aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=settings.tx_timeout_seconds)
    )
    nonces = NonceStore(engine, settings.request_window_seconds)
    chain = ChainGateway(settings.rpc_url, deployment.ledger_address, session)
    relayer = Relayer(
        chain,
        chain_id=deployment.chain_id,
        confirmations=settings.confirmations,
        timeout=settings.tx_timeout_seconds,
        custodian_key=(
            bytes.fromhex(settings.custodian_key.get_secret_value().removeprefix("0x"))
            if settings.custodian_key
            else None
        ),
        journal=TxJournal(engine),
        replace_after=settings.tx_replace_after_seconds,
        max_replacements=settings.tx_max_replacements,
    )
    vault = await to_thread.run_sync(VaultAdapter.open, settings, engine)
    services = Services(
        settings=settings,
        deployment=deployment,
        engine=engine,
        session=session,
        chain=chain,
        nonces=nonces,
        authenticator=Authenticator(
            chain_id=deployment.chain_id,
            ledger_address=deployment.ledger_address,
            nonces=nonces,
            window_seconds=settings.request_window_seconds,
        ),
        reads=LedgerReads(chain),
        relayer=relayer,
        outbox=Outbox(engine),
        batcher=AccessBatcher(
            relayer,
            window_ms=settings.access_batch_window_ms,
            busy_window_ms=settings.access_batch_busy_window_ms,
            max_batch=settings.access_batch_max,
            deploy_block=deployment.deploy_block,
        ),
        vault=vault,
    )
    services.batcher.start()
    try:
        yield services
    finally:
        await services.batcher.stop()
        await relayer.aclose()
        for task in services.tasks:
            task.cancel()
        for task in services.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await session.close()
        engine.dispose()
