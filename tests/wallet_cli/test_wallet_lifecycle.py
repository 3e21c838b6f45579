"""The lifecycle through the CLI (real stack, indexer running, PostgreSQL): a grant's
retention in the confirmation, ``datasafe institution inbox | recall | delete`` with the
refusals (a live grant, someone else's grant, a repeat) and the files deleted first."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from _stack import Stack

from api.client import DataSafeClient

DEADLINE_S = 30.0


@pytest.fixture(scope="module")
def stack(indexed_stack: Stack) -> Stack:
    return indexed_stack


def _grant(stack: Stack, aid: str, to: str, *extra: str) -> str:
    return str(
        stack.citizen.json(
            "grant", "create", "--asset", aid, "--to", to, "--fields", "name,income",
            "--purpose", "loan", "--days", "30", "--max-uses", "5", "--yes", *extra,
        )["grant_id"]
    )  # fmt: skip


def _inbox_until(stack: Stack, check: Any, *args: str) -> list[dict[str, Any]]:
    """Poll the bank's inbox until ``check(rows)`` holds (the indexer runs in the service)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        rows: list[dict[str, Any]] = stack.bank.json("institution", "inbox", *args)["owed"]
        if check(rows):
            return rows
        assert time.monotonic() < deadline, f"inbox never settled: {rows}"
        time.sleep(0.3)


def test_delete_and_recall_through_the_cli(stack: Stack, tmp_path: Path) -> None:
    aid = stack.issue("lifecycle")
    r = stack.citizen.run(
        "grant", "create", "--asset", aid, "--to", "citybank", "--fields", "name,income",
        "--purpose", "loan", "--days", "30", "--keep-days", "7", input="y\n",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    assert "deletes what it read within 7 day(s) of the grant's end" in r.stdout
    gid = _grant(stack, aid, "citybank")
    with DataSafeClient(stack.server.url, stack.world.bank2.key) as c:  # otherbank's key
        c.request("PUT", "/v1/members/me/key", json_body=stack.world.key_body(stack.world.bank2))
    other = _grant(stack, aid, "otherbank")
    out = tmp_path / "pulled"
    pulled = stack.bank.json("pull", gid, "--out", str(out))
    saved = Path(pulled["saved_to"])
    assert saved.exists()

    # A live grant: refused, and nothing deleted.
    assert "grant_live" in stack.bank.fails(3, "institution", "delete", gid, "--out", str(out))
    assert saved.exists()
    # Someone else's grant, and a recall that is not owed.
    assert "not_grantee" in stack.bank.fails(3, "institution", "recall", other)
    assert "not_recalled" in stack.bank.fails(3, "institution", "recall", gid)

    # The department corrects the record: the inbox shows the recall, then it is acknowledged.
    world = stack.world
    world.transact(
        world.issuer, "supersedeAsset", bytes.fromhex(aid[2:]), b"\x99" * 32, b"\1" * 32, b"\2" * 32
    )
    rows = _inbox_until(stack, lambda rows: any(r["grant_id"] == gid for r in rows))
    (row,) = [r for r in rows if r["grant_id"] == gid]
    assert row["recalled_at"] is not None and row["uses"] == 1
    # The regulator's view of that institution: the recall waiting, with its age.
    seen = stack.regulator.json("institution", "owed", "--institution", world.bank.address)["owed"]
    assert [r["recall_age"] is not None for r in seen if r["grant_id"] == gid] == [True]
    assert "role_required" in stack.citizen.fails(3, "institution", "recall", gid)
    done = stack.bank.json("institution", "recall", gid)
    assert (done["kind"], done["uses"]) == ("recall", 1)
    assert "already_acknowledged" in stack.bank.fails(3, "institution", "recall", gid)

    # The subject revokes: the bank deletes its files, then acknowledges; once only.
    stack.citizen.ok("grant", "revoke", gid, "--yes")
    deleted = stack.bank.json("institution", "delete", gid, "--out", str(out))
    assert deleted["deleted"] == [str(saved)] and not saved.exists()
    assert "already_acknowledged" in stack.bank.fails(
        3, "institution", "delete", gid, "--out", str(out)
    )
    _inbox_until(stack, lambda rows: all(r["grant_id"] != gid for r in rows))
    settled = _inbox_until(
        stack,
        lambda rows: any(r["grant_id"] == gid and r["deletion_acknowledged_at"] for r in rows),
        "--all",
    )
    (row,) = [r for r in settled if r["grant_id"] == gid]
    assert row["recall_acknowledged_at"] and row["deletion_acknowledged_at"]
    # The subject's history: told of the correction, and the acknowledgements.
    deadline = time.monotonic() + DEADLINE_S
    while True:
        shown = stack.citizen.ok("history", "list").stdout
        if "deleted, acknowledged" in shown:
            break
        assert time.monotonic() < deadline, shown
        time.sleep(0.3)
    assert "told of correction" in shown and "correction acknowledged" in shown
