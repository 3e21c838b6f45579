"""The pieces replicas share, each against the real chain and database.

* the transaction journal and :func:`api.journal.resubmit` (an anvil snapshot revert is
  exactly "the chain lost its tail"),
* the indexer lease (PostgreSQL advisory lock; always granted on SQLite),
* the outbox claim that stops a second relay of the same signed grant.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from _api_server import live_server, world_settings
from _api_world import World
from eth_account import Account

from api import db as api_db
from api import errors
from api.chain import ChainGateway
from api.journal import IndexerLease, ResubmitError, TxJournal, resubmit
from api.outbox import Outbox
from api.relay import Relayer
from ledger.rpc import RpcClient


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.engine.Engine]:
    eng = api_db.make_engine(db_url)
    api_db.migrate(eng)
    yield eng
    eng.dispose()


def _signed_call(world: World, value: int = 0) -> tuple[str, int, bytes]:
    """A custodian-signed transfer to itself at its pending nonce (any transaction will do)."""
    custodian = world.custodian  # type: ignore[attr-defined]
    tx = {
        "to": custodian.address,
        "value": value,
        "data": b"",
        "gas": 60_000,
        "gasPrice": world.w3.eth.gas_price * 2,
        "nonce": world.w3.eth.get_transaction_count(custodian.address, "pending"),
        "chainId": world.chain_id,
    }
    signed = Account.sign_transaction(tx, custodian.key)
    return "0x" + bytes(signed.hash).hex(), int(tx["nonce"]), bytes(signed.raw_transaction)


def _send_journaled(world: World, journal: TxJournal) -> tuple[str, int]:
    tx_hash, nonce, raw = _signed_call(world)
    custodian = world.custodian  # type: ignore[attr-defined]
    journal.record(tx_hash=tx_hash, sender=custodian.address, nonce=nonce, raw=raw, kind="t")
    world.w3.eth.send_raw_transaction(raw)
    receipt = world.w3.eth.wait_for_transaction_receipt(tx_hash)
    block = int(receipt["blockNumber"])
    journal.mined(tx_hash, block, "0x" + bytes(receipt["blockHash"]).hex())
    return tx_hash, block


def _put_grant_row(engine: sa.engine.Engine, tx_hash: str, block: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            api_db.grants.insert().values(
                grant_id="0x" + "11" * 32,
                asset_id="0x" + "22" * 32,
                owner="0x" + "33" * 20,
                grantor="0x" + "33" * 20,
                grantee="0x" + "44" * 20,
                terms={},
                nonce="1",
                deadline=0,
                signature="0x",
                tx_hash=tx_hash,
                block=block,
                created_at=0,
            )
        )


def _receipt(world: World, tx_hash: str) -> Any:
    return world.w3.provider.make_request("eth_getTransactionReceipt", [tx_hash])["result"]


def test_lost_tail_is_resubmitted_with_the_same_hash(world: World, engine: Any) -> None:
    journal = TxJournal(engine)
    snap = world.snapshot()
    for _ in range(2):  # extra blocks, so the re-mined block differs
        world.w3.provider.make_request("evm_mine", [])
    tx_hash, block = _send_journaled(world, journal)
    _put_grant_row(engine, tx_hash, block)
    world.revert(snap)  # the chain loses its tail; the database does not
    assert _receipt(world, tx_hash) is None

    rpc = RpcClient(world.rpc_url)
    try:
        report = resubmit(journal, rpc)
        again = resubmit(journal, rpc)  # idempotent: nothing left to do
    finally:
        rpc.close()
    assert report.resubmitted == [tx_hash] and not report.lost and not report.dropped
    assert again.checked == 0
    receipt = _receipt(world, tx_hash)
    assert receipt is not None and int(receipt["status"], 16) == 1
    new_block = int(receipt["blockNumber"], 16)
    assert new_block != block
    with engine.connect() as conn:
        assert conn.execute(sa.select(api_db.grants.c.block)).scalar_one() == new_block
        assert conn.execute(sa.select(api_db.tx_journal.c.block)).scalar_one() == new_block


def test_a_taken_nonce_makes_the_lost_tail_unrestorable(world: World, engine: Any) -> None:
    journal = TxJournal(engine)
    snap = world.snapshot()
    tx_hash, _ = _send_journaled(world, journal)
    world.revert(snap)
    # Someone else spends the custodian's nonce first (a different transaction).
    other, _, raw = _signed_call(world, value=1)
    world.w3.eth.send_raw_transaction(raw)
    world.w3.eth.wait_for_transaction_receipt(other)
    assert other != tx_hash

    rpc = RpcClient(world.rpc_url)
    try:
        with pytest.raises(ResubmitError, match="cannot be restored") as info:
            resubmit(journal, rpc)
    finally:
        rpc.close()
    assert tx_hash in str(info.value)
    assert _receipt(world, tx_hash) is None
    assert journal.count() == 1  # the evidence stays for the operator


def test_a_never_mined_entry_whose_nonce_is_taken_is_dropped(world: World, engine: Any) -> None:
    journal = TxJournal(engine)
    custodian = world.custodian  # type: ignore[attr-defined]
    tx_hash, nonce, raw = _signed_call(world)
    journal.record(tx_hash=tx_hash, sender=custodian.address, nonce=nonce, raw=raw, kind="t")
    # The broadcast never happened (crash); a later transaction took the nonce.
    other, _, other_raw = _signed_call(world, value=1)
    assert other != tx_hash
    world.w3.eth.send_raw_transaction(other_raw)
    world.w3.eth.wait_for_transaction_receipt(other)

    rpc = RpcClient(world.rpc_url)
    try:
        report = resubmit(journal, rpc)
    finally:
        rpc.close()
    assert report.dropped == [tx_hash] and not report.lost
    assert journal.count() == 0


def test_indexer_lease_is_exclusive_and_fails_over(db_url: str, engine: Any) -> None:
    other_engine = api_db.make_engine(db_url)
    try:
        first, second = IndexerLease(engine), IndexerLease(other_engine)
        if engine.dialect.name != "postgresql":
            # One process per SQLite database: the lease is always granted.
            assert first.acquire() and second.acquire()
            return
        assert first.acquire()
        assert first.acquire()  # still held
        assert not second.acquire()
        # The holder's session dies (what a SIGKILL of its process does to it).
        with engine.connect() as conn:
            killed = conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
                )
            ).all()
        assert killed
        assert second.acquire()
        assert not first.acquire()  # notices the loss, and cannot take it back
        second.release()
        assert first.acquire()
        first.release()
    finally:
        other_engine.dispose()


def test_two_claims_of_one_signed_grant_relay_it_once(engine: Any) -> None:
    outbox, barrier = Outbox(engine), threading.Barrier(8)
    outcomes: list[str] = []

    def claim() -> None:
        barrier.wait()
        try:
            outbox.begin("grant:0xabc", "grant", {"row": {}})
            outcomes.append("claimed")
        except errors.ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["claimed"] + ["conflict"] * 7
    outbox.settle("grant:0xabc", "confirmed")
    with pytest.raises(errors.ConflictError, match="already relayed"):
        outbox.begin("grant:0xabc", "grant", {"row": {}})
    assert outbox.status("grant:0xabc") == "confirmed"
    # A failed relay may be tried again; a confirmed pause may be followed by another.
    outbox.begin("pause:0xabc", "pause", {})
    outbox.settle("pause:0xabc", "confirmed")
    outbox.begin("pause:0xabc", "pause", {})
    assert outbox.status("pause:0xabc") == "pending"


def test_the_api_resubmits_at_start(world: World, db_url: str, tmp_path: Path) -> None:
    engine = api_db.make_engine(db_url)
    api_db.migrate(engine)
    try:
        journal = TxJournal(engine)
        snap = world.snapshot()
        tx_hash, _ = _send_journaled(world, journal)
        world.revert(snap)
        assert _receipt(world, tx_hash) is None
        with live_server(world_settings(world, db_url, tmp_path)):
            pass
        assert _receipt(world, tx_hash) is not None  # same bytes, same hash, mined again
    finally:
        engine.dispose()


@pytest.mark.parametrize("was_ok", [False, True])
def test_a_resubmission_that_reverts_restores_only_what_reverted_before(
    world: World, engine: Any, was_ok: bool
) -> None:
    """A tx that reverts when mined again (e.g. its consent's deadline passed during the outage)
    restores nothing: refused if it had succeeded; fine if it had reverted the first time."""
    journal = TxJournal(engine)
    custodian = world.custodian  # type: ignore[attr-defined]
    tx = {
        "to": world.ledger_address,
        "value": 0,
        "data": b"\xde\xad\xbe\xef",  # no such function: the ledger reverts
        "gas": 100_000,
        "gasPrice": world.w3.eth.gas_price * 2,
        "nonce": world.w3.eth.get_transaction_count(custodian.address, "pending"),
        "chainId": world.chain_id,
    }
    signed = Account.sign_transaction(tx, custodian.key)
    tx_hash = "0x" + bytes(signed.hash).hex()
    snap = world.snapshot()
    journal.record(
        tx_hash=tx_hash,
        sender=custodian.address,
        nonce=int(tx["nonce"]),
        raw=bytes(signed.raw_transaction),
        kind="t",
    )
    world.w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = world.w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 0
    # was_ok=True stands for "it succeeded then, and reverts now".
    journal.mined(
        tx_hash, int(receipt["blockNumber"]), "0x" + bytes(receipt["blockHash"]).hex(), was_ok
    )
    world.revert(snap)

    rpc = RpcClient(world.rpc_url)
    try:
        if was_ok:
            with pytest.raises(ResubmitError, match=tx_hash):
                resubmit(journal, rpc)
        else:
            assert resubmit(journal, rpc).resubmitted == [tx_hash]
    finally:
        rpc.close()
    assert _receipt(world, tx_hash) is not None


def _journaled_then_another_replica_asks(
    engine: Any, other: TxJournal, sender: str
) -> tuple[threading.Thread, list[int]]:
    """Check that nonce 0's entry and next nonce 1 are committed (before the broadcast), then
    start another replica's slot for ``sender`` in a thread; (that thread, nonces it got)."""
    with engine.connect() as conn:
        assert conn.execute(sa.select(api_db.tx_journal.c.nonce)).scalar_one() == 0
        assert conn.execute(sa.select(api_db.nonce_locks.c.next_nonce)).scalar_one() == 1
    taken: list[int] = []

    def take() -> None:
        theirs = other.nonce_slot(sender)
        taken.append(theirs.stored)
        theirs.release(None)

    waiter = threading.Thread(target=take)
    waiter.start()
    waiter.join(0.5)
    return waiter, taken


def test_a_slot_journals_with_its_next_nonce_and_holds_the_lock_until_released(
    engine: Any,
) -> None:
    """The journal row and the next nonce are committed together before the broadcast; the
    slot stays locked across it (on PostgreSQL another replica's slot waits until release),
    and a failed broadcast puts the stored nonce back."""
    journal, other = TxJournal(engine), TxJournal(engine)
    sender = "0x" + "ab" * 20
    slot = journal.nonce_slot(sender)
    entry = TxJournal.entry(tx_hash="0x" + "01" * 32, sender=sender, nonce=0, raw=b"r", kind="t")
    slot.journal(entry, 1)
    waiter, taken = _journaled_then_another_replica_asks(engine, other, sender)
    if engine.dialect.name == "postgresql":
        assert waiter.is_alive() and not taken  # the lock outlived the commit
    slot.release(1)
    waiter.join()
    assert taken == [1]
    again = journal.nonce_slot(sender)
    again.journal(
        TxJournal.entry(tx_hash="0x" + "02" * 32, sender=sender, nonce=1, raw=b"s", kind="t"), 2
    )
    again.release(None)  # the broadcast failed: the stored nonce goes back
    with engine.connect() as conn:
        assert conn.execute(sa.select(api_db.nonce_locks.c.next_nonce)).scalar_one() == 1


def test_a_mined_replacement_takes_over_the_relay_rows_of_the_version_it_replaced(
    world: World, engine: Any
) -> None:
    """Two versions of one custodian nonce are journaled and a relay row names the first;
    the second is mined. Both the relayer's ``mined`` and a restart's ``resubmit`` leave one
    journal row per nonce and point the relay row at the mined version."""
    journal, outbox = TxJournal(engine), Outbox(engine)
    custodian = world.custodian  # type: ignore[attr-defined]
    first, nonce, first_raw = _signed_call(world)
    tx = {
        "to": custodian.address,
        "value": 0,
        "data": b"",
        "gas": 60_000,
        "gasPrice": world.w3.eth.gas_price * 3,  # the replacement pays more
        "nonce": nonce,
        "chainId": world.chain_id,
    }
    signed = Account.sign_transaction(tx, custodian.key)
    second, second_raw = "0x" + bytes(signed.hash).hex(), bytes(signed.raw_transaction)
    for h, raw in ((first, first_raw), (second, second_raw)):
        journal.record(tx_hash=h, sender=custodian.address, nonce=nonce, raw=raw, kind="t")
    outbox.begin("grant:0xfeed", "grant", {"row": {}})
    outbox.sent("grant:0xfeed", first)
    world.w3.eth.send_raw_transaction(second_raw)
    receipt = world.w3.eth.wait_for_transaction_receipt(second)

    rpc = RpcClient(world.rpc_url)
    try:
        report = resubmit(journal, rpc)  # a restart before the relayer saw it mined
    finally:
        rpc.close()
    assert report.dropped == [first] and not report.lost
    with engine.connect() as conn:
        rows = conn.execute(sa.select(api_db.tx_journal.c.tx_hash)).scalars().all()
        named = conn.execute(sa.select(api_db.relays.c.tx_hash)).scalar_one()
    assert rows == [second] and named == second

    # The relayer's own path: the mined version settles the other in one transaction.
    journal.record(tx_hash=first, sender=custodian.address, nonce=nonce, raw=first_raw, kind="t")
    outbox.sent("grant:0xfeed", first)
    journal.mined(
        second, int(receipt["blockNumber"]), "0x" + bytes(receipt["blockHash"]).hex(), True, [first]
    )
    with engine.connect() as conn:
        rows = conn.execute(sa.select(api_db.tx_journal.c.tx_hash)).scalars().all()
        named = conn.execute(sa.select(api_db.relays.c.tx_hash)).scalar_one()
    assert rows == [second] and named == second


async def test_the_event_loop_slot_is_the_same_lock_and_row_as_the_threaded_one(
    engine: Any,
) -> None:
    """PostgreSQL's relayer slot (``PgNonceSlots``, on the event loop): its journal row and
    next nonce are committed before the broadcast, another replica's (threaded) slot waits
    until it is released, and a failed broadcast puts the stored nonce back."""
    slots = TxJournal(engine).event_loop_slots()
    if slots is None:
        pytest.skip("SQLite: one process, the threaded slot")
    sender = "0x" + "cd" * 20
    other = TxJournal(engine)
    try:
        assert await slots.acquire(sender) == 0
        entry = TxJournal.entry(
            tx_hash="0x" + "03" * 32, sender=sender, nonce=0, raw=b"r", kind="t"
        )
        await slots.journal(sender, entry, 1)
        waiter, taken = _journaled_then_another_replica_asks(engine, other, sender)
        assert waiter.is_alive() and not taken  # the lock outlived the commit
        await slots.release(sender, 1)
        await asyncio.to_thread(waiter.join)
        assert taken == [1]
        assert await slots.acquire(sender) == 1
        await slots.journal(
            sender,
            TxJournal.entry(tx_hash="0x" + "04" * 32, sender=sender, nonce=1, raw=b"s", kind="t"),
            2,
        )
        await slots.release(sender, None)  # the broadcast failed: the stored nonce goes back
        with engine.connect() as conn:
            assert conn.execute(sa.select(api_db.nonce_locks.c.next_nonce)).scalar_one() == 1
            # The slot's kept connection dies while idle (as in a server restart) ...
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND query LIKE '%pg_advisory_unlock%'"
                )
            )
        # ... and the next send's slot is taken on a new one.
        assert await slots.acquire(sender) == 1
        await slots.release(sender, None)
    finally:
        await slots.aclose()


