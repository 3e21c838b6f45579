"""Synchronous SQL helpers over the service's tables (run them in a worker thread)."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from api import _paging, errors
from api._paging import Keyset
from api.db import (
    assets,
    grants,
    key_packages,
    member_keys,
    read_connection,
    schemas,
    sealed_assets,
)
from ledger.db import accesses

SCHEMAS = Keyset("schemas", (("block", int), ("schema_id", str)))
MEMBER_KEYS = Keyset("members", (("address", str),))
ASSETS = Keyset("assets", (("anchor_block", int), ("asset_id", str)))
GRANTS = Keyset("grants", (("block", int), ("grant_id", str)))
ACCESSES = Keyset("access", (("block_number", int), ("log_index", int)))


def _one(engine: Engine, stmt: Any) -> dict[str, Any] | None:
    with read_connection(engine) as conn:
        row = conn.execute(stmt).mappings().first()
    return dict(row) if row is not None else None


def _all(engine: Engine, stmt: Any) -> list[dict[str, Any]]:
    with read_connection(engine) as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def _page(
    engine: Engine,
    table: sa.Table,
    keyset: Keyset,
    after: tuple[Any, ...] | None,
    limit: int | None,
    **equal: str | None,
) -> list[dict[str, Any]]:
    """One keyset page of ``table`` (see :mod:`api._paging`); ``equal``: column == value
    (addresses and ids lowercase), a None value matches every row."""
    order = [table.c[name] for name in keyset.names]
    stmt = sa.select(table).where(_paging.after(order, after)).order_by(*order).limit(limit)
    for name, value in equal.items():
        if value is not None:
            stmt = stmt.where(table.c[name] == value.lower())
    return _all(engine, stmt)


def _upsert(engine: Engine, table: sa.Table, key: str, values: dict[str, Any]) -> None:
    with engine.begin() as conn:
        pk = table.c[key]
        exists = conn.execute(sa.select(pk).where(pk == values[key])).first()
        if exists is None:
            conn.execute(table.insert().values(**values))
        else:
            conn.execute(table.update().where(pk == values[key]).values(**values))


# ---- schemas ---------------------------------------------------------------------------------


def get_schema(engine: Engine, schema_id: str) -> dict[str, Any] | None:
    return _one(engine, sa.select(schemas).where(schemas.c.schema_id == schema_id.lower()))


def put_schema(engine: Engine, values: dict[str, Any]) -> None:
    _upsert(engine, schemas, "schema_id", values)


def list_schemas(
    engine: Engine, *, after: tuple[Any, ...] | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    return _page(engine, schemas, SCHEMAS, after, limit)


# ---- member keys -----------------------------------------------------------------------------


def get_member_key(engine: Engine, address: str) -> dict[str, Any] | None:
    return _one(engine, sa.select(member_keys).where(member_keys.c.address == address.lower()))


def put_member_key(engine: Engine, values: dict[str, Any]) -> None:
    _upsert(engine, member_keys, "address", values)


def list_member_keys(
    engine: Engine, *, after: tuple[Any, ...] | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    return _page(engine, member_keys, MEMBER_KEYS, after, limit)


# ---- assets ----------------------------------------------------------------------------------


def get_asset(engine: Engine, asset_id: str) -> dict[str, Any] | None:
    return _one(engine, sa.select(assets).where(assets.c.asset_id == asset_id.lower()))


#: A pull's rows in one statement: the asset (its anchor), the grant's key package, the
#: sealed blob's digest and the schema's fields. Nothing of it is cached: the key package is
#: deleted on revocation and read on every pull (docs/operations.md, "Crypto-shredding").
_PULL_ROWS = (
    sa.select(
        assets,
        key_packages.c.package,
        sealed_assets.c.blob,
        schemas.c.fields.label("schema_fields"),
    )
    .select_from(
        assets.outerjoin(key_packages, key_packages.c.grant_id == sa.bindparam("grant_id"))
        .outerjoin(sealed_assets, sealed_assets.c.asset_id == assets.c.asset_id)
        .outerjoin(schemas, schemas.c.schema_id == assets.c.schema_id)
    )
    .where(assets.c.asset_id == sa.bindparam("asset_id"))
)


def get_pull_rows(engine: Engine, grant_id: str, asset_id: str) -> dict[str, Any] | None:
    """The asset row plus ``package`` (bytes or None), ``blob`` (the sealed blob's digest or
    None) and ``schema_fields`` (None for a schema this service does not hold), read on one
    connection in one statement; None when the asset is not held here."""
    with read_connection(engine) as conn:
        row = (
            conn.execute(_PULL_ROWS, {"grant_id": grant_id.lower(), "asset_id": asset_id.lower()})
            .mappings()
            .first()
        )
    return dict(row) if row is not None else None


def put_asset(engine: Engine, values: dict[str, Any]) -> None:
    values.setdefault("created_at", int(time.time()))
    _upsert(engine, assets, "asset_id", values)


def list_assets(
    engine: Engine,
    *,
    owner: str | None = None,
    issuer: str | None = None,
    after: tuple[Any, ...] | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    return _page(engine, assets, ASSETS, after, limit, owner=owner, issuer=issuer)


# ---- grants ----------------------------------------------------------------------------------


def get_grant(engine: Engine, grant_id: str) -> dict[str, Any] | None:
    return _one(engine, sa.select(grants).where(grants.c.grant_id == grant_id.lower()))


def put_grant(engine: Engine, values: dict[str, Any]) -> None:
    values.setdefault("created_at", int(time.time()))
    _upsert(engine, grants, "grant_id", values)


def list_grants(
    engine: Engine,
    *,
    owner: str | None = None,
    grantee: str | None = None,
    asset_id: str | None = None,
    after: tuple[Any, ...] | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    return _page(
        engine, grants, GRANTS, after, limit, owner=owner, grantee=grantee, asset_id=asset_id
    )


# ---- accesses (the ledger's event index) ------------------------------------------------------


def count_accesses(engine: Engine, grant_id: str) -> int:
    """A grant's recorded accesses in the index: its use count (the chain counts only grants
    with a use limit). 0 while the access index is not built."""
    query = sa.select(sa.func.count()).where(accesses.c.grant_id == grant_id.lower())
    try:
        with engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return 0


def list_accesses(
    engine: Engine,
    *,
    owner: str | None = None,
    grantee: str | None = None,
    after: tuple[Any, ...] | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    try:
        return _page(engine, accesses, ACCESSES, after, limit, owner=owner, grantee=grantee)
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        raise errors.NotReadyError("the access index is not built (indexer not running)") from exc
