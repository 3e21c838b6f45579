#!/usr/bin/env python3
"""The test session's PostgreSQL clean-up: dropping its databases one by one vs concurrently.

Each ``DROP DATABASE`` waits for a checkpoint; concurrent requests share one. Creates N
throwaway databases twice (the same server as the tests, ``DATASAFE_TEST_PG_URL``) and drops
them the old way (one connection, one after another) and the way ``tests/conftest.py``'s
``PgDatabases.drop_all`` does now.

    .venv/bin/python scripts/bench_pg_drop.py --databases 30
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import sqlalchemy as sa  # noqa: E402
from conftest import PgDatabases, _pg_admin_url  # noqa: E402


def drop_one_by_one(dbs: PgDatabases, names: list[str]) -> None:
    engine = sa.create_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--databases", type=int, default=30)
    n = p.parse_args().databases
    for label in ("one by one", "concurrently"):
        dbs = PgDatabases(_pg_admin_url())
        names = [sa.make_url(dbs.create("bench_drop")).database or "" for _ in range(n)]
        started = time.monotonic()
        if label == "one by one":
            drop_one_by_one(dbs, names)
        else:
            dbs.drop_all()
        print(f"{n} databases dropped {label}: {time.monotonic() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
