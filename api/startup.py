"""Work started with the service: finish or clean up relays a crash left pending.

Each pending outbox row is settled by what the chain holds now, never by
guessing: if the anchor / grant / revocation is on chain, the matching
off-chain state is written (idempotently); if it is not, the row is marked
failed and anything stored ahead of it (a ciphertext blob) is removed.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time
from typing import Any

from anyio import to_thread

from api import _shred, _store, scrub
from api.journal import IndexerLease, ResubmitError, resubmit
from api.services import Services
from ledger.abi import ledger_abi
from ledger.indexer import TRANSIENT_ERRORS, ConcurrentIndexerError, Indexer, IndexerError
from ledger.rpc import RpcClient

log = logging.getLogger("api.startup")


async def start(services: Services) -> None:
    """Re-submit what a lost chain forgot, settle pending relays, start the indexer.

    A chain that lost journaled transactions it cannot regain (their nonces are taken)
    stops the start-up: serving would contradict the chain.
    """
    try:
        await resubmit_lost(services)
    except ResubmitError:
        raise
    except Exception as exc:  # chain unreachable: recovery runs again on the next start
        log.warning("journal re-submission incomplete: %s", exc)
    try:
        await recover(services)
    except Exception as exc:  # recovery must not stop the service; readiness tells
        log.warning("relay recovery incomplete: %s", exc)
    try:
        await to_thread.run_sync(_shred.reconcile, services.engine)
    except Exception as exc:  # the indexer's hook and the next start try again
        log.warning("start-up shredding incomplete: %s", exc)
    if services.settings.run_indexer:
        services.extras["loop"] = asyncio.get_running_loop()
        await to_thread.run_sync(_start_indexer, services)
    if services.settings.scrub_interval_seconds > 0 and services.settings.blob_dir is not None:
        services.tasks.append(asyncio.create_task(_scrub_loop(services)))


async def _scrub_loop(services: Services) -> None:
    """One bounded blob scrub pass every ``scrub_interval_seconds`` (the first at start-up)."""
    s = services.settings
    chain = scrub.chain_digests(s.rpc_url, services.deployment.ledger_address)

    def one_pass() -> scrub.PassReport:
        return scrub.scrub_pass(
            services.engine,
            services.vault.blobs,
            max_blobs=s.scrub_max_blobs,
            max_bytes=s.scrub_max_bytes,
            chain=chain,
        )

    while True:
        try:
            await to_thread.run_sync(one_pass)
        except Exception as exc:  # a failed pass is retried at the next interval
            log.warning("blob scrub pass failed: %s", exc)
        await asyncio.sleep(s.scrub_interval_seconds)


async def stop(services: Services) -> None:
    stop_event = services.extras.get("indexer_stop")
    thread = services.extras.get("indexer_thread")
    if stop_event is not None:
        stop_event.set()
    if thread is not None:
        await to_thread.run_sync(thread.join, 10)
    indexer = services.extras.get("indexer")
    if indexer is not None:
        indexer.close()


#: Seconds past ``tx_timeout_seconds`` after which a pending relay counts as abandoned.
STALE_MARGIN_SECONDS = 5.0

#: What the lease holder retries at its next poll. A cursor moved under it, too: the lease
#: (one session) can be free while the previous holder's last COMMIT (another session) still
#: runs; the guarded cursor update rolled this range back, the next sync starts after it.
RETRIED_ERRORS: tuple[type[IndexerError], ...] = (*TRANSIENT_ERRORS, ConcurrentIndexerError)


def _sweep_stale_relays(services: Services, loop: asyncio.AbstractEventLoop, stale: float) -> None:
    """Settle relays a dead replica left pending (runs in the indexer thread)."""
    try:
        counts = asyncio.run_coroutine_threadsafe(recover(services, stale), loop).result(60)
    except Exception as exc:
        log.warning("stale relay sweep incomplete: %s", exc)
        return
    if counts["confirmed"] or counts["failed"]:
        log.warning("settled relays abandoned by another replica", extra=counts)


def _start_indexer(services: Services) -> None:
    """The ledger event indexer in a background thread, into the service's database."""
    # A revocation indexed from the chain (relayed by us, by another relayer or sent by the
    # owner herself) deletes the grant's key package in the same transaction.
    shredder = _shred.RevocationShredder(services.engine, services.vault.forget_package)
    try:
        indexer = Indexer(
            rpc_url=services.settings.rpc_url,
            ledger_address=services.deployment.ledger_address,
            engine=services.engine,
            start_block=services.deployment.deploy_block,
            confirmations=services.settings.confirmations,
            on_events=shredder.on_events,
        )
    except Exception as exc:  # a missing ABI must not stop the API; readiness reports it
        log.warning("indexer not started: %s", exc)
        services.extras["indexer_error"] = str(exc)
        return
    # The index's tables exist before the service answers: a listing that reached the
    # database before the indexer thread first set it up would answer "not built".
    try:
        indexer.cursor()
    except IndexerError as exc:  # the database is not there yet: the thread keeps trying
        log.warning("index tables not set up at start-up: %s (the indexer retries)", exc)
    stop_event = threading.Event()
    lease = IndexerLease(services.engine)
    poll = services.settings.indexer_interval_seconds
    # A relay untouched for longer than a receipt wait can take was abandoned (its replica
    # died): the lease holder settles it by what the chain holds, as a restart would.
    stale = services.settings.tx_timeout_seconds + STALE_MARGIN_SECONDS
    next_sweep = [time.monotonic() + stale]
    loop = services.extras.get("loop")

    def run() -> None:
        """Index only while holding the lease; a standby retries every poll interval."""
        try:
            while not stop_event.is_set():
                if lease.acquire():
                    services.extras["indexer_leader"] = True
                    try:
                        indexer.sync_once(should_stop=stop_event.is_set)
                        indexer.last_error = None
                        shredder.flush()
                    except RETRIED_ERRORS as exc:
                        indexer.last_error = exc
                        log.warning("indexer: %s (retrying)", exc)
                    if loop is not None and time.monotonic() >= next_sweep[0]:
                        next_sweep[0] = time.monotonic() + stale
                        _sweep_stale_relays(services, loop, stale)
                else:
                    services.extras["indexer_leader"] = False
                stop_event.wait(poll)
        except Exception as exc:
            services.extras["indexer_error"] = str(exc)
            log.error("indexer stopped: %s", exc)
        finally:
            services.extras["indexer_leader"] = False
            lease.release()

    thread = threading.Thread(target=run, name="datasafe-indexer", daemon=True)
    services.extras.update(
        indexer=indexer, indexer_stop=stop_event, indexer_thread=thread, indexer_lease=lease
    )

    async def status() -> int | None:
        cursor = await to_thread.run_sync(indexer.cursor)
        return None if cursor is None else cursor.last_block

    services.extras["indexer_status"] = status
    thread.start()


