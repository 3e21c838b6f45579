"""The lifecycle in the index and the trace: recall rows exactly for the grants that pulled a
superseded version, acknowledgement rows, grant columns, refusals; and ``audit verify``
re-deriving all of it from chain logs (and catching an index that drops or alters it).

Real anvil, real SQLite and PostgreSQL, the real indexer.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from eth_account import Account

from ledger import audit, db, eip712, trace
from ledger.calls import grant_id_of
from ledger.indexer import Indexer
from ledger.lifecycle import Acknowledgement, sign_acknowledgement
from ledger.models import AccessRequest, AckKind, Reason
from ledger.trace import TraceFilter

World = Any
FAR_FUTURE = 4_000_000_000
NEW_VERSION = b"\xa6" * 32


def _sync(world: World, engine: sa.Engine) -> None:
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


def _grant(world: World, nonce: int) -> tuple[str, int]:
    terms = world.terms(retention=7 * 86400)
    signed = eip712.sign_grant(world.subject_key, world.domain, terms, nonce, FAR_FUTURE)
    receipt = world.gov.send(world.gov.calls.grant_by_sig(signed))
    at = int(receipt.events_named("ConsentGranted")[0].args["timestamp"])
    return "0x" + grant_id_of(world.subject, nonce).hex(), at


def _pull(world: World, grant_id: str, nonce: int) -> None:
    request = AccessRequest(bytes.fromhex(grant_id[2:]), 0b1, nonce=nonce, deadline=FAR_FUTURE)
    sig = eip712.sign_access_request(world.bank_key, world.domain, request)
    world.gov.send(world.gov.calls.record_access(request, sig))


def _ack(world: World, kind: AckKind, grant_id: str, uses: int, at: int) -> Any:
    ack = Acknowledgement(kind, bytes.fromhex(grant_id[2:]), uses, at)
    signed = sign_acknowledgement(world.bank_key, world.domain, ack)
    return world.gov.send(world.gov.calls.acknowledge_batch([signed]))


def _rows(engine: sa.Engine, **kw: Any) -> list[trace.TraceRow]:
    with engine.connect() as conn:
        return list(trace.iter_rows(conn, TraceFilter(**kw)))


def test_recall_and_deletion_in_index_trace_and_audit(world: World, db_url: str) -> None:
    pulled, at = _grant(world, 31)
    idle, _ = _grant(world, 32)
    _pull(world, pulled, 900)
    _pull(world, pulled, 901)
    world.issuer.send(
        world.issuer.calls.supersede_asset(b"\xa5" * 32, NEW_VERSION, b"\7" * 32, b"\x08" * 32)
    )
    engine = db.make_engine(db_url)
    try:
        _sync(world, engine)
        lifecycle = frozenset(trace.LIFECYCLE_KINDS)
        (recall,) = _rows(engine, kinds=lifecycle)
        assert (recall.kind, recall.grant_id, recall.use) == ("recall", pulled, 2)
        assert recall.institution == world.bank.lower()
        assert recall.actor.lower() == Account.from_key(world.issuer_key).address.lower()
        assert idle not in {r.grant_id for r in _rows(engine, kinds=lifecycle)}
        # A page that ends at a recall row (rank > 1) gives a cursor the next page accepts.
        flt = TraceFilter(kinds=lifecycle)
        with engine.connect() as conn:
            at_recall = trace.encode_cursor(recall.key, flt, "asc")
            assert recall.rank > 1
            assert trace.query_page(conn, flt, cursor=at_recall).rows == []

        refused = _ack(world, AckKind.DELETION, pulled, 2, at)  # the grant is live
        assert refused.events_named("AcknowledgementRefused")[0].args["reason"] == Reason.GRANT_LIVE
        _ack(world, AckKind.RECALL, pulled, 2, at)
        nonce = world.gov.nonces(world.subject)
        revoke = eip712.sign_status_change(
            world.subject_key,
            world.domain,
            "RevokeConsent",
            bytes.fromhex(pulled[2:]),
            nonce,
            FAR_FUTURE,
        )
        world.gov.send(world.gov.calls.revoke_by_sig(revoke))
        _ack(world, AckKind.DELETION, pulled, 2, at)
        _sync(world, engine)

        kinds = [r.kind for r in _rows(engine, kinds=lifecycle)]
        assert kinds == ["recall", "recall_acknowledged", "deletion_acknowledged"]
        with engine.connect() as conn:
            row = conn.execute(sa.select(db.grants).where(db.grants.c.grant_id == pulled)).one()
            refusals = conn.execute(sa.select(db.acknowledgement_refusals)).mappings().all()
        assert row.retention == 7 * 86400 and row.revoked_at is not None
        assert row.recall_acked_at is not None and row.deletion_acked_at >= row.revoked_at
        assert [(r["grant_id"], r["reason"]) for r in refusals] == [(pulled, Reason.GRANT_LIVE)]

        clean = audit.verify_index(world.url, world.manifest, engine)
        assert clean.ok, clean.to_json()
        # The index forgets the deletion acknowledgement and miscounts the recalled pulls.
        with engine.begin() as conn:
            conn.execute(
                sa.delete(db.grant_events).where(db.grant_events.c.event == "DeletionAcknowledged")
            )
            conn.execute(sa.update(db.grants).where(db.grants.c.grant_id == pulled).values(uses=1))
        report = audit.verify_index(world.url, world.manifest, engine)
        assert [r.kind for r in report.missing] == ["deletion_acknowledged"]
        assert [(a.chain.kind, set(a.fields)) for a in report.altered] == [("recall", {"use"})]
    finally:
        engine.dispose()
