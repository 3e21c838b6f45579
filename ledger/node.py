"""``datasafe-node``: the whole node (chain, ledger, custodian, database, API, indexer).

datasafe-node up          start everything in the foreground; Ctrl-C / SIGTERM stops it
datasafe-node status      chain reachable, manifest matches, database agrees with the chain,
                          API /readyz and indexer lag (``--json``)
datasafe-node down        stop the ``up`` running on the data dir and wait for it
datasafe-node deploy      deploy (unless the manifest exists) and admit the custodian
datasafe-node reset --yes delete the data dir's chain state, manifest, SQLite DB and blobs
datasafe-node scrub       check every blob against its anchored digest (DB and chain)
datasafe-node backup DIR  copy the database and the blobs into DIR (online)
datasafe-node restore DIR put a backup back (node stopped); then scrub

Embedded by default: an anvil child with its state in ``<data dir>/chain``. With
``--rpc-url`` (or ``DATASAFE_LEDGER_RPC_URL``) and ``--database-url`` (or
``DATASAFE_API_DATABASE_URL``) the same services run against an external EVM node and
PostgreSQL; no anvil is started then.

The API runs as a child process (``python -m api``) configured through its
``DATASAFE_API_*`` settings; the node owns both children, starts them with a
parent-death signal (SIGTERM) on Linux, and stops the API before the chain so that
anvil writes its state last. An API that dies on its own is restarted with a growing
backoff (``ApiSupervisor``); the chain keeps running, and ``status`` counts the restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Annotated, Any

import httpx
import sqlalchemy as sa
import typer
from eth_account import Account
from eth_utils.address import to_checksum_address

from ledger import restore_recursion_limit
from ledger.abi import ledger_abi
from ledger.calls import LedgerCalls
from ledger.chain import DEV_PRIVATE_KEYS, EmbeddedChain, parent_death_signal
from ledger.client import sender_from_settings
from ledger.errors import (
    CodeMismatchError,
    ConfigurationError,
    LedgerError,
    ManifestNotFoundError,
)
from ledger.manifest import Manifest, deploy_ledger, verify_manifest
from ledger.models import MemberKind, MemberStatus, Role
from ledger.rpc import AsyncRpcClient, RpcClient
from ledger.settings import LedgerSettings, get_settings
from ledger.tx import AsyncTxManager, LocalKeySender, Sender

app = typer.Typer(help="DataSafe Ledger node.", no_args_is_help=True, add_completion=False)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="default: DATASAFE_LEDGER_DATA_DIR or ./.datasafe")
]
RpcUrl = Annotated[
    str | None,
    typer.Option("--rpc-url", help="external EVM JSON-RPC endpoint (no embedded anvil)"),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL (default: SQLite in the data dir)"),
]

#: Files and folders of a data dir (see README "Data directory").
LOCK_FILE = "node.lock"
RUN_FILE = "node.json"
CUSTODIAN_KEY_FILE = "custodian.key"
CHAIN_DIR = "chain"
DB_FILE = "datasafe.db"
BLOB_DIR = "blobs"
LOG_DIR = "logs"

#: Embedded chain only: the custodian pays gas, so the governor tops it up to this.
CUSTODIAN_FUNDING_WEI = 100 * 10**18
CUSTODIAN_MIN_WEI = 10 * 10**18

EXIT_ERROR = 1
EXIT_USAGE = 2
#: The chain is behind what the database recorded (lost state); nothing was started.
EXIT_CHAIN_BEHIND = 3
#: The blob scrub found ciphertext blobs missing or corrupt (data loss until restored).
EXIT_BLOBS_DAMAGED = 4


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


class NodeError(LedgerError):
    """The node cannot start or act (busy data dir, key file, child process)."""


class NodeRunningError(NodeError):
    """Another ``datasafe-node up`` holds the data dir's lock."""


class ChainBehindDatabaseError(NodeError):
    """The chain lacks blocks or transactions the database recorded as confirmed.

    Typically the embedded anvil was killed (power loss, SIGKILL of anvil itself)
    after its last periodic state write: the transactions mined since are gone from
    the chain but the service's database and index still describe them. Serving
    would give answers the chain contradicts, so the node refuses to start.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "the chain is behind the database: "
            + "; ".join(problems)
            + ". The chain lost confirmed state (e.g. anvil killed before its state write); "
            "restore the data dir from a backup taken while the node was down, or start "
            "over with `datasafe-node reset --yes`"
        )
        self.problems = problems


# ---- settings and paths ---------------------------------------------------------------


def _settings(data_dir: Path | None) -> LedgerSettings:
    s = get_settings()
    if data_dir is not None:
        s = s.model_copy(update={"data_dir": data_dir})
    return s


def _embedded_sender(s: LedgerSettings) -> Sender:
    try:
        return sender_from_settings(s)
    except LedgerError:
        # Dev chain only: anvil's first funded account is the governor.
        return LocalKeySender.from_key(DEV_PRIVATE_KEYS[0])


def _external_rpc(s: LedgerSettings, rpc_url: str | None) -> str | None:
    """The external chain's URL: ``--rpc-url``, else an explicitly set DATASAFE_LEDGER_RPC_URL."""
    if rpc_url:
        return rpc_url
    return s.rpc_url if "rpc_url" in s.model_fields_set else None


