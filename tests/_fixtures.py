"""The one way the tests start anvil, and the one way they start the API.

* :func:`start_anvil` — ``ledger.chain.EmbeddedChain`` on a free loopback port (the product's
  own launcher: the platform binary, a readiness probe, teardown). ``tests/conftest.py``
  turns it into the session fixture ``anvil_chain``; the edge suite holds a chain of its own
  per module (its hostile requests may leave the API crashed mid-transaction).
* :func:`start_api` — the service on a free loopback port with the given settings: uvicorn in
  a thread of the test process (:class:`LiveServer`) by default, or ``python -m api`` as its
  own process (:class:`ApiProcess`, ``process=True``) where a test crashes it, reads its
  memory, or runs replicas.

Imported by path (``tests/`` is on ``sys.path`` through its ``conftest.py``), as
``tests/api/_api_server.py`` and ``tests/security/_edge.py`` re-export it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

import httpx
import uvicorn

from api.app import create_app
from api.settings import ApiSettings
from ledger.chain import EmbeddedChain

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- anvil ------------------------------------------------------------------------------------


@contextlib.contextmanager
def start_anvil() -> Iterator[EmbeddedChain]:
    """A fresh anvil (automine, chain id 31337, in-memory state), with the history the node's
    embedded anvil keeps (``HISTORY_STATES``): the service reads state at the block its request
    pinned, and an anvil keeping no history refuses a block one behind its head once another
    request has mined in between (``BlockOutOfRangeError``)."""
    with EmbeddedChain() as chain:
        yield chain


# ---- the API ----------------------------------------------------------------------------------


class LiveServer:
    """uvicorn serving ``create_app(settings)`` in a background thread."""

    def __init__(self, settings: ApiSettings) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive():
                raise RuntimeError("uvicorn exited during start-up")
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)


@dataclass
class ApiProcess:
    """``python -m api`` as a child process, with its output in ``log``."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """SIGTERM (a graceful shutdown), SIGKILL after 15 s."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def api_env(settings: ApiSettings) -> dict[str, str]:
    """This process's environment with ``settings`` as the child's ``DATASAFE_API_*``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATASAFE_API_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[ApiSettings.env_name(name)] = str(value)
    return env


def start_api_process(settings: ApiSettings, log: Path, source: Path = REPO) -> ApiProcess:
    """``python -m api`` with ``settings`` in its environment, once ``/v1/info`` answers.

    ``source``: the tree whose ``api`` package runs (another checkout, for a before/after).
    """
    port = free_port()
    env = api_env(settings) | {"DATASAFE_API_LOG_LEVEL": "WARNING", "PYTHONPATH": str(source)}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(port)],
            cwd=source,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    api = ApiProcess(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"the API exited during start-up:\n{api.tail()}")
        try:
            if httpx.get(api.url + "/v1/info", timeout=2).status_code == 200:
                return api
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the API did not start:\n{api.tail()}")
        time.sleep(0.1)


def stop_api_process(api: ApiProcess) -> None:
    api.stop()


@overload
def start_api(
    settings: ApiSettings, *, process: Literal[False] = False
) -> contextlib.AbstractContextManager[LiveServer]: ...
@overload
def start_api(
    settings: ApiSettings, *, process: Literal[True], log: Path
) -> contextlib.AbstractContextManager[ApiProcess]: ...
def start_api(
    settings: ApiSettings, *, process: bool = False, log: Path | None = None
) -> contextlib.AbstractContextManager[LiveServer | ApiProcess]:
    """The API with ``settings``, stopped when the block ends (see the module docstring)."""
    if not process:
        return LiveServer(settings)
    assert log is not None, "a process writes its output to a log file"
    return _process(settings, log)


@contextlib.contextmanager
def _process(settings: ApiSettings, log: Path) -> Iterator[LiveServer | ApiProcess]:
    api = start_api_process(settings, log)
    try:
        yield api
    finally:
        api.stop()
