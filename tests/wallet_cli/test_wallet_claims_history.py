"""Her claims in her history, on SQLite and PostgreSQL: the service's event stream
(``/v1/me/events``) carries each claim's events (filed, fulfilled, refused with its reason)
merged with her trace rows under one cursor, and ``datasafe history`` shows them read from
her own node, with and without the service."""

from __future__ import annotations

import json
from typing import Any

from _claims import department, until
from _stack import Stack

from api.client import DataSafeClient
from wallet_cli import _trace


def _events(stack: Stack, last_id: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """Her event stream from the start (or after ``last_id``), closed by the service."""
    key = bytes.fromhex(str(stack.world.citizen.key).removeprefix("0x"))
    headers = {"Accept": "text/event-stream"} | ({"Last-Event-ID": last_id} if last_id else {})
    with (
        DataSafeClient(stack.server.url, key, timeout=30) as c,
        _trace.open_stream(
            c, key, "/v1/me/events", params={"max_seconds": 1}, headers=headers
        ) as resp,
    ):
        return [(str(i), n, json.loads(d)) for i, n, d in _trace.sse(resp)]


def _claims_of(events: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str]]:
    return [(n, d["claim_id"]) for _, n, d in events if n.startswith("claim_")]


def test_her_claims_are_in_her_stream_and_history(claims_stack: Stack) -> None:
    stack, w = claims_stack, claims_stack.citizen
    dept = department(stack)
    schema = "0x" + stack.schema_id.hex()
    aid = stack.issue("history-grant")
    grant = ("grant", "create", "--asset", aid, "--to", "citybank", "--fields", "name",
             "--purpose", "loan", "--days", "30", "--yes")  # fmt: skip
    w.ok(*grant)
    first = w.json("claims", "file", "taxbureau", schema, "--reference", "H-1")["claim_id"]
    second = w.json("claims", "file", "taxbureau", schema, "--reference", "H-2")["claim_id"]
    asset = stack.issue("claimed-history", owner=stack.world.citizen)
    dept.ok("claims", "fulfil", first, asset)
    dept.ok("claims", "refuse", second, "--code", "no_record", "--reason", "not found")
    w.ok(*grant)  # a row of her trace after the claims
    want = [
        ("claim_filed", first),
        ("claim_filed", second),
        ("claim_fulfilled", first),
        ("claim_refused", second),
    ]

    # The service's stream: the grant first (earlier on chain), then the claims, in order.
    events = until(lambda: _events(stack), lambda ev: len(ev) == 6)
    assert _claims_of(events) == want
    assert [n for _, n, _ in events] == ["granted", *(n for n, _ in want), "granted"]
    data = {n: d for _, n, d in events}
    assert data["claim_refused"]["reason"] == "no_record"
    assert data["claim_fulfilled"]["asset_id"] == asset
    assert {d["subject"].lower() for _, n, d in events} == {stack.world.citizen.address.lower()}
    # Resuming after the fulfilment sends only what came after it, once.
    fulfilled_id = next(i for i, n, _ in events if n == "claim_fulfilled")
    assert _claims_of(_events(stack, fulfilled_id)) == [("claim_refused", second)]
    granted_id = events[0][0]
    assert _claims_of(_events(stack, granted_id)) == want

    # Her history through the service, the claims read from her own node.
    hist = until(lambda: w.json("history", "list"), lambda h: len(h["changes"]) == 2)
    assert [(r["event"], r["claim_id"]) for r in hist["claims"]] == want
    assert hist["claims"][3]["reason"] == "no_record"
    shown = w.ok("history", "list").stdout
    assert "claim filed" in shown and "claim answered: issued" in shown
    assert "refused: no_record" in shown
    # After a cursor taken at the end: nothing new, claims included.
    again = w.json("history", "list", "--since", hist["cursor"])
    assert again["claims"] == [] and again["accesses"] == []
    # Without the service: the same claims, from the chain alone.
    alone = w.json("history", "list", DATASAFE_API="")
    assert [(r["event"], r["claim_id"]) for r in alone["claims"]] == want
    # Another member sees none of her claims.
    assert stack.bank.json("history", "list")["claims"] == []
