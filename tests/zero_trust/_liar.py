"""A lying service: a real HTTP proxy on loopback in front of the real API.

Everything passes through unchanged until a test tells the proxy to lie: rewrite an
answer (``rewrite``), or answer a request itself without forwarding it (``intercept``).
The wallet and the bank client talk to it exactly as they would to the service.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx

#: (method, path, query, body) -> a JSON answer (or SSE bytes) to send instead of forwarding,
#: or None
Intercept = Callable[[str, str, str, bytes], Any]
#: (method, path, query, body, answer) -> the answer to send
Rewrite = Callable[[str, str, str, bytes, Any], Any]

_HOP = {"host", "content-length", "connection", "transfer-encoding", "accept-encoding"}


@dataclass
class LyingProxy:
    upstream: str
    intercepts: list[tuple[str, re.Pattern[str], Intercept]] = field(default_factory=list)
    rewrites: list[tuple[str, re.Pattern[str], Rewrite]] = field(default_factory=list)
    seen: list[tuple[str, str]] = field(default_factory=list)
    url: str = ""

    def intercept(self, method: str, path: str, fn: Intercept) -> None:
        self.intercepts.append((method, re.compile(path), fn))

    def rewrite(self, method: str, path: str, fn: Rewrite) -> None:
        self.rewrites.append((method, re.compile(path), fn))

    def honest(self) -> None:
        self.intercepts.clear()
        self.rewrites.clear()

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(target)
        path, query = parts.path, parts.query
        self.seen.append((method, path))
        for m, pattern, fn in self.intercepts:
            if m == method and pattern.fullmatch(path):
                answer = fn(method, path, query, body)
                if isinstance(answer, bytes):  # a server-sent event stream, as given
                    return 200, {"content-type": "text/event-stream"}, answer
                if answer is not None:
                    return 200, {"content-type": "application/json"}, json.dumps(answer).encode()
        fwd = {k: v for k, v in headers.items() if k.lower() not in _HOP}
        with httpx.Client(base_url=self.upstream, timeout=60.0) as client:
            resp = client.request(method, target, headers=fwd, content=body or None)
        out_headers = {"content-type": resp.headers.get("content-type", "application/json")}
        content = resp.content
        for m, pattern, rw in self.rewrites:
            if m == method and pattern.fullmatch(path) and resp.status_code < 400:
                content = json.dumps(rw(method, path, query, body, json.loads(content))).encode()
                out_headers = {"content-type": "application/json"}
        return resp.status_code, out_headers, content


def _handler(proxy: LyingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            status, headers, content = proxy.handle(
                self.command, self.path, dict(self.headers.items()), body
            )
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PUT = do_DELETE = _any  # noqa: N815 (http.server names)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def lying_proxy(upstream: str) -> Iterator[LyingProxy]:
    proxy = LyingProxy(upstream.rstrip("/"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