def _api_env(name: str) -> str | None:
    value = os.environ.get(f"DATASAFE_API_{name.upper()}")
    return value if value else None


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / DB_FILE).resolve()}"


def _database_url(data_dir: Path, option: str | None) -> str:
    return option or _api_env("database_url") or default_database_url(data_dir)


def redact_url(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


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


def _write_private(path: Path, text: str) -> None:
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
    signatures = {
        "anvil_pid": (state_file,),
        "api_pid": ("-m api", f"--port {info.get('api_port')}"),
    }
    for key, needles in signatures.items():
        pid = info.get(key)
        if isinstance(pid, int) and _alive(pid) and all(n in _cmdline(pid) for n in needles):
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
    _write_private(path, key + "\n")
    return key, True


def _custodian_key(data_dir: Path) -> tuple[str, str]:
    """(key, source): DATASAFE_API_CUSTODIAN_KEY when set, else the data dir's key file."""
    env = _api_env("custodian_key")
    if env:
        return env, "DATASAFE_API_CUSTODIAN_KEY"
    key, created = load_or_create_custodian_key(data_dir)
    return key, f"{data_dir / CUSTODIAN_KEY_FILE}{' (created)' if created else ''}"


# ---- chain set-up ----------------------------------------------------------------------


def ensure_deployed(rpc_url: str, s: LedgerSettings, sender: Sender) -> tuple[Manifest, bool]:
    """The verified manifest, deploying first if there is none. Returns (manifest, deployed)."""
    path = s.resolved_manifest_path
    with RpcClient(rpc_url, timeout=s.rpc_timeout, retries=s.rpc_retries) as rpc:
        try:
            manifest = Manifest.load(path)
        except ManifestNotFoundError:
            manifest = deploy_ledger(
                rpc_url,
                sender,
                manifest_path=path,
                confirmations=s.confirmations,
                receipt_timeout=s.receipt_timeout,
            )
            verify_manifest(rpc, manifest)
            return manifest, True
        verify_manifest(rpc, manifest)
        return manifest, False


@dataclass
class CustodianSetup:
    address: str
    admitted_now: bool = False
    funded_wei: int = 0
    warnings: list[str] = field(default_factory=list)


def ensure_custodian(
    rpc_url: str,
    manifest: Manifest,
    custodian: str,
    s: LedgerSettings,
    governor: Sender | None,
    *,
    fund: bool,
) -> CustodianSetup:
    """Admit ``custodian`` as CUSTODIAN (OPERATOR) and, on the dev chain, give it gas money.

    Idempotent: checked on every start, so a crash between deploy and admission heals.
    """
    address = to_checksum_address(custodian)
    out = CustodianSetup(address)
    calls = LedgerCalls(ledger_abi())

    async def run() -> None:
        async with AsyncRpcClient(
            rpc_url, timeout=s.rpc_timeout, retries=s.rpc_retries, errors=ledger_abi().errors
        ) as rpc:
            read = calls.get_member(address)
            raw = await rpc.call(
                "eth_call",
                [{"to": manifest.ledger_address, "data": "0x" + read.data.hex()}, "latest"],
            )
            member = read.decode(bytes.fromhex(str(raw)[2:]))
            tx: AsyncTxManager | None = None
            if governor is not None:
                tx = AsyncTxManager(
                    rpc,
                    governor,
                    confirmations=s.confirmations,
                    receipt_timeout=s.receipt_timeout,
                    gas_multiplier=s.gas_multiplier,
                )
            if not member.is_member:
                if tx is None:
                    raise ConfigurationError(
                        f"custodian {address} is not a member of the ledger and no governor key "
                        "is configured to admit it (DATASAFE_LEDGER_PRIVATE_KEY / _KEYSTORE_PATH)"
                    )
                # The custodian has no encryption key: admission binds none.
                write = calls.admit_member(address, Role.CUSTODIAN, MemberKind.OPERATOR)
                await tx.send(manifest.ledger_address, write.data)
                out.admitted_now = True
            elif not member.roles & Role.CUSTODIAN or member.status != MemberStatus.ACTIVE:
                raise NodeError(
                    f"custodian {address} is a member without an active CUSTODIAN role "
                    f"(roles {int(member.roles)}, status {member.status.name}); "
                    "the governor must fix it (setRoles), and the authority that suspended it "
                    "lift the suspension (reinstateMember)"
                )
            balance = int(await rpc.call("eth_getBalance", [address, "latest"]), 16)
            if fund and tx is not None and balance < CUSTODIAN_MIN_WEI:
                await tx.send(address, b"", value=CUSTODIAN_FUNDING_WEI - balance)
                out.funded_wei = CUSTODIAN_FUNDING_WEI - balance
            elif not fund and balance == 0:
                price = int(await rpc.call("eth_gasPrice"), 16)
                if price > 0:
                    out.warnings.append(
                        f"custodian {address} has no balance and gas costs {price} wei: "
                        "fund it, or relayed calls will fail"
                    )

    asyncio.run(run())
    return out


# ---- database vs chain -----------------------------------------------------------------

#: (table, block column, tx hash column) of rows the service stores only once confirmed.
_RECORDED = (
    ("api_schemas", "block", "tx_hash"),
    ("api_assets", "anchor_block", "anchor_tx"),
    ("api_grants", "block", "tx_hash"),
    ("api_member_keys", "updated_block", None),
)


def chain_vs_database(rpc: RpcClient, database_url: str, *, newest: int = 3) -> dict[str, Any]:
    """Compare what the database recorded as confirmed with what the chain holds now.

    Checks the indexer cursor (last indexed block at or below the head, same block hash)
    and, for the service's tables, the highest recorded block and the receipts of the
    newest recorded transactions. ``problems`` is empty when they agree.
    """
    head = int(rpc.call("eth_blockNumber"), 16)
    problems: list[str] = []
    report: dict[str, Any] = {"head": head, "last_indexed": None, "last_recorded": None}
    engine = sa.create_engine(database_url)
    try:
        try:
            tables = set(sa.inspect(engine).get_table_names())
        except sa.exc.SQLAlchemyError as exc:
            raise NodeError(f"database {redact_url(database_url)} unreachable: {exc}") from exc
        with engine.connect() as conn:
            if "indexer_cursor" in tables:
                row = conn.execute(
                    sa.text("SELECT last_block, last_block_hash FROM indexer_cursor WHERE id = 1")
                ).first()
                if row is not None and row[1]:
                    last, last_hash = int(row[0]), str(row[1])
                    report["last_indexed"] = last
                    if last > head:
                        problems.append(
                            f"the index reached block {last}, the chain's head is {head}"
                        )
                    else:
                        block = rpc.call("eth_getBlockByNumber", [hex(last), False])
                        if block is None or block.get("hash") != last_hash:
                            problems.append(
                                f"block {last} on chain is not the block the index recorded"
                            )
            recorded = 0
            for table, block_col, tx_col in _RECORDED:
                if table not in tables:
                    continue
                top = conn.execute(sa.text(f"SELECT MAX({block_col}) FROM {table}")).scalar()  # noqa: S608
                if top is not None:
                    recorded = max(recorded, int(top))
                if tx_col is None:
                    continue
                rows = conn.execute(
                    sa.text(
                        f"SELECT {tx_col} FROM {table} WHERE {tx_col} IS NOT NULL "  # noqa: S608
                        f"ORDER BY {block_col} DESC LIMIT {int(newest)}"
                    )
                ).all()
                for (tx_hash,) in rows:
                    if rpc.call("eth_getTransactionReceipt", [tx_hash]) is None:
                        problems.append(
                            f"{table} records transaction {tx_hash}, the chain has none"
                        )
            report["last_recorded"] = recorded or None
            if recorded > head:
                problems.append(
                    f"the database recorded block {recorded}, the chain's head is {head}"
                )
    finally:
        engine.dispose()
    report["problems"] = problems
    report["ok"] = not problems
    return report


def check_chain_not_behind(rpc_url: str, database_url: str, s: LedgerSettings) -> dict[str, Any]:
    with RpcClient(rpc_url, timeout=s.rpc_timeout, retries=s.rpc_retries) as rpc:
        report = chain_vs_database(rpc, database_url)
    if report["problems"]:
        raise ChainBehindDatabaseError(report["problems"])
    return report


def restore_lost_chain(
    chain_url: str, database_url: str, manifest: Manifest, s: LedgerSettings
) -> dict[str, Any]:
    """Re-submit what the service journaled and the chain lost, then re-index the tail.

    The API journals every raw transaction before broadcasting it; the same bytes give
    the same hashes (and grant ids) again. The index treats the lost tail like a re-org
    and rolls back to the last block both agree on before indexing the restored blocks.
    Anything that cannot be restored is a :class:`ChainBehindDatabaseError` (refuse).
    """
    # Lazy: ledger must not import api at module import time.
    from api.journal import ResubmitError, TxJournal, http_rpc, resubmit
    from ledger.indexer import Indexer, IndexerError

    engine = sa.create_engine(database_url)
    try:
        if "api_tx_journal" not in set(sa.inspect(engine).get_table_names()):
            raise ChainBehindDatabaseError(["no transaction journal to re-submit from"])
        rpc, close = http_rpc(chain_url, timeout=s.rpc_timeout)
        try:
            report = resubmit(TxJournal(engine), rpc, timeout=max(10.0, s.rpc_timeout))
        except ResubmitError as exc:
            raise ChainBehindDatabaseError([str(exc)]) from exc
        finally:
            close()
        indexer = Indexer(
            rpc_url=chain_url,
            ledger_address=manifest.ledger_address,
            engine=engine,
            start_block=manifest.deploy_block,
            confirmations=s.confirmations,
        )
        try:
            indexer.sync_once()
        except IndexerError as exc:
            raise ChainBehindDatabaseError(
                [f"the index cannot follow the restored chain: {exc}"]
            ) from exc
        finally:
            indexer.close()
    finally:
        engine.dispose()
    return report.as_dict()


# ---- the API child ---------------------------------------------------------------------


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


def start_api(
    *,
    host: str,
    port: int,
    env_overrides: dict[str, str],
    log_path: Path,
    stop: StopFlag,
    timeout: float = 90.0,
) -> ApiProcess:
    """``python -m api`` with the node's settings in its environment; waits for /readyz."""
    env = {**os.environ, **env_overrides}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api", "--host", host, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=parent_death_signal(),
        )
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


