"""A department issues, a citizen grants two of five fields, a bank verifies, pulls, decrypts
and checks against the chain, the citizen revokes — all through real HTTP against a real
uvicorn, anvil and database, with the vault's real sealing, key packages and disclosures.
"""

from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
from pathlib import Path

import pytest
import sqlalchemy as sa
from _api_seed import FIELDS, VALUES
from _api_server import LiveServer, assert_problem, live_server, world_settings
from _api_world import Actor, World
from eth_abi import encode
from eth_hash.auto import keccak

from api import db as api_db
from api.client import DataSafeClient, verified_member_key
from ledger.client import LedgerClient
from ledger.rpc import RpcClient
from ledger.trust import read_deployment, verify_access_record
from vault.errors import TamperedCiphertextError, TamperedProofError
from vault.keys import PublicEncryptionKey
from vault.packages import Disclosure, build_key_package, open_disclosure
from vault.sealing import SealedAsset, decrypt_field, open_asset, seal_asset

PLAIN = dict(zip(FIELDS, VALUES, strict=True))


def register_schema(server: LiveServer, world: World, fields: list[str] | None = None) -> bytes:
    fields = fields or FIELDS
    sid = keccak(b"income statement v1" + world.snapshot().encode())
    raw = world.raw_tx(
        world.issuer, "registerSchema", sid, len(fields), keccak(encode(["string[]"], [fields]))
    )
    with DataSafeClient(server.url, world.issuer.key) as c:
        c.post(
            "/v1/schemas",
            {
                "schema_id": "0x" + sid.hex(),
                "name": "income statement",
                "fields": fields,
                "raw_transaction": raw,
            },
        )
    return sid


def publish_key(server: LiveServer, world: World, actor: Actor) -> None:
    with DataSafeClient(server.url, actor.key) as c:
        c.put("/v1/members/me/key", world.key_body(actor))


def directory_key(c: DataSafeClient, world: World, actor: Actor) -> PublicEncryptionKey:
    """A member's key from the directory, accepted only as the member's own binding on chain."""
    entry = c.get(f"/v1/members/{actor.address}")
    with LedgerClient(world.rpc_url, world.ledger_address) as lc:
        return verified_member_key(lc, entry)


def anchor_tx(
    world: World,
    sid: bytes,
    sealed: SealedAsset,
    *,
    asset_id: bytes | None = None,
    owner: Actor | None = None,
    root: bytes | None = None,
    digest: bytes | None = None,
) -> str:
    return world.raw_tx(
        world.issuer,
        "anchorAsset",
        asset_id or sealed.asset_id,
        (owner or world.citizen).address,
        sid,
        root or sealed.root,
        digest or sealed.ciphertext_digest,
    )


def upload(c: DataSafeClient, sealed: bytes, raw: str, path: str = "/v1/assets") -> object:
    body = {"sealed": base64.b64encode(sealed).decode(), "raw_transaction": raw}
    return c.request("POST", path, json_body=body)


def issue(server: LiveServer, world: World, sid: bytes, tag: bytes = b"1") -> SealedAsset:
    with DataSafeClient(server.url, world.issuer.key) as c:
        owner_key = directory_key(c, world, world.citizen)
        sealed = seal_asset(
            list(PLAIN.items()), asset_id=keccak(b"asset" + tag), version=1, owner_key=owner_key
        )
        resp = upload(c, sealed.to_bytes(), anchor_tx(world, sid, sealed))
    assert resp.status_code == 201, resp.text  # type: ignore[attr-defined]
    out = resp.json()  # type: ignore[attr-defined]
    assert out["asset_id"] == "0x" + sealed.asset_id.hex()
    assert out["status"] == "active" and out["version"] == 1
    assert out["root"] == "0x" + sealed.root.hex()
    return sealed


def package_row(db_url: str, grant_id: str) -> int:
    engine = api_db.make_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(api_db.key_packages)
                    .where(api_db.key_packages.c.grant_id == grant_id)
                ).scalar_one()
            )
    finally:
        engine.dispose()


