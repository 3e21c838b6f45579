"""Fixtures for the edge tests: a deployed ledger on a real anvil and the API as its own
process (``python -m api``, as ``datasafe-node`` runs it), so a hostile request can crash
it without taking the test runner along and its memory can be read from ``/proc``.

Import the fixtures into a test module (``from _edge import edge_world, ...``): the
helpers of ``tests/api`` are reused, not copied.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from _api_server import REPO, Anvil, free_port, world_settings
from _api_world import DEV_KEYS, Actor, World

from api.envelope import sign_request
from api.settings import ApiSettings

__all__ = [
    "ApiProcess",
    "edge_anvil",
    "edge_world",
    "envelope_headers",
    "raw_post",
    "rss_kib",
    "start_api_process",
]


@pytest.fixture(scope="module")
def edge_anvil() -> Iterator[Anvil]:
    exe = shutil.which("anvil", path=str(REPO / "node_modules" / ".bin")) or shutil.which("anvil")
    if exe is None:
        pytest.fail("anvil not found (run `make bootstrap`)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--host", "127.0.0.1", "--port", str(port), "--silent", "--chain-id", "31337"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    anvil = Anvil(port, proc)
    deadline = time.monotonic() + 30
    while True:
        try:
            anvil.rpc("eth_chainId", [])
            break
        except (httpx.HTTPError, RuntimeError):
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("anvil did not start")
            time.sleep(0.05)
    yield anvil
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def edge_world(edge_anvil: Anvil) -> World:
    world = World(edge_anvil.url)
    custodian = Actor("custodian", DEV_KEYS[9])
    world.admit(custodian, 16, 8)  # CUSTODIAN, OPERATOR
    world.custodian = custodian  # type: ignore[attr-defined]
    return world


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of a process from ``/proc/<pid>/status`` (KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


def reset_peak(pid: int) -> bool:
    """Reset the peak RSS (VmHWM) of a process we own; False where the kernel refuses."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class ApiProcess:
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


def _env_of(settings: ApiSettings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATASAFE_API_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"DATASAFE_API_{name.upper()}"] = str(value)
    return env


def start_api_process(settings: ApiSettings, log: Path, source: Path = REPO) -> ApiProcess:
    """``python -m api`` with ``settings`` in its environment, once ``/v1/info`` answers.

    ``source``: the tree whose ``api`` package runs (another checkout, for a before/after).
    """
    port = free_port()
    env = _env_of(settings) | {"DATASAFE_API_LOG_LEVEL": "WARNING", "PYTHONPATH": str(source)}
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
    if api.alive():
        api.proc.terminate()
        try:
            api.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            api.proc.kill()
            api.proc.wait()


@pytest.fixture(scope="module")
def edge_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('edge-db') / 'datasafe.db'}"


def api_for(world: World, db_url: str, tmp: Path, **overrides: Any) -> Iterator[ApiProcess]:
    """Start the API process for ``world`` with settings ``overrides``; stop it after."""
    settings = world_settings(world, db_url, tmp, **overrides)
    api = start_api_process(settings, tmp / "api.log")
    try:
        yield api
    finally:
        stop_api_process(api)


# ---- hostile requests (tests and scripts/bench_hostile.py) -------------------------------


def raw_post(
    api: ApiProcess,
    path: str,
    headers: dict[str, str],
    *,
    total: int,
    chunked: bool,
    send_body: bool = True,
) -> tuple[int, bytes, int]:
    """POST ``total`` bytes over a raw socket, stopping as soon as the server answers.

    Returns (status, response body, bytes of body sent before the answer).
    """
    host = urlsplit(api.url)
    sock = socket.create_connection((host.hostname, host.port), timeout=60)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = f"POST {path} HTTP/1.1\r\nHost: {host.netloc}\r\n{framing}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    sock.sendall(head.encode())
    piece = b"A" * 65536
    sent = 0
    try:
        while send_body and sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break  # the server answered before the body ended
            data = f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece
            sock.sendall(data)
            sent += len(piece)
        else:
            if send_body and chunked:
                sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    raw = b""
    try:
        while b"\r\n\r\n" not in raw or len(raw.split(b"\r\n\r\n", 1)[1]) < _length(raw):
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    status = int(raw.split(b" ", 2)[1])
    return status, raw.split(b"\r\n\r\n", 1)[1], sent


def _length(raw: bytes) -> int:
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 1 << 30


def envelope_headers(world: World, api: ApiProcess, path: str) -> dict[str, str]:
    """Well-formed envelope headers (signed over an empty body: the body here is hostile)."""
    env = sign_request(
        world.citizen.key_bytes,
        chain_id=world.chain_id,
        ledger_address=world.ledger_address,
        method="POST",
        path=path,
        body=b"",
    )
    return env.to_headers() | {"Content-Type": "application/json"}
