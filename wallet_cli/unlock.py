"""``datasafe unlock`` and ``datasafe lock``: type the passphrase once for a while.

The unlock agent (:mod:`wallet_cli._keyagent`) keeps what opening the keystore yielded in
its memory and hands it to this user's later commands over a 0600 Unix socket, until its
time is up or ``datasafe lock``.
"""

from __future__ import annotations

import re
import time
from typing import Annotated

import typer

from wallet_cli import _keyagent
from wallet_cli._context import JsonOpt, command, state
from wallet_cli.errors import UserError

_DURATION = re.compile(r"^(\d+)\s*([smhd]?)$")
_UNIT = {"": 60, "s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX = 24 * 3600


def parse_duration(text: str) -> int:
    """``90s``, ``15m``, ``2h`` (a bare number is minutes) in seconds, at most a day."""
    m = _DURATION.match(text.strip().lower())
    if m is None or int(m.group(1)) == 0:
        raise UserError(f"{text!r} is not a duration: use e.g. 90s, 15m or 2h")
    seconds = int(m.group(1)) * _UNIT[m.group(2)]
    if seconds > _MAX:
        raise UserError("an unlock lasts at most 24h")
    return seconds


@command
def unlock(
    for_: Annotated[
        str, typer.Option("--for", help="How long the agent keeps the profile unlocked: 15m, 2h…")
    ] = "15m",
    json_out: JsonOpt = False,
) -> None:
    """Unlock your profile for a while: later commands sign without asking the passphrase.

    Example: datasafe unlock --for 30m
    """
    st = state()
    ttl = parse_duration(for_)
    p = st.profile()
    secret = p.open(st.passphrase(f"Passphrase for {p.name}"))
    _keyagent.start(st.settings.home, ttl)
    answer = _keyagent.request(
        st.settings.home,
        {"op": "add", "profile": p.name, "secret": secret.to_json(), "ttl": ttl},
    )
    if answer is None or not answer.get("ok"):
        raise UserError("the unlock agent refused the profile")
    until = float(answer["expires"])
    data = {"profile": p.name, "address": p.address, "until": int(until)}
    st.emit(
        data,
        lambda c: c.print(
            f"Unlocked {p.name} until {time.strftime('%H:%M:%S', time.localtime(until))} "
            "(datasafe lock to end it now)"
        ),
    )


@command
def lock(json_out: JsonOpt = False) -> None:
    """Lock the wallet now: the agent forgets every unlocked profile and exits.

    Example: datasafe lock
    """
    st = state()
    try:
        answer = _keyagent.request(st.settings.home, {"op": "lock"})
    except (_keyagent.AgentGoneError, _keyagent.AgentTimedOutError):
        answer = None
    data = {"locked": True, "agent_was_running": answer is not None}
    st.emit(data, lambda c: c.print("Locked" if answer is not None else "Locked (no agent ran)"))
