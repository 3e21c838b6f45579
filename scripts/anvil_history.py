#!/usr/bin/env python3
"""What keeping past states costs anvil: memory, disk, and how far back reads still answer.

One anvil per history setting, the same blocks each time: every block adds one account
(a state that grows as a busy ledger's does). Prints anvil's resident memory, the bytes it
wrote under its cache path (where anvil's default keeps older states), and which reads at
older blocks answer. ``ledger.chain.HISTORY_STATES`` is what the node and the tests use.

    .venv/bin/python scripts/anvil_history.py --blocks 3000
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from ledger.chain import HISTORY_STATES, find_anvil, free_port


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    return 0


def run(history: list[str], blocks: int) -> None:
    cache = Path(tempfile.mkdtemp(prefix="anvil-history-"))
    port = free_port()
    cmd = [str(find_anvil()), "--port", str(port), "--cache-path", str(cache), *history]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=30) as http:

            def call(method: str, params: list[object]) -> dict[str, object]:
                body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
                reply: dict[str, object] = http.post("/", json=body).json()
                return reply

            deadline = time.monotonic() + 30
            while True:
                try:
                    call("eth_chainId", [])
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            for i in range(blocks):
                call("anvil_setBalance", [f"0x{i + 1:040x}", hex(i + 1)])
                call("evm_mine", [])
            answered = []
            for back in (1, HISTORY_STATES - 1, HISTORY_STATES + 1, blocks - 1):
                reply = call("eth_getBalance", [f"0x{1:040x}", hex(blocks - back)])
                answered.append(f"{back}:{'ok' if 'result' in reply else 'refused'}")
            name = " ".join(history) or "(full history)"
            rss, disk = _rss_kib(proc.pid) / 1024, _size(cache) / 2**20
            print(f"{name:<24} rss {rss:5.0f} MiB  disk {disk:6.0f} MiB  reads back {answered}")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(cache, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=3000)
    a = p.parse_args()
    print(f"{a.blocks} blocks, one new account each")
    for history in (["--prune-history"], ["--prune-history", str(HISTORY_STATES)], []):
        run(history, a.blocks)


if __name__ == "__main__":
    main()
