"""Benchmark: the regulator's trace page in Chromium over N seeded accesses (issue 19).

Starts an embedded anvil and the API on SQLite in this process (the wallet tests' stack),
seeds the service's trace tables with ``scripts/seed_trace.py`` (N accesses, N/10 grants,
the indexer's own shape), starts ``datasafe ui`` for the regulator as its own process and
drives Debian's Chromium (``tests/browser/_chromium.py``):

* page: first contentful paint of the console (navigation to paint, the browser's own
  ``first-contentful-paint`` entry), median of ``--runs`` fresh loads;
* trace: click "Search" with no filter (every event): the first page's rows and charts
  painted (two animation frames) — the first paint —, and every page drawn; the first
  ``/api/trace`` call (one signed ``/v1/trace/*`` page of 1,000 rows), pages and bytes.

Usage:
    .venv/bin/python scripts/bench_ui.py [--accesses 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for extra in (REPO, REPO / "tests", REPO / "tests" / "api", REPO / "tests" / "wallet_cli"):
    sys.path.insert(0, str(extra))
sys.path.insert(0, str(REPO / "scripts"))

PAINTED = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(0))))"


def measure(page: Any, url: str, runs: int, accesses: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {
        k: [] for k in ("fcp_ms", "first_rows_ms", "trace_ms", "api_ms", "pages", "kb")
    }
    for _ in range(runs):
        page.goto("about:blank")
        page.goto(url)
        page.wait_for_selector("#who:not(:has-text('Connecting'))")
        fcp = page.evaluate(
            "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"
        )
        out["fcp_ms"].append(float(fcp))
        page.click("nav button[data-page='regulator']")
        page.evaluate("performance.clearResourceTimings()")
        started = time.perf_counter()
        page.click("#trace-search")
        page.wait_for_selector("#trace-table table", timeout=600_000)
        page.evaluate(PAINTED)
        out["first_rows_ms"].append((time.perf_counter() - started) * 1000)
        page.wait_for_selector("#trace-summary[data-done='1']", timeout=600_000)
        page.evaluate(PAINTED)
        out["trace_ms"].append((time.perf_counter() - started) * 1000)
        timing = page.evaluate(
            "(() => { const e = performance.getEntriesByType('resource')"
            ".filter(r => r.name.includes('/api/trace'));"
            " return [e[0].responseEnd - e[0].startTime, e.length,"
            " e.reduce((n, r) => n + r.encodedBodySize, 0)]; })()"
        )
        out["api_ms"].append(float(timing[0]))
        out["pages"].append(float(timing[1]))
        out["kb"].append(float(timing[2]) / 1024)
        summary = page.inner_text("#trace-summary")
        assert f"({accesses} accesses)" in summary, summary
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accesses", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from _console import console_process
    from _stack import make_stack
    from browser._chromium import browser_page
    from seed_trace import seed

    from ledger.chain import EmbeddedChain

    with tempfile.TemporaryDirectory() as tmp_, EmbeddedChain() as chain:
        tmp = Path(tmp_)
        db_url = f"sqlite:///{tmp / 'api.db'}"
        stack_gen = make_stack(chain.url, db_url, tmp)
        stack = next(stack_gen)
        try:
            info = seed(db_url, max(1, args.accesses // 10), args.accesses)
            print(f"seeded: {info}", flush=True)
            with (
                console_process(stack.regulator.env) as console,
                browser_page() as (page, external),
            ):
                got = measure(page, console.url_with_token, args.runs, args.accesses)
                assert external.urls == [], external.urls
        finally:
            stack_gen.close()
    med = {k: statistics.median(v) for k, v in got.items()}
    print()
    print(f"{args.accesses:,} accesses, {args.runs} runs, medians (all runs: {got})")
    print()
    print("| measure | median |")
    print("|---|---:|")
    print(f"| console page: first contentful paint | {med['fcp_ms']:.0f} ms |")
    print(f"| trace search → first rows and charts painted | {med['first_rows_ms']:.0f} ms |")
    print(f"| of which the first `/api/trace` page | {med['api_ms']:.0f} ms |")
    print(f"| trace search → every event drawn | {med['trace_ms']:.0f} ms |")
    print(f"| pages / total answer size | {med['pages']:.0f} / {med['kb']:.0f} KB |")


if __name__ == "__main__":
    main()
