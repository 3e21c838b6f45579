"""``datasafe-node demo`` as a user runs it, on a node started by ``datasafe-node up``.

The demo is run as a subprocess (``demo --json``, exactly what ``make demo`` runs, plus
JSON) and again in-process on the same node; every outcome of its report is asserted,
and what the chain holds is counted here from ``eth_getLogs`` and contract reads, not
taken from the demo's word. The last test plays the citizen's grant and revocation and the
bank's pull through the ``datasafe`` wallet CLI on the same node. One node for the module.
"""

from __future__ import annotations

import csv
import io
import json
import stat
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _e2e_node import Node
from eth_account import Account
from typer.testing import CliRunner, Result

from ledger import claims as cl
from ledger import sealed as sl
from ledger.abi import ledger_abi
from ledger.client import LedgerClient
from ledger.models import AckKind, AssetStatus, GrantStatus, MemberKind, MemberStatus, Role
from ledger.rpc import RpcClient
from node.demo import (
    DEMO_PASSPHRASE,
    LOAN_USES,
    Demo,
    DemoError,
    Narrator,
    find_node,
    governor_sender,
    next_run,
    run_demo,
)
from wallet_cli._home import Home
from wallet_cli.main import app as wallet_app

PROBLEM = "urn:datasafe:problem:"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    n = Node(tmp_path_factory.mktemp("demo") / "data")
    n.start()
    yield n
    if n.proc is not None and n.proc.poll() is None:
        n.stop()


