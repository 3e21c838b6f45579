"""``GET /metrics``: Prometheus text from each app, its own registry, real chain and database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from _api_server import METRICS_HEADERS, free_port, live_server, world_settings
from _api_world import World
from prometheus_client.parser import text_string_to_metric_families


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = httpx.get(url + "/metrics", headers=METRICS_HEADERS)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _get(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_count_requests_by_route_and_read_the_chain(
    world: World, db_url: str, tmp_path: Path
) -> None:
    with live_server(world_settings(world, db_url, tmp_path)) as srv:
        for _ in range(3):
            assert httpx.get(srv.url + "/healthz").status_code == 200
        unknown = "0x" + "ab" * 32
        assert httpx.get(f"{srv.url}/v1/grants/{unknown}/verify").status_code >= 400
        httpx.get(srv.url + "/no/such/route")
        samples = _scrape(srv.url)
        assert (
            _get(
                samples,
                "datasafe_http_requests_total",
                method="GET",
                route="/healthz",
                status="200",
            )
            == 3
        )
        assert (
            _get(
                samples,
                "datasafe_http_request_duration_seconds_count",
                method="GET",
                route="/healthz",
            )
            == 3
        )
        assert any(
            name == "datasafe_http_requests_total"
            and dict(labels).get("route") == "/v1/grants/{grant_id}/verify"
            for name, labels in samples
        ), f"requests are labelled by route template, not raw path: {_routes(samples)}"
        assert (
            _get(
                samples,
                "datasafe_http_requests_total",
                method="GET",
                route="unmatched",
                status="404",
            )
            == 1
        )
        assert not any(unknown in str(labels) for _, labels in samples)
        assert _get(samples, "datasafe_chain_head_block") == world.w3.eth.block_number
        assert _get(samples, "datasafe_relay_queue_depth") == 0
        assert _get(samples, "datasafe_relay_outbox_pending") == 0
        assert _get(samples, "datasafe_custodian_nonce_errors") == 0
        assert _get(samples, "datasafe_custodian_replacements") == 0
        # run_indexer is off in world_settings: this replica never led the index.
        assert _get(samples, "datasafe_indexer_leader") == 0


def test_each_app_has_its_own_registry(world: World, db_url: str, tmp_path: Path) -> None:
    settings = world_settings(world, db_url, tmp_path)
    with live_server(settings) as one, live_server(settings) as two:
        for _ in range(4):
            httpx.get(one.url + "/healthz")
        httpx.get(two.url + "/healthz")
        assert (
            _get(
                _scrape(one.url),
                "datasafe_http_requests_total",
                method="GET",
                route="/healthz",
                status="200",
            )
            == 4
        )
        assert (
            _get(
                _scrape(two.url),
                "datasafe_http_requests_total",
                method="GET",
                route="/healthz",
                status="200",
            )
            == 1
        )


def test_metrics_answer_when_the_chain_is_down(world: World, db_url: str, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with live_server(world_settings(world, db_url, tmp_path, rpc_url=dead)) as srv:
        samples = _scrape(srv.url)
        assert _get(samples, "datasafe_metrics_scrape_errors_total", source="chain") == 1
        assert ("datasafe_chain_head_block", ()) in samples
        assert _get(samples, "datasafe_chain_head_block") == 0


def _routes(samples: list[tuple[str, Any]]) -> list[str]:
    return sorted({str(dict(labels).get("route")) for _, labels in samples})
