"""``datasafe grant carry`` against a lying service: the new grant and the old grant's
revocation are each believed only once the chain shows them, and the old grant is revoked
only after the new one is on chain (a carry never leaves the institution with neither)."""

from __future__ import annotations

import json
import os
from typing import Any

from _liar import LyingProxy
from _stack import VALUES, Stack

from ledger.client import LedgerClient
from ledger.models import GrantStatus
from wallet_cli.errors import EXIT_NOT_CONFIRMED


def _superseded_grant(stack: Stack, tag: str) -> tuple[str, str]:
    aid = stack.issue(tag)
    gid = stack.citizen.json(
        "grant", "create", "--asset", aid, "--to", "citybank", "--fields", "name,income",
        "--purpose", "loan", "--days", "30", "--yes",
    )["grant_id"]  # fmt: skip
    return str(gid), stack.publish_version(aid, [*VALUES[:3], "1", VALUES[4]])


def _grants_on(stack: Stack, aid: str) -> list[Any]:
    return [g for g in stack.citizen.json("grant", "list") if g["asset_id"] == aid]


def _status(stack: Stack, gid: str) -> GrantStatus:
    with LedgerClient(stack.rpc, stack.world.ledger_address) as lc:
        return lc.get_grant(bytes.fromhex(gid[2:])).status


def _carry(stack: Stack, liar: LyingProxy, gid: str) -> dict[str, Any]:
    r = stack.citizen.run(
        "--json", "grant", "carry", gid, "--yes",
        DATASAFE_API=liar.url, DATASAFE_CONFIRM_TIMEOUT="1",
    )  # fmt: skip
    assert r.exit_code == EXIT_NOT_CONFIRMED, r.stdout + r.stderr
    return dict(json.loads(r.stdout.strip().splitlines()[-1])["error"])


def _fake(_m: str, path: str, _q: str, _b: bytes) -> dict[str, Any]:
    return {"grant_id": "0x" + os.urandom(32).hex(), "status": "active",
            "tx_hash": "0x" + os.urandom(32).hex(), "block": 1}  # fmt: skip


def test_swallowed_new_grant_leaves_the_old_one_alone(stack: Stack, liar: LyingProxy) -> None:
    gid, new_aid = _superseded_grant(stack, "carry-swallowed-grant")
    liar.intercept("POST", "/v1/grants", _fake)
    err = _carry(stack, liar, gid)
    assert err["code"] == "not_confirmed" and "with the terms you signed" in err["message"]
    assert _status(stack, gid) == GrantStatus.ACTIVE  # not revoked: no new grant to replace it
    assert _grants_on(stack, new_aid) == []


def test_swallowed_revocation_of_the_old_grant_is_caught(stack: Stack, liar: LyingProxy) -> None:
    gid, new_aid = _superseded_grant(stack, "carry-swallowed-revoke")
    liar.intercept("POST", rf"/v1/grants/{gid}/revoke", _fake)
    err = _carry(stack, liar, gid)
    assert err["code"] == "not_confirmed"
    assert "the new grant is on chain, but the old one is not revoked" in err["message"]
    assert f"datasafe grant revoke {gid} --direct" in err["message"]
    assert _status(stack, gid) == GrantStatus.ACTIVE
    (new,) = _grants_on(stack, new_aid)
    assert _status(stack, new["grant_id"]) == GrantStatus.ACTIVE
