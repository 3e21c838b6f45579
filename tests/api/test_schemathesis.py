"""Issue 7: schemathesis over the whole OpenAPI document of a live service.

Real anvil (the session's deployed ledger), real uvicorn, real SQLite. Every operation the
service publishes is exercised with generated requests, each signed by a member whose roles
fit the route: the signature covers the exact method, target and body bytes that go on the
wire (a ``requests`` auth hook on the prepared request, after schemathesis serialised it).
Checks: no 5xx, and every response conforms to the documented schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from _api_server import LiveServer, live_server, world_settings
from _api_world import Actor, World
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from api.envelope import sign_request


class SignedRequests(requests.auth.AuthBase):
    """Signs each prepared request over the bytes ``requests`` will send."""

    def __init__(self, world: World) -> None:
        self.world = world

    def signer_for(self, method: str, path: str) -> Actor:
        w = self.world
        if (path.startswith("/v1/access") and method == "POST") or path.endswith("/verify"):
            return w.bank
        if method != "GET" and path.startswith(("/v1/assets", "/v1/schemas")):
            return w.issuer
        if method != "GET" and path.startswith("/v1/grants"):
            return w.citizen
        return w.regulator

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode()
        target = r.path_url
        actor = self.signer_for(str(r.method), target.split("?", 1)[0])
        env = sign_request(
            actor.key_bytes,
            chain_id=self.world.chain_id,
            ledger_address=self.world.ledger_address,
            method=str(r.method),
            path=target,
            body=body,
        )
        r.headers.update(env.to_headers())
        return r


@pytest.fixture(scope="module")
def st_world(world_session: World) -> Iterator[World]:
    """The session's ledger; whatever the sweep changes on chain is rolled back after it."""
    snap = world_session.snapshot()
    yield world_session
    world_session.revert(snap)


@pytest.fixture(scope="module")
def st_server(st_world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    db_url = f"sqlite:///{tmp / 'api.db'}"
    # The indexer runs so that the event-index routes (/v1/access, history) are servable.
    settings = world_settings(st_world, db_url, tmp, run_indexer=True)
    with live_server(settings) as srv:
        yield srv


@pytest.fixture(scope="module")
def api_schema(st_server: LiveServer) -> Any:
    return schemathesis.openapi.from_url(f"{st_server.url}/openapi.json")


@pytest.fixture(scope="module")
def signed_session(st_world: World) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.auth = SignedRequests(st_world)
        yield session


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation(
    case: Any, st_server: LiveServer, signed_session: requests.Session
) -> None:
    case.call_and_validate(
        base_url=st_server.url,
        session=signed_session,
        checks=[not_a_server_error, response_schema_conformance],
        timeout=30,
    )
