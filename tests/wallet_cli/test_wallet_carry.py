"""``datasafe grant carry`` through the CLI, on SQLite and PostgreSQL: a grant on a corrected
version is carried to the new one only with the subject's new signature (one confirmation),
with the same terms and the reads left; the old grant is revoked. Refusals (not superseded,
someone else's grant, a grant no longer live, an unknown grant, a cancel) change nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _stack import VALUES, Stack

from ledger.models import GrantStatus

CORRECTED = [*VALUES[:3], "195000", VALUES[4]]


def _grant(stack: Stack, aid: str, *extra: str) -> str:
    return str(
        stack.citizen.json(
            "grant", "create", "--asset", aid, "--to", "citybank", "--fields", "name,income",
            "--purpose", "loan", "--days", "30", "--max-uses", "3", "--keep-days", "7", "--yes",
            *extra,
        )["grant_id"]
    )  # fmt: skip


def _unchanged(stack: Stack) -> tuple[Any, ...]:
    """What a refused carry must not change: the grants served, the nonce, the chain head."""
    world = stack.world
    grants = json.dumps(stack.citizen.json("grant", "list"), sort_keys=True)
    nonce = world.ledger.functions.nonces(world.citizen.address).call()
    return grants, nonce, world.w3.eth.block_number


def _on_chain(stack: Stack, gid: str) -> Any:
    return stack.world.ledger.functions.getGrant(bytes.fromhex(gid[2:])).call()


def test_carry_signs_a_new_grant_and_revokes_the_old(any_db_stack: Stack, tmp_path: Path) -> None:
    stack, w = any_db_stack, any_db_stack.citizen
    aid = stack.issue("carry")
    gid = _grant(stack, aid)
    dead = _grant(stack, aid)
    w.ok("grant", "revoke", dead, "--yes")
    stack.bank.json("pull", gid, "--out", str(tmp_path / "v1"))

    before = _unchanged(stack)
    assert "asset_not_superseded" in w.fails(3, "grant", "carry", gid, "--yes")
    assert _unchanged(stack) == before

    new_aid = stack.publish_version(aid, CORRECTED)
    before = _unchanged(stack)
    assert "grant_not_active" in w.fails(3, "grant", "carry", dead, "--yes")
    assert "not_your_grant" in stack.bank.fails(3, "grant", "carry", gid, "--yes")
    assert "grant_not_found" in w.fails(3, "grant", "carry", "0x" + "ab" * 32, "--yes")
    assert "--yes" in w.fails(2, "--json", "grant", "carry", gid)
    no = w.run("grant", "carry", gid, input="n\n")
    assert no.exit_code == 2 and "cancelled" in no.stderr
    assert _unchanged(stack) == before

    # One confirmation: a second question would meet the end of the input and abort.
    r = w.run("grant", "carry", gid, input="y\n")
    assert r.exit_code == 0, r.stderr
    assert "version 1" in r.stdout and "version 2" in r.stdout
    assert "1 of its 3 read(s) are used: 2 are carried" in r.stdout
    assert "within 7 day(s)" in r.stdout

    old = _on_chain(stack, gid)
    assert GrantStatus(old[8]) == GrantStatus.REVOKED
    (carried,) = [g for g in w.json("grant", "list") if g["asset_id"] == new_aid]
    new = _on_chain(stack, carried["grant_id"])
    # asset, grantee, purpose, mask, not-before, expiry: carried; max uses: the reads left.
    assert new[0].hex() == new_aid[2:]
    assert new[1:6] == old[1:6] and new[6] == 2 and new[9] == old[9] == 7 * 86_400
    assert GrantStatus(new[8]) == GrantStatus.ACTIVE
    receipt = next(
        json.loads(p.read_text())
        for p in (w.home / "profiles" / "li").rglob("*.json")
        if carried["grant_id"] in p.read_text() and "carried_from" in p.read_text()
    )
    assert receipt["carried_from"] == gid and receipt["old_revoked"]["grant_id"] == gid

    pulled = stack.bank.json("pull", carried["grant_id"], "--out", str(tmp_path / "v2"))
    assert pulled["fields"] == {"name": VALUES[0], "income": "195000"}
    # Carried once: the old grant is revoked now.
    assert "grant_not_active" in w.fails(3, "grant", "carry", gid, "--yes")
