"""Benchmark: p50/p99 of the common trace queries on SQLite and PostgreSQL, side by side.

Seeds both databases with ``scripts/seed_trace.py`` (same N grants / M accesses, same
random seed), then times the first page (100 rows) of each query through
``ledger.trace.query_page`` - the code the API's ``/v1/trace/*`` and ``/v1/me/history``
routes run - with fresh random parameters per run:

1. by subject (accesses to one subject's data)
2. by institution over a month
3. by asset
4. by purpose
5. by time window (one day)
6. a subject's history (accesses + grant changes + expiries, the ``/v1/me/history`` query)

plus ``SELECT 1`` on the same connection as the floor of a round trip.

Usage:
    .venv/bin/python scripts/bench_trace.py [--grants 100000] [--accesses 1000000] \
        [--runs 200] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from seed_trace import T0, addr, h32, seed  # noqa: E402

from ledger import db, trace  # noqa: E402
from ledger.trace import TraceFilter  # noqa: E402

MONTH = 30 * 86_400
DAY = 86_400


def queries(info: dict[str, int]) -> dict[str, Callable[[random.Random], TraceFilter]]:
    span = info["blocks"] * info["block_time"]
    access = frozenset({"access"})

    def when(rng: random.Random, width: int) -> tuple[int, int]:
        start = T0 + rng.randrange(max(1, span - width))
        return start, start + width

    def month(rng: random.Random) -> TraceFilter:
        a, b = when(rng, MONTH)
        inst = addr(0xBA, rng.randrange(info["institutions"]))
        return TraceFilter(kinds=access, institution=inst, from_time=a, to_time=b)

    def window(rng: random.Random) -> TraceFilter:
        a, b = when(rng, DAY)
        return TraceFilter(kinds=access, from_time=a, to_time=b)

    return {
        "by subject": lambda r: TraceFilter(
            kinds=access, subject=addr(0x5B, r.randrange(info["subjects"]))
        ),
        "by institution over a month": month,
        "by asset": lambda r: TraceFilter(
            kinds=access, asset_id=h32(0xA5, r.randrange(info["assets"]))
        ),
        "by purpose": lambda r: TraceFilter(kinds=access, purpose=r.randint(1, 6)),
        "by time window (1 day)": window,
        "subject history (all kinds)": lambda r: TraceFilter(
            subject=addr(0x5B, r.randrange(info["subjects"]))
        ),
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(url: str, info: dict[str, int], runs: int) -> dict[str, tuple[float, float, float]]:
    engine = db.make_engine(url)
    out: dict[str, tuple[float, float, float]] = {}
    with engine.connect() as conn:
        floor = []
        for _ in range(runs):
            t = time.perf_counter()
            conn.execute(sa.text("SELECT 1")).scalar()
            floor.append((time.perf_counter() - t) * 1000)
        out["SELECT 1 (round-trip floor)"] = (pct(floor, 0.5), pct(floor, 0.99), 0.0)
        for name, make in queries(info).items():
            rng = random.Random(name)
            times, sizes = [], []
            for _ in range(5):  # warm the caches, as a running service has them
                trace.query_page(conn, make(rng), limit=100)
            for _ in range(runs):
                flt = make(rng)
                t = time.perf_counter()
                got = trace.query_page(conn, flt, limit=100)
                times.append((time.perf_counter() - t) * 1000)
                sizes.append(len(got.rows))
            out[name] = (pct(times, 0.5), pct(times, 0.99), statistics.mean(sizes))
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grants", type=int, default=100_000)
    parser.add_argument("--accesses", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--sqlite-path", type=Path, default=None)
    args = parser.parse_args()

    admin = sa.create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    name = f"trace_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    pg_url = sa.make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
    tmp = tempfile.TemporaryDirectory()
    sqlite_path = args.sqlite_path or Path(tmp.name) / "trace.db"
    sqlite_url = f"sqlite:///{sqlite_path}"
    try:
        results = {}
        # PostgreSQL first (the target), each database's numbers printed as soon as measured.
        for label, url in (("PostgreSQL", pg_url), ("SQLite", sqlite_url)):
            info = seed(url, args.grants, args.accesses)
            print(f"seeded {label}: {info}", flush=True)
            results[label] = measure(url, info, args.runs)
            print(f"{label}: {results[label]}", flush=True)
        print()
        print(
            f"{args.grants:,} grants / {args.accesses:,} accesses, first page of 100 rows, "
            f"{args.runs} runs per query"
        )
        print()
        print(
            "| query | SQLite p50 ms | SQLite p99 ms | PostgreSQL p50 ms | PostgreSQL p99 ms "
            "| rows/page (avg) |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for q in results["SQLite"]:
            s, p = results["SQLite"][q], results["PostgreSQL"][q]
            rows = f"{p[2]:.0f}" if p[2] else "—"
            print(f"| {q} | {s[0]:.2f} | {s[1]:.2f} | {p[0]:.2f} | {p[1]:.2f} | {rows} |")
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        tmp.cleanup()


if __name__ == "__main__":
    main()
