"""Claims test helpers: a subject's signed claim body, a department's raw answer, the listing
once the index has caught up."""

from __future__ import annotations

import time
from typing import Any

from _api_world import Actor, World
from eth_account import Account
from eth_utils import keccak

from api.client import DataSafeClient
from ledger import claims as cl

SCHEMA = keccak(text="claims:birth-certificate/v1")
INDEX_WAIT_SECONDS = 30.0


def _claims(world: World) -> Any:
    return world.w3.eth.contract(
        address=cl.claims_address(world.ledger_address), abi=cl.claims_abi().abi
    )


def _body(world: World, signer: Actor, department: Actor, **over: Any) -> dict[str, Any]:
    subject = over.pop("subject", signer.address)
    nonce = over.pop("nonce", None)
    if nonce is None:
        nonce = _claims(world).functions.nonces(subject).call()
    request = cl.ClaimRequest(
        subject,
        department.address,
        over.pop("schema", SCHEMA),
        cl.reference_hash(department.address, SCHEMA, "BC-2025-0042"),
        nonce,
        over.pop("deadline", world.now() + 600),
    )
    sig = cl.sign_request(signer.key_bytes, world.chain_id, world.ledger_address, request)
    return {"request": request.to_json(), "signature": "0x" + sig.hex()}


def _answer(world: World, department: Actor, fn: str, *args: Any) -> dict[str, str]:
    call = getattr(_claims(world).functions, fn)(*args)
    tx = call.build_transaction(
        {
            "from": department.address,
            "nonce": world.w3.eth.get_transaction_count(department.address, "pending"),
            "chainId": world.chain_id,
            "gas": 300_000,
        }
    )
    raw = bytes(Account.sign_transaction(tx, department.key).raw_transaction)
    return {"raw_transaction": "0x" + raw.hex()}


def _indexed(c: DataSafeClient, path: str, want: int, **params: Any) -> list[Any]:
    """The listing once the index shows ``want`` claims, all answered (one row per page)."""
    deadline = time.monotonic() + INDEX_WAIT_SECONDS
    while True:
        rows: list[Any] = c.get_all(path, params=params, page_size=1)
        settled = len(rows) >= want and all(r["status"] != "open" for r in rows)
        if settled or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)
