"""The envelope over real HTTP: replay, forgery, tampering, expiry, wrong domain."""

from __future__ import annotations

import time

import httpx
import pytest
from _api_server import FAKE_LEDGER, LiveServer, assert_problem

from api.client import DataSafeClient, DataSafeProblemError
from api.envelope import sign_request

ALICE = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
MALLORY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"


def client(server: LiveServer, key: str = ALICE, **kw: object) -> DataSafeClient:
    return DataSafeClient(server.url, key, **kw)  # type: ignore[arg-type]


def test_signed_request_is_accepted_and_nonce_replay_refused(bare_server: LiveServer) -> None:
    with client(bare_server) as c:
        assert c.get("/v1/whoami")["address"] == c.address
        env = sign_request(
            bytes.fromhex(ALICE[2:]),
            chain_id=31337,
            ledger_address=FAKE_LEDGER,
            method="GET",
            path="/v1/whoami",
        )
        first = c.http.get("/v1/whoami", headers=env.to_headers())
        assert first.status_code == 200
        again = c.http.get("/v1/whoami", headers=env.to_headers())
        assert_problem(again, 401, "replayed_request")
        assert again.headers["www-authenticate"].startswith("DataSafe-EIP712")


def test_same_nonce_is_fine_for_another_signer(bare_server: LiveServer) -> None:
    nonce = b"\x42" * 32
    with client(bare_server) as a, client(bare_server, MALLORY) as m:
        ok_a = a.request("GET", "/v1/whoami", sign_overrides={"nonce": nonce})
        ok_m = m.request("GET", "/v1/whoami", sign_overrides={"nonce": nonce})
        assert ok_a.status_code == ok_m.status_code == 200


def test_missing_and_partial_headers(bare_server: LiveServer) -> None:
    with client(bare_server) as c:
        assert_problem(c.http.get("/v1/whoami"), 401, "unauthenticated")
        resp = c.http.get("/v1/whoami", headers={"X-DataSafe-Signer": c.address or ""})
        assert_problem(resp, 401, "unauthenticated")


def test_forged_signature_claiming_another_signer(bare_server: LiveServer) -> None:
    with client(bare_server) as alice:
        env = sign_request(
            bytes.fromhex(MALLORY[2:]),
            chain_id=31337,
            ledger_address=FAKE_LEDGER,
            method="GET",
            path="/v1/whoami",
        )
        headers = env.to_headers() | {"X-DataSafe-Signer": alice.address or ""}
        assert_problem(alice.http.get("/v1/whoami", headers=headers), 401, "bad_signature")


def test_tampered_path_and_method_are_refused(bare_server: LiveServer) -> None:
    with client(bare_server) as c:
        env = sign_request(
            bytes.fromhex(ALICE[2:]),
            chain_id=31337,
            ledger_address=FAKE_LEDGER,
            method="GET",
            path="/v1/whoami?x=1",
        )
        resp = c.http.get("/v1/whoami", headers=env.to_headers())
        assert_problem(resp, 401, "bad_signature")
        env2 = sign_request(
            bytes.fromhex(ALICE[2:]),
            chain_id=31337,
            ledger_address=FAKE_LEDGER,
            method="POST",
            path="/v1/whoami",
        )
        assert_problem(c.http.get("/v1/whoami", headers=env2.to_headers()), 401, "bad_signature")


def test_tampered_body_is_refused(bare_server: LiveServer) -> None:
    with client(bare_server) as c:
        env = sign_request(
            bytes.fromhex(ALICE[2:]),
            chain_id=31337,
            ledger_address=FAKE_LEDGER,
            method="GET",
            path="/v1/whoami",
            body=b'{"a":1}',
        )
        resp = c.http.request("GET", "/v1/whoami", content=b'{"a":2}', headers=env.to_headers())
        assert_problem(resp, 401, "bad_signature")


@pytest.mark.parametrize("skew", [-3600, 3600])
def test_timestamp_outside_window(bare_server: LiveServer, skew: int) -> None:
    with client(bare_server) as c:
        resp = c.request("GET", "/v1/whoami", sign_overrides={"timestamp": int(time.time()) + skew})
        body = assert_problem(resp, 401, "request_expired")
        assert "300s" in str(body["detail"])