@pytest.fixture(scope="module")
def report(node: Node) -> dict[str, Any]:
    done = node.cli("demo", "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def chain_events(node: Node, from_block: int) -> list[Any]:
    abi = ledger_abi()
    with RpcClient(node.info["rpc_url"]) as rpc:
        logs = rpc.call(
            "eth_getLogs",
            [
                {
                    "address": node.manifest.ledger_address,
                    "fromBlock": hex(from_block),
                    "toBlock": "latest",
                }
            ],
        )
    return [e for e in (abi.decode_log(lg) for lg in logs) if e is not None]


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def test_demo_plays_every_step_and_every_refusal(report: dict[str, Any]) -> None:
    assert report["ok"] is True and report["run"] == 1
    titles = [s["step"] for s in report["steps"]]
    assert len(titles) == 14
    assert titles[0].startswith("The big-data bureau") and titles[-1].startswith("The regulator")
    members = report["members"]
    assert Counter(m["kind"] for m in members.values()) == {
        "department": 5,
        "bank": 1,
        "notary": 1,
        "insurer": 1,
        "regulator": 1,
        "individual": 1,
        "enterprise": 1,
    }
    assert all(m["label"].endswith("#1") for m in members.values())
    # five records: four in the citizen's safe, the business licence in the enterprise's
    owners = Counter(a["owner"] for a in report["assets"].values())
    assert owners == {members["citizen"]["address"]: 4, members["enterprise"]["address"]: 1}
    # the loan: three fields of two assets, 7 days, 3 uses, for loan underwriting
    loan = [report["grants"]["loan_identity"], report["grants"]["loan_housing_fund"]]
    assert sum(len(g["fields"]) for g in loan) == 3
    assert {g["asset"] for g in loan} == {"identity", "housing_fund"}
    for g in loan:
        assert g["grantee"] == members["bank"]["address"]
        assert g["max_uses"] == LOAN_USES and g["purpose"] == 1
        assert "loan underwriting" in g["terms_text"]
    assert report["citizen_balance_at_grant"] == 0  # she signs, the service pays the gas
    notary = report["grants"]["notary"]
    assert notary["max_uses"] == 1 and notary["grantee"] == members["notary"]["address"]
    # the bank pulled each loan grant once, the notary its grant once
    pulls = [(a["by"], a["grant"], a["use"], a["uses_on_chain"]) for a in report["accesses"]]
    assert pulls == [
        ("bank", "loan_identity", 1, 1),
        ("bank", "loan_housing_fund", 1, 1),
        ("notary", "notary", 1, 1),
        ("bank", "valuation", 1, 1),
    ]
    assert report["accesses"][0]["fields"] == ["id_number", "name"]
    # refusals, with their problem types and the chain's reason codes
    refusals = report["refusals"]
    expected = {
        "insurer_pull": (403, "not_grantee", 2),
        "bank_pull_after_revoke": (403, "grant_revoked", 3),
        "notary_second_pull": (403, "uses_exhausted", 7),
    }
    for key, (status, code, reason) in expected.items():
        got = refusals[key]
        assert (got["status"], got["code"], got["reason_code"]) == (status, code, reason), key
        assert got["type"] == PROBLEM + code
    verdict = refusals["bank_verify_after_revoke"]
    assert verdict["allowed"] is False and verdict["code"] == "grant_revoked"
    # the correction: dispute, then version 2 with the right income
    fix = report["correction"]
    assert fix["old_status"] == "superseded" and fix["new_version"] == 2
    assert fix["new_previous"] == fix["old_asset_id"] == report["assets"]["tax"]["asset_id"]
    assert fix["annual_income"] == "213000"
    # the regulator's trace and exports
    trace = report["trace"]
    assert trace["citizen_accesses"] == trace["chain_citizen_accesses"] == 4
    assert trace["bank_accesses"] == 3
    assert trace["citizen_consents"] == {"granted": 4, "revoked": 2}
    assert sorted(trace["access_tx_hashes"]) == sorted({a["tx_hash"] for a in report["accesses"]})


def test_chain_agrees_with_the_demo(node: Node, report: dict[str, Any]) -> None:
    events = chain_events(node, 0)
    members = report["members"]
    grants = {g["grant_id"]: key for key, g in report["grants"].items()}
    by_name: dict[str, list[Any]] = {}
    for e in events:
        by_name.setdefault(e.name, []).append(e)
    granted = [e for e in by_name["ConsentGranted"] if _hex(e.args["grantId"]) in grants]
    assert sorted(grants[_hex(e.args["grantId"])] for e in granted) == sorted(grants.values())
    revoked = [_hex(e.args["grantId"]) for e in by_name["ConsentRevoked"]]
    assert sorted(grants[g] for g in revoked if g in grants) == [
        "loan_housing_fund",
        "loan_identity",
    ]
    # exactly one access per pull the demo reports, none for any refused pull
    accessed = Counter(
        grants.get(_hex(e.args["grantId"]), "other") for e in by_name.get("Accessed", [])
    )
    assert accessed == {"loan_identity": 1, "loan_housing_fund": 1, "notary": 1, "valuation": 1}
    assert not [e for e in by_name.get("AccessRefused", []) if _hex(e.args["grantId"]) in grants]
    tax = report["assets"]["tax"]["asset_id"]
    assert [_hex(e.args["assetId"]) for e in by_name["AssetDisputed"]] == [tax]
    housing = report["assets"]["housing_fund"]["asset_id"]
    assert [_hex(e.args["oldAssetId"]) for e in by_name["AssetSuperseded"]] == [tax, housing]

    with LedgerClient(node.info["rpc_url"], node.manifest.ledger_address) as chain:
        for key, g in report["grants"].items():
            on_chain = chain.get_grant(bytes.fromhex(g["grant_id"][2:]))
            assert on_chain.uses == 1, key
            want = GrantStatus.REVOKED if key.startswith("loan") else GrantStatus.ACTIVE
            assert on_chain.status == want, key
            assert on_chain.grantee == g["grantee"] and on_chain.fields_mask == g["fields_mask"]
        for name, m in members.items():
            member = chain.get_member(m["address"])
            assert member.status == MemberStatus.ACTIVE and int(member.roles) == m["roles"], name
            assert member.kind == MemberKind[m["kind"].upper()]
        assert chain.get_member(members["bank"]["address"]).roles == Role.CONSUMER
        old = chain.get_asset(bytes.fromhex(tax[2:]))
        assert old.status == AssetStatus.SUPERSEDED
        new = chain.get_asset(bytes.fromhex(report["correction"]["new_asset_id"][2:]))
        assert new.status == AssetStatus.ACTIVE and new.version == 2
        for a in report["assets"].values():
            assert _hex(chain.get_asset(bytes.fromhex(a["asset_id"][2:])).root) == a["root"]


def test_the_later_life_of_the_data_is_on_chain(node: Node, report: dict[str, Any]) -> None:
    """Claim, recall, deletion and sealed access: what the demo reports, read back from the
    chain (contract reads, eth_getLogs, the relaying transaction), not from its word."""
    members, grants = report["members"], report["grants"]
    citizen, bank = members["citizen"]["address"], members["bank"]["address"]
    ledger = node.manifest.ledger_address
    events = chain_events(node, 0)
    with RpcClient(node.info["rpc_url"]) as rpc:
        # 1. the claim: filed by her signature, sent by the service, fulfilled with her record
        claim = report["claim"]
        on_chain = cl.read_claim(rpc, ledger, bytes.fromhex(claim["claim_id"][2:]))
        assert on_chain.status == cl.ClaimStatus.FULFILLED and on_chain.subject == citizen
        assert on_chain.department == members["police"]["address"]
        assert on_chain.asset_id == bytes.fromhex(claim["asset_id"][2:])
        sent = rpc.call("eth_getTransactionByHash", [claim["filed_tx"]])
        assert sent["from"].lower() != citizen.lower()
        assert sent["to"].lower() == cl.claims_address(ledger).lower()
        # 4. the sealed access: on her record, by the tax bureau, past its date, not revealed
        seal = report["sealed"]
        (record,) = sl.read_seals(rpc, ledger, [seal["seal_id"]])
        head = int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    assert record.subject == citizen and record.department == members["tax"]["address"]
    assert "0x" + record.asset_id.hex() == report["correction"]["new_asset_id"]
    assert record.status == sl.SealStatus.SEALED and record.overdue(head)
    assert seal["in_her_list"] is True
    assert seal["seal_id"] in report["oversight"]["overdue_seals"]
    with LedgerClient(node.info["rpc_url"], ledger) as chain:
        certificate = chain.get_asset(bytes.fromhex(claim["asset_id"][2:]))
        assert certificate.owner == citizen and certificate.issuer == on_chain.department
        # 2. the recall: the housing-fund version the bank pulled is superseded, acknowledged
        recalled = chain.get_grant(bytes.fromhex(grants["loan_housing_fund"]["grant_id"][2:]))
        old = chain.get_asset(bytes.fromhex(report["assets"]["housing_fund"]["asset_id"][2:]))
        assert old.status == AssetStatus.SUPERSEDED
        assert _hex(old.next) == report["recall"]["new_asset_id"]
        assert recalled.acknowledged(AckKind.RECALL) and recalled.uses == 1
        assert not chain.get_grant(
            bytes.fromhex(grants["loan_identity"]["grant_id"][2:])
        ).acknowledged(AckKind.RECALL)
        # 3. the retention grant: used up, 30 days' retention, deletion acknowledged
        valuation = chain.get_grant(bytes.fromhex(grants["valuation"]["grant_id"][2:]))
        assert valuation.retention == 30 * 86_400 and valuation.uses == valuation.max_uses == 1
        assert valuation.grantee == bank and valuation.acknowledged(AckKind.DELETION)
        assert not valuation.acknowledged(AckKind.RECALL)
    acks = Counter(
        (e.name, _hex(e.args["grantId"]))
        for e in events
        if e.name in ("RecallAcknowledged", "DeletionAcknowledged")
    )
    assert acks == {
        ("RecallAcknowledged", grants["loan_housing_fund"]["grant_id"]): 1,
        ("DeletionAcknowledged", grants["valuation"]["grant_id"]): 1,
    }
    # her history, as the service's index answered it: told, then acknowledged
    assert report["recall"]["history"] == [
        "access",
        "granted",
        "recall",
        "recall_acknowledged",
        "revoked",
    ]
    assert report["retention"]["history"] == ["access", "deletion_acknowledged", "granted"]
    assert report["retention"]["deleted_files"] == [f"{grants['valuation']['grant_id']}-use1.json"]
    saved = Path(report["export_dir"]) / "bank-saved"
    assert saved.is_dir() and not list(saved.iterdir())
    # the revoked loan grants (no retention) are deletions the bank still owes, overdue
    assert report["oversight"]["bank_deletions_overdue"] == sorted(
        grants[k]["grant_id"] for k in ("loan_identity", "loan_housing_fund")
    )


def test_exports_are_written(report: dict[str, Any]) -> None:
    trace = report["trace"]
    rows = list(csv.DictReader(io.StringIO(Path(trace["csv_export"]).read_text())))
    assert len(rows) == trace["csv_rows"] == 4
    assert {r["tx_hash"] for r in rows} == set(trace["access_tx_hashes"])
    assert {r["subject"].lower() for r in rows} == {report["members"]["citizen"]["address"].lower()}
    exported = json.loads(Path(trace["json_export"]).read_text())
    assert len(exported) == trace["json_rows"] == 3
    assert {r["institution"].lower() for r in exported} == {
        report["members"]["bank"]["address"].lower()
    }


#: Values of the demo's records that must never be on disk unless asked for (distinctive
#: strings, not bare numbers that a hash or a timestamp could contain by chance).
PLAINTEXT = (
    b"HZ-GJJ-0091827",
    b"West Lake Road",
    b"Zhejiang Digital",
    b"Qianjiang Road",
    b"ZJ(2021)HZ-0045512",
    b"tea processing and sales",
)


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_demo_keeps_secrets_like_a_wallet(report: dict[str, Any]) -> None:
    folder = Path(report["export_dir"])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not (folder / "members.json").exists() and not (folder / "plaintext").exists()
    keys: list[bytes] = []
    for who, member in report["members"].items():
        home = folder / "wallets" / who
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        profile = home / "profiles" / who
        for name in ("keystore.json", "enc-keys.json", "profile.json"):
            assert stat.S_IMODE((profile / name).stat().st_mode) == 0o600, name
        # the wallet's own code opens the demo's wallet: account key and HPKE key
        wallet = Home(home).profile(who)
        key = wallet.unlock(DEMO_PASSPHRASE)
        assert Account.from_key(key).address == member["address"]
        assert len(wallet.keyring(DEMO_PASSPHRASE)) == 1
        keys.append(key.hex().encode())
    for path in _files(folder):
        data = path.read_bytes()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert not [v for v in PLAINTEXT if v in data], path
        assert not [k for k in keys if k in data.lower()], path


def test_demo_runs_again_on_the_same_node(node: Node, report: dict[str, Any]) -> None:
    again = run_demo(node.data_dir, quiet=True, write_plaintext=True)
    assert again["run"] == 2 and again["ok"] is True
    # asked for: the decrypted records are written, owner-only
    written = _files(Path(again["export_dir"]) / "plaintext")
    assert written and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in written)
    assert any(b"HZ-GJJ-0091827" in p.read_bytes() for p in written)
    assert {m["address"] for m in again["members"].values()}.isdisjoint(
        m["address"] for m in report["members"].values()
    )
    # the new run's trace counts only its own actors' accesses
    assert again["trace"]["citizen_accesses"] == 4 and again["trace"]["bank_accesses"] == 3
    assert Path(again["export_dir"]).name == "run-2"


