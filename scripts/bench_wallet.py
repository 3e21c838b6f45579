"""Benchmark the ``datasafe`` CLI as a citizen and a bank clerk use it.

    .venv/bin/python scripts/bench_wallet.py [--runs 10] [--startup-runs 5] [--json FILE]
    .venv/bin/python scripts/bench_wallet.py --startup-only [--startup-runs 5]

Starts an embedded anvil and the API on SQLite in this process (the wallet tests' stack:
ledger deployed, citizen and bank admitted, keys registered through the CLI), issues an
asset to the citizen, then times, as separate ``datasafe`` processes:

* grant → pull: from the start of the citizen's ``grant create --yes`` to the end of the
  bank's ``pull`` (every field verified against the chain, saved), ``--runs`` times each
  - *agent*: both wallets unlocked first (``datasafe unlock``), no passphrase in the env;
  - *cold*: no agent, ``DATASAFE_PASSPHRASE`` set: one scrypt (n=2^18) per command;
* start-up: ``--help`` and the common commands until they would first touch the network
  (``--api`` pointing at a closed port), and the import time of the CLI's modules
  (``--startup-only``: just these, no chain; with ``PYTHONPATH=<other checkout>`` the same
  venv times another tree's code, e.g. main's, alternately with this one).

Prints Markdown tables (median and max, seconds) for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for extra in (REPO, REPO / "tests", REPO / "tests" / "api", REPO / "tests" / "wallet_cli"):
    sys.path.insert(0, str(extra))

DATASAFE = str(Path(sys.executable).with_name("datasafe"))
REAL_SCRYPT_N = "262144"  # the V3 default that geth and eth-account write


def run(args: list[str], env: dict[str, str], expect: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [DATASAFE, *args], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if done.returncode != expect:
        raise SystemExit(f"datasafe {' '.join(args)}: exit {done.returncode}\n{done.stderr}")
    return done


#: CPU seconds (user + system) of the child processes per sample, by label: on a shared
#: machine wall time mostly measures the neighbours, CPU time what the command costs.
CPU: dict[str, list[float]] = {}


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def timed(fn: Callable[[], object], label: str = "") -> float:
    c0, t0 = _children_cpu(), time.perf_counter()
    fn()
    elapsed = time.perf_counter() - t0
    CPU.setdefault(label, []).append(_children_cpu() - c0)
    return elapsed


def summary(label: str, samples: list[float], cpu_key: str = "") -> str:
    cpu = CPU.get(cpu_key or label, [])
    cpu_s = f"{statistics.median(cpu):.3f}" if cpu else "-"
    return (
        f"| {label} | {len(samples)} | {statistics.median(samples):.3f} | {max(samples):.3f} "
        f"| {cpu_s} |"
    )


def base_env() -> dict[str, str]:
    """This environment without the wallet's settings, and with bytecode caching on.

    A user's install has its ``.pyc`` files; a shell with PYTHONDONTWRITEBYTECODE (as these
    sessions have) would make every command compile the project's modules again (~0.1 s).
    """
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DATASAFE_") and k != "PYTHONDONTWRITEBYTECODE"
    }


def wallet_env(wallet: Any, *, passphrase: bool) -> dict[str, str]:
    env = base_env()
    env.update({k: v for k, v in wallet.env.items() if v})
    if not passphrase:
        env.pop("DATASAFE_PASSPHRASE", None)
    return env


def grant_then_pull(stack: Any, asset: str, out: Path, *, agent: bool) -> float:
    citizen = wallet_env(stack.citizen, passphrase=not agent)
    bank = wallet_env(stack.bank, passphrase=not agent)
    args = ["--json", "grant", "create", "--asset", asset, "--to", "citybank"]
    args += ["--fields", "name,income", "--purpose", "loan", "--days", "1", "--yes"]
    c0, t0 = _children_cpu(), time.perf_counter()
    gid = json.loads(run(args, citizen).stdout)["grant_id"]
    pulled = json.loads(run(["--json", "pull", gid, "--out", str(out)], bank).stdout)
    elapsed = time.perf_counter() - t0
    CPU.setdefault("agent" if agent else "cold", []).append(_children_cpu() - c0)
    if pulled["fields"] != {"name": "Li Wei", "income": "182000"}:
        raise SystemExit(f"pull returned {pulled['fields']}")
    return elapsed


def startup(runs: int, home: Path) -> list[str]:
    env = base_env() | {
        "DATASAFE_HOME": str(home),
        "DATASAFE_PASSPHRASE": "bench",
        "DATASAFE_SCRYPT_N": "1024",
    }
    run(["account", "create", "bench"], env)
    closed = ["--api", "http://127.0.0.1:9"]
    cases: list[tuple[str, list[str], int]] = [
        ("datasafe --help", ["--help"], 0),
        ("datasafe grant create --help", ["grant", "create", "--help"], 0),
        ("datasafe account list", ["account", "list"], 0),
        ("datasafe contacts list", ["contacts", "list"], 0),
        ("datasafe data list (to the network)", [*closed, "data", "list"], 4),
        ("datasafe history (to the network)", [*closed, "history", "list"], 4),
    ]
    rows = []
    for label, args, code in cases:
        samples = [timed(lambda a=args, c=code: run(a, env, expect=c), label) for _ in range(runs)]
        rows.append(summary(f"`{label}`", samples, label))
    for module in ("wallet_cli.main", "wallet_cli.grant", "wallet_cli.institution"):
        code_ = f"import {module}"
        samples = [
            timed(lambda c=code_: subprocess.run([sys.executable, "-c", c], check=True), module)
            for _ in range(runs)
        ]
        rows.append(summary(f"`python -c 'import {module}'`", samples, module))
    base = [
        timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), "pass")
        for _ in range(runs)
    ]
    rows.append(summary("`python -c pass` (the interpreter alone)", base, "pass"))
    return rows


def _print_startup(rows: list[str]) -> None:
    print()
    print("| start-up | runs | median wall s | max wall s | median CPU s |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(row)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--startup-runs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the medians here as JSON")
    parser.add_argument("--startup-only", action="store_true", help="no chain, no grant/pull")
    opts = parser.parse_args()
    if opts.startup_only:
        with tempfile.TemporaryDirectory() as tmp_:
            rows = startup(opts.startup_runs, Path(tmp_) / "startup-wallet")
        print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        _print_startup(rows)
        return

    import _wallet
    from _stack import make_stack

    from ledger.chain import EmbeddedChain

    _wallet.FAST_SCRYPT = REAL_SCRYPT_N  # the stack's wallets get real keystores
    with tempfile.TemporaryDirectory() as tmp_, EmbeddedChain() as chain:
        tmp = Path(tmp_)
        print(f"load average before: {os.getloadavg()}", file=sys.stderr)
        startup_rows = startup(opts.startup_runs, tmp / "startup-wallet")
        stack_gen = make_stack(chain.url, f"sqlite:///{tmp / 'api.db'}", tmp)
        stack = next(stack_gen)
        try:
            asset = stack.issue("bench")
            grant_then_pull(stack, asset, tmp / "warm-up", agent=False)  # caches, pin
            cold = [
                grant_then_pull(stack, asset, tmp / f"cold-{i}", agent=False)
                for i in range(opts.runs)
            ]
            for wallet in (stack.citizen, stack.bank):
                run(["unlock", "--for", "30m"], wallet_env(wallet, passphrase=True))
            try:
                agent = [
                    grant_then_pull(stack, asset, tmp / f"agent-{i}", agent=True)
                    for i in range(opts.runs)
                ]
            finally:
                for wallet in (stack.citizen, stack.bank):
                    run(["lock"], wallet_env(wallet, passphrase=False))
        finally:
            stack_gen.close()
        print(f"load average after: {os.getloadavg()}", file=sys.stderr)

    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print()
    head = "| runs | median wall s | max wall s | median CPU s |"
    print(f"| grant → verified pull (two `datasafe` processes) {head}")
    print("|---|---|---|---|---|")
    print(summary("unlocked agent", agent, "agent"))
    print(summary(f"cold (one scrypt n={REAL_SCRYPT_N} per command)", cold, "cold"))
    _print_startup(startup_rows)
    if opts.json:
        opts.json.write_text(
            json.dumps(
                {
                    "agent_median_s": statistics.median(agent),
                    "cold_median_s": statistics.median(cold),
                    "runs": opts.runs,
                }
            )
        )


if __name__ == "__main__":
    main()
