"""Unlock once at a real terminal (tmux): wrong passphrase, unlock, grant without being asked,
lock, the agent killed mid-session, and the agent timing out — checking what the screen shows."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from _stack import Stack
from _wallet import PASSPHRASE
from test_wallet_terminal import REPO, Terminal, pytestmark, terminal_env  # noqa: F401  (skip without tmux)


class Screen:
    """Waits for the next occurrence of a text (counted, so a prompt seen before is not it)."""

    def __init__(self, term: Terminal) -> None:
        self.term = term
        self.seen: dict[str, int] = {}

    def next(self, text: str, timeout: float = 60.0) -> str:
        want = self.seen.get(text, 0) + 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.term.screen()
            if screen.count(text) >= want:
                self.seen[text] = screen.count(text)
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} (#{want}) never appeared; screen:\n{self.term.screen()}")

    def since(self, text: str) -> str:
        """The screen after the last occurrence of ``text``."""
        screen = self.term.screen()
        return screen[screen.rindex(text) :]


def _agent_pid(home: Path) -> int:
    return int(json.loads((home / "agent" / "agent.json").read_text())["pid"])


def test_unlock_grant_lock_at_a_terminal(stack: Stack) -> None:
    home = stack.citizen.home
    env = {
        "DATASAFE_HOME": str(home),
        "DATASAFE_API": stack.server.url,
        "DATASAFE_RPC": stack.rpc,
        "PATH": f"{REPO / '.venv' / 'bin'}:/usr/bin:/bin",
        "TERM": "xterm",
        "PS1": "$ ",
    }
    aid = stack.issue("terminal unlock")
    term = Terminal(env)
    ui = Screen(term)
    try:
        term.type("datasafe unlock --for 10m")
        ui.next("Passphrase for li:")
        term.type("not the passphrase")
        ui.next("error: wrong passphrase for profile 'li'")
        assert not (home / "agent" / "agent.sock").exists()
        term.type("datasafe unlock --for 10m")
        ui.next("Passphrase for li:")
        term.type(PASSPHRASE)
        ui.next("Unlocked li until")
        term.type(
            f"datasafe grant create --asset {aid} --to citybank --fields name,income "
            "--purpose loan --days 30"
        )
        ui.next("Sign and send this consent? [y/N]:")
        assert "Passphrase" not in ui.since("datasafe grant create")  # the agent signed
        term.type("y")
        ui.next("Consent receipt")
        term.type("datasafe lock")
        ui.next("Locked")
        term.type("datasafe data list")
        ui.next("Passphrase for li:")  # locked again: asked
        term.type(PASSPHRASE)
        ui.next("My data")

        # The agent killed mid-session: said plainly, then the passphrase is asked instead.
        term.type("datasafe unlock --for 10m")
        ui.next("Passphrase for li:")
        term.type(PASSPHRASE)
        ui.next("Unlocked li until")
        os.kill(_agent_pid(home), signal.SIGKILL)
        term.type("datasafe data list")
        ui.next("does not answer")
        ui.next("Passphrase for li:")
        term.type(PASSPHRASE)
        ui.next("My data")

        # Its time is up: the next command says when, then asks.
        term.type("datasafe unlock --for 5s")
        ui.next("Passphrase for li:")
        term.type(PASSPHRASE)
        ui.next("Unlocked li until")
        pid = _agent_pid(home)
        deadline = time.monotonic() + 30
        while (home / "agent" / "agent.sock").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        term.type("datasafe data list")
        ui.next("timed out at")
        ui.next("Passphrase for li:")
        term.type(PASSPHRASE)
        ui.next("My data")
        assert PASSPHRASE not in term.screen()
        assert pid > 0
    finally:
        term.type("datasafe lock")
        time.sleep(0.5)
        term.close()


def test_unlocked_citizen_grants_shows_a_code_and_sees_the_clerks_access(
    stack: Stack, tmp_path: Path
) -> None:
    """The issue's story in one sitting: unlock once; a grant confirmed at the prompt and a
    counter code shown, neither asking for the passphrase; the clerk redeems the code; the
    citizen's history shows the access; lock."""
    loan, counter = stack.issue("story loan"), stack.issue("story counter")
    png = tmp_path / "code.png"
    citizen = Terminal(terminal_env(stack, stack.citizen.home, fast_scrypt=False))
    clerk = Terminal(terminal_env(stack, stack.bank.home, fast_scrypt=False))
    me, desk = Screen(citizen), Screen(clerk)
    try:
        citizen.type("datasafe unlock --for 10m")
        me.next("Passphrase for li:")
        citizen.type(PASSPHRASE)
        me.next("Unlocked li until")
        citizen.type(
            f"datasafe grant create --asset {loan} --to citybank --fields name,income "
            "--purpose loan --for 3d --uses 2"
        )
        me.next("Sign and send this consent? [y/N]:")
        citizen.type("y")
        me.next("Consent receipt")
        citizen.type(
            f"datasafe grant code --asset {counter} --to citybank --fields name,income "
            f"--purpose loan --valid 5m --out {png}"
        )
        me.next("QR version")
        screen = me.since("datasafe grant code")
        assert "Show this code at the counter:" in screen and ("▀" in screen or "█" in screen)
        assert "Passphrase" not in me.since("datasafe grant create")  # the agent signed both

        clerk.type(f"datasafe redeem --image {png} --out {tmp_path / 'counter'}")
        desk.next("Passphrase for citybank:")
        clerk.type(PASSPHRASE)
        desk.next("Pulled and verified (use 1)")
        saved = json.loads(next((tmp_path / "counter").glob("*.json")).read_text())

        citizen.type("datasafe history list")
        screen = me.next(saved["access_tx"][:20])
        assert "Passphrase" not in me.since("datasafe history list")
        assert "citybank" in me.since("datasafe history list")
        citizen.type("datasafe lock")
        me.next("Locked")
        assert PASSPHRASE not in citizen.screen() + clerk.screen()
    finally:
        citizen.type("datasafe lock")
        time.sleep(0.5)
        citizen.close()
        clerk.close()
