"""SSRF: webhook targets inside the node are refused at registration or at connection.

A sentinel HTTP server listens on 127.0.0.1 and records every request it gets: it must get
nothing unless its network is on the operator's allowlist. Refusals carry the fixed reason
``egress_refused`` only, and no delivery log entry ever carries what a target answered.
Everything is real: uvicorn, anvil, SQLite/PostgreSQL, loopback sockets; loops are bounded.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from _api_server import LiveServer, assert_problem, free_port, live_server, world_settings
from _api_world import World

from api import db, egress, webhooks
from api.client import DataSafeClient

SECRET_BODY = "INTERNAL-ONLY: db password hunter2"


class Sentinel:
    """A loopback HTTP server recording every request; answers ``status`` with a secret body,
    or redirects to ``redirect`` when set."""

    def __init__(self, status: int = 200, redirect: str | None = None) -> None:
        self.hits: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                with outer._lock:
                    outer.hits.append(
                        {
                            "method": self.command,
                            "key": self.headers.get("X-DataSafe-Idempotency-Key"),
                            "body": body,
                        }
                    )
                if redirect is not None:
                    self.send_response(302)
                    self.send_header("location", redirect)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                payload = SECRET_BODY.encode()
                self.send_response(status)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _any  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def keys(self) -> list[str | None]:
        with self._lock:
            return [h["key"] for h in self.hits]

    def __enter__(self) -> Sentinel:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# ---- the policy itself (pure) -------------------------------------------------------------

REFUSED_ADDRESSES = [
    "127.0.0.1",
    "127.255.255.254",
    "0.0.0.0",
    "0.1.2.3",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # shared address space (CGN)
    "192.0.0.8",
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",  # broadcast
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",  # site-local (deprecated)
    "ff02::1",  # multicast
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "2001:db8::1",  # documentation
    "::127.0.0.1",  # IPv4-compatible (deprecated)
]

PERMITTED_ADDRESSES = ["93.184.215.14", "1.1.1.1", "8.8.8.8", "2606:4700:4700::1111"]


@pytest.mark.parametrize("address", REFUSED_ADDRESSES)
def test_policy_refuses_internal_addresses(address: str) -> None:
    assert not egress.EgressPolicy().permits(address)


@pytest.mark.parametrize("address", PERMITTED_ADDRESSES)
def test_policy_permits_global_unicast(address: str) -> None:
    assert egress.EgressPolicy().permits(address)


def test_allowlist_opens_exactly_its_networks() -> None:
    policy = egress.EgressPolicy.of(["127.0.0.1/32", "10.1.2.0/24"])
    assert policy.permits("127.0.0.1") and policy.permits("10.1.2.200")
    # the mapped spelling of an allowlisted address is the same address
    assert policy.permits("::ffff:127.0.0.1")
    for other in ("127.0.0.2", "10.1.3.1", "169.254.169.254", "::1"):
        assert not policy.permits(other)


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("2130706433", "127.0.0.1"),  # decimal
        ("0x7f000001", "127.0.0.1"),  # hex
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("127.1", "127.0.0.1"),  # short form
        ("0", "0.0.0.0"),
        ("[::ffff:7f00:1]", "::ffff:7f00:1"),
        ("2852039166", "169.254.169.254"),
    ],
)
def test_odd_ipv4_spellings_are_read_as_resolvers_read_them(spelling: str, address: str) -> None:
    assert egress.literal_address(spelling) == ipaddress.ip_address(address)
    with pytest.raises(egress.TargetRefusedError):
        egress.check_url(f"http://{spelling}:8080/x", egress.EgressPolicy())


def test_check_url_refuses_names_and_schemes() -> None:
    policy = egress.EgressPolicy()
    for url in (
        "http://localhost/",  # a name that resolves to loopback
        "ftp://93.184.215.14/",
        "file:///etc/passwd",
        "http:///nohost",
        "http://[fe80::1%25eth0]/",
        "http://name.that.does.not.resolve.invalid/",
    ):
        with pytest.raises(egress.TargetRefusedError) as caught:
            egress.check_url(url, policy)
        # the same detail for every refusal: no oracle for internal names
        assert caught.value.detail == egress.REFUSED_DETAIL
    assert egress.check_url("http://93.184.215.14:8443/x", policy) == [
        ipaddress.ip_address("93.184.215.14")
    ]


# ---- registration through the live API ------------------------------------------------------


def _targets(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/hook",
        f"http://localhost:{port}/hook",
        f"http://localhost.:{port}/hook",
        f"http://127.0.0.1.:{port}/hook",
        f"http://LOCALHOST:{port}/hook",
        f"http://2130706433:{port}/hook",
        f"http://0x7f.1:{port}/hook",
        f"http://0177.0.0.1:{port}/hook",
        f"http://127.1:{port}/hook",
        f"http://0.0.0.0:{port}/hook",
        f"http://0:{port}/hook",
        f"http://[::1]:{port}/hook",
        f"http://[::ffff:127.0.0.1]:{port}/hook",
        f"http://[::ffff:7f00:1]:{port}/hook",
        f"http://[64:ff9b::7f00:1]:{port}/hook",
        f"http://[::]:{port}/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.1/",
        "http://172.16.0.1/",
        "http://192.168.0.1/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://255.255.255.255/",
        "https://[fe80::1]/",
        "https://[fc00::1]:8443/",
    ]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'api.db'}"


def test_registration_refuses_every_internal_target(
    world: World, sqlite_url: str, tmp_path: Path
) -> None:
    with (
        Sentinel() as sentinel,
        live_server(world_settings(world, sqlite_url, tmp_path)) as srv,
        DataSafeClient(srv.url, world.bank.key) as bank,
    ):
        details = set()
        for url in _targets(sentinel.port):
            resp = bank.request("POST", "/v1/webhooks", json_body={"url": url})
            problem = assert_problem(resp, 422, "egress_refused")
            details.add(problem["detail"])
        assert details == {egress.REFUSED_DETAIL}, "one fixed answer for every refusal"
        for url in ("ftp://93.184.215.14/", "gopher://127.0.0.1/", "file:///etc/passwd"):
            resp = bank.request("POST", "/v1/webhooks", json_body={"url": url})
            assert_problem(resp, 422, "invalid_request")
        assert bank.get("/v1/webhooks") == []
        time.sleep(0.3)  # a few dispatcher rounds (poll interval 1 s): nothing may arrive
    assert sentinel.hits == []


def test_allowlisted_loopback_receiver_registers_and_others_stay_refused(
    world: World, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATASAFE_WEBHOOK_ALLOW_NETWORKS", '["127.0.0.1/32"]')
    with (
        Sentinel() as sentinel,
        live_server(world_settings(world, sqlite_url, tmp_path)) as srv,
        DataSafeClient(srv.url, world.bank.key) as bank,
    ):
        created = bank.post("/v1/webhooks", {"url": sentinel.url})
        assert created["url"] == sentinel.url
        for url in (
            f"http://127.0.0.2:{sentinel.port}/",
            f"http://[::1]:{sentinel.port}/",
            "http://169.254.169.254/",
        ):
            resp = bank.request("POST", "/v1/webhooks", json_body={"url": url})
            assert_problem(resp, 422, "egress_refused")


# ---- the dispatcher: connection-time checks, no redirects, no echoed bodies, claims ----------


def _engine(db_url: str) -> sa.Engine:
    engine = db.make_engine(db_url)
    webhooks.migrate(engine)
    return engine


def _hook(engine: sa.Engine, url: str, events: int) -> str:
    """A webhook row written straight to the table (as one registered before a policy change
    would be) with ``events`` pending deliveries."""
    hook_id = str(uuid.uuid4())
    with engine.begin() as conn:
        conn.execute(
            webhooks.webhooks.insert().values(
                id=hook_id,
                institution="0x" + "ab" * 20,
                url=url,
                secret="s" * 64,
                kinds=["revoked"],
                active=True,
                after_key=[0, 0, 0, 0],
                created_at=0,
            )
        )
        for i in range(events):
            conn.execute(
                webhooks.deliveries.insert().values(
                    webhook_id=hook_id,
                    event_key=f"revoked:{i}:0",
                    payload={"id": f"revoked:{i}:0", "type": "grant.revoked", "data": {}},
                    status="pending",
                    attempts=0,
                    next_attempt_at=0.0,
                    created_at=0,
                )
            )
    return hook_id


def _cfg(**values: Any) -> webhooks.WebhookSettings:
    base: dict[str, Any] = {"backoff_seconds": 0.01, "timeout_seconds": 5, "max_attempts": 2}
    return webhooks.WebhookSettings(**(base | values))


def _drain(engine: sa.Engine, cfg: webhooks.WebhookSettings, worker: str, rounds: int) -> int:
    async def go() -> int:
        sent = 0
        for _ in range(rounds):
            sent += await webhooks.deliver_due(engine, cfg, worker)
            await asyncio.sleep(0.02)
        return sent

    return asyncio.run(go())


def test_connection_time_refusal_logs_the_fixed_code_only(db_url: str) -> None:
    engine = _engine(db_url)
    with Sentinel() as sentinel:
        direct = _hook(engine, sentinel.url, 1)
        named = _hook(engine, f"http://localhost:{sentinel.port}/hook", 1)
        decimal = _hook(engine, f"http://2130706433:{sentinel.port}/hook", 1)
        _drain(engine, _cfg(), "w1", rounds=3)
        for hook in (direct, named, decimal):
            (entry,) = webhooks.delivery_log(engine, hook)
            assert entry["status"] == "failed"
            assert entry["last_error"] == egress.REFUSED and entry["last_status"] is None
            assert entry["attempts"] == 1, "a refused target is not retried"
        assert sentinel.hits == []
    engine.dispose()


def test_allowlisted_delivery_never_echoes_the_answer(db_url: str) -> None:
    engine = _engine(db_url)
    with Sentinel(status=500) as sentinel:
        hook = _hook(engine, sentinel.url, 1)
        _drain(engine, _cfg(allow_networks=["127.0.0.1/32"]), "w1", rounds=8)
        (entry,) = webhooks.delivery_log(engine, hook)
        assert entry["status"] == "failed" and entry["attempts"] == 2
        assert entry["last_status"] == 500 and entry["last_error"] == "HTTP 500"
        assert "hunter2" not in json.dumps(entry, default=str)
        assert len(sentinel.hits) == 2
    engine.dispose()


def test_redirects_are_not_followed(db_url: str) -> None:
    engine = _engine(db_url)
    with Sentinel() as target, Sentinel(redirect=target.url) as redirector:
        hook = _hook(engine, redirector.url, 1)
        _drain(engine, _cfg(allow_networks=["127.0.0.1/32"], max_attempts=1), "w1", rounds=3)
        (entry,) = webhooks.delivery_log(engine, hook)
        assert entry["last_status"] == 302 and entry["status"] == "failed"
        assert len(redirector.hits) == 1
        assert target.hits == [], "the redirect target (allowlisted too) got nothing"
    engine.dispose()


def test_socket_guard_refuses_an_unchecked_address() -> None:
    """The connector's last check sits at connect(): an IP literal skips the resolver, and the
    pinned address set does not contain it, so no socket is opened to it."""

    async def attempt(pinned: str, policy: egress.EgressPolicy, url: str) -> BaseException | int:
        connector = egress.pinned_connector("127.0.0.1", [ipaddress.ip_address(pinned)], policy)
        try:
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                session.post(url, data=b"{}", allow_redirects=False) as resp,
            ):
                return resp.status
        except aiohttp.ClientError as exc:
            return exc

    allow = egress.EgressPolicy.of(["127.0.0.1/32"])
    with Sentinel() as sentinel:
        # pinned to another address: the literal is not among the checked ones
        refused = asyncio.run(attempt("127.0.0.2", allow, sentinel.url))
        assert isinstance(refused, aiohttp.ClientConnectorError)
        assert egress.is_refusal(refused)
        # pinned and checked, but the policy does not permit it
        refused = asyncio.run(attempt("127.0.0.1", egress.EgressPolicy(), sentinel.url))
        assert isinstance(refused, aiohttp.ClientConnectorError) and egress.is_refusal(refused)
        assert sentinel.hits == []
        # pinned, checked and allowlisted: the one that connects
        assert asyncio.run(attempt("127.0.0.1", allow, sentinel.url)) == 200
        assert len(sentinel.hits) == 1


def test_two_dispatchers_deliver_each_event_once(db_url: str) -> None:
    """Two replicas' dispatchers race over the same due deliveries: each event is sent once."""
    engine = _engine(db_url)
    events = 40
    with Sentinel() as receiver:
        hook = _hook(engine, receiver.url, events)
        cfg = _cfg(allow_networks=["127.0.0.1/32"], batch=5)
        barrier = threading.Barrier(2)
        sent: dict[str, int] = {}

        def dispatcher(name: str) -> None:
            own = _engine(db_url)  # a replica has its own pool
            barrier.wait(timeout=30)
            sent[name] = _drain(own, cfg, name, rounds=15)
            own.dispose()

        threads = [threading.Thread(target=dispatcher, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        log = webhooks.delivery_log(engine, hook)
        assert [e["status"] for e in log] == ["delivered"] * events
        assert all(e["attempts"] == 1 and e["claimed_by"] is None for e in log)
        keys = receiver.keys()
        assert sorted(keys, key=str) == sorted((e["event_key"] for e in log), key=str)
        assert len(keys) == len(set(keys)) == events, "an event was sent twice"
        assert sent["a"] + sent["b"] == events
    engine.dispose()


def test_a_live_claim_is_respected_and_an_expired_one_taken_over(db_url: str) -> None:
    engine = _engine(db_url)
    with Sentinel() as receiver:
        hook = _hook(engine, receiver.url, 2)
        first, second = (e["id"] for e in webhooks.delivery_log(engine, hook))
        now = time.time()
        with engine.begin() as conn:
            d = webhooks.deliveries
            conn.execute(
                d.update()
                .where(d.c.id == first)
                .values(claimed_by="alive", claim_expires=now + 600)
            )
            conn.execute(
                d.update().where(d.c.id == second).values(claimed_by="dead", claim_expires=now - 1)
            )
        _drain(engine, _cfg(allow_networks=["127.0.0.1/32"]), "me", rounds=2)
        by_id = {e["id"]: e for e in webhooks.delivery_log(engine, hook)}
        assert by_id[first]["status"] == "pending" and by_id[first]["claimed_by"] == "alive"
        assert by_id[second]["status"] == "delivered" and by_id[second]["claimed_by"] is None
        assert receiver.keys() == [by_id[second]["event_key"]]
    engine.dispose()


@pytest.fixture
def server_with_sentinel(
    world: World, sqlite_url: str, tmp_path: Path
) -> Iterator[tuple[LiveServer, Sentinel]]:
    with Sentinel() as sentinel, live_server(world_settings(world, sqlite_url, tmp_path)) as srv:
        yield srv, sentinel


def test_policy_change_after_registration_is_enforced_at_connection(
    server_with_sentinel: tuple[LiveServer, Sentinel], sqlite_url: str
) -> None:
    """A webhook that was allowed when registered (the row exists) but whose target the policy
    now refuses: the live dispatcher logs ``egress_refused`` and the sentinel hears nothing."""
    _srv, sentinel = server_with_sentinel
    engine = _engine(sqlite_url)
    hook = _hook(engine, sentinel.url, 1)
    deadline = time.monotonic() + 20
    while webhooks.delivery_log(engine, hook)[0]["status"] == "pending":
        assert time.monotonic() < deadline, "the dispatcher did not pick the delivery up"
        time.sleep(0.1)
    (entry,) = webhooks.delivery_log(engine, hook)
    assert entry["status"] == "failed" and entry["last_error"] == egress.REFUSED
    assert sentinel.hits == []
    engine.dispose()


def test_one_internal_address_among_public_ones_refuses_the_name() -> None:
    """A name with mixed records (or one that re-binds between lookups) is refused as a whole:
    the dispatcher connects only to the set it checked, all of which must be permitted."""
    policy = egress.EgressPolicy()
    public = ipaddress.ip_address("93.184.215.14")
    assert egress._checked(policy, [public]) == [public]
    for internal in ("127.0.0.1", "169.254.169.254", "::ffff:10.0.0.1"):
        with pytest.raises(egress.TargetRefusedError):
            egress._checked(policy, [public, ipaddress.ip_address(internal)])
    with pytest.raises(egress.TargetRefusedError):
        egress._checked(policy, [])


def test_delivery_tables_from_before_the_claim_gain_its_columns(db_url: str) -> None:
    engine = db.make_engine(db_url)
    old = sa.MetaData()
    sa.Table(
        webhooks.deliveries.name,
        old,
        *(
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in webhooks.deliveries.columns
            if c.name not in ("claimed_by", "claim_expires")
        ),
    )
    old.create_all(engine)
    webhooks.migrate(engine)
    columns = {c["name"] for c in sa.inspect(engine).get_columns(webhooks.deliveries.name)}
    assert {"claimed_by", "claim_expires"} <= columns
    hook = _hook(engine, "http://127.0.0.1:9/h", 1)
    assert webhooks.delivery_log(engine, hook)[0]["claimed_by"] is None
    engine.dispose()


def test_every_target_is_refused_at_connection_too(sqlite_url: str) -> None:
    """The registration table again, as rows that skipped registration (written before a
    policy change): the dispatcher refuses each with the fixed code, and the sentinel hears
    nothing. Literals, names and odd spellings are normalised as the stored URL has them."""
    engine = _engine(sqlite_url)
    with Sentinel() as sentinel:
        hooks = {url: _hook(engine, url, 1) for url in _targets(sentinel.port)}
        _drain(engine, _cfg(timeout_seconds=2), "w1", rounds=2)
        for url, hook in hooks.items():
            (entry,) = webhooks.delivery_log(engine, hook)
            assert (entry["status"], entry["last_error"], entry["last_status"]) == (
                "failed",
                egress.REFUSED,
                None,
            ), url
        assert sentinel.hits == []
    engine.dispose()
