"""``datasafe ui`` as its own process (the real command), for HTTP and browser tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

PREFIX = "DataSafe console for this session: "


@dataclass(frozen=True)
class RunningConsole:
    url: str  # http://127.0.0.1:PORT/
    token: str

    @property
    def url_with_token(self) -> str:
        return f"{self.url}#{self.token}"

    @property
    def origin(self) -> str:
        return self.url.rstrip("/")

    def headers(self, **extra: str) -> dict[str, str]:
        return {"X-DataSafe-Token": self.token} | extra

    def get(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(
            self.url + path.lstrip("/"), params=params, headers=self.headers(), timeout=120
        )

    def post(self, path: str, body: dict[str, object]) -> httpx.Response:
        return httpx.post(
            self.url + path.lstrip("/"), json=body, headers=self.headers(), timeout=120
        )


@contextmanager
def console_process(
    env: dict[str, str], *args: str, json_line: bool = False
) -> Iterator[RunningConsole]:
    """``python -m wallet_cli [args] ui`` with ``env``; the URL read from what it prints (its
    sentence, or with ``json_line`` its ``--json`` line)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "wallet_cli", *args, "ui", "--port", "0"]
        + (["--json"] if json_line else []),
        env=os.environ | env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if json_line:
            if not line.startswith("{"):
                proc.kill()
                raise AssertionError(f"no JSON line printed: {line!r}")
            shown = json.loads(line)
            assert set(shown) == {"url", "host", "port"}, shown
            assert shown["url"].startswith(f"http://127.0.0.1:{shown['port']}/#"), shown
            line = PREFIX + shown["url"]
        if not line.startswith(PREFIX):
            proc.kill()
            raise AssertionError(f"no URL printed: {line!r} {proc.communicate()[1]}")
        url, token = line[len(PREFIX) :].strip().split("#", 1)
        console = RunningConsole(url, token)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield console
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