# ---- commands --------------------------------------------------------------------------


def _print(manifest: Manifest, rpc_url: str, deployed: bool) -> None:
    typer.echo(f"rpc url    {rpc_url}")
    typer.echo(f"chain id   {manifest.chain_id}")
    typer.echo(
        f"ledger     {manifest.ledger_address} ({'deployed now' if deployed else 'reused'}, "
        f"block {manifest.deploy_block})"
    )
    typer.echo(f"governor   {manifest.governor}")


def _fail(exc: Exception, code: int = EXIT_ERROR) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=code)


def _explain_missing_code(exc: CodeMismatchError, embedded: bool, data_dir: Path) -> NodeError:
    if embedded and "no code" in str(exc):
        return ChainBehindDatabaseError(
            [
                f"the embedded chain has no ledger code at the manifest's address ({exc}); "
                f"its state file {data_dir / CHAIN_DIR / 'anvil-state.json'} predates the "
                "deployment"
            ]
        )
    return NodeError(str(exc))


@app.command()
def up(
    data_dir: DataDir = None,
    rpc_url: RpcUrl = None,
    database_url: DatabaseUrl = None,
    api_host: Annotated[str | None, typer.Option(help="default: DATASAFE_API_HOST")] = None,
    api_port: Annotated[int | None, typer.Option(help="default: DATASAFE_API_PORT or 8700")] = None,
) -> None:
    """Start chain, ledger, custodian, database, API and indexer; stay until Ctrl-C / SIGTERM."""
    s = _settings(data_dir)
    root = s.data_dir.resolve()
    stop = StopFlag()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with data_dir_lock(root):
            _run(
                s.model_copy(update={"data_dir": root}),
                stop,
                rpc_url,
                database_url,
                api_host,
                api_port,
            )
    except ChainBehindDatabaseError as exc:
        raise _fail(exc, EXIT_CHAIN_BEHIND) from exc
    except LedgerError as exc:
        raise _fail(exc) from exc
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _run(
    s: LedgerSettings,
    stop: StopFlag,
    rpc_option: str | None,
    database_option: str | None,
    api_host: str | None,
    api_port: int | None,
) -> None:
    root = s.data_dir
    stale = read_run_file(root)
    for what in stop_orphans(root, stale):
        typer.echo(f"stopped {what} left by a previous run")
    # Written again with the children's pids once everything is up.
    _write_private(root / RUN_FILE, json.dumps({"pid": os.getpid(), "starting": True}) + "\n")

    external = _external_rpc(s, rpc_option)
    database_url = _database_url(root, database_option)
    host = api_host or _api_env("host") or "127.0.0.1"
    port = api_port or int(_api_env("port") or 8700)
    custodian_key, key_source = _custodian_key(root)
    custodian = Account.from_key(custodian_key).address
    chain: EmbeddedChain | None = None
    api: ApiProcess | None = None
    try:
        if external is None:
            chain = EmbeddedChain(
                state_dir=root / CHAIN_DIR,
                port=s.anvil_port,
                chain_id=s.chain_id,
                block_time=s.block_time,
                state_interval=s.state_interval,
                anvil_path=s.anvil_path,
                die_with_parent=True,
            ).start()
            chain_url = chain.url
            governor: Sender | None = _embedded_sender(s)
        else:
            chain_url = external
            try:
                governor = sender_from_settings(s)
            except ConfigurationError:
                governor = None
        try:
            if governor is None:
                manifest, deployed = Manifest.load(s.resolved_manifest_path), False
                with RpcClient(chain_url, timeout=s.rpc_timeout, retries=s.rpc_retries) as rpc:
                    verify_manifest(rpc, manifest)
            else:
                manifest, deployed = ensure_deployed(chain_url, s, governor)
        except CodeMismatchError as exc:
            raise _explain_missing_code(exc, external is None, root) from exc
        except ManifestNotFoundError as exc:
            raise NodeError(
                f"{exc}; deploying needs a governor key (DATASAFE_LEDGER_PRIVATE_KEY / "
                "_KEYSTORE_PATH / _NODE_ACCOUNT)"
            ) from exc
        setup = ensure_custodian(chain_url, manifest, custodian, s, governor, fund=external is None)
        try:
            consistency = check_chain_not_behind(chain_url, database_url, s)
        except ChainBehindDatabaseError:
            typer.echo("the chain is behind the database (lost blocks): re-submitting", err=True)
            restored = restore_lost_chain(chain_url, database_url, manifest, s)
            typer.echo(
                f"chain behind the database: re-submitted {restored['resubmitted']} journaled "
                f"transaction(s) ({restored['already_mined']} were still on chain, "
                f"{restored['dropped']} never mined were dropped)"
            )
            consistency = check_chain_not_behind(chain_url, database_url, s)
        blob_dir = Path(_api_env("blob_dir") or root / BLOB_DIR)
        env = {
            "DATASAFE_API_RPC_URL": chain_url,
            "DATASAFE_API_MANIFEST_PATH": str(s.resolved_manifest_path.resolve()),
            "DATASAFE_API_DATABASE_URL": database_url,
            "DATASAFE_API_BLOB_DIR": str(blob_dir),
            "DATASAFE_API_CUSTODIAN_KEY": custodian_key,
            "DATASAFE_API_RUN_INDEXER": "true",
            "DATASAFE_API_HOST": host,
            "DATASAFE_API_PORT": str(port),
        }
        if not _api_env("confirmations"):
            env["DATASAFE_API_CONFIRMATIONS"] = str(s.confirmations)
        api_log = root / LOG_DIR / "api.log"
        api = start_api(host=host, port=port, env_overrides=env, log_path=api_log, stop=stop)
        info: dict[str, Any] = {
            "pid": os.getpid(),
            "data_dir": str(root),
            "embedded": external is None,
            "rpc_url": chain_url,
            "anvil_pid": chain.pid if chain else None,
            "api_pid": api.proc.pid,
            "api_url": api.url,
            "api_port": port,
            "database_url": database_url,
            "manifest": str(s.resolved_manifest_path.resolve()),
            "started_at": int(time.time()),
            "api_restarts": 0,
            "api_last_exit": None,
        }
        # The database URL may carry a password: the run file is private.
        _write_private(root / RUN_FILE, json.dumps(info, indent=2) + "\n")
        _print_up(
            s,
            manifest,
            chain,
            chain_url,
            deployed,
            setup,
            key_source,
            database_url,
            blob_dir,
            api,
            consistency,
        )
        typer.echo("running; Ctrl-C to stop")
        supervisor = ApiSupervisor()
        while not stop.wait(0.5):
            if chain is not None and (chain.proc is None or chain.proc.poll() is not None):
                raise NodeError(f"anvil exited unexpectedly (see {root / CHAIN_DIR / 'anvil.log'})")
            if api.proc.poll() is None:
                continue
            # The API died (a crash, a kill): the chain and the database are fine, so only the
            # API is restarted, after a backoff that grows while it keeps dying.
            delay = supervisor.crashed(api.proc.returncode)
            typer.echo(
                f"the API exited unexpectedly with code {api.proc.returncode} (see {api.log}); "
                f"restart {supervisor.restarts} in {delay:g}s",
                err=True,
            )
            info.update(supervisor.as_run_info())
            _write_private(root / RUN_FILE, json.dumps(info, indent=2) + "\n")
            if stop.wait(delay):
                break
            env["DATASAFE_API_SUPERVISOR_RESTARTS"] = str(supervisor.restarts)
            try:
                api = start_api(
                    host=host, port=port, env_overrides=env, log_path=api_log, stop=stop
                )
            except NodeError as exc:
                if stop.is_set():
                    break
                typer.echo(f"the API did not come back: {exc}", err=True)
                continue  # its process is gone: the next turn backs off further
            supervisor.started()
            info.update(api_pid=api.proc.pid, **supervisor.as_run_info())
            _write_private(root / RUN_FILE, json.dumps(info, indent=2) + "\n")
            typer.echo(f"the API is back (pid {api.proc.pid}, restart {supervisor.restarts})")
        typer.echo("stopping: API, then chain")
    finally:
        # API first (its lifespan stops the indexer and the access batcher), then anvil,
        # which writes its state on SIGTERM.
        if api is not None:
            api.stop()
        if chain is not None:
            chain.stop()
        with contextlib.suppress(FileNotFoundError):
            (root / RUN_FILE).unlink()
    typer.echo("stopped")


