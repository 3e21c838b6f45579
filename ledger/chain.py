"""The embedded chain: an anvil process owned by this Python process.

Started on a loopback port, its state persisted under the data directory
(``--state``, written on exit and every ``state_interval`` seconds), stopped on
context exit, on SIGTERM/SIGINT (see :mod:`node.up`) and at interpreter exit.
The platform binary is run directly, not the npm shim, so that terminating it
terminates the node and leaves no orphan.

``--state`` is written on exit and periodically, so a SIGKILL loses the blocks
mined since the last write: after a restart the chain can be *behind* records
kept elsewhere, and callers that relay must compare and re-submit.
"""

from __future__ import annotations

import atexit
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from ledger.errors import ChainProcessError, ContractRevertError, RpcError
from ledger.rpc import RpcClient

#: Past states the embedded anvil keeps (``--prune-history N``, in memory, nothing on disk).
#: The service reads at the block its request pinned while other requests mine on; 256
#: blocks of slack covers that. No flag (anvil's default) would also copy every older state
#: to disk (~/.foundry/anvil/tmp): gigabytes within hours on a busy chain (docs/operations.md).
HISTORY_STATES = 256

#: anvil's well-known first dev key (mnemonic "test test ... junk"); never for real chains.
DEV_PRIVATE_KEYS: tuple[str, ...] = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)


def parent_death_signal(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to send ``sig`` to the child when its parent dies.

    With SIGTERM, a child of a SIGKILLed node still shuts down cleanly (anvil writes
    its state). The signal follows the *thread* that started the child, so start
    children from a long-lived thread (the main thread). None on other systems.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), int(sig))

    return preexec


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ensure_port_free(port: int) -> None:
    with socket.socket() as s:
        # As anvil binds (SO_REUSEADDR): a live listener is still refused, while the
        # TIME_WAIT leftovers of a killed previous run are not mistaken for one.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise ChainProcessError(f"port 127.0.0.1:{port} is already in use") from exc


def find_anvil(override: Path | None = None) -> Path:
    """``override``, else the repo's npm install (native binary first), else PATH."""
    if override is not None:
        if not Path(override).is_file():
            raise ChainProcessError(f"anvil binary {override} does not exist")
        return Path(override)
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    system = platform.system().lower()
    starts = [Path(__file__).resolve().parent, Path.cwd().resolve()]
    for start in starts:
        for root in (start, *start.parents):
            modules = root / "node_modules"
            native = modules / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / "anvil"
            if native.is_file():
                return native
            shim = modules / ".bin" / "anvil"
            if shim.is_file():
                return shim
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise ChainProcessError(
        "anvil not found: run `make bootstrap` (npm install) or set DATASAFE_LEDGER_ANVIL_PATH"
    )


