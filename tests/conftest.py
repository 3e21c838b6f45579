"""Shared fixtures: real databases (SQLite and PostgreSQL), never mocks.

PostgreSQL: ``DATASAFE_TEST_PG_URL`` points at a server where we may create
databases (default: the local server, database ``test``, trust auth). Each test
session creates its own uniquely named databases and drops them afterwards.
Without a reachable server the PostgreSQL variants are skipped locally but
fail under CI (``CI=true``), where the server is part of the machine.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _pg_admin_url() -> str:
    return os.environ.get("DATASAFE_TEST_PG_URL", DEFAULT_PG_URL)


def _pg_available() -> bool:
    try:
        engine = sa.create_engine(_pg_admin_url(), connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


class PgDatabases:
    """Creates throwaway PostgreSQL databases and drops them at the end."""

    def __init__(self, admin_url: str) -> None:
        self._admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self._url = sa.make_url(admin_url)
        self._created: list[str] = []

    def create(self, prefix: str = "datasafe") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with self._admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self._created.append(name)
        return self._url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        """Drop every database made, concurrently: each DROP DATABASE waits for a checkpoint,
        and requests that arrive together share one (one by one, seconds each under load)."""
        self._admin.dispose()
        engine = sa.create_engine(
            self._url.render_as_string(hide_password=False),
            isolation_level="AUTOCOMMIT",
            poolclass=NullPool,
        )

        def drop(name: str) -> None:
            with engine.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

        try:
            with ThreadPoolExecutor(max_workers=min(16, max(1, len(self._created)))) as pool:
                list(pool.map(drop, self._created))
        finally:
            engine.dispose()


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required under CI but unreachable at {_pg_admin_url()}")
        pytest.skip("PostgreSQL unreachable (set DATASAFE_TEST_PG_URL)")
    dbs = PgDatabases(_pg_admin_url())
    yield dbs
    dbs.drop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL: SQLite file or PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'datasafe.db'}"
    dbs: PgDatabases = request.getfixturevalue("pg_databases")
    return dbs.create()


# ---- chain fixtures (ledger) ------------------------------------------------------------------
# A real anvil per session with the ledger deployed once; tests isolate their changes with
# ``chain_snapshot`` (evm_snapshot before, evm_revert after).


@pytest.fixture(scope="session")
def anvil_chain() -> Iterator[Any]:
    """The session's anvil (automine, in-memory state, full history) on a free loopback
    port: the ledger's, the API's, the wallet's and the indexer's tests share it, each
    reverting what it changed (``_fixtures.start_anvil`` is the one way to start one)."""
    from _fixtures import start_anvil

    with start_anvil() as chain:
        _SESSION_CHAIN["url"] = chain.url
        yield chain
    _SESSION_CHAIN.clear()


_SESSION_CHAIN: dict[str, str] = {}
# How far the shared chain's clock may run ahead of the wall clock between modules: wallets
# sign deadlines by the wall clock, so a module that leaves the clock weeks ahead makes every
# later module's grants "expired" (request_signature_expired), far from the cause.
CLOCK_SLACK_SECONDS = 86_400


@pytest.fixture(scope="module", autouse=True)
def _shared_chain_clock_kept(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails the module that leaves the session's anvil clock days ahead (it should revert
    its jump, or run on its own chain: the ``own_anvil_chain`` fixture)."""
    yield
    url = _SESSION_CHAIN.get("url")
    if url is None:
        return
    import time

    from ledger.rpc import RpcClient

    with RpcClient(url) as rpc:
        ahead = int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)
    ahead -= int(time.time())
    if ahead > CLOCK_SLACK_SECONDS:
        pytest.fail(
            f"{request.node.name} left the shared anvil's clock {ahead // 86_400} days ahead of "
            "the wall clock: revert the jump (evm_snapshot/evm_revert) or use own_anvil_chain"
        )


@pytest.fixture(scope="module")
def own_anvil_chain() -> Iterator[Any]:
    """A module's own anvil, for modules that move the chain's clock by days and build on the
    moved state (the service and its index follow the chain, so a revert would not do)."""
    from _fixtures import start_anvil

    with start_anvil() as chain:
        yield chain


@pytest.fixture(scope="session")
def ledger_manifest(anvil_chain: Any) -> Any:
    """The ledger deployed on ``anvil_chain`` by dev account 0 (governor + custodian)."""
    from ledger.chain import DEV_PRIVATE_KEYS
    from ledger.manifest import deploy_ledger
    from ledger.tx import LocalKeySender

    return deploy_ledger(anvil_chain.url, LocalKeySender.from_key(DEV_PRIVATE_KEYS[0]))


@pytest.fixture
def chain_snapshot(anvil_chain: Any, ledger_manifest: Any) -> Iterator[Any]:
    """Reverts every chain change the test makes (evm_snapshot / evm_revert)."""
    from ledger.rpc import RpcClient

    with RpcClient(anvil_chain.url) as rpc:
        snapshot = rpc.call("evm_snapshot")
        yield anvil_chain
        rpc.call("evm_setAutomine", [True])
        if not rpc.call("evm_revert", [snapshot]):
            pytest.fail("evm_revert failed: chain state leaked between tests")
