"""``datasafe-api`` / ``python -m api``: run the service with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from ledger import restore_recursion_limit


def main(argv: list[str] | None = None) -> None:
    restore_recursion_limit()
    parser = argparse.ArgumentParser(
        prog="datasafe-api", description="Run the DataSafe API (settings: DATASAFE_API_* env)."
    )
    parser.add_argument("--host", help="bind address (default from settings)")
    parser.add_argument("--port", type=int, help="port (default from settings)")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = ApiSettings(**overrides)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