def test_no_node_is_a_clear_error(node: Node, tmp_path: Path) -> None:
    empty = tmp_path / "nothing"
    env = dict(node.env, DATASAFE_LEDGER_DATA_DIR=str(empty))
    done = Node(empty, env).cli("demo")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"demo failed: no node is running on {empty}: start one with `make up` "
        "(or `datasafe-node up`), or pass --api-url"
    )
    assert "Traceback" not in done.stderr and not empty.exists()
    with pytest.raises(DemoError, match="does not answer"):
        run_demo(empty, api_url="http://127.0.0.1:1", rpc_url=node.info["rpc_url"], quiet=True)


def _wallet(home: Path, api_url: str, rpc_url: str, pin: str) -> Callable[..., Result]:
    env = {
        "DATASAFE_HOME": str(home),
        "DATASAFE_PASSPHRASE": "correct horse battery staple",
        "DATASAFE_SCRYPT_N": "1024",  # a fast work factor for tests; wallets use 262144
        "DATASAFE_PROFILE": "",
        "DATASAFE_API": api_url,
        "DATASAFE_RPC": rpc_url,
        "DATASAFE_PIN": pin,  # the fingerprint of the node's manifest, as published
    }

    def run(*args: str, **extra: str) -> Result:
        return CliRunner().invoke(wallet_app, list(args), env=env | extra, catch_exceptions=False)

    return run


