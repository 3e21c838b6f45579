"""A lying service against the real wallet and bank client: every lie is refused.

The proxy (``_liar.py``) sits on loopback in front of the real API; the chain is the real
anvil the clients read themselves. Each test makes the service lie one way and checks the
client's exit code (5 deployment, 6 contradicted, 7 not confirmed, 3 audit drift), its
stable code and its message, and that the chain shows the truth.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from _api_world import Actor, World
from _liar import LyingProxy
from _stack import Stack, pin_of
from _wallet import PASSPHRASE, Wallet
from eth_abi.abi import encode as abi_encode
from eth_account import Account

from api.bank import pinned_client, pull_verified
from api.client import DataSafeClient
from ledger.abi import ledger_abi
from ledger.chain import DEV_PRIVATE_KEYS
from ledger.client import LedgerClient
from ledger.manifest import deploy_ledger
from ledger.models import GrantStatus
from ledger.rpc import RpcClient
from ledger.trust import (
    DeploymentMismatchError,
    ServiceContradictedError,
    check_hint,
    pin_from_fingerprint,
    read_deployment,
    verify_deployment,
)
from ledger.tx import LocalKeySender
from vault.keys import EncryptionKeyPair
from wallet_cli._home import Home
from wallet_cli.errors import (
    EXIT_CONTRADICTED,
    EXIT_DEPLOYMENT,
    EXIT_NOT_CONFIRMED,
    EXIT_REFUSED,
)

#: A contract that emits LOG2(topics = calldata[0:64], data = calldata[64:]): what an
#: operator deploys to forge any two-topic event, ``Accessed`` included. Init code + runtime.
EMITTER = "6014600c60003960146000f3" + "366000600037602051600051604036036040a200"


# ---- helpers ----------------------------------------------------------------------------


def _send(world: World, actor: Actor, to: str | None, data: bytes) -> dict[str, Any]:
    tx: dict[str, Any] = {
        "from": actor.address,
        "nonce": world.w3.eth.get_transaction_count(actor.address, "pending"),
        "chainId": world.chain_id,
        "gas": 300_000,
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
        "data": "0x" + data.hex(),
        "value": 0,
    }
    if to is not None:
        tx["to"] = to
    raw = Account.sign_transaction(tx, actor.key).raw_transaction
    receipt = world.w3.eth.wait_for_transaction_receipt(world.w3.eth.send_raw_transaction(raw))
    assert receipt["status"] == 1
    return dict(receipt)


def _operator(stack: Stack) -> Actor:
    """The operator's custodian key: what an insider holds."""
    return Actor("custodian", DEV_PRIVATE_KEYS[9])


def _grant(stack: Stack, tag: str, max_uses: int = 5) -> str:
    aid = stack.issue(tag)
    receipt = stack.citizen.json(
        "grant", "create", "--asset", aid, "--to", "citybank", "--fields", "name,income",
        "--purpose", "loan", "--days", "30", "--max-uses", str(max_uses), "--yes",
    )  # fmt: skip
    assert receipt["confirmed_on_chain"] is True
    return str(receipt["grant_id"])


def _chain_grant(stack: Stack, gid: str) -> Any:
    with LedgerClient(stack.rpc, stack.world.ledger_address) as lc:
        return lc.get_grant(bytes.fromhex(gid[2:]))


def _bank_ring(stack: Stack) -> Any:
    return Home(stack.bank.home).profile("citybank").keyring(PASSPHRASE)


def _lied(stack: Stack, liar: LyingProxy) -> dict[str, str]:
    return {"DATASAFE_API": liar.url}


def _code(wallet: Wallet, exit_code: int, *args: str, **env: str) -> tuple[str, str]:
    """Exit code, the stable ``--json`` error code and the one-line message."""
    r = wallet.run("--json", *args, **env)
    assert r.exit_code == exit_code, f"exit {r.exit_code}\n{r.stdout}\n{r.stderr}"
    err = json.loads(r.stdout.strip().splitlines()[-1])["error"]
    return str(err["code"]), str(err["message"])


# ---- 1. the trust anchor ----------------------------------------------------------------


