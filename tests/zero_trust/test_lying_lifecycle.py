"""The lifecycle against a lying service: an acknowledgement the service claims to have
recorded is believed only once the grant on chain carries it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _liar import LyingProxy
from _stack import Stack

from ledger.client import LedgerClient
from wallet_cli.errors import EXIT_CONTRADICTED


def test_acknowledgement_the_chain_does_not_carry_is_refused(
    stack: Stack, liar: LyingProxy, tmp_path: Path
) -> None:
    aid = stack.issue("ack-lie")
    gid = stack.citizen.json(
        "grant", "create", "--asset", aid, "--to", "citybank", "--fields", "name,income",
        "--purpose", "loan", "--days", "30", "--yes",
    )["grant_id"]  # fmt: skip
    out = tmp_path / "pulled"
    stack.bank.ok("pull", gid, "--out", str(out))
    stack.citizen.ok("grant", "revoke", gid, "--yes")

    def recorded(_m: str, _p: str, _q: str, body: bytes) -> Any:
        sent = json.loads(body)  # answered as if relayed; nothing reaches the chain
        return sent | {"tx_hash": "0x" + "ab" * 32, "block": 1}

    liar.intercept("POST", "/v1/acknowledgements", recorded)
    r = stack.bank.run(
        "--json", "institution", "delete", gid, "--out", str(out), DATASAFE_API=liar.url
    )
    assert r.exit_code == EXIT_CONTRADICTED, r.stdout + r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["error"]["code"] == "acknowledgement_not_on_chain"
    with LedgerClient(stack.rpc, stack.world.ledger_address) as lc:
        assert lc.get_grant(bytes.fromhex(gid[2:])).acks == 0
    # Honest again: the same command records it, and the chain says so.
    liar.honest()
    done = stack.bank.json("institution", "delete", gid, "--out", str(out), DATASAFE_API=liar.url)
    assert done["kind"] == "deletion"
    with LedgerClient(stack.rpc, stack.world.ledger_address) as lc:
        assert lc.get_grant(bytes.fromhex(gid[2:])).acks == 2
