"""Sealed accesses through the CLI against the real service (SQLite and PostgreSQL): the
department records one, the subject's ``history`` says at once that it exists, the
regulator extends it and lists it overdue, the department reveals it and the subject sees
the details, checked against the commitment; the refusals exit with their codes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from _stack import Stack
from _wallet import Wallet

from ledger import sealed as sl
from ledger.rpc import RpcClient
from wallet_cli.errors import EXIT_REFUSED, EXIT_USER

DAY = 86_400


def _iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


@pytest.fixture(scope="module")
def anvil_chain(own_anvil_chain: Any) -> Any:
    """This module moves the chain's clock by weeks: its own anvil, not the session's."""
    return own_anvil_chain


@pytest.fixture(scope="module")
def department(any_db_stack: Stack) -> Wallet:
    stack = any_db_stack
    dept = Wallet(stack.citizen.home.parent / "department-wallet", env=dict(stack.citizen.env))
    dept.env["DATASAFE_HOME"] = str(dept.home)
    dept.ok(
        "account", "import", "taxbureau", "--kind", "department",
        DATASAFE_IMPORT_KEY=stack.world.issuer.key,
    )  # fmt: skip
    dept.ok("contacts", "add", "citybank", stack.world.bank.address)
    return dept


def test_sealed_access_story(any_db_stack: Stack, department: Wallet) -> None:
    stack, world = any_db_stack, any_db_stack.world
    aid = stack.issue("sealed")
    unseal_at = world.now() + 30 * DAY
    made = department.json(
        "sealed", "record", aid, "--institution", "citybank", "--fields", "0,2",
        "--basis", "criminal procedure law art. 52, case 2026-117", "--until", _iso(unseal_at),
    )  # fmt: skip
    seal_id = int(made["seal_id"])
    assert made["subject"] == world.citizen.address and made["status"] == "sealed"

    # The subject learns at once, in plain words, and nothing of the details.
    history = stack.citizen.ok("history", "list").stdout
    assert f"sealed access by taxbureau on {_day(made['sealed_at'])}" in history
    assert f"unseals {_day(unseal_at)}" in history
    (mine,) = [
        s for s in stack.citizen.json("history", "list")["sealed"] if s["seal_id"] == seal_id
    ]
    assert mine["opening"] is None

    # The department cannot extend its own seal; the regulator needs a reason, then extends.
    department.fails(
        EXIT_REFUSED,
        "sealed",
        "extend",
        str(seal_id),
        "--until",
        _iso(unseal_at + DAY),
        "--reason",
        "x",
    )
    stack.regulator.fails(
        EXIT_USER,
        "sealed",
        "extend",
        str(seal_id),
        "--until",
        _iso(unseal_at + DAY),
        "--reason",
        " ",
    )
    later = unseal_at + 10 * DAY
    out = stack.regulator.json(
        "sealed", "extend", str(seal_id), "--until", _iso(later), "--reason", "court order 9"
    )
    assert out["unseal_at"] == later and out["extensions"] == 1
    assert seal_id not in _ids(stack.regulator.json("sealed", "overdue"))

    world.advance(41 * DAY)
    assert seal_id in _ids(stack.regulator.json("sealed", "overdue"))
    # Only the holder of the opening reveals: the subject's wallet has none.
    stack.citizen.fails(EXIT_USER, "sealed", "reveal", str(seal_id))
    department.json("sealed", "reveal", str(seal_id))
    assert seal_id not in _ids(stack.regulator.json("sealed", "overdue"))
    history = stack.citizen.ok("history", "list").stdout
    assert "unsealed: citybank received fields 0,2" in history
    (mine,) = [s for s in stack.citizen.json("sealed", "list")["sealed"] if s["seal_id"] == seal_id]
    assert mine["status"] == "unsealed" and mine["opening"]["institution"] == world.bank.address


def test_sealed_record_refusals(any_db_stack: Stack, department: Wallet) -> None:
    stack, world = any_db_stack, any_db_stack.world
    aid = stack.issue("sealed-refusals")
    at = _iso(world.now() + DAY)
    with RpcClient(world.rpc_url) as rpc:
        before = len(sl.all_seals(rpc, world.ledger_address))
    # No such institution, no fields, too far ahead, and a subject is no department.
    department.fails(
        EXIT_USER,
        "sealed",
        "record",
        aid,
        "--institution",
        "nobody",
        "--fields",
        "0",
        "--basis",
        "b",
        "--until",
        at,
    )
    department.fails(
        EXIT_USER,
        "sealed",
        "record",
        aid,
        "--institution",
        "citybank",
        "--fields",
        "",
        "--basis",
        "b",
        "--until",
        at,
    )
    far = _iso(world.now() + sl.MAX_SEAL_PERIOD + 2 * DAY)
    department.fails(
        EXIT_REFUSED,
        "sealed",
        "record",
        aid,
        "--institution",
        "citybank",
        "--fields",
        "1",
        "--basis",
        "b",
        "--until",
        far,
    )
    stack.citizen.fails(
        EXIT_REFUSED,
        "sealed",
        "record",
        aid,
        "--institution",
        world.bank.address,
        "--fields",
        "1",
        "--basis",
        "b",
        "--until",
        at,
    )
    stack.bank.fails(EXIT_REFUSED, "sealed", "overdue")
    with RpcClient(world.rpc_url) as rpc:
        assert len(sl.all_seals(rpc, world.ledger_address)) == before


def _ids(out: dict[str, Any]) -> list[int]:
    return [int(s["seal_id"]) for s in out["sealed"]]


def _day(ts: int) -> str:
    return dt.datetime.fromtimestamp(int(ts), dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
