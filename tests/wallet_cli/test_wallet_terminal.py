"""A person at a real terminal (tmux): create an account typing the passphrase, register the
key, grant with the interactive confirmation, revoke — checking what the screen shows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from _api_world import INDIVIDUAL, SUBJECT
from _stack import Stack, pin_of
from _wallet import PASSPHRASE

REPO = Path(__file__).resolve().parents[2]


def terminal_env(
    stack: Stack, home: Path | None = None, *, fast_scrypt: bool = True
) -> dict[str, str]:
    """A wallet's environment at a terminal against ``stack``: pinned, UTF-8, plain prompt."""
    env = {
        "DATASAFE_API": stack.server.url,
        "DATASAFE_RPC": stack.rpc,
        "DATASAFE_PIN": pin_of(stack.world).fingerprint,
        "PATH": f"{REPO / '.venv' / 'bin'}:/usr/bin:/bin",
        "TERM": "xterm",
        "LANG": "C.UTF-8",
        "PS1": "$ ",
    }
    if fast_scrypt:
        env["DATASAFE_SCRYPT_N"] = "1024"
    if home is not None:
        env["DATASAFE_HOME"] = str(home)
    return env


SECRET = "tmux passphrase 42"

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


class Terminal:
    def __init__(self, env: dict[str, str]) -> None:
        self.socket = f"datasafe-test-{uuid.uuid4().hex[:8]}"
        self.name = "wallet"
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        subprocess.run(
            [
                "tmux",
                "-L",
                self.socket,
                "new-session",
                "-d",
                "-s",
                self.name,
                "-x",
                "230",
                "-y",
                "60",
                f"env -i HOME={env['DATASAFE_HOME']} {exports} bash --norc --noprofile",
            ],
            check=True,
        )

    def type(self, text: str, enter: bool = True) -> None:
        subprocess.run(
            ["tmux", "-L", self.socket, "send-keys", "-t", self.name, "-l", text], check=True
        )
        if enter:
            subprocess.run(
                ["tmux", "-L", self.socket, "send-keys", "-t", self.name, "Enter"], check=True
            )

    def screen(self) -> str:
        # The pane's empty rows below the cursor are cut: with them, the text's length shrinks as
        # output fills those rows, and an offset taken earlier (``wait_for``'s ``after``) would
        # point past new output.
        return subprocess.run(
            ["tmux", "-L", self.socket, "capture-pane", "-p", "-J", "-t", self.name, "-S", "-1000"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.rstrip()

    def wait_for(self, text: str, after: int = 0, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen[after:]:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; screen:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], check=False)


def test_create_grant_confirm_revoke_at_a_terminal(stack: Stack, tmp_path: Path) -> None:
    home = tmp_path / "tom-wallet"
    env = {
        "DATASAFE_HOME": str(home),
        "DATASAFE_SCRYPT_N": "1024",
        "DATASAFE_API": stack.server.url,
        "DATASAFE_RPC": stack.rpc,
        "PATH": f"{REPO / '.venv' / 'bin'}:/usr/bin:/bin",
        "TERM": "xterm",
        "PS1": "$ ",
    }
    term = Terminal(env)
    try:
        term.type("datasafe account create tom")
        term.wait_for("New passphrase:")
        term.type(SECRET)
        term.wait_for("Repeat for confirmation:")
        term.type(SECRET)
        screen = term.wait_for("Created profile tom")
        address = json.loads((home / "profiles" / "tom" / "profile.json").read_text())["address"]
        assert address in screen

        # the operator admits tom (no key: tom binds his own, relayed by the service, no gas)
        world = stack.world
        world.transact(world.governor, "admitMember", address, SUBJECT, INDIVIDUAL, b"\0" * 32)

        mark = len(term.screen())
        term.type("datasafe account register-key")
        term.wait_for("Passphrase for tom:", mark)
        term.type(SECRET)
        # first contact: the wallet shows the deployment's fingerprint and pins it once
        # confirmed, like SSH's known_hosts
        screen = term.wait_for("Is this the fingerprint you were given out of band? [y/N]:", mark)
        assert pin_of(world).fingerprint in screen[mark:]
        term.type("y")
        term.wait_for("Encryption key registered", mark)
        pinned = json.loads((home / "profiles" / "tom" / "profile.json").read_text())["pin"]
        assert pinned["fingerprint"] == pin_of(world).fingerprint

        aid = stack.issue("terminal", owner=SimpleNamespace(address=address))  # type: ignore[arg-type]
        term.type(f"datasafe contacts add citybank {world.bank.address}")
        mark = len(term.screen())
        term.type(
            f"datasafe grant create --asset {aid} --to citybank --fields name,income "
            "--purpose loan --days 30 --max-uses 2"
        )
        term.wait_for("Passphrase for tom:", mark)
        term.type(SECRET)
        screen = term.wait_for("Sign and send this consent? [y/N]:", mark)
        shown = screen[mark:]
        assert "You are about to share:" in shown
        assert (
            "citybank (bank," in shown and "may read name, income of your income statement" in shown
        )
        assert "for loan underwriting" in shown and "at most 2 time(s)" in shown
        assert "Not shared: id_number, address, employer." in shown
        term.type("y")
        screen = term.wait_for("Consent receipt", mark)
        receipts = list((home / "profiles" / "tom" / "receipts").glob("0x*.json"))
        assert len(receipts) == 1
        gid = json.loads(receipts[0].read_text())["grant_id"]
        assert gid in screen

        mark = len(term.screen())
        term.type(f"datasafe grant revoke {gid}")
        term.wait_for("Passphrase for tom:", mark)
        term.type(SECRET)
        screen = term.wait_for("Revoke this grant? [y/N]:", mark)
        assert "Revoke:" in screen[mark:] and "name, income" in screen[mark:]
        term.type("y")
        screen = term.wait_for("Grant revoked", mark)
        assert "revoked" in screen[mark:]
        full = term.screen()
        assert SECRET not in full  # typed passphrases are never echoed
    finally:
        term.close()
    status = world.ledger.functions.getGrant(bytes.fromhex(gid[2:])).call()[8]
    assert status == 3  # REVOKED on chain
    assert os.stat(home / "profiles" / "tom" / "keystore.json").st_mode & 0o077 == 0


def test_counter_code_shown_redeemed_and_seen_in_history(stack: Stack, tmp_path: Path) -> None:
    """亮码 at a terminal: the citizen shows the code, the clerk redeems it (from the PNG and
    from the text a scanner types), a replay is refused, the citizen sees the access."""
    aid = stack.issue("terminal-counter")
    citizen = Terminal(terminal_env(stack, stack.citizen.home))
    clerk = Terminal(terminal_env(stack, stack.bank.home))
    png = tmp_path / "code.png"
    try:
        citizen.type(
            f"datasafe grant code --asset {aid} --to citybank --fields name,income "
            f"--purpose loan --valid 5m --out {png}"
        )
        citizen.wait_for("Passphrase for li:")
        citizen.type(PASSPHRASE)
        screen = citizen.wait_for("saved to")
        assert "Show this code at the counter:" in screen
        assert "▀" in screen or "█" in screen  # the QR code itself, in half blocks
        assert "citybank may read name, income of your income statement" in screen
        assert "once, for loan underwriting" in screen and "QR version 12-M" in screen
        text = screen.split("code text (for a scanner that types): ", 1)[1].split()[0]
        assert text.startswith("DS1:") and png.exists()

        clerk.type(f"datasafe redeem --image {png} --out {tmp_path / 'counter'}")
        clerk.wait_for("Passphrase for citybank:")
        clerk.type(PASSPHRASE)
        screen = clerk.wait_for("Pulled and verified (use 1)")
        assert "Code redeemed" in screen and stack.world.citizen.address in screen
        screen = clerk.wait_for("182000")
        assert "Li Wei" in screen and "id_number" not in screen.split("Code redeemed")[1]

        mark = len(clerk.screen())
        clerk.type(f"datasafe redeem {text} --out {tmp_path / 'again'}")
        clerk.wait_for("Passphrase for citybank:", mark)
        clerk.type(PASSPHRASE)
        screen = clerk.wait_for("error:", mark)
        assert "already redeemed" in screen[mark:] and "a code works once" in screen[mark:]
        assert not (tmp_path / "again").exists()
        mark = len(clerk.screen())
        clerk.type("datasafe redeem DS1:AE1")
        screen = clerk.wait_for("error:", mark)
        assert "not valid base32 (altered or mis-scanned)" in screen[mark:]

        mark = len(citizen.screen())
        citizen.type("datasafe history list")
        citizen.wait_for("Passphrase for li:", mark)
        citizen.type(PASSPHRASE)
        screen = citizen.wait_for("citybank", mark)
        saved = json.loads(next((tmp_path / "counter").glob("*.json")).read_text())
        screen = citizen.wait_for(saved["access_tx"][:20], mark)
        assert "name, income" in screen[mark:]
        assert PASSPHRASE not in citizen.screen() + clerk.screen()
    finally:
        citizen.close()
        clerk.close()
