"""A populated ledger for the security matrices: objects that belong to someone, and every
kind of actor who is *not* that someone.

On the session's deployed ledger (rolled back afterwards) and one live server on SQLite:

- an asset of ``citizen`` issued by ``issuer``, and a grant of it to ``bank`` (through the API,
  so the key package is stored); a webhook of ``bank``;
- an enterprise subject with an agent, an asset of the enterprise, then the enterprise
  suspended: its agent is the "agent of a suspended enterprise";
- an active enterprise ``firm`` with two live agents and a 2-of-N approval policy, an asset
  of the firm, and a grant proposal of it by ``firm_agent`` waiting for a second approval
  (issue 18);
- a consumer (a bank) that is suspended;
- ``outsider``, a key that is no member (its signatures are valid), and no signature at all;
- a sealed access by ``issuer`` to the citizen's asset (issue 18), still before its date;
- a grant of the asset to ``bank``, revoked: its deletion acknowledgement is owed (issue 19).

Every write a wrong actor tries is compared against a fingerprint of the database (row count
of every table) and of the chain (block number), which must not move.
"""

from __future__ import annotations

import base64
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from _api_seed import (
    FIELDS,
    SeededAsset,
    key_package,
    proposal_payload,
    seal_for,
    seed_asset,
)
from _api_server import LiveServer, live_server, world_settings
from _api_world import (
    BANK,
    CONSUMER,
    ENTERPRISE,
    INDIVIDUAL,
    SUBJECT,
    Actor,
    World,
)
from _sealed_helpers import DAY, companion_tx
from eth_abi import encode
from eth_hash.auto import keccak

from api import _store
from api.client import DataSafeClient
from api.db import make_engine, migrate
from ledger import sealed as sl
from ledger.eip712 import sign_digest
from ledger.lifecycle import Acknowledgement, ack_digest
from ledger.models import ANY_PURPOSE, AckKind
from ledger.rpc import RpcClient

#: Actors of the matrices, by name; ``unsigned`` sends no envelope.
ACTOR_NAMES = (
    "citizen",
    "citizen2",
    "bank",
    "bank2",
    "issuer",
    "issuer2",
    "regulator",
    "governor",
    "outsider",
    "suspended",
    "agent_of_suspended",
    "firm",
    "firm_agent",
    "firm_agent2",
    "unsigned",
)
#: Actors who are not active members: refused whatever they ask.
NOT_ACTIVE = frozenset({"outsider", "suspended", "unsigned"})


def _key(tag: str) -> str:
    return "0x" + keccak(f"datasafe/tests/security/{tag}".encode()).hex()


@dataclass
class Scene:
    world: World
    server: LiveServer
    db_url: str
    asset: SeededAsset
    grant_id: str
    webhook_id: str
    enterprise: Actor
    agent: Actor
    enterprise_asset: SeededAsset
    actors: dict[str, Actor | None] = field(default_factory=dict)
    #: The citizen's open claim to the issuer (issue 17).
    claim_id: str = ""
    #: The issuer's sealed access to the citizen's asset, and what it hides (issue 18).
    seal_id: int = 0
    opening: sl.Opening | None = None
    #: A revoked grant to ``bank``: only the grantee's signature is missing to acknowledge it.
    ended_grant_id: str = ""
    #: The active enterprise (2 approvals needed), its asset, and its pending proposal.
    firm: Actor | None = None
    firm_asset: SeededAsset | None = None
    proposal: dict[str, Any] = field(default_factory=dict)

    def client(self, name: str) -> DataSafeClient:
        actor = self.actors[name]
        return DataSafeClient(
            self.server.url,
            None if actor is None else actor.key,
            chain_id=self.world.chain_id,
            ledger_address=self.world.ledger_address,
        )

    def fingerprint(self, *, nonces: bool = True) -> dict[str, int]:
        """Row count of every table the service writes on a request (its own, the vault's,
        the webhooks'), plus the chain's block number (the event index follows the chain on
        its own, so its tables are covered by the block number)."""
        engine = sa.create_engine(self.db_url)
        try:
            names = [
                n for n in sa.inspect(engine).get_table_names() if n.startswith(("api_", "vault_"))
            ]
            with engine.connect() as conn:
                counts = {
                    n: int(conn.execute(sa.text(f'SELECT count(*) FROM "{n}"')).scalar_one())
                    for n in names
                    if nonces or n != "api_request_nonces"
                }
        finally:
            engine.dispose()
        counts["<chain block>"] = int(self.world.w3.eth.block_number)
        return counts


