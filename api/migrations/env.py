"""Alembic environment: run by :class:`ledger.schema.Migrations` (no ``alembic.ini``)."""

from ledger.schema import run_env

run_env()
