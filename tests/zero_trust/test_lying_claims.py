"""A lying service against ``datasafe claims``: an altered claim, a hidden claim and a claim
the service says it filed but did not are each refused by the wallet's own chain reads."""

from __future__ import annotations

import json
import os
import time
from typing import Any

from _liar import LyingProxy
from _stack import Stack
from _wallet import Wallet

from wallet_cli.errors import EXIT_CONTRADICTED, EXIT_NOT_CONFIRMED


def _code(wallet: Wallet, exit_code: int, *args: str, **env: str) -> tuple[str, str]:
    r = wallet.run("--json", *args, **env)
    assert r.exit_code == exit_code, f"exit {r.exit_code}\n{r.stdout}\n{r.stderr}"
    err = json.loads(r.stdout.strip().splitlines()[-1])["error"]
    return str(err["code"]), str(err["message"])


def _filed(stack: Stack, reference: str) -> dict[str, Any]:
    schema = "0x" + stack.schema_id.hex()
    out: dict[str, Any] = stack.citizen.json(
        "claims", "file", "taxbureau", schema, "--reference", reference
    )
    return out


def _listed(stack: Stack, want: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        rows: list[dict[str, Any]] = stack.citizen.json("claims", "list")
        if len(rows) >= want or time.monotonic() > deadline:
            return rows
        time.sleep(0.3)


def test_lies_about_claims_are_refused(stack: Stack, liar: LyingProxy) -> None:
    first, second = _filed(stack, "lie-1"), _filed(stack, "lie-2")
    honest = _listed(stack, 2)
    assert {first["claim_id"], second["claim_id"]} <= {r["claim_id"] for r in honest}
    env = {"DATASAFE_API": liar.url, "DATASAFE_CONFIRM_TIMEOUT": "1"}

    # 1. The service says the department fulfilled a claim that is still open.
    def fulfilled(_m: str, _p: str, _q: str, _b: bytes, rows: Any) -> Any:
        return [
            r | {"status": "fulfilled", "asset_id": "0x" + "ab" * 32}
            if r["claim_id"] == first["claim_id"]
            else r
            for r in rows
        ]

    liar.rewrite("GET", "/v1/claims", fulfilled)
    code, msg = _code(stack.citizen, EXIT_CONTRADICTED, "claims", "list", **env)
    assert code == "service_mismatch" and "status" in msg and first["claim_id"] in msg
    # The regulator's audit re-derives every claim from the claims contract's logs.
    assert stack.regulator.json("claims", "audit")["ok"] is True
    code, msg = _code(stack.regulator, EXIT_CONTRADICTED, "claims", "audit", **env)
    assert code == "audit_drift" and f"altered: {first['claim_id']} status" in msg

    # 2. The service hides a claim the chain shows she filed.
    liar.honest()
    liar.rewrite(
        "GET",
        "/v1/claims",
        lambda _m, _p, _q, _b, rows: [r for r in rows if r["claim_id"] != second["claim_id"]],
    )
    code, msg = _code(stack.citizen, EXIT_CONTRADICTED, "claims", "list", **env)
    assert code == "service_mismatch" and "leaves out 1" in msg

    # 3. The service says it filed a claim, and sent nothing.
    liar.honest()

    def swallow(_m: str, _p: str, _q: str, body: bytes) -> dict[str, Any]:
        request = json.loads(body)["request"]
        made_up = "0x" + os.urandom(32).hex()
        return {
            "claim_id": "0x" + "cd" * 32,
            "subject": request["subject"],
            "department": request["department"],
            "schema_id": request["schema_id"],
            "status": "open",
            "filed_at": 1,
            "tx_hash": made_up,
        }

    liar.intercept("POST", "/v1/claims", swallow)
    schema = "0x" + stack.schema_id.hex()
    code, msg = _code(
        stack.citizen, EXIT_NOT_CONFIRMED, "claims", "file", "taxbureau", schema,
        "--reference", "swallowed", **env,
    )  # fmt: skip
    assert code == "not_confirmed" and "not on the chain you read" in msg


def test_a_claim_event_the_chain_does_not_hold_is_refused(stack: Stack, liar: LyingProxy) -> None:
    """Her event stream says a claim was refused; the log its transaction holds is a filing."""
    filed = _filed(stack, "stream-lie")
    receipt = stack.world.w3.eth.get_transaction_receipt(filed["tx_hash"])
    (log,) = [
        lg for lg in receipt["logs"] if lg["address"].lower() != stack.world.ledger_address.lower()
    ]
    forged = {
        "event": "ClaimRefused", "claim_id": filed["claim_id"], "subject": filed["subject"],
        "department": filed["department"], "schema_id": filed["schema_id"],
        "at": filed["filed_at"], "asset_id": None, "reason_code": 1, "reason": "no_record",
        "block_number": receipt["blockNumber"], "log_index": log["logIndex"],
        "tx_hash": filed["tx_hash"], "kind": "claim_refused",
    }  # fmt: skip
    sse = f"id: x\nevent: claim_refused\ndata: {json.dumps(forged)}\n\n".encode()
    liar.intercept("GET", "/v1/me/events", lambda *_: sse)
    code, msg = _code(
        stack.citizen, EXIT_CONTRADICTED, "history", "list", "--follow", "--follow-for", "5",
        DATASAFE_API=liar.url,
    )  # fmt: skip
    assert code == "service_mismatch"
    assert "event 'ClaimRefused'" in msg and "'ClaimFiled'" in msg


def test_per_department_figures_the_chain_does_not_show_are_drift(
    stack: Stack, liar: LyingProxy
) -> None:
    """The service hides a department's outstanding claims from the regulator."""
    _filed(stack, "stats-lie")
    honest = stack.regulator.json("claims", "stats")["departments"]
    (dept,) = [d for d in honest if d["open"] > 0]

    def none_open(_m: str, _p: str, _q: str, _b: bytes, rows: Any) -> Any:
        return [r | {"open": 0, "oldest_open_at": None} for r in rows]

    liar.rewrite("GET", "/v1/claims/stats", none_open)
    code, msg = _code(
        stack.regulator, EXIT_CONTRADICTED, "claims", "stats",
        DATASAFE_API=liar.url, DATASAFE_CONFIRM_TIMEOUT="1",
    )  # fmt: skip
    assert code == "audit_drift" and f"altered: {dept['department']} open" in msg
