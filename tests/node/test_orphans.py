"""``up`` stops the children a dead node left behind, and only those: the API child by its
command line (``node._api_child`` or, from earlier releases, ``python -m api``) and port."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from node.datadir import stop_orphans

ROOT = Path(__file__).resolve().parents[2]


def _spawn(args: list[str]) -> subprocess.Popen[bytes]:
    """A real process with that command line, reaped as soon as it dies."""
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    threading.Thread(target=proc.wait, daemon=True).start()
    return proc


def test_the_api_child_of_a_dead_node_is_stopped(tmp_path: Path) -> None:
    # the node's own API child, waiting for settings that will never come
    child = _spawn(["-m", "node._api_child", "--host", "127.0.0.1", "--port", "18999"])
    try:
        stopped = stop_orphans(tmp_path, {"api_pid": child.pid, "api_port": 18999})
        assert stopped == [f"api (pid {child.pid})"]
        assert child.wait(20) is not None
    finally:
        child.kill()


def test_python_dash_m_api_of_an_earlier_release_is_stopped(tmp_path: Path) -> None:
    old = _spawn(["-c", "import sys, time; time.sleep(60)", "-m", "api", "--port", "18998"])
    try:
        assert stop_orphans(tmp_path, {"api_pid": old.pid, "api_port": 18998}) == [
            f"api (pid {old.pid})"
        ]
        assert old.wait(20) is not None
    finally:
        old.kill()


def test_a_process_that_is_not_ours_is_left_alone(tmp_path: Path) -> None:
    # the recorded pid now belongs to something else (another port, another program)
    other = _spawn(["-m", "node._api_child", "--host", "127.0.0.1", "--port", "18997"])
    stranger = _spawn(["-c", "import time; time.sleep(60)"])
    try:
        assert stop_orphans(tmp_path, {"api_pid": other.pid, "api_port": 18996}) == []
        assert stop_orphans(tmp_path, {"api_pid": stranger.pid, "api_port": 18997}) == []
        assert other.poll() is None and stranger.poll() is None
    finally:
        other.kill()
        stranger.kill()
