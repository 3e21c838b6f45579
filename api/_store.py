"""Synchronous SQL helpers over the service's tables (run them in a worker thread)."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from api import _paging
from api.db import assets, grants, member_keys, schemas


def _one(engine: Engine, stmt: Any) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(stmt).mappings().first()
    return dict(row) if row is not None else None


def _all(engine: Engine, stmt: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


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
    """By (block, schema id); ``after`` / ``limit``: one keyset page."""
    order = [schemas.c.block, schemas.c.schema_id]
    stmt = sa.select(schemas).where(_paging.after(order, after)).order_by(*order).limit(limit)
    return _all(engine, stmt)


# ---- member keys -----------------------------------------------------------------------------


def get_member_key(engine: Engine, address: str) -> dict[str, Any] | None:
    return _one(engine, sa.select(member_keys).where(member_keys.c.address == address.lower()))


def put_member_key(engine: Engine, values: dict[str, Any]) -> None:
    _upsert(engine, member_keys, "address", values)


def list_member_keys(
    engine: Engine, *, after: tuple[Any, ...] | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """By address; ``after`` / ``limit``: one keyset page (see :mod:`api._paging`)."""
    stmt = (
        sa.select(member_keys)
        .where(_paging.after([member_keys.c.address], after))
        .order_by(member_keys.c.address)
        .limit(limit)
    )
    return _all(engine, stmt)


# ---- assets ----------------------------------------------------------------------------------


def get_asset(engine: Engine, asset_id: str) -> dict[str, Any] | None:
    return _one(engine, sa.select(assets).where(assets.c.asset_id == asset_id.lower()))


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
    """By (anchor block, asset id); ``after`` / ``limit``: one keyset page."""
    order = [assets.c.anchor_block, assets.c.asset_id]
    stmt = sa.select(assets).where(_paging.after(order, after)).order_by(*order).limit(limit)
    if owner is not None:
        stmt = stmt.where(assets.c.owner == owner.lower())
    if issuer is not None:
        stmt = stmt.where(assets.c.issuer == issuer.lower())
    return _all(engine, stmt)


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
    """By (block, grant id); ``after`` / ``limit``: one keyset page."""
    order = [grants.c.block, grants.c.grant_id]
    stmt = sa.select(grants).where(_paging.after(order, after)).order_by(*order).limit(limit)
    if owner is not None:
        stmt = stmt.where(grants.c.owner == owner.lower())
    if grantee is not None:
        stmt = stmt.where(grants.c.grantee == grantee.lower())
    if asset_id is not None:
        stmt = stmt.where(grants.c.asset_id == asset_id.lower())
    return _all(engine, stmt)
