"""A service that words terms one way and means another: the wallet never shows its
``terms_text``. Every text of terms the wallet prints (a proposal, a consent receipt, a grant,
the revoke/pause prompt) is written here with :func:`api.terms.describe_terms` from terms the
wallet checked itself: the terms it signed, the proposer's signature over a proposal's terms,
the grant on the chain; the asset and the field names read from the chain too.

The service's text is ignored rather than compared: a wording the wallet does not print
cannot mislead, and an honest service of another version (another catalogue of purposes,
another time format) is not called a liar. Lies in the terms themselves are refused (exit 6).
"""

from __future__ import annotations

import json
from typing import Any

from _firms import make_firm, profile, propose
from _liar import LyingProxy
from _stack import FIELDS, Stack

from api.terms import describe_terms
from ledger.client import LedgerClient
from ledger.models import GrantStatus
from wallet_cli._home import Home
from wallet_cli.errors import EXIT_CONTRADICTED

#: What the lying service says of every grant: narrower and shorter than the truth.
LIE = "citybank may read name only, for 1 day, once; it deletes it at once."


def _lie_in_text(_m: str, _p: str, _q: str, _b: bytes, answer: Any) -> Any:
    if isinstance(answer, list):
        return [a | {"terms_text": LIE} for a in answer]
    return answer | {"terms_text": LIE}


def _chain_text(stack: Stack, gid: str) -> str:
    """The grant on chain in words, as the wallet must write them (schema names, anchor)."""
    with LedgerClient(stack.rpc, stack.world.ledger_address) as lc:
        g = lc.get_grant(bytes.fromhex(gid[2:]))
        a = lc.get_asset(g.asset_id)
    return describe_terms(g, FIELDS, {"version": a.version, "issuer": a.issuer})


def _error(stdout: str) -> dict[str, Any]:
    return dict(json.loads(stdout.strip().splitlines()[-1])["error"])


def test_a_proposals_terms_are_worded_by_the_wallet(stack: Stack, liar: LyingProxy) -> None:
    firm = make_firm(stack)
    w, officer = stack.citizen, profile(firm, 1)
    pid = propose(stack, firm, firm.officers[0])
    honest = w.json("-p", officer, "proposal", "show", pid, DATASAFE_API=liar.url)
    assert FIELDS[3] in honest["terms_text"] and "loan underwriting" in honest["terms_text"]

    liar.rewrite("GET", rf"/v1/proposals/{pid}", _lie_in_text)
    liar.rewrite("GET", r"/v1/proposals", _lie_in_text)
    shown = w.json("-p", officer, "proposal", "show", pid, DATASAFE_API=liar.url)
    assert shown["terms_text"] == honest["terms_text"]
    listed = w.json(
        "-p", officer, "proposal", "list", "--for", firm.actor.address, DATASAFE_API=liar.url
    )
    assert [r["terms_text"] for r in listed] == [honest["terms_text"]]
    human = w.ok("-p", officer, "proposal", "show", pid, DATASAFE_API=liar.url).stdout
    assert "name only" not in human and "loan underwriting" in human
    # approving through the liar: the prompt shows the wallet's words, and declining signs nothing
    r = w.run("-p", officer, "proposal", "approve", pid, input="n\n", DATASAFE_API=liar.url)
    assert r.exit_code == 2 and "name only" not in r.stdout and "loan underwriting" in r.stdout

    # The terms themselves narrowed, and the approvals that would betray it left out: terms
    # nobody signed are refused.
    def other_terms(_m: str, _p: str, _q: str, _b: bytes, p: Any) -> Any:
        return p | {"terms": p["terms"] | {"fields_mask": 0b1}, "approvals": []}

    liar.honest()
    liar.rewrite("GET", rf"/v1/proposals/{pid}", other_terms)
    r = w.run("--json", "-p", officer, "proposal", "show", pid, DATASAFE_API=liar.url)
    assert r.exit_code == EXIT_CONTRADICTED, r.stdout
    err = _error(r.stdout)
    assert err["code"] == "terms_not_proposed" and firm.officers[0].address in err["message"]
    r = w.run("--json", "-p", officer, "proposal", "approve", pid, "--yes", DATASAFE_API=liar.url)
    assert r.exit_code == EXIT_CONTRADICTED and _error(r.stdout)["code"] == "terms_not_proposed"
    assert stack.world.ledger.functions.getGrant(bytes.fromhex(pid[2:])).call()[8] == 0


