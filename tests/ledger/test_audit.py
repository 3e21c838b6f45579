"""Trace rows from the index vs the same rows re-derived from chain logs (ledger.audit).

Real anvil (session chain, reverted per test), real SQLite and PostgreSQL, the real indexer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from eth_account import Account

from ledger import audit, db, eip712, trace
from ledger.calls import grant_id_of
from ledger.indexer import Indexer
from ledger.models import AccessRequest
from ledger.rpc import RpcClient
from ledger.trace import TraceFilter

# The ``world`` fixture (tests/ledger/conftest.py) gives a ``World``; imported by fixture,
# not by ``from _ledger_world import``, so this module also collects next to tests/api.
World = Any
FAR_FUTURE = 4_000_000_000


@dataclass
class History:
    world: World
    engine: sa.Engine
    grant: str
    short: str
    head: int


def _status(world: World, kind: str, grant_id: bytes) -> None:
    nonce = world.gov.nonces(world.subject)
    signed = eip712.sign_status_change(
        world.subject_key, world.domain, kind, grant_id, nonce, FAR_FUTURE
    )
    call = {
        "RevokeConsent": world.gov.calls.revoke_by_sig,
        "PauseConsent": world.gov.calls.pause_by_sig,
        "ResumeConsent": world.gov.calls.resume_by_sig,
    }[kind]
    world.gov.send(call(signed))


def _access(world: World, grant_id: bytes, mask: int, nonce: int) -> None:
    request = AccessRequest(grant_id, mask, nonce=nonce, deadline=FAR_FUTURE)
    sig = eip712.sign_access_request(world.bank_key, world.domain, request)
    world.gov.send(world.gov.calls.record_access(request, sig))


def make_history(world: World, db_url: str) -> History:
    """granted, 2 accesses, paused, resumed, revoked; a second grant that expires."""
    with RpcClient(world.url) as rpc:
        now = int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    long_terms = world.terms(max_uses=5)
    short_terms = world.terms(expiry=now + 1000, purpose=2, fields_mask=0b1)
    for terms, nonce in ((long_terms, 7), (short_terms, 8)):
        signed = eip712.sign_grant(world.subject_key, world.domain, terms, nonce, FAR_FUTURE)
        world.gov.send(world.gov.calls.grant_by_sig(signed))
    gid, short = grant_id_of(world.subject, 7), grant_id_of(world.subject, 8)
    _access(world, gid, 0b100, 1)
    _access(world, gid, 0b001, 2)
    _access(world, short, 0b001, 3)
    _status(world, "PauseConsent", gid)
    _status(world, "ResumeConsent", gid)
    _status(world, "RevokeConsent", gid)
    with RpcClient(world.url) as rpc:
        rpc.call("evm_increaseTime", [2000])
        rpc.call("evm_mine")
        head = int(rpc.call("eth_blockNumber"), 16)
    return History(world, _index(world, db_url), "0x" + gid.hex(), "0x" + short.hex(), head)


def _index(world: World, db_url: str) -> sa.Engine:
    """The real indexer, synced once to the head, over a fresh engine."""
    engine = db.make_engine(db_url)
    indexer = Indexer(
        rpc_url=world.url,
        ledger_address=world.manifest.ledger_address,
        engine=engine,
        start_block=world.manifest.deploy_block,
    )
    try:
        indexer.sync_once()
    finally:
        indexer.close()
    return engine


@pytest.fixture
def history(world: World, db_url: str) -> Any:
    h = make_history(world, db_url)
    yield h
    h.engine.dispose()


def _all(h: History, flt: TraceFilter | None = None) -> list[trace.TraceRow]:
    with h.engine.connect() as conn:
        return list(trace.iter_rows(conn, flt or TraceFilter()))


def test_trace_rows_cover_every_change_in_order(history: History) -> None:
    rows = _all(history)
    kinds = [(r.kind, r.grant_id) for r in rows]
    g, s = history.grant, history.short
    assert kinds == [
        ("granted", g),
        ("granted", s),
        ("access", g),
        ("access", g),
        ("access", s),
        ("paused", g),
        ("resumed", g),
        ("revoked", g),
        ("expired", s),  # expiry of the short grant, reached by the last indexed block
    ]
    keys = [r.key for r in rows]
    assert keys == sorted(keys)
    bank, subject = history.world.bank.lower(), history.world.subject.lower()
    for r in rows:
        assert r.subject == subject and r.institution == bank
        assert r.tx_hash.startswith("0x") and len(r.tx_hash) == 66
        assert r.issuer is not None and r.schema_id == "0x" + "5c" * 32
    expired = rows[-1]
    assert expired.at == expired.expiry and expired.block_number == rows[1].block_number
    assert [r.use for r in rows if r.kind == "access"] == [1, 2, 1]
    assert [r.fields_mask for r in rows if r.kind == "access"] == [0b100, 0b001, 0b001]


def test_use_numbers_and_custodian_come_from_events_and_their_transactions(
    world: World, db_url: str
) -> None:
    """``Accessed`` names neither: an unlimited grant (no counter on chain) is numbered by
    counting its events, before the audited range too, and the custodian is the sender."""
    signed = eip712.sign_grant(
        world.subject_key, world.domain, world.terms(max_uses=0), 9, FAR_FUTURE
    )
    world.gov.send(world.gov.calls.grant_by_sig(signed))
    gid = grant_id_of(world.subject, 9)
    for nonce in (11, 12, 13):
        _access(world, gid, 0b001, nonce)
    assert world.gov.get_grant(gid).uses == 1  # an unlimited grant only marks its first use
    engine = _index(world, db_url)
    try:
        with engine.connect() as conn:
            rows = [r for r in trace.iter_rows(conn, TraceFilter()) if r.kind == "access"]
        custodian = Account.from_key(world.governor_key).address.lower()
        assert [(r.use, r.actor.lower()) for r in rows] == [(n, custodian) for n in (1, 2, 3)]
        assert audit.verify_index(world.url, world.manifest, engine).ok
        m = world.manifest
        later = audit.chain_rows(
            world.url, m.ledger_address, rows[1].block_number, rows[2].block_number,
            deploy_block=m.deploy_block,
        )  # fmt: skip
        assert [(r.use, r.actor.lower()) for r in later if r.kind == "access"] == [
            (2, custodian),
            (3, custodian),
        ]
    finally:
        engine.dispose()


def test_filters_and_keyset_pages(history: History) -> None:
    h = history
    assert [r.kind for r in _all(h, TraceFilter(purpose=2))] == ["granted", "access", "expired"]
    assert _all(h, TraceFilter(institution="0x" + "11" * 20)) == []
    assert len(_all(h, TraceFilter(kinds=frozenset({"access"})))) == 3
    assert len(_all(h, TraceFilter(grant_id=h.grant.upper().replace("0X", "0x")))) == 6
    everything = _all(h)
    late = everything[4].at
    assert all(r.at >= late for r in _all(h, TraceFilter(from_time=late)))
    # pages of 2, forwards and backwards, give exactly the full list
    for order in ("asc", "desc"):
        flt = TraceFilter()
        seen: list[trace.TraceRow] = []
        cursor = None
        with h.engine.connect() as conn:
            while True:
                page = trace.query_page(conn, flt, cursor=cursor, order=order, limit=2)
                seen += page.rows
                assert page.indexed_to == h.head
                cursor = page.next_cursor
                if cursor is None:
                    break
        assert seen == (everything if order == "asc" else everything[::-1])
    with h.engine.connect() as conn:
        first = trace.query_page(conn, TraceFilter(), limit=2)
        assert first.next_cursor is not None
        with pytest.raises(trace.InvalidCursorError, match="another query"):
            trace.query_page(conn, TraceFilter(purpose=1), cursor=first.next_cursor)
        with pytest.raises(trace.InvalidCursorError, match="malformed"):
            trace.query_page(conn, TraceFilter(), cursor="not-a-cursor!")
        # a well-formed cursor whose key does not fit the columns is bad input, not a DB error
        huge = trace.encode_cursor((0, 0, 2**40, 0), TraceFilter(), "asc")
        with pytest.raises(trace.InvalidCursorError, match="malformed"):
            trace.query_page(conn, TraceFilter(), cursor=huge)
    with pytest.raises(trace.TraceError, match="unknown kinds"):
        TraceFilter(kinds=frozenset({"stolen"}))


def test_verify_index_is_clean_then_reports_exactly_the_tampering(history: History) -> None:
    h = history
    clean = audit.verify_index(h.world.url, h.world.manifest, h.engine)
    assert clean.ok, clean.to_json()
    assert clean.chain_rows == clean.claimed_rows == 8  # expiry rows are not compared
    assert clean.to_block == h.head

    accesses = db.accesses
    events = db.grant_events
    with h.engine.begin() as conn:
        altered = (
            conn.execute(sa.select(accesses).order_by(accesses.c.block_number).limit(1))
            .mappings()
            .one()
        )
        conn.execute(
            sa.update(accesses)
            .where(accesses.c.id == altered["id"])
            .values(grantee="0x" + "66" * 20, use=9)
        )
        deleted = (
            conn.execute(sa.select(events).where(events.c.event == "ConsentPaused"))
            .mappings()
            .one()
        )
        conn.execute(sa.delete(events).where(events.c.id == deleted["id"]))
        forged = {k: v for k, v in altered.items() if k != "id"}
        forged.update(block_number=h.head, log_index=77, tx_hash="0x" + "ab" * 32)
        conn.execute(sa.insert(accesses).values(**forged))

    report = audit.verify_index(h.world.url, h.world.manifest, h.engine)
    assert not report.ok
    assert [(r.kind, r.block_number, r.log_index) for r in report.missing] == [
        ("paused", deleted["block_number"], deleted["log_index"])
    ]
    assert [(r.block_number, r.log_index, r.tx_hash) for r in report.extra] == [
        (h.head, 77, "0x" + "ab" * 32)
    ]
    assert len(report.altered) == 1
    change = report.altered[0]
    assert (change.block_number, change.log_index) == (
        altered["block_number"],
        altered["log_index"],
    )
    assert change.fields == {
        "institution": {"chain": h.world.bank.lower(), "claimed": "0x" + "66" * 20},
        "use": {"chain": 1, "claimed": 9},
    }
    body = report.to_json()
    assert body["ok"] is False and len(body["missing"]) == len(body["extra"]) == 1


def test_verify_rows_from_a_json_export_needs_only_rpc_and_manifest(history: History) -> None:
    h = history
    exported = [r.to_json() for r in _all(h)]
    first, last = h.world.manifest.deploy_block, h.head
    ok = audit.verify_rows(h.world.url, h.world.manifest, exported, from_block=first, to_block=last)
    assert ok.ok and ok.claimed_rows == 8
    exported[2] = exported[2] | {"purpose": 4}
    bad = audit.verify_rows(
        h.world.url, h.world.manifest, exported, from_block=first, to_block=last
    )
    assert [a.fields for a in bad.altered] == [{"purpose": {"chain": 1, "claimed": 4}}]
    # a filtered range: only the short grant's rows count, the others are "extra"
    flt = TraceFilter(grant_id=h.short)
    scoped = audit.verify_rows(
        h.world.url, h.world.manifest, exported, from_block=first, to_block=last, flt=flt
    )
    assert scoped.chain_rows == 2 and len(scoped.extra) == 6


def test_audit_failures_are_typed(history: History, tmp_path: Any) -> None:
    h = history
    with pytest.raises(audit.AuditError, match="invalid block range"):
        audit.chain_rows(h.world.url, h.world.manifest.ledger_address, 10, 5)
    with pytest.raises(trace.TraceError, match="not a trace row"):
        audit.verify_rows(
            h.world.url, h.world.manifest, [{"kind": "access"}], from_block=0, to_block=1
        )
    empty = db.make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with empty.connect() as conn, pytest.raises(trace.IndexNotReadyError):
        trace.query_page(conn, TraceFilter())
    empty.dispose()
    with pytest.raises(audit.LedgerError):
        audit.verify_rows("http://127.0.0.1:9", h.world.manifest, [], from_block=0, to_block=1)


def test_trace_indexes_are_added_to_an_existing_database(history: History) -> None:
    engine = history.engine
    with engine.begin() as conn:
        for index in db.TRACE_INDEXES:
            index.drop(conn)
        # As a database made by ``create_all`` before migrations (and these indexes) existed.
        conn.execute(sa.text("DROP TABLE indexer_alembic_version"))
    names = {i["name"] for i in sa.inspect(engine).get_indexes("accesses")}
    assert "ix_trace_accesses_owner" not in names
    db.create_tables(engine)
    db.create_tables(engine)  # idempotent
    inspector = sa.inspect(engine)
    for index in db.TRACE_INDEXES:
        table = index.table
        assert table is not None
        assert index.name in {i["name"] for i in inspector.get_indexes(table.name)}


def test_keyset_chunks_over_a_seeded_index_match_one_sorted_query(db_url: str) -> None:
    """scripts/seed_trace.py output, read in chunks across many equal timestamps."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    from seed_trace import seed

    info = seed(db_url, grants=300, accesses=3000)
    assert info["revoked"] == 30
    engine = db.make_engine(db_url)
    try:
        with engine.connect() as conn:
            flt = TraceFilter()
            whole = trace.fetch(conn, flt)
            assert len(whole) == 300 + 3000 + 30 + sum(1 for r in whole if r.kind == "expired")
            keys = [r.key for r in whole]
            assert keys == sorted(keys) and len(set(keys)) == len(keys)
            assert list(trace.iter_rows(conn, flt, chunk=97)) == whole
            assert list(trace.iter_rows(conn, flt, order="desc", chunk=97)) == whole[::-1]
            one = TraceFilter(kinds=frozenset({"access"}), institution=whole[-1].institution)
            mine = [r for r in whole if r.kind == "access" and r.institution == one.institution]
            assert list(trace.iter_rows(conn, one, chunk=3)) == mine
    finally:
        engine.dispose()