def test_each_pinned_fact_is_checked_against_the_chain(stack: Stack) -> None:
    with RpcClient(stack.rpc) as rpc:
        pin = read_deployment(rpc, stack.world.ledger_address)
        verify_deployment(rpc, pin)
        for fact, other in [
            ("chain id", dataclasses.replace(pin, chain_id=pin.chain_id + 1)),
            ("genesis block hash", dataclasses.replace(pin, genesis_hash="0x" + "11" * 32)),
            ("ledger runtime code hash", dataclasses.replace(pin, code_hash="0x" + "22" * 32)),
        ]:
            with pytest.raises(DeploymentMismatchError) as info:
                verify_deployment(rpc, other)
            assert info.value.differs == (fact,)
            assert fact in str(info.value)
        with pytest.raises(DeploymentMismatchError) as info:
            check_hint(pin, pin.chain_id, "0x" + "33" * 20)
        assert info.value.differs == ("ledger address",)
        with pytest.raises(DeploymentMismatchError, match="fingerprint"):
            pin_from_fingerprint(rpc, stack.world.ledger_address, "0" * 32)


def test_another_ledger_in_info_is_refused(stack: Stack, liar: LyingProxy, tmp_path: Path) -> None:
    """The service names a ledger its operator deployed (same code, its own grants)."""
    gid = _grant(stack, "info-lie")
    fake = deploy_ledger(stack.rpc, LocalKeySender.from_key(DEV_PRIVATE_KEYS[9]))
    assert fake.ledger_address != stack.world.ledger_address

    def lie(_m: str, _p: str, _q: str, _b: bytes, info: Any) -> Any:
        return info | {"ledger_address": fake.ledger_address, "deploy_block": fake.deploy_block}

    liar.rewrite("GET", "/v1/info", lie)
    # a pinned bank: the service is not on its deployment (exit 5, says what differs)
    code, msg = _code(stack.bank, EXIT_DEPLOYMENT, "verify", gid, **_lied(stack, liar))
    assert code == "service_deployment_mismatch"
    assert "ledger address" in msg and fake.ledger_address in msg
    # the bank-side SDK refuses the same service
    with RpcClient(stack.rpc) as rpc:
        with pytest.raises(DeploymentMismatchError) as info:
            pinned_client(liar.url, stack.world.bank.key, rpc, pin_of(stack.world))
        assert info.value.differs == ("ledger address",)
    # a new wallet given the published fingerprint: the fake ledger does not have it
    real = pin_of(stack.world).fingerprint
    fresh = Wallet(tmp_path / "fresh", env={"DATASAFE_RPC": stack.rpc, "DATASAFE_PIN": real})
    fresh.ok("account", "import", "branch", DATASAFE_IMPORT_KEY=stack.world.bank.key)
    code, msg = _code(fresh, EXIT_DEPLOYMENT, "account", "pin", DATASAFE_API=liar.url)
    assert code == "deployment_mismatch" and "fingerprint" in msg and real in msg
    assert "pin" not in json.loads((tmp_path / "fresh/profiles/branch/profile.json").read_text())
    # without any fingerprint: nothing is pinned silently; the service's claim is shown
    bare = Wallet(tmp_path / "bare", env={"DATASAFE_RPC": stack.rpc})
    bare.ok("account", "import", "branch", DATASAFE_IMPORT_KEY=stack.world.bank.key)
    code, msg = _code(bare, EXIT_DEPLOYMENT, "verify", gid, DATASAFE_API=liar.url)
    assert code == "deployment_not_pinned" and fake.ledger_address in msg
    # honest again, the fingerprint pins once; the profile shows it
    liar.honest()
    shown = fresh.json("account", "pin", DATASAFE_API=liar.url)
    assert shown["fingerprint"] == real
    assert fresh.json("account", "show")["fingerprint"] == real
    assert "pinned deployment" in fresh.ok("account", "list").stdout


def test_rpc_of_another_chain_is_refused(stack: Stack, tmp_path: Path) -> None:
    """The same profile pointed at another node (other genesis, no ledger there)."""
    from _fixtures import start_anvil

    with start_anvil() as other:
        code, msg = _code(stack.bank, EXIT_DEPLOYMENT, "account", "pin", DATASAFE_RPC=other.url)
    assert code == "deployment_mismatch"
    assert "genesis block hash" in msg and "ledger runtime code hash" in msg


# ---- 2. access records ------------------------------------------------------------------


