"""Drive ``datasafe-node`` as a user does: real processes, real ports, real HTTP.

``Node`` runs ``datasafe-node <command>`` in a subprocess on a temporary data dir;
``Actors`` are the dev-chain members the scenario uses (governor admits them with
the ledger client; they sign their own transactions, consents and requests; the
API relays them).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from eth_abi import encode
from eth_account import Account
from eth_hash.auto import keccak

from api.client import DataSafeClient, key_binding_body
from api.envelope import sign_digest
from ledger.abi import ledger_abi
from ledger.calls import LedgerCalls, Write, grant_id_of
from ledger.chain import DEV_PRIVATE_KEYS, free_port
from ledger.client import LedgerClient
from ledger.eip712 import access_digest, grant_digest, ledger_domain
from ledger.manifest import Manifest
from ledger.models import AccessRequest, GrantTerms, MemberKind, Role
from ledger.rpc import RpcClient
from ledger.tx import LocalKeySender
from vault.keys import EncryptionKeyPair
from vault.packages import Disclosure, build_key_package, open_disclosure
from vault.sealing import SealedAsset, seal_asset

REPO = Path(__file__).resolve().parents[2]
FIELDS = ["name", "id_number", "address", "income", "employer"]
VALUES = [b"Li Wei", b"110101199001011234", b"1 Chang'an Ave, Beijing", b"21000", b"ACME Ltd"]
GRANTED = ["name", "income"]
MASK = 0b01001


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def wait_dead(pid: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} still alive"
        time.sleep(0.05)


def wait_indexed(node: Node, timeout: float = 30.0) -> None:
    """Until ``datasafe-node status`` says the API's index has reached the chain head.

    Polled over HTTP first (``/readyz`` and the head, what ``status`` reads), so that the
    command, a process of its own, runs once the index is there rather than on every poll.
    """
    deadline = time.monotonic() + timeout
    info = node.info
    with httpx.Client(timeout=5.0) as http:
        while time.monotonic() < deadline:
            try:
                head = http.post(
                    info["rpc_url"],
                    json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []},
                ).json()["result"]
                ready = http.get(info["api_url"] + "/readyz").json()
                indexed = ready.get("checks", {}).get("indexer", {}).get("last_block")
                if indexed == int(head, 16):
                    break
            except (httpx.HTTPError, ValueError, KeyError, AttributeError):
                pass  # not up yet, or not answering JSON: the status check below says why
            time.sleep(0.1)
    while True:
        done = node.cli("status", "--json")
        status = json.loads(done.stdout)
        api = status.get("api")
        if (
            done.returncode == 0
            and isinstance(api, dict)
            and api.get("indexer_last_block") == status.get("head")
        ):
            return
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


class Node:
    """One data dir; ``start()`` runs ``up`` until it prints ``running``."""

    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.anvil_port = free_port()
        self.api_port = free_port()
        # No DATASAFE_* setting of the runner's shell (the shared DATASAFE_DATA_DIR included).
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("DATASAFE_") or k.startswith("DATASAFE_TEST_")
        }
        self.env.update(
            {
                "DATASAFE_LEDGER_DATA_DIR": str(data_dir),
                "DATASAFE_LEDGER_ANVIL_PORT": str(self.anvil_port),
                "DATASAFE_API_PORT": str(self.api_port),
                # Only the stop writes the chain state: a power cut loses everything since.
                "DATASAFE_LEDGER_STATE_INTERVAL": "3600",
                "DATASAFE_API_LOG_JSON": "false",
            }
        )
        self.env.update(extra_env or {})
        self.proc: subprocess.Popen[str] | None = None
        self.output = ""

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "node", *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, *args: str, expect_running: bool = True) -> str:
        """``up``; returns its output up to ``running`` (or everything, if it exits)."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "node", "up", *args],
            env=self.env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines = []
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            lines.append(line)
            if line.startswith("running"):
                break
        self.output = "".join(lines)
        if expect_running:
            assert self.output.rstrip().endswith("Ctrl-C to stop"), self.output
        return self.output

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        assert self.proc is not None
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
            raise AssertionError(
                f"`up` still running after {timeout} s; its output:\n{self.output}{out}"
            ) from None
        self.output += out
        return self.proc.returncode, self.output

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.finish()

    @property
    def info(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.data_dir / "node.json").read_text())
        return data

    @property
    def manifest(self) -> Manifest:
        return Manifest.load(self.data_dir / "deployment.json")

    def rows(self, table: str) -> int:
        engine = sa.create_engine(f"sqlite:///{self.data_dir / 'datasafe.db'}")
        try:
            with engine.connect() as conn:
                return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
        finally:
            engine.dispose()


