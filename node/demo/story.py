"""The demo's story, step by step, and :func:`run_demo` that plays it (resumable)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
from eth_utils.crypto import keccak

from api.client import (
    DataSafeProblemError,
    key_binding_body,
)
from ledger.audit import chain_rows
from ledger.eip712 import sign_status_change
from ledger.errors import LedgerError
from ledger.models import AssetStatus, GrantStatus, MemberKind, Role
from ledger.rpc import AsyncRpcClient
from ledger.trace import TraceFilter
from ledger.tx import AsyncTxManager
from node.demo.base import Issued
from node.demo.cast import (
    CORRECTED_INCOME,
    LOAN_FIELDS,
    LOAN_USES,
    MEMBER_FUNDING_WEI,
    NOTARY_FIELDS,
    PURPOSE_LOAN,
    PURPOSE_NOTARIAL,
    Actor,
    DemoError,
    b32_of,
    cast,
    hex_of,
    records,
)
from node.demo.lifecycle import LifecycleSteps
from node.demo.runs import (
    STEPS,
    Narrator,
    find_node,
    governor_sender,
    load_members,
    load_state,
    next_run,
    resumable_run,
    save_members,
)
from vault.errors import VaultError


class Demo(LifecycleSteps):
    """The steps of the story (:data:`STEPS`), each a method."""

    def _name_institutions(self, admitted: list[Actor]) -> None:
        """The governor registers the institutions' names (the directory), after admission."""
        from ledger.directory import encode_name_member
        from ledger.forwarder import forwarder_address

        named = [
            a for a in admitted if a.kind not in (MemberKind.INDIVIDUAL, MemberKind.ENTERPRISE)
        ]
        if not named:
            return
        forwarder = forwarder_address(self.ledger_address)

        async def go() -> None:
            async with AsyncRpcClient(self.t.rpc_url, errors=self.abi.errors) as rpc:
                tx = AsyncTxManager(rpc, self.governor, abi=self.abi)
                pending = [
                    await tx.submit(forwarder, encode_name_member(a.address, a.label))
                    for a in named
                ]
                await tx.wait_many(pending)

        asyncio.run(go())
        self.n.say(f"{len(named)} institution(s) named in the member directory", ok=True)

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
        self._name_institutions(todo)
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
            asset_id, schema_id, sealed, anchor_tx = self.anchor_record(rec)
            self.issued[rec.asset] = Issued(rec, sealed, rec.names)
            self.report["assets"][rec.asset] = {
                "asset_id": hex_of(asset_id),
                "owner": owner.address,
                "issuer": dept.address,
                "schema_id": hex_of(schema_id),
                "version": 1,
                "root": hex_of(sealed.root),
                "fields": rec.names,
                "anchor_tx": anchor_tx,
            }
            self.save()  # each anchored record is recorded at once (resume skips it)
            self.n.say(
                f"{dept.label} issued the {rec.schema} ({len(rec.names)} fields, sealed to "
                f"{owner.label}'s key) as asset {hex_of(asset_id)[:18]}…, root anchored on chain",
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
                citizen.key, self.domain, "RevokeConsent", b32_of(gid), nonce, deadline
            )
            with self.client("citizen") as c:
                c.post(
                    f"/v1/grants/{gid}/revoke",
                    {
                        "signer": citizen.address,
                        "deadline": deadline,
                        "signature": hex_of(m.signature),
                    },
                )
            status = self.chain.get_grant(b32_of(gid)).status
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
        new_id, old, new = self.publish_version("tax", item.sealed.asset_id, fixed)
        opened = self._open_own("citizen", hex_of(new_id))
        if opened["annual_income"] != CORRECTED_INCOME:
            raise DemoError("version 2 does not carry the corrected income")
        self.report["correction"] = {
            "old_asset_id": item.asset_id,
            "old_status": old.status.name.lower(),
            "new_asset_id": hex_of(new_id),
            "new_version": new.version,
            "new_previous": hex_of(new.previous),
            "annual_income": opened["annual_income"].decode(),
        }
        said = (
            f"{tax.label} published version 2 ({hex_of(new_id)[:18]}…); v1 is SUPERSEDED on chain; "
            "she opens v2: annual_income {}"
        )
        self.n.say(
            said.format("= " + CORRECTED_INCOME.decode()),
            ok=True,
            redacted=said.format("is corrected"),
        )

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