def blobs(tmp_path: Path) -> list[Path]:
    root = tmp_path / "blobs"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_issue_grant_pull_open_revoke_story(
    server: LiveServer, world: World, db_url: str, tmp_path: Path
) -> None:
    sid = register_schema(server, world)
    publish_key(server, world, world.citizen)
    publish_key(server, world, world.bank)
    # the department seals five fields to the citizen's registered key and issues them
    sealed = issue(server, world, sid)
    aid = "0x" + sealed.asset_id.hex()
    chain_asset = world.ledger.functions.getAsset(sealed.asset_id).call()
    chain_root, chain_issuer = bytes(chain_asset[5]), chain_asset[3]
    assert chain_root == sealed.root and bytes(chain_asset[6]) == sealed.ciphertext_digest

    with DataSafeClient(server.url, world.citizen.key) as citizen:
        assert [a["asset_id"] for a in citizen.get("/v1/assets")] == [aid]
        # the citizen opens its safe locally and checks every field against the chain's root
        fetched = SealedAsset.from_bytes(
            base64.b64decode(citizen.get(f"/v1/assets/{aid}/sealed")["sealed"])
        )
        opened = open_asset(fetched, world.enc_key(world.citizen), expected_root=chain_root)
        assert opened.fields == PLAIN
        # and grants two of five fields (name, income) to the bank, with a key package
        signed = world.sign_grant(
            world.citizen,
            asset_id=sealed.asset_id,
            grantee=world.bank.address,
            fields_mask=0b01001,
            max_uses=5,
        )
        gid = signed.pop("grant_id")
        package = build_key_package(
            fetched,
            world.enc_key(world.citizen),
            grant_id=bytes.fromhex(gid[2:]),
            fields=["income", "name"],
            grantee_key=directory_key(citizen, world, world.bank),
        )
        receipt = citizen.post(
            "/v1/grants", signed | {"key_package": base64.b64encode(package.to_bytes()).decode()}
        )
        assert receipt["grant_id"] == gid
        assert "name, income" in receipt["terms_text"]
    assert package_row(db_url, gid) == 1

    with DataSafeClient(server.url, world.bank.key) as bank:
        ok = bank.get(f"/v1/grants/{gid}/verify", params={"fields_mask": 0b01001})
        assert ok["allowed"] is True
        wider = bank.get(f"/v1/grants/{gid}/verify", params={"fields_mask": 0b01011})
        assert wider["code"] == "fields_not_granted"
        assert_problem(bank.request("GET", f"/v1/assets/{aid}/sealed"), 403, "forbidden")
        # pull: recorded on chain first, then the disclosure
        request = world.sign_access(world.bank, gid, 0b01001)
        pulled = bank.post("/v1/access", request)
        assert pulled["fields"] == ["name", "income"] and pulled["use"] == 1
        assert "key_package" not in pulled
        raw = base64.b64decode(pulled["disclosure"])
        disclosure = Disclosure.from_bytes(raw)
        # only the granted fields' ciphertexts travel
        assert [d.field.name for d in disclosure.fields] == ["name", "income"]
        for f in sealed.fields:
            assert (f.ciphertext in raw) is (f.name in ("name", "income"))
        # the bank opens it with its own key, trusting only the chain for root and issuer
        values = open_disclosure(
            disclosure,
            world.enc_key(world.bank),
            grant_id=bytes.fromhex(gid[2:]),
            expected_root=chain_root,
            expected_issuer=bytes.fromhex(chain_issuer[2:]),
        )
        assert values == {"name": PLAIN["name"], "income": PLAIN["income"]}
        with pytest.raises(TamperedProofError):
            open_disclosure(
                disclosure,
                world.enc_key(world.bank),
                grant_id=bytes.fromhex(gid[2:]),
                expected_root=b"\x00" * 32,
            )
        # a field outside the grant cannot be decrypted with anything the bank received
        keys = disclosure.package.open(
            world.enc_key(world.bank), grant_id=bytes.fromhex(gid[2:]), root=chain_root
        )
        assert set(keys) == {"name", "income"}
        for outside in ("id_number", "address", "employer"):
            field = fetched.fields[fetched.index_of(outside)]
            for key in keys.values():
                with pytest.raises(TamperedCiphertextError):
                    decrypt_field(key, sealed.asset_id, 1, field)
        anchor = pulled["anchor"]
        assert anchor["root"] == "0x" + chain_root.hex()
        assert anchor["issuer"] == chain_issuer == world.issuer.address
        assert disclosure.anchor.block_number == anchor["block"]
        # the bank's one access-record check: the pinned ledger's log, in its own receipt
        with RpcClient(world.rpc_url) as rpc:
            record = verify_access_record(
                rpc,
                read_deployment(rpc, world.ledger_address),
                tx_hash=pulled["access"]["tx_hash"],
                grant_id=bytes.fromhex(gid[2:]),
                grantee=world.bank.address,
                nonce=int(request["nonce"]),
                fields_mask=0b01001,
                claimed_use=pulled["use"],
            )
        assert record.use == 1 and record.tx_hash == pulled["access"]["tx_hash"]
        assert world.uses(bytes.fromhex(gid[2:])) == 1
        # the same signed access request again: the chain refuses, no data
        resent = bank.request("POST", "/v1/access", json_body=request)
        assert_problem(resent, 409, "access_nonce_used")
        assert "disclosure" not in resent.json()

    with DataSafeClient(server.url, world.citizen.key) as citizen:
        citizen.post(f"/v1/grants/{gid}/revoke", world.sign_action(world.citizen, "revoke", gid))
    assert package_row(db_url, gid) == 0  # crypto-shredding: the row is gone
    with DataSafeClient(server.url, world.bank.key) as bank:
        revoked = bank.get(f"/v1/grants/{gid}/verify", params={"fields_mask": 0b01001})
        assert revoked["code"] == "grant_revoked"
        body = world.sign_access(world.bank, gid, 0b01001)
        refused = assert_problem(
            bank.request("POST", "/v1/access", json_body=body), 403, "grant_revoked"
        )
        assert "disclosure" not in refused
    assert world.uses(bytes.fromhex(gid[2:])) == 1
    assert len(blobs(tmp_path)) == 1


