"""Interactive confirmation, pause/resume, dispute and resolution, key rotation, enterprise
agents, and ``history --follow`` — through the CLI against the real stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from _api_world import ENTERPRISE, SUBJECT
from _stack import Stack
from eth_hash.auto import keccak

from vault.keys import EncryptionKeyPair


def _grant(stack: Stack, aid: str, *extra: str) -> str:
    return str(
        stack.citizen.json(
            "grant",
            "create",
            "--asset",
            aid,
            "--to",
            "citybank",
            "--fields",
            "income",
            "--purpose",
            "2",
            "--days",
            "7",
            "--yes",
            *extra,
        )["grant_id"]
    )


def test_interactive_confirmation(stack: Stack) -> None:
    aid = stack.issue("confirm")
    receipts = stack.citizen.home / "profiles" / "li" / "receipts"
    before = sorted(receipts.iterdir()) if receipts.exists() else []
    args = (
        "grant",
        "create",
        "--asset",
        aid,
        "--to",
        "citybank",
        "--fields",
        "name,employer",
        "--purpose",
        "account opening",
        "--until",
        "2099-12-31",
        "--max-uses",
        "0",
    )
    r = stack.citizen.run(*args, input="n\n")
    assert r.exit_code == 2 and "cancelled" in r.stderr
    assert "citybank" in r.stdout and "name, employer" in r.stdout
    assert "account opening (KYC)" in r.stdout and "without a limit on reads" in r.stdout
    assert "Not shared: id_number, address, income." in r.stdout
    assert (sorted(receipts.iterdir()) if receipts.exists() else []) == before
    r = stack.citizen.run(*args, input="y\n")
    assert r.exit_code == 0, r.stderr
    assert "Consent receipt" in r.stdout and "2099-12-31" in r.stdout


def test_pause_resume(stack: Stack) -> None:
    gid = _grant(stack, stack.issue("pause"))
    assert stack.citizen.json("grant", "pause", gid, "--yes")["status"] == "paused"
    assert "grant_paused" in stack.bank.fails(3, "verify", gid)
    assert stack.citizen.json("grant", "resume", gid, "--yes")["status"] == "active"
    assert stack.bank.json("verify", gid)["allowed"] is True
    shown = stack.citizen.json("grant", "show", gid)
    assert shown["grant"]["status"] == "active" and shown["receipt"]["grant_id"] == gid
    # the bank is not the owner: it cannot revoke, and nothing changes
    assert "not_owner" in stack.bank.fails(3, "grant", "revoke", gid, "--yes")
    assert stack.bank.json("verify", gid)["allowed"] is True


def test_dispute_and_resolution(stack: Stack) -> None:
    aid = stack.issue("dispute")
    out = stack.citizen.json("data", "dispute", aid, "--reason", "income for 2024 is wrong")
    assert out["status"] == "disputed"
    assert out["reason_hash"] == "0x" + keccak(b"income for 2024 is wrong").hex()
    status = stack.citizen.json("data", "status", aid)
    assert status["status"] == "disputed" and [e["event"] for e in status["events"]] == [
        "AssetDisputed"
    ]
    # a disputed asset cannot be shared
    assert "is disputed; it cannot be shared" in stack.citizen.fails(
        3,
        "grant",
        "create",
        "--asset",
        aid,
        "--to",
        "citybank",
        "--fields",
        "income",
        "--purpose",
        "1",
        "--days",
        "1",
        "--yes",
    )
    stack.world.transact(
        stack.world.issuer, "resolveDispute", bytes.fromhex(aid[2:]), keccak(b"corrected")
    )
    status = stack.citizen.json("data", "status", aid)
    assert status["status"] == "active"
    assert [e["event"] for e in status["events"]] == ["AssetDisputed", "DisputeResolved"]


def test_rotate_key_keeps_old_data_open(stack: Stack) -> None:
    old_aid = stack.issue("before rotation")
    before = stack.citizen.json("account", "show")["encryption_key"]["digest"]
    rotated = stack.citizen.json("account", "rotate-key")
    assert rotated["digest"] != "0x" + before and rotated["old_keys_kept"] >= 1
    me = stack.world.ledger.functions.getMember(stack.world.citizen.address).call()
    assert "0x" + bytes(me[6]).hex() == rotated["digest"]
    new_aid = stack.issue("after rotation")
    for aid in (old_aid, new_aid):
        opened = stack.citizen.json("data", "open", aid)
        assert opened["fields"]["name"] == "Li Wei"
        assert opened["key_binding"] == "yours"
    # a grant on data sealed to the old key still works end to end
    gid = _grant(stack, old_aid)
    assert stack.bank.json("verify", gid)["allowed"] is True
    # someone holding the citizen's account key binds another key: the wallet notices
    stack.world.bind_key(stack.world.citizen, EncryptionKeyPair.generate())
    assert stack.citizen.json("data", "open", new_aid)["key_binding"] == "foreign"
    assert "not in this wallet" in stack.citizen.ok("data", "open", new_aid).stdout
    # the citizen takes the safe back: a fresh key of hers, bound by her signature
    stack.citizen.json("account", "rotate-key")
    assert stack.citizen.json("data", "open", new_aid)["key_binding"] == "yours"


def test_enterprise_agent_grants_on_its_behalf(stack: Stack, tmp_path: Path) -> None:
    world = stack.world
    acme = world.outsider  # not a member yet: admitted here as an enterprise subject
    world.admit(acme, SUBJECT, ENTERPRISE)
    w = stack.citizen
    w.ok("account", "import", "acme", "--kind", "enterprise", DATASAFE_IMPORT_KEY=acme.key)
    w.ok("-p", "acme", "account", "register-key")
    added = w.json("-p", "acme", "agent", "add", "li", "--days", "30")
    assert added["agent"] == world.citizen.address
    agents = w.json("-p", "acme", "agent", "list")
    assert [(a["agent"], a["active"]) for a in agents] == [(world.citizen.address, True)]
    aid = stack.issue("acme", owner=acme, values=["Acme Ltd", "91310000", "Pudong", "9000000", "-"])
    receipt = w.json(
        "-p",
        "li",
        "grant",
        "create",
        "--on-behalf-of",
        "acme",
        "--asset",
        aid,
        "--to",
        "citybank",
        "--fields",
        "name,income",
        "--purpose",
        "loan",
        "--days",
        "3",
        "--yes",
    )
    assert receipt["grantor"].lower() == world.citizen.address.lower()
    assert receipt["owner"].lower() == acme.address.lower()
    pulled = stack.bank.json("pull", receipt["grant_id"], "--out", str(tmp_path))
    assert pulled["fields"] == {"name": "Acme Ltd", "income": "9000000"}
    w.ok("-p", "acme", "agent", "remove", "li")
    assert w.json("-p", "acme", "agent", "list")[0]["active"] is False
    line = w.fails(
        3,
        "-p",
        "li",
        "grant",
        "create",
        "--on-behalf-of",
        "acme",
        "--asset",
        aid,
        "--to",
        "citybank",
        "--fields",
        "name",
        "--purpose",
        "loan",
        "--days",
        "3",
        "--yes",
    )
    assert "forbidden" in line and "neither owner" in line


def test_history_follow_sees_a_new_access(stack: Stack, tmp_path: Path) -> None:
    gid = _grant(stack, stack.issue("follow"))
    env = os.environ | stack.citizen.env
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wallet_cli",
            "--json",
            "history",
            "list",
            "--follow",
            "--follow-for",
            "5",
            "--interval",
            "0.3",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    try:
        # wait for the first listing (a JSON document ending in "}") before the new access
        for line in proc.stdout:
            lines.append(line)
            if line.rstrip() == "}":
                break
        first = json.loads("".join(lines))
        assert gid not in {r["grant_id"] for r in first["accesses"]}
        pulled = stack.bank.json("pull", gid, "--out", str(tmp_path))
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    tail = [json.loads(line) for line in out.splitlines() if line.startswith('{"')]
    assert [(r["grant_id"], r["use"]) for r in tail] == [(gid, 1)], out
    assert tail[0]["tx_hash"] == pulled["access_tx"]


def test_suspended_citizen_withdraws_but_never_gives(stack: Stack) -> None:
    """Issue 12: contract, service and CLI agree that a suspension never blocks taking back."""
    aid = stack.issue("suspended")
    keep, drop = _grant(stack, aid), _grant(stack, aid)
    citizen = stack.world.citizen
    stack.world.suspend(citizen)
    try:
        assert stack.citizen.json("grant", "pause", keep, "--yes")["status"] == "paused"
        assert stack.citizen.json("grant", "revoke", drop, "--yes")["status"] == "revoked"
        assert "member_suspended" in stack.citizen.fails(3, "grant", "resume", keep, "--yes")
        head = stack.world.w3.eth.block_number
        line = stack.citizen.fails(
            3,
            "grant",
            "create",
            "--asset",
            aid,
            "--to",
            "citybank",
            "--fields",
            "income",
            "--purpose",
            "2",
            "--days",
            "7",
            "--yes",
        )
        assert "member_suspended" in line
        assert stack.world.w3.eth.block_number == head
    finally:
        stack.world.reinstate(citizen)
    assert "grant_paused" in stack.bank.fails(3, "verify", keep)
    assert "grant_revoked" in stack.bank.fails(3, "verify", drop)


def test_reinstate_only_by_the_authority_that_suspended(stack: Stack) -> None:
    world = stack.world
    bank = world.bank.address
    world.transact(world.governor, "suspendMember", bank, keccak(b"consortium fees unpaid"))
    try:
        head = world.w3.eth.block_number
        line = stack.regulator.fails(3, "member", "reinstate", bank, "--reason", "mine to lift?")
        assert "MembershipSuspensionAuthority" in line
        assert f"only the governor that suspended {bank} may reinstate it" in line
        out = json.loads(
            stack.regulator.run(
                "--json", "member", "reinstate", bank, "--reason", "mine to lift?"
            ).stdout
        )
        assert out["error"]["code"] == "suspension_authority"
        assert world.w3.eth.block_number == head
    finally:
        world.transact(world.governor, "reinstateMember", bank, keccak(b"paid"))
    assert world.ledger.functions.hasRoles(bank, 4).call()
