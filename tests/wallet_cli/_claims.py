"""Shared by the claims tests: the stack with the indexer on SQLite or PostgreSQL, the
department's wallet, and polling until the index has caught up."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _stack import Stack, make_stack
from _wallet import Wallet

WAIT_SECONDS = 30.0


def claims_stack(request: pytest.FixtureRequest, anvil_url: str, tmp: Path) -> Iterator[Stack]:
    """The stack (indexer running) on ``request.param``: sqlite or postgresql."""
    if request.param == "sqlite":
        db_url = f"sqlite:///{tmp / 'api.db'}"
    else:
        db_url = request.getfixturevalue("pg_databases").create("claims")
    yield from make_stack(anvil_url, db_url, tmp, run_indexer=True, indexer_interval_seconds=0.2)


def department(stack: Stack) -> Wallet:
    dept = Wallet(stack.citizen.home.parent / "dept-wallet", env=dict(stack.citizen.env))
    dept.env["DATASAFE_HOME"] = str(dept.home)
    if not (dept.home / "profiles").exists():
        dept.ok(
            "account", "import", "taxbureau", "--kind", "department",
            DATASAFE_IMPORT_KEY=stack.world.issuer.key,
        )  # fmt: skip
    return dept


def until(probe: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        got = probe()
        if done(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.3)