def test_a_grant_receipt_carries_the_signed_terms_in_the_wallets_words(
    stack: Stack, liar: LyingProxy
) -> None:
    aid = stack.issue("worded-receipt")

    def lie(_m: str, _p: str, _q: str, _b: bytes, receipt: Any) -> Any:
        return receipt | {"terms_text": LIE, "terms": receipt["terms"] | {"fields_mask": 0b1}}

    liar.rewrite("POST", r"/v1/grants", lie)
    args = ("grant", "create", "--asset", aid, "--to", "citybank", "--fields", "name,income",
            "--purpose", "loan", "--days", "30", "--uses", "3", "--yes")  # fmt: skip
    receipt = stack.citizen.json(*args, DATASAFE_API=liar.url)
    gid = receipt["grant_id"]
    assert receipt["confirmed_on_chain"] is True
    assert receipt["terms_text"] == _chain_text(stack, gid)
    assert "name, income" in receipt["terms_text"] and "at most 3" in receipt["terms_text"]
    assert receipt["terms"]["fields_mask"] == 0b1001  # name and income, as signed
    saved = next(
        r for r in Home(stack.citizen.home).profile("li").receipts() if r["grant_id"] == gid
    )
    assert LIE not in json.dumps(saved) and saved["terms"]["fields_mask"] == 0b1001
    human = stack.citizen.ok(*args, DATASAFE_API=liar.url).stdout
    assert "Consent receipt" in human and "name only" not in human

    # grant show and the pause prompt: the grant on chain in words, whatever the row's text
    liar.honest()
    liar.rewrite("GET", rf"/v1/grants/{gid}", _lie_in_text)
    shown = stack.citizen.json("grant", "show", gid, DATASAFE_API=liar.url)
    assert shown["grant"]["terms_text"] == _chain_text(stack, gid)
    human = stack.citizen.ok("grant", "show", gid, DATASAFE_API=liar.url).stdout
    assert "name only" not in human and "loan underwriting" in human
    # without the chain: the words of the saved receipt (what was signed), else nothing
    offline = stack.citizen.json("--no-chain", "grant", "show", gid, DATASAFE_API=liar.url)
    assert offline["grant"]["terms_text"] == saved["words"]
    line = stack.bank.fails(2, "--no-chain", "grant", "show", gid, DATASAFE_API=liar.url)
    assert "without a receipt needs the chain" in line
    r = stack.citizen.run("grant", "pause", gid, input="n\n", DATASAFE_API=liar.url)
    assert r.exit_code == 2 and "cancelled" in r.stderr
    assert "name only" not in r.stdout and "name, income" in r.stdout

    # grant list: the field names from the schema on chain, not the service's labels
    def narrowed(_m: str, _p: str, _q: str, _b: bytes, rows: Any) -> Any:
        return [g | {"fields": ["name"], "terms_text": LIE} for g in rows]

    liar.honest()
    liar.rewrite("GET", r"/v1/grants", narrowed)
    listed = {g["grant_id"]: g for g in stack.citizen.json("grant", "list", DATASAFE_API=liar.url)}
    assert listed[gid]["fields"] == ["name", "income"]

    # a row that moves the grant's start (not what the chain holds) is refused
    liar.honest()
    moved = {"not_before": 4_000_000_000}
    liar.rewrite("GET", rf"/v1/grants/{gid}", lambda *a: a[4] | {"terms": a[4]["terms"] | moved})
    liar.rewrite("GET", r"/v1/grants", lambda *a: [g | {"terms": g["terms"] | moved} for g in a[4]])
    r = stack.citizen.run("--json", "grant", "list", DATASAFE_API=liar.url)
    assert r.exit_code == EXIT_CONTRADICTED, r.stdout
    assert _error(r.stdout)["code"] == "grant_row_mismatch"
    r = stack.citizen.run("--json", "grant", "show", gid, DATASAFE_API=liar.url)
    assert r.exit_code == EXIT_CONTRADICTED, r.stdout
    assert _error(r.stdout)["code"] == "grant_row_mismatch"
    line = stack.citizen.fails(
        EXIT_CONTRADICTED, "grant", "pause", gid, input="y\n", DATASAFE_API=liar.url
    )
    assert "not before" in line
    with LedgerClient(stack.rpc, stack.world.ledger_address) as lc:
        assert lc.get_grant(bytes.fromhex(gid[2:])).status == GrantStatus.ACTIVE
