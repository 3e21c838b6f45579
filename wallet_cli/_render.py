"""Plain-words rendering helpers (tables and key/value panels)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def when(ts: int | None) -> str:
    if not ts:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def purpose_words(code: int) -> str:
    from api.terms import PURPOSES  # the service's models behind it: not for `account list`

    return PURPOSES.get(code, f"purpose code {code}")


def table(
    console: Console, title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, overflow="fold")
    n = 0
    for row in rows:
        t.add_row(*(str(v) for v in row))
        n += 1
    if n == 0:
        console.print(f"{title}: none")
    else:
        console.print(t)


def kv(console: Console, title: str, items: dict[str, Any]) -> None:
    console.print(title, style="bold")
    width = max((len(k) for k in items), default=0)
    for k, v in items.items():
        console.print(f"  {k.ljust(width)}  {v}")
