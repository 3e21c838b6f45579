"""Replay and signature matrix: every way to reuse or bend a signed request is refused, and a
refused request writes nothing (not even its nonce).

One real request is signed, then sent again as is, with its nonce on another request, with
its body, path or method changed under the same signature, with stale or future timestamps,
signed for another chain, ledger or EIP-712 domain, with the malleable twin of its signature
(high ``s``), with every undocumented ``v``, with a signer header that is not the signer, and
with malformed headers. Replays also cross replicas (two servers, one database) and reach the
signed messages inside bodies (an access request used twice).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from _api_server import live_server, world_settings
from _scene import Scene, build_scene
from eth_hash.auto import keccak

from api.envelope import (
    DOMAIN_TYPEHASH,
    Envelope,
    body_digest,
    request_digest,
    sign_digest,
    sign_request,
)

_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@pytest.fixture(scope="module")
def scene(world_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    with build_scene(world_session, tmp_path_factory.mktemp("replay")) as built:
        yield built


@dataclass(frozen=True)
class Wire:
    """What goes on the wire: method, target, body and the four headers."""

    method: str
    target: str
    body: bytes
    headers: dict[str, str]

    def send(self, url: str) -> httpx.Response:
        headers = dict(self.headers)
        if self.body:
            headers["content-type"] = "application/json"
        return httpx.request(
            self.method, url + self.target, content=self.body or None, headers=headers, timeout=30
        )


def _sign(
    scene: Scene,
    method: str,
    target: str,
    body: bytes,
    *,
    who: str = "bank",
    **overrides: Any,
) -> Wire:
    actor = scene.actors[who]
    assert actor is not None
    env = sign_request(
        actor.key_bytes,
        chain_id=overrides.pop("chain_id", scene.world.chain_id),
        ledger_address=overrides.pop("ledger_address", scene.world.ledger_address),
        method=method,
        path=target,
        body=body,
        **overrides,
    )
    return Wire(method, target, body, env.to_headers())


def _webhook_body() -> bytes:
    return json.dumps({"url": "http://127.0.0.1:9/replay"}).encode()


def _with_signature(wire: Wire, signature: bytes) -> Wire:
    return replace(wire, headers=wire.headers | {"X-DataSafe-Signature": "0x" + signature.hex()})


def _sig(wire: Wire) -> bytes:
    return bytes.fromhex(wire.headers["X-DataSafe-Signature"][2:])


def _foreign_domain(scene: Scene, name: bytes) -> Callable[[], Wire]:
    """Signed over the same request in another EIP-712 domain (e.g. the ledger's own)."""

    def build() -> Wire:
        body = _webhook_body()
        actor = scene.actors["bank"]
        assert actor is not None
        ts, nonce = int(time.time()), secrets.token_bytes(32)
        sep = keccak(
            DOMAIN_TYPEHASH
            + keccak(name)
            + keccak(b"1")
            + scene.world.chain_id.to_bytes(32, "big")
            + bytes.fromhex(scene.world.ledger_address[2:]).rjust(32, b"\0")
        )
        digest = request_digest(sep, "POST", "/v1/webhooks", body_digest(body), ts, nonce)
        env = Envelope(actor.address, ts, nonce, sign_digest(actor.key_bytes, digest))
        return Wire("POST", "/v1/webhooks", body, env.to_headers())

    return build


def _high_s(wire: Wire) -> Wire:
    sig = _sig(wire)
    s = int.from_bytes(sig[32:64], "big")
    return _with_signature(wire, sig[:32] + (_N - s).to_bytes(32, "big") + bytes([55 - sig[64]]))


def _v(value: int) -> Callable[[Wire], Wire]:
    return lambda wire: _with_signature(wire, _sig(wire)[:64] + bytes([value]))


def _fresh(scene: Scene, **overrides: Any) -> Wire:
    return _sign(scene, "POST", "/v1/webhooks", _webhook_body(), **overrides)


def _cases(scene: Scene) -> dict[str, tuple[Callable[[], Wire], str]]:
    """Name → (the request as sent, the expected problem code)."""
    window = 300
    now = int(time.time())
    body = _webhook_body()

    def signed_then(change: Callable[[Wire], Wire]) -> Callable[[], Wire]:
        return lambda: change(_fresh(scene))

    return {
        "altered body": (
            signed_then(lambda w: replace(w, body=b'{"url":"http://127.0.0.1:9/other"}')),
            "bad_signature",
        ),
        "altered path": (
            signed_then(lambda w: replace(w, target="/v1/webhooks?x=1")),
            "bad_signature",
        ),
        "altered method": (
            lambda: replace(_sign(scene, "POST", "/v1/members/me", b""), method="GET"),
            "bad_signature",
        ),
        "empty body signed, body sent": (
            lambda: replace(_sign(scene, "POST", "/v1/webhooks", b""), body=body),
            "bad_signature",
        ),
        "expired timestamp": (
            lambda: _fresh(scene, timestamp=now - window - 60),
            "request_expired",
        ),
        "future timestamp": (lambda: _fresh(scene, timestamp=now + window + 60), "request_expired"),
        "timestamp past uint64": (
            lambda: replace(
                _fresh(scene), headers=_fresh(scene).headers | {"X-DataSafe-Timestamp": str(2**64)}
            ),
            "request_expired",
        ),
        "wrong chain id": (
            lambda: _fresh(scene, chain_id=scene.world.chain_id + 1),
            "bad_signature",
        ),
        "wrong ledger address": (
            lambda: _fresh(scene, ledger_address="0x" + "11" * 20),
            "bad_signature",
        ),
        "ledger's EIP-712 domain": (_foreign_domain(scene, b"DataSafeLedger"), "bad_signature"),
        "other domain name": (_foreign_domain(scene, b"DataSafe API v0"), "bad_signature"),
        "malleable high-s twin": (signed_then(_high_s), "bad_signature"),
        "v = 0": (signed_then(_v(0)), "bad_signature"),
        "v = 1": (signed_then(_v(1)), "bad_signature"),
        "v = 29": (signed_then(_v(29)), "bad_signature"),
        "v = 35 (EIP-155)": (signed_then(_v(35)), "bad_signature"),
        "v = 36 (EIP-155)": (signed_then(_v(36)), "bad_signature"),
        "r = 0": (
            signed_then(lambda w: _with_signature(w, b"\0" * 32 + _sig(w)[32:])),
            "bad_signature",
        ),
        "s = 0": (
            signed_then(lambda w: _with_signature(w, _sig(w)[:32] + b"\0" * 32 + _sig(w)[64:])),
            "bad_signature",
        ),
        "64-byte signature": (
            signed_then(lambda w: _with_signature(w, _sig(w)[:64])),
            "bad_signature",
        ),
        "66-byte signature": (
            signed_then(lambda w: _with_signature(w, _sig(w) + b"\x00")),
            "bad_signature",
        ),
        "signer header of another member": (
            signed_then(
                lambda w: replace(
                    w, headers=w.headers | {"X-DataSafe-Signer": scene.world.bank2.address}
                )
            ),
            "bad_signature",
        ),
        "31-byte nonce": (
            signed_then(
                lambda w: replace(w, headers=w.headers | {"X-DataSafe-Nonce": "0x" + "ab" * 31})
            ),
            "unauthenticated",
        ),
        "non-numeric timestamp": (
            signed_then(lambda w: replace(w, headers=w.headers | {"X-DataSafe-Timestamp": "soon"})),
            "unauthenticated",
        ),
        "missing signature header": (
            signed_then(
                lambda w: replace(
                    w, headers={k: v for k, v in w.headers.items() if k != "X-DataSafe-Signature"}
                )
            ),
            "unauthenticated",
        ),
    }


CASE_NAMES = [
    "altered body",
    "altered path",
    "altered method",
    "empty body signed, body sent",
    "expired timestamp",
    "future timestamp",
    "timestamp past uint64",
    "wrong chain id",
    "wrong ledger address",
    "ledger's EIP-712 domain",
    "other domain name",
    "malleable high-s twin",
    "v = 0",
    "v = 1",
    "v = 29",
    "v = 35 (EIP-155)",
    "v = 36 (EIP-155)",
    "r = 0",
    "s = 0",
    "64-byte signature",
    "66-byte signature",
    "signer header of another member",
    "31-byte nonce",
    "non-numeric timestamp",
    "missing signature header",
]


def test_case_list_is_complete(scene: Scene) -> None:
    assert list(_cases(scene)) == CASE_NAMES


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bent_request_is_refused_and_writes_nothing(scene: Scene, case: str) -> None:
    build, code = _cases(scene)[case]
    wire = build()
    before = scene.fingerprint()
    resp = wire.send(scene.server.url)
    assert resp.status_code == 401, resp.text
    assert resp.json()["code"] == code, resp.text
    assert scene.fingerprint() == before, "a refused request wrote something"
    # the untouched twin of the request is accepted: the refusal was the bend's doing
    if case not in ("altered method",):
        fresh = _fresh(scene).send(scene.server.url)
        assert fresh.status_code == 201, fresh.text


def test_replays_are_refused_on_every_replica(scene: Scene, tmp_path: Any) -> None:
    wire = _fresh(scene)
    first = wire.send(scene.server.url)
    assert first.status_code == 201, first.text
    before = scene.fingerprint()
    again = wire.send(scene.server.url)
    assert again.status_code == 401 and again.json()["code"] == "replayed_request"
    # the same nonce on another request (re-signed honestly) is a replay too
    nonce = bytes.fromhex(wire.headers["X-DataSafe-Nonce"][2:])
    other = _sign(scene, "GET", "/v1/webhooks", b"", nonce=nonce).send(scene.server.url)
    assert other.status_code == 401 and other.json()["code"] == "replayed_request"
    assert scene.fingerprint() == before
    # a second replica on the same database and blob store refuses it as well
    settings = world_settings(
        scene.world, scene.db_url, tmp_path, blob_dir=scene.server.settings.blob_dir
    )
    with live_server(settings) as replica:
        elsewhere = wire.send(replica.url)
        assert elsewhere.status_code == 401 and elsewhere.json()["code"] == "replayed_request"
    assert scene.fingerprint() == before


def test_non_member_signature_consumes_no_nonce(scene: Scene) -> None:
    """A valid signature by a stranger is refused and leaves no nonce row behind; the same
    request replayed is refused for the same reason, not as a replay."""
    before = scene.fingerprint()
    wire = _fresh(scene, who="outsider")
    for _ in range(2):
        resp = wire.send(scene.server.url)
        assert resp.status_code == 403 and resp.json()["code"] == "not_member", resp.text
    assert scene.fingerprint() == before


def _pull_twice(scene: Scene) -> tuple[httpx.Response, int, int]:
    w = scene.world
    access = w.sign_access(w.bank, scene.grant_id, 0b00011)
    body = json.dumps(access).encode()
    first = _sign(scene, "POST", "/v1/access", body).send(scene.server.url)
    assert first.status_code == 200, first.text
    block_before = int(w.w3.eth.block_number)
    again = _sign(scene, "POST", "/v1/access", body).send(scene.server.url)
    return again, block_before, int(w.w3.eth.block_number)


def test_a_signed_access_request_is_used_once(scene: Scene) -> None:
    """The access request inside the body carries its own nonce: sent again under a fresh
    envelope, it is refused."""
    again, _, _ = _pull_twice(scene)
    assert again.status_code == 409 and again.json()["code"] == "access_nonce_used", again.text


def test_a_replayed_access_request_sends_no_transaction(scene: Scene) -> None:
    again, before, after = _pull_twice(scene)
    assert again.status_code == 409
    assert after == before, "a transaction was sent for a request refused by its nonce"
