"""The data directory: its layout, the ``up`` lock, the run file, the custodian key."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from eth_account import Account

from api.ops import env_setting, service_paths
from ledger.settings import BLOB_DIR as BLOB_DIR
from ledger.settings import DB_FILE as DB_FILE
from ledger.settings import LedgerSettings, get_settings
from ledger.settings import default_database_url as default_database_url
from node.errors import NodeError, NodeRunningError

#: Files and folders of a data dir (see README "Data directory").
LOCK_FILE = "node.lock"
RUN_FILE = "node.json"
CUSTODIAN_KEY_FILE = "custodian.key"
CHAIN_DIR = "chain"
LOG_DIR = "logs"


def settings_for(data_dir: Path | None) -> LedgerSettings:
    s = get_settings()
    if data_dir is not None:
        s = s.model_copy(update={"data_dir": data_dir})
    return s


def database_url_for(data_dir: Path, option: str | None) -> str:
    """``--database-url``, else the service's (DATASAFE_API_DATABASE_URL, DATASAFE_DATABASE_URL),
    else SQLite in the data dir."""
    return option or service_paths(data_dir)[0]


def blob_dir_for(data_dir: Path) -> Path:
    return service_paths(data_dir)[1]


# ---- lock and run file ----------------------------------------------------------------


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[IO[str]]:
    """Hold ``node.lock`` (flock) for the life of an ``up``; the kernel frees it on any death."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = open(data_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held for the block's life
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info = read_run_file(data_dir)
            pid = info.get("pid", "?") if info else "?"
            raise NodeRunningError(
                f"another `datasafe-node up` (pid {pid}) is running on {data_dir}; "
                "stop it with `datasafe-node down`"
            ) from None
        yield handle
    finally:
        handle.close()


def node_running(data_dir: Path) -> bool:
    """True while some process holds the data dir's lock."""
    path = data_dir / LOCK_FILE
    if not path.exists():
        return False
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def read_run_file(data_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((data_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file readable by the owner only (0600), atomically."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _terminate(pid: int, timeout: float = 15.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def stop_orphans(data_dir: Path, info: dict[str, Any] | None) -> list[str]:
    """Stop children a dead node left behind (only those whose command line is ours).

    With the parent-death signal they are normally gone already; this covers systems
    without it. anvil gets SIGTERM, so it still writes its state.
    """
    stopped: list[str] = []
    if not info:
        return stopped
    state_file = str((data_dir / CHAIN_DIR / "anvil-state.json").resolve())
    port = f"--port {info.get('api_port')}"
    signatures: dict[str, list[tuple[str, ...]]] = {
        "anvil_pid": [(state_file,)],
        # the API child (node/_api_child.py), or ``python -m api`` as earlier releases ran it
        "api_pid": [("-m node._api_child", port), ("-m api", port)],
    }
    for key, alternatives in signatures.items():
        pid = info.get(key)
        if not isinstance(pid, int) or not _alive(pid):
            continue
        cmdline = _cmdline(pid)
        if any(all(n in cmdline for n in needles) for needles in alternatives):
            _terminate(pid)
            stopped.append(f"{key.removesuffix('_pid')} (pid {pid})")
    return stopped


# ---- custodian key ---------------------------------------------------------------------


def load_or_create_custodian_key(data_dir: Path) -> tuple[str, bool]:
    """The custodian's private key from ``custodian.key`` (0600), created once. (key, created)."""
    path = data_dir / CUSTODIAN_KEY_FILE
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise NodeError(
                f"{path} is accessible by other users (mode {mode:o}); run `chmod 600 {path}`"
            )
        text = path.read_text().strip()
        try:
            Account.from_key(text)
        except Exception as exc:
            raise NodeError(f"{path} does not hold a valid private key") from exc
        return text, False
    key = "0x" + bytes(Account.create().key).hex()
    write_private(path, key + "\n")
    return key, True


def custodian_key(data_dir: Path) -> tuple[str, str]:
    """(key, source): DATASAFE_API_CUSTODIAN_KEY when set, else the data dir's key file."""
    env = env_setting("custodian_key")
    if env:
        return env, "DATASAFE_API_CUSTODIAN_KEY"
    key, created = load_or_create_custodian_key(data_dir)
    return key, f"{data_dir / CUSTODIAN_KEY_FILE}{' (created)' if created else ''}"
