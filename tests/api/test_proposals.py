"""Issue 18 over HTTP (SQLite and PostgreSQL): an enterprise's 2-of-3 grant proposal.

A live agent proposes with its own approval, another approves and the service relays
``grantWithApprovals``; a removed agent's approval stops counting at once; a second approval
by the same agent, a signature that is not the caller's and a non-agent are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from _api_seed import SeededAsset, approval_signature, proposal_payload, seed_asset
from _api_server import LiveServer, assert_problem
from _api_world import ENTERPRISE, INDIVIDUAL, SUBJECT, Actor, World
from eth_hash.auto import keccak

from api.client import DataSafeClient
from ledger.models import ANY_PURPOSE


@dataclass
class Acme:
    enterprise: Actor
    agents: list[Actor]
    asset: SeededAsset


def _actor(world: World, name: str, roles: int, kind: int) -> Actor:
    actor = Actor(name, "0x" + keccak(name.encode() + world.snapshot().encode()).hex())
    world.w3.provider.make_request("anvil_setBalance", [actor.address, hex(10**20)])
    world.admit(actor, roles, kind)
    return actor


@pytest.fixture
def acme(world: World, db_url: str) -> Acme:
    enterprise = _actor(world, "acme", SUBJECT, ENTERPRISE)
    agents = [_actor(world, f"officer {i}", SUBJECT, INDIVIDUAL) for i in range(3)]
    for a in agents:
        world.transact(enterprise, "addAgent", a.address, world.now() + 86_400)
    world.transact(enterprise, "setApprovalThreshold", ANY_PURPOSE, 2)
    return Acme(enterprise, agents, seed_asset(world, db_url, owner=enterprise))


RETENTION = 30 * 86_400


def _approval(world: World, acme: Acme, agent: Actor, proposal: dict[str, Any]) -> str:
    return approval_signature(world, agent, acme.enterprise, proposal)


def _propose(c: DataSafeClient, world: World, acme: Acme, agent: Actor) -> Any:
    body = proposal_payload(world, agent, acme.enterprise, acme.asset, RETENTION)
    return c.request("POST", "/v1/proposals", json_body=body)


def _approve(c: DataSafeClient, world: World, acme: Acme, agent: Actor, p: dict[str, Any]) -> Any:
    sig = _approval(world, acme, agent, p)
    return c.request(
        "POST", f"/v1/proposals/{p['proposal_id']}/approvals", json_body={"signature": sig}
    )


def _on_chain_status(world: World, gid: str) -> int:
    return int(world.ledger.functions.getGrant(bytes.fromhex(gid[2:])).call()[8])


def test_two_of_three_approve_then_grant(server: LiveServer, world: World, acme: Acme) -> None:
    first, second, third = acme.agents
    with DataSafeClient(server.url, first.key) as c:
        resp = _propose(c, world, acme, first)
        assert resp.status_code == 201, resp.text
        proposal = resp.json()
    assert proposal["status"] == "pending" and proposal["needed"] == 2
    assert [(a["agent"].lower(), a["counts"]) for a in proposal["approvals"]] == [
        (first.address.lower(), True)
    ]
    gid = proposal["proposal_id"]
    assert _on_chain_status(world, gid) == 0  # nothing on chain with one approval

    with DataSafeClient(server.url, second.key) as c:
        resp = _approve(c, world, acme, second, proposal)
        assert resp.status_code == 200, resp.text
        done = resp.json()
    assert done["status"] == "granted" and done["tx_hash"]
    assert _on_chain_status(world, gid) == 1  # ACTIVE
    on_chain = world.ledger.functions.getGrant(bytes.fromhex(gid[2:])).call()
    assert on_chain[9] == RETENTION  # the proposal's retention reached the chain, signed

    # the enterprise and any live agent see it; the bank does not
    for who in (acme.enterprise, third):
        with DataSafeClient(server.url, who.key) as c:
            listed = c.get("/v1/proposals", params={"enterprise": acme.enterprise.address})
            assert [p["proposal_id"] for p in listed] == [gid]
            assert c.get(f"/v1/proposals/{gid}")["status"] == "granted"
    with DataSafeClient(server.url, world.bank.key) as c:
        assert_problem(
            c.request("GET", "/v1/proposals", params={"enterprise": acme.enterprise.address}),
            403,
            "forbidden",
        )
        assert_problem(c.request("GET", f"/v1/proposals/{gid}"), 403, "forbidden")
    # closed: a third approval changes nothing
    with DataSafeClient(server.url, third.key) as c:
        assert_problem(_approve(c, world, acme, third, proposal), 409, "proposal_closed")


def test_a_removed_agents_approval_no_longer_counts(
    server: LiveServer, world: World, acme: Acme
) -> None:
    first, second, third = acme.agents
    with DataSafeClient(server.url, first.key) as c:
        proposal = _propose(c, world, acme, first).json()
    world.transact(acme.enterprise, "removeAgent", first.address)
    with DataSafeClient(server.url, second.key) as c:
        resp = _approve(c, world, acme, second, proposal)
        assert resp.status_code == 200, resp.text
        after = resp.json()
    assert after["status"] == "pending"
    counts = {a["agent"].lower(): a["counts"] for a in after["approvals"]}
    assert counts == {first.address.lower(): False, second.address.lower(): True}
    assert _on_chain_status(world, proposal["proposal_id"]) == 0
    # the removed agent can no longer approve at all
    with DataSafeClient(server.url, first.key) as c:
        assert_problem(_approve(c, world, acme, first, proposal), 403, "not_agent")
    with DataSafeClient(server.url, third.key) as c:
        assert _approve(c, world, acme, third, proposal).json()["status"] == "granted"
    assert _on_chain_status(world, proposal["proposal_id"]) == 1


def test_refusals_change_nothing(server: LiveServer, world: World, acme: Acme) -> None:
    first, second, third = acme.agents
    with DataSafeClient(server.url, first.key) as c:
        proposal = _propose(c, world, acme, first).json()
        # the same agent twice
        assert_problem(_approve(c, world, acme, first, proposal), 409, "approval_exists")
        assert_problem(
            c.request(
                "POST",
                f"/v1/proposals/0x{'00' * 32}/approvals",
                json_body={"signature": _approval(world, acme, first, proposal)},
            ),
            404,
            "proposal_not_found",
        )
    # a signature that is not the caller's
    with DataSafeClient(server.url, third.key) as c:
        sig = _approval(world, acme, second, proposal)
        resp = c.request(
            "POST",
            f"/v1/proposals/{proposal['proposal_id']}/approvals",
            json_body={"signature": sig},
        )
        assert_problem(resp, 422, "approval_signature_invalid")
    # neither the enterprise's own key nor a stranger approves or proposes
    for who in (acme.enterprise, world.bank):
        with DataSafeClient(server.url, who.key) as c:
            assert_problem(_approve(c, world, acme, who, proposal), 403, "not_agent")
            assert_problem(_propose(c, world, acme, who), 403, "not_agent")
    with DataSafeClient(server.url, second.key) as c:
        again = c.get(f"/v1/proposals/{proposal['proposal_id']}")
    assert [a["agent"].lower() for a in again["approvals"]] == [first.address.lower()]
    assert again["status"] == "pending"


def test_listing_is_paginated(server: LiveServer, world: World, acme: Acme) -> None:
    first = acme.agents[0]
    with DataSafeClient(server.url, first.key) as c:
        ids = [_propose(c, world, acme, first).json()["proposal_id"] for _ in range(3)]
        seen: list[str] = []
        resp = c.request(
            "GET", "/v1/proposals", params={"enterprise": acme.enterprise.address, "limit": 2}
        )
        seen += [p["proposal_id"] for p in resp.json()]
        cursor = resp.headers["X-Next-Cursor"]
        resp = c.request(
            "GET",
            "/v1/proposals",
            params={"enterprise": acme.enterprise.address, "limit": 2, "cursor": cursor},
        )
        seen += [p["proposal_id"] for p in resp.json()]
        assert sorted(seen) == sorted(ids) and len(seen) == 3
        assert_problem(
            c.request(
                "GET", "/v1/proposals", params={"enterprise": acme.enterprise.address, "limit": 0}
            ),
            422,
            "invalid_request",
        )
