"""Process supervision: the API child (``python -m api``) started, awaited, restarted with a
growing backoff when it dies on its own (:class:`ApiSupervisor`), and stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import typer

from api.ops import child_env
from ledger.chain import parent_death_signal
from node.errors import NodeError


class StopFlag:
    """Set from a signal handler, polled by the main loop.

    Not a ``threading.Event``: its ``set()`` takes the lock that ``wait()`` holds in
    the same (main) thread, so a signal landing at the wrong moment deadlocks the node.
    """

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._set and time.monotonic() < deadline:
            time.sleep(min(0.05, timeout))
        return self._set


@dataclass
class ApiProcess:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            typer.echo(f"the API did not stop within {timeout:g}s; killed it", err=True)
            self.proc.kill()
            self.proc.wait()


#: Seconds before restarting a crashed API: doubles per crash in a row, up to the maximum.
API_RESTART_FIRST_DELAY = 0.5
API_RESTART_MAX_DELAY = 30.0
#: An API that stayed up this long has recovered: the next crash starts the backoff again.
API_STABLE_SECONDS = 60.0


@dataclass
class ApiSupervisor:
    """Counts API crashes and spaces the restarts out (exponential backoff)."""

    restarts: int = 0
    in_a_row: int = 0
    last_exit: int | None = None
    last_crash_at: int | None = None
    up_since: float = field(default_factory=time.monotonic)

    def crashed(self, returncode: int | None) -> float:
        """Record a crash; returns the seconds to wait before the restart."""
        if time.monotonic() - self.up_since >= API_STABLE_SECONDS:
            self.in_a_row = 0
        self.restarts += 1
        self.in_a_row += 1
        self.last_exit = returncode
        self.last_crash_at = int(time.time())
        delay: float = API_RESTART_FIRST_DELAY * 2.0 ** (self.in_a_row - 1)
        return min(delay, API_RESTART_MAX_DELAY)

    def started(self) -> None:
        self.up_since = time.monotonic()

    def as_run_info(self) -> dict[str, Any]:
        return {
            "api_restarts": self.restarts,
            "api_last_exit": self.last_exit,
            "api_last_crash_at": self.last_crash_at,
        }


def spawn_api(host: str, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """An API process that imports the service now and serves once given its settings
    (:mod:`node._api_child`; its arguments are those of ``python -m api``)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "node._api_child", "--host", host, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE,
            env=dict(os.environ),
            preexec_fn=parent_death_signal(),
        )


def start_api(
    *,
    host: str,
    port: int,
    env_overrides: dict[str, str],
    log_path: Path,
    stop: StopFlag,
    timeout: float = 90.0,
    spawned: subprocess.Popen[bytes] | None = None,
) -> ApiProcess:
    """The API (``spawned`` ahead of time, or now) serving with the node's settings over the
    environment's; waits for /readyz."""
    proc = spawned if spawned is not None else spawn_api(host, port, log_path)
    assert proc.stdin is not None
    try:
        proc.stdin.write(json.dumps(env_overrides).encode() + b"\n")
        proc.stdin.close()
    except BrokenPipeError:
        pass  # it died already: the poll below reports how
    api = ApiProcess(proc, f"http://{host}:{port}", log_path)
    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(timeout=2.0) as http:
        while True:
            if proc.poll() is not None:
                raise NodeError(
                    f"the API exited with code {proc.returncode} during start-up "
                    f"(see {log_path}):\n{api.tail()}"
                )
            if stop.is_set():
                api.stop()
                raise NodeError("stopped during start-up")
            try:
                resp = http.get(api.url + "/readyz")
                if resp.status_code == 200:
                    return api
                last = resp.text[:2000]
                fatal = _fatal_readiness(resp)
                if fatal:
                    api.stop()
                    raise NodeError(f"the API cannot become ready: {fatal} (see {log_path})")
            except httpx.HTTPError as exc:
                last = str(exc) or type(exc).__name__
            if time.monotonic() > deadline:
                api.stop()
                raise NodeError(f"the API was not ready after {timeout:g}s: {last}")
            time.sleep(0.2)


def _fatal_readiness(resp: httpx.Response) -> str | None:
    """A readiness failure that waiting will not fix (the indexer stopped, wrong code)."""
    try:
        checks = resp.json().get("checks", {})
    except (ValueError, AttributeError):
        return None
    indexer = checks.get("indexer", {}) if isinstance(checks, dict) else {}
    error = indexer.get("error") if isinstance(indexer, dict) else None
    if error and error != "not running":
        return f"indexer: {error}"
    manifest = checks.get("manifest", {}) if isinstance(checks, dict) else {}
    if isinstance(manifest, dict) and manifest.get("ok") is False:
        return f"manifest does not match the chain: {manifest}"
    return None


@dataclass
class ApiChild:
    """How to (re)start the API child: its address, settings and log."""

    host: str
    port: int
    env: dict[str, str]
    log_path: Path
    #: The process started last (stop it on the way out).
    current: ApiProcess | None = None
    #: A process spawned ahead of time, importing the service while the node starts up.
    warm: subprocess.Popen[bytes] | None = None

    def warm_up(self) -> None:
        """Spawn the next start's process now (its imports overlap the node's own work)."""
        if self.warm is None:
            self.warm = spawn_api(self.host, self.port, self.log_path)

    def discard_warm(self) -> None:
        """A warm process that will not be needed (the node stops before the API starts)."""
        proc, self.warm = self.warm, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def start(self, stop: StopFlag) -> ApiProcess:
        spawned, self.warm = self.warm, None
        self.current = start_api(
            host=self.host,
            port=self.port,
            env_overrides=self.env,
            log_path=self.log_path,
            stop=stop,
            spawned=spawned,
        )
        return self.current


def supervise(
    child: ApiChild,
    stop: StopFlag,
    *,
    chain_alive: Callable[[], bool],
    chain_log: Path,
    on_change: Callable[[dict[str, Any]], None],
) -> None:
    """Watch the children (the API started by ``child``) until ``stop``.

    The chain dying is fatal (:class:`NodeError`). The API dying (a crash, a kill) is not:
    the chain and the database are fine, so only the API is restarted, after a backoff that
    grows while it keeps dying. ``on_change`` gets the run-file fields that changed.
    """
    api = child.current
    if api is None:
        raise NodeError("the API was not started")
    supervisor = ApiSupervisor()
    while not stop.wait(0.5):
        if not chain_alive():
            raise NodeError(f"anvil exited unexpectedly (see {chain_log})")
        if api.proc.poll() is None:
            continue
        delay = supervisor.crashed(api.proc.returncode)
        typer.echo(
            f"the API exited unexpectedly with code {api.proc.returncode} (see {api.log}); "
            f"restart {supervisor.restarts} in {delay:g}s",
            err=True,
        )
        on_change(supervisor.as_run_info())
        if stop.wait(delay):
            break
        child.env.update(child_env(supervisor_restarts=supervisor.restarts))
        try:
            api = child.start(stop)
        except NodeError as exc:
            if stop.is_set():
                break
            typer.echo(f"the API did not come back: {exc}", err=True)
            continue  # its process is gone: the next turn backs off further
        supervisor.started()
        on_change({"api_pid": api.proc.pid, **supervisor.as_run_info()})
        typer.echo(f"the API is back (pid {api.proc.pid}, restart {supervisor.restarts})")
