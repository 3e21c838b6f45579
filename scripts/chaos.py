#!/usr/bin/env python3
"""Power cuts at random moments, as many as you like (not a test; see tests/e2e/test_powercut.py).

The embedded node (``datasafe-node up``) runs the demo story and a stream of grants, pulls and
members' own transfers; node, anvil and API are SIGKILLed together at a random moment, the node
is started again, and every transaction any client got a receipt for must be on chain. At the
end the index must equal the chain (``audit verify`` over the whole range).

    .venv/bin/python scripts/chaos.py --rounds 200 --seed 7
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]

from _chaos import Chaos  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--seed", type=int, default=int(time.time()))
    p.add_argument("--max-wait", type=float, default=3.0, help="longest run before a cut (s)")
    p.add_argument("--data-dir", type=Path, default=None, help="default: a temporary directory")
    a = p.parse_args()
    data = a.data_dir or Path(tempfile.mkdtemp(prefix="chaos-")) / "data"
    chaos = Chaos(data, a.seed)
    started = time.monotonic()
    print(f"seed {a.seed}, data dir {data}")
    try:
        chaos.setup()
        for i in range(a.rounds):
            out = chaos.round(after=chaos.rng.uniform(0.1, a.max_wait))
            replayed = next((line for line in out.splitlines() if "replayed" in line), "")
            print(f"round {i + 1}: up in {chaos.start_seconds[-1]:.1f}s {replayed}", flush=True)
            if chaos.errors:
                break
        told = chaos.check_told()
        chaos.check_index()
    finally:
        if chaos.node.proc is not None and chaos.node.proc.poll() is None:
            chaos.node.stop()
    seconds = time.monotonic() - started
    print(f"{a.rounds} kill points, {told} receipts checked, {seconds:.0f}s")
    for e in chaos.errors:
        print(f"FAIL {e}")
    return 1 if chaos.errors else 0


if __name__ == "__main__":
    sys.exit(main())
