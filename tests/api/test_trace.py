"""Regulator trace, subject history and audit verify over real HTTP, anvil and SQLite/PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from _api_server import LiveServer, assert_problem, live_server, world_settings
from _api_world import World
from _trace_helpers import TraceHistory, build_history, items

from api.client import DataSafeClient
from ledger import db


@pytest.fixture
def traced(world: World, db_url: str, tmp_path: Path) -> Iterator[tuple[LiveServer, TraceHistory]]:
    history = build_history(world, db_url)
    with live_server(world_settings(world, db_url, tmp_path)) as srv:
        yield srv, history


def _all_pages(c: DataSafeClient, path: str, params: dict[str, object]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    cursor = None
    while True:
        page = c.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        out += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return out


def test_trace_accesses_filters_pages_and_exports(
    traced: tuple[LiveServer, TraceHistory],
) -> None:
    server, h = traced
    w = h.world
    with DataSafeClient(server.url, w.regulator.key) as reg:
        page = reg.get("/v1/trace/accesses")
        rows = items(page)
        assert page["next_cursor"] is None and page["indexed_to"] >= rows[-1]["block_number"]
        assert [r["tx_hash"] for r in rows] == h.access_txs
        assert [(r["grant_id"], r["use"]) for r in rows] == [
            (h.grants["loan"], 1),
            (h.grants["kyc"], 1),
            (h.grants["notary"], 1),
            (h.grants["loan"], 2),
        ]
        first = rows[0]
        assert first["fields"] == ["name"] and rows[3]["fields"] == ["income"]
        assert first["subject"] == w.citizen.address.lower()
        assert first["institution"] == w.bank.address.lower()
        assert first["issuer"] == w.issuer.address.lower()
        assert first["actor"] == w.custodian.address.lower()  # type: ignore[attr-defined]
        receipt = w.w3.eth.get_transaction_receipt(first["tx_hash"])
        assert receipt["blockNumber"] == first["block_number"]
        assert [lg["logIndex"] for lg in receipt["logs"]] == [first["log_index"]]

        def grants_of(**params: object) -> list[object]:
            return [r["grant_id"] for r in items(reg.get("/v1/trace/accesses", params=params))]

        bank2 = w.bank2.address
        assert grants_of(institution=bank2) == [h.grants["kyc"], h.grants["notary"]]
        assert grants_of(subject=w.citizen2.address) == [h.grants["notary"]]
        assert grants_of(asset_id=h.assets["a2"].hex) == [h.grants["notary"]]
        assert grants_of(purpose=2) == [h.grants["kyc"]]
        assert grants_of(issuer=w.issuer.address) == [r["grant_id"] for r in rows]
        assert grants_of(issuer=w.issuer2.address) == []
        assert grants_of(from_block=rows[2]["block_number"]) == [
            h.grants["notary"],
            h.grants["loan"],
        ]
        assert grants_of(to_time=rows[0]["at"], from_time=rows[0]["at"]) == [
            r["grant_id"] for r in rows if r["at"] == rows[0]["at"]
        ]
        newest = items(reg.get("/v1/trace/accesses", params={"order": "desc", "limit": 1}))
        assert newest == [rows[-1]]

        # keyset pages of one row each, in both orders, give exactly the full answer
        assert _all_pages(reg, "/v1/trace/accesses", {"limit": 1}) == rows
        assert _all_pages(reg, "/v1/trace/accesses", {"limit": 3, "order": "desc"}) == rows[::-1]
        cursor = reg.get("/v1/trace/accesses", params={"limit": 1})["next_cursor"]
        other = reg.request("GET", "/v1/trace/accesses", params={"cursor": cursor, "purpose": 1})
        assert_problem(other, 422, "invalid_cursor")
        junk = reg.request("GET", "/v1/trace/accesses", params={"cursor": "%%%"})
        assert_problem(junk, 422, "invalid_cursor")
        bad = reg.request("GET", "/v1/trace/accesses", params={"institution": "0x12"})
        assert_problem(bad, 422, "invalid_request")

        # streamed exports carry the same rows
        exported = reg.request("GET", "/v1/trace/accesses", params={"format": "json"})
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("application/json")
        assert json.loads(exported.text) == rows
        as_csv = reg.request("GET", "/v1/trace/accesses", params={"format": "csv"})
        assert as_csv.headers["content-type"].startswith("text/csv")
        parsed = list(csv.DictReader(io.StringIO(as_csv.text)))
        assert [(p["tx_hash"], int(p["log_index"]), p["fields"]) for p in parsed] == [
            (r["tx_hash"], r["log_index"], ";".join(r["fields"])) for r in rows
        ]
        tail = reg.request("GET", "/v1/trace/accesses", params={"format": "json", "cursor": cursor})
        assert json.loads(tail.text) == rows[1:]
        bad_export = reg.request(
            "GET", "/v1/trace/accesses", params={"format": "csv", "cursor": "xx"}
        )
        assert_problem(bad_export, 422, "invalid_cursor")


def test_trace_consents_with_expiry_and_kinds(traced: tuple[LiveServer, TraceHistory]) -> None:
    server, h = traced
    w = h.world
    with DataSafeClient(server.url, w.regulator.key) as reg:
        rows = items(reg.get("/v1/trace/consents"))
        assert [(r["kind"], r["grant_id"]) for r in rows] == [
            ("granted", h.grants["loan"]),
            ("granted", h.grants["kyc"]),
            ("granted", h.grants["notary"]),
            ("paused", h.grants["loan"]),
            ("resumed", h.grants["loan"]),
            ("revoked", h.grants["loan"]),
            ("expired", h.grants["kyc"]),
        ]
        for r in rows[:-1]:
            assert h.txs[r["tx_hash"]].endswith(_name(h, r["grant_id"]))
        expired = rows[-1]
        assert expired["at"] == expired["expiry"]
        assert expired["tx_hash"] == rows[1]["tx_hash"]  # proven by the grant's own log
        assert rows[0]["fields"] == ["name", "income"] and rows[0]["purpose"] == 1
        assert rows[3]["actor"] == w.citizen.address.lower()
        only = items(reg.get("/v1/trace/consents", params={"kind": ["revoked", "expired"]}))
        assert [r["kind"] for r in only] == ["revoked", "expired"]
        bank2 = items(reg.get("/v1/trace/consents", params={"institution": w.bank2.address}))
        assert [r["kind"] for r in bank2] == ["granted", "granted", "expired"]
        assert _all_pages(reg, "/v1/trace/consents", {"limit": 2}) == rows
        csv_rows = list(
            csv.DictReader(
                io.StringIO(reg.request("GET", "/v1/trace/consents", params={"format": "csv"}).text)
            )
        )
        assert [c["kind"] for c in csv_rows] == [r["kind"] for r in rows]
        wrong = reg.request("GET", "/v1/trace/consents", params={"kind": "access"})
        assert_problem(wrong, 422, "invalid_request")


def _name(h: TraceHistory, grant_id: object) -> str:
    return next(n for n, g in h.grants.items() if g == grant_id)


def test_trace_and_audit_are_for_regulators_only(
    traced: tuple[LiveServer, TraceHistory],
) -> None:
    server, h = traced
    w = h.world
    for actor in (w.bank, w.citizen, w.issuer):
        with DataSafeClient(server.url, actor.key) as c:
            for path in ("/v1/trace/accesses", "/v1/trace/consents", "/v1/audit/verify"):
                assert_problem(c.request("GET", path), 403, "role_required")
            assert_problem(
                c.request("GET", "/v1/trace/accesses", params={"format": "csv"}),
                403,
                "role_required",
            )
    with DataSafeClient(server.url, w.outsider.key) as c:
        assert_problem(c.request("GET", "/v1/trace/accesses"), 403, "not_member")
    with DataSafeClient(server.url) as anonymous:
        assert_problem(anonymous.request("GET", "/v1/trace/accesses"), 401, "unauthenticated")


def test_subject_history_is_own_and_polls_since_cursor(
    traced: tuple[LiveServer, TraceHistory],
) -> None:
    server, h = traced
    w = h.world
    with DataSafeClient(server.url, w.citizen.key) as citizen:
        got = citizen.get("/v1/me/history")
        mine = got["items"]
        assert {r["subject"] for r in mine} == {w.citizen.address.lower()}
        assert [r["kind"] for r in mine] == [
            "granted",
            "granted",
            "access",
            "access",
            "access",
            "paused",
            "resumed",
            "revoked",
            "expired",
        ]
        reads = [
            (r["institution"], r["fields"], r["purpose"]) for r in mine if r["kind"] == "access"
        ]
        assert reads == [
            (w.bank.address.lower(), ["name"], 1),
            (w.bank2.address.lower(), ["name", "id_number"], 2),
            (w.bank.address.lower(), ["income"], 1),
        ]
        assert got["has_more"] is False
        cursor = got["cursor"]
        # nothing new: the same cursor comes back
        again = citizen.get("/v1/me/history", params={"since": cursor})
        assert again["items"] == [] and again["cursor"] == cursor
        paged = citizen.get("/v1/me/history", params={"limit": 4})
        assert paged["has_more"] is True and paged["items"] == mine[:4]
        rest = citizen.get("/v1/me/history", params={"since": paged["cursor"]})
        assert rest["items"] == mine[4:]
        assert_problem(
            citizen.request("GET", "/v1/me/history", params={"since": "garbage"}),
            422,
            "invalid_cursor",
        )
    # a new grant + access appear after the cursor, and only for their subject
    h.grant("later", w.citizen, h.assets["a1"], w.bank, purpose=5, mask=0b00100)
    h.access("later", w.bank, 0b00100)
    h.index()
    with DataSafeClient(server.url, w.citizen.key) as citizen:
        new = citizen.get("/v1/me/history", params={"since": cursor})["items"]
        assert [(r["kind"], r["fields"]) for r in new] == [
            ("granted", ["address"]),
            ("access", ["address"]),
        ]
    with DataSafeClient(server.url, w.citizen2.key) as other:
        theirs = other.get("/v1/me/history")["items"]
        assert {r["grant_id"] for r in theirs} == {h.grants["notary"]}
    with DataSafeClient(server.url, w.bank.key) as bank:
        assert_problem(bank.request("GET", "/v1/me/history"), 403, "role_required")


def test_audit_verify_reports_tampered_index_rows(
    traced: tuple[LiveServer, TraceHistory],
) -> None:
    server, h = traced
    w = h.world
    with DataSafeClient(server.url, w.regulator.key) as reg:
        clean = reg.get("/v1/audit/verify")
        assert clean["ok"] is True, clean
        assert clean["chain_rows"] == clean["claimed_rows"] == 10
        assert clean["from_block"] == w.deploy_block
        scoped = reg.get("/v1/audit/verify", params={"institution": w.bank2.address})
        assert scoped["ok"] and scoped["chain_rows"] == 4

        accesses = db.accesses
        events = db.grant_events
        engine = db.make_engine(h.db_url)
        try:
            with engine.begin() as conn:
                victim = (
                    conn.execute(sa.select(accesses).where(accesses.c.tx_hash == h.access_txs[1]))
                    .mappings()
                    .one()
                )
                conn.execute(
                    sa.update(accesses)
                    .where(accesses.c.id == victim["id"])
                    .values(fields_mask=0b11111)
                )
                revoked = (
                    conn.execute(sa.select(events).where(events.c.event == "ConsentRevoked"))
                    .mappings()
                    .one()
                )
                conn.execute(sa.delete(events).where(events.c.id == revoked["id"]))
                forged = {k: v for k, v in victim.items() if k != "id"}
                forged.update(log_index=99, use=7, tx_hash="0x" + "cd" * 32)
                conn.execute(sa.insert(accesses).values(**forged))
        finally:
            engine.dispose()
        report = reg.get("/v1/audit/verify")
        assert report["ok"] is False
        assert [(m["kind"], m["tx_hash"]) for m in report["missing"]] == [
            ("revoked", revoked["tx_hash"])
        ]
        assert [(e["log_index"], e["tx_hash"]) for e in report["extra"]] == [(99, "0x" + "cd" * 32)]
        assert [(a["tx_hash"], a["fields"]) for a in report["altered"]] == [
            (h.access_txs[1], {"fields_mask": {"chain": 0b00011, "claimed": 0b11111}})
        ]
        # the trace itself serves the tampered rows: audit is what catches them
        served = items(reg.get("/v1/trace/accesses"))
        assert len(served) == 5
        assert_problem(
            reg.request("GET", "/v1/audit/verify", params={"from_block": 10, "to_block": 5}),
            422,
            "invalid_request",
        )
        assert_problem(
            reg.request("GET", "/v1/audit/verify", params={"from_block": 0, "to_block": 10**6}),
            422,
            "audit_range_too_large",
        )


def _sse(
    c: DataSafeClient, params: dict[str, object], headers: dict[str, str] | None = None
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """A signed streaming GET of /v1/me/events; yields (id, event, data) as they arrive."""
    hdrs = {"accept": "text/event-stream", **(headers or {})}
    req = c.http.build_request("GET", "/v1/me/events", params=params, headers=hdrs)
    c._ensure_domain()
    c._sign(req, b"")
    resp = c.http.send(req, stream=True)
    assert resp.status_code == 200, resp.read()
    assert resp.headers["content-type"].startswith("text/event-stream")
    event: dict[str, str] = {}
    try:
        for line in resp.iter_lines():
            if not line:
                if "data" in event:
                    yield event["id"], event["event"], json.loads(event["data"])
                event = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                event[name] = value
    finally:
        resp.close()


def test_subject_event_stream_delivers_new_rows_and_resumes(
    traced: tuple[LiveServer, TraceHistory],
) -> None:
    server, h = traced
    w = h.world
    with DataSafeClient(server.url, w.citizen.key, timeout=30) as citizen:
        stream = _sse(citizen, {"max_seconds": 20})
        first = [next(stream) for _ in range(9)]
        assert [e[1] for e in first][-2:] == ["revoked", "expired"]
        assert {e[2]["subject"] for e in first} == {w.citizen.address.lower()}
        h.grant("later", w.citizen, h.assets["a1"], w.bank, purpose=5, mask=0b00100)
        h.access("later", w.bank, 0b00100)
        h.grant("other", w.citizen2, h.assets["a2"], w.bank, purpose=5, mask=0b00100)
        h.index()
        live = [next(stream), next(stream)]
        assert [(e[1], e[2]["grant_id"]) for e in live] == [
            ("granted", h.grants["later"]),
            ("access", h.grants["later"]),
        ]
        stream.close()
        # reconnecting with Last-Event-ID resumes right after the last event seen
        resumed = list(_sse(citizen, {"max_seconds": 1}, {"last-event-id": first[-1][0]}))
        assert [e[2]["grant_id"] for e in resumed] == [h.grants["later"]] * 2
        # without Accept: text/event-stream the same route answers one JSON page
        page = citizen.get("/v1/me/events", params={"since": first[-1][0]})
        assert [r["kind"] for r in page["items"]] == ["granted", "access"]
        bad = citizen.request("GET", "/v1/me/events", params={"since": "junk"})
        assert_problem(bad, 422, "invalid_cursor")
    with DataSafeClient(server.url, w.bank.key) as bank:
        assert_problem(bank.request("GET", "/v1/me/events"), 403, "role_required")
