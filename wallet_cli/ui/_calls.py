"""Run a CLI command's function for the console and keep what it would have printed as JSON.

A command ends in ``State.emit(data, human)``; :class:`Capture` keeps ``data`` instead of
printing it. Failures are translated exactly as the CLI translates them
(:func:`wallet_cli._context.translate`), so the page shows the command's words and code.
Each call runs in a context of its own (the command's state is a context variable) with a
fresh state copied from the one ``datasafe ui`` was started with.
"""

from __future__ import annotations

import contextvars
import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import typer

from wallet_cli import _keyagent
from wallet_cli._context import State, set_state, translate
from wallet_cli.errors import UserError, WalletError


@dataclass
class Capture(State):
    """The command's state; ``emit`` keeps the data, nothing asks on the terminal."""

    emitted: list[Any] = field(default_factory=list, repr=False)

    def emit(self, data: Any, human: Callable[[Any], None]) -> None:
        self.emitted.append(data)

    def passphrase(self, prompt: str = "Passphrase", *, confirm: bool = False) -> str:
        # The console never reads a passphrase: the agent or DATASAFE_PASSPHRASE holds it.
        if self.settings.passphrase is not None:
            return self.settings.passphrase.get_secret_value()
        raise _keyagent.WalletLockedError(
            "this profile is locked: run `datasafe unlock` in a terminal, then reload"
        )


class CallError(Exception):
    """A command's failure as the console reports it: the CLI's code, words and exit code."""

    def __init__(self, err: WalletError) -> None:
        super().__init__(str(err).splitlines()[0] if str(err) else err.code)
        self.code = err.code
        self.exit_code = err.exit_code

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": str(self), "exit_code": self.exit_code}}


def fresh(base: State) -> Capture:
    """A new per-request state with ``base``'s settings and options (no cached pin/keys)."""
    keep = {
        f.name: getattr(base, f.name)
        for f in dataclasses.fields(State)
        if f.init and not f.name.startswith("_")
    }
    return Capture(**(keep | {"json": True}))


def _run(st: Capture, thunk: Callable[[Capture], Any]) -> Any:
    set_state(st)
    try:
        result = thunk(st)
    except typer.Exit as done:
        # `audit verify` emits its report, then exits 3 when anything differs.
        if st.emitted:
            return st.emitted[-1]
        raise CallError(WalletError(f"the command ended with exit {done.exit_code}")) from None
    except typer.BadParameter as exc:
        raise CallError(UserError(str(exc), code="invalid_input")) from None
    except Exception as exc:
        translated = translate(exc, st)
        if translated is None:
            raise
        raise CallError(translated) from None
    return st.emitted[-1] if st.emitted else result


def command(base: State, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """A CLI command (unwrapped from its error handler) as the console runs it: its data."""
    target = inspect.unwrap(fn)
    return contextvars.copy_context().run(_run, fresh(base), lambda _st: target(**kwargs))


def helper(base: State, fn: Callable[..., Any], **kwargs: Any) -> Any:
    """A console function built from the commands' helpers; it gets the request's state."""
    return contextvars.copy_context().run(_run, fresh(base), lambda st: fn(st, **kwargs))