class EmbeddedChain:
    """An anvil process; use as a context manager.

    ``state_dir`` None keeps state in memory only; otherwise ``state_dir/anvil-state.json``
    is loaded on start and written on stop and every ``state_interval`` seconds.
    ``block_time`` 0 means automine (one block per transaction). ``history``: past states
    kept for reads at older blocks (None: anvil's default, every state, old ones on disk).
    ``die_with_parent`` (Linux): anvil gets SIGTERM, and so writes its state, when the
    process that started it dies, even by SIGKILL.
    """

    def __init__(
        self,
        *,
        state_dir: Path | None = None,
        port: int = 0,
        chain_id: int = 31337,
        block_time: float = 0,
        state_interval: int = 5,
        history: int | None = HISTORY_STATES,
        anvil_path: Path | None = None,
        extra_args: tuple[str, ...] = (),
        startup_timeout: float = 30.0,
        die_with_parent: bool = False,
    ) -> None:
        self.binary = find_anvil(anvil_path)
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.port = port or free_port()
        self.chain_id = chain_id
        self.block_time = block_time
        self.state_interval = state_interval
        self.history = history
        self.extra_args = extra_args
        self.startup_timeout = startup_timeout
        self.die_with_parent = die_with_parent
        self.proc: subprocess.Popen[bytes] | None = None
        self._genesis: int | None = None
        self._log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state_file(self) -> Path | None:
        return self.state_dir / "anvil-state.json" if self.state_dir is not None else None

    @property
    def genesis_file(self) -> Path | None:
        return self.state_dir / "genesis-timestamp" if self.state_dir is not None else None

    def _genesis_timestamp(self) -> int | None:
        """The persisted chain's genesis timestamp (fixed at first start).

        anvil 1.7 re-creates the genesis block on every ``--state`` load, with the current
        time unless ``--timestamp`` is given, and keeps every copy in the next dump; after
        a few restarts block 0's hash changes, and a chain whose genesis changed is another
        chain to the indexer. Pinning the timestamp keeps block 0 identical.
        """
        if self.genesis_file is None or self.state_file is None:
            return None
        try:
            return int(self.genesis_file.read_text().strip())
        except (OSError, ValueError):
            pass
        stamp = int(time.time())
        if self.state_file.exists():  # state from before the pin: keep its genesis
            try:
                blocks = json.loads(self.state_file.read_text()).get("blocks", [])
                zeros = [
                    int(b["header"]["timestamp"], 16)
                    for b in blocks
                    if int(b["header"]["number"], 16) == 0
                ]
                stamp = min(zeros) if zeros else stamp
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                return None
        self.genesis_file.write_text(f"{stamp}\n")
        return stamp

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def command(self) -> list[str]:
        cmd = [
            str(self.binary),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
        ]
        if self.history is not None:
            cmd += ["--prune-history", str(self.history)]
        if self.block_time:
            cmd += ["--block-time", f"{self.block_time:g}"]
        if self.state_file is not None:
            cmd += ["--state", str(self.state_file), "--state-interval", str(self.state_interval)]
            if self._genesis is not None:
                cmd += ["--timestamp", str(self._genesis)]
        return cmd + list(self.extra_args)

    def start(self) -> EmbeddedChain:
        if self.proc is not None:
            raise ChainProcessError("chain already started")
        # Otherwise another node on the port would answer our readiness probe.
        _ensure_port_free(self.port)
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._genesis = self._genesis_timestamp()
            log_path = self.state_dir / "anvil.log"
        else:
            log_path = Path(os.devnull)
        self._log = log_path
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=parent_death_signal() if self.die_with_parent else None,
            )
        atexit.register(self.stop)
        try:
            self._wait_ready()
            if self._genesis is not None:
                # --timestamp also offsets anvil's clock; put it back on the wall clock.
                self._rpc("evm_setTime", [int(time.time())])
        except BaseException:
            self.stop()
            raise
        return self

    def _rpc(self, method: str, params: list[object]) -> object:
        try:
            with RpcClient(self.url, timeout=10.0, retries=0, trust_env=False) as rpc:
                return rpc.call(method, params)
        except (RpcError, ContractRevertError) as exc:
            raise ChainProcessError(f"anvil {method} failed: {exc}") from exc

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        with RpcClient(self.url, timeout=1.0, retries=0, trust_env=False) as rpc:
            while True:
                assert self.proc is not None
                code = self.proc.poll()
                if code is not None:
                    raise ChainProcessError(
                        f"anvil exited with code {code} during startup (see {self._log})"
                    )
                try:
                    rpc.call("eth_chainId")
                    if self.proc.poll() is None:
                        return
                    continue
                except RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise ChainProcessError(
                        f"anvil not ready on {self.url} after {self.startup_timeout:g}s"
                    )
                time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (anvil writes ``--state`` on the way out), then SIGKILL after ``timeout``."""
        proc, self.proc = self.proc, None
        atexit.unregister(self.stop)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL without a final state write (to test crash recovery)."""
        proc, self.proc = self.proc, None
        atexit.unregister(self.stop)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def __enter__(self) -> EmbeddedChain:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
