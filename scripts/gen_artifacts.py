#!/usr/bin/env python3
"""Generate ledger/artifacts/*.json from contracts/src (py-solc-x + scripts/solc.cjs).

.venv/bin/python scripts/gen_artifacts.py           # compile if the sources changed
.venv/bin/python scripts/gen_artifacts.py --force   # compile anyway
.venv/bin/python scripts/gen_artifacts.py --check   # exit 1 if committed artifacts drift
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ledger.build import check_artifacts, ensure_artifacts
from ledger.errors import ArtifactError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if artifacts drift")
    parser.add_argument("--quick", action="store_true", help="with --check: hash only, no compile")
    parser.add_argument("--force", action="store_true", help="compile even if up to date")
    args = parser.parse_args()
    try:
        if args.check:
            check_artifacts(recompile=not args.quick)
            print("artifacts up to date")
            return 0
        compiled, paths = ensure_artifacts(force=args.force)
    except ArtifactError as exc:
        print(f"gen_artifacts: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(("wrote " if compiled else "up to date: ") + str(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
