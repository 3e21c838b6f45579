"""Shared by the claims tests (their stack is conftest's ``claims_stack``): the department's
wallet, and polling until the index has caught up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from _stack import Stack
from _wallet import Wallet

WAIT_SECONDS = 30.0


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
