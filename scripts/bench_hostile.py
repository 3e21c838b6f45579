"""The cost of each hostile request class to the API, before and after the edge guard.

    .venv/bin/python scripts/bench_hostile.py [--before REV] [--repeat 3]

Starts its own anvil on a free loopback port and deploys the ledger (the test-suite's
helpers), then, for each source tree (``--before``: a temporary ``git worktree`` of REV,
default the merge base with ``main``; then this tree), runs ``python -m api`` from that tree
as its own process, a fresh one per class, and sends every hostile class ``--repeat``
times: the median wall time of one request as the client sees it (signing and sending
included), the server's peak RSS growth (``VmHWM`` reset through ``/proc/<pid>/clear_refs``
before each request, minus ``VmRSS`` then; the largest of the repeats) and what happened
(the answer, or the crash). A crashed server is started again. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "api"))
sys.path.insert(0, str(REPO / "tests" / "security"))

from _api_server import Anvil, free_port, world_settings  # noqa: E402
from _api_world import DEV_KEYS, Actor, World  # noqa: E402
from _edge import (  # noqa: E402
    ApiProcess,
    envelope_headers,
    raw_post,
    reset_peak,
    rss_kib,
    start_api_process,
    stop_api_process,
)

from api.client import DataSafeClient  # noqa: E402

FIFTY_MB = 50 * 1024 * 1024
DEEP = b"[" * 100_000 + b"]" * 100_000


def start_anvil() -> Anvil:
    exe = shutil.which("anvil", path=str(REPO / "node_modules" / ".bin")) or "anvil"
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--host", "127.0.0.1", "--port", str(port), "--silent", "--chain-id", "31337"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    anvil = Anvil(port, proc)
    for _ in range(300):
        try:
            anvil.rpc("eth_chainId", [])
            return anvil
        except (httpx.HTTPError, RuntimeError):
            time.sleep(0.1)
    raise SystemExit("anvil did not start")


def hostile_classes(world: World) -> dict[str, Callable[[ApiProcess], str]]:
    """Name -> one request of the class; returns what the server answered."""

    def signed(body: bytes) -> Callable[[ApiProcess], str]:
        def send(api: ApiProcess) -> str:
            with DataSafeClient(api.url, world.citizen.key, timeout=120) as c:
                resp = c.request("POST", "/v1/grants", json_body=body)
            return _answer(resp.status_code, resp.content)

        return send

    def unsigned_deep(api: ApiProcess) -> str:
        resp = httpx.post(
            api.url + "/v1/grants",
            content=DEEP,
            headers={"content-type": "application/json"},
            timeout=120,
        )
        return _answer(resp.status_code, resp.content)

    def big(chunked: bool) -> Callable[[ApiProcess], str]:
        def send(api: ApiProcess) -> str:
            headers = envelope_headers(world, api, "/v1/grants")
            status, body, _ = raw_post(api, "/v1/grants", headers, total=FIFTY_MB, chunked=chunked)
            return _answer(status, body)

        return send

    return {
        "deep nesting, 200 KB, unsigned": unsigned_deep,
        "deep nesting, 200 KB, signed by a member": signed(DEEP),
        "huge array, 500k items (3.4 MB), signed": signed(
            json.dumps(list(range(500_000))).encode()
        ),
        "many fields, 100k (1.5 MB), signed": signed(
            json.dumps({f"f{i}": i for i in range(100_000)}).encode()
        ),
        "many tiny strings, 1.75M (7 MB), signed": signed(
            b'{"terms":[' + b'"a",' * 1_750_000 + b'"a"]}'
        ),
        "50 MB, Content-Length": big(False),
        "50 MB, chunked": big(True),
    }


def _answer(status: int, body: bytes) -> str:
    try:
        code = json.loads(body).get("code", "")
    except (ValueError, AttributeError):
        code = ""
    return f"{status} {code}".strip() + f" ({len(body) // 1024} KB)" * (len(body) > 10_000)


def run_tree(
    name: str, source: Path, world: World, tmp: Path, repeat: int
) -> dict[str, tuple[float, int, str]]:
    db_url = f"sqlite:///{tmp / (name + '.db')}"
    settings = world_settings(world, db_url, tmp)
    results: dict[str, tuple[float, int, str]] = {}
    for label, send in hostile_classes(world).items():
        # A fresh process per class: heap another class freed would hide this one's growth.
        api = start_api_process(settings, tmp / f"{name}.log", source=source)
        try:
            times: list[float] = []
            peak = 0
            what = ""
            for _ in range(repeat):
                if not api.alive():
                    api = start_api_process(settings, tmp / f"{name}.log", source=source)
                before = rss_kib(api.pid)
                reset_peak(api.pid)
                started = time.perf_counter()
                try:
                    what = send(api)
                except (httpx.HTTPError, OSError, IndexError, ValueError) as exc:
                    what = f"no answer ({type(exc).__name__})"
                times.append(time.perf_counter() - started)
                time.sleep(0.2)
                if api.alive():
                    peak = max(peak, rss_kib(api.pid, "VmHWM") - before)
                else:
                    what = f"crashed (exit {api.proc.wait()})"
            results[label] = (statistics.median(times), peak, what)
            print(f"{name:6} {label:45} {results[label]}", file=sys.stderr)
        finally:
            stop_api_process(api)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=None, help="git revision (default: merge base)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rev = (
        args.before
        or subprocess.run(
            ["git", "merge-base", "HEAD", "main"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    anvil = start_anvil()
    tmp = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    before_tree = tmp / "before"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(before_tree), rev],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    try:
        world = World(anvil.url)
        custodian = Actor("custodian", DEV_KEYS[9])
        world.admit(custodian, 16, 8)
        world.custodian = custodian  # type: ignore[attr-defined]
        before = run_tree("before", before_tree, world, tmp, args.repeat)
        after = run_tree("after", REPO, world, tmp, args.repeat)
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(before_tree)], cwd=REPO, check=False
        )
        anvil.proc.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    short = rev[:7]
    print(f"| request (×{args.repeat}, median) | before ({short}) | after | time ratio |")
    print("|---|---|---|---|")
    for label, (t0, m0, w0) in before.items():
        t1, m1, w1 = after[label]
        ratio = f"{t0 / t1:.0f}× faster" if t1 > 0 and t0 >= t1 else f"{t1 / t0:.1f}× slower"
        print(
            f"| {label} | {w0}; {t0 * 1000:.0f} ms; peak +{m0 / 1024:.1f} MB "
            f"| {w1}; {t1 * 1000:.1f} ms; peak +{m1 / 1024:.1f} MB | {ratio} |"
        )


if __name__ == "__main__":
    main()
