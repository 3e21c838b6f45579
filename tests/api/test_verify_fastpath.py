"""``verify``'s fast path (api/_fastpath.py) answers exactly what the FastAPI route answers.

Every case is sent twice with the same request id: once as ``?fields_mask=N`` (served by the
fast path, which the test counts) and once with an extra, ignored query parameter (which the
fast path leaves to FastAPI's route). Status, problem+json or verdict body, and headers must be
the same; metrics label both under the route template; a replay is refused on either path.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from _api_server import METRICS_HEADERS, LiveServer
from _api_world import Actor, World
from fastapi.routing import APIRoute
from prometheus_client.parser import text_string_to_metric_families
from test_verify import direct_grant

from api._fastpath import VerifyFastPath, _Plan
from api.app import create_app
from api.envelope import sign_request

SLOW = "&via=fastapi"  # any other query parameter: the request goes down FastAPI's route
RID = "fastpath-identity"


def fast_path(server: LiveServer) -> VerifyFastPath:
    """The app's fast-path middleware (the stack is built by the first request)."""
    httpx.get(server.url + "/healthz", timeout=60)  # the first request builds the stack
    layer: Any = server.server.config.app.middleware_stack
    while not isinstance(layer, VerifyFastPath):
        layer = layer.app
    return layer


def signed(world: World, actor: Actor, target: str, **overrides: Any) -> dict[str, str]:
    env = sign_request(
        actor.key_bytes,
        chain_id=overrides.pop("chain_id", world.chain_id),
        ledger_address=overrides.pop("ledger_address", world.ledger_address),
        method="GET",
        path=target,
        **overrides,
    )
    return env.to_headers() | {"X-Request-ID": RID}


