"""A citizen and an enterprise whose accounts hold no gas at all complete every citizen
command: key registration and rotation, grant, pause, resume, revoke, dispute, agent
changes and history — each relayed by the service, each confirmed on chain by the wallet."""

from __future__ import annotations

import os
from pathlib import Path

from _api_world import ENTERPRISE, INDIVIDUAL, SUBJECT, Actor
from _stack import Stack


def _penniless(stack: Stack, name: str, kind: int) -> Actor:
    actor = Actor(name, "0x" + os.urandom(32).hex())
    stack.world.admit(actor, SUBJECT, kind, bind_key=False)
    assert stack.world.w3.eth.get_balance(actor.address) == 0
    return actor


def _untouched(stack: Stack, actor: Actor) -> None:
    """No gas spent and no transaction of its own: everything went through relays."""
    w3 = stack.world.w3
    assert w3.eth.get_balance(actor.address) == 0
    assert w3.eth.get_transaction_count(actor.address) == 0


def test_citizen_with_zero_balance_does_everything(stack: Stack, tmp_path: Path) -> None:
    mei = _penniless(stack, "mei", INDIVIDUAL)
    w = stack.citizen
    w.ok("account", "import", "mei", "--kind", "individual", DATASAFE_IMPORT_KEY=mei.key)
    registered = w.json("-p", "mei", "account", "register-key")
    assert registered["key_version"] == 1
    aid = stack.issue("penniless", owner=mei)
    gid = w.json(
        "-p", "mei", "grant", "create", "--asset", aid, "--to", "citybank",
        "--fields", "income", "--purpose", "loan", "--days", "7", "--yes",
    )["grant_id"]  # fmt: skip
    assert w.json("-p", "mei", "grant", "pause", gid, "--yes")["status"] == "paused"
    assert w.json("-p", "mei", "grant", "resume", gid, "--yes")["status"] == "active"
    pulled = stack.bank.json("pull", gid, "--out", str(tmp_path))
    assert pulled["fields"] == {"income": "182000"}
    history = w.json("-p", "mei", "history", "list")
    assert any(r["grant_id"] == gid for r in history["accesses"])
    assert w.json("-p", "mei", "grant", "revoke", gid, "--yes")["status"] == "revoked"
    rotated = w.json("-p", "mei", "account", "rotate-key")
    assert rotated["key_version"] == 2
    disputed = w.json("-p", "mei", "data", "dispute", aid, "--reason", "income is wrong")
    assert disputed["status"] == "disputed" and disputed["confirmed_on_chain"] is True
    status = w.json("-p", "mei", "data", "status", aid)
    assert [e["event"] for e in status["events"]] == ["AssetDisputed"]
    _untouched(stack, mei)


def test_enterprise_with_zero_balance_changes_agents(stack: Stack) -> None:
    world = stack.world
    firm = _penniless(stack, "firm", ENTERPRISE)
    w = stack.citizen
    w.ok("account", "import", "firm", "--kind", "enterprise", DATASAFE_IMPORT_KEY=firm.key)
    w.ok("-p", "firm", "account", "register-key")
    added = w.json("-p", "firm", "agent", "add", "li", "--days", "30")
    assert added["via"] == "forwarder" and added["agent"] == world.citizen.address
    assert world.ledger.functions.isAgent(firm.address, world.citizen.address).call()
    w.ok("-p", "firm", "agent", "remove", "li")
    assert world.ledger.functions.agentExpiry(firm.address, world.citizen.address).call() == 0
    # removing an agent that is not one: the ledger's refusal, relayed back, nothing paid
    assert "MembershipNotAgent" in w.fails(3, "-p", "firm", "agent", "remove", "li")
    _untouched(stack, firm)
