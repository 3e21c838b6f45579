"""Finding the node, the run folders (state and wallet homes, resumable), and narration."""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from rich.console import Console

from ledger import trust
from ledger.chain import DEV_PRIVATE_KEYS
from ledger.client import sender_from_settings
from ledger.errors import LedgerError
from ledger.manifest import Manifest
from ledger.rpc import RpcClient
from ledger.settings import LedgerSettings, get_settings
from ledger.tx import LocalKeySender, Sender
from node.datadir import node_running, read_run_file
from node.demo.cast import DEMO_DIR, Actor, DemoError, cast
from vault.errors import VaultError
from vault.keyfile import open_private_key, seal_private_key
from vault.keys import EncryptionKeyPair

# ---- finding the node -------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    api_url: str
    rpc_url: str
    data_dir: Path
    embedded: bool


def find_node(
    data_dir: Path | None = None, api_url: str | None = None, rpc_url: str | None = None
) -> tuple[Target, LedgerSettings]:
    """The running node: from the data dir's run file unless both URLs are given."""
    s = get_settings()
    if data_dir is not None:
        s = s.model_copy(update={"data_dir": data_dir})
    info = read_run_file(s.data_dir) if node_running(s.data_dir) else None
    if info is not None and info.get("starting"):
        raise DemoError(f"the node on {s.data_dir} is still starting; try again in a moment")
    if info is None and api_url is None:
        raise DemoError(
            f"no node is running on {s.data_dir}: start one with `make up` "
            "(or `datasafe-node up`), or pass --api-url"
        )
    info = info or {}
    api = (api_url or str(info.get("api_url", ""))).rstrip("/")
    rpc = rpc_url or info.get("rpc_url") or (s.rpc_url if "rpc_url" in s.model_fields_set else None)
    if not rpc:
        raise DemoError(
            "the chain's RPC URL is unknown: pass --rpc-url or set DATASAFE_LEDGER_RPC_URL"
        )
    try:
        ready = httpx.get(f"{api}/readyz", timeout=10)
    except httpx.HTTPError as exc:
        raise DemoError(f"the API at {api} does not answer ({exc}); is the node running?") from exc
    if ready.status_code != 200:
        raise DemoError(f"the API at {api} is not ready ({ready.status_code}: {ready.text[:200]})")
    embedded = bool(info.get("embedded", False))
    return Target(api, str(rpc), s.data_dir, embedded), s


def pin_for(target: Target, rpc: RpcClient, hint: str) -> trust.PinnedDeployment:
    """The node's manifest when the demo runs beside it; else what the chain shows at ``hint``."""
    path = get_settings().model_copy(update={"data_dir": target.data_dir}).resolved_manifest_path
    if path.exists():
        pin = trust.PinnedDeployment.from_manifest(Manifest.load(path), rpc)
    else:
        pin = trust.read_deployment(rpc, hint)
    trust.verify_deployment(rpc, pin)
    return pin


def governor_sender(s: LedgerSettings, embedded: bool) -> Sender:
    """The bureau's key: from settings, else (embedded dev chain only) anvil's first dev key."""
    try:
        return sender_from_settings(s)
    except LedgerError:
        if embedded:
            return LocalKeySender.from_key(DEV_PRIVATE_KEYS[0])
        raise DemoError(
            "against an external chain the governor key must come from the ledger settings "
            "(DATASAFE_LEDGER_PRIVATE_KEY, _KEYSTORE_PATH or _NODE_ACCOUNT)"
        ) from None


def next_run(data_dir: Path) -> tuple[int, Path]:
    """A new run number and its export folder (``<data dir>/demo/run-N``, owner-only)."""
    root = data_dir / DEMO_DIR
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    run = 1 + max((int(p.name[4:]) for p in root.glob("run-*") if p.name[4:].isdigit()), default=0)
    while True:
        folder = root / f"run-{run}"
        try:
            folder.mkdir(mode=0o700)
            os.chmod(folder, 0o700)  # whatever the umask
            return run, folder
        except FileExistsError:  # another demo took it
            run += 1


#: The story's steps in order (``Demo`` methods); a run's state names those completed.
STEPS = (
    "admit",
    "issue",
    "loan",
    "notary",
    "correct",
    "sealed",
    "claim",
    "recall",
    "retention",
    "regulator",
    "oversight",
)
STATE_FILE = "state.json"
#: Runs made before wallet homes kept every key in this one file (read to resume them).
MEMBERS_FILE = "members.json"
#: Each actor's wallet home (``datasafe`` layout) inside the run folder.
WALLETS_DIR = "wallets"
#: Decrypted records, only with ``--write-plaintext``.
PLAINTEXT_DIR = "plaintext"
#: The demo wallets' passphrase. Public on purpose: these are demo identities on a demo
#: chain; what it shows is the format (keys encrypted at rest), not a secret.
DEMO_PASSPHRASE = "datasafe-demo"  # noqa: S105
#: scrypt work factor of the demo wallets (real wallets use 262144; the demo makes 11 keys).
DEMO_SCRYPT_N = 2**14


