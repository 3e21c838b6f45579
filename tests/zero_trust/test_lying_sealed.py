"""A lying service about sealed accesses: the wallet reads the companion itself.

The service hides a subject's sealed record, alters its unseal date, invents one, forges a
revealed opening, or hides an overdue record from the regulator: each time the wallet exits
6 (``service_mismatch``) instead of showing the lie; honest, the same commands succeed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from _liar import LyingProxy
from _sealed_helpers import DAY, companion_tx, seal_body
from _stack import Stack

from api.client import DataSafeClient
from ledger import sealed as sl
from wallet_cli.errors import EXIT_CONTRADICTED


@pytest.fixture(scope="module")
def anvil_chain(own_anvil_chain: Any) -> Any:
    """This module moves the chain's clock by weeks: its own anvil, not the session's."""
    return own_anvil_chain


@pytest.fixture(scope="module")
def sealed_asset(stack: Stack) -> dict[str, Any]:
    """Two sealed records about the citizen; the first revealed by its department."""
    world = stack.world
    aid = bytes.fromhex(stack.issue("lying-sealed")[2:])
    openings = [
        sl.Opening.new(world.bank.address, aid, 0b11, "public security law art. 9")
        for _ in range(2)
    ]
    ids = []
    with DataSafeClient(stack.server.url, world.issuer.key) as dept:
        for o in openings:
            made = dept.post("/v1/sealed", seal_body(world, o, world.now() + 5 * DAY))
            ids.append(int(made["seal_id"]))
        raw = companion_tx(world, world.issuer, sl.encode_unseal(ids[0], openings[0]))
        dept.post(f"/v1/sealed/{ids[0]}/unseal", {"raw_transaction": raw})
    return {"ids": ids, "openings": openings}


def _lie(stack: Stack, liar: LyingProxy, wallet_args: tuple[str, ...]) -> str:
    # A difference is asked again for DATASAFE_CONFIRM_TIMEOUT (index lag): one second here.
    r = getattr(stack, wallet_args[0]).run(
        "--json", *wallet_args[1:], DATASAFE_API=liar.url, DATASAFE_CONFIRM_TIMEOUT="1"
    )
    assert r.exit_code == EXIT_CONTRADICTED, f"exit {r.exit_code}\n{r.stdout}\n{r.stderr}"
    err = json.loads(r.stdout.strip().splitlines()[-1])["error"]
    assert err["code"] == "service_mismatch"
    return str(err["message"])


def _rewrite_items(liar: LyingProxy, path: str, change: Any) -> None:
    liar.rewrite("GET", path, lambda _m, _p, _q, _b, answer: change(answer))


def test_honest_lists_pass(stack: Stack, sealed_asset: dict[str, Any], liar: LyingProxy) -> None:
    out = stack.citizen.json("sealed", "list", DATASAFE_API=liar.url)
    assert [s["seal_id"] for s in out["sealed"]][-2:] == sealed_asset["ids"]
    history = stack.citizen.ok("history", "list", DATASAFE_API=liar.url).stdout
    assert history.count("sealed access by taxbureau") >= 2


@pytest.mark.parametrize("command", [("citizen", "history", "list"), ("citizen", "sealed", "list")])
def test_hidden_record_is_noticed(
    stack: Stack, sealed_asset: dict[str, Any], liar: LyingProxy, command: tuple[str, ...]
) -> None:
    hidden = sealed_asset["ids"][1]
    _rewrite_items(liar, "/v1/sealed", lambda a: [s for s in a if s["seal_id"] != hidden])
    assert "hid 1 sealed access record(s)" in _lie(stack, liar, command)
    assert str(hidden) in _lie(stack, liar, command)


@pytest.mark.parametrize("command", [("citizen", "history", "list"), ("citizen", "sealed", "list")])
def test_index_lag_is_no_lie(
    stack: Stack, sealed_asset: dict[str, Any], liar: LyingProxy, command: tuple[str, ...]
) -> None:
    """An honest service whose index has not yet reached the newest record (it answers
    without it once, then with it) is asked again, not called a liar."""
    newest = sealed_asset["ids"][1]
    answers = []

    def lagging(answer: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answers.append(answer)
        return [s for s in answer if s["seal_id"] != newest] if len(answers) == 1 else answer

    _rewrite_items(liar, "/v1/sealed", lagging)
    r = getattr(stack, command[0]).run(*command[1:], DATASAFE_API=liar.url)
    assert r.exit_code == 0, f"exit {r.exit_code}\n{r.stdout}\n{r.stderr}"
    assert len(answers) >= 2


def test_altered_or_invented_record_is_noticed(
    stack: Stack, sealed_asset: dict[str, Any], liar: LyingProxy
) -> None:
    target = sealed_asset["ids"][1]

    def later(answer: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            s | {"unseal_at": s["unseal_at"] + DAY} if s["seal_id"] == target else s for s in answer
        ]

    _rewrite_items(liar, "/v1/sealed", later)
    assert "unseal_at" in _lie(stack, liar, ("citizen", "sealed", "list"))
    liar.honest()
    _rewrite_items(liar, "/v1/sealed", lambda a: [*a, a[-1] | {"seal_id": 10_000}])
    assert "10000" in _lie(stack, liar, ("citizen", "sealed", "list"))


def test_forged_opening_is_noticed(
    stack: Stack, sealed_asset: dict[str, Any], liar: LyingProxy
) -> None:
    opened = sealed_asset["ids"][0]
    other = stack.world.bank2.address

    def forge(answer: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            s | {"opening": s["opening"] | {"institution": other}} if s["seal_id"] == opened else s
            for s in answer
        ]

    _rewrite_items(liar, "/v1/sealed", forge)
    assert "does not match its commitment" in _lie(stack, liar, ("citizen", "history", "list"))


def test_hidden_overdue_record_is_noticed(
    stack: Stack, sealed_asset: dict[str, Any], liar: LyingProxy
) -> None:
    stack.world.advance(6 * DAY)
    overdue = sealed_asset["ids"][1]
    honest = stack.regulator.json("sealed", "overdue", DATASAFE_API=liar.url)
    assert overdue in [s["seal_id"] for s in honest["sealed"]]
    _rewrite_items(liar, "/v1/sealed/overdue", lambda a: [s for s in a if s["seal_id"] != overdue])
    assert "overdue" in _lie(stack, liar, ("regulator", "sealed", "overdue"))
