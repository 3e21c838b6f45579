"""Every benchmark in a few minutes, one table of same-run figures against their targets.

    .venv/bin/python scripts/bench_all.py [--full] [--wallet] [--skip relay,...] [--out FILE]

``make bench`` runs this. Each benchmark script runs in its own process in a short mode
and hands its figures over as JSON (``--json FILE``); gas comes from ``bench_gas.run()``.
The table says, per figure, the target and whether this run met it. The machine is shared,
so the speed figures are ratios measured in the same run (verify against a bare endpoint,
vault against raw AES-GCM / HPKE) except where the target itself is absolute (pulls/s,
grants/s, wallet seconds); the load average is printed with the table. ``--full`` runs the
long modes the issue's targets name (10,000 pulls; 20,000 relayed grants). The wallet
benchmark (two minutes even short: real scrypt keystores, a process per command) runs with
``--wallet`` or ``--full``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable

#: (name, short-mode arguments, full-mode arguments)
BENCHES: dict[str, tuple[list[str], list[str]]] = {
    "api": (
        ["--requests", "3000", "--pulls", "2000", "--concurrency", "32"],
        ["--requests", "4000", "--pulls", "10000", "--concurrency", "32"],
    ),
    "vault": (["--seconds", "0.25"], ["--seconds", "0.5"]),
    "relay": (["--grants", "4000"], ["--grants", "20000"]),
    "wallet": (["--runs", "2", "--startup-runs", "1"], ["--runs", "10", "--startup-runs", "5"]),
}

Row = tuple[str, str, str, str]  # figure, this run, target, verdict


def _run_script(name: str, args: list[str], tmp: Path) -> dict[str, Any]:
    out = tmp / f"{name}.json"
    log = tmp / f"{name}.log"
    started = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(
            [PY, str(REPO / "scripts" / f"bench_{name}.py"), *args, "--json", str(out)],
            cwd=REPO,
            stdout=fh,
            stderr=subprocess.STDOUT,
            check=False,
        )
    took = time.perf_counter() - started
    print(f"  bench_{name}.py {' '.join(args)}: {took:.0f} s (exit {proc.returncode})")
    if proc.returncode != 0 or not out.exists():
        tail = log.read_text()[-1500:]
        raise RuntimeError(f"bench_{name}.py failed (exit {proc.returncode}):\n{tail}")
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def _gas() -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "scripts"))
    import bench_gas

    started = time.perf_counter()
    rows = bench_gas.run()
    print(f"  bench_gas.run(): {time.perf_counter() - started:.0f} s")
    batch = next(r for r in rows if r[0].endswith("access records, one tx"))
    size = int(batch[0].split()[0])
    unlimited = next(r for r in rows if r[0] == bench_gas.UNLIMITED)
    return {
        "per_access": batch[1] / size,
        "per_access_unlimited": unlimited[1] / size,
        "batch": size,
        "worst_ratio": max(r[4] or 0.0 for r in rows),
        "worst_op": max(rows, key=lambda r: r[4] or 0.0)[0],
    }


def _verdict(ok: bool, moonshot: bool | None = None) -> str:
    if moonshot:
        return "pass (moonshot too)"
    return "pass" if ok else "**missed**"


def api_rows(d: dict[str, Any]) -> list[Row]:
    v, p = d["verify"], d["pull"]
    return [
        (
            "verify: API / bare FastAPI + eth_call, req/s",
            f"{v['ratio']:.2f}× ({v['ours_rps']:,.0f} / {v['bare_rps']:,.0f})",
            "≥ 0.85× (moonshot 1.0×)",
            _verdict(v["ratio"] >= 0.85, v["ratio"] >= 1.0),
        ),
        (
            "verify: server CPU per request, bare / API",
            f"{v['cpu_ratio']:.2f}× ({v['bare_cpu_ms']:.2f} / {v['ours_cpu_ms']:.2f} ms)",
            "(the same ratio, free of the machine's load)",
            "—",
        ),
        (
            f"pulls/s ({p['pulls']:,} pulls, 10-field 64 KB asset)",
            f"{p['pulls_per_s']:,.0f}",
            "≥ 300 (moonshot 500)",
            _verdict(p["pulls_per_s"] >= 300, p["pulls_per_s"] >= 500),
        ),
        (
            f"pulls/s, slowest {p['window']:,}-pull window",
            f"{p['window_min_per_s']:,.0f}",
            "≥ 250",
            _verdict(p["window_min_per_s"] >= 250),
        ),
        (
            "pull: API CPU per pull (all threads)",
            f"{p['cpu_ms_per_pull']:.2f} ms",
            "(≤ 3.3 ms leaves room for 300/s on one core)",
            "—",
        ),
    ]


def gas_rows(g: dict[str, Any]) -> list[Row]:
    per = g["per_access"]
    return [
        (
            f"gas per access, batch of {g['batch']} (grants with maxUses 10)",
            f"{per:,.0f}",
            "≤ 20,000 (moonshot 16,000)",
            _verdict(per <= 20_000, per <= 16_000),
        ),
        (
            f"gas per access, batch of {g['batch']} (unlimited grants, first uses)",
            f"{g['per_access_unlimited']:,.0f}",
            "≤ 20,000 (moonshot 16,000)",
            _verdict(g["per_access_unlimited"] <= 20_000, g["per_access_unlimited"] <= 16_000),
        ),
        (
            "gas: worst ratio to its EAS counterpart",
            f"{g['worst_ratio']:.0%} ({g['worst_op']})",
            "≤ 50%",
            _verdict(g["worst_ratio"] <= 0.5),
        ),
    ]


def vault_rows(d: dict[str, Any]) -> list[Row]:
    rows: list[Row] = [
        (
            f"vault: 1 KB 10-field seal time / one HPKE seal ({suite})",
            f"{ratio:.2f}×",
            "≤ 1.5×",
            _verdict(ratio <= 1.5),
        )
        for suite, ratio in d["seal_over_hpke"].items()
    ]
    floor = d["seal_1mb_over_hash_floor"]
    rows.append(
        ("vault: 1 MB seal / hash floor", f"{floor:.2f}×", "≥ 0.8×", _verdict(floor >= 0.8))
    )
    rows.append(
        (
            "vault: 1 MB seal / the earlier floor that frees its output at once",
            f"{d['seal_1mb_over_hash_floor_discarding']:.2f}×",
            "(for comparison)",
            "—",
        )
    )
    return rows


def relay_rows(d: dict[str, Any]) -> list[Row]:
    rate = d["grants_per_s"]
    return [
        (
            f"relayed grants/s confirmed ({d['grants']:,} grants, {d['relayers']} relayer)",
            f"{rate:,.0f}",
            "≥ 1,000",
            _verdict(rate >= 1000),
        )
    ]


def wallet_rows(d: dict[str, Any]) -> list[Row]:
    median = d["agent_median_s"]
    return [
        (
            "wallet: grant → verified pull, median (unlocked agent)",
            f"{median:.2f} s",
            "< 2 s",
            _verdict(median < 2),
        )
    ]


ROWS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "api": api_rows,
    "vault": vault_rows,
    "relay": relay_rows,
    "wallet": wallet_rows,
}


def render(rows: list[Row]) -> str:
    lines = ["| figure | this run | target | verdict |", "|---|---:|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--full", action="store_true", help="the long modes the targets name")
    ap.add_argument("--wallet", action="store_true", help="also the wallet CLI (~2 minutes)")
    ap.add_argument("--skip", default="", help="comma-separated: api,gas,vault,relay,wallet")
    ap.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    args = ap.parse_args(argv)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    if not (args.wallet or args.full):
        skip.add("wallet")
    load_before = os.getloadavg()[0]
    rows: list[Row] = []
    failures: list[str] = []
    started = time.perf_counter()
    print("running:")
    with tempfile.TemporaryDirectory(prefix="bench-all-") as tmp_:
        tmp = Path(tmp_)
        for name in ("api", "gas", "vault", "relay", "wallet"):
            if name in skip:
                continue
            try:
                if name == "gas":
                    rows += gas_rows(_gas())
                    continue
                short, full = BENCHES[name]
                rows += ROWS[name](_run_script(name, full if args.full else short, tmp))
            except Exception as exc:  # one broken benchmark must not hide the others
                failures.append(f"{name}: {exc}")
                rows.append((name, "did not run", "—", "**error**"))
    table = render(rows)
    load_after = os.getloadavg()[0]
    print(
        f"\n{time.perf_counter() - started:.0f} s; load average {load_before:.1f} before, "
        f"{load_after:.1f} after, on {os.cpu_count()} CPUs\n"
    )
    print(table)
    for failure in failures:
        print(f"\nerror in {failure}", file=sys.stderr)
    if args.out:
        args.out.write_text(table + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