def grant_payload(
    world: World, grantor: Actor, asset: SeededAsset, grantee: Actor, mask: int = 0b00011
) -> tuple[dict[str, Any], str]:
    """A grant of ``asset`` signed by ``grantor`` with a real key package; and its id."""
    signed = world.sign_grant(
        grantor, asset_id=asset.asset_id, grantee=grantee.address, fields_mask=mask
    )
    gid = str(signed.pop("grant_id"))
    package = key_package(world, asset, gid, mask, grantee).to_bytes()
    return signed | {"key_package": base64.b64encode(package).decode()}, gid


def upload_asset(world: World, server: LiveServer, db_url: str, tag: bytes) -> SeededAsset:
    """A schema registered on chain (field list in the service's table, as ``seed_asset``
    does), and the citizen's asset issued through ``POST /v1/assets`` so that its ciphertext
    is in the blob store and a pull can be served."""
    schema_id = keccak(b"schema" + tag + world.snapshot().encode())
    fields_hash = keccak(encode(["string[]"], [FIELDS]))
    receipt = world.transact(world.issuer, "registerSchema", schema_id, len(FIELDS), fields_hash)
    engine = make_engine(db_url)
    migrate(engine)
    try:
        _store.put_schema(
            engine,
            {
                "schema_id": "0x" + schema_id.hex(),
                "issuer": world.issuer.address.lower(),
                "name": "income statement",
                "fields": FIELDS,
                "fields_hash": "0x" + fields_hash.hex(),
                "tx_hash": None,
                "block": receipt["blockNumber"],
            },
        )
    finally:
        engine.dispose()
    asset_id = keccak(b"asset" + schema_id)
    sealed = seal_for(world, world.citizen, asset_id)
    raw = world.raw_tx(
        world.issuer,
        "anchorAsset",
        asset_id,
        world.citizen.address,
        schema_id,
        sealed.root,
        sealed.ciphertext_digest,
    )
    with DataSafeClient(server.url, world.issuer.key) as issuer:
        body = {"sealed": base64.b64encode(sealed.to_bytes()).decode(), "raw_transaction": raw}
        resp = issuer.request("POST", "/v1/assets", json_body=body)
        assert resp.status_code == 201, resp.text
    return SeededAsset(asset_id, schema_id, sealed, world.citizen)


def claim_payload(world: World, subject: Actor, schema_id: bytes) -> dict[str, Any]:
    """``subject``'s signed claim to the issuer for ``schema_id`` (POST /v1/claims body)."""
    from ledger import claims as cl

    with RpcClient(world.rpc_url) as rpc:
        nonce = cl.read_nonce(rpc, world.ledger_address, subject.address)
    ref = cl.reference_hash(world.issuer.address, schema_id, "security-scene")
    request = cl.ClaimRequest(
        subject.address, world.issuer.address, schema_id, ref, nonce, world.now() + 3600
    )
    sig = cl.sign_request(subject.key_bytes, world.chain_id, world.ledger_address, request)
    return {"request": request.to_json(), "signature": "0x" + sig.hex()}


def claim_answer(world: World, actor: Actor, fn: str, *args: Any) -> dict[str, str]:
    """``actor``'s signed (not sent) transaction to the claims companion."""
    from eth_account import Account

    from ledger import claims as cl

    data = cl.claims_abi().fn(fn).encode(*args)
    tx = {
        "to": cl.claims_address(world.ledger_address),
        "data": "0x" + data.hex(),
        "nonce": world.w3.eth.get_transaction_count(actor.address, "pending"),
        "chainId": world.chain_id,
        "gas": 300_000,
        "gasPrice": world.w3.eth.gas_price,
        "value": 0,
    }
    return {
        "raw_transaction": "0x"
        + bytes(Account.sign_transaction(tx, actor.key).raw_transaction).hex()
    }


