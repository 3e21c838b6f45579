"""``datasafe-node demo``: the whole data-authorisation story, with real keys, on a running node.

Client side only: every actor holds its own fresh account key and HPKE encryption key,
signs its own requests (:class:`api.client.DataSafeClient`), transactions and consents
(:mod:`ledger.eip712`), and seals or opens data itself (:mod:`vault`). The service
only relays and stores ciphertext; the chain is read directly to check what the
service answers. The one privileged key is the governor's (the "big-data bureau"),
which admits the members: anvil's first dev key on the embedded chain, the ledger
settings' sender (``DATASAFE_LEDGER_PRIVATE_KEY`` / ``_KEYSTORE_PATH``) otherwise.

Every run makes new members (their names carry the run number), so the demo can be
played any number of times on the same node. :func:`run_demo` returns a JSON-able
report of every outcome (``datasafe-node demo --json`` prints it); the end-to-end test
asserts it and recounts the chain's events itself.

Secrets are kept as a wallet keeps them. Each actor has a wallet home of its own,
``<run folder>/wallets/<role>`` (mode 0700, the ``datasafe`` wallet's layout: a V3 keystore
for the account key and the passphrase-sealed HPKE key, files 0600), locked with the public
demo passphrase :data:`DEMO_PASSPHRASE` — so ``DATASAFE_HOME=<that dir> datasafe ...`` opens
it. Nothing decrypted is written to disk unless asked (``--write-plaintext``: the opened
records go to ``<run folder>/plaintext``, 0600); the run folder itself is 0700.

A run is resumable: its folder keeps the wallet homes and ``state.json`` (the completed
steps, the report so far without decrypted values, and the sealed assets), rewritten
atomically after each step's effects are confirmed on chain. ``datasafe-node demo --resume``
(or ``--run N``) continues the run from its first incomplete step with the same members;
``--stop-after K`` stops a run after K steps.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.crypto import keccak
from rich.console import Console

from api.bank import pull_verified
from api.client import (
    DataSafeClient,
    DataSafeProblemError,
    key_binding_body,
    verified_member_key,
)
from api.errors import ApiError
from ledger import trust
from ledger.abi import ledger_abi
from ledger.audit import chain_rows
from ledger.calls import LedgerCalls, Write, grant_id_of
from ledger.chain import DEV_PRIVATE_KEYS
from ledger.client import LedgerClient, sender_from_settings
from ledger.eip712 import Domain, sign_access_request, sign_grant, sign_status_change
from ledger.errors import LedgerError
from ledger.keybinding import KeyBindingError
from ledger.manifest import Manifest
from ledger.models import AccessRequest, AssetStatus, GrantStatus, GrantTerms, MemberKind, Role
from ledger.node import node_running, read_run_file
from ledger.rpc import AsyncRpcClient, RpcClient
from ledger.settings import LedgerSettings, get_settings
from ledger.trace import TraceFilter
from ledger.tx import AsyncTxManager, LocalKeySender, Sender
from vault.errors import VaultError
from vault.keyfile import open_private_key, seal_private_key
from vault.keys import EncryptionKeyPair, PublicEncryptionKey
from vault.packages import build_key_package
from vault.sealing import SealedAsset, open_asset, seal_asset

#: Where each run keeps its exports (inside the node's data dir).
DEMO_DIR = "demo"
#: Gas money the governor gives members that send their own transactions (dev chain).
MEMBER_FUNDING_WEI = 10**18
#: Purpose codes of the off-chain catalogue (api.terms.PURPOSES).
PURPOSE_LOAN = 1
PURPOSE_NOTARIAL = 3
SEVEN_DAYS = 7 * 86_400
LOAN_USES = 3
TRACE_WAIT_SECONDS = 30.0


class DemoError(ApiError):
    """The demo cannot run (no node, node not ready) or an outcome differs from the story."""


# ---- the cast and their data ------------------------------------------------------------


@dataclass
class Actor:
    """A member with its own account key and HPKE encryption key, made fresh per run."""

    role_name: str
    label: str
    kind: MemberKind
    roles: Role
    key: str = field(default_factory=lambda: "0x" + secrets.token_bytes(32).hex(), repr=False)
    enc: EncryptionKeyPair = field(default_factory=EncryptionKeyPair.generate, repr=False)

    @property
    def address(self) -> str:
        return str(Account.from_key(self.key).address)


@dataclass(frozen=True)
class Record:
    """A schema and the values a department issues under it."""

    asset: str
    schema: str
    issuer: str
    owner: str
    fields: tuple[tuple[str, bytes], ...]

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.fields]

    def value(self, name: str) -> bytes:
        return dict(self.fields)[name]


def cast(run: int) -> dict[str, Actor]:
    """The members of run ``run``; the governor is not among them (it is the bureau's key)."""
    dept, consumer = Role.ISSUER, Role.CONSUMER
    return {
        a.role_name: a
        for a in (
            Actor("police", f"Public Security Bureau #{run}", MemberKind.DEPARTMENT, dept),
            Actor(
                "housing_fund", f"Housing Provident Fund Centre #{run}", MemberKind.DEPARTMENT, dept
            ),
            Actor(
                "real_estate",
                f"Natural Resources & Real Estate Registration #{run}",
                MemberKind.DEPARTMENT,
                dept,
            ),
            Actor("tax", f"Tax Bureau #{run}", MemberKind.DEPARTMENT, dept),
            Actor(
                "market", f"Market Regulation Administration #{run}", MemberKind.DEPARTMENT, dept
            ),
            Actor("bank", f"City Commercial Bank #{run}", MemberKind.BANK, consumer),
            Actor("notary", f"Notary Public Office #{run}", MemberKind.NOTARY, consumer),
            Actor("insurer", f"Mutual Life Insurance #{run}", MemberKind.INSURER, consumer),
            Actor("regulator", f"Financial Regulator #{run}", MemberKind.REGULATOR, Role.REGULATOR),
            Actor("citizen", f"Li Na #{run}", MemberKind.INDIVIDUAL, Role.SUBJECT),
            Actor("enterprise", f"Hengda Tea Co. #{run}", MemberKind.ENTERPRISE, Role.SUBJECT),
        )
    }


def records(run: int) -> list[Record]:
    """What the departments hold. The tax record's income is wrong on purpose (dispute)."""
    return [
        Record(
            "identity",
            "resident identity",
            "police",
            "citizen",
            (
                ("name", f"Li Na #{run}".encode()),
                ("id_number", b"330106199203154527"),
                ("birth_date", b"1992-03-15"),
                ("address", b"88 West Lake Road, Hangzhou"),
            ),
        ),
        Record(
            "housing_fund",
            "housing provident fund account",
            "housing_fund",
            "citizen",
            (
                ("account_no", b"HZ-GJJ-0091827"),
                ("employer", b"Zhejiang Digital Co."),
                ("monthly_contribution", b"3600"),
                ("balance", b"186400"),
            ),
        ),
        Record(
            "real_estate",
            "real estate title",
            "real_estate",
            "citizen",
            (
                ("certificate_no", b"ZJ(2021)HZ-0045512"),
                ("owner_name", f"Li Na #{run}".encode()),
                ("property_address", b"Unit 1502, 7 Qianjiang Road, Hangzhou"),
                ("area_m2", b"89.6"),
                ("encumbrances", b"none"),
            ),
        ),
        Record(
            "tax",
            "individual income tax record",
            "tax",
            "citizen",
            (
                ("tax_id", b"330106199203154527"),
                ("year", b"2025"),
                ("annual_income", b"312000"),  # wrong: should be 213000
                ("tax_paid", b"14630"),
            ),
        ),
        Record(
            "licence",
            "business licence",
            "market",
            "enterprise",
            (
                ("credit_code", b"91330106MA2H7XQ81K"),
                ("company_name", f"Hengda Tea Co. #{run}".encode()),
                ("legal_representative", b"Zhou Ming"),
                ("registered_capital", b"5000000 CNY"),
                ("business_scope", b"tea processing and sales"),
            ),
        ),
    ]


CORRECTED_INCOME = b"213000"
#: The loan application: three fields of two assets.
LOAN_FIELDS = {"identity": ["name", "id_number"], "housing_fund": ["monthly_contribution"]}
NOTARY_FIELDS = ["owner_name", "property_address", "area_m2"]


def fields_hash(names: list[str]) -> bytes:
    """The schema's on-chain ``fieldsHash``: keccak256(abi.encode(string[] fields))."""
    return keccak(abi_encode(["string[]"], [names]))


def mask_of(schema: list[str], names: list[str]) -> int:
    return sum(1 << schema.index(n) for n in names)


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _b32(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


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


def _pin_for(target: Target, rpc: RpcClient, hint: str) -> trust.PinnedDeployment:
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
STEPS = ("admit", "issue", "loan", "notary", "correct", "regulator")
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


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def save_members(folder: Path, members: dict[str, Actor]) -> None:
    """Each actor's keys in a wallet home of its own, encrypted as the ``datasafe`` wallet
    encrypts them (resuming opens them with :data:`DEMO_PASSPHRASE`)."""
    for name, a in members.items():
        home = _private_dir(folder / WALLETS_DIR / name)
        profile = _private_dir(home / "profiles" / name)
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


# ---- the scenario -----------------------------------------------------------------------


@dataclass
class Issued:
    record: Record
    sealed: SealedAsset
    schema_fields: list[str]

    @property
    def asset_id(self) -> str:
        return _hex(self.sealed.asset_id)


class Demo:
    def __init__(
        self,
        target: Target,
        governor: Sender,
        run: int,
        folder: Path,
        narrator: Narrator,
        members: dict[str, Actor] | None = None,
        *,
        write_plaintext: bool = False,
    ) -> None:
        self.t = target
        self.write_plaintext = write_plaintext
        self.governor = governor
        self.run = run
        self.folder = folder
        self.n = narrator
        self.cast = members if members is not None else cast(run)
        self.completed: list[str] = []
        self.calls = LedgerCalls(ledger_abi())
        self.abi = ledger_abi()
        self.rpc = RpcClient(target.rpc_url, errors=self.abi.errors)
        with DataSafeClient(target.api_url) as anon:
            info = anon.info()
        # The bank pins the deployment out of band (the node's manifest), never from /v1/info.
        self.pin = _pin_for(target, self.rpc, str(info["ledger_address"]))
        trust.check_hint(self.pin, info.get("chain_id"), info.get("ledger_address"))
        self.chain_id = self.pin.chain_id
        self.ledger_address = self.pin.ledger_address
        self.domain = Domain(self.chain_id, self.ledger_address)
        self.chain = LedgerClient(target.rpc_url, self.ledger_address)
        self.issued: dict[str, Issued] = {}
        self.report: dict[str, Any] = {
            "run": run,
            "api_url": target.api_url,
            "rpc_url": target.rpc_url,
            "chain_id": self.chain_id,
            "ledger_address": self.ledger_address,
            "export_dir": str(folder),
            "members": {},
            "assets": {},
            "grants": {},
            "accesses": [],
            "refusals": {},
        }
        self.first_block = self._head()

    def close(self) -> None:
        self.chain.close()
        self.rpc.close()

    # -- resumable state --

    def save(self) -> None:
        """Record what is done so far (after a step's effects are confirmed on chain)."""
        write_atomic(
            self.folder / STATE_FILE,
            {
                "run": self.run,
                "ledger_address": self.ledger_address,
                "chain_id": self.chain_id,
                "completed": self.completed,
                "first_block": self.first_block,
                "report": self._saved_report(),
                "narration": self.n.saved_steps(plaintext=self.write_plaintext),
                "issued": {
                    name: base64.b64encode(item.sealed.to_bytes()).decode()
                    for name, item in self.issued.items()
                },
            },
        )

    def _saved_report(self) -> dict[str, Any]:
        """The report as written to disk: no decrypted value unless ``--write-plaintext``."""
        if self.write_plaintext or "correction" not in self.report:
            return self.report
        correction = {k: v for k, v in self.report["correction"].items() if k != "annual_income"}
        return {**self.report, "correction": correction}

    def keep_plaintext(self, name: str, values: dict[str, bytes]) -> None:
        """With ``--write-plaintext`` only: an opened record, owner-only, in ``plaintext/``."""
        if not self.write_plaintext:
            return
        folder = _private_dir(self.folder / PLAINTEXT_DIR)
        write_atomic(
            folder / f"{name}.json", {k: v.decode(errors="replace") for k, v in values.items()}
        )

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a saved state: the same chain, report, assets and completed steps."""
        if str(state.get("ledger_address", "")).lower() != self.ledger_address.lower():
            raise DemoError(
                f"run {self.run} was played on ledger {state.get('ledger_address')}, "
                f"this node serves {self.ledger_address}"
            )
        unknown = [s for s in state["completed"] if s not in STEPS]
        if unknown:
            raise DemoError(f"run {self.run}: unknown steps {unknown} in {STATE_FILE}")
        self.completed = list(state["completed"])
        self.first_block = int(state["first_block"])
        self.report = state["report"]
        self.n.steps = list(state.get("narration", []))
        by_name = {r.asset: r for r in records(self.run)}
        for name, blob in state.get("issued", {}).items():
            sealed = SealedAsset.from_bytes(base64.b64decode(blob))
            self.issued[name] = Issued(by_name[name], sealed, by_name[name].names)

    # -- helpers --

    def _head(self) -> int:
        return int(self.rpc.call("eth_blockNumber"), 16)

    def client(self, who: str) -> DataSafeClient:
        return DataSafeClient(
            self.t.api_url,
            self.cast[who].key,
            chain_id=self.chain_id,
            ledger_address=self.ledger_address,
        )

    def own_tx(self, who: str, write: Write) -> str:
        """The member's own signed ledger transaction, for the service to relay."""
        actor = self.cast[who]
        call = {"from": actor.address, "to": self.ledger_address, "data": _hex(write.data)}
        nonce = int(self.rpc.call("eth_getTransactionCount", [actor.address, "pending"]), 16)
        price = int(self.rpc.call("eth_gasPrice"), 16)
        try:
            gas = int(int(self.rpc.call("eth_estimateGas", [call]), 16) * 1.3)
        except LedgerError:
            gas = 1_000_000  # a revert: the service's pre-flight reports it by name
        tx = {
            "to": self.ledger_address,
            "data": call["data"],
            "gas": gas,
            "gasPrice": price * 2,
            "nonce": nonce,
            "chainId": self.chain_id,
            "value": 0,
        }
        return _hex(bytes(Account.sign_transaction(tx, actor.key).raw_transaction))

    def refused(
        self, key: str, call: Callable[[], Any], *, expect: str, what: str
    ) -> dict[str, Any]:
        """Run a call that must be refused with problem ``expect``; record the problem."""
        try:
            call()
        except DataSafeProblemError as exc:
            got = {
                "status": exc.status,
                "code": exc.code,
                "type": exc.problem.get("type"),
                "reason_code": exc.problem.get("reason_code"),
                "detail": exc.detail,
            }
            self.report["refusals"][key] = got
            if exc.code != expect:
                raise DemoError(f"{what}: expected {expect}, got {exc}") from exc
            self.n.say(f"{what}: refused, {exc.status} {exc.code} ({exc.detail})", ok=True)
            return got
        raise DemoError(f"{what}: the service did not refuse (expected {expect})")

    def _balance(self, address: str) -> int:
        return int(self.rpc.call("eth_getBalance", [address, "latest"]), 16)

    # -- the story --

    def admit(self) -> None:
        self.n.step("The big-data bureau (governor) admits the members")
        gov = self.governor.address
        self.n.say(f"governor {gov} (the city big-data bureau)")
        price = int(self.rpc.call("eth_gasPrice"), 16)
        # Re-run after an interruption: members already admitted (and funded) are skipped.
        todo = [a for a in self.cast.values() if not self.chain.get_member(a.address).is_member]
        fund = [
            a
            for a in self.cast.values()
            if a.roles & Role.ISSUER and price > 0 and self._balance(a.address) == 0
        ]

        async def go() -> list[str]:
            async with AsyncRpcClient(self.t.rpc_url, errors=self.abi.errors) as rpc:
                tx = AsyncTxManager(rpc, self.governor, abi=self.abi)
                pending = []
                for a in todo:
                    # Admission binds no key: each member binds its own below.
                    w = self.calls.admit_member(a.address, a.roles, a.kind)
                    pending.append(await tx.submit(self.ledger_address, w.data))
                for a in fund:
                    pending.append(await tx.submit(a.address, b"", value=MEMBER_FUNDING_WEI))
                receipts = await tx.wait_many(pending)
            return [r.tx_hash for r in receipts]

        if todo or fund:
            asyncio.run(go())
        if len(todo) < len(self.cast):
            self.n.say(f"{len(self.cast) - len(todo)} member(s) were already admitted (resumed)")
        for a in self.cast.values():
            m = self.chain.get_member(a.address)
            if not m.has(a.roles):
                raise DemoError(f"{a.label} is not an active member")
            self.report["members"][a.role_name] = {
                "label": a.label,
                "address": a.address,
                "kind": a.kind.name.lower(),
                "roles": int(a.roles),
            }
            self.n.say(f"{a.label}: {a.kind.name.lower()}, {a.address}", ok=True)
        if fund:
            self.n.say(
                "departments got gas money for their own anchor transactions "
                f"({MEMBER_FUNDING_WEI / 10**18:g} ETH each); citizens and institutions got none"
            )
        # Each member binds its own encryption key with its own signature (and a proof of
        # possession); the service relays it as the custodian, so nobody pays gas for it.
        head = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        deadline = int(head["timestamp"], 16) + 3600
        for a in self.cast.values():
            m = self.chain.get_member(a.address)
            body = key_binding_body(
                a.key,
                a.enc,
                chain_id=self.chain.chain_id(),
                ledger=self.ledger_address,
                key_version=m.key_version + 1,
                deadline=deadline,
            )
            if m.enc_key_hash == a.enc.digest():  # bound before an interruption (resumed run)
                del body["binding"]
            with self.client(a.role_name) as c:
                c.put("/v1/members/me/key", body)
            if self.chain.get_member(a.address).enc_key_hash != a.enc.digest():
                raise DemoError(f"{a.label}'s key binding did not reach the chain")
        self.n.say(
            "every member bound its HPKE encryption key with its own signature and a proof of "
            "possession (relayed: no gas), and published it",
            ok=True,
        )

    def issue(self, *, open_safes: bool = True) -> None:
        """Issue every record; ``open_safes=False`` when the owners keep their keys in a wallet."""
        self.n.step("Departments register schemas and issue records into the subjects' safes")
        for rec in records(self.run):
            if rec.asset in self.issued:  # issued before an interruption (resumed run)
                continue
            dept, owner = self.cast[rec.issuer], self.cast[rec.owner]
            schema_id = keccak(f"{rec.schema} {dept.address}".encode())
            with self.client(rec.issuer) as c:
                write = self.calls.register_schema(
                    schema_id, len(rec.names), fields_hash(rec.names)
                )
                c.post(
                    "/v1/schemas",
                    {
                        "schema_id": _hex(schema_id),
                        "name": rec.schema,
                        "fields": rec.names,
                        "raw_transaction": self.own_tx(rec.issuer, write),
                    },
                )
                # The department encrypts to the owner's key as served, checked against the chain.
                owner_key = self._member_key(c, owner.address)
                asset_id = keccak(secrets.token_bytes(32))
                sealed = seal_asset(
                    list(rec.fields), asset_id=asset_id, version=1, owner_key=owner_key
                )
                anchor = self.calls.anchor_asset(
                    asset_id, owner.address, schema_id, sealed.root, sealed.ciphertext_digest
                )
                out = c.post(
                    "/v1/assets",
                    {
                        "sealed": base64.b64encode(sealed.to_bytes()).decode(),
                        "raw_transaction": self.own_tx(rec.issuer, anchor),
                    },
                )
            on_chain = self.chain.get_asset(asset_id)
            if on_chain.root != sealed.root or on_chain.owner != owner.address:
                raise DemoError(f"{rec.asset}: the chain's anchor differs from the sealed asset")
            self.issued[rec.asset] = Issued(rec, sealed, rec.names)
            self.report["assets"][rec.asset] = {
                "asset_id": _hex(asset_id),
                "owner": owner.address,
                "issuer": dept.address,
                "schema_id": _hex(schema_id),
                "version": 1,
                "root": _hex(sealed.root),
                "fields": rec.names,
                "anchor_tx": out["anchor"]["tx_hash"],
            }
            self.save()  # each anchored record is recorded at once (resume skips it)
            self.n.say(
                f"{dept.label} issued the {rec.schema} ({len(rec.names)} fields, sealed to "
                f"{owner.label}'s key) as asset {_hex(asset_id)[:18]}…, root anchored on chain",
                ok=True,
            )
        # The owners open their safes locally and check every field against the chain.
        for who in ("citizen", "enterprise") if open_safes else ():
            mine = [i for i in self.issued.values() if i.record.owner == who]
            for item in mine:
                opened = self._open_own(who, item.asset_id)
                if opened != dict(item.record.fields):
                    raise DemoError(f"{who} could not open {item.record.asset}")
            self.n.say(
                f"{self.cast[who].label} opened {'her' if who == 'citizen' else 'its'} safe "
                f"locally: {len(mine)} record(s), every field proven against the root read "
                "from the chain",
                ok=True,
            )

    def _member_key(self, c: DataSafeClient, address: str) -> PublicEncryptionKey:
        served = c.get(f"/v1/members/{address}")
        try:
            return verified_member_key(self.chain, served)
        except KeyBindingError as exc:
            raise DemoError(f"the key served for {address} is not its own binding: {exc}") from None

    def _open_own(self, who: str, asset_id: str) -> dict[str, bytes]:
        with self.client(who) as c:
            got = c.get(f"/v1/assets/{asset_id}/sealed")
        sealed = SealedAsset.from_bytes(base64.b64decode(got["sealed"]))
        root = self.chain.get_asset(_b32(asset_id)).root
        opened = dict(open_asset(sealed, self.cast[who].enc, expected_root=root).fields)
        self.keep_plaintext(f"{who}-{asset_id}", opened)
        return opened

    def grant(
        self, key: str, asset: str, grantee: str, names: list[str], purpose: int, max_uses: int
    ) -> str:
        item = self.issued[asset]
        citizen = self.cast["citizen"]
        mask = mask_of(item.schema_fields, names)
        now = int(time.time())
        terms = GrantTerms(
            item.sealed.asset_id,
            self.cast[grantee].address,
            purpose,
            mask,
            0,
            now + SEVEN_DAYS,
            max_uses,
        )
        nonce = secrets.randbits(64)
        signed = sign_grant(citizen.key, self.domain, terms, nonce, now + 3600)
        gid = grant_id_of(citizen.address, nonce)
        with self.client("citizen") as c:
            grantee_key = self._member_key(c, self.cast[grantee].address)
            package = build_key_package(
                item.sealed, citizen.enc, grant_id=gid, fields=names, grantee_key=grantee_key
            )
            receipt = c.post(
                "/v1/grants",
                {
                    "terms": {
                        "asset_id": item.asset_id,
                        "grantee": terms.grantee,
                        "purpose": purpose,
                        "fields_mask": mask,
                        "not_before": 0,
                        "expiry": terms.expiry,
                        "max_uses": max_uses,
                    },
                    "grantor": citizen.address,
                    "nonce": str(nonce),
                    "deadline": signed.deadline,
                    "signature": _hex(signed.signature),
                    "key_package": base64.b64encode(package.to_bytes()).decode(),
                },
            )
        if receipt["grant_id"] != _hex(gid):
            raise DemoError(f"the receipt names grant {receipt['grant_id']}, not {_hex(gid)}")
        self.report["grants"][key] = {
            "grant_id": _hex(gid),
            "asset": asset,
            "asset_id": item.asset_id,
            "grantee": terms.grantee,
            "fields": names,
            "fields_mask": mask,
            "purpose": purpose,
            "expiry": terms.expiry,
            "max_uses": max_uses,
            "tx_hash": receipt.get("tx_hash"),
            "terms_text": receipt.get("terms_text"),
        }
        self.n.say(f"consent receipt {_hex(gid)[:18]}…: {receipt.get('terms_text', '')}", ok=True)
        return _hex(gid)

    def _access_body(self, who: str, gid: str, mask: int) -> dict[str, Any]:
        req = AccessRequest(_b32(gid), mask, secrets.randbits(64), int(time.time()) + 600)
        sig = sign_access_request(self.cast[who].key, self.domain, req)
        return {
            "grant_id": gid,
            "fields_mask": mask,
            "nonce": str(req.nonce),
            "deadline": req.deadline,
            "signature": _hex(sig),
        }

    def pull(self, who: str, grant_key: str) -> dict[str, bytes]:
        """Verify, pull, decrypt and check every field against the chain; return the values.

        The one bank-side check (:func:`api.bank.pull_verified`): grant, schema names, the
        access record from the pinned ledger, the anchored root and issuer, all read from
        the chain, not from the service's answer.
        """
        g = self.report["grants"][grant_key]
        gid, mask = g["grant_id"], g["fields_mask"]
        with self.client(who) as c:
            verdict = c.get(f"/v1/grants/{gid}/verify", params={"fields_mask": mask})
            if not verdict["allowed"]:
                raise DemoError(f"{who} verify {gid}: {verdict}")
            try:
                done = pull_verified(
                    c,
                    self.rpc,
                    self.pin,
                    grant_id=gid,
                    key=_b32(self.cast[who].key),
                    ring=self.cast[who].enc,
                )
            except (VaultError, LedgerError) as exc:
                raise DemoError(f"{who} could not verify the pull of {gid}: {exc}") from exc
        values = done.fields
        expected = {n: self.issued[g["asset"]].record.value(n) for n in g["fields"]}
        if values != expected:
            raise DemoError(f"{who} decrypted other values than the department issued")
        pulled: dict[str, Any] = {
            "use": done.use,
            "access": {"tx_hash": done.access.tx_hash, "block": done.access.block_number},
        }
        uses = self.chain.get_grant(_b32(gid)).uses
        self.report["accesses"].append(
            {
                "grant": grant_key,
                "grant_id": gid,
                "by": who,
                "use": pulled["use"],
                "uses_on_chain": uses,
                "tx_hash": pulled["access"]["tx_hash"],
                "block": pulled["access"]["block"],
                "fields": sorted(values),
            }
        )
        shown = ", ".join(f"{k}={v.decode()}" for k, v in values.items())
        said = (
            f"{self.cast[who].label} pulled {g['asset']} (use {pulled['use']} of {g['max_uses']}, "
            f"access tx {pulled['access']['tx_hash'][:18]}…): {{}}; every field proven "
            "against the chain's root and issuer"
        )
        self.n.say(said.format(shown), ok=True, redacted=said.format(", ".join(sorted(values))))
        self.keep_plaintext(f"{who}-{grant_key}", values)
        return values

    def loan(self) -> None:
        self.n.step(
            "The citizen grants the bank three fields of two records for a loan application "
            "(7 days, 3 uses)"
        )
        balance = self._balance(self.cast["citizen"].address)
        for asset, names in LOAN_FIELDS.items():
            self.grant(f"loan_{asset}", asset, "bank", names, PURPOSE_LOAN, LOAN_USES)
        self.report["citizen_balance_at_grant"] = balance
        self.n.say(
            f"she signed the consents (EIP-712) with her own key; the service relayed them — her "
            f"balance is {balance} wei, she paid no gas"
        )

        self.n.step("The bank verifies the grants, pulls the data, decrypts it and checks it")
        for asset in LOAN_FIELDS:
            self.pull("bank", f"loan_{asset}")

        self.n.step("An institution the grant was not made to is refused")
        g = self.report["grants"]["loan_identity"]
        with self.client("insurer") as c:
            body = self._access_body("insurer", g["grant_id"], g["fields_mask"])
            self.refused(
                "insurer_pull",
                lambda: c.post("/v1/access", body),
                expect="not_grantee",
                what=f"{self.cast['insurer'].label} tries to pull with the bank's grant",
            )

        self.n.step("The citizen revokes her consent; the bank's next pull is refused")
        citizen = self.cast["citizen"]
        for asset in LOAN_FIELDS:
            gid = self.report["grants"][f"loan_{asset}"]["grant_id"]
            nonce = self.chain.nonces(citizen.address)
            deadline = int(time.time()) + 3600
            m = sign_status_change(
                citizen.key, self.domain, "RevokeConsent", _b32(gid), nonce, deadline
            )
            with self.client("citizen") as c:
                c.post(
                    f"/v1/grants/{gid}/revoke",
                    {
                        "signer": citizen.address,
                        "deadline": deadline,
                        "signature": _hex(m.signature),
                    },
                )
            status = self.chain.get_grant(_b32(gid)).status
            if status != GrantStatus.REVOKED:
                raise DemoError(f"grant {gid} is {status.name} on chain after the revocation")
            self.n.say(
                f"grant {gid[:18]}… ({asset}) revoked on chain; key package deleted", ok=True
            )
        gid = self.report["grants"]["loan_identity"]["grant_id"]
        mask = self.report["grants"]["loan_identity"]["fields_mask"]
        with self.client("bank") as c:
            verdict = c.get(f"/v1/grants/{gid}/verify", params={"fields_mask": mask})
            self.report["refusals"]["bank_verify_after_revoke"] = verdict
            self.n.say(f"verify now answers: allowed={verdict['allowed']}, {verdict['code']}")
            body = self._access_body("bank", gid, mask)
            self.refused(
                "bank_pull_after_revoke",
                lambda: c.post("/v1/access", body),
                expect="grant_revoked",
                what=f"{self.cast['bank'].label} pulls again",
            )

    def notary(self) -> None:
        self.n.step("The notary office gets a one-time grant for a property notarisation")
        self.grant("notary", "real_estate", "notary", NOTARY_FIELDS, PURPOSE_NOTARIAL, 1)
        self.pull("notary", "notary")
        g = self.report["grants"]["notary"]
        with self.client("notary") as c:
            body = self._access_body("notary", g["grant_id"], g["fields_mask"])
            self.refused(
                "notary_second_pull",
                lambda: c.post("/v1/access", body),
                expect="uses_exhausted",
                what=f"{self.cast['notary'].label} pulls a second time",
            )

    def correct(self) -> None:
        self.n.step("A wrong record is corrected: the citizen disputes, the department issues v2")
        citizen, tax = self.cast["citizen"], self.cast["tax"]
        item = self.issued["tax"]
        opened = self._open_own("citizen", item.asset_id)
        self.n.say(
            f"she reads her tax record: annual_income = {opened['annual_income'].decode()}",
            redacted="she reads her tax record (annual_income is wrong)",
        )
        # Disputing is her own transaction (the contract has no by-signature form for it).
        if int(self.rpc.call("eth_gasPrice"), 16) > 0 and self._balance(citizen.address) == 0:
            self._fund(citizen.address)
            self.n.say("a dispute is her own transaction: the bureau gives her gas money")
        reason = keccak(b"annual income should be 213000, see payslips 2025")
        with self.client("citizen") as c:
            c.post(
                f"/v1/assets/{item.asset_id}/dispute",
                {
                    "raw_transaction": self.own_tx(
                        "citizen", self.calls.dispute_asset(item.sealed.asset_id, reason)
                    )
                },
            )
        disputed = self.chain.get_asset(item.sealed.asset_id).status
        if disputed != AssetStatus.DISPUTED:
            raise DemoError(f"the tax record is {disputed.name} after the dispute")
        self.n.say("the tax record is DISPUTED on chain", ok=True)

        fixed = [
            (n, CORRECTED_INCOME if n == "annual_income" else v) for n, v in item.record.fields
        ]
        new_id = keccak(secrets.token_bytes(32))
        with self.client("tax") as c:
            owner_key = self._member_key(c, citizen.address)
            v2 = seal_asset(fixed, asset_id=new_id, version=2, owner_key=owner_key)
            write = self.calls.supersede_asset(
                item.sealed.asset_id, new_id, v2.root, v2.ciphertext_digest
            )
            c.post(
                f"/v1/assets/{item.asset_id}/versions",
                {
                    "sealed": base64.b64encode(v2.to_bytes()).decode(),
                    "raw_transaction": self.own_tx("tax", write),
                },
            )
        old, new = self.chain.get_asset(item.sealed.asset_id), self.chain.get_asset(new_id)
        if (
            old.status != AssetStatus.SUPERSEDED
            or new.version != 2
            or new.previous != item.sealed.asset_id
        ):
            raise DemoError("the chain does not show the tax record superseded by version 2")
        opened = self._open_own("citizen", _hex(new_id))
        if opened["annual_income"] != CORRECTED_INCOME:
            raise DemoError("version 2 does not carry the corrected income")
        self.report["correction"] = {
            "old_asset_id": item.asset_id,
            "old_status": old.status.name.lower(),
            "new_asset_id": _hex(new_id),
            "new_version": new.version,
            "new_previous": _hex(new.previous),
            "annual_income": opened["annual_income"].decode(),
        }
        said = (
            f"{tax.label} published version 2 ({_hex(new_id)[:18]}…); v1 is SUPERSEDED on chain; "
            "she opens v2: annual_income {}"
        )
        self.n.say(
            said.format("= " + CORRECTED_INCOME.decode()),
            ok=True,
            redacted=said.format("is corrected"),
        )

    def _fund(self, address: str) -> None:
        async def go() -> None:
            async with AsyncRpcClient(self.t.rpc_url, errors=self.abi.errors) as rpc:
                await AsyncTxManager(rpc, self.governor).send(
                    address, b"", value=MEMBER_FUNDING_WEI
                )

        asyncio.run(go())

    def _trace(self, c: DataSafeClient, path: str, **params: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {**params, "limit": 1000, **({"cursor": cursor} if cursor else {})}
            page = c.get(path, params=query)
            rows.extend(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return rows

    def _wait_indexed(self, c: DataSafeClient, block: int) -> int:
        deadline = time.monotonic() + TRACE_WAIT_SECONDS
        while True:
            page = c.get("/v1/trace/accesses", params={"limit": 1})
            if page["indexed_to"] is not None and page["indexed_to"] >= block:
                return int(page["indexed_to"])
            if time.monotonic() > deadline:
                raise DemoError(f"the index did not reach block {block} in {TRACE_WAIT_SECONDS}s")
            time.sleep(0.2)

    def regulator(self) -> None:
        self.n.step("The regulator traces every access to the citizen and by the bank, and exports")
        citizen, bank = self.cast["citizen"].address, self.cast["bank"].address
        head = self._head()
        with self.client("regulator") as c:
            indexed = self._wait_indexed(c, head)
            by_citizen = self._trace(c, "/v1/trace/accesses", subject=citizen)
            by_bank = self._trace(c, "/v1/trace/accesses", institution=bank)
            consents = self._trace(c, "/v1/trace/consents", subject=citizen)
            csv_resp = c.request(
                "GET", "/v1/trace/accesses", params={"subject": citizen, "format": "csv"}
            )
            json_resp = c.request(
                "GET", "/v1/trace/accesses", params={"institution": bank, "format": "json"}
            )
        for resp in (csv_resp, json_resp):
            if resp.status_code != 200:
                raise DemoError(f"export failed: {resp.status_code} {resp.text[:200]}")
        csv_path = self.folder / "trace-citizen-accesses.csv"
        json_path = self.folder / "trace-bank-accesses.json"
        for path, content in ((csv_path, csv_resp.content), (json_path, json_resp.content)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
        for row in by_citizen:
            who = "bank" if row["institution"].lower() == bank.lower() else "notary"
            self.n.say(
                f"block {row['block_number']}: {self.cast[who].label} read "
                f"{', '.join(row['fields'] or [])} (purpose {row['purpose']}, use {row['use']}, "
                f"tx {row['tx_hash'][:18]}…)"
            )
        kinds: dict[str, int] = {}
        for row in consents:
            kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
        # The regulator need not trust the index: re-derive the rows from chain events.
        from_chain = chain_rows(
            self.t.rpc_url,
            self.ledger_address,
            self.first_block,
            indexed,
            flt=TraceFilter(kinds=frozenset({"access"}), subject=citizen),
        )
        agrees = sorted(r.tx_hash.lower() + str(r.log_index) for r in from_chain) == sorted(
            r["tx_hash"].lower() + str(r["log_index"]) for r in by_citizen
        )
        if not agrees:
            raise DemoError("the trace differs from the accesses re-derived from chain events")
        self.report["trace"] = {
            "indexed_to": indexed,
            "citizen_accesses": len(by_citizen),
            "bank_accesses": len(by_bank),
            "citizen_consents": kinds,
            "chain_citizen_accesses": len(from_chain),
            "csv_export": str(csv_path),
            "csv_rows": max(0, len(csv_resp.text.strip().splitlines()) - 1),
            "json_export": str(json_path),
            "json_rows": len(json.loads(json_resp.content)) if json_resp.content else 0,
            "access_tx_hashes": sorted({r["tx_hash"] for r in by_citizen}),
        }
        self.n.say(
            f"{len(by_citizen)} accesses to {self.cast['citizen'].label}, {len(by_bank)} by "
            f"{self.cast['bank'].label}; consent changes {kinds}",
            ok=True,
        )
        self.n.say(
            f"the same {len(from_chain)} accesses re-derived from chain events (eth_getLogs): "
            "the index agrees",
            ok=True,
        )
        self.n.say(f"exported {csv_path} and {json_path}", ok=True)


def run_demo(
    data_dir: Path | None = None,
    *,
    api_url: str | None = None,
    rpc_url: str | None = None,
    quiet: bool = False,
    resume: bool = False,
    run: int | None = None,
    stop_after: int | None = None,
    write_plaintext: bool = False,
) -> dict[str, Any]:
    """Play the story on the running node; the report of every outcome.

    ``write_plaintext``: also write the records the actors decrypt (``plaintext/``, 0600) and
    keep decrypted values in the saved state; by default nothing decrypted touches the disk.

    ``resume`` / ``run``: continue a run from its first incomplete step (same members);
    ``stop_after``: stop once that many steps of the run are complete (``ok`` is then
    False and ``completed`` lists the steps done; resume it later).
    """
    if stop_after is not None and not 1 <= stop_after <= len(STEPS):
        raise DemoError(f"--stop-after must be between 1 and {len(STEPS)}")
    target, settings = find_node(data_dir, api_url, rpc_url)
    governor = governor_sender(settings, target.embedded)
    members: dict[str, Actor] | None = None
    state: dict[str, Any] | None = None
    if resume or run is not None:
        run, folder = resumable_run(target.data_dir, run)
        state = load_state(folder, run)
        members = load_members(folder, run)
    else:
        run, folder = next_run(target.data_dir)
        members = cast(run)
        save_members(folder, members)
    narrator = Narrator(quiet)
    demo = Demo(target, governor, run, folder, narrator, members, write_plaintext=write_plaintext)
    if state is not None:
        demo.restore(state)
    else:
        demo.save()
    if narrator.console:
        verb = f"resumed after {len(demo.completed)} step(s)" if state is not None else "run"
        narrator.console.print(
            f"[bold]DataSafe demo, {verb} {run}[/] — API {target.api_url}, chain {target.rpc_url}"
        )
    started = time.monotonic()
    try:
        for name in STEPS:
            if name in demo.completed:
                continue
            if stop_after is not None and len(demo.completed) >= stop_after:
                break
            getattr(demo, name)()
            demo.completed.append(name)
            demo.save()
    except (DataSafeProblemError, LedgerError, VaultError, httpx.HTTPError) as exc:
        raise DemoError(f"step {len(narrator.steps)} failed: {exc}") from exc
    finally:
        demo.close()
    report = demo.report
    report["completed"] = list(demo.completed)
    report["ok"] = demo.completed == list(STEPS)
    report["resumed"] = state is not None
    report["seconds"] = round(time.monotonic() - started, 2)
    report["steps"] = narrator.steps
    if narrator.console:
        if report["ok"]:
            narrator.console.print(
                f"\n[bold green]done[/] in {report['seconds']}s; exports in {folder}"
            )
        else:
            narrator.console.print(
                f"\n[bold yellow]stopped[/] after {len(demo.completed)} of {len(STEPS)} steps; "
                f"continue with `datasafe-node demo --resume` (run {run})"
            )
    return report
