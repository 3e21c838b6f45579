"""The demo's machinery: each actor's client, own transactions, grants and pulls."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils.crypto import keccak

from api.bank import pull_verified
from api.client import (
    DataSafeClient,
    DataSafeProblemError,
    verified_member_key,
)
from ledger import trust
from ledger.abi import ledger_abi
from ledger.calls import LedgerCalls, Write, grant_id_of
from ledger.client import LedgerClient
from ledger.eip712 import Domain, sign_access_request, sign_grant
from ledger.errors import LedgerError
from ledger.keybinding import KeyBindingError
from ledger.models import AccessRequest, Asset, AssetStatus, GrantTerms
from ledger.nonces import next_access_nonce
from ledger.rpc import AsyncRpcClient, RpcClient
from ledger.tx import AsyncTxManager, Sender
from node.demo.cast import (
    MEMBER_FUNDING_WEI,
    SEVEN_DAYS,
    TRACE_WAIT_SECONDS,
    Actor,
    DemoError,
    Record,
    b32_of,
    cast,
    fields_hash,
    hex_of,
    mask_of,
    records,
)
from node.demo.runs import (
    PLAINTEXT_DIR,
    STATE_FILE,
    STEPS,
    Narrator,
    Target,
    pin_for,
    private_dir,
    write_atomic,
)
from vault.errors import VaultError
from vault.keys import PublicEncryptionKey
from vault.packages import build_key_package
from vault.sealing import SealedAsset, open_asset, seal_asset

# ---- the scenario -----------------------------------------------------------------------


@dataclass
class Issued:
    record: Record
    sealed: SealedAsset
    schema_fields: list[str]

    @property
    def asset_id(self) -> str:
        return hex_of(self.sealed.asset_id)


class DemoBase:
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
        self.pin = pin_for(target, self.rpc, str(info["ledger_address"]))
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
        folder = private_dir(self.folder / PLAINTEXT_DIR)
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

    def own_tx(self, who: str, write: Write | bytes, *, to: str | None = None) -> str:
        """The member's own signed transaction to the ledger (or companion ``to``), for the
        service to relay."""
        actor = self.cast[who]
        data = write if isinstance(write, bytes) else write.data
        to = to or self.ledger_address
        call = {"from": actor.address, "to": to, "data": hex_of(data)}
        nonce = int(self.rpc.call("eth_getTransactionCount", [actor.address, "pending"]), 16)
        block = self.rpc.call("eth_getBlockByNumber", ["latest", False])
        tip = 10**9  # a fixed tip: bidding on eth_gasPrice (which includes tips) ratchets it up
        try:
            gas = int(int(self.rpc.call("eth_estimateGas", [call]), 16) * 1.3)
        except LedgerError:
            gas = 1_000_000  # a revert: the service's pre-flight reports it by name
        tx = {
            "to": to,
            "data": call["data"],
            "gas": gas,
            "type": 2,
            "maxFeePerGas": 2 * int(block.get("baseFeePerGas") or "0x0", 16) + tip,
            "maxPriorityFeePerGas": tip,
            "nonce": nonce,
            "chainId": self.chain_id,
            "value": 0,
        }
        return hex_of(bytes(Account.sign_transaction(tx, actor.key).raw_transaction))

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
        root = self.chain.get_asset(b32_of(asset_id)).root
        opened = dict(open_asset(sealed, self.cast[who].enc, expected_root=root).fields)
        self.keep_plaintext(f"{who}-{asset_id}", opened)
        return opened

    def register_schema(self, rec: Record) -> bytes:
        """The department registers ``rec``'s schema (its own transaction); the schema id."""
        schema_id = keccak(f"{rec.schema} {self.cast[rec.issuer].address}".encode())
        write = self.calls.register_schema(schema_id, len(rec.names), fields_hash(rec.names))
        with self.client(rec.issuer) as c:
            c.post(
                "/v1/schemas",
                {
                    "schema_id": hex_of(schema_id),
                    "name": rec.schema,
                    "fields": rec.names,
                    "raw_transaction": self.own_tx(rec.issuer, write),
                },
            )
        return schema_id

    def anchor_record(
        self, rec: Record, schema_id: bytes | None = None
    ) -> tuple[bytes, bytes, SealedAsset, str]:
        """The department issues ``rec`` sealed to the owner's key (as served, checked against
        the chain), registering its schema first unless given; (asset id, schema id, sealed,
        anchor tx)."""
        owner = self.cast[rec.owner]
        if schema_id is None:
            schema_id = self.register_schema(rec)
        with self.client(rec.issuer) as c:
            owner_key = self._member_key(c, owner.address)
            asset_id = keccak(secrets.token_bytes(32))
            sealed = seal_asset(list(rec.fields), asset_id=asset_id, version=1, owner_key=owner_key)
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
        return asset_id, schema_id, sealed, str(out["anchor"]["tx_hash"])

    def publish_version(
        self, dept: str, old_id: bytes, fields: list[tuple[str, bytes]]
    ) -> tuple[bytes, Asset, Asset]:
        """The department supersedes ``old_id`` with the next version carrying ``fields``,
        sealed to the owner's key; (new id, old, new) as the chain holds them, checked."""
        previous = self.chain.get_asset(old_id)
        new_id = keccak(secrets.token_bytes(32))
        with self.client(dept) as c:
            owner_key = self._member_key(c, previous.owner)
            sealed = seal_asset(
                fields, asset_id=new_id, version=previous.version + 1, owner_key=owner_key
            )
            write = self.calls.supersede_asset(
                old_id, new_id, sealed.root, sealed.ciphertext_digest
            )
            c.post(
                f"/v1/assets/{hex_of(old_id)}/versions",
                {
                    "sealed": base64.b64encode(sealed.to_bytes()).decode(),
                    "raw_transaction": self.own_tx(dept, write),
                },
            )
        old, new = self.chain.get_asset(old_id), self.chain.get_asset(new_id)
        if (
            old.status != AssetStatus.SUPERSEDED
            or new.version != previous.version + 1
            or new.previous != old_id
            or new.root != sealed.root
        ):
            raise DemoError(f"the chain does not show {hex_of(old_id)} superseded by {new.version}")
        return new_id, old, new

    def grant(
        self,
        key: str,
        asset: str,
        grantee: str,
        names: list[str],
        purpose: int,
        max_uses: int,
        *,
        retention: int = 0,
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
            retention,
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
                        "retention": retention,
                    },
                    "grantor": citizen.address,
                    "nonce": str(nonce),
                    "deadline": signed.deadline,
                    "signature": hex_of(signed.signature),
                    "key_package": base64.b64encode(package.to_bytes()).decode(),
                },
            )
        if receipt["grant_id"] != hex_of(gid):
            raise DemoError(f"the receipt names grant {receipt['grant_id']}, not {hex_of(gid)}")
        self.report["grants"][key] = {
            "grant_id": hex_of(gid),
            "asset": asset,
            "asset_id": item.asset_id,
            "grantee": terms.grantee,
            "fields": names,
            "fields_mask": mask,
            "purpose": purpose,
            "expiry": terms.expiry,
            "max_uses": max_uses,
            "retention": retention,
            "tx_hash": receipt.get("tx_hash"),
            "terms_text": receipt.get("terms_text"),
        }
        self.n.say(f"consent receipt {hex_of(gid)[:18]}…: {receipt.get('terms_text', '')}", ok=True)
        return hex_of(gid)

    def _access_body(self, who: str, gid: str, mask: int) -> dict[str, Any]:
        req = AccessRequest(b32_of(gid), mask, next_access_nonce(), int(time.time()) + 600)
        sig = sign_access_request(self.cast[who].key, self.domain, req)
        return {
            "grant_id": gid,
            "fields_mask": mask,
            "nonce": str(req.nonce),
            "deadline": req.deadline,
            "signature": hex_of(sig),
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
                    key=b32_of(self.cast[who].key),
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
        uses = self.chain.get_grant(b32_of(gid)).uses
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
