"""Webhooks over real HTTP: a receiver that fails 3 times, then succeeds; one event processed."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from _api_server import LiveServer, assert_problem, free_port, live_server, world_settings
from _api_world import World
from _trace_helpers import TraceHistory, build_history

from api import webhooks
from api.client import DataSafeClient


class Receiver:
    """An institution's endpoint: answers 500 to the first ``fail`` requests, then 200.

    It processes an event only once per idempotency key, as a receiver must with
    at-least-once delivery, and checks every signature with the webhook's secret.
    """

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.secret = ""
        self.requests: list[dict[str, Any]] = []
        self.processed: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                key = self.headers["X-DataSafe-Idempotency-Key"]
                valid = webhooks.verify_signature(
                    outer.secret, self.headers["X-DataSafe-Webhook-Signature"], body
                )
                with outer._lock:
                    outer.requests.append({"key": key, "valid": valid, "body": json.loads(body)})
                    failing = len(outer.requests) <= outer.fail
                    if not failing and valid and key not in outer._seen:
                        outer._seen.add(key)
                        outer.processed.append(json.loads(body))
                self.send_response(500 if failing else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/datasafe"
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def hooked(
    world: World, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[LiveServer, TraceHistory]]:
    monkeypatch.setenv("DATASAFE_WEBHOOK_POLL_INTERVAL", "0.1")
    monkeypatch.setenv("DATASAFE_WEBHOOK_BACKOFF_SECONDS", "0.05")
    # The receiver listens on loopback, which the egress policy refuses unless allowlisted.
    monkeypatch.setenv("DATASAFE_WEBHOOK_ALLOW_NETWORKS", '["127.0.0.1/32"]')
    history = build_history(world, db_url)
    with live_server(world_settings(world, db_url, tmp_path)) as srv:
        yield srv, history


def _wait(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_revocation_is_delivered_once_after_three_failures(
    hooked: tuple[LiveServer, TraceHistory],
) -> None:
    server, h = hooked
    w = h.world
    with Receiver(fail=3) as receiver, DataSafeClient(server.url, w.bank.key) as bank:
        created = bank.post("/v1/webhooks", {"url": receiver.url})
        receiver.secret = created["secret"]
        assert created["kinds"] == ["expired", "paused", "revoked"]
        assert [x["id"] for x in bank.get("/v1/webhooks")] == [created["id"]]
        hook = created["id"]

        # after registration: a grant to the bank is revoked; a grant to bank2 is revoked too
        h.grant("later", w.citizen, h.assets["a1"], w.bank, purpose=5, mask=0b00100)
        h.status(w.citizen, "revoke", "later")
        h.status(w.citizen2, "revoke", "notary")
        h.index()

        def delivered() -> bool:
            log = bank.get(f"/v1/webhooks/{hook}/deliveries")
            return bool(log) and log[0]["status"] == "delivered"

        _wait(delivered)
        time.sleep(0.5)  # a few more dispatcher rounds: nothing else may arrive
        log = bank.get(f"/v1/webhooks/{hook}/deliveries")
        assert len(log) == 1
        entry = log[0]
        assert entry["type"] == "grant.revoked" and entry["attempts"] == 4
        assert entry["last_status"] == 200 and entry["delivered_at"] is not None
        keys = {r["key"] for r in receiver.requests}
        assert keys == {entry["event_key"]} and len(receiver.requests) == 4
        assert all(r["valid"] for r in receiver.requests)
        assert len(receiver.processed) == 1
        event = receiver.processed[0]
        assert event["type"] == "grant.revoked"
        assert event["data"]["grant_id"] == h.grants["later"]
        assert event["data"]["institution"] == w.bank.address.lower()
        revoke_tx = next(tx for tx, what in h.txs.items() if what == "revoke later")
        assert event["data"]["tx_hash"] == revoke_tx

        # other institutions and roles: not theirs
        with DataSafeClient(server.url, w.bank2.key) as bank2:
            assert bank2.get("/v1/webhooks") == []
            assert_problem(
                bank2.request("GET", f"/v1/webhooks/{hook}/deliveries"), 404, "not_found"
            )
            assert_problem(bank2.request("DELETE", f"/v1/webhooks/{hook}"), 404, "not_found")
        with DataSafeClient(server.url, w.citizen.key) as citizen:
            assert_problem(
                citizen.request("POST", "/v1/webhooks", json_body={"url": receiver.url}),
                403,
                "role_required",
            )
        bad = bank.request("POST", "/v1/webhooks", json_body={"url": "not a url"})
        assert_problem(bad, 422, "invalid_request")
        assert bank.delete(f"/v1/webhooks/{hook}")["active"] is False
        assert bank.get("/v1/webhooks") == []
        assert_problem(bank.request("DELETE", f"/v1/webhooks/{hook}"), 404, "not_found")
        assert len(bank.get(f"/v1/webhooks/{hook}/deliveries")) == 1  # the log stays


def test_signature_check_rejects_tampering() -> None:
    body = b'{"id":"revoked:1:0"}'
    header = webhooks.sign("s3cret", int(time.time()), body)
    assert webhooks.verify_signature("s3cret", header, body)
    assert not webhooks.verify_signature("s3cret", header, body + b" ")
    assert not webhooks.verify_signature("other", header, body)
    assert not webhooks.verify_signature("s3cret", "garbage", body)
    old = webhooks.sign("s3cret", int(time.time()) - 3600, body)
    assert not webhooks.verify_signature("s3cret", old, body)