def test_bad_uploads_and_packages_change_nothing(
    server: LiveServer, world: World, db_url: str, tmp_path: Path
) -> None:
    sid = register_schema(server, world)
    aid = keccak(b"bad upload")
    owner_key = world.enc_key(world.citizen).public_key
    good = seal_asset(list(PLAIN.items()), asset_id=aid, version=1, owner_key=owner_key)
    first = good.fields[0]
    flipped = first.ciphertext[:-1] + bytes([first.ciphertext[-1] ^ 1])
    tampered = dataclasses.replace(
        good, fields=(dataclasses.replace(first, ciphertext=flipped), *good.fields[1:])
    )
    to_other = seal_asset(
        list(PLAIN.items()), asset_id=aid, version=1, owner_key=world.enc_key(world.bank).public_key
    )
    reordered = seal_asset(
        list(reversed(PLAIN.items())), asset_id=aid, version=1, owner_key=owner_key
    )
    v2 = seal_asset(list(PLAIN.items()), asset_id=aid, version=2, owner_key=owner_key)
    cases: dict[str, tuple[bytes, str, str]] = {
        "tampered ciphertext": (tampered.to_bytes(), anchor_tx(world, sid, good), "ciphertexts"),
        "anchor digest differs": (
            good.to_bytes(),
            anchor_tx(world, sid, good, digest=b"\x02" * 32),
            "ciphertextDigest",
        ),
        "anchor root differs": (
            good.to_bytes(),
            anchor_tx(world, sid, good, root=b"\x01" * 32),
            "root",
        ),
        "anchor for another asset": (
            good.to_bytes(),
            anchor_tx(world, sid, good, asset_id=keccak(b"other")),
            "asset",
        ),
        "sealed to another key": (to_other.to_bytes(), anchor_tx(world, sid, to_other), "key"),
        "fields out of schema order": (
            reordered.to_bytes(),
            anchor_tx(world, sid, reordered),
            "schema",
        ),
        "wrong version": (v2.to_bytes(), anchor_tx(world, sid, v2), "version"),
    }
    with DataSafeClient(server.url, world.issuer.key) as c:
        for what, (sealed, raw, word) in cases.items():
            problem = assert_problem(upload(c, sealed, raw), 400, "sealed_asset_mismatch")  # type: ignore[arg-type]
            assert word in str(problem["detail"]), (what, problem["detail"])
        for junk in (b"\x00" * 64, good.to_bytes()[:-1], good.to_bytes() + b"\x00"):
            problem = assert_problem(
                upload(c, junk, anchor_tx(world, sid, good)),  # type: ignore[arg-type]
                400,
                "invalid_vault_data",
            )
        # sealed to the bank and anchored to the bank: the contract refuses (not a subject)
        contract = upload(c, to_other.to_bytes(), anchor_tx(world, sid, to_other, owner=world.bank))
        assert_problem(contract, 409, "contract_rejected")  # type: ignore[arg-type]
        assert c.get("/v1/assets") == []
    assert blobs(tmp_path) == []
    assert world.ledger.functions.getAsset(aid).call()[1] == 0  # status none: nothing anchored

    # a key package made for another grant is refused, nothing relayed or stored
    publish_key(server, world, world.citizen)
    sealed = issue(server, world, sid, tag=b"ok")
    signed = world.sign_grant(
        world.citizen, asset_id=sealed.asset_id, grantee=world.bank.address, fields_mask=0b11
    )
    gid = signed.pop("grant_id")
    foreign = build_key_package(
        sealed,
        world.enc_key(world.citizen),
        grant_id=b"\x42" * 32,
        fields=FIELDS[:2],
        grantee_key=world.enc_key(world.bank).public_key,
    )
    with DataSafeClient(server.url, world.citizen.key) as c:
        body = signed | {"key_package": base64.b64encode(foreign.to_bytes()).decode()}
        problem = assert_problem(
            c.request("POST", "/v1/grants", json_body=body), 400, "key_package_mismatch"
        )
        assert gid in str(problem["detail"]) and problem["grant_id"] == gid
        assert c.get("/v1/grants") == []
    assert package_row(db_url, gid) == 0
    assert world.ledger.functions.getGrant(bytes.fromhex(gid[2:])).call()[8] == 0