async def resubmit_lost(services: Services) -> dict[str, object]:
    """Broadcast again every journaled transaction the chain does not hold (same bytes)."""
    journal = services.journal
    if journal is None:
        return {}
    with RpcClient(services.settings.rpc_url) as rpc:
        report = await to_thread.run_sync(lambda: resubmit(journal, rpc))
    services.extras["resubmitted"] = report.as_dict()
    return report.as_dict()


async def recover(services: Services, older_than: float | None = None) -> dict[str, int]:
    counts = {"confirmed": 0, "failed": 0}
    for row in await to_thread.run_sync(services.outbox.pending, older_than):
        status = await _settle(services, row)
        await to_thread.run_sync(services.outbox.settle, row["id"], status, "recovered")
        counts[status] += 1
    if counts["confirmed"] or counts["failed"]:
        log.info("recovered pending relays", extra=counts)
    return counts


async def _receipt_block(services: Services, tx_hash: str | None) -> tuple[str, int] | None:
    if not tx_hash:
        return None
    receipt = await services.relayer.receipt_or_none(tx_hash)
    if receipt is None or not receipt.success:
        return None
    return receipt.tx_hash, receipt.block_number


async def _grant_event_tx(services: Services, grant_id: str) -> tuple[str, int] | None:
    topic = "0x" + ledger_abi().events_by_name["ConsentGranted"].topic0.hex()
    logs = await services.chain.rpc(
        "eth_getLogs",
        [
            {
                "address": services.deployment.ledger_address,
                "fromBlock": hex(services.deployment.deploy_block),
                "toBlock": "latest",
                "topics": [topic, grant_id],
            }
        ],
    )
    if not logs:
        return None
    return str(logs[0]["transactionHash"]), int(logs[0]["blockNumber"], 16)


async def _settle(services: Services, row: dict[str, Any]) -> str:
    kind, payload = row["kind"], row["payload"]
    tx_hash = row["tx_hash"] or payload.get("tx_hash")
    mined = await _receipt_block(services, tx_hash)
    if kind == "asset":
        data = payload["row"]
        view = await services.reads.asset(bytes.fromhex(data["asset_id"][2:]))
        if mined and view.exists and "0x" + view.root.hex() == data["root"]:
            await to_thread.run_sync(
                _store.put_asset,
                services.engine,
                data | {"anchor_tx": mined[0], "anchor_block": mined[1]},
            )
            return "confirmed"
        await to_thread.run_sync(services.vault.delete_sealed, data["asset_id"])
        return "failed"
    if kind == "grant":
        data = payload["row"]
        grant = await services.reads.grant(bytes.fromhex(data["grant_id"][2:]))
        if grant.exists and not mined:
            # The replica died between broadcast and noting the hash: the event names the tx.
            mined = await _grant_event_tx(services, data["grant_id"])
        if mined and grant.exists:
            package = base64.b64decode(payload["key_package"])
            await to_thread.run_sync(services.vault.put_key_package, data["grant_id"], package)
            await to_thread.run_sync(
                _store.put_grant,
                services.engine,
                data | {"tx_hash": mined[0], "block": mined[1]},
            )
            if grant.status == "revoked":
                await to_thread.run_sync(services.vault.delete_key_package, data["grant_id"])
            return "confirmed"
        return "failed"
    if kind == "revoke":
        revoked = await services.reads.grant(bytes.fromhex(payload["grant_id"][2:]))
        if revoked.status == "revoked":
            await to_thread.run_sync(services.vault.delete_key_package, payload["grant_id"])
            return "confirmed"
        return "failed"
    if kind == "schema":
        data = payload["row"]
        schema = await services.reads.schema(bytes.fromhex(data["schema_id"][2:]))
        if mined and schema.exists and "0x" + schema.fields_hash.hex() == data["fields_hash"]:
            await to_thread.run_sync(
                _store.put_schema, services.engine, data | {"tx_hash": mined[0], "block": mined[1]}
            )
            return "confirmed"
        return "failed"
    # pause / resume / dispute / resolve / bind_key: chain state is the only state (a bound
    # key is published by the member's next PUT /v1/members/me/key).
    return "confirmed" if mined else "failed"
