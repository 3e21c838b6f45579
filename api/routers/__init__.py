"""Routers by resource, mounted under ``/v1``."""

from __future__ import annotations

from fastapi import FastAPI


def include_v1(app: FastAPI) -> None:
    import importlib

    for name in ("members", "schemas", "assets", "grants", "access", "forward"):
        try:
            module = importlib.import_module(f"api.routers.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"api.routers.{name}":
                continue
            raise
        app.include_router(module.router, prefix="/v1")
