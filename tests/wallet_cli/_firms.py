"""An enterprise with three officers and a 2-of-3 policy set through the wallet, an asset of its
own, and an officer's proposal made with the service's API (the wallet proposal tests)."""

from __future__ import annotations

import base64
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

from _api_world import ENTERPRISE, INDIVIDUAL, SUBJECT, Actor
from _stack import FIELDS, Stack

from api.client import DataSafeClient
from ledger import eip712
from ledger.calls import grant_id_of
from ledger.models import GrantTerms
from vault.keys import PublicEncryptionKey
from vault.packages import build_key_package
from vault.sealing import SealedAsset


@dataclass
class Firm:
    actor: Actor
    officers: list[Actor]
    asset_id: str
    sealed: SealedAsset


def make_firm(stack: Stack) -> Firm:
    world, w = stack.world, stack.citizen
    tag = secrets.token_hex(4)
    firm = Actor(f"firm {tag}", "0x" + os.urandom(32).hex())
    world.admit(firm, SUBJECT, ENTERPRISE)
    with DataSafeClient(stack.server.url, firm.key) as c:
        c.put("/v1/members/me/key", world.key_body(firm))
    w.ok("account", "import", f"firm-{tag}", "--kind", "enterprise", DATASAFE_IMPORT_KEY=firm.key)
    officers = []
    for i in range(3):
        officer = Actor(f"officer {tag} {i}", "0x" + os.urandom(32).hex())
        world.admit(officer, SUBJECT, INDIVIDUAL, bind_key=False)
        w.ok("account", "import", f"o{i}-{tag}", "--kind", "individual",
             DATASAFE_IMPORT_KEY=officer.key)  # fmt: skip
        w.ok("-p", f"firm-{tag}", "agent", "add", officer.address, "--days", "30")
        officers.append(officer)
    policy = w.json("-p", f"firm-{tag}", "agent", "policy", "2")
    assert policy["threshold"] == 2
    assert world.ledger.functions.approvalPolicy(firm.address, 1).call()[0] == 2
    asset_id, sealed = stack.issue_sealed(f"firm {tag}", owner=firm)
    return Firm(firm, officers, asset_id, sealed)


def profile(firm: Firm, i: int) -> str:
    return f"o{i}-{firm.actor.name.split()[1]}"


def propose(stack: Stack, firm: Firm, officer: Actor) -> str:
    """An officer's proposal, made with the service's API (its own approval included)."""
    world = stack.world
    nonce = secrets.randbits(64)
    gid = "0x" + grant_id_of(firm.actor.address, nonce).hex()
    terms = GrantTerms(
        bytes.fromhex(firm.asset_id[2:]), world.bank.address, 1, 0b1000, 0, world.now() + 86_400, 0
    )
    deadline = int(time.time()) + 3600
    with DataSafeClient(stack.server.url, officer.key) as c:
        bank = c.get(f"/v1/members/{world.bank.address}")
        package = build_key_package(
            firm.sealed,
            world.enc_key(firm.actor),
            grant_id=bytes.fromhex(gid[2:]),
            fields=[FIELDS[3]],
            grantee_key=PublicEncryptionKey.from_bytes(base64.b64decode(bank["encryption_key"])),
        )
        epoch = world.ledger.functions.approvalPolicy(firm.actor.address, 1).call()[1]
        digest = eip712.approval_digest(
            world.domain, firm.actor.address, epoch, terms, nonce, deadline
        )
        body: dict[str, Any] = {
            "terms": {
                "asset_id": firm.asset_id,
                "grantee": world.bank.address,
                "purpose": 1,
                "fields_mask": 0b1000,
                "not_before": 0,
                "expiry": terms.expiry,
                "max_uses": 0,
            },
            "nonce": str(nonce),
            "deadline": deadline,
            "approval": "0x" + eip712.sign_digest(officer.key_bytes, digest).hex(),
            "key_package": base64.b64encode(package.to_bytes()).decode(),
        }
        return str(c.post("/v1/proposals", body)["proposal_id"])