async def test_a_replica_that_died_between_journal_and_broadcast_stalls_no_one(
    world: World, engine: Any
) -> None:
    """The dead replica journaled nonce n and stored n + 1, then never broadcast: the live
    one's next transaction (n + 1) is stuck behind the gap until, before replacing it, the
    relayer broadcasts the journaled bytes of n. Both are mined."""
    custodian = world.custodian  # type: ignore[attr-defined]
    async with aiohttp.ClientSession() as session:
        relayer = Relayer(
            ChainGateway(world.rpc_url, world.ledger_address, session),
            chain_id=world.chain_id,
            confirmations=0,
            timeout=60,
            custodian_key=custodian.key_bytes,
            journal=TxJournal(engine),
            replace_after=0.2,
        )
        to_self = {"gas": 60_000, "to": custodian.address}
        assert (await relayer.wait(await relayer.send(b"", **to_self))).success  # type: ignore[arg-type]
        dead, nonce, raw = _signed_call(world)
        slot = TxJournal(engine).nonce_slot(custodian.address)
        slot.journal(
            TxJournal.entry(tx_hash=dead, sender=custodian.address, nonce=nonce, raw=raw, kind="t"),
            nonce + 1,
        )
        slot.release(nonce + 1)  # (the process died here: the lock goes with its connection)
        live = await relayer.send(b"", **to_self)  # type: ignore[arg-type]
        receipt = await relayer.wait(live)
    assert receipt.success
    assert _receipt(world, dead) is not None  # the gap was filled with the journaled bytes
    assert world.w3.eth.get_transaction_count(custodian.address) == nonce + 2
    assert relayer.nonce_errors == 0  # filled, not replaced into a nonce the chain just took
