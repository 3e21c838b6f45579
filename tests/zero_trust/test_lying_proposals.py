"""Issue 18: a service that drops an officer's approval of a grant proposal is caught by the
officer's wallet (the other lies — an approval attributed to the wrong officer, counted twice,
of other terms — are in tests/wallet_cli/test_wallet_proposals.py and
tests/ledger/test_approvals.py)."""

from __future__ import annotations

from typing import Any

from _firms import make_firm, profile, propose
from _liar import LyingProxy
from _stack import Stack


def test_a_dropped_approval_is_caught(stack: Stack, liar: LyingProxy) -> None:
    firm = make_firm(stack)
    first, second, _ = firm.officers
    w = stack.citizen
    w.ok("-p", f"firm-{firm.actor.name.split()[1]}", "agent", "policy", "3")
    pid = propose(stack, firm, first)

    def drop_the_callers(_m: str, _p: str, _q: str, _b: bytes, answer: Any) -> Any:
        answer["approvals"] = [
            a for a in answer["approvals"] if a["agent"].lower() != second.address.lower()
        ]
        return answer

    liar.rewrite("POST", rf"/v1/proposals/{pid}/approvals", drop_the_callers)
    line = w.fails(
        6, "-p", profile(firm, 1), "proposal", "approve", pid, "--yes", DATASAFE_API=liar.url
    )
    assert "does not list it" in line
    # honest again: the approval is there, the grant still needs a third officer
    liar.honest()
    shown = w.json("-p", profile(firm, 1), "proposal", "show", pid, DATASAFE_API=liar.url)
    assert sorted(shown["approved_by"]) == sorted([first.address, second.address])
    assert shown["needed"] == 3 and shown["status"] == "pending"
