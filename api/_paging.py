"""Keyset pagination of the list routes: an opaque cursor, a bounded limit, a next link.

A list answers a JSON array (as before pagination) of at most ``limit`` rows in a stable
order; when more rows follow, the ``X-Next-Cursor`` header carries the cursor to pass as
``cursor`` for the next page, and ``Link: <...>; rel="next"`` the whole next URL. The
cursor is the last row's sort key, so a page costs an index range scan however deep it is,
and rows added meanwhile are neither skipped nor repeated.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

import sqlalchemy as sa
from anyio import to_thread
from fastapi import Query, Request, Response

from api import errors
from api.client import NEXT_CURSOR_HEADER

PAGE_DEFAULT = 100
PAGE_MAX = 200

Limit = Annotated[
    int, Query(ge=1, le=PAGE_MAX, description=f"Most rows in this page (at most {PAGE_MAX})")
]
Cursor = Annotated[
    str | None,
    Query(max_length=512, description=f"The `{NEXT_CURSOR_HEADER}` header of the previous page"),
]

#: The headers every paginated route documents.
PAGE_HEADERS: dict[str, Any] = {
    NEXT_CURSOR_HEADER: {
        "description": "Cursor of the next page (absent on the last page)",
        "schema": {"type": "string"},
    },
    "Link": {"description": 'The next page\'s URL with rel="next"', "schema": {"type": "string"}},
}

Key = tuple[int | str, ...]
Row = TypeVar("Row")


@dataclass(frozen=True)
class Keyset:
    """A listing's sort key: the cursor's tag and its columns, each with its type.

    One definition orders the SQL (``api._store``), checks an incoming cursor and writes
    the next one, so the three cannot drift apart.
    """

    kind: str
    columns: tuple[tuple[str, type], ...]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def key_of(self, row: Mapping[str, Any]) -> Key:
        return tuple(row[name] for name, _ in self.columns)


def encode_cursor(kind: str, key: Key) -> str:
    raw = json.dumps([kind, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None, types: Sequence[type]) -> Key | None:
    """The sort key a cursor carries; ``invalid_cursor`` if it is not one of ``kind``'s."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise errors.InvalidCursorError("the cursor is not one this service issued") from exc
    if (
        not isinstance(value, list)
        or len(value) != len(types) + 1
        or value[0] != kind
        or not all(type(v) is t for v, t in zip(value[1:], types, strict=True))
    ):
        raise errors.InvalidCursorError(f"the cursor is not one of a {kind} listing")
    return tuple(value[1:])


def after(columns: Sequence[Any], key: Key | None) -> Any:
    """SQL condition: the row's ``columns`` sort strictly after ``key`` (keyset)."""
    if key is None:
        return sa.true()
    first, *rest = columns
    if not rest:
        return first > key[0]
    return sa.or_(first > key[0], sa.and_(first == key[0], after(rest, key[1:])))


def page(
    request: Request,
    response: Response,
    kind: str,
    rows: list[Row],
    limit: int,
    key_of: Callable[[Row], Key],
) -> list[Row]:
    """The first ``limit`` of ``rows`` (fetched ``limit + 1``), with the next-page headers."""
    if len(rows) <= limit:
        return rows
    rows = rows[:limit]
    cursor = encode_cursor(kind, key_of(rows[-1]))
    response.headers[NEXT_CURSOR_HEADER] = cursor
    query = {k: v for k, v in request.query_params.items() if k != "cursor"}
    query["cursor"] = cursor
    response.headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'
    return rows


async def fetch(
    request: Request,
    response: Response,
    keyset: Keyset,
    cursor: str | None,
    limit: int,
    rows_after: Callable[[Key | None, int], list[dict[str, Any]]],
) -> list[dict[str, Any]]:
    """One page of a listing: ``rows_after(key, n)`` (SQL, run in a worker thread) reads the
    ``n`` rows after the cursor's key; the first ``limit`` are returned, with the next-page
    headers when more follow."""
    key = decode_cursor(keyset.kind, cursor, [t for _, t in keyset.columns])
    rows = await to_thread.run_sync(rows_after, key, limit + 1)
    return page(request, response, keyset.kind, rows, limit, keyset.key_of)