def test_citizen_and_bank_through_the_wallet_cli(node: Node, tmp_path: Path) -> None:
    """The demo's cast on the same node, but the citizen grants and revokes and the bank
    pulls with the ``datasafe`` wallet CLI, as a user would."""
    target, settings = find_node(node.data_dir)
    run, folder = next_run(target.data_dir)
    demo = Demo(target, governor_sender(settings, target.embedded), run, folder, Narrator(True))
    try:
        demo.admit()
        citizen, bank = demo.cast["citizen"], demo.cast["bank"]
        wallets = {
            who: _wallet(tmp_path / who, target.api_url, target.rpc_url, demo.pin.fingerprint)
            for who in ("citizen", "bank")
        }
        for who, actor in (("citizen", citizen), ("bank", bank)):
            demo._fund(actor.address)  # registering the wallet's key is the member's own tx
            done = wallets[who]("account", "import", who, DATASAFE_IMPORT_KEY=actor.key)
            assert done.exit_code == 0, done.output
            done = wallets[who]("account", "register-key")
            assert done.exit_code == 0, done.output
        # the departments now seal to the keys the wallets registered
        demo.issue(open_safes=False)
        aid = demo.report["assets"]["identity"]["asset_id"]
        w_citizen, w_bank = wallets["citizen"], wallets["bank"]
        assert w_citizen("contacts", "add", "bank", bank.address).exit_code == 0
        created = w_citizen(
            "--json",
            "grant",
            "create",
            "--asset",
            aid,
            "--to",
            "bank",
            "--fields",
            "name,id_number",
            "--purpose",
            "loan",
            "--days",
            "7",
            "--max-uses",
            "3",
            "--yes",
        )
        assert created.exit_code == 0, created.output
        gid = json.loads(created.stdout)["grant_id"]
        pulled = w_bank("--json", "pull", gid, "--out", str(tmp_path / "loan"))
        assert pulled.exit_code == 0, pulled.output
        got = json.loads(pulled.stdout)
        assert got["fields"] == {"name": f"Li Na #{run}", "id_number": "330106199203154527"}
        assert got["use"] == 1
        assert w_citizen("grant", "revoke", gid, "--yes").exit_code == 0
        refused = w_bank("pull", gid, "--out", str(tmp_path / "again"))
        assert refused.exit_code == 3 and "grant_revoked" in refused.stderr
        with LedgerClient(target.rpc_url, demo.ledger_address) as chain:
            on_chain = chain.get_grant(bytes.fromhex(gid[2:]))
        assert on_chain.uses == 1 and on_chain.status == GrantStatus.REVOKED
        accessed = [
            e
            for e in chain_events(node, demo.first_block)
            if e.name == "Accessed" and _hex(e.args["grantId"]) == gid
        ]
        assert [e.tx_hash for e in accessed] == [got["access_tx"]]
    finally:
        demo.close()


