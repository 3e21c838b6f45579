"""``datasafe ui``'s endpoints over real HTTP against the real stack: what they show is what
the CLI verified, a refused call changes nothing, no answer carries a key, a locked wallet
says how to unlock, and without the chain the page marks fields as unproven.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from _console import console_process
from _stack import FIELDS, VALUES, Stack

from wallet_cli._counter import CounterCode


def _grant(stack: Stack, aid: str) -> str:
    out = stack.citizen.json(
        "grant", "create", "--asset", aid, "--to", "citybank", "--fields", "name,income",
        "--purpose", "loan", "--for", "1d", "--yes",
    )  # fmt: skip
    return str(out["grant_id"])


def test_safe_is_what_the_cli_opens(stack: Stack) -> None:
    aid = stack.issue("ui-safe")
    with console_process(stack.citizen.env) as console:
        reply = console.get("api/safe")
    assert reply.status_code == 200, reply.text
    mine = {a["asset_id"]: a for a in reply.json()["data"]}[aid]
    cli = stack.citizen.json("data", "open", aid)
    assert mine["opened"]["fields"] == cli["fields"] == dict(zip(FIELDS, VALUES, strict=True))
    assert mine["opened"]["verified_against"] == "chain"
    assert mine["opened"]["root"] == cli["root"]


def test_without_the_chain_fields_are_marked_unproven(stack: Stack) -> None:
    aid = stack.issue("ui-nochain")
    with console_process(stack.citizen.env, "--no-chain") as console:
        mine = {a["asset_id"]: a for a in console.get("api/safe").json()["data"]}[aid]
    assert mine["opened"]["verified_against"] == "service"


def test_a_refused_revoke_changes_nothing(stack: Stack) -> None:
    gid = _grant(stack, stack.issue("ui-revoke"))
    with console_process(stack.citizen.env) as console:
        url = console.url + "api/grants/revoke"
        body = {"grant_id": gid}
        for headers in (
            {},
            {"X-DataSafe-Token": "not-the-token"},
            console.headers(Origin="http://evil.example"),
        ):
            assert httpx.post(url, json=body, headers=headers, timeout=30).status_code in (401, 403)
        status = {g["grant_id"]: g["status"] for g in stack.citizen.json("grant", "list")}
        assert status[gid] == "active"
        # the same call from the console's own page revokes (the refusals above were real)
        done = console.post("api/grants/revoke", body)
        assert done.status_code == 200, done.text
    status = {g["grant_id"]: g["status"] for g in stack.citizen.json("grant", "list")}
    assert status[gid] == "revoked"


def test_wizard_refusals_are_the_clis_words(stack: Stack) -> None:
    aid = stack.issue("ui-wizard")
    terms = {"asset": aid, "to": stack.world.bank.address, "purpose": "1", "uses": "1"}
    with console_process(stack.citizen.env) as console:
        bad_field = console.post(
            "api/grants/preview", terms | {"fields": ["salary"], "duration": "3d"}
        )
        bad_time = console.post(
            "api/grants/preview", terms | {"fields": ["name"], "duration": "soon"}
        )
        nothing = console.post("api/grants/preview", terms | {"fields": [], "duration": "3d"})
    assert bad_field.status_code == 400
    line = stack.citizen.fails(
        2, "grant", "create", "--asset", aid, "--to", stack.world.bank.address,
        "--fields", "salary", "--purpose", "1", "--for", "3d", "--yes",
    )  # fmt: skip
    assert line == "error: " + bad_field.json()["error"]["message"]
    assert bad_field.json()["error"]["code"] == "unknown_field"
    assert bad_time.status_code == 400 and "soon" in bad_time.json()["error"]["message"]
    assert nothing.json()["error"]["message"] == "tick at least one field to share"


def test_no_answer_carries_a_private_key(stack: Stack) -> None:
    aid = stack.issue("ui-keys")
    _grant(stack, aid)
    secret = stack.world.citizen.key.lower().removeprefix("0x")
    with console_process(stack.citizen.env) as console:
        bodies = [
            console.get(path).text.lower()
            for path in ("api/session", "api/safe", "api/grants", "api/history", "api/contacts")
        ]
    assert all(b for b in bodies)
    assert not any(secret in b for b in bodies)


def test_a_locked_wallet_says_how_to_unlock(stack: Stack) -> None:
    # no agent holds the profile, no passphrase in the environment, no terminal to ask on
    with console_process(stack.citizen.env | {"DATASAFE_PASSPHRASE": ""}) as console:
        reply = console.get("api/grants")
    error = reply.json()["error"]
    assert reply.status_code == 400
    assert error["code"] == "wallet_locked" and "datasafe unlock" in error["message"]


def test_a_counter_code_made_in_the_console_redeems_once_at_the_desk(
    stack: Stack, tmp_path: Path
) -> None:
    """`grant code` in the citizen's console (its QR as SVG), `redeem` at the bank's desk;
    replayed or at the wrong desk, the refusal is the CLI's own line."""
    aid = stack.issue("ui-counter")
    code = {"asset": aid, "to": "citybank", "fields": ["name", "income"], "purpose": "loan"}
    with console_process(stack.citizen.env) as citizen:
        shown = citizen.post("api/counter/code", code | {"valid": "5m"})
        too_long = citizen.post("api/counter/code", code | {"valid": "2d"})
    assert shown.status_code == 200, shown.text
    made = shown.json()["data"]
    text = str(made["payload"])
    assert text.startswith("DS1:") and made["fields"] == ["name", "income"]
    svg = str(made["svg"])
    assert svg.startswith("<svg") and "<path" in svg and "<script" not in svg
    assert 0 < made["valid_until"] - time.time() <= 300
    assert too_long.status_code == 400
    assert "error: " + too_long.json()["error"]["message"] == stack.citizen.fails(
        2, "grant", "code", "--asset", aid, "--to", "citybank", "--fields", "name",
        "--purpose", "loan", "--valid", "2d",
    )  # fmt: skip
    with console_process(stack.regulator.env) as regulator:
        elsewhere = regulator.post("api/desk/redeem", {"payload": text})
    assert elsewhere.status_code == 409 and elsewhere.json()["error"]["code"] == "code_not_for_you"
    assert "error: " + elsewhere.json()["error"]["message"] == stack.regulator.fails(
        3, "redeem", text, "--out", str(tmp_path / "reg")
    )
    late = CounterCode(**{**vars(CounterCode.from_text(text)), "deadline": 1}).to_text()
    with console_process(stack.bank.env) as bank:
        redeemed = bank.post("api/desk/redeem", {"payload": text.lower()})  # as a scanner types
        replayed = bank.post("api/desk/redeem", {"payload": text})
        expired = bank.post("api/desk/redeem", {"payload": late})
        empty = bank.post("api/desk/redeem", {"payload": " "})
    assert redeemed.status_code == 200, redeemed.text
    pulled = redeemed.json()["data"]
    assert pulled["grant_id"] == made["grant_id"] and pulled["use"] == 1
    assert pulled["fields"] == {"name": "Li Wei", "income": "182000"}
    assert pulled["grantor"] == stack.world.citizen.address
    assert replayed.status_code == 409 and replayed.json()["error"]["code"] == "code_used"
    line = stack.bank.fails(3, "redeem", text, "--out", str(tmp_path / "again"))
    assert line == "error: " + replayed.json()["error"]["message"]
    assert expired.status_code == 409 and expired.json()["error"]["code"] == "code_expired"
    assert empty.status_code == 400 and empty.json()["error"]["message"] == "payload is required"