def test_new_version_supersedes(server: LiveServer, world: World) -> None:
    sid = register_schema(server, world)
    publish_key(server, world, world.citizen)
    v1 = issue(server, world, sid)
    aid = "0x" + v1.asset_id.hex()
    new_id = keccak(b"asset v2")
    v2 = seal_asset(
        [(n, b"23000" if n == "income" else v) for n, v in PLAIN.items()],
        asset_id=new_id,
        version=2,
        owner_key=world.enc_key(world.citizen).public_key,
    )
    raw = world.raw_tx(
        world.issuer,
        "supersedeAsset",
        v1.asset_id,
        new_id,
        v2.root,
        v2.ciphertext_digest,
    )
    with DataSafeClient(server.url, world.issuer.key) as c:
        # the old version's sealed bytes under the new anchor: refused, nothing relayed
        assert_problem(
            upload(c, v1.to_bytes(), raw, f"/v1/assets/{aid}/versions"),  # type: ignore[arg-type]
            400,
            "sealed_asset_mismatch",
        )
        resp = upload(c, v2.to_bytes(), raw, f"/v1/assets/{aid}/versions")
        out = resp.json()  # type: ignore[attr-defined]
        assert out["version"] == 2 and out["previous"] == aid
        assert c.get(f"/v1/assets/{aid}")["status"] == "superseded"
    with DataSafeClient(server.url, world.citizen.key) as c:
        fetched = c.get(f"/v1/assets/{out['asset_id']}/sealed")["sealed"]
        opened = open_asset(
            SealedAsset.from_bytes(base64.b64decode(fetched)),
            world.enc_key(world.citizen),
            expected_root=bytes(world.ledger.functions.getAsset(new_id).call()[5]),
        )
        assert opened.fields["income"] == b"23000"
        assert len(c.get("/v1/assets")) == 2


def test_concurrent_pulls_are_batched_and_exhaust(
    world: World, db_url: str, tmp_path: Path
) -> None:
    settings = world_settings(world, db_url, tmp_path, access_batch_window_ms=500)
    with live_server(settings) as server:
        sid = register_schema(server, world)
        publish_key(server, world, world.citizen)
        sealed = issue(server, world, sid)
        signed = world.sign_grant(
            world.citizen,
            asset_id=sealed.asset_id,
            grantee=world.bank.address,
            fields_mask=0b11,
            max_uses=6,
        )
        gid = signed.pop("grant_id")
        package = build_key_package(
            sealed,
            world.enc_key(world.citizen),
            grant_id=bytes.fromhex(gid[2:]),
            fields=FIELDS[:2],
            grantee_key=world.enc_key(world.bank).public_key,
        )
        with DataSafeClient(server.url, world.citizen.key) as citizen:
            citizen.post(
                "/v1/grants",
                signed | {"key_package": base64.b64encode(package.to_bytes()).decode()},
            )
        requests = [world.sign_access(world.bank, gid, 0b11) for _ in range(8)]

        def pull(body: dict[str, object]) -> tuple[int, dict[str, object]]:
            with DataSafeClient(server.url, world.bank.key) as bank:
                resp = bank.request("POST", "/v1/access", json_body=body)
                return resp.status_code, resp.json()

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(pull, requests))
    ok = [body for status, body in results if status == 200]
    refused = [body for status, body in results if status != 200]
    # six uses: six pulls get data, two are refused (before the chain, or inside a batch
    # when they were admitted before the sixth use was recorded)
    assert len(ok) == 6 and len(refused) == 2
    assert {b["code"] for b in refused} == {"uses_exhausted"}
    assert all("disclosure" not in b for b in refused)
    assert sorted(b["use"] for b in ok) == [1, 2, 3, 4, 5, 6]  # type: ignore[type-var]
    tx_hashes = {b["access"]["tx_hash"] for b in ok}  # type: ignore[index]
    assert len(tx_hashes) < len(ok)
    assert world.uses(bytes.fromhex(gid[2:])) == 6
    root = sealed.root
    for b in ok:
        values = open_disclosure(
            Disclosure.from_bytes(base64.b64decode(str(b["disclosure"]))),
            world.enc_key(world.bank),
            grant_id=bytes.fromhex(gid[2:]),
            expected_root=root,
        )
        assert values == {"name": PLAIN["name"], "id_number": PLAIN["id_number"]}


