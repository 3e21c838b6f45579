"""The OpenAPI document is complete enough to generate a client from."""

from __future__ import annotations

from typing import Any

from api.app import create_app
from api.errors import ApiError
from api.settings import ApiSettings

PUBLIC = {"/healthz", "/readyz", "/v1/info"}
#: Routes whose success body is a stream rather than JSON.
NON_JSON = {"/v1/me/events"}


def _doc() -> dict[str, Any]:
    return create_app(ApiSettings()).openapi()


def test_operation_ids_unique_and_readable() -> None:
    ids = [op["operationId"] for item in _doc()["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert "grants_verify_grant" in ids and "access_pull" in ids


def test_every_privileged_route_declares_signature_security() -> None:
    for path, item in _doc()["paths"].items():
        for method, op in item.items():
            if path in PUBLIC:
                assert "security" not in op, (method, path)
            else:
                assert op.get("security") == [{"DataSafeEIP712": []}], (method, path)


def test_every_route_has_typed_success_and_problem_responses() -> None:
    doc = _doc()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            ok = next(code for code in op["responses"] if code.startswith("2"))
            content = op["responses"][ok].get("content", {})
            # every body a route declares is typed (JSON, or a stream / export format);
            # a route without a body (e.g. a delete) declares no content at all
            assert all("schema" in c for c in content.values()), (method, path)
            if content and path not in NON_JSON:
                assert "application/json" in content, (method, path)
            if path not in {"/healthz", "/v1/info"}:
                problems = [
                    r
                    for code, r in op["responses"].items()
                    if code[0] in "45" and "application/problem+json" in r.get("content", {})
                ]
                assert problems or (path.startswith("/v1/") and "422" in op["responses"]), (
                    method,
                    path,
                )
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["properties"]["code"]["enum"]) == set(ApiError.registry)
