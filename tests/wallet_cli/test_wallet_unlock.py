"""The unlock agent with real processes: unlock, use, lock, time out, killed, wrong passphrase.

Each command runs as its own ``python -m wallet_cli`` process without a terminal and without
DATASAFE_PASSPHRASE, so a key can only come from the agent. ``data open`` against a closed
port shows how far a command got: exit 4 (service unreachable) means it was unlocked.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wallet_cli._home import Home

REPO = Path(__file__).resolve().parents[2]
PASS = "agent passphrase"
ASSET = "0x" + "11" * 32


class Cli:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "DATASAFE_HOME": str(home),
            "DATASAFE_SCRYPT_N": "1024",
        }

    def run(self, *args: str, passphrase: str | None = None) -> subprocess.CompletedProcess[str]:
        env = self.env | ({"DATASAFE_PASSPHRASE": passphrase} if passphrase else {})
        return subprocess.run(
            [sys.executable, "-m", "wallet_cli", *args],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def open_data(self, passphrase: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.run("--json", "--api", "http://127.0.0.1:9", "data", "open", ASSET,
                        passphrase=passphrase)  # fmt: skip

    def agent_pid(self) -> int:
        return int(json.loads((self.home / "agent" / "agent.json").read_text())["pid"])


def _exits(pid: int, within: float = 10.0) -> bool:
    """The process ended (a zombie not yet reaped by init counts as ended)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


def _code(done: subprocess.CompletedProcess[str]) -> str:
    return str(json.loads(done.stdout.strip().splitlines()[-1])["error"]["code"])


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    c = Cli(tmp_path / "wallet")
    assert c.run("account", "create", "alice", passphrase=PASS).returncode == 0
    yield c
    c.run("lock")


def test_unlock_then_commands_need_no_passphrase_then_lock(cli: Cli) -> None:
    locked = cli.open_data()
    assert locked.returncode == 2 and _code(locked) == "wallet_locked", locked.stderr
    done = cli.run("--json", "unlock", "--for", "5m", passphrase=PASS)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["profile"] == "alice"
    folder = cli.home / "agent"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "agent.sock").stat().st_mode) == 0o600
    unlocked = cli.open_data()
    assert unlocked.returncode == 4 and _code(unlocked) == "service_unreachable", unlocked.stderr
    # Nothing unlocked on disk: neither the signing key nor the kdf output, anywhere.
    p = Home(cli.home).profile("alice")
    secret = p.open(PASS)
    for f in cli.home.rglob("*"):
        if f.is_file():
            text = f.read_bytes()
            assert secret.key.hex().encode() not in text and secret.derived not in text, f
            assert secret.derived.hex().encode() not in text, f
    pid = cli.agent_pid()
    assert cli.run("lock").returncode == 0
    assert _exits(pid)
    assert not folder.joinpath("agent.sock").exists()
    again = cli.open_data()
    assert again.returncode == 2 and _code(again) == "wallet_locked"


def test_wrong_passphrase_starts_no_agent(cli: Cli) -> None:
    done = cli.run("--json", "unlock", passphrase="not it")
    assert done.returncode == 2 and _code(done) == "wrong_passphrase", done.stderr
    assert not (cli.home / "agent" / "agent.sock").exists()


def test_agent_times_out(cli: Cli) -> None:
    assert cli.run("unlock", "--for", "8s", passphrase=PASS).returncode == 0
    pid = cli.agent_pid()
    assert cli.open_data().returncode == 4
    assert _exits(pid, within=20.0)  # by itself, at its time
    done = cli.open_data()
    assert done.returncode == 2 and _code(done) == "agent_timed_out", done.stderr
    assert "timed out at" in done.stderr
    # With a passphrase at hand the command goes on (and says why it asked).
    cli.run("unlock", "--for", "1s", passphrase=PASS)
    time.sleep(2.5)
    fallback = cli.open_data(passphrase=PASS)
    assert fallback.returncode == 4 and "timed out" in fallback.stderr


def test_agent_killed_mid_session(cli: Cli) -> None:
    assert cli.run("unlock", "--for", "5m", passphrase=PASS).returncode == 0
    os.kill(pid := cli.agent_pid(), signal.SIGKILL)
    assert _exits(pid)
    gone = cli.open_data()
    assert gone.returncode == 4 and _code(gone) == "agent_gone", gone.stderr
    cli.run("unlock", "--for", "5m", passphrase=PASS)
    os.kill(pid := cli.agent_pid(), signal.SIGKILL)
    assert _exits(pid)
    fallback = cli.open_data(passphrase=PASS)
    assert fallback.returncode == 4 and _code(fallback) == "service_unreachable"
    assert "does not answer" in fallback.stderr


def test_duration_words() -> None:
    from wallet_cli.errors import UserError
    from wallet_cli.unlock import parse_duration

    assert parse_duration("90s") == 90 and parse_duration("15m") == 900
    assert parse_duration("2h") == 7200 and parse_duration("10") == 600
    for bad in ("0m", "soon", "2d", "-5m"):
        with pytest.raises(UserError):
            parse_duration(bad)


def test_home_too_deep_for_a_socket(tmp_path: Path) -> None:
    deep = Cli(tmp_path / ("d" * 60) / ("e" * 60))
    assert deep.run("account", "create", "alice", passphrase=PASS).returncode == 0
    done = deep.run("--json", "unlock", passphrase=PASS)
    assert done.returncode == 2 and "too deep" in done.stderr, done.stderr