@dataclass
class Actor:
    key: str
    enc: EncryptionKeyPair = field(default_factory=EncryptionKeyPair.generate)

    @property
    def address(self) -> str:
        return str(Account.from_key(self.key).address)

    @property
    def key_bytes(self) -> bytes:
        return bytes.fromhex(self.key[2:])


class Story:
    """A department issues into a citizen's safe, she grants a bank, the bank pulls."""

    def __init__(self) -> None:
        self.governor = Actor(DEV_PRIVATE_KEYS[0])
        self.issuer = Actor(DEV_PRIVATE_KEYS[1])
        self.citizen = Actor(DEV_PRIVATE_KEYS[2])
        self.bank = Actor(DEV_PRIVATE_KEYS[3])
        self.calls = LedgerCalls(ledger_abi())
        self.schema_id = keccak(b"e2e income statement " + secrets.token_bytes(8))
        self.asset_id = keccak(b"e2e asset " + secrets.token_bytes(8))
        self.sealed: SealedAsset | None = None
        self.grant_id = ""

    def admit_members(self, rpc_url: str, manifest: Manifest) -> None:
        governor = LocalKeySender.from_key(self.governor.key)
        with LedgerClient(rpc_url, manifest.ledger_address, sender=governor) as gov:
            for actor, roles, kind in (
                (self.issuer, Role.ISSUER, MemberKind.DEPARTMENT),
                (self.citizen, Role.SUBJECT, MemberKind.INDIVIDUAL),
                (self.bank, Role.CONSUMER, MemberKind.BANK),
            ):
                # Admission binds no key: each member binds its own (publish_keys).
                gov.send(gov.calls.admit_member(actor.address, roles, kind))
        self.manifest = manifest

    def raw_tx(self, rpc_url: str, manifest: Manifest, actor: Actor, write: Write) -> str:
        with RpcClient(rpc_url) as rpc:
            nonce = int(rpc.call("eth_getTransactionCount", [actor.address, "pending"]), 16)
            price = int(rpc.call("eth_gasPrice"), 16)
        tx = {
            "to": manifest.ledger_address,
            "data": "0x" + write.data.hex(),
            "gas": 500_000,
            "gasPrice": price * 2,
            "nonce": nonce,
            "chainId": manifest.chain_id,
            "value": 0,
        }
        return "0x" + bytes(Account.sign_transaction(tx, actor.key).raw_transaction).hex()

    def register_schema(self, api: str, rpc_url: str, manifest: Manifest) -> None:
        fields_hash = keccak(encode(["string[]"], [FIELDS]))
        write = self.calls.register_schema(self.schema_id, len(FIELDS), fields_hash)
        with DataSafeClient(api, self.issuer.key) as c:
            c.post(
                "/v1/schemas",
                {
                    "schema_id": "0x" + self.schema_id.hex(),
                    "name": "income statement",
                    "fields": FIELDS,
                    "raw_transaction": self.raw_tx(rpc_url, manifest, self.issuer, write),
                },
            )

    def publish_keys(self, api: str) -> None:
        """Each member signs its own KeyBinding; the service relays it (no gas) and publishes."""
        for actor in (self.citizen, self.bank):
            body = key_binding_body(
                actor.key,
                actor.enc,
                chain_id=self.manifest.chain_id,
                ledger=self.manifest.ledger_address,
                key_version=1,
                deadline=int(time.time()) + 3600,
            )
            with DataSafeClient(api, actor.key) as c:
                c.put("/v1/members/me/key", body)

    def issue(self, api: str, rpc_url: str, manifest: Manifest) -> None:
        self.sealed = seal_asset(
            list(zip(FIELDS, VALUES, strict=True)),
            asset_id=self.asset_id,
            version=1,
            owner_key=self.citizen.enc.public_key,
        )
        write = self.calls.anchor_asset(
            self.asset_id,
            self.citizen.address,
            self.schema_id,
            self.sealed.root,
            self.sealed.ciphertext_digest,
        )
        with DataSafeClient(api, self.issuer.key) as c:
            out = c.post(
                "/v1/assets",
                {
                    "sealed": base64.b64encode(self.sealed.to_bytes()).decode(),
                    "raw_transaction": self.raw_tx(rpc_url, manifest, self.issuer, write),
                },
            )
        assert out["asset_id"] == "0x" + self.asset_id.hex()

    def grant(self, api: str, manifest: Manifest, *, max_uses: int = 10) -> str:
        domain = ledger_domain(manifest.chain_id, manifest.ledger_address)
        nonce = secrets.randbits(64)
        deadline = int(time.time()) + 3600
        terms = {
            "asset_id": "0x" + self.asset_id.hex(),
            "grantee": self.bank.address,
            "purpose": 1,
            "fields_mask": MASK,
            "not_before": 0,
            "expiry": int(time.time()) + 7 * 86_400,
            "max_uses": max_uses,
        }
        grant_terms = GrantTerms(
            self.asset_id, self.bank.address, 1, MASK, 0, int(str(terms["expiry"])), max_uses
        )
        digest = grant_digest(domain, grant_terms, nonce, deadline)
        assert self.sealed is not None
        grant_id = grant_id_of(self.citizen.address, nonce)
        package = build_key_package(
            self.sealed,
            self.citizen.enc,
            grant_id=grant_id,
            fields=GRANTED,
            grantee_key=self.bank.enc.public_key,
        )
        body = {
            "terms": terms,
            "grantor": self.citizen.address,
            "nonce": str(nonce),
            "deadline": deadline,
            "signature": "0x" + sign_digest(self.citizen.key_bytes, digest).hex(),
            "key_package": base64.b64encode(package.to_bytes()).decode(),
        }
        with DataSafeClient(api, self.citizen.key) as c:
            receipt = c.post("/v1/grants", body)
        self.grant_id = "0x" + grant_id.hex()
        assert receipt["grant_id"] == self.grant_id
        return self.grant_id

    def pull(self, api: str, manifest: Manifest) -> dict[str, Any]:
        domain = ledger_domain(manifest.chain_id, manifest.ledger_address)
        nonce = secrets.randbits(32)
        deadline = int(time.time()) + 3600
        gid = bytes.fromhex(self.grant_id[2:])
        digest = access_digest(domain, AccessRequest(gid, MASK, nonce, deadline))
        body = {
            "grant_id": self.grant_id,
            "fields_mask": MASK,
            "nonce": str(nonce),
            "deadline": deadline,
            "signature": "0x" + sign_digest(self.bank.key_bytes, digest).hex(),
        }
        with DataSafeClient(api, self.bank.key) as c:
            pulled: dict[str, Any] = c.post("/v1/access", body)
        assert self.sealed is not None
        disclosure = Disclosure.from_bytes(base64.b64decode(pulled["disclosure"]))
        values = open_disclosure(
            disclosure,
            self.bank.enc,
            grant_id=gid,
            expected_root=self.sealed.root,
            expected_issuer=bytes.fromhex(self.issuer.address[2:]),
        )
        assert values == {name: dict(zip(FIELDS, VALUES, strict=True))[name] for name in GRANTED}
        return pulled

    def uses(self, api: str) -> int:
        with DataSafeClient(api, self.bank.key) as c:
            return int(c.get(f"/v1/grants/{self.grant_id}")["uses"])