def seal_payload(world: World, actor: Actor, asset_id: bytes) -> tuple[dict[str, str], sl.Opening]:
    """``actor``'s signed ``seal`` of ``asset_id`` (a month ahead) and what it hides."""
    opening = sl.Opening.new(world.bank.address, asset_id, 0b11, "security-scene")
    data = sl.encode_seal(asset_id, opening.commitment(), world.now() + 30 * DAY)
    return seal_action(world, actor, data), opening


def seal_action(world: World, actor: Actor, data: bytes) -> dict[str, str]:
    """``actor``'s signed (not sent) transaction to the sealed companion (``sl.encode_*``)."""
    return {"raw_transaction": companion_tx(world, actor, data)}


def ack_payload(world: World, actor: Actor, kind: AckKind, grant_id: str) -> dict[str, Any]:
    """``actor``'s signed recall or deletion acknowledgement of ``grant_id`` (no uses yet)."""
    ack = Acknowledgement(kind, bytes.fromhex(grant_id.removeprefix("0x")), 0, world.now())
    signature = sign_digest(actor.key_bytes, ack_digest(world.domain, ack))
    return {
        "kind": kind.name.lower(),
        "grant_id": grant_id,
        "uses": 0,
        "at": ack.at,
        "signature": "0x" + signature.hex(),
    }


def _firm(world: World, db_url: str) -> tuple[Actor, Actor, Actor, SeededAsset]:
    """An active enterprise with two live agents, 2 approvals for any purpose, and an asset."""
    firm = Actor("firm", _key("firm"))
    agents = (Actor("firm agent", _key("firm agent")), Actor("firm agent 2", _key("firm agent 2")))
    for actor in (firm, *agents):
        _fund(world, actor)
    world.admit(firm, SUBJECT, ENTERPRISE)
    for agent in agents:
        world.admit(agent, SUBJECT, INDIVIDUAL)
        world.transact(firm, "addAgent", agent.address, world.now() + 30 * 86_400)
    world.transact(firm, "setApprovalThreshold", ANY_PURPOSE, 2)
    return firm, *agents, seed_asset(world, db_url, owner=firm, tag=b"firm")


def _seal(world: World, server: LiveServer, asset_id: bytes) -> tuple[int, sl.Opening]:
    body, opening = seal_payload(world, world.issuer, asset_id)
    with DataSafeClient(server.url, world.issuer.key) as issuer:
        resp = issuer.request("POST", "/v1/sealed", json_body=body)
        assert resp.status_code == 201, resp.text
    return int(resp.json()["seal_id"]), opening


def _ended_grant(world: World, asset_id: bytes) -> str:
    nonce = int.from_bytes(os.urandom(8), "big")
    terms = (asset_id, world.bank.address, 1, 0b11, 0, world.now() + 86_400, 0, 3600)
    world.transact(world.citizen, "grant", terms, nonce)
    gid = bytes(world.ledger.functions.grantIdOf(world.citizen.address, nonce).call())
    world.transact(world.citizen, "revoke", gid)
    return "0x" + gid.hex()


def _settle(world: World, db_url: str) -> None:
    """The scene's own events indexed and their webhook deliveries queued, before any request
    is fingerprinted (a delivery row queued mid-matrix would look like a wrong actor's write)."""
    from api import webhooks

    engine = make_engine(db_url)
    try:
        head, deadline = int(world.w3.eth.block_number), time.monotonic() + 60
        while True:
            with engine.connect() as conn:
                last = conn.execute(sa.text("SELECT last_block FROM indexer_cursor")).scalar()
            if last is not None and int(last) >= head:
                break
            assert time.monotonic() < deadline, f"the indexer is at {last}, the chain at {head}"
            time.sleep(0.1)
        webhooks.enqueue(engine)
    finally:
        engine.dispose()


