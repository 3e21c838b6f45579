"""POST /v1/forward: the service relays a member's own signed ForwardRequest and pays the
gas; it refuses others' requests, replays, expired requests and calls it does not carry."""

from __future__ import annotations

import os
from typing import Any

from _api_server import LiveServer, assert_problem
from _api_world import ENTERPRISE, SUBJECT, Actor, World

from api.client import DataSafeClient
from ledger import forwarder as fwd
from ledger.abi import ledger_abi


def _enterprise(world: World) -> Actor:
    firm = Actor("firm", "0x" + os.urandom(32).hex())  # no gas: it never pays
    world.admit(firm, SUBJECT, ENTERPRISE, bind_key=False)
    return firm


def _body(
    world: World,
    signer: Actor,
    data: bytes,
    *,
    sender: str | None = None,
    to: str | None = None,
    nonce: int | None = None,
    deadline: int | None = None,
) -> dict[str, Any]:
    forwarder = fwd.forwarder_address(world.ledger_address)
    frm = sender or signer.address
    if nonce is None:
        raw = world.w3.eth.call(
            {"to": forwarder, "data": fwd.forwarder_abi().fn("nonces").encode(frm)}
        )
        nonce = int.from_bytes(raw, "big")
    request = fwd.ForwardRequest(
        frm, to or world.ledger_address, nonce, deadline or world.now() + 600, data
    )
    sig = fwd.sign_request(signer.key_bytes, world.chain_id, forwarder, request)
    return {"request": request.to_json(), "signature": "0x" + sig.hex()}


def _add_agent(world: World, agent: Actor) -> bytes:
    return ledger_abi().fn("addAgent").encode(agent.address, world.now() + 86_400)


def test_forward_relays_and_refuses_a_replay(server: LiveServer, world: World) -> None:
    firm = _enterprise(world)
    body = _body(world, firm, _add_agent(world, world.bank))
    with DataSafeClient(server.url, firm.key) as c:
        out = c.post("/v1/forward", body)
        assert out["function"] == "addAgent" and out["sender"] == firm.address
        assert out["forwarder"] == fwd.forwarder_address(world.ledger_address)
        assert world.ledger.functions.isAgent(firm.address, world.bank.address).call()
        assert world.w3.eth.get_balance(firm.address) == 0
        assert_problem(
            c.request("POST", "/v1/forward", json_body=body), 409, "forward_nonce_invalid"
        )


def test_forward_refuses_anothers_request(server: LiveServer, world: World) -> None:
    firm = _enterprise(world)
    # Signed by the firm, sent by the bank: the service pays only for a caller's own request.
    body = _body(world, firm, _add_agent(world, world.bank))
    with DataSafeClient(server.url, world.bank.key) as c:
        assert_problem(
            c.request("POST", "/v1/forward", json_body=body), 403, "forward_signature_invalid"
        )
    # Claimed for the firm, signed by the bank.
    forged = _body(world, world.bank, _add_agent(world, world.bank), sender=firm.address)
    with DataSafeClient(server.url, firm.key) as c:
        assert_problem(
            c.request("POST", "/v1/forward", json_body=forged), 403, "forward_signature_invalid"
        )
    assert not world.ledger.functions.isAgent(firm.address, world.bank.address).call()


def test_forward_refuses_expired_other_calls_and_targets(server: LiveServer, world: World) -> None:
    firm = _enterprise(world)
    expired = _body(world, firm, _add_agent(world, world.bank), deadline=world.now() - 1)
    grant = ledger_abi().fn("revoke").encode(b"\x01" * 32)
    with DataSafeClient(server.url, firm.key) as c:
        assert_problem(c.request("POST", "/v1/forward", json_body=expired), 403, "forward_expired")
        not_carried = _body(world, firm, grant)
        assert_problem(
            c.request("POST", "/v1/forward", json_body=not_carried), 422, "invalid_request"
        )
        elsewhere = _body(world, firm, _add_agent(world, world.bank), to=world.bank.address)
        assert_problem(
            c.request("POST", "/v1/forward", json_body=elsewhere), 422, "invalid_request"
        )


def test_forward_passes_the_ledgers_refusal_back(server: LiveServer, world: World) -> None:
    firm = _enterprise(world)
    remove = ledger_abi().fn("removeAgent").encode(world.bank.address)  # not an agent
    with DataSafeClient(server.url, firm.key) as c:
        resp = c.request("POST", "/v1/forward", json_body=_body(world, firm, remove))
    assert resp.status_code == 409, resp.text
    assert resp.json()["contract_error"] == "MembershipNotAgent"
