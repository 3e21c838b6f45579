"""Strict envelopes: only the documented signature form, bounded numbers, no trace of
strangers, and metrics for the operator's scraper only.

- ``v`` is 27 or 28 (docs/api.md), in the request envelope and in the signed messages inside
  bodies (grants, status changes, access requests); 0/1, EIP-155 values or anything else are
  refused, even where the same ``r, s`` would recover the right key;
- a uint256 nonce beyond ``2**256 - 1`` is 422 ``invalid_request`` (it was a 500);
- a valid signature by a key that is no member is refused on every writing route and writes
  nothing, not even its nonce (the matrix in test_authz_matrix.py covers every operation);
- ``GET /metrics`` needs ``Authorization: Bearer <DATASAFE_API_METRICS_TOKEN>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _api_server import (
    METRICS_HEADERS,
    METRICS_TOKEN,
    LiveServer,
    assert_problem,
    live_server,
    world_settings,
)
from _scene import Scene, build_scene, grant_payload

from api.envelope import EnvelopeError, recover, request_digest, sign_digest, sign_request
from api.errors import MetricsUnauthenticatedError
from api.metrics import check_scraper
from api.models import AccessCreate, GrantCreate

KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
UINT256_MAX = 2**256 - 1


@pytest.fixture(scope="module")
def scene(world_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    with build_scene(world_session, tmp_path_factory.mktemp("strict")) as built:
        yield built


# ---- v ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("v", [0, 1, 2, 26, 29, 35, 36, 37, 38, 255])
def test_recover_accepts_only_v_27_or_28(v: int) -> None:
    digest = b"\x42" * 32
    sig = sign_digest(KEY, digest)
    assert sig[64] in (27, 28)
    assert recover(digest, sig)  # the documented form recovers
    with pytest.raises(EnvelopeError, match="v must be 27 or 28"):
        recover(digest, sig[:64] + bytes([v]))


def test_envelope_with_v_0_or_1_is_refused_over_http(scene: Scene) -> None:
    for delta in (0, -27):  # 27/28 as signed, then the same r, s with v 0/1
        env = sign_request(
            scene.world.bank.key_bytes,
            chain_id=scene.world.chain_id,
            ledger_address=scene.world.ledger_address,
            method="GET",
            path="/v1/members/me",
        )
        sig = env.signature[:64] + bytes([env.signature[64] + delta])
        headers = env.to_headers() | {"X-DataSafe-Signature": "0x" + sig.hex()}
        resp = httpx.get(scene.server.url + "/v1/members/me", headers=headers)
        if delta == 0:
            assert resp.status_code == 200, resp.text
        else:
            assert_problem(resp, 401, "bad_signature")


def _lower_v(signature: str) -> str:
    raw = bytes.fromhex(signature[2:])
    return "0x" + (raw[:64] + bytes([raw[64] - 27])).hex()


def test_signed_messages_in_bodies_need_v_27_or_28(scene: Scene) -> None:
    w = scene.world
    before = scene.fingerprint(nonces=False)
    with scene.client("citizen") as citizen:
        body, _ = grant_payload(w, w.citizen, scene.asset, w.bank)
        body["signature"] = _lower_v(body["signature"])
        assert_problem(citizen.request("POST", "/v1/grants", json_body=body), 401, "bad_signature")
        action = w.sign_action(w.citizen, "pause", scene.grant_id)
        action["signature"] = _lower_v(action["signature"])
        resp = citizen.request("POST", f"/v1/grants/{scene.grant_id}/pause", json_body=action)
        assert_problem(resp, 401, "bad_signature")
    with scene.client("bank") as bank:
        access = w.sign_access(w.bank, scene.grant_id, 0b00011)
        access["signature"] = _lower_v(access["signature"])
        resp = bank.request("POST", "/v1/access", json_body=access)
        assert_problem(resp, 403, "request_signature_invalid")
    assert scene.fingerprint(nonces=False) == before


# ---- nonces past uint256 ------------------------------------------------------------------------


@pytest.mark.parametrize("nonce", [str(UINT256_MAX + 1), "9" * 78])
def test_models_bound_uint256_nonces(nonce: str) -> None:
    base = {"fields_mask": 1, "deadline": 1, "signature": "0x" + "11" * 65}
    with pytest.raises(ValueError, match="2\\*\\*256 - 1"):
        AccessCreate.model_validate(base | {"grant_id": "0x" + "00" * 32, "nonce": nonce})
    assert AccessCreate.model_validate(
        base | {"grant_id": "0x" + "00" * 32, "nonce": str(UINT256_MAX)}
    ).nonce == str(UINT256_MAX)


@pytest.mark.parametrize("nonce", [str(UINT256_MAX + 1), "9" * 78])
def test_nonce_past_uint256_is_422_not_500(scene: Scene, nonce: str) -> None:
    w = scene.world
    with scene.client("citizen") as citizen:
        body, _ = grant_payload(w, w.citizen, scene.asset, w.bank)
        body["nonce"] = nonce
        problem = assert_problem(
            citizen.request("POST", "/v1/grants", json_body=body), 422, "invalid_request"
        )
        assert "2**256 - 1" in json.dumps(problem)
    with scene.client("bank") as bank:
        access = w.sign_access(w.bank, scene.grant_id, 0b00011)
        access["nonce"] = nonce
        assert_problem(bank.request("POST", "/v1/access", json_body=access), 422, "invalid_request")
    # the largest uint256 is a valid nonce: the request goes on to the signature check
    with scene.client("citizen") as citizen:
        body, _ = grant_payload(w, w.citizen, scene.asset, w.bank)
        body["nonce"] = str(UINT256_MAX)
        resp = citizen.request("POST", "/v1/grants", json_body=body)
        assert resp.status_code != 500 and resp.json()["code"] == "bad_signature", resp.text
    assert GrantCreate.model_fields["nonce"].description


# ---- strangers write nothing --------------------------------------------------------------------


def test_a_strangers_valid_signature_writes_nothing_on_any_writing_route(scene: Scene) -> None:
    w = scene.world
    doc = httpx.get(scene.server.url + "/openapi.json").json()
    writes = [
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in ("post", "put", "patch", "delete")
    ]
    assert len(writes) >= 12
    ids = {
        "{asset_id}": scene.asset.hex,
        "{grant_id}": scene.grant_id,
        "{webhook_id}": scene.webhook_id,
    }
    grant_body, _ = grant_payload(w, w.outsider, scene.asset, w.bank)
    before = scene.fingerprint()
    with scene.client("outsider") as outsider:
        for method, path in writes:
            for key, value in ids.items():
                path = path.replace(key, value)
            body = grant_body if path == "/v1/grants" else {"raw_transaction": "0x02"}
            resp = outsider.request(method, path, json_body=body if method != "DELETE" else None)
            assert_problem(resp, 403, "not_member")
    assert scene.fingerprint() == before, "a stranger's request left a row or a transaction"


# ---- /metrics -----------------------------------------------------------------------------------


def test_metrics_need_the_bearer_token(scene: Scene) -> None:
    url = scene.server.url + "/metrics"
    assert httpx.get(url, headers=METRICS_HEADERS).status_code == 200
    for headers in (
        {},
        {"authorization": "Bearer wrong"},
        {"authorization": f"Bearer {METRICS_TOKEN}x"},
        {"authorization": f"Basic {METRICS_TOKEN}"},
        {"authorization": "Bearer"},
        {"authorization": METRICS_TOKEN},
    ):
        resp = httpx.get(url, headers=headers)
        problem = assert_problem(resp, 401, "metrics_unauthenticated")
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert "datasafe_" not in resp.text and METRICS_TOKEN not in str(problem)
    # a member's signed request is not a scraper either
    with scene.client("regulator") as regulator:
        assert_problem(regulator.request("GET", "/metrics"), 401, "metrics_unauthenticated")


@pytest.fixture
def tokenless(scene: Scene, tmp_path: Path) -> Iterator[LiveServer]:
    settings = world_settings(scene.world, scene.db_url, tmp_path, metrics_token=None)
    with live_server(settings) as srv:
        yield srv


def test_metrics_are_off_without_a_configured_token(tokenless: LiveServer) -> None:
    for headers in ({}, {"authorization": "Bearer"}, METRICS_HEADERS):
        resp = httpx.get(tokenless.url + "/metrics", headers=headers)
        problem = assert_problem(resp, 401, "metrics_unauthenticated")
        assert "no token is configured" in str(problem["detail"])


def test_check_scraper_is_strict_about_the_scheme() -> None:
    from pydantic import SecretStr

    token = SecretStr("t0k3n")
    check_scraper(token, "Bearer t0k3n")
    check_scraper(token, "bearer t0k3n")
    for bad in (None, "", "Bearer", "Bearer t0k3", "Token t0k3n", "Bearer t0k3n extra"):
        with pytest.raises(MetricsUnauthenticatedError):
            check_scraper(token, bad)
    with pytest.raises(MetricsUnauthenticatedError):
        check_scraper(None, "Bearer ")


def test_request_digest_refuses_timestamps_past_uint64() -> None:
    with pytest.raises(EnvelopeError):
        request_digest(b"\0" * 32, "GET", "/", b"\0" * 32, 2**64, b"\0" * 32)
