"""Liveness and readiness (unversioned, unauthenticated)."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api import db, errors, scrub
from api.deps import ServicesDep
from ledger.manifest import code_hash as manifest_code_hash

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, Any]


@router.get("/healthz", response_model=Health, summary="Process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Chain reachable, manifest matches, database migrated, indexer caught up "
    "(plus the blob scrub's findings as detail)",
    responses=errors.problem_responses(errors.NotReadyError),
)
async def readyz(request: Request, services: ServicesDep) -> Readiness | JSONResponse:
    checks: dict[str, Any] = {}
    ok = True
    try:
        chain_id = await services.chain.chain_id()
        head = await services.chain.block_number()
        checks["chain"] = {"ok": True, "chain_id": chain_id, "block": head}
        code = await services.chain.code_at(services.deployment.ledger_address)
        present = len(code) > 0
        code_ok = present and manifest_code_hash(code.hex()) == services.deployment.code_hash
        manifest_ok = chain_id == services.deployment.chain_id and code_ok
        checks["manifest"] = {
            "ok": manifest_ok,
            "chain_id": services.deployment.chain_id,
            "ledger": services.deployment.ledger_address,
            "code_present": present,
            "code_hash_matches": code_ok,
        }
        ok = ok and manifest_ok
    except (errors.ApiError, Exception) as exc:
        checks["chain"] = {"ok": False, "error": str(exc)}
        head = None
        ok = False
    try:
        migrated = await to_thread.run_sync(db.is_migrated, services.engine)
        checks["database"] = {"ok": migrated}
        ok = ok and migrated
    except Exception as exc:
        checks["database"] = {"ok": False, "error": exc.__class__.__name__}
        ok = False
    # Detail, not a gate: a lost blob is an alarm (``datasafe-node status`` fails on it) but
    # the other assets are still served.
    try:
        checks["blobs"] = await to_thread.run_sync(scrub.health, services.engine)
    except Exception as exc:
        checks["blobs"] = {"ok": False, "error": exc.__class__.__name__}
    indexer = services.extras.get("indexer_status")
    if services.settings.run_indexer and (indexer is None or "indexer_error" in services.extras):
        checks["indexer"] = {
            "ok": False,
            "error": services.extras.get("indexer_error", "not running"),
        }
        ok = False
    elif indexer is not None and head is not None:
        last = await indexer()
        lag = head - last if last is not None else None
        lag_ok = lag is not None and lag <= services.settings.max_indexer_lag_blocks
        checks["indexer"] = {"ok": lag_ok, "last_block": last, "lag": lag}
        ok = ok and lag_ok
    if ok:
        return Readiness(status="ready", checks=checks)
    err = errors.NotReadyError("one or more readiness checks failed", checks=checks)
    return errors.problem_response(err, request)
