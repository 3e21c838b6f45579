"""Issue 18 in the wallet (service on SQLite and PostgreSQL): an enterprise sets a 2-of-3
policy, an officer's proposal is shown with who approved (checked on the chain), a second
officer approves and the grant lands; a removed officer's approval stops counting; a service
that attributes an approval to the wrong officer is caught."""

from __future__ import annotations

import sqlalchemy as sa
from _firms import make_firm, profile, propose
from _stack import Stack

from api.db import grant_approvals, make_engine


def test_two_of_three_approve_in_the_wallet(any_db_stack: Stack) -> None:
    stack, w = any_db_stack, any_db_stack.citizen
    firm = make_firm(stack)
    first, second, _ = firm.officers
    pid = propose(stack, firm, first)

    shown = w.json("-p", profile(firm, 1), "proposal", "show", pid)
    assert shown["approved_by"] == [first.address] and shown["needed"] == 2
    assert shown["proposer"].lower() == first.address.lower() and shown["status"] == "pending"
    listed = w.json("-p", profile(firm, 2), "proposal", "list", "--for", firm.actor.address)
    assert [p["proposal_id"] for p in listed] == [pid]

    # the usual confirmation: declining signs and sends nothing
    r = w.run("-p", profile(firm, 1), "proposal", "approve", pid, input="n\n")
    assert r.exit_code == 2 and "cancelled" in r.stderr
    human = w.ok("-p", profile(firm, 1), "proposal", "approve", pid, input="y\n").stdout
    assert "2 of 2 (checked on the chain)" in human and "granted" in human
    assert stack.world.ledger.functions.getGrant(bytes.fromhex(pid[2:])).call()[8] == 1
    after = w.json("-p", profile(firm, 0), "proposal", "show", pid)
    assert sorted(after["approved_by"]) == sorted([first.address, second.address])


def test_a_removed_officers_approval_no_longer_counts(any_db_stack: Stack) -> None:
    stack, w = any_db_stack, any_db_stack.citizen
    firm = make_firm(stack)
    first = firm.officers[0]
    pid = propose(stack, firm, first)
    w.ok("-p", f"firm-{firm.actor.name.split()[1]}", "agent", "remove", first.address)
    shown = w.json("-p", profile(firm, 1), "proposal", "show", pid)
    assert shown["approved_by"] == []
    assert [s["agent"] for s in shown["not_counting"]] == [first.address]
    assert "earlier epoch" in shown["not_counting"][0]["why"]


def test_a_service_lying_about_approvals_is_caught(any_db_stack: Stack) -> None:
    stack, w = any_db_stack, any_db_stack.citizen
    firm = make_firm(stack)
    first, second, third = firm.officers
    pid = propose(stack, firm, first)
    # The operator edits its table: the first officer's signature now reads as the second's.
    engine = make_engine(stack.server.settings.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.update(grant_approvals)
                .where(grant_approvals.c.proposal_id == pid)
                .values(agent=second.address.lower())
            )
    finally:
        engine.dispose()
    line = w.fails(6, "-p", profile(firm, 2), "proposal", "show", pid)
    assert second.address in line
    # and approving on top of the lie is refused before anything is signed
    w.fails(6, "-p", profile(firm, 2), "proposal", "approve", pid, "--yes")
    assert stack.world.ledger.functions.getGrant(bytes.fromhex(pid[2:])).call()[8] == 0
    assert third.address  # the third officer signed nothing
