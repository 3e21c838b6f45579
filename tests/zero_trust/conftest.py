"""The zero-trust tests: the real stack (anvil, ledger, uvicorn API with its indexer), a
lying proxy in front of it, and the real wallet and bank client talking to the proxy."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "wallet_cli"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _liar import LyingProxy, lying_proxy
from _stack import Stack, make_stack


@pytest.fixture(scope="module")
def stack(anvil_chain: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("zero-trust")
    yield from make_stack(
        anvil_chain.url,
        f"sqlite:///{tmp / 'api.db'}",
        tmp,
        run_indexer=True,
        indexer_interval_seconds=0.2,
    )


@pytest.fixture(scope="module")
def _proxy(stack: Stack) -> Iterator[LyingProxy]:
    with lying_proxy(stack.server.url) as proxy:
        yield proxy


@pytest.fixture
def liar(_proxy: LyingProxy) -> Iterator[LyingProxy]:
    """The proxy, honest at the start of each test and again after it."""
    _proxy.honest()
    yield _proxy
    _proxy.honest()