def _print_up(
    s: LedgerSettings,
    manifest: Manifest,
    chain: EmbeddedChain | None,
    chain_url: str,
    deployed: bool,
    setup: CustodianSetup,
    key_source: str,
    database_url: str,
    blob_dir: Path,
    api: ApiProcess,
    consistency: dict[str, Any],
) -> None:
    root = s.data_dir
    what = (
        f"embedded anvil (state {root / CHAIN_DIR / 'anvil-state.json'}, "
        f"written every {s.state_interval}s and on stop)"
        if chain is not None
        else "external node"
    )
    typer.echo(f"data dir   {root}")
    typer.echo(f"chain      {what}")
    _print(manifest, chain_url, deployed)
    typer.echo(f"head block {consistency['head']}")
    notes = []
    if setup.admitted_now:
        notes.append("admitted now")
    if setup.funded_wei:
        notes.append(f"funded {setup.funded_wei / 10**18:g} ETH")
    typer.echo(
        f"custodian  {setup.address} ({', '.join(notes) or 'already admitted'}; key {key_source})"
    )
    for warning in setup.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"manifest   {s.resolved_manifest_path.resolve()}")
    typer.echo(f"database   {redact_url(database_url)}")
    typer.echo(f"blobs      {blob_dir}")
    typer.echo(f"api        {api.url}  (docs {api.url}/docs, readiness {api.url}/readyz)")
    logs = [str(api.log)]
    if chain is not None:
        logs.insert(0, str(root / CHAIN_DIR / "anvil.log"))
    typer.echo(f"logs       {', '.join(logs)}")
    typer.echo(f"run file   {root / RUN_FILE}  (`datasafe-node status` / `down` read it)")


