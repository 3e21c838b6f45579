"""Every refusal is one clear line, a distinct exit code, and changes nothing.

Exit codes: 2 user error, 3 refused by the service or the ledger, 4 unreachable.
The on-chain expiry test moves the chain's clock (and reverts it), so it runs last here.
"""

from __future__ import annotations

import json
from pathlib import Path

from _api_server import free_port
from _stack import Stack


def _snapshot(stack: Stack) -> tuple[object, ...]:
    """What a refused command must not change: grants served, receipts, the signer's nonce."""
    grants = stack.citizen.json("grant", "list")
    receipts = sorted(p.name for p in (stack.citizen.home / "profiles" / "li").rglob("*.json"))
    nonce = stack.world.ledger.functions.nonces(stack.world.citizen.address).call()
    block = stack.world.w3.eth.block_number
    return json.dumps(grants, sort_keys=True), receipts, nonce, block


def _grant_args(aid: str, **over: str) -> list[str]:
    args = {
        "--asset": aid,
        "--to": "citybank",
        "--fields": "name,income",
        "--purpose": "loan",
        "--days": "1",
    } | over
    return ["grant", "create", *[x for kv in args.items() for x in kv], "--yes"]


def test_user_errors_change_nothing(stack: Stack) -> None:
    aid = stack.issue("refusals")
    before = _snapshot(stack)
    w = stack.citizen
    line = w.fails(2, *_grant_args(aid, **{"--to": "nobank"}))
    assert "unknown institution 'nobank'" in line
    line = w.fails(2, *_grant_args(aid, **{"--to": stack.world.outsider.address}))
    assert "is not a member of the ledger" in line
    line = w.fails(2, *_grant_args(aid, **{"--to": "taxbureau"}))
    assert "not a consumer" in line
    line = w.fails(2, *_grant_args(aid, **{"--fields": "name,salary"}))
    assert "no field 'salary'" in line and "its fields are: name, id_number" in line
    args = _grant_args(aid)
    args[args.index("--days") : args.index("--days") + 2] = ["--until", "2020-01-01"]
    assert "in the past" in w.fails(2, *args)
    assert "unknown purpose" in w.fails(2, *_grant_args(aid, **{"--purpose": "gambling"}))
    assert "0x + 64 hex" in w.fails(2, *_grant_args("0x1234"))
    assert "asset_not_found" in w.fails(2, *_grant_args("0x" + "ab" * 32))
    assert "wrong passphrase" in w.fails(2, *_grant_args(aid), DATASAFE_PASSPHRASE="nope")
    assert "add --yes" in w.fails(2, "--json", *_grant_args(aid)[:-1])
    assert _snapshot(stack) == before


def test_unreachable_service_and_chain(stack: Stack, tmp_path: Path) -> None:
    aid = stack.issue("unreachable")
    before = _snapshot(stack)
    dead = f"http://127.0.0.1:{free_port()}"
    for args in (["data", "list"], _grant_args(aid), ["grant", "list"]):
        line = stack.citizen.fails(4, "--api", dead, *args)
        assert "service unreachable at http://127.0.0.1" in line
    line = stack.citizen.fails(4, "--rpc", dead, *_grant_args(aid))
    assert "chain RPC unreachable" in line
    assert "unreachable" in stack.bank.fails(
        4, "--api", dead, "pull", "0x" + "11" * 32, "--out", str(tmp_path)
    )
    # --json: the error is also a JSON document on stdout
    r = stack.citizen.run("--json", "--api", dead, "data", "list")
    assert r.exit_code == 4 and json.loads(r.stdout)["error"]["code"] == "service_unreachable"
    assert _snapshot(stack) == before
    assert not list(tmp_path.iterdir())


def test_refused_by_the_ledger(stack: Stack, tmp_path: Path) -> None:
    aid = stack.issue("refused")
    gid = stack.citizen.json(*_grant_args(aid, **{"--max-uses": "1"}))["grant_id"]
    stack.bank.ok("pull", gid, "--out", str(tmp_path))
    # one use only: the chain refuses the second pull, with its reason, and nothing is saved
    files = sorted(tmp_path.iterdir())
    assert "uses_exhausted" in stack.bank.fails(3, "pull", gid, "--out", str(tmp_path))
    assert sorted(tmp_path.iterdir()) == files
    r = stack.bank.run("--json", "verify", gid)
    assert r.exit_code == 3 and json.loads(r.stdout)["error"]["code"] == "uses_exhausted"
    listed = {g["grant_id"]: g for g in stack.citizen.json("grant", "list")}
    assert listed[gid]["status"] == "uses_exhausted" and listed[gid]["uses"] == 1
    # the regulator may read, never act
    assert stack.regulator.run("grant", "revoke", gid, "--yes").exit_code == 3


def test_history_without_chain_needs_the_service_index(stack: Stack) -> None:
    """Without --rpc the tracker comes from the service's event index; this stack runs none."""
    line = stack.citizen.fails(4, "--no-chain", "history", "list")
    assert "not_ready" in line and "indexer" in line
    # --follow streams the service's events (GET /v1/me/events): no index, same refusal
    line = stack.citizen.fails(4, "--no-chain", "history", "list", "--follow")
    assert "not_ready" in line


def test_expired_grant_is_refused_last(stack: Stack, tmp_path: Path) -> None:
    aid = stack.issue("expiry")
    gid = stack.citizen.json(*_grant_args(aid))["grant_id"]
    assert stack.bank.json("verify", gid)["allowed"] is True
    # the chain is shared with the rest of the session: move its clock, then put it back
    snap = stack.world.snapshot()
    stack.world.advance(2 * 86_400)
    try:
        assert "grant_expired" in stack.bank.fails(3, "verify", gid)
        assert "grant_expired" in stack.bank.fails(3, "pull", gid, "--out", str(tmp_path))
        assert not list(tmp_path.iterdir())
        listed = {g["grant_id"]: g for g in stack.citizen.json("grant", "list")}
        assert listed[gid]["status"] == "expired"
    finally:
        stack.world.revert(snap)
