"""``datasafe claims`` in a real process-less CLI run against the real service and chain, on
SQLite and PostgreSQL: a citizen lists what she can claim, files two claims; the department
works its queue (fulfils one with the record it issued, refuses the other); refusals exit
with their codes and change nothing."""

from __future__ import annotations

from _claims import department as _department
from _claims import until as _until
from _stack import Stack


def test_claim_story_through_the_cli(claims_stack: Stack) -> None:
    stack, w = claims_stack, claims_stack.citizen
    dept = _department(stack)
    schema = "0x" + stack.schema_id.hex()
    available = w.json("claims", "available")
    assert {"schema_id": schema, "department": stack.world.issuer.address, "field_count": 4} in [
        dict(a, field_count=4) for a in available if a["schema_id"] == schema
    ]
    first = w.json("claims", "file", "taxbureau", schema, "--reference", "BC-2025-0042")
    second = w.json("claims", "file", "taxbureau", schema, "--reference", "BC-2025-0043")
    assert first["status"] == "open" and first["department"] == stack.world.issuer.address
    queue = _until(lambda: dept.json("claims", "queue"), lambda rows: len(rows) == 2)
    assert {r["claim_id"] for r in queue} == {first["claim_id"], second["claim_id"]}
    asset = stack.issue("claimed", owner=stack.world.citizen)
    done = dept.json("claims", "fulfil", first["claim_id"], asset)
    assert done["status"] == "fulfilled" and done["asset_id"] == asset
    refused = dept.json(
        "claims", "refuse", second["claim_id"], "--code", "no_record", "--reason", "not found"
    )
    assert refused["status"] == "refused" and refused["reason"] == "no_record"
    # Refusals: answered twice, an unknown reason, another department's claim, a non-subject.
    assert "ClaimsNotOpen" in dept.fails(3, "claims", "fulfil", first["claim_id"], asset)
    assert "unknown reason code" in dept.fails(
        2, "claims", "refuse", second["claim_id"], "--code", "because"
    )
    assert "role_required" in stack.bank.fails(
        3, "claims", "file", stack.world.issuer.address, schema, "--reference", "x"
    )
    assert "claim_rejected" in w.fails(
        3, "claims", "file", stack.world.issuer2.address, schema, "--reference", "x"
    )
    mine = _until(
        lambda: w.json("claims", "list"),
        lambda rows: sorted(r["status"] for r in rows) == ["fulfilled", "refused"],
    )
    assert {r["claim_id"]: r["status"] for r in mine} == {
        first["claim_id"]: "fulfilled",
        second["claim_id"]: "refused",
    }

    # The regulator: per department, outstanding claims and how long answers took, from the
    # chain's logs (the service's figures agree, or it is drift).
    third = w.json("claims", "file", "taxbureau", schema, "--reference", "BC-2025-0044")
    got = stack.regulator.json("claims", "stats")
    assert got["checked_on_chain"] is True
    (row,) = got["departments"]
    assert row["department"] == stack.world.issuer.address.lower()
    assert (row["filed"], row["open"], row["fulfilled"], row["refused"]) == (3, 1, 1, 1)
    assert row["oldest_open_at"] == third["filed_at"] and row["oldest_open_age"] >= 0
    assert row["max_seconds_to_close"] >= row["mean_seconds_to_close"] >= 0
    shown = stack.regulator.ok("claims", "stats").stdout
    assert "1 issued, 1 refused" in shown
    assert "role_required" in w.fails(3, "claims", "stats")