def _forge_access(stack: Stack, liar: LyingProxy) -> dict[str, Any]:
    """The service records the access with its own emitter contract, not the ledger."""
    operator = _operator(stack)
    emitter = _send(stack.world, operator, None, bytes.fromhex(EMITTER))["contractAddress"]
    topic0 = ledger_abi().events_by_name["Accessed"].topic0

    def forge(_m: str, _p: str, _q: str, body: bytes, answer: Any) -> Any:
        req = json.loads(body)
        data = (
            topic0
            + bytes.fromhex(req["grant_id"][2:])
            + abi_encode(["uint64", "uint256"], [req["fields_mask"], int(req["nonce"])])
        )
        receipt = _send(stack.world, operator, emitter, data)
        answer["access"] = {
            "tx_hash": "0x" + receipt["transactionHash"].hex().removeprefix("0x"),
            "block": receipt["blockNumber"],
        }
        return answer

    liar.rewrite("POST", "/v1/access", forge)
    return {"emitter": emitter}


def test_access_record_from_another_contract_is_refused(
    stack: Stack, liar: LyingProxy, tmp_path: Path
) -> None:
    gid = _grant(stack, "forged-access")
    honest = stack.bank.json("pull", gid, "--out", str(tmp_path / "ok"), **_lied(stack, liar))
    assert honest["use"] == 1
    _forge_access(stack, liar)
    code, msg = _code(
        stack.bank, EXIT_CONTRADICTED, "pull", gid, "--out", str(tmp_path / "x"),
        **_lied(stack, liar),
    )  # fmt: skip
    assert code == "access_record_forged" and "another contract" in msg
    assert not (tmp_path / "x").exists()
    # the bank-side SDK refuses the same way
    with RpcClient(stack.rpc) as rpc:
        pin = pin_of(stack.world)
        c = pinned_client(liar.url, stack.world.bank.key, rpc, pin)
        with c, pytest.raises(ServiceContradictedError) as info:
            pull_verified(
                c, rpc, pin, grant_id=gid, key=bytes.fromhex(stack.world.bank.key[2:]),
                ring=_bank_ring(stack),
            )  # fmt: skip
        assert info.value.code == "access_record_forged"

    # a real ledger transaction, but another request's record (the first pull's)
    liar.honest()
    liar.rewrite(
        "POST",
        "/v1/access",
        lambda _m, _p, _q, _b, a: a | {"access": {"tx_hash": honest["access_tx"], "block": 1}},
    )
    code, msg = _code(
        stack.bank, EXIT_CONTRADICTED, "pull", gid, "--out", str(tmp_path / "y"),
        **_lied(stack, liar),
    )  # fmt: skip
    assert code == "access_not_recorded" and honest["access_tx"] in msg
    # a transaction that does not exist on the chain the bank reads
    liar.honest()
    made_up = "0x" + os.urandom(32).hex()
    liar.rewrite(
        "POST", "/v1/access", lambda _m, _p, _q, _b, a: a | {"access": {"tx_hash": made_up}}
    )
    code, msg = _code(
        stack.bank, EXIT_CONTRADICTED, "pull", gid, "--out", str(tmp_path / "z"),
        **_lied(stack, liar),
    )  # fmt: skip
    assert code == "access_not_recorded" and "not on the chain" in msg


@pytest.mark.parametrize("max_uses", [2, 0], ids=["limited", "unlimited"])
def test_use_number_the_chain_does_not_hold_is_refused(
    stack: Stack, liar: LyingProxy, tmp_path: Path, max_uses: int
) -> None:
    """An unlimited grant's counter only marks its first use: the wallet counts the grant's
    events (for both, the first access is use 1 on chain)."""
    gid = _grant(stack, f"use-lie-{max_uses}", max_uses=max_uses)
    liar.rewrite("POST", "/v1/access", lambda _m, _p, _q, _b, a: a | {"use": int(a["use"]) + 1})
    code, msg = _code(
        stack.bank, EXIT_CONTRADICTED, "pull", gid, "--out", str(tmp_path / "x"),
        **_lied(stack, liar),
    )  # fmt: skip
    assert code == "access_use_inconsistent" and "use 2" in msg and "use 1" in msg
    assert not (tmp_path / "x").exists()
    # A limited grant counts its one use; an unlimited one marks its first (the recall rule).
    assert _chain_grant(stack, gid).uses == 1


# ---- 3. receipts the wallet prints ------------------------------------------------------


def _swallow(liar: LyingProxy, action: str) -> None:
    def receipt(_m: str, path: str, _q: str, _b: bytes) -> Any:
        status = {"revoke": "revoked", "pause": "paused", "resume": "active"}[action]
        gid = path.split("/")[3]
        return {"grant_id": gid, "status": status, "tx_hash": "0x" + os.urandom(32).hex(),
                "block": 1}  # fmt: skip

    liar.intercept("POST", rf"/v1/grants/0x[0-9a-f]{{64}}/{action}", receipt)


