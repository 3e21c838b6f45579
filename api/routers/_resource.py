"""``ResourceRouter``: an ``APIRouter`` that turns a path outside its mount point away at once.

FastAPI (0.16x) matches an included router's routes lazily: for every request, each
included router ahead of the right one tries each of its routes' patterns, with scope
bookkeeping per route, before the request reaches its own router. With a dozen resource
routers under ``/v1`` that cost more than the rest of routing (docs/benchmarks.md, "Issue
16"). Every route of a router lies under its mount point (``/v1`` + its prefix), so a path
elsewhere cannot match any of them, not even partially: answering "no match" without
looking is the answer the full scan gives.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.routing import Match
from starlette.types import Scope


class ResourceRouter(APIRouter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Where :func:`api.routers.include_routers` mounted it (None: no shortcut).
        self.mounted_at: str | None = None

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        mounted = self.mounted_at
        if mounted is not None:
            path = str(scope.get("path", ""))
            root = str(scope.get("root_path", ""))
            if root and path.startswith(root):
                path = path[len(root) :]
            if not path.startswith(mounted):
                return Match.NONE, {}
        return super().matches(scope)
