"""Prometheus metrics of one API process (``GET /metrics``), in a registry per app.

Request counts and latencies are recorded by :class:`MetricsMiddleware` under the
route's path template (``/v1/grants/{grant_id}``), never the raw path, so the label
set stays bounded. Gauges that describe the outside world (chain head, indexer
cursor and lag, relay queue depth, whether this replica holds the indexer lease)
are read when scraped.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from pydantic import SecretStr
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors, scrub

#: Latency buckets (seconds): reads are ~ms, relayed writes wait for a block.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Every collector of one app, registered in its own registry (no global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "datasafe_http_requests",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "datasafe_http_request_duration_seconds",
            "HTTP request latency by method and route template.",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.relay_queue = Gauge(
            "datasafe_relay_queue_depth",
            "Relays of this process between outbox claim and settlement, plus access records "
            "waiting for or riding in a batch transaction.",
            registry=r,
        )
        self.relay_pending = Gauge(
            "datasafe_relay_outbox_pending",
            "Outbox rows still pending in the shared database (all replicas).",
            registry=r,
        )
        self.chain_head = Gauge(
            "datasafe_chain_head_block", "Latest block number of the chain node.", registry=r
        )
        self.indexer_block = Gauge(
            "datasafe_indexer_last_block", "Last block the shared index holds.", registry=r
        )
        self.indexer_lag = Gauge(
            "datasafe_indexer_lag_blocks", "Chain head minus the last indexed block.", registry=r
        )
        self.indexer_leader = Gauge(
            "datasafe_indexer_leader",
            "1 when this replica holds the indexer lease and writes the index.",
            registry=r,
        )
        self.tx_sent = Gauge(
            "datasafe_custodian_tx_sent",
            "Custodian transactions this process signed and broadcast.",
            registry=r,
        )
        self.nonce_errors = Gauge(
            "datasafe_custodian_nonce_errors",
            "Custodian broadcasts the node refused for their nonce.",
            registry=r,
        )
        self.replacements = Gauge(
            "datasafe_custodian_replacements",
            "Replacements (same nonce, higher fees) of custodian transactions that were stuck.",
            registry=r,
        )
        self._add_blob_gauges(r)
        self.api_restarts = Gauge(
            "datasafe_api_restarts",
            "Times the node supervisor restarted the API after it crashed (up to this process).",
            registry=r,
        )
        self.scrape_errors = Counter(
            "datasafe_metrics_scrape_errors",
            "Scrapes in which a gauge could not be read (chain or database down).",
            ["source"],
            registry=r,
        )

    def _add_blob_gauges(self, r: CollectorRegistry) -> None:
        """What the blob scrub found, and when it last ran."""
        self.blobs_missing = Gauge(
            "datasafe_blobs_missing",
            "Blobs the scrub found missing (data loss until restored from a backup).",
            registry=r,
        )
        self.blobs_corrupt = Gauge(
            "datasafe_blobs_corrupt",
            "Blobs the scrub found not matching their address or anchored digest.",
            registry=r,
        )
        self.scrub_last_run = Gauge(
            "datasafe_blob_scrub_last_run_timestamp_seconds",
            "When the last blob scrub pass ran (Unix time; 0 never).",
            registry=r,
        )
        self.scrub_last_full_pass = Gauge(
            "datasafe_blob_scrub_last_full_pass_timestamp_seconds",
            "When the blob scrub last finished a round over every blob (Unix time; 0 never).",
            registry=r,
        )

    async def refresh(self, services: Any) -> None:
        """Read the gauges that live outside this process; a failure leaves them as they were."""
        if services is None:
            return
        self.relay_queue.set(services.relays_in_flight + services.batcher.depth)
        self.tx_sent.set(services.relayer.sent)
        self.nonce_errors.set(services.relayer.nonce_errors)
        self.replacements.set(services.relayer.replaced)
        self.indexer_leader.set(1 if services.extras.get("indexer_leader") else 0)
        head: int | None = None
        try:
            head = await services.chain.block_number()
            self.chain_head.set(head)
        except Exception:
            self.scrape_errors.labels("chain").inc()
        try:
            self.relay_pending.set(await to_thread.run_sync(services.outbox.in_flight))
        except Exception:
            self.scrape_errors.labels("database").inc()
        try:
            blobs = await to_thread.run_sync(scrub.health, services.engine)
            self.blobs_missing.set(blobs["missing"])
            self.blobs_corrupt.set(blobs["corrupt"])
            self.scrub_last_run.set(blobs["last_run_at"] or 0)
            self.scrub_last_full_pass.set(blobs["last_full_pass_at"] or 0)
        except Exception:
            self.scrape_errors.labels("database").inc()
        status = services.extras.get("indexer_status")
        if status is not None:
            try:
                last = await status()
            except Exception:
                self.scrape_errors.labels("indexer").inc()
                return
            if last is not None:
                self.indexer_block.set(last)
                if head is not None:
                    self.indexer_lag.set(max(head - last, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware: one count and one latency observation per HTTP request."""

    def __init__(self, app: ASGIApp, metrics: Metrics, templates: Callable[[], list[str]]) -> None:
        self.app = app
        self.metrics = metrics
        self._templates = templates
        self._patterns: list[tuple[re.Pattern[str], str]] | None = None
        self._by_route: dict[int, str] = {}
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def template_of(self, path: str) -> str:
        """The documented path template a request path matches ("unmatched" if none)."""
        if self._patterns is None:
            patterns: list[tuple[re.Pattern[str], str]] = []
            # Literal templates first, so /v1/grants/mine wins over /v1/grants/{grant_id}.
            for t in sorted([*self._templates(), METRICS_PATH], key=lambda t: (t.count("{"), t)):
                source = "".join(
                    "[^/]+" if part.startswith("{") else re.escape(part)
                    for part in re.split(r"(\{[^}]+\})", t)
                )
                patterns.append((re.compile(source + "$"), t))
            self._patterns = patterns
        for rx, template in self._patterns:
            if rx.match(path):
                return template
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The router leaves the matched route object in the scope (its own path lacks the
            # include prefix): match the templates once per route, not once per request.
            path = str(scope.get("path", ""))
            route = scope.get("route")
            if route is None:
                template = self.template_of(path)
            else:
                template = self._by_route.get(id(route), "")
                if not template:
                    template = self._by_route[id(route)] = self.template_of(path)
            key = (str(scope.get("method", "")), template, status)
            children = self._children.get(key)
            if children is None:
                # labels() locks and hashes per call: keep the (bounded) children it returns.
                children = self._children[key] = (
                    self.metrics.requests.labels(key[0], template, str(status)),
                    self.metrics.latency.labels(key[0], template),
                )
            children[0].inc()
            children[1].observe(time.perf_counter() - started)


METRICS_PATH = "/metrics"
router = APIRouter(tags=["health"])


def check_scraper(token: SecretStr | None, authorization: str | None) -> None:
    """Only a scraper holding the configured bearer token reads the metrics."""
    scheme, _, presented = (authorization or "").partition(" ")
    expected = token.get_secret_value().encode() if token is not None else b""
    # compare_digest over bytes: constant time, and no early exit on a missing token either.
    ok = hmac.compare_digest(presented.strip().encode(), expected) and bool(expected)
    if scheme.lower() != "bearer" or not ok:
        raise errors.MetricsUnauthenticatedError(
            "GET /metrics needs Authorization: Bearer <DATASAFE_API_METRICS_TOKEN>"
            + ("" if token is not None else " (no token is configured: scraping is off)")
        )


# Kept out of the OpenAPI document, like /docs: it is for the scraper, not for clients.
@router.get(METRICS_PATH, include_in_schema=False)
async def metrics(request: Request) -> Response:
    check_scraper(
        getattr(request.app.state, "metrics_token", None), request.headers.get("authorization")
    )
    m: Metrics = request.app.state.metrics
    await m.refresh(getattr(request.app.state, "services", None))
    return Response(m.render(), media_type=CONTENT_TYPE_LATEST)
