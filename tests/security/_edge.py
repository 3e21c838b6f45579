"""Fixtures for the edge tests: a deployed ledger on a real anvil and the API as its own
process (``python -m api``, as ``datasafe-node`` runs it), so a hostile request can crash
it without taking the test runner along and its memory can be read from ``/proc``.

Import the fixtures into a test module (``from _edge import edge_world, ...``): the
helpers of ``tests/api`` are reused, not copied.
"""

from __future__ import annotations

import select
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))

from _api_server import world_settings
from _api_world import DEV_KEYS, Actor, World
from _fixtures import (
    REPO,
    ApiProcess,
    start_anvil,
    start_api,
    start_api_process,
    stop_api_process,
)

from api.envelope import sign_request
from ledger.chain import EmbeddedChain

__all__ = [
    "REPO",
    "ApiProcess",
    "edge_anvil",
    "edge_world",
    "envelope_headers",
    "raw_post",
    "rss_kib",
    "start_api_process",
    "stop_api_process",
]


@pytest.fixture(scope="module")
def edge_anvil() -> Iterator[EmbeddedChain]:
    """A chain of this module's own: a hostile request may crash the API mid-transaction."""
    with start_anvil() as chain:
        yield chain


@pytest.fixture(scope="module")
def edge_world(edge_anvil: EmbeddedChain) -> World:
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


@pytest.fixture(scope="module")
def edge_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('edge-db') / 'datasafe.db'}"


def api_for(world: World, db_url: str, tmp: Path, **overrides: Any) -> Iterator[ApiProcess]:
    """Start the API process for ``world`` with settings ``overrides``; stop it after."""
    with start_api(
        world_settings(world, db_url, tmp, **overrides), process=True, log=tmp / "api.log"
    ) as api:
        yield api


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
