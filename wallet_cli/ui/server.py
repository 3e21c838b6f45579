"""The console's HTTP server: loopback only, same origin only, a per-session token.

* Bound to a loopback address, nothing else (:class:`NotLoopbackError` before any socket).
* Every request's ``Host`` must be this server's loopback name and port (a DNS-rebinding
  page has another host name); a request with an ``Origin`` must come from this server.
* Every ``/api/`` call carries the session's random token in ``X-DataSafe-Token``; the
  command prints it once, in the URL's fragment (never sent to a server, never logged), and
  the page keeps it in ``sessionStorage``.
* A strict Content-Security-Policy: our own scripts and styles, no inline code, no frame,
  fetches to this origin only. Every asset ships in ``static/``.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from wallet_cli._context import State
from wallet_cli.errors import UserError
from wallet_cli.ui import _calls, _routes

STATIC = Path(__file__).with_name("static")
#: Files the console serves (and nothing else from disk).
ASSETS = {
    "ui.css": "text/css; charset=utf-8",
    "ui.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
TOKEN_HEADER = "x-datasafe-token"  # noqa: S105 (a header name, not a secret)
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "cache-control": "no-store",
}
_STATUS = {2: 400, 3: 409, 4: 502, 5: 409, 6: 502, 7: 504}


class NotLoopbackError(UserError):
    """``datasafe ui --host`` names an address other hosts could reach."""


def check_loopback(host: str) -> str:
    """``host`` if it is a loopback address (or ``localhost``); else :class:`NotLoopbackError`."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        ip = None
    if ip is None or not ip.is_loopback:
        raise NotLoopbackError(
            f"--host {host!r} is not a loopback address: the console serves only this "
            "machine (127.0.0.1 or ::1)",
            code="not_loopback",
        )
    return str(ip)


def refuse(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


@dataclass
class Guard:
    """The session's token and the names this server answers to."""

    host: str
    port: int
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def hosts(self) -> set[str]:
        names = {f"[{self.host}]" if ":" in self.host else self.host}
        if self.host == "127.0.0.1":
            names.add("localhost")
        return {f"{n}:{self.port}" for n in names}

    @property
    def url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}/"

    def site_refusal(self, headers: dict[str, str]) -> JSONResponse | None:
        """A refusal for a request from elsewhere than this console's own pages."""
        if headers.get("host", "") not in self.hosts:
            return refuse(421, "wrong_host", "this console answers only to its loopback address")
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/") not in {f"http://{h}" for h in self.hosts}:
            return refuse(403, "cross_site", f"cross-site request from {origin} refused")
        if headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return refuse(403, "cross_site", "cross-site request refused")
        return None

    def token_refusal(self, headers: dict[str, str]) -> JSONResponse | None:
        given = headers.get(TOKEN_HEADER)
        if not given:
            return refuse(401, "token_required", "open the console through the URL it printed")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return refuse(401, "token_wrong", "not this session's token: open the printed URL")
        return None


class Guarded:
    """ASGI middleware: the site checks on every request, the token on ``/api/``, headers."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app, self.guard = app, guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self.guard.site_refusal(headers)
        if refusal is None and scope["path"].startswith("/api/"):
            refusal = self.guard.token_refusal(headers)
            json_body = headers.get("content-type", "").startswith("application/json")
            if refusal is None and scope["method"] == "POST" and not json_body:
                refusal = refuse(415, "json_required", "send JSON")

        async def secured(message: Any) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = dict(message, headers=[*message.get("headers", []), *extra])
            await send(message)

        if refusal is not None:
            await refusal(scope, receive, secured)
            return
        await self.app(scope, receive, secured)


Handler = Callable[[Request], Awaitable[Response]]


def endpoint(base: State, work: Callable[[State, dict[str, Any]], Any]) -> Handler:
    """An API route: its input (query + JSON body) to ``work`` in a worker thread, as JSON."""

    async def handle(request: Request) -> Response:
        given: dict[str, Any] = dict(request.query_params) | dict(request.path_params)
        if request.method == "POST":
            try:
                body = await request.json()
            except ValueError:
                return refuse(400, "bad_json", "the request body is not JSON")
            if not isinstance(body, dict):
                return refuse(400, "bad_json", "the request body must be a JSON object")
            given |= body
        try:
            out = await run_in_threadpool(work, base, given)
        except _calls.CallError as exc:
            return JSONResponse(exc.to_json(), status_code=_STATUS.get(exc.exit_code, 500))
        if isinstance(out, Response):
            return out
        return JSONResponse({"data": out})

    return handle


def _page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", media_type="text/html; charset=utf-8")


def _asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:
        return refuse(404, "not_found", "no such file")
    return FileResponse(STATIC / name, media_type=ASSETS[name])


def create_app(base: State, guard: Guard) -> ASGIApp:
    routes = [Route("/", _page), Route("/static/{name}", _asset)]
    for method, path, work in _routes.API:
        routes.append(Route(path, endpoint(base, work), methods=[method]))
    return Guarded(Starlette(routes=routes), guard)


@dataclass
class Console:
    """A bound console: its socket, guard and app (``serve`` blocks until stopped)."""

    sock: socket.socket
    guard: Guard
    app: ASGIApp

    @property
    def url_with_token(self) -> str:
        return f"{self.guard.url}#{self.guard.token}"

    def serve(self) -> None:
        import uvicorn

        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", server_header=False
        )
        uvicorn.Server(config).run(sockets=[self.sock])


def bind(base: State, host: str = "127.0.0.1", port: int = 0) -> Console:
    """Check the address is loopback, bind it, and build the console for ``base``'s profile."""
    addr = check_loopback(host)
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((addr, port))
    except OSError as exc:
        sock.close()
        raise UserError(
            f"cannot listen on {addr}:{port}: {exc.strerror}", code="port_busy"
        ) from None
    sock.listen(64)
    guard = Guard(addr, int(sock.getsockname()[1]))
    return Console(sock, guard, create_app(base, guard))