def test_pull_without_intact_data_records_nothing(
    server: LiveServer, world: World, db_url: str, tmp_path: Path
) -> None:
    """A corrupted ciphertext blob or a missing key package: a problem, no access record."""
    sid = register_schema(server, world)
    publish_key(server, world, world.citizen)
    sealed = issue(server, world, sid)
    signed = world.sign_grant(
        world.citizen, asset_id=sealed.asset_id, grantee=world.bank.address, fields_mask=0b11
    )
    gid = signed.pop("grant_id")
    package = build_key_package(
        sealed,
        world.enc_key(world.citizen),
        grant_id=bytes.fromhex(gid[2:]),
        fields=FIELDS[:2],
        grantee_key=world.enc_key(world.bank).public_key,
    )
    with DataSafeClient(server.url, world.citizen.key) as citizen:
        body = signed | {"key_package": base64.b64encode(package.to_bytes()).decode()}
        citizen.post("/v1/grants", body)
    (blob,) = blobs(tmp_path)
    good = blob.read_bytes()
    blob.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with DataSafeClient(server.url, world.bank.key) as bank:
        request = world.sign_access(world.bank, gid, 0b11)
        assert_problem(
            bank.request("POST", "/v1/access", json_body=request), 503, "vault_unavailable"
        )
        blob.write_bytes(good)
        # the package row deleted behind the service's back (e.g. a crashed revocation)
        engine = api_db.make_engine(db_url)
        with engine.begin() as conn:
            conn.execute(api_db.key_packages.delete())
        engine.dispose()
        missing = world.sign_access(world.bank, gid, 0b11)
        assert_problem(
            bank.request("POST", "/v1/access", json_body=missing), 410, "key_package_missing"
        )
    assert world.uses(bytes.fromhex(gid[2:])) == 0


def test_pull_whose_record_is_not_mined_in_time_serves_nothing(
    world: World, db_url: str, tmp_path: Path
) -> None:
    """No record, no data: a batch not confirmed within the timeout answers relay_failed."""
    settings = world_settings(world, db_url, tmp_path, tx_timeout_seconds=2.0)
    with live_server(settings) as server:
        sid = register_schema(server, world)
        publish_key(server, world, world.citizen)
        sealed = issue(server, world, sid)
        signed = world.sign_grant(
            world.citizen, asset_id=sealed.asset_id, grantee=world.bank.address, fields_mask=0b1
        )
        gid = signed.pop("grant_id")
        package = build_key_package(
            sealed,
            world.enc_key(world.citizen),
            grant_id=bytes.fromhex(gid[2:]),
            fields=FIELDS[:1],
            grantee_key=world.enc_key(world.bank).public_key,
        )
        with DataSafeClient(server.url, world.citizen.key) as citizen:
            body = signed | {"key_package": base64.b64encode(package.to_bytes()).decode()}
            citizen.post("/v1/grants", body)
        world.w3.provider.make_request("evm_setAutomine", [False])
        try:
            with DataSafeClient(server.url, world.bank.key) as bank:
                request = world.sign_access(world.bank, gid, 0b1)
                resp = bank.request("POST", "/v1/access", json_body=request)
                problem = assert_problem(resp, 503, "relay_failed")
                assert "disclosure" not in problem and resp.headers["retry-after"]
        finally:
            world.w3.provider.make_request("evm_setAutomine", [True])
            world.w3.provider.make_request("evm_mine", [])
        # the record was only late: once mined it counts, and the next pull is served
        assert world.uses(bytes.fromhex(gid[2:])) == 1
        with DataSafeClient(server.url, world.bank.key) as bank:
            pulled = bank.post("/v1/access", world.sign_access(world.bank, gid, 0b1))
        assert pulled["use"] == 2
