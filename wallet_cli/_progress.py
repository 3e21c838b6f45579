"""Progress of long operations, for a person at a terminal and never for a script.

A bar (or a spinner when the end is unknown) is drawn on stderr, and only when stderr is a
terminal and the command is not asked for ``--json``: piped output, files and JSON stay
exactly what they were. While a bar is live, lines a command prints to a terminal stdout
are drawn above it (rich's redirect); to a pipe or a file they go straight through.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from wallet_cli._context import State


class Step(Protocol):
    """Report progress: ``done`` units so far (of ``total``, when it becomes known)."""

    def __call__(self, done: int, total: int | None = None, *, note: str | None = None) -> None: ...


def _silent(done: int, total: int | None = None, *, note: str | None = None) -> None:
    return None


def shown(st: State) -> bool:
    """Whether a bar would be drawn for this invocation."""
    return not st.json and sys.stderr.isatty()


@contextmanager
def progress(
    st: State, what: str, *, total: int | None = None, unit: str = "", transient: bool = False
) -> Iterator[Step]:
    """A bar for ``what``; ``transient`` ones vanish when done (a follow's status line)."""
    if not shown(st):
        yield _silent
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(file=sys.stderr, highlight=False)
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
        redirect_stdout=sys.stdout.isatty(),
        redirect_stderr=False,
    )
    with bar:
        task = bar.add_task(what, total=total, note="")

        def step(done: int, total: int | None = None, *, note: str | None = None) -> None:
            if note is None:
                bar.update(task, completed=done, total=total)
            else:
                bar.update(task, completed=done, total=total, note=note)

        yield step
        task_total = bar.tasks[0].total
        if task_total is not None:
            bar.update(task, completed=task_total)


class Forward(io.TextIOBase):
    """stdout as rich must see it while a bar is live: a plain stream, not the bar's proxy.

    rich unwraps its proxy when a Console is given it as a file and then writes past the
    bar (tearing it); through this the lines reach the proxy, which draws them above.
    """

    def __init__(self, target: IO[str]) -> None:
        self._target = target

    def write(self, text: str) -> int:
        return self._target.write(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()


def stdout() -> IO[str]:
    """Where a command's Console writes: ``sys.stdout``, forwarded while a bar is live."""
    out = sys.stdout
    return cast(IO[str], Forward(out)) if hasattr(out, "rich_proxied_file") else out


def counting(step: Step) -> Callable[[int], None]:
    """A callback that adds ``n`` to a running count (rows, bytes) and reports it."""
    seen = [0]

    def add(n: int) -> None:
        seen[0] += n
        step(seen[0])

    return add