def send(server: LiveServer, target: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(server.url + target, headers=headers, timeout=30)


def comparable(resp: httpx.Response) -> tuple[int, dict[str, str], dict[str, Any]]:
    headers = {
        k: v for k, v in resp.headers.items() if k not in ("date", "server", "content-length")
    }
    body = resp.json()
    body.pop("at", None)  # the judged time: the pending block's, may tick between the two
    return resp.status_code, headers, body


#: name -> (who signs, grant id or None for the test's grant, mask, signing overrides,
#: expected status, expected code)
CASES: dict[str, tuple[str, str | None, int, dict[str, Any], int, str]] = {
    "allowed": ("bank", None, 0b011, {}, 200, "ok"),
    "fields not granted": ("bank", None, 0b111, {}, 200, "fields_not_granted"),
    "another bank": ("bank2", None, 1, {}, 403, "not_grantee"),
    "unknown grant": ("bank", "0x" + "ee" * 32, 1, {}, 404, "grant_not_found"),
    "subject": ("citizen", None, 1, {}, 403, "role_required"),
    "issuer": ("issuer", None, 1, {}, 403, "role_required"),
    "outsider": ("outsider", None, 1, {}, 403, "not_member"),
    "expired envelope": ("bank", None, 1, {"timestamp": int(time.time()) - 3600}, 401, ""),
    "wrong chain id": ("bank", None, 1, {"chain_id": 1}, 401, "bad_signature"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_answers_as_the_route(server: LiveServer, world: World, case: str) -> None:
    who, grant, mask, overrides, status, code = CASES[case]
    gid = grant or direct_grant(world)
    actor = getattr(world, who)
    fast = fast_path(server)
    answers = []
    for suffix, served in (("", 1), (SLOW, 0)):
        target = f"/v1/grants/{gid}/verify?fields_mask={mask}{suffix}"
        before = fast.served
        resp = send(server, target, signed(world, actor, target, **dict(overrides)))
        assert fast.served - before == served, f"{target}: served by the wrong path"
        answers.append(comparable(resp))
    assert answers[0] == answers[1]
    got_status, headers, body = answers[0]
    assert got_status == status, body
    assert headers["x-request-id"] == RID
    if status == 200:
        assert headers["content-type"] == "application/json"
        assert body["code"] == code and body["grant_id"] == gid and body["fields_mask"] == mask
    else:
        assert headers["content-type"] == "application/problem+json"
        assert body["request_id"] == RID and body["instance"] == f"/v1/grants/{gid}/verify"
        assert not code or body["code"] == code


def test_replays_and_suspension_on_both_paths(server: LiveServer, world: World) -> None:
    gid = direct_grant(world)
    fast = fast_path(server)
    for suffix in ("", SLOW):
        target = f"/v1/grants/{gid}/verify?fields_mask=1{suffix}"
        headers = signed(world, world.bank, target, nonce=secrets.token_bytes(32))
        assert send(server, target, headers).status_code == 200
        again = send(server, target, headers)
        assert again.status_code == 401 and again.json()["code"] == "replayed_request"
    # a nonce spent on the fast path is spent for FastAPI's route too, and the other way round
    nonce = secrets.token_bytes(32)
    fast_target = f"/v1/grants/{gid}/verify?fields_mask=1"
    assert send(server, fast_target, signed(world, world.bank, fast_target, nonce=nonce)).is_success
    slow_target = fast_target + SLOW
    replay = send(server, slow_target, signed(world, world.bank, slow_target, nonce=nonce))
    assert replay.status_code == 401 and replay.json()["code"] == "replayed_request"
    served = fast.served
    world.suspend(world.bank)
    for suffix in ("", SLOW):
        target = fast_target + suffix
        resp = send(server, target, signed(world, world.bank, target))
        assert resp.status_code == 403 and resp.json()["code"] == "member_suspended"
    assert fast.served == served + 1


PASSED_ON: dict[str, Callable[[str], tuple[str, str, int]]] = {
    # name -> grant id -> (method, target, expected status); none reaches the fast path
    "HEAD": lambda gid: ("HEAD", f"/v1/grants/{gid}/verify?fields_mask=1", 405),
    "POST": lambda gid: ("POST", f"/v1/grants/{gid}/verify?fields_mask=1", 405),
    "mask 0": lambda gid: ("GET", f"/v1/grants/{gid}/verify?fields_mask=0", 422),
    "mask 2**64": lambda gid: ("GET", f"/v1/grants/{gid}/verify?fields_mask={2**64}", 422),
    "mask not a number": lambda gid: ("GET", f"/v1/grants/{gid}/verify?fields_mask=x", 422),
    "no mask": lambda gid: ("GET", f"/v1/grants/{gid}/verify", 422),
    "short grant id": lambda gid: ("GET", "/v1/grants/0x12/verify?fields_mask=1", 422),
    "escaped mask": lambda gid: ("GET", f"/v1/grants/{gid}/verify?fields_mask=%31", 200),
    "mask twice": lambda gid: ("GET", f"/v1/grants/{gid}/verify?fields_mask=2&fields_mask=1", 200),
    "trailing slash": lambda gid: ("GET", f"/v1/grants/{gid}/verify/?fields_mask=1", 307),
}


@pytest.mark.parametrize("case", list(PASSED_ON))
def test_other_requests_go_to_fastapi(server: LiveServer, world: World, case: str) -> None:
    gid = direct_grant(world)
    method, target, status = PASSED_ON[case](gid)
    fast = fast_path(server)
    before = fast.served
    env = sign_request(
        world.bank.key_bytes,
        chain_id=world.chain_id,
        ledger_address=world.ledger_address,
        method=method,
        path=target,
    )
    resp = httpx.request(method, server.url + target, headers=env.to_headers(), timeout=30)
    assert resp.status_code == status, resp.text
    assert fast.served == before
    if status == 200:
        assert resp.json()["allowed"] is True


def test_metrics_label_fast_answers_by_the_route(server: LiveServer, world: World) -> None:
    gid = direct_grant(world)

    def count() -> float:
        text = httpx.get(server.url + "/metrics", headers=METRICS_HEADERS).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = sample.labels
                if (
                    sample.name == "datasafe_http_requests_total"
                    and labels.get("route") == "/v1/grants/{grant_id}/verify"
                    and labels.get("status") == "200"
                ):
                    return float(sample.value)
        return 0.0

    before = count()
    fast = fast_path(server)
    served = fast.served
    for _ in range(3):
        target = f"/v1/grants/{gid}/verify?fields_mask=1"
        assert send(server, target, signed(world, world.bank, target)).status_code == 200
    assert fast.served == served + 3
    assert count() == before + 3


def test_the_real_app_takes_the_fast_path() -> None:
    """The route is declared as the fast path serves it, and no route ahead of it could take
    its paths; a change to either switches the path off, and this test says so."""
    assert _Plan.of(create_app()) is not None


def test_a_route_ahead_of_verify_switches_the_fast_path_off() -> None:
    app = create_app()

    async def elsewhere(thing: str) -> dict[str, str]:
        return {"thing": thing}

    app.router.routes.insert(0, APIRoute("/v1/grants/{thing}/verify", elsewhere))
    assert _Plan.of(app) is None
