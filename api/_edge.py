"""The service edge: what a request may cost before any route code sees it.

:class:`BodyGuardMiddleware` is pure ASGI and runs before routing and parsing:

1. a declared ``Content-Length`` over the limit is refused (413) before one byte is read;
   a chunked body is counted as it streams in and refused as soon as it passes the limit;
2. on a route that needs a signed envelope, a request without the envelope headers is
   refused (401) before its body is read, and the signature over the exact body bytes is
   checked (no nonce is spent here; the route's dependency does that) before the body is
   parsed;
3. the body's JSON structure is measured by :func:`json_shape` (nesting depth, number of
   values) without parsing it, and refused (422 ``body_too_complex``) past the limits, so
   no parser ever recurses deeper than ``max_json_depth``.

The answers are problem+json with the request id, like every other problem.
"""

from __future__ import annotations

import json
import re
from typing import Any

from anyio import to_thread
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.deps import PROVEN_ENVELOPE, request_target
from api.envelope import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_SIGNER,
    HEADER_TIMESTAMP,
    Envelope,
)

#: A JSON string literal (unrolled loop: linear, no backtracking).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
#: An innermost container: brackets with no bracket inside.
_INNERMOST = re.compile(rb"[\[{][^\[\]{}]*[\]}]")
_BRACKETS = re.compile(rb"[\[\]{}]")
#: Bodies up to this size are checked on the event loop; larger ones in a worker thread.
INLINE_CHECK_BYTES = 64 * 1024
_ENVELOPE = tuple(
    h.lower().encode() for h in (HEADER_SIGNER, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)
)


def json_shape_problem(body: bytes, max_depth: int, max_items: int) -> str | None:
    """Why a JSON text is too costly to parse (too many values, too deep), or None.

    Strings are removed first, so brackets and commas inside them do not count. Values are
    counted from separators and containers (``,`` ``:`` ``[`` ``{``). Depth is found by
    removing innermost containers, one level per pass: at most ``max_depth + 1`` passes of a
    C-speed regex over at most ``max_items`` containers. Malformed JSON is measured as well
    as it can be and left for the parser to refuse.
    """
    # Each string is a value or a key, so a body within the limits has at most about
    # 2 * max_items strings: refuse more before stripping them (which allocates per string).
    quotes = body.count(b'"')
    if quotes > 4 * max_items + 8:
        return f"the body holds about {quotes // 2} JSON strings (limit {max_items} values)"
    bare = _STRING.sub(b'""', body)
    values = sum(bare.count(c) for c in (b",", b":", b"[", b"{"))
    if values > max_items:
        return f"the body holds {values} JSON values (limit {max_items})"
    depth = 0
    while _BRACKETS.search(bare) is not None:
        if depth >= max_depth:  # brackets left after max_depth levels removed
            return f"the body nests JSON over {max_depth} levels deep"
        bare, removed = _INNERMOST.subn(b"0", bare)
        if removed == 0:
            break  # unbalanced: the parser will say so
        depth += 1
    return None


def signed_operations(openapi: dict[str, Any]) -> list[tuple[re.Pattern[str], str]]:
    """(path pattern, METHOD) of every operation the OpenAPI document marks as signed.

    The document is the contract clients sign against, so the edge reads it rather than
    the router's internals: an operation with ``security`` needs the envelope.
    """
    out: list[tuple[re.Pattern[str], str]] = []
    for template, item in openapi.get("paths", {}).items():
        source = "".join(
            "[^/]+" if part.startswith("{") else re.escape(part)
            for part in re.split(r"(\{[^}]+\})", template)
        )
        for method, op in item.items():
            if isinstance(op, dict) and op.get("security"):
                out.append((re.compile(source + "$"), method.upper()))
    return out