def test_node_scrub_backup_restore_after_a_lost_blob(
    node: Node, report: dict[str, Any], tmp_path: Path
) -> None:
    """The operator's commands on the demo's node: a deleted blob fails ``status`` (exit 4)
    and ``scrub``; ``backup`` (taken before, node running) and ``restore`` (node stopped)
    bring it back; ``scrub`` and ``status`` are clean again. Last in the module: it restarts
    the node."""
    assert node.cli("scrub", timeout=120).returncode == 0
    backup = tmp_path / "backup"
    done = node.cli("backup", str(backup), timeout=120)
    assert done.returncode == 0, done.stderr
    assert (backup / "datasafe.db").exists() and (backup / "manifest.json").exists()
    stored = (node.data_dir / "blobs").rglob("*")
    blob = next(p for p in stored if p.is_file() and p.parent.name != "tmp")
    blob.unlink()

    done = node.cli("scrub", "--json", timeout=120)
    assert done.returncode == 4, done.stderr
    assert json.loads(done.stdout)["health"]["missing"] == 1
    status = node.cli("status", "--json")
    assert status.returncode == 4
    out = json.loads(status.stdout)
    assert out["ok"] is False and out["blobs"]["missing"] == 1 and "restore" in out["detail"]

    refused = node.cli("restore", str(backup))
    assert refused.returncode == 1 and "datasafe-node down" in refused.stderr
    code, _ = node.stop()
    assert code == 0
    done = node.cli("restore", str(backup), timeout=120)
    assert done.returncode == 0, done.stderr
    assert blob.exists()
    node.start()
    assert node.cli("scrub", timeout=120).returncode == 0
    status = node.cli("status", "--json")
    assert status.returncode == 0, status.stdout
    assert json.loads(status.stdout)["blobs"] == json.loads(status.stdout)["blobs"] | {
        "ok": True,
        "missing": 0,
        "corrupt": 0,
    }
