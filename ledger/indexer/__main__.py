"""``python -m ledger.indexer``: run the indexer until SIGTERM/SIGINT (or once with --once).

Settings come from ``DATASAFE_INDEXER_*`` environment variables; the options override them.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from types import FrameType

from ledger.errors import SettingsError
from ledger.indexer._indexer import Indexer
from ledger.indexer.errors import IndexerError
from ledger.indexer.settings import IndexerSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ledger.indexer", description=__doc__)
    parser.add_argument("--rpc-url")
    parser.add_argument("--ledger-address")
    parser.add_argument("--db-url")
    parser.add_argument("--start-block", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--confirmations", type=int)
    parser.add_argument("--poll-interval", type=float)
    parser.add_argument("--once", action="store_true", help="sync to the head once, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    overrides = {
        k: v
        for k, v in {
            "rpc_url": args.rpc_url,
            "ledger_address": args.ledger_address,
            "database_url": args.db_url,
            "start_block": args.start_block,
            "batch_size": args.batch_size,
            "confirmations": args.confirmations,
            "poll_interval": args.poll_interval,
        }.items()
        if v is not None
    }
    try:
        settings = IndexerSettings(**overrides)
        indexer = Indexer.from_settings(settings)
    except (IndexerError, SettingsError) as exc:
        print(f"indexer: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        if args.once:
            result = indexer.sync_once()
            print(f"indexed to block {result.last_block} ({result.events} events)")
        else:
            indexer.run(stop, poll_interval=settings.poll_interval)
    except IndexerError as exc:
        print(f"indexer: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        indexer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
