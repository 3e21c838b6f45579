"""Event streams (SSE) are bounded: per member, per process, and in time.

Loopback only; every loop is bounded by a count, never by a clock assertion.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _api_world import Actor, World
from _edge import ApiProcess, api_for

from api.client import DataSafeClient
from ledger.db import create_tables, make_engine

PER_MEMBER = 2
TOTAL = 3
MAX_SECONDS = 2.0


@pytest.fixture(scope="module")
def api(edge_world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    tmp = tmp_path_factory.mktemp("streams")
    db_url = f"sqlite:///{tmp / 'datasafe.db'}"
    engine = make_engine(db_url)
    create_tables(engine)  # the history is served from the (empty) event index
    engine.dispose()
    yield from api_for(
        edge_world,
        db_url,
        tmp,
        max_streams_per_member=PER_MEMBER,
        max_streams_total=TOTAL,
        max_stream_seconds=MAX_SECONDS,
    )


def open_stream(
    api: ApiProcess, who: Actor, **params: str
) -> tuple[DataSafeClient, httpx.Response]:
    c = DataSafeClient(api.url, who.key, timeout=30)
    req = c.http.build_request(
        "GET", "/v1/me/events", params=params or None, headers={"accept": "text/event-stream"}
    )
    c._ensure_domain()
    c._sign(req, b"")
    return c, c.http.send(req, stream=True)


@contextlib.contextmanager
def streams() -> Iterator[list[tuple[DataSafeClient, httpx.Response]]]:
    opened: list[tuple[DataSafeClient, httpx.Response]] = []
    try:
        yield opened
    finally:
        for c, resp in opened:
            resp.close()
            c.close()


def assert_refused(resp: httpx.Response) -> None:
    resp.read()
    assert resp.status_code == 429, resp.text
    assert resp.json()["code"] == "too_many_streams"
    assert resp.headers["retry-after"]


def read_to_end(resp: httpx.Response) -> bytes:
    """The whole stream; the server must end it (the client read timeout bounds the wait)."""
    return b"".join(resp.iter_bytes())


def wait_until_open(api: ApiProcess, who: Actor) -> tuple[DataSafeClient, httpx.Response]:
    """Retry until a slot is free again (bounded: the server frees it within its poll)."""
    for _ in range(100):
        c, resp = open_stream(api, who)
        if resp.status_code == 200:
            return c, resp
        assert_refused(resp)
        resp.close()
        c.close()
        time.sleep(0.1)
    raise AssertionError("the slot never came back")


def test_streams_are_capped_per_member_and_in_total(api: ApiProcess, edge_world: World) -> None:
    with streams() as opened:
        for _ in range(PER_MEMBER):
            opened.append(open_stream(api, edge_world.citizen))
            assert opened[-1][1].status_code == 200
            assert opened[-1][1].headers["content-type"].startswith("text/event-stream")
        c, extra = open_stream(api, edge_world.citizen)
        assert_refused(extra)
        c.close()

        opened.append(open_stream(api, edge_world.citizen2))  # another member: within the total
        assert opened[-1][1].status_code == 200
        c, extra = open_stream(api, edge_world.citizen2)
        assert_refused(extra)  # the process-wide cap, although citizen2 holds only one
        c.close()

        # Closing a stream gives its slot back.
        first_client, first = opened.pop(0)
        first.close()
        first_client.close()
        opened.append(wait_until_open(api, edge_world.citizen))
    assert api.alive()


def test_streams_end_at_the_maximum_duration(api: ApiProcess, edge_world: World) -> None:
    with streams() as opened:
        # Asking for longer than the operator allows gets the operator's maximum.
        opened.append(wait_until_open(api, edge_world.citizen))
        c, resp = open_stream(api, edge_world.citizen2, max_seconds="86400")
        opened.append((c, resp))
        assert resp.status_code == 200
        for _, stream in opened:
            read_to_end(stream)  # ends by itself: no client-side cut
    # Every slot is free again once the streams ended on their own.
    with streams() as again:
        for who in (edge_world.citizen, edge_world.citizen, edge_world.citizen2):
            again.append(wait_until_open(api, who))


def test_a_non_subject_gets_no_stream(api: ApiProcess, edge_world: World) -> None:
    c, resp = open_stream(api, edge_world.bank)
    resp.read()
    assert resp.status_code == 403
    resp.close()
    c.close()


def test_setting_bounds(tmp_path: Path) -> None:
    from api.settings import ApiSettings
    from ledger.errors import SettingsError

    with pytest.raises(SettingsError, match="DATASAFE_API_MAX_STREAM_SECONDS"):
        ApiSettings(max_stream_seconds=0)
    with pytest.raises(SettingsError, match="DATASAFE_API_MAX_STREAMS_TOTAL"):
        ApiSettings(max_streams_total=0)