@pytest.mark.parametrize(
    "override",
    [{"chain_id": 1}, {"ledger_address": "0x000000000000000000000000000000000000dEaD"}],
)
def test_wrong_signing_domain(bare_server: LiveServer, override: dict[str, object]) -> None:
    with client(bare_server) as c:
        resp = c.request("GET", "/v1/whoami", sign_overrides=dict(override))
        body = assert_problem(resp, 401, "bad_signature")
        assert "chain id 31337" in str(body["detail"])


def test_client_raises_typed_problem(bare_server: LiveServer) -> None:
    with client(bare_server) as c:
        with pytest.raises(DataSafeProblemError) as info:
            c.get("/v1/whoami", signed=False)
        assert info.value.code == "unauthenticated"
        assert info.value.status == 401


def test_info_health_and_request_id(bare_server: LiveServer) -> None:
    with httpx.Client(base_url=bare_server.url) as h:
        assert h.get("/healthz").json() == {"status": "ok"}
        info = h.get("/v1/info").json()
        assert info["chain_id"] == 31337
        assert info["domain"]["verifying_contract"] == FAKE_LEDGER
        assert "urn:datasafe:problem:grant_revoked" in info["problem_types"]
        resp = h.get("/healthz", headers={"X-Request-ID": "abc-123"})
        assert resp.headers["x-request-id"] == "abc-123"
        generated = h.get("/healthz").headers["x-request-id"]
        assert len(generated) == 32


def test_readyz_fails_when_manifest_has_no_contract(bare_server: LiveServer) -> None:
    with httpx.Client(base_url=bare_server.url) as h:
        resp = h.get("/readyz")
        body = assert_problem(resp, 503, "not_ready")
        assert body["checks"]["chain"]["ok"] is True  # type: ignore[index]
        assert body["checks"]["manifest"]["code_present"] is False  # type: ignore[index]
        assert body["checks"]["database"]["ok"] is True  # type: ignore[index]


def test_unknown_route_and_bad_method_are_problems(bare_server: LiveServer) -> None:
    with httpx.Client(base_url=bare_server.url) as h:
        assert_problem(h.get("/v1/nope"), 404, "not_found")
        assert_problem(h.delete("/v1/info"), 405, "method_not_allowed")


def test_openapi_declares_problem_schema_and_security(bare_server: LiveServer) -> None:
    with httpx.Client(base_url=bare_server.url) as h:
        doc = h.get("/openapi.json").json()
    assert "Problem" in doc["components"]["schemas"]
    assert "DataSafeEIP712" in doc["components"]["securitySchemes"]
    assert doc["paths"]["/v1/whoami"]["get"]["security"] == [{"DataSafeEIP712": []}]


def test_concurrent_replays_accept_exactly_one(bare_server: LiveServer) -> None:
    import concurrent.futures

    env = sign_request(
        bytes.fromhex(ALICE[2:]),
        chain_id=31337,
        ledger_address=FAKE_LEDGER,
        method="GET",
        path="/v1/whoami",
    )
    headers = env.to_headers()

    def hit(_: int) -> int:
        return httpx.get(bare_server.url + "/v1/whoami", headers=headers).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(hit, range(24)))
    assert statuses.count(200) == 1
    assert statuses.count(401) == 23


def test_nonce_store_batch_with_duplicates(db_url: str) -> None:
    from api.db import make_engine, migrate
    from api.nonces import NonceStore

    engine = make_engine(db_url)
    migrate(engine)
    store = NonceStore(engine, 300)
    now = int(time.time())
    a, b = b"\x01" * 32, b"\x02" * 32
    assert store.consume_many([("0xa", a, now), ("0xa", a, now), ("0xb", a, now)]) == [
        True,
        False,
        True,
    ]
    assert store.consume_many([("0xa", b, now), ("0xa", a, now), ("0xa", b, now)]) == [
        True,
        False,
        False,
    ]
    assert store.consume("0xc", a, now - 10_000) is True
    assert store.prune(now) == 1
    assert store.consume("0xa", a, now) is False
    engine.dispose()