def _fund(world: World, actor: Actor) -> None:
    world.w3.provider.make_request("anvil_setBalance", [actor.address, hex(10**20)])


@contextlib.contextmanager
def build_scene(world: World, tmp: Path) -> Iterator[Scene]:
    snap = world.snapshot()
    db_url = f"sqlite:///{tmp / 'api.db'}"
    old_env = os.environ.get("DATASAFE_WEBHOOK_ALLOW_NETWORKS")
    os.environ["DATASAFE_WEBHOOK_ALLOW_NETWORKS"] = '["127.0.0.1/32"]'
    try:
        enterprise = Actor("enterprise", _key("enterprise"))
        agent = Actor("agent", _key("agent"))
        suspended = Actor("suspended", _key("suspended"))
        for actor in (enterprise, agent, suspended):
            _fund(world, actor)
        world.admit(enterprise, SUBJECT, ENTERPRISE)
        world.admit(agent, SUBJECT, INDIVIDUAL)
        world.admit(suspended, CONSUMER, BANK)
        world.transact(enterprise, "addAgent", agent.address, world.now() + 30 * 86_400)

        enterprise_asset = seed_asset(world, db_url, owner=enterprise, tag=b"enterprise")
        firm, firm_agent, firm_agent2, firm_asset = _firm(world, db_url)
        # The indexer runs so that the event-index routes (/v1/access, history) answer.
        with live_server(world_settings(world, db_url, tmp, run_indexer=True)) as srv:
            asset = upload_asset(world, srv, db_url, b"security")
            with DataSafeClient(srv.url, world.citizen.key) as citizen:
                body, grant_id = grant_payload(world, world.citizen, asset, world.bank)
                resp = citizen.request("POST", "/v1/grants", json_body=body)
                assert resp.status_code == 201, resp.text
            with DataSafeClient(srv.url, world.bank.key) as bank:
                webhook_id = str(bank.post("/v1/webhooks", {"url": "http://127.0.0.1:9/h"})["id"])
            with DataSafeClient(srv.url, world.citizen.key) as citizen:
                body = claim_payload(world, world.citizen, asset.schema_id)
                claim_id = str(citizen.post("/v1/claims", body)["claim_id"])
            seal_id, opening = _seal(world, srv, asset.asset_id)
            ended_grant_id = _ended_grant(world, asset.asset_id)
            with DataSafeClient(srv.url, firm_agent.key) as c:
                body = proposal_payload(world, firm_agent, firm, firm_asset)
                proposal = c.post("/v1/proposals", body)
                assert proposal["status"] == "pending", proposal
            world.suspend(enterprise)
            world.suspend(suspended)
            _settle(world, db_url)
            scene = Scene(
                world=world,
                server=srv,
                db_url=db_url,
                asset=asset,
                grant_id=grant_id,
                webhook_id=webhook_id,
                enterprise=enterprise,
                agent=agent,
                enterprise_asset=enterprise_asset,
                claim_id=claim_id,
                seal_id=seal_id,
                opening=opening,
                ended_grant_id=ended_grant_id,
                firm=firm,
                firm_asset=firm_asset,
                proposal=body | {"proposal_id": proposal["proposal_id"]},
            )
            scene.actors = {
                "citizen": world.citizen,
                "citizen2": world.citizen2,
                "bank": world.bank,
                "bank2": world.bank2,
                "issuer": world.issuer,
                "issuer2": world.issuer2,
                "regulator": world.regulator,
                "governor": world.governor,
                "outsider": world.outsider,
                "suspended": suspended,
                "agent_of_suspended": agent,
                "firm": firm,
                "firm_agent": firm_agent,
                "firm_agent2": firm_agent2,
                "unsigned": None,
            }
            yield scene
    finally:
        if old_env is None:
            os.environ.pop("DATASAFE_WEBHOOK_ALLOW_NETWORKS", None)
        else:
            os.environ["DATASAFE_WEBHOOK_ALLOW_NETWORKS"] = old_env
        world.revert(snap)