@app.command()
def deploy(data_dir: DataDir = None, rpc_url: RpcUrl = None) -> None:
    """Deploy (sender from settings) unless the manifest exists; admit the custodian."""
    s = _settings(data_dir)
    info = read_run_file(s.data_dir) if node_running(s.data_dir) else None
    url = rpc_url or (info or {}).get("rpc_url") or s.rpc_url
    try:
        sender = sender_from_settings(s)
        manifest, deployed = ensure_deployed(url, s, sender)
        key, source = _custodian_key(s.data_dir)
        setup = ensure_custodian(
            url, manifest, Account.from_key(key).address, s, sender, fund=False
        )
    except LedgerError as exc:
        raise _fail(exc) from exc
    _print(manifest, url, deployed)
    state = "admitted now" if setup.admitted_now else "already admitted"
    typer.echo(f"custodian  {setup.address} ({state}; key {source})")
    for warning in setup.warnings:
        typer.echo(f"warning: {warning}", err=True)


@app.command()
def status(
    data_dir: DataDir = None,
    rpc_url: RpcUrl = None,
    database_url: DatabaseUrl = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Chain reachable, manifest matches, database agrees with the chain, API ready, indexer lag.

    Exit 0 when everything checked is fine, 1 otherwise (3: the chain is behind the database).
    """
    s = _settings(data_dir)
    running = node_running(s.data_dir)
    info = (read_run_file(s.data_dir) or {}) if running else {}
    url = rpc_url or info.get("rpc_url") or s.rpc_url
    out: dict[str, Any] = {
        "ok": True,
        "node": {"running": running, "pid": info.get("pid"), "data_dir": str(s.data_dir)},
        "rpc_url": url,
    }
    code = 0
    try:
        manifest = Manifest.load(s.resolved_manifest_path)
        out.update(manifest.model_dump(by_alias=True))
        with RpcClient(url, timeout=s.rpc_timeout, retries=0) as rpc:
            verify_manifest(rpc, manifest)
            out["head"] = int(rpc.call("eth_blockNumber"), 16)
            db_url = database_url or info.get("database_url") or _database_url(s.data_dir, None)
            sqlite_missing = (
                db_url == default_database_url(s.data_dir) and not (s.data_dir / DB_FILE).exists()
            )
            if sqlite_missing:
                out["database"] = {"ok": True, "url": redact_url(db_url), "exists": False}
            else:
                report = chain_vs_database(rpc, db_url)
                out["database"] = {"url": redact_url(db_url), **report}
                if report["problems"]:
                    raise ChainBehindDatabaseError(report["problems"])
    except ChainBehindDatabaseError as exc:
        out.update(ok=False, error=type(exc).__name__, detail=str(exc))
        code = EXIT_CHAIN_BEHIND
    except LedgerError as exc:
        out.update(ok=False, error=type(exc).__name__, detail=str(exc))
        code = EXIT_ERROR
    if code == 0 and out.get("database", {}).get("exists", True) and "database" in out:
        code = _status_blobs(out, database_url or info.get("database_url") or None, s)
    if info.get("api_url"):
        out["api"] = _api_status(str(info["api_url"]))
        out["api"]["restarts"] = int(info.get("api_restarts") or 0)
        out["api"]["last_exit"] = info.get("api_last_exit")
        if not out["api"]["ok"] and code == 0:
            out.update(ok=False, error="ApiNotReady", detail=str(out["api"].get("detail", "")))
            code = EXIT_ERROR
    if as_json:
        typer.echo(json.dumps(out, default=str))
    else:
        _print_status(out)
    if code:
        raise typer.Exit(code=code)


def _api_status(api_url: str) -> dict[str, Any]:
    try:
        resp = httpx.get(api_url + "/readyz", timeout=5.0)
    except httpx.HTTPError as exc:
        return {"ok": False, "url": api_url, "detail": f"unreachable: {exc}"}
    try:
        body = resp.json()
    except ValueError:
        body = {}
    checks = body.get("checks", {}) if isinstance(body, dict) else {}
    indexer = checks.get("indexer", {}) if isinstance(checks, dict) else {}
    return {
        "ok": resp.status_code == 200,
        "url": api_url,
        "readyz": resp.status_code,
        "indexer_last_block": indexer.get("last_block"),
        "indexer_lag": indexer.get("lag"),
        "checks": checks,
        "detail": ""
        if resp.status_code == 200
        else (body.get("detail", "") if body else resp.text),
    }


def _print_status(out: dict[str, Any]) -> None:
    node = out["node"]
    typer.echo(
        f"node       {'running, pid ' + str(node['pid']) if node['running'] else 'not running'}"
    )
    typer.echo(f"data dir   {node['data_dir']}")
    typer.echo(f"rpc url    {out['rpc_url']}")
    if "ledger" in out:
        typer.echo(f"chain id   {out['chainId']}")
        typer.echo(f"ledger     {out['ledger']} (block {out['deployBlock']})")
    if "head" in out:
        typer.echo(f"head block {out['head']}")
    db = out.get("database")
    if db:
        state = "ok" if db.get("ok") else "BEHIND: " + "; ".join(db.get("problems", []))
        extra = "" if db.get("exists", True) else " (not created yet)"
        typer.echo(f"database   {db['url']}{extra} {state}")
    api = out.get("api")
    if api:
        typer.echo(
            f"api        {api['url']} readyz {api.get('readyz', '-')}, indexer last block "
            f"{api.get('indexer_last_block')}, lag {api.get('indexer_lag')}"
        )
        if api.get("restarts"):
            typer.echo(
                f"api        restarted {api['restarts']} time(s) after a crash "
                f"(last exit code {api.get('last_exit')})"
            )
    _print_blobs(out.get("blobs"))
    if out["ok"]:
        typer.echo("status     ok")
    else:
        typer.echo(f"error: {out.get('detail') or out.get('error')}", err=True)


@app.command()
def down(
    data_dir: DataDir = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for a clean stop")] = 60.0,
) -> None:
    """Stop the ``up`` running on the data dir (SIGTERM) and wait until it has stopped."""
    s = _settings(data_dir)
    if not node_running(s.data_dir):
        typer.echo(f"no node running on {s.data_dir}")
        return
    info = read_run_file(s.data_dir)
    pid = info.get("pid") if info else None
    if not isinstance(pid, int):
        raise _fail(NodeError(f"a node holds {s.data_dir / LOCK_FILE} but {RUN_FILE} names no pid"))
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while node_running(s.data_dir):
        if time.monotonic() > deadline:
            raise _fail(NodeError(f"node pid {pid} did not stop within {timeout:g}s"))
        time.sleep(0.1)
    typer.echo(f"stopped node pid {pid}")


@app.command()
def reset(
    data_dir: DataDir = None,
    yes: Annotated[bool, typer.Option("--yes", help="really delete")] = False,
) -> None:
    """Delete the chain state, manifest, SQLite database and blobs (node must be down).

    Keeps the custodian key and the logs. An external database is never touched.
    """
    s = _settings(data_dir)
    root = s.data_dir
    if not yes:
        typer.echo(
            f"refusing to reset {root} without --yes (deletes chain state, manifest, "
            "database and blobs)",
            err=True,
        )
        raise typer.Exit(code=EXIT_USAGE)
    try:
        with data_dir_lock(root):
            removed = _reset(s)
    except LedgerError as exc:
        raise _fail(exc) from exc
    for path in removed:
        typer.echo(f"removed {path}")
    if not removed:
        typer.echo(f"nothing to remove in {root}")
    db_env = _api_env("database_url")
    if db_env and db_env != default_database_url(root):
        typer.echo(f"not touched: external database {redact_url(db_env)}")


def _reset(s: LedgerSettings) -> list[Path]:
    import shutil

    root = s.data_dir.resolve()
    targets = [
        root / CHAIN_DIR,
        root / BLOB_DIR,
        root / RUN_FILE,
        *(root / (DB_FILE + suffix) for suffix in ("", "-wal", "-shm", "-journal")),
    ]
    manifest = s.resolved_manifest_path.resolve()
    if manifest.is_relative_to(root):
        targets.append(manifest)
    removed = []
    for path in targets:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(path)
    return removed


@app.command()
def demo(
    data_dir: DataDir = None,
    api_url: Annotated[
        str | None, typer.Option("--api-url", help="the API (default: from the run file)")
    ] = None,
    rpc_url: RpcUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as JSON")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="continue the newest unfinished run")
    ] = False,
    run: Annotated[
        int | None, typer.Option("--run", min=1, help="continue this run (its number)")
    ] = None,
    stop_after: Annotated[
        int | None, typer.Option("--stop-after", min=1, help="stop after this many steps")
    ] = None,
    write_plaintext: Annotated[
        bool,
        typer.Option(
            "--write-plaintext", help="also write the decrypted records (0600) into the run folder"
        ),
    ] = False,
) -> None:
    """Play the demo story (departments, citizen, bank, notary, regulator) on the running node.

    Example: datasafe-node demo --stop-after 3, later datasafe-node demo --resume
    """
    # Lazy: ledger must not import api at module import time.
    from api.demo import run_demo
    from api.errors import ApiError

    try:
        report = run_demo(
            data_dir,
            api_url=api_url,
            rpc_url=rpc_url,
            quiet=as_json,
            resume=resume,
            run=run,
            stop_after=stop_after,
            write_plaintext=write_plaintext,
        )
    except (ApiError, LedgerError) as exc:
        typer.echo(f"demo failed: {exc}", err=True)
        raise typer.Exit(EXIT_ERROR) from exc
    if as_json:
        typer.echo(json.dumps(report, indent=2))


# ---- blobs: scrub, backup, restore --------------------------------------------------------
# The work is the service's (``python -m api scrub|backup|restore``, run as a child with the
# node's settings, as ``up`` runs the API): the node composes, it does not import the service.


def _status_blobs(out: dict[str, Any], database_url: str | None, s: LedgerSettings) -> int:
    """Add the blob scrub's findings to ``status``; damaged blobs are a failed status."""
    db_url = database_url or _database_url(s.data_dir, None)
    try:
        blobs = blob_health(db_url)
    except sa.exc.SQLAlchemyError as exc:
        out["blobs"] = {"ok": False, "error": str(exc)}
        return 0
    out["blobs"] = blobs
    if blobs["ok"]:
        return 0
    out.update(
        ok=False,
        error="BlobsDamaged",
        detail=f"{blobs['missing']} blob(s) missing, {blobs['corrupt']} corrupt: restore them "
        "from a backup (`datasafe-node restore`), then `datasafe-node scrub`",
    )
    return EXIT_BLOBS_DAMAGED


def blob_health(database_url: str) -> dict[str, Any]:
    """The scrub's findings as the database holds them (``api_scrub_*``; see api/scrub.py)."""
    engine = sa.create_engine(database_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        if "api_scrub_state" not in tables:
            return {"ok": True, "missing": 0, "corrupt": 0, "last_run_at": None}
        with engine.connect() as conn:
            counts = {
                str(p): int(n)
                for p, n in conn.execute(
                    sa.text("SELECT problem, COUNT(*) FROM api_scrub_findings GROUP BY problem")
                )
            }
            state = (
                conn.execute(
                    sa.text(
                        "SELECT last_run_at, last_full_pass_at, full_passes "
                        "FROM api_scrub_state WHERE id = 1"
                    )
                )
                .mappings()
                .first()
            )
    finally:
        engine.dispose()
    missing, corrupt = counts.get("missing", 0), counts.get("corrupt", 0)
    return {
        "ok": missing == 0 and corrupt == 0,
        "missing": missing,
        "corrupt": corrupt,
        "last_run_at": state["last_run_at"] if state else None,
        "last_full_pass_at": state["last_full_pass_at"] if state else None,
        "full_passes": int(state["full_passes"] or 0) if state else 0,
    }


def _print_blobs(blobs: dict[str, Any] | None) -> None:
    if not blobs:
        return
    if "error" in blobs:
        typer.echo(f"blobs      unknown ({blobs['error']})")
        return
    last = blobs.get("last_run_at")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(last)) if last else "never"
    state = "ok" if blobs["ok"] else "DAMAGED"
    typer.echo(
        f"blobs      missing {blobs['missing']}, corrupt {blobs['corrupt']} {state} "
        f"(last scrub {when})"
    )


def _task_env(s: LedgerSettings, rpc_url: str | None, database_url: str | None) -> dict[str, str]:
    """The node's ``DATASAFE_API_*`` settings (no custodian key: the tasks relay nothing)."""
    info = (read_run_file(s.data_dir) or {}) if node_running(s.data_dir) else {}
    env = {
        "DATASAFE_API_DATABASE_URL": database_url
        or info.get("database_url")
        or _database_url(s.data_dir, None),
        "DATASAFE_API_BLOB_DIR": _api_env("blob_dir") or str(s.data_dir / BLOB_DIR),
        "DATASAFE_API_RPC_URL": rpc_url or info.get("rpc_url") or _api_env("rpc_url") or s.rpc_url,
    }
    manifest = s.resolved_manifest_path.resolve()
    if manifest.exists():
        env["DATASAFE_API_MANIFEST_PATH"] = str(manifest)
    return env


def _api_task(args: list[str], env: dict[str, str]) -> int:
    done = subprocess.run(
        [sys.executable, "-m", "api", *args], env={**os.environ, **env}, check=False
    )
    return done.returncode


@app.command()
def scrub(
    data_dir: DataDir = None,
    rpc_url: RpcUrl = None,
    database_url: DatabaseUrl = None,
    once: Annotated[bool, typer.Option("--once", help="one bounded pass, not a round")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Check every blob against its content address and its anchored digest (DB and chain).

    Exit 0 when clean, 4 when blobs are missing or corrupt (also reported by ``status``).
    """
    s = _settings(data_dir)
    args = ["scrub", *(["--once"] if once else []), *(["--json"] if as_json else [])]
    code = _api_task(args, _task_env(s, rpc_url, database_url))
    if code:
        raise typer.Exit(code=code)


@app.command()
def backup(
    directory: Annotated[Path, typer.Argument(help="a new or empty directory")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Copy the database (SQLite online backup / pg_dump) and every blob into DIRECTORY."""
    s = _settings(data_dir)
    code = _api_task(["backup", str(directory.resolve())], _task_env(s, None, database_url))
    if code:
        raise typer.Exit(code=code)
    manifest = s.resolved_manifest_path
    if manifest.exists():
        import shutil

        shutil.copy2(manifest, directory / "manifest.json")


@app.command()
def restore(
    directory: Annotated[Path, typer.Argument(help="a directory written by `backup`")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Put a backup's database and missing blobs back (the node must be stopped), then run
    ``datasafe-node scrub``. Revocations made since the backup are shredded again when the
    indexer re-reads them."""
    s = _settings(data_dir)
    try:
        env = _task_env(s, None, database_url)
        with data_dir_lock(s.data_dir):
            code = _api_task(["restore", str(directory.resolve())], env)
    except LedgerError as exc:
        raise _fail(exc) from exc
    if code:
        raise typer.Exit(code=code)


def main() -> None:
    restore_recursion_limit()
    app()


if __name__ == "__main__":
    main()
