"""The unlock agent: one process per wallet home that keeps unlocked profiles in memory.

Like ssh-agent: ``datasafe unlock`` starts it (``python -m wallet_cli._keyagent``) and hands it
what opening the keystore yielded, over a Unix socket ``<home>/agent/agent.sock`` in a 0700
directory, the socket itself 0600, peers checked to be the same user (``SO_PEERCRED``). The
agent answers later commands of that user with the unlocked material, so a command after
``unlock`` derives nothing. Nothing unlocked is ever written to disk: the agent keeps it in
its memory only and exits (removing its socket) when its time is up or on ``datasafe lock``.

``<home>/agent/agent.json`` holds public facts only (pid, socket, expiry), so a command can
tell "the agent timed out at 14:05" from "the agent was killed" from "never unlocked".

Protocol: one JSON object per line each way. Requests ``{"op": "get", "profile": name}``,
``{"op": "add", "profile": name, "secret": {...}, "ttl": seconds}``, ``{"op": "status"}``,
``{"op": "lock"}``; answers ``{"ok": true, ...}`` or ``{"ok": false, "error": slug}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wallet_cli.errors import UnreachableError, UserError, WalletError

_IO_TIMEOUT = 5.0


class AgentGoneError(UnreachableError):
    """The agent was expected (it said it would run until later) but does not answer."""

    code = "agent_gone"


class AgentTimedOutError(UserError):
    """The agent's time is up: the wallet is locked again."""

    code = "agent_timed_out"


class WalletLockedError(UserError):
    """No agent holds this profile and no passphrase can be asked for (no terminal)."""

    code = "wallet_locked"


@dataclass(frozen=True)
class Secret:
    """What unlocking a profile yields: the signing key, the keystore's kdf output, and the
    passphrase only when the profile still has encryption keys sealed the old way."""

    key: bytes
    derived: bytes
    passphrase: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key.hex(), "derived": self.derived.hex(), "passphrase": self.passphrase}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Secret:
        return cls(bytes.fromhex(data["key"]), bytes.fromhex(data["derived"]), data["passphrase"])


def agent_dir(home: Path) -> Path:
    return home / "agent"


def socket_path(home: Path) -> Path:
    return agent_dir(home) / "agent.sock"


def _info_path(home: Path) -> Path:
    return agent_dir(home) / "agent.json"


def read_info(home: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(_info_path(home).read_text())
    except (OSError, ValueError):
        return None
    return data


# ---- client side -----------------------------------------------------------------------


def _exchange(path: Path, request: dict[str, Any]) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(_IO_TIMEOUT)
        s.connect(str(path))
        s.sendall(json.dumps(request).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    if not buf.endswith(b"\n"):
        raise ConnectionError("the agent closed the connection without an answer")
    answer: dict[str, Any] = json.loads(buf)
    return answer


def request(home: Path, req: dict[str, Any]) -> dict[str, Any] | None:
    """The agent's answer; None when no agent runs and none was expected.

    :class:`AgentGoneError` when the agent should still be running (its public record says
    so) but does not answer or drops the connection; :class:`AgentTimedOutError` when its
    time ran out since.
    """
    path = socket_path(home)
    info = read_info(home)
    try:
        return _exchange(path, req)
    except (OSError, ValueError) as exc:
        if info is None:
            return None
        expires = float(info.get("expires", 0))
        if expires <= time.time():
            _forget(home)
            raise AgentTimedOutError(
                f"the unlock agent timed out at {_clock(expires)}: the wallet is locked again"
            ) from None
        if not path.exists() and not _alive(int(info.get("pid", 0))):
            _forget(home)
        raise AgentGoneError(
            f"the unlock agent (pid {info.get('pid')}) does not answer: {type(exc).__name__}"
        ) from None


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget(home: Path) -> None:
    for p in (_info_path(home), socket_path(home)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def fetch(home: Path, profile: str) -> Secret | None:
    """The profile's unlocked material from the agent, or None (no agent / not unlocked)."""
    answer = request(home, {"op": "get", "profile": profile})
    if answer is None or not answer.get("ok"):
        return None
    return Secret.from_json(answer["secret"])


def start(home: Path, ttl: float) -> None:
    """Start an agent for ``home`` unless one answers; returns once its socket accepts."""
    try:
        if request(home, {"op": "status"}) is not None:
            return
    except (AgentGoneError, AgentTimedOutError):
        _forget(home)
    if len(os.fsencode(socket_path(home))) > 107:
        raise UserError(f"the wallet home {home} is too deep for the agent's socket (107 bytes)")
    folder = agent_dir(home)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    proc = subprocess.Popen(
        [sys.executable, "-m", "wallet_cli._keyagent", str(home), str(ttl)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise WalletError(f"the unlock agent exited at start (status {proc.returncode})")
        try:
            _exchange(socket_path(home), {"op": "status"})
            return
        except (OSError, ValueError):
            time.sleep(0.02)
    raise WalletError("the unlock agent did not start within 10 s")


# ---- agent side ------------------------------------------------------------------------


def _peer_uid(conn: socket.socket) -> int | None:
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", raw)[1])


class _Agent:
    def __init__(self, home: Path, ttl: float) -> None:
        self.home = home
        self.expires = time.time() + ttl
        self.secrets: dict[str, dict[str, Any]] = {}
        self.running = True

    def publish(self) -> None:
        info = {"pid": os.getpid(), "socket": str(socket_path(self.home)), "expires": self.expires}
        tmp = _info_path(self.home).with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(info, fh)
        os.replace(tmp, _info_path(self.home))

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "get":
            secret = self.secrets.get(str(req.get("profile")))
            if secret is None:
                return {"ok": False, "error": "not_unlocked"}
            return {"ok": True, "secret": secret, "expires": self.expires}
        if op == "add":
            self.secrets[str(req["profile"])] = dict(req["secret"])
            self.expires = time.time() + float(req["ttl"])
            self.publish()
            return {"ok": True, "expires": self.expires}
        if op == "status":
            return {"ok": True, "pid": os.getpid(), "expires": self.expires,
                    "profiles": sorted(self.secrets)}  # fmt: skip
        if op == "lock":
            self.secrets.clear()
            self.running = False
            return {"ok": True}
        return {"ok": False, "error": "unknown_op"}

    def serve(self) -> None:
        path = socket_path(self.home)
        old = os.umask(0o177)
        try:
            if path.exists():
                path.unlink()
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        server.listen(8)
        self.publish()
        try:
            while self.running and time.time() < self.expires:
                server.settimeout(max(0.05, min(1.0, self.expires - time.time())))
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                with conn:
                    self._one(conn)
        finally:
            self.secrets.clear()
            server.close()
            if self.running:
                # Timed out: the socket goes, the public record stays so that the next
                # command can say "timed out at ..." rather than just "locked".
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            else:
                _forget(self.home)

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(_IO_TIMEOUT)
        uid = _peer_uid(conn)
        if uid is not None and uid != os.getuid():
            return
        try:
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            answer = self.handle(json.loads(buf))
            conn.sendall(json.dumps(answer).encode() + b"\n")
        except (OSError, ValueError, KeyError, TypeError):
            return


def main(argv: list[str]) -> None:
    home, ttl = Path(argv[0]), float(argv[1])
    _Agent(home, ttl).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
