"""A fast path for ``GET /v1/grants/{grant_id}/verify``: the declared route, served without
FastAPI's per-request routing and dependency machinery.

``verify`` is the service's hottest read, and profiles of it put about half of the event
loop's time in FastAPI itself (route matching, dependency solving, the exception and exit-stack
layers; docs/benchmarks.md, "Issue 16"). :class:`VerifyFastPath` is the innermost user
middleware: for a request it can prove the router would hand to the verify route, it runs what
that route declares, taken from the route itself at the first request:

* the route's own ``SignedRequest`` dependency (signature, membership and status, nonce, role,
  in that order) and its endpoint function;
* the route's own parameter fields to validate ``grant_id`` and ``fields_mask``, and its
  response field to serialise the answer (the same bytes FastAPI would send);
* the app's own exception handlers, through Starlette's ``ExceptionMiddleware``: every problem
  is the same problem+json, status and headers; the request id, metrics and access log are
  the outer middlewares', as for every request.

Anything else goes down the ordinary stack unchanged: another method (HEAD, POST, ...), a query
string other than exactly ``fields_mask=<value>`` in plain characters, a value or grant id the
route's fields refuse (so the 422 comes from FastAPI, after the signature check, as before), a
service that is not ready, or a route whose declaration is not the one this path knows (then the
fast path stays off; a test holds it on for the real app). The OpenAPI document is untouched.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts, serialize_response
from starlette._utils import get_route_path
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import SignedRequest, get_services, services_of
from api.routers.grants import verify_grant

_PATH = re.compile(r"/v1/grants/([^/]+)/verify")
#: Characters that Starlette's query parsing hands on unchanged (no ``%``, ``+``, ``&``, ``=``).
_QUERY = re.compile(rb"fields_mask=([0-9A-Za-z_.\-]{1,80})")
_OFF = object()
_ARGS = "datasafe.verify_arguments"
_DUMP_OPTIONS = (
    "include",
    "exclude",
    "by_alias",
    "exclude_unset",
    "exclude_defaults",
    "exclude_none",
)


class VerifyFastPath:
    """Pure ASGI middleware: serve the verify route's plain requests directly (see module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._plan: _Plan | object | None = None
        #: Requests this path answered itself (the rest went down the ordinary stack).
        self.served = 0

    def plan(self, scope: Scope) -> _Plan | None:
        """The verify route's declaration, read once (None: the fast path stays off)."""
        if self._plan is None:
            self._plan = _Plan.of(scope["app"]) or _OFF
        return self._plan if isinstance(self._plan, _Plan) else None

    def _match(self, scope: Scope) -> tuple[_Plan, dict[str, Any]] | None:
        """The plan and the route's validated arguments, if this request is one to serve."""
        if scope["type"] != "http" or scope["method"] != "GET" or "app" not in scope:
            return None
        path = _PATH.fullmatch(get_route_path(scope))
        query = _QUERY.fullmatch(scope.get("query_string", b""))
        if path is None or query is None:
            return None
        plan = self.plan(scope)
        if plan is None or getattr(scope["app"].state, "services", None) is None:
            return None
        args = plan.arguments(path[1], query[1].decode("ascii"))
        return None if args is None else (plan, args)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = self._match(scope)
        if matched is None:
            await self.app(scope, receive, send)
            return
        plan, args = matched
        # What the router leaves in the scope for the route it picked (the metrics middleware
        # labels by the route), plus the validated arguments.
        scope["route"], scope["endpoint"] = plan.route, verify_grant
        scope["path_params"] = {"grant_id": args["grant_id"]}
        scope[_ARGS] = args
        self.served += 1
        await plan.serve(scope, receive, send)


class _Plan:
    """What the verify route declares: its caller check, parameter fields, response field."""

    def __init__(self, ctx: RouteContext, caller: SignedRequest, app: Any) -> None:
        #: The route as included in the app (its effective dependant and response field).
        self.ctx = ctx
        #: The route object the router leaves in the scope.
        self.route = ctx.original_route
        self.caller = caller
        dep = ctx.dependant
        self.params = {f.name: f for f in (*dep.path_params, *dep.query_params)}
        #: The route's ``response_model_*`` options, as FastAPI hands them to the serialiser.
        self.dump = {key: getattr(ctx, "response_model_" + key) for key in _DUMP_OPTIONS}
        # The app's handlers, split as Starlette splits them: ``Exception`` (and 500) belong to
        # the outermost ServerErrorMiddleware, which this request still passes through.
        handlers = {k: v for k, v in app.exception_handlers.items() if k not in (500, Exception)}
        self.serve = ExceptionMiddleware(self._serve, handlers=handlers)

    @classmethod
    def of(cls, app: Any) -> _Plan | None:
        """The plan, if the app's verify route is declared exactly as this path serves it."""
        sample = "/v1/grants/0x" + "00" * 32 + "/verify"
        for ctx in iter_route_contexts(app.routes):
            if not (isinstance(ctx.original_route, APIRoute) and ctx.endpoint is verify_grant):
                regex = getattr(ctx, "path_regex", None)
                if regex is None or regex.match(sample):
                    return None  # a route ahead of verify (or a mount) could take its paths
                continue
            dep = ctx.dependant
            deps = {d.name: d.call for d in dep.dependencies}
            caller = deps.get("member")
            if not isinstance(caller, SignedRequest):
                return None
            plain = (
                set(deps) == {"member", "services"}
                and deps["services"] is get_services
                and {p.name for p in dep.path_params} == {"grant_id"}
                and {p.name for p in dep.query_params} == {"fields_mask"}
                and not (dep.header_params or dep.cookie_params or dep.body_params)
                and not ctx.dependencies
                and ctx.methods == {"GET"}
                and ctx.path_format == "/v1/grants/{grant_id}/verify"
                and isinstance(ctx.response_class, DefaultPlaceholder)
            )
            return cls(ctx, caller, app) if plain else None
        return None

    def arguments(self, grant_id: str, fields_mask: str) -> dict[str, Any] | None:
        """Both parameters as the route's own fields validate them, or None (FastAPI answers)."""
        out: dict[str, Any] = {}
        for name, loc, raw in (
            ("grant_id", "path", grant_id),
            ("fields_mask", "query", fields_mask),
        ):
            value, errors = self.params[name].validate(raw, {}, loc=(loc, name))
            if errors:
                return None
            out[name] = value
        return out

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The route's dependencies in its order (caller, then services), endpoint, response."""
        request = Request(scope, receive)
        args = scope[_ARGS]
        member = await self.caller(request)
        verdict = await verify_grant(
            grant_id=args["grant_id"],
            member=member,
            services=services_of(request),
            fields_mask=args["fields_mask"],
        )
        content = await serialize_response(
            field=self.ctx.response_field, response_content=verdict, dump_json=True, **self.dump
        )
        response = Response(
            content, status_code=self.ctx.status_code or 200, media_type="application/json"
        )
        await response(scope, receive, send)
