"""``datasafe directory``: registered names from the chain, with kind, status and your
nicknames; only the governor names; a service cannot add or change a name."""

from __future__ import annotations

from _stack import Stack, governor_wallet

from ledger import forwarder as fwd


def test_governor_names_citizen_lists_and_searches(stack: Stack) -> None:
    world = stack.world
    gov = governor_wallet(stack)
    named = gov.json("directory", "name", world.bank.address, "City Commercial Bank")
    assert named["name"] == "City Commercial Bank" and named["tx_hash"]
    gov.ok("directory", "name", world.issuer.address, "Municipal Tax Bureau")
    # not the governor: the forwarder refuses, nothing is named
    refused = stack.citizen.fails(2, "directory", "name", world.bank2.address, "Fake Bank")
    assert "only the governor" in refused
    rows = stack.citizen.json("directory", "list")
    by_name = {r["name"]: r for r in rows}
    assert by_name["City Commercial Bank"]["kind"] == "bank"
    assert by_name["City Commercial Bank"]["status"] == "active"
    assert by_name["City Commercial Bank"]["nicknames"] == ["citybank"]
    assert by_name["Municipal Tax Bureau"]["kind"] == "department"
    assert "Fake Bank" not in by_name
    found = stack.citizen.json("directory", "search", "tax", "BUREAU")
    assert [r["address"] for r in found] == [world.issuer.address]
    human = stack.citizen.ok("directory", "search", "city").stdout
    assert "City Commercial Bank" in human and "citybank" in human
    assert fwd.forwarder_address(world.ledger_address)  # the names' only source