def test_swallowed_revocation_is_caught_and_sent_directly(stack: Stack, liar: LyingProxy) -> None:
    gid = _grant(stack, "swallowed")
    _swallow(liar, "revoke")
    env = _lied(stack, liar) | {"DATASAFE_CONFIRM_TIMEOUT": "1"}
    code, msg = _code(stack.citizen, EXIT_NOT_CONFIRMED, "grant", "revoke", gid, "--yes", **env)
    assert code == "not_confirmed"
    assert "does not show it" in msg and "not on the chain you read" in msg
    assert "--direct" in msg and "--relay URL" in msg
    assert _chain_grant(stack, gid).status == GrantStatus.ACTIVE
    # the citizen sends her signed revocation herself, the liar still in the way
    done = stack.citizen.json("grant", "revoke", gid, "--yes", "--direct", **env)
    assert done["status"] == "revoked" and done["confirmed_on_chain"] is True
    assert _chain_grant(stack, gid).status == GrantStatus.REVOKED


def test_swallowed_pause_is_caught_and_relayed_elsewhere(stack: Stack, liar: LyingProxy) -> None:
    gid = _grant(stack, "swallowed-pause")
    _swallow(liar, "pause")
    env = _lied(stack, liar) | {"DATASAFE_CONFIRM_TIMEOUT": "1"}
    code, _ = _code(stack.citizen, EXIT_NOT_CONFIRMED, "grant", "pause", gid, "--yes", **env)
    assert code == "not_confirmed"
    assert _chain_grant(stack, gid).status == GrantStatus.ACTIVE
    done = stack.citizen.json(
        "grant", "pause", gid, "--yes", "--relay", stack.server.url, **env
    )  # another relayer: here the honest service itself, reached directly
    assert done["status"] == "paused" and done["via"] == stack.server.url
    assert _chain_grant(stack, gid).status == GrantStatus.PAUSED


def _fake_forward(_m: str, _p: str, _q: str, body: bytes) -> dict[str, Any]:
    """A relayed call the service says it sent: a made-up transaction, nothing on chain."""
    request = json.loads(body)["request"]
    fake = "0x" + os.urandom(32).hex()
    return {"function": "?", "sender": request["from"], "nonce": request["nonce"],
            "forwarder": request["to"], "tx_hash": fake, "block": 1}  # fmt: skip


def test_swallowed_dispute_is_caught(stack: Stack, liar: LyingProxy) -> None:
    aid = stack.issue("swallowed-dispute")
    liar.intercept("POST", "/v1/forward", _fake_forward)
    env = _lied(stack, liar) | {"DATASAFE_CONFIRM_TIMEOUT": "1"}
    code, msg = _code(
        stack.citizen, EXIT_NOT_CONFIRMED, "data", "dispute", aid, "--reason", "wrong", **env
    )
    assert code == "not_confirmed" and "not on the chain you read" in msg
    done = stack.citizen.json("data", "dispute", aid, "--reason", "wrong", "--direct", **env)
    assert done["status"] == "disputed" and done["confirmed_on_chain"] is True


def test_swallowed_agent_change_is_caught(stack: Stack, liar: LyingProxy) -> None:
    world = stack.world
    acme = Actor("acme-zt", "0x" + os.urandom(32).hex())  # holds no gas at all
    world.admit(acme, 32, 2)  # SUBJECT, ENTERPRISE
    w = stack.citizen
    w.ok("account", "import", "acme-zt", "--kind", "enterprise", DATASAFE_IMPORT_KEY=acme.key)
    liar.intercept("POST", "/v1/forward", _fake_forward)
    env = _lied(stack, liar) | {"DATASAFE_CONFIRM_TIMEOUT": "1"}
    code, msg = _code(
        w, EXIT_NOT_CONFIRMED, "-p", "acme-zt", "agent", "add", "li", "--days", "5", **env
    )
    assert code == "not_confirmed" and "not on the chain you read" in msg
    assert world.ledger.functions.agentExpiry(acme.address, world.citizen.address).call() == 0
    # the honest relay: same command, the chain shows it, and acme still paid nothing
    liar.honest()
    added = w.json("-p", "acme-zt", "agent", "add", "li", "--days", "5", **env)
    assert added["via"] == "forwarder"
    assert world.ledger.functions.agentExpiry(acme.address, world.citizen.address).call() > 0
    assert world.w3.eth.get_balance(acme.address) == 0


