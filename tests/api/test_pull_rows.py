"""A pull's rows read in one statement (``api._store.get_pull_rows``), on SQLite and PostgreSQL.

Nothing here is cached: what the database holds at the moment of the read is what a pull
answers with, so a key package deleted (revocation), an anchor moved (a re-mined anchor
transaction) or a schema stored later is seen by the very next read.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from api import _store, errors
from api import db as api_db
from api._vault import VaultAdapter
from api.flows import pull as pull_flow
from api.journal import TxJournal

ASSET = "0x" + "a1" * 32
GRANT = "0x" + "9b" * 32
SCHEMA = "0x" + "5c" * 32
ANCHOR_TX = "0x" + "7e" * 32


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = api_db.make_engine(db_url)
    api_db.migrate(eng)
    yield eng
    eng.dispose()


def _asset(engine: Engine) -> None:
    _store.put_asset(
        engine,
        {
            "asset_id": ASSET,
            "owner": "0x" + "11" * 20,
            "issuer": "0x" + "22" * 20,
            "schema_id": SCHEMA,
            "version": 1,
            "root": "0x" + "33" * 32,
            "ciphertext_digest": "0x" + "44" * 32,
            "previous": None,
            "anchor_tx": ANCHOR_TX,
            "anchor_block": 7,
        },
    )


def _sealed(engine: Engine, blob: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            api_db.sealed_assets.insert().values(asset_id=ASSET, owner="0x" + "11" * 20, blob=blob)
        )


def test_an_asset_not_held_reads_nothing(engine: Engine) -> None:
    VaultAdapter(engine, None).put_key_package(GRANT, b"package")
    assert _store.get_pull_rows(engine, GRANT, ASSET) is None


def test_every_part_is_read_and_each_missing_part_is_none(engine: Engine) -> None:
    _asset(engine)
    rows = _store.get_pull_rows(engine, GRANT, ASSET.upper().replace("0X", "0x"))
    assert rows is not None
    assert (rows["package"], rows["blob"], rows["schema_fields"]) == (None, None, None)
    assert (rows["asset_id"], rows["anchor_block"], rows["version"]) == (ASSET, 7, 1)

    VaultAdapter(engine, None).put_key_package(GRANT, b"package")
    _sealed(engine, "ab" * 32)
    _store.put_schema(
        engine,
        {
            "schema_id": SCHEMA,
            "issuer": "0x" + "22" * 20,
            "name": "kyc",
            "fields": ["name", "iban"],
            "fields_hash": "0x" + "55" * 32,
            "tx_hash": None,
            "block": 3,
        },
    )
    rows = _store.get_pull_rows(engine, GRANT, ASSET)
    assert rows is not None
    assert bytes(rows["package"]) == b"package"
    assert rows["blob"] == "ab" * 32
    assert list(rows["schema_fields"]) == ["name", "iban"]
    # Another grant's package is not this grant's.
    other = _store.get_pull_rows(engine, "0x" + "9c" * 32, ASSET)
    assert other is not None and other["package"] is None


def test_a_revocation_and_a_remined_anchor_are_seen_by_the_next_read(engine: Engine) -> None:
    _asset(engine)
    _sealed(engine, "ab" * 32)
    vault = VaultAdapter(engine, None)
    vault.put_key_package(GRANT, b"package")
    assert _store.get_pull_rows(engine, GRANT, ASSET)["package"] is not None  # type: ignore[index]

    TxJournal(engine).remined(ANCHOR_TX, 9, None)
    moved = _store.get_pull_rows(engine, GRANT, ASSET)
    assert moved is not None and moved["anchor_block"] == 9

    vault.delete_key_package(GRANT)
    gone = _store.get_pull_rows(engine, GRANT, ASSET)
    assert gone is not None and gone["package"] is None
    with engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(api_db.key_packages)).scalar()
    assert left == 0


def test_a_pull_without_its_rows_is_refused_with_its_own_problem(engine: Engine) -> None:
    """``pull._prepare`` (real engine and vault adapter; no chain is read there): each missing
    row is its own problem, checked in the order asset, key package, ciphertext."""
    services = SimpleNamespace(engine=engine, vault=VaultAdapter(engine, None))

    def prepare() -> object:
        return pull_flow._prepare(services, GRANT, ASSET, 0b11)  # type: ignore[arg-type]

    with pytest.raises(errors.AssetNotFoundError, match="not held by this vault"):
        prepare()
    _asset(engine)
    with pytest.raises(errors.KeyPackageMissingError, match="no key package"):
        prepare()
    services.vault.put_key_package(GRANT, b"package")
    with pytest.raises(errors.AssetNotFoundError, match=r"ciphertext .* is gone"):
        prepare()
