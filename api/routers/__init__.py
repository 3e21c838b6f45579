"""Routers by resource, listed explicitly; all but the health probes under ``/v1``.

The order is the order of the OpenAPI paths (a generated client's diff stays quiet).
"""

from __future__ import annotations

from fastapi import FastAPI

from api.routers import (
    access,
    acknowledgements,
    assets,
    audit,
    claims,
    forward,
    grants,
    health,
    history,
    members,
    meta,
    proposals,
    schemas,
    sealed,
    trace,
    webhooks,
)

V1_ROUTERS = (
    meta.router,
    members.router,
    schemas.router,
    assets.router,
    grants.router,
    proposals.router,
    access.router,
    forward.router,
    trace.router,
    audit.router,
    history.router,
    webhooks.router,
    sealed.router,
    acknowledgements.router,
    claims.router,
)


def include_routers(app: FastAPI) -> None:
    app.include_router(health.router)
    for router in V1_ROUTERS:
        app.include_router(router, prefix="/v1")
        router.mounted_at = "/v1" + router.prefix