def test_swallowed_grant_is_caught(stack: Stack, liar: LyingProxy) -> None:
    aid = stack.issue("swallowed-grant")
    receipts = len(Home(stack.citizen.home).profile("li").receipts())
    liar.intercept(
        "POST",
        "/v1/grants",
        lambda _m, _p, _q, body: {"grant_id": "0x" + os.urandom(32).hex(), "status": "active",
                                  "tx_hash": "0x" + os.urandom(32).hex(), "block": 1},
    )  # fmt: skip
    env = _lied(stack, liar) | {"DATASAFE_CONFIRM_TIMEOUT": "1"}
    code, msg = _code(
        stack.citizen, EXIT_NOT_CONFIRMED, "grant", "create", "--asset", aid, "--to", "citybank",
        "--fields", "income", "--purpose", "loan", "--days", "1", "--yes", **env,
    )  # fmt: skip
    assert code == "not_confirmed" and "with the terms you signed" in msg
    assert len(Home(stack.citizen.home).profile("li").receipts()) == receipts  # none saved


def test_swallowed_key_change_is_caught(stack: Stack, liar: LyingProxy) -> None:
    before = stack.citizen.json("account", "show")
    liar.intercept(
        "PUT",
        "/v1/members/me/key",
        lambda _m, _p, _q, _b: {"address": before["address"], "key_version": 9, "block": 1,
                                "tx_hash": "0x" + os.urandom(32).hex()},
    )  # fmt: skip
    env = _lied(stack, liar) | {"DATASAFE_CONFIRM_TIMEOUT": "1"}
    code, msg = _code(stack.citizen, EXIT_NOT_CONFIRMED, "account", "rotate-key", **env)
    assert code == "not_confirmed" and "encryption key" in msg
    # nothing changed: the old key is still the current one, on chain and in the wallet
    after = stack.citizen.json("account", "show")
    assert after["encryption_key"] == before["encryption_key"]
    assert after["old_encryption_keys"] == before["old_encryption_keys"]
    with LedgerClient(stack.rpc, stack.world.ledger_address) as lc:
        on_chain = lc.get_member(before["address"]).enc_key_hash
    assert "0x" + on_chain.hex() == "0x" + before["encryption_key"]["digest"].removeprefix("0x")


# ---- 5. field names and leaves ----------------------------------------------------------


def test_relabelled_schema_fields_are_refused(
    stack: Stack, liar: LyingProxy, tmp_path: Path
) -> None:
    gid = _grant(stack, "relabel")

    def swap(_m: str, _p: str, _q: str, _b: bytes, schema: Any) -> Any:
        names = list(schema["fields"])
        i, j = names.index("name"), names.index("income")
        names[i], names[j] = names[j], names[i]
        return schema | {"fields": names}

    liar.rewrite("GET", r"/v1/schemas/0x[0-9a-f]{64}", swap)
    code, msg = _code(
        stack.bank, EXIT_CONTRADICTED, "pull", gid, "--out", str(tmp_path / "x"),
        **_lied(stack, liar),
    )  # fmt: skip
    assert code == "schema_fields_relabelled" and "field list anchored on chain" in msg
    # the citizen granting through the liar is refused before anything is signed
    aid = stack.issue("relabel-grant")
    code, _ = _code(
        stack.citizen, EXIT_CONTRADICTED, "grant", "create", "--asset", aid, "--to", "citybank",
        "--fields", "income", "--purpose", "loan", "--days", "1", "--yes", **_lied(stack, liar),
    )  # fmt: skip
    assert code == "schema_fields_relabelled"
    # the schema honest, the grant row's labels not
    liar.honest()
    liar.rewrite(
        "GET",
        rf"/v1/grants/{gid}",
        lambda _m, _p, _q, _b, g: g | {"fields": ["name", "employer"]},
    )
    code, msg = _code(stack.bank, EXIT_CONTRADICTED, "verify", gid, **_lied(stack, liar))
    assert code == "schema_fields_relabelled" and "name, income" in msg