def write_atomic(path: Path, data: Any, *, mode: int = 0o600) -> None:
    """Write JSON to ``path`` so a reader (or a crash) sees the old file or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def save_members(folder: Path, members: dict[str, Actor]) -> None:
    """Each actor's keys in a wallet home of its own, encrypted as the ``datasafe`` wallet
    encrypts them (resuming opens them with :data:`DEMO_PASSPHRASE`)."""
    for name, a in members.items():
        home = private_dir(folder / WALLETS_DIR / name)
        profile = private_dir(home / "profiles" / name)
        key = bytes.fromhex(a.key.removeprefix("0x"))
        keystore = Account.encrypt(key, DEMO_PASSPHRASE, kdf="scrypt", iterations=DEMO_SCRYPT_N)
        sealed = seal_private_key(a.enc, DEMO_PASSPHRASE, a.address, n=DEMO_SCRYPT_N)
        write_atomic(profile / "keystore.json", dict(keystore))
        write_atomic(
            profile / "enc-keys.json",
            {
                "keys": [
                    {
                        "digest": a.enc.digest().hex(),
                        "suite": int(a.enc.suite),
                        "public_key": a.enc.public_key.to_bytes().hex(),
                        "created": int(time.time()),
                        "current": True,
                        "registered_block": None,
                        "blob": sealed,
                    }
                ]
            },
        )
        write_atomic(
            profile / "profile.json",
            {
                "name": name,
                "address": a.address,
                "kind": a.kind.name.lower(),
                "label": a.label,
                "created": int(time.time()),
            },
        )
        write_atomic(home / "config.json", {"default": name})


def load_members(folder: Path, run: int) -> dict[str, Actor]:
    if not (folder / WALLETS_DIR).is_dir() and (folder / MEMBERS_FILE).exists():
        return _load_members_file(folder, run)
    members = cast(run)
    for name, actor in members.items():
        profile = folder / WALLETS_DIR / name / "profiles" / name
        try:
            keystore = json.loads((profile / "keystore.json").read_text())
            stored = json.loads((profile / "enc-keys.json").read_text())["keys"]
            actor.key = "0x" + bytes(Account.decrypt(keystore, DEMO_PASSPHRASE)).hex()
            current = next(k for k in stored if k.get("current"))
            actor.enc = open_private_key(
                {**current["blob"], "digest": current["digest"]}, DEMO_PASSPHRASE, actor.address
            )
        except (OSError, ValueError, KeyError, StopIteration, VaultError) as exc:
            raise DemoError(
                f"run {run} cannot be resumed: the wallet of {name} in {profile}: {exc}"
            ) from exc
    return members


def _load_members_file(folder: Path, run: int) -> dict[str, Actor]:
    """A run started before wallet homes (plain ``members.json``)."""
    try:
        saved = json.loads((folder / MEMBERS_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise DemoError(f"run {run} cannot be resumed: {folder / MEMBERS_FILE}: {exc}") from exc
    members = cast(run)
    for name, actor in members.items():
        if name not in saved:
            raise DemoError(f"run {run} cannot be resumed: no key for {name} in {MEMBERS_FILE}")
        actor.key = saved[name]["key"]
        actor.enc = EncryptionKeyPair.from_private_bytes(base64.b64decode(saved[name]["enc"]))
    return members


def load_state(folder: Path, run: int) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads((folder / STATE_FILE).read_text())
    except FileNotFoundError:
        raise DemoError(f"run {run} has no {STATE_FILE}: it cannot be resumed") from None
    except (OSError, ValueError) as exc:
        raise DemoError(f"run {run}: {folder / STATE_FILE} is unreadable: {exc}") from exc
    return state


def resumable_run(data_dir: Path, run: int | None) -> tuple[int, Path]:
    """Run ``run``'s folder, or the newest run not yet complete (``--resume``)."""
    root = data_dir / DEMO_DIR
    if run is not None:
        folder = root / f"run-{run}"
        if not folder.is_dir():
            raise DemoError(f"there is no demo run {run} in {root}")
        return run, folder
    runs = sorted(
        (int(p.name[4:]) for p in root.glob("run-*") if p.name[4:].isdigit()), reverse=True
    )
    for n in runs:
        folder = root / f"run-{n}"
        try:
            state = json.loads((folder / STATE_FILE).read_text())
        except (OSError, ValueError):
            continue
        if list(state.get("completed", [])) != list(STEPS):
            return n, folder
    raise DemoError(f"no unfinished demo run to resume in {root}; run `datasafe-node demo`")


# ---- narration --------------------------------------------------------------------------


class Narrator:
    """Prints each step in plain words (Rich), or stays quiet for ``--json``."""

    def __init__(self, quiet: bool) -> None:
        self.console = Console(highlight=False, soft_wrap=True) if not quiet else None
        self.steps: list[dict[str, Any]] = []
        #: note shown -> note saved, for notes that show decrypted values
        self._redacted: dict[str, str] = {}

    def saved_steps(self, *, plaintext: bool) -> list[dict[str, Any]]:
        """The narration as it may be written to disk: decrypted values left out unless
        ``plaintext``."""
        if plaintext:
            return self.steps
        return [{**s, "notes": [self._redacted.get(n, n) for n in s["notes"]]} for s in self.steps]

    def step(self, title: str) -> None:
        self.steps.append({"step": title, "notes": []})
        if self.console:
            self.console.print(f"\n[bold cyan]{len(self.steps):>2}. {title}[/]")

    def say(self, text: str, *, ok: bool | None = None, redacted: str | None = None) -> None:
        """Print a note; ``redacted`` is the note without decrypted values (what is saved)."""
        if redacted is not None:
            self._redacted[text] = redacted
        if self.steps:
            self.steps[-1]["notes"].append(text)
        if self.console:
            mark = {True: "[green]✓[/] ", False: "[red]✗[/] ", None: "   "}[ok]
            self.console.print(f"   {mark}{text}")
