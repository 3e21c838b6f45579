"""The browser tests' stack: the wallet tests' chain + service + wallets (tests/wallet_cli)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_TESTS = Path(__file__).resolve().parents[1]
for _helpers in (_TESTS / "api", _TESTS / "wallet_cli"):
    if str(_helpers) not in sys.path:
        sys.path.insert(0, str(_helpers))

from _stack import Stack, make_indexed_stack  # noqa: E402


@pytest.fixture(scope="module")
def console_stack(
    anvil_chain: Any, pg_databases: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The wallet stack with the service's indexer running (history and trace read it)."""
    tmp = tmp_path_factory.mktemp("console-stack")
    yield from make_indexed_stack(anvil_chain.url, pg_databases, tmp, "console")
