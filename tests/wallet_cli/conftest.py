"""Fixtures for the wallet tests: one real stack per module (see ``_stack.py``).

The service's database and the chain move together, so tests in a module build on fresh
grants of their own instead of reverting snapshots.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stack import Stack, make_indexed_stack, make_stack


@pytest.fixture(scope="module")
def stack(anvil_chain: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("wallet-stack")
    yield from make_stack(anvil_chain.url, f"sqlite:///{tmp / 'api.db'}", tmp)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def any_db_stack(
    request: pytest.FixtureRequest, anvil_chain: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The stack with the service on SQLite and on PostgreSQL (the production database)."""
    tmp = tmp_path_factory.mktemp(f"wallet-stack-{request.param}")
    yield from make_stack(anvil_chain.url, _db_url(request, tmp, "wallet"), tmp)


def _db_url(request: pytest.FixtureRequest, tmp: Path, name: str) -> str:
    """A fresh database of the kind ``request.param`` names (sqlite or postgresql)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp / 'api.db'}"
    return str(request.getfixturevalue("pg_databases").create(name))


@pytest.fixture(scope="module")
def indexed_stack(
    anvil_chain: Any, pg_databases: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The stack with the service's event indexer running, on PostgreSQL (trace, history)."""
    tmp = tmp_path_factory.mktemp("wallet-stack-indexed")
    yield from make_indexed_stack(anvil_chain.url, pg_databases, tmp, "wallet_indexed")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def claims_stack(
    request: pytest.FixtureRequest, anvil_chain: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The stack with the indexer running (claims, their events), on SQLite and PostgreSQL."""
    tmp = tmp_path_factory.mktemp(f"claims-{request.param}")
    db_url = _db_url(request, tmp, "claims")
    yield from make_stack(
        anvil_chain.url, db_url, tmp, run_indexer=True, indexer_interval_seconds=0.2
    )
