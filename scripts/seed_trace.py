"""Seed the indexer's tables with N grants and M accesses, in exactly the indexer's shape.

Rows go into the same table objects the indexer writes (``ledger.db``): ``assets``,
``grants``, ``grant_events`` (one ``ConsentGranted`` per grant, plus revocations) and
``accesses`` (owner / asset / purpose denormalised from the grant, as the projection does),
with consistent chain coordinates: a synthetic chain of blocks spread over one year, a
few logs per block, increasing timestamps. Non-unique indexes are dropped during the load
and rebuilt afterwards (as a bulk restore would); PostgreSQL is loaded with COPY, SQLite
with executemany in chunks.

Usage:
    .venv/bin/python scripts/seed_trace.py --db-url URL [--grants 100000] [--accesses 1000000]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ledger import db  # noqa: E402

T0 = 1_735_689_600  # 2025-01-01T00:00:00Z
YEAR = 365 * 86_400
LOGS_PER_BLOCK = 20
CHUNK = 50_000

ASSETS = db.assets
GRANTS = db.grants
GRANT_EVENTS = db.grant_events
ACCESSES = db.accesses
CURSOR = db.indexer_cursor
BLOCKS = db.indexed_blocks
TABLES = (ASSETS, GRANTS, GRANT_EVENTS, ACCESSES)


def addr(kind: int, i: int) -> str:
    return f"0x{kind:02x}{i:038x}"


def h32(kind: int, i: int) -> str:
    return f"0x{kind:02x}{i:062x}"


class Shape:
    """Who is who: subjects, institutions, issuers and assets, sized from N grants."""

    def __init__(self, grants: int, accesses: int, seed: int) -> None:
        self.grants = grants
        self.accesses = accesses
        self.subjects = max(10, grants // 5)
        self.institutions = 200
        self.issuers = 20
        self.assets = max(10, grants // 4)
        self.rng = random.Random(seed)
        self.events = grants + accesses
        self.blocks = self.events // LOGS_PER_BLOCK + 2
        self.block_time = max(1, YEAR // self.blocks)

    def coords(self, idx: int, kind: int = 0) -> dict[str, Any]:
        block = 1 + idx // LOGS_PER_BLOCK
        return {
            "block_number": block,
            "block_hash": h32(0xB0, block),
            "block_timestamp": T0 + block * self.block_time,
            "tx_hash": h32(0xC0 + kind, idx),
            "log_index": idx % LOGS_PER_BLOCK,
        }

    def asset_owner(self, a: int) -> str:
        return addr(0x5B, a % self.subjects)

    def asset_issuer(self, a: int) -> str:
        return addr(0x1E, a % self.issuers)


def asset_rows(s: Shape) -> Iterator[dict[str, Any]]:
    for a in range(s.assets):
        yield {
            "block_number": 0,
            "block_hash": h32(0xB0, 0),
            "block_timestamp": T0,
            "tx_hash": h32(0xA0, a),
            "log_index": a,
            "asset_id": h32(0xA5, a),
            "version": 1,
            "owner": s.asset_owner(a),
            "issuer": s.asset_issuer(a),
            "schema_id": h32(0x5C, a % 50),
            "root": h32(0x70, a),
            "ciphertext_digest": h32(0x71, a),
            "status": "active",
            "previous": None,
            "next": None,
            "updated_block": 0,
        }


def timeline(s: Shape) -> Iterator[tuple[str, dict[str, Any], dict[str, Any] | None]]:
    """(table, row, grant-event row) in chain order: grants interleaved with accesses."""
    rng = s.rng
    granted: list[tuple[str, str, str, int, int]] = []  # grant_id, owner, asset, purpose, mask
    grantees: list[str] = []
    uses: list[int] = []
    g = a = 0
    for idx in range(s.events):
        make_grant = g < s.grants and (not granted or rng.random() < s.grants / s.events)
        if a >= s.accesses:
            make_grant = True
        c = s.coords(idx)
        if make_grant:
            asset = rng.randrange(s.assets)
            gid = h32(0x6A, g)
            owner = s.asset_owner(asset)
            grantee = addr(0xBA, rng.randrange(s.institutions))
            purpose = rng.randint(1, 6)
            mask = rng.randrange(1, 1 << 8)
            expiry = c["block_timestamp"] + rng.choice((30, 90, 365)) * 86_400
            terms = {
                "purpose": purpose,
                "fieldsMask": mask,
                "notBefore": 0,
                "expiry": expiry,
                "maxUses": 0,
            }
            grant = {
                "grant_id": gid,
                "asset_id": h32(0xA5, asset),
                "owner": owner,
                "grantee": grantee,
                "grantor": owner,
                "purpose": purpose,
                "fields_mask": mask,
                "not_before": 0,
                "expiry": expiry,
                "max_uses": 0,
                "uses": 0,
                "status": "active",
                "nonce": str(g),
                "granted_at": c["block_timestamp"],
                **c,
                "updated_block": c["block_number"],
            }
            event = {
                **c,
                "event": "ConsentGranted",
                "grant_id": gid,
                "actor": owner,
                "args": {
                    "grantId": gid,
                    "assetId": grant["asset_id"],
                    "grantee": grantee,
                    "owner": owner,
                    "grantor": owner,
                    "terms": terms,
                    "nonce": g,
                    "timestamp": c["block_timestamp"],
                },
            }
            granted.append((gid, owner, grant["asset_id"], purpose, mask))
            grantees.append(grantee)
            uses.append(0)
            g += 1
            yield "grant", grant, event
        else:
            k = rng.randrange(len(granted))
            gid, owner, asset_id, purpose, mask = granted[k]
            uses[k] += 1
            yield (
                "access",
                {
                    **c,
                    "grant_id": gid,
                    "grantee": grantees[k],
                    "custodian": addr(0xCC, 0),
                    "owner": owner,
                    "asset_id": asset_id,
                    "fields_mask": mask,
                    "purpose": purpose,
                    "use": uses[k],
                    "nonce": str(idx),
                },
                None,
            )
            a += 1


def _copy_value(v: Any) -> str:
    if v is None:
        return "\\N"
    if isinstance(v, dict):
        v = json.dumps(v, separators=(",", ":"))
    return str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


class Writer:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.pg = engine.dialect.name == "postgresql"
        self.buffers: dict[str, list[dict[str, Any]]] = {t.name: [] for t in TABLES}
        self.counts: dict[str, int] = {t.name: 0 for t in TABLES}
        self.ids: dict[str, int] = {t.name: 0 for t in TABLES}

    def add(self, table: sa.Table, row: dict[str, Any]) -> None:
        if "id" in table.c:
            self.ids[table.name] += 1
            row = {"id": self.ids[table.name], **row}
        buf = self.buffers[table.name]
        buf.append(row)
        if len(buf) >= CHUNK:
            self.flush(table)

    def flush(self, table: sa.Table) -> None:
        rows = self.buffers[table.name]
        if not rows:
            return
        # The columns the rows name: the rest keep their server defaults (NOT NULL ones too).
        named = set().union(*rows)
        cols = [c.name for c in table.columns if c.name in named]
        if self.pg:
            raw = self.engine.raw_connection()
            try:
                cur = raw.cursor()
                text = "".join("\t".join(_copy_value(r.get(c)) for c in cols) + "\n" for r in rows)
                with cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    copy.write(text)
                raw.commit()
            finally:
                raw.close()
        else:
            with self.engine.begin() as conn:
                conn.execute(table.insert(), rows)
        self.counts[table.name] += len(rows)
        rows.clear()

    def close(self) -> None:
        for t in TABLES:
            self.flush(t)


def seed(db_url: str, grants: int, accesses: int, seed_value: int = 7) -> dict[str, Any]:
    engine = db.make_engine(db_url)
    started = time.perf_counter()
    db.create_tables(engine)
    with engine.begin() as conn:
        for t in (*TABLES, CURSOR, BLOCKS):
            conn.execute(t.delete())
        for t in TABLES:
            for index in t.indexes:
                index.drop(conn, checkfirst=True)
    s = Shape(grants, accesses, seed_value)
    w = Writer(engine)
    for row in asset_rows(s):
        w.add(ASSETS, row)
    revoked_rows: list[tuple[str, str]] = []  # one grant in ten, revoked at the end
    for kind, row, event in timeline(s):
        if kind == "grant":
            w.add(GRANTS, row)
            assert event is not None
            w.add(GRANT_EVENTS, event)
            if int(row["nonce"]) % 10 == 0:
                revoked_rows.append((row["grant_id"], row["owner"]))
        else:
            w.add(ACCESSES, row)
    w.close()
    # the revocations come after every access, at the end of the chain
    last_block = s.blocks + 1
    for i, (gid, owner) in enumerate(revoked_rows):
        c = s.coords(s.events + i, kind=1)
        w.add(
            GRANT_EVENTS,
            {
                **c,
                "event": "ConsentRevoked",
                "grant_id": gid,
                "actor": owner,
                "args": {"grantId": gid, "by": owner, "timestamp": c["block_timestamp"]},
            },
        )
        last_block = max(last_block, c["block_number"])
    w.close()
    ids = [gid for gid, _ in revoked_rows]
    with engine.begin() as conn:
        for i in range(0, len(ids), 5000):
            conn.execute(
                GRANTS.update()
                .where(GRANTS.c.grant_id.in_(ids[i : i + 5000]))
                .values(status="revoked")
            )
        conn.execute(
            CURSOR.insert().values(
                id=1,
                chain_id=31337,
                genesis_hash=h32(0xB0, 0),
                ledger_address=addr(0x1D, 0),
                start_block=0,
                last_block=last_block,
                last_block_hash=h32(0xB0, last_block),
                updated_at=sa.func.now(),
            )
        )
        conn.execute(
            BLOCKS.insert().values(
                number=last_block,
                hash=h32(0xB0, last_block),
                parent_hash=h32(0xB0, last_block - 1),
                timestamp=T0 + last_block * s.block_time,
            )
        )
    loaded = time.perf_counter()
    with engine.begin() as conn:
        for t in TABLES:
            for index in t.indexes:
                index.create(conn, checkfirst=True)
        conn.execute(sa.text("ANALYZE"))
    done = time.perf_counter()
    engine.dispose()
    return {
        "db": engine.dialect.name,
        "grants": grants,
        "accesses": accesses,
        "revoked": len(revoked_rows),
        "subjects": s.subjects,
        "institutions": s.institutions,
        "assets": s.assets,
        "blocks": last_block,
        "first_time": T0,
        "block_time": s.block_time,
        "load_seconds": round(loaded - started, 1),
        "index_seconds": round(done - loaded, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--grants", type=int, default=100_000)
    parser.add_argument("--accesses", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(seed(args.db_url, args.grants, args.accesses, args.seed)))


if __name__ == "__main__":
    main()
