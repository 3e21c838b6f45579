"""The browser tests' stack: the wallet tests' chain + service + wallets (tests/wallet_cli)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
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


REPO = _TESTS.parent
#: Screenshots for the README are refreshed with DATASAFE_UI_SCREENSHOTS=1; otherwise tmp.
SHOTS_TO_DOCS = os.environ.get("DATASAFE_UI_SCREENSHOTS") == "1"


@pytest.fixture
def shots(tmp_path: Path) -> Callable[[Any, str], None]:
    """``shots(page, name)``: a full-page screenshot, docs/img/ui-NAME.png when refreshing."""

    def take(page: Any, name: str) -> None:
        where = REPO / "docs" / "img" if SHOTS_TO_DOCS else tmp_path
        where.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(where / f"ui-{name}.png"), full_page=True)
        assert (where / f"ui-{name}.png").stat().st_size > 5000

    return take