def test_widened_grant_row_is_refused(stack: Stack, liar: LyingProxy, tmp_path: Path) -> None:
    gid = _grant(stack, "widened")

    def widen(_m: str, _p: str, _q: str, _b: bytes, g: Any) -> Any:
        terms = g["terms"] | {"fields_mask": int(g["terms"]["fields_mask"]) | 0b110}
        return g | {"terms": terms, "fields": ["name", "id_number", "address", "income"]}

    liar.rewrite("GET", rf"/v1/grants/{gid}", widen)
    for args in (("verify", gid), ("pull", gid, "--out", str(tmp_path / "x"))):
        code, msg = _code(stack.bank, EXIT_CONTRADICTED, *args, **_lied(stack, liar))
        assert code == "grant_row_mismatch" and "fields mask" in msg
    assert not (tmp_path / "x").exists()
    with RpcClient(stack.rpc) as rpc:
        pin = pin_of(stack.world)
        c = pinned_client(liar.url, stack.world.bank.key, rpc, pin)
        with c, pytest.raises(ServiceContradictedError) as info:
            pull_verified(
                c, rpc, pin, grant_id=gid, key=bytes.fromhex(stack.world.bank.key[2:]),
                ring=_bank_ring(stack),
            )  # fmt: skip
        assert info.value.code == "grant_row_mismatch"


def test_another_root_or_grantee_key_is_refused(stack: Stack, liar: LyingProxy) -> None:
    """The service shows another anchor root, or its own key for the institution."""
    aid = stack.issue("root-lie")
    liar.rewrite(
        "GET",
        rf"/v1/assets/{aid}/sealed",
        lambda _m, _p, _q, _b, a: a | {"root": "0x" + "00" * 32},
    )
    code, msg = _code(stack.citizen, EXIT_CONTRADICTED, "data", "open", aid, **_lied(stack, liar))
    assert code == "service_mismatch" and "root" in msg
    liar.honest()
    other = base64.b64encode(EncryptionKeyPair.generate().public_key.to_bytes()).decode()
    liar.rewrite(
        "GET",
        rf"/v1/members/{stack.world.bank.address}",
        lambda _m, _p, _q, _b, m: m | {"encryption_key": other},
    )
    code, msg = _code(
        stack.citizen, EXIT_CONTRADICTED, "grant", "create", "--asset", aid, "--to", "citybank",
        "--fields", "income", "--purpose", "loan", "--days", "1", "--yes", **_lied(stack, liar),
    )  # fmt: skip
    assert code == "service_mismatch" and "own binding" in msg


# ---- 6. the audit range -----------------------------------------------------------------


def _wait_indexed(stack: Stack) -> int:
    with DataSafeClient(stack.server.url, stack.world.regulator.key) as c:
        for _ in range(200):
            head = stack.world.w3.eth.block_number
            page = c.get("/v1/trace/accesses", params={"limit": 1})
            if page["indexed_to"] is not None and page["indexed_to"] >= head:
                return head
            time.sleep(0.1)
    raise AssertionError("the index did not reach the head")


def test_rolled_back_index_is_drift(stack: Stack, liar: LyingProxy, tmp_path: Path) -> None:
    gid = _grant(stack, "audit")
    pulled = stack.bank.json("pull", gid, "--out", str(tmp_path / "ok"))
    first = str(stack.world.deploy_block)
    _wait_indexed(stack)
    honest = stack.regulator.json("audit", "verify", "--from-block", first, **_lied(stack, liar))
    assert honest["ok"] is True and honest["index_behind"] == 0

    rolled_back = int(pulled["access_block"]) - 1

    def roll_back(_m: str, _p: str, _q: str, _b: bytes, answer: Any) -> Any:
        keep = lambda rows: [r for r in rows if int(r["block_number"]) <= rolled_back]  # noqa: E731
        if isinstance(answer, list):
            return keep(answer)
        return answer | {"items": keep(answer["items"]), "indexed_to": rolled_back}

    liar.rewrite("GET", r"/v1/trace/(accesses|consents)", roll_back)
    r = stack.regulator.run(
        "--json", "audit", "verify", "--from-block", first, **_lied(stack, liar)
    )
    assert r.exit_code == EXIT_REFUSED, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["ok"] is False and report["indexed_to"] == rolled_back
    assert report["index_behind"] >= 1 and "behind the chain head" in report["drift"]
    assert pulled["access_tx"] in {row["tx_hash"] for row in report["missing"]}
    human = stack.regulator.run("audit", "verify", "--from-block", first, **_lied(stack, liar))
    assert human.exit_code == EXIT_REFUSED and "drift:" in human.stdout