class BodyGuardMiddleware:
    """Bounded body, envelope before parsing, bounded JSON shape (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_json_depth: int,
        max_json_items: int,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth
        self.max_json_items = max_json_items
        #: Per method, one alternation of the signed operations' path patterns (one C-speed
        #: match per request instead of one per operation).
        self._signed: dict[str, re.Pattern[str]] | None = None

    def _is_signed(self, scope: Scope) -> bool:
        if "app" not in scope:
            return False
        if self._signed is None:
            by_method: dict[str, list[str]] = {}
            for rx, method in signed_operations(scope["app"].openapi()):
                by_method.setdefault(method, []).append(f"(?:{rx.pattern})")
            self._signed = {m: re.compile("|".join(p)) for m, p in by_method.items()}
        pattern = self._signed.get(str(scope.get("method", "")))
        return pattern is not None and pattern.match(str(scope.get("path", ""))) is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", ())}
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._refuse(
                scope,
                send,
                errors.PayloadTooLargeError(
                    f"body is {int(declared)} bytes, limit {self.max_body_bytes}"
                ),
            )
            return
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        has_body = chunked or (declared is not None and declared != b"0")
        signed = self._is_signed(scope)
        if signed and not all(h in headers for h in _ENVELOPE):
            await self._refuse(
                scope,
                send,
                errors.UnauthenticatedError(
                    "sign the request: X-DataSafe-Signer, -Timestamp, -Nonce, -Signature"
                ),
            )
            return
        if not has_body:
            await self.app(scope, receive, send)
            return
        body, disconnected = await self._read(receive)
        if body is None:
            await self._refuse(
                scope,
                send,
                errors.PayloadTooLargeError(f"body is over the limit of {self.max_body_bytes}"),
            )
            return
        if disconnected:
            return
        # Hashing and scanning megabytes is CPU work: off the event loop when the body is big.
        if len(body) > INLINE_CHECK_BYTES:
            problem = await to_thread.run_sync(self._inspect, scope, body, signed)
        else:
            problem = self._inspect(scope, body, signed)
        if problem is not None:
            await self._refuse(scope, send, problem)
            return
        await self.app(scope, _replay(body, receive), send)

    def _inspect(self, scope: Scope, body: bytes, signed: bool) -> errors.ApiError | None:
        """The envelope's signature over ``body`` (signed routes), then the JSON shape.

        The proven envelope is left in the scope's state for the route's dependency
        (:func:`api.deps.proven_envelope`): the body handed on is exactly these bytes, so
        the signature is recovered once per request.
        """
        if signed:
            proven = self._check_signature(scope, body)
            if isinstance(proven, errors.ApiError):
                return proven
            if proven is not None:
                scope.setdefault("state", {})[PROVEN_ENVELOPE] = proven
        if body:
            shape = json_shape_problem(body, self.max_json_depth, self.max_json_items)
            if shape is not None:
                return errors.BodyTooComplexError(shape)
        return None

    async def _read(self, receive: Receive) -> tuple[bytes | None, bool]:
        """The whole body, or None once it passes the limit (the rest is never read)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"", True
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None, False
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False

    def _check_signature(self, scope: Scope, body: bytes) -> Envelope | errors.ApiError | None:
        services = getattr(scope["app"].state, "services", None) if "app" in scope else None
        if services is None:
            return None  # the route answers not_ready
        request = Request(scope)
        try:
            return services.authenticator.verify_signature(  # type: ignore[no-any-return]
                request.method, request_target(request), body, request.headers
            )
        except errors.ApiError as exc:
            return exc

    async def _refuse(self, scope: Scope, send: Send, error: errors.ApiError) -> None:
        request_id = scope.get("state", {}).get("request_id")
        payload = json.dumps(
            errors.problem_body(error, str(scope.get("path", "")), request_id),
            separators=(",", ":"),
        ).encode()
        headers = [
            (b"content-type", errors.PROBLEM_CONTENT_TYPE.encode()),
            (b"content-length", str(len(payload)).encode()),
            # The unread rest of the body must not be taken for the next request.
            (b"connection", b"close"),
        ]
        headers += [(k.lower().encode(), v.encode()) for k, v in error.headers().items()]
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the buffered body over once, then waits for a disconnect."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
