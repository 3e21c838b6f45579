"""``create_app()``: the FastAPI application and its lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from api import errors
from api._docs import install_offline_docs
from api._edge import BodyGuardMiddleware
from api._fastpath import VerifyFastPath
from api._streams import StreamSlots
from api.metrics import Metrics, MetricsMiddleware
from api.metrics import router as metrics_router
from api.observability import RequestIdMiddleware, configure_logging
from api.routers import include_routers
from api.services import build_services
from api.settings import ApiSettings, get_settings
from ledger import restore_recursion_limit

API_VERSION = "1.0.0"
API_DESCRIPTION = (
    "Departments push sealed data into citizens' safes, citizens' signed consents are "
    "relayed (citizens need no gas), and institutions pull authorised data, each pull "
    "recorded on-chain before any byte leaves. Privileged calls carry an EIP-712 signed "
    "request envelope (see the DataSafeEIP712 security scheme). Errors are RFC 9457 "
    "problem+json with a stable `type` per reason."
)


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    # eth-account imports py_ecc, which raises the recursion limit beyond what the C stack
    # holds: a deep enough structure would then crash the process instead of raising.
    restore_recursion_limit()
    cfg = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(cfg.log_level, cfg.log_json)
        async with build_services(cfg) as services:
            app.state.services = services
            from api import startup

            await startup.start(services)
            from api import webhooks

            await webhooks.start(services)
            try:
                yield
            finally:
                await startup.stop(services)
                app.state.services = None

    app = FastAPI(
        title="DataSafe Ledger API",
        version=API_VERSION,
        summary="Encrypted data safes and field-level consents on a permissioned EVM chain",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        # Served by install_offline_docs from pinned local assets (the defaults use a CDN).
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=_operation_id,
    )
    app.state.services = None
    app.state.max_validation_errors = cfg.max_validation_errors
    app.state.streams = StreamSlots(cfg.max_streams_per_member, cfg.max_streams_total)
    # Innermost: verify's plain requests served without FastAPI's per-request machinery, after
    # every outer layer (request id, metrics, access log, the edge's envelope check) has run.
    app.add_middleware(VerifyFastPath)
    # Inside the request id and metrics, so the request id is already set when it refuses.
    app.add_middleware(
        BodyGuardMiddleware,
        max_body_bytes=cfg.max_body_bytes,
        max_json_depth=cfg.max_json_depth,
        max_json_items=cfg.max_json_items,
    )
    app.add_middleware(RequestIdMiddleware)
    app.state.metrics = Metrics()
    app.state.metrics_token = cfg.metrics_token
    app.state.metrics.api_restarts.set(cfg.supervisor_restarts)
    app.add_middleware(
        MetricsMiddleware,
        metrics=app.state.metrics,
        templates=lambda: list(app.openapi().get("paths", {})),
    )
    app.include_router(metrics_router)
    errors.install_error_handlers(app)
    install_offline_docs(app)
    include_routers(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
        _document_common_problems(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


_AUTH_PROBLEMS = errors.problem_responses(
    errors.UnauthenticatedError,
    errors.BadSignatureError,
    errors.RequestExpiredError,
    errors.ReplayedRequestError,
    errors.NotMemberError,
    errors.MemberSuspendedError,
    errors.InvalidRequestError,
    errors.ChainUnavailableError,
)


def _document_common_problems(schema: dict[str, Any]) -> None:
    """Every signed route can answer the envelope's problems; 422 is problem+json too."""
    for item in schema.get("paths", {}).values():
        for op in item.values():
            responses = op.setdefault("responses", {})
            if "422" in responses:
                responses["422"] = {
                    "description": "Problem: `invalid_request`",
                    "content": {
                        errors.PROBLEM_CONTENT_TYPE: {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    },
                }
            if "security" not in op:
                continue
            for status, response in _AUTH_PROBLEMS.items():
                key = str(status)
                if key not in responses:
                    responses[key] = response
                else:
                    responses[key]["description"] += ", " + response["description"].removeprefix(
                        "Problem: "
                    )
                    responses[key].setdefault("content", response["content"])


def _operation_id(route: APIRoute) -> str:
    """Stable, readable operation ids (``grants_verify_grant``) for generated clients."""
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}_{route.name}"


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details. `code` repeats the slug at the end of `type`.",
    "properties": {
        "type": {
            "type": "string",
            "format": "uri",
            "enum": sorted(errors.PROBLEM_TYPE_PREFIX + s for s in errors.ApiError.registry),
        },
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "code": {"type": "string", "enum": sorted(errors.ApiError.registry)},
        "request_id": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail", "code"],
}
