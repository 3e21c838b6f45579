"""The demo's later life of the data: a sealed access, a claim, a recall, a deletion, oversight.

Each step uses the product's own library calls (the ones ``datasafe sealed | claims |
institution`` use) and believes nothing until the chain it reads shows it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from api.bank_lifecycle import acknowledge, delete_and_acknowledge, saved_files
from ledger import claims as cl
from ledger import sealed as sl
from ledger import trust
from ledger.companions import check_companions
from ledger.models import AckKind, GrantStatus
from node.demo.base import DemoBase
from node.demo.cast import (
    CLAIM_REFERENCE,
    CORRECTED_CONTRIBUTION,
    PURPOSE_LOAN,
    RETENTION_SECONDS,
    SEAL_BASIS,
    SEAL_FIELDS,
    SEAL_SECONDS,
    VALUATION_FIELDS,
    DemoError,
    b32_of,
    claimed_record,
    hex_of,
    mask_of,
)
from node.demo.runs import private_dir, write_atomic

#: Where the bank keeps what it pulled under the valuation grant (deleted in the story).
BANK_SAVED = "bank-saved"


class LifecycleSteps(DemoBase):
    """Steps ``sealed``, ``claim``, ``recall``, ``retention`` and ``oversight``."""

    def _chain_time(self) -> int:
        return int(self.rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    def _caught_up(self) -> None:
        """Wait until the service's event index has reached the chain's head."""
        head = self._head()
        with self.client("regulator") as c:
            self._wait_indexed(c, head)

    def _history(self, who: str) -> list[dict[str, Any]]:
        """``who``'s ``/v1/me/history`` (every page), once the index has reached the head."""
        self._caught_up()
        with self.client(who) as c:
            rows: list[dict[str, Any]] = []
            cursor: str | None = None
            while True:
                page = c.get(
                    "/v1/me/history", params={"limit": 500, **({"since": cursor} if cursor else {})}
                )
                rows += page["items"]
                cursor = page["cursor"]
                if not page["has_more"]:
                    return rows

    def _lifecycle_rows(self, gid: str) -> dict[str, dict[str, Any]]:
        """The citizen's history rows of grant ``gid`` by kind."""
        return {
            str(r["kind"]): r
            for r in self._history("citizen")
            if str(r["grant_id"]).lower() == gid.lower()
        }

    def sealed(self) -> None:
        self.n.step(
            "The tax bureau records a sealed access (a lawful disclosure without consent); "
            "she sees it at once"
        )
        tax, police = self.cast["tax"], self.cast["police"]
        asset_id = b32_of(self.report["correction"]["new_asset_id"])
        mask = mask_of(self.issued["tax"].schema_fields, SEAL_FIELDS)
        opening = sl.Opening.new(police.address, asset_id, mask, SEAL_BASIS)
        companion = sl.check_companion(self.rpc, self.ledger_address, self.pin.companions)
        unseal_at = self._chain_time() + SEAL_SECONDS
        data = sl.encode_seal(asset_id, opening.commitment(), unseal_at)
        with self.client("tax") as c:
            out = c.post("/v1/sealed", {"raw_transaction": self.own_tx("tax", data, to=companion)})
        seal_id = int(out["seal_id"])
        (record,) = sl.read_seals(self.rpc, self.ledger_address, [seal_id])
        if record.commitment != opening.commitment() or record.department != tax.address:
            raise DemoError(f"the chain's seal {seal_id} is not the one the tax bureau recorded")
        # Her list (what `datasafe history` shows), every record checked against the chain.
        with self.client("citizen") as c:
            mine: list[dict[str, Any]] = c.get_all(
                "/v1/sealed", params={"subject": self.cast["citizen"].address}
            )
        sl.check_listing(self.rpc, self.ledger_address, self.cast["citizen"].address, mine)
        if seal_id not in {int(i["seal_id"]) for i in mine}:
            raise DemoError(f"seal {seal_id} is missing from her list")
        self.report["sealed"] = {
            "seal_id": seal_id,
            "asset_id": hex_of(asset_id),
            "department": tax.address,
            "subject": record.subject,
            "unseal_at": record.unseal_at,
            "status": record.status.name.lower(),
            "commitment": hex_of(record.commitment),
            "tx_hash": out.get("tx_hash"),
            "in_her_list": True,
        }
        self.n.say(
            f"seal {seal_id}: only a commitment on chain (who received which fields, under which "
            f"legal basis, stays hidden until {time.strftime('%H:%M:%S', time.gmtime(unseal_at))} "
            "UTC — a few seconds, so the demo sees it fall due)",
            ok=True,
        )
        self.n.say(
            f"{self.cast['citizen'].label}'s history shows it already: sealed access by "
            f"{tax.label}, checked against the chain",
            ok=True,
        )

    def claim(self) -> None:
        self.n.step(
            "She claims a no-criminal-record certificate; the police issue it into her safe"
        )
        citizen, police = self.cast["citizen"], self.cast["police"]
        check_companions(self.rpc, self.ledger_address, self.pin.companions or None)
        rec = claimed_record(self.run)
        schema_id = self.register_schema(rec)
        claimable = cl.claimable(self.rpc, self.ledger_address, self.first_block)
        if not any(
            x.schema_id.lower() == hex_of(schema_id)
            and x.department.lower() == police.address.lower()
            for x in claimable
        ):
            raise DemoError("the chain does not list the certificate as claimable from the police")
        nonce = cl.read_nonce(self.rpc, self.ledger_address, citizen.address)
        ref = cl.reference_hash(police.address, schema_id, CLAIM_REFERENCE)
        request = cl.ClaimRequest(
            citizen.address, police.address, schema_id, ref, nonce, self._chain_time() + 600
        )
        sig = cl.sign_request(b32_of(citizen.key), self.chain_id, self.ledger_address, request)
        with self.client("citizen") as c:
            filed = c.post("/v1/claims", {"request": request.to_json(), "signature": hex_of(sig)})
        claim_id = cl.request_digest(self.chain_id, self.ledger_address, request)
        if cl.read_claim(self.rpc, self.ledger_address, claim_id).status != cl.ClaimStatus.OPEN:
            raise DemoError("her claim is not open on chain")
        relayer = self.rpc.call("eth_getTransactionByHash", [filed["tx_hash"]])["from"]
        if str(relayer).lower() == citizen.address.lower():
            raise DemoError("her claim was sent from her own account, not relayed")
        self.n.say(
            f"claim {hex_of(claim_id)[:18]}… filed, signed by her (EIP-712), relayed by the "
            f"service (tx from {relayer[:10]}…, not her): OPEN on chain; only a hash of her "
            "case number is public",
            ok=True,
        )
        asset_id, _, _, anchor_tx = self.anchor_record(rec, schema_id)
        write = cl.fulfil_claim(claim_id, asset_id)
        to = cl.claims_address(self.ledger_address)
        with self.client("police") as c:
            c.post(
                f"/v1/claims/{hex_of(claim_id)}/fulfil",
                {"raw_transaction": self.own_tx("police", write.data, to=to)},
            )
        done = cl.read_claim(self.rpc, self.ledger_address, claim_id)
        if done.status != cl.ClaimStatus.FULFILLED or done.asset_id != asset_id:
            raise DemoError(f"the claim is {done.status.label} on chain, not fulfilled")
        opened = self._open_own("citizen", hex_of(asset_id))
        if opened != dict(rec.fields):
            raise DemoError("she could not open the certificate the police issued")
        self.report["claim"] = {
            "claim_id": hex_of(claim_id),
            "department": police.address,
            "schema_id": hex_of(schema_id),
            "status": done.status.label,
            "asset_id": hex_of(asset_id),
            "filed_tx": filed["tx_hash"],
            "relayed_by": relayer,
            "anchor_tx": anchor_tx,
        }
        self.n.say(
            f"{police.label} issued the certificate into her safe (asset {hex_of(asset_id)[:18]}…) "
            "and linked it to her claim: FULFILLED on chain; she opened it and proved every field",
            ok=True,
        )

    def recall(self) -> None:
        self.n.step(
            "The housing fund centre corrects the record the bank pulled; the bank is told and "
            "acknowledges"
        )
        bank = self.cast["bank"]
        g = self.report["grants"]["loan_housing_fund"]
        item = self.issued["housing_fund"]
        fixed = [
            (n, CORRECTED_CONTRIBUTION if n == "monthly_contribution" else v)
            for n, v in item.record.fields
        ]
        new_id, _, new = self.publish_version("housing_fund", item.sealed.asset_id, fixed)
        self.n.say(
            f"{self.cast['housing_fund'].label} published version {new.version} "
            f"({hex_of(new_id)[:18]}…); the version the bank pulled is SUPERSEDED on chain",
            ok=True,
        )
        self._caught_up()
        with self.client("bank") as c:
            inbox: list[dict[str, Any]] = c.get_all("/v1/acknowledgements/owed")
            told = [r for r in inbox if r["grant_id"].lower() == g["grant_id"].lower()]
            if not told or told[0].get("recalled_at") is None:
                raise DemoError(f"the bank's inbox does not show the recall of {g['grant_id']}")
            done = acknowledge(
                c, self.rpc, self.pin, b32_of(bank.key), g["grant_id"], AckKind.RECALL
            )
        on_chain = trust.get_grant(self.rpc, self.pin, b32_of(g["grant_id"]))
        if not on_chain.acknowledged(AckKind.RECALL):
            raise DemoError("the recall acknowledgement is not on chain")
        self.n.say(
            f"{bank.label}'s inbox: recall of grant {g['grant_id'][:18]}… ({on_chain.uses} "
            f"pull(s) of the old version); it signed the acknowledgement, relayed: tx "
            f"{done.tx_hash[:18]}…, the grant's recall bit is set on chain",
            ok=True,
        )
        rows = self._lifecycle_rows(g["grant_id"])
        if not {"recall", "recall_acknowledged"} <= set(rows):
            raise DemoError(f"her history does not show the recall and its acknowledgement: {rows}")
        self.report["recall"] = {
            "grant_id": g["grant_id"],
            "old_asset_id": item.asset_id,
            "new_asset_id": hex_of(new_id),
            "new_version": new.version,
            "ack_tx": done.tx_hash,
            "ack_uses": done.uses,
            "history": sorted(rows),
        }
        self.n.say(
            "her history: told of correction → correction acknowledged (tx "
            f"{rows['recall_acknowledged']['tx_hash'][:18]}…)",
            ok=True,
        )

    def retention(self) -> None:
        self.n.step(
            "A one-use valuation grant the bank may keep 30 days ends; the bank deletes early "
            "and acknowledges"
        )
        bank = self.cast["bank"]
        gid = self.grant(
            "valuation",
            "real_estate",
            "bank",
            VALUATION_FIELDS,
            PURPOSE_LOAN,
            1,
            retention=RETENTION_SECONDS,
        )
        values = self.pull("bank", "valuation")
        pulled = self.report["accesses"][-1]
        out = private_dir(self.folder / BANK_SAVED)
        # What the bank keeps, named as `datasafe pull` names it; values only if asked for.
        kept: dict[str, Any] = {
            "grant_id": gid,
            "use": pulled["use"],
            "access_tx": pulled["tx_hash"],
        }
        kept["fields"] = (
            {k: v.decode() for k, v in values.items()} if self.write_plaintext else sorted(values)
        )
        write_atomic(out / f"{gid.lower()}-use{pulled['use']}.json", kept)
        grant = trust.get_grant(self.rpc, self.pin, b32_of(gid))
        if grant.uses != grant.max_uses or grant.status != GrantStatus.ACTIVE:
            raise DemoError(f"the valuation grant is not used up on chain: {grant}")
        self._caught_up()
        with self.client("bank") as c:
            inbox: list[dict[str, Any]] = c.get_all("/v1/acknowledgements/owed")
            due = [r for r in inbox if r["grant_id"].lower() == gid.lower()]
            if not due or due[0].get("deletion_due") is None:
                raise DemoError(f"the bank's inbox does not show the deletion of {gid} as owed")
            done = delete_and_acknowledge(c, self.rpc, self.pin, b32_of(bank.key), gid, out)
        if saved_files(out, gid):
            raise DemoError("the bank's saved copy is still on disk")
        if not trust.get_grant(self.rpc, self.pin, b32_of(gid)).acknowledged(AckKind.DELETION):
            raise DemoError("the deletion acknowledgement is not on chain")
        self.n.say(
            f"{bank.label}'s inbox: delete by {_utc(int(due[0]['deletion_due']))} (used up, "
            f"kept 30 days at most); it deleted {len(done.deleted)} saved file(s) and signed the "
            f"acknowledgement, relayed: tx {done.tx_hash[:18]}…, the deletion bit is set on chain",
            ok=True,
        )
        rows = self._lifecycle_rows(gid)
        if "deletion_acknowledged" not in rows:
            raise DemoError(f"her history does not show the deletion acknowledged: {rows}")
        self.report["retention"] = {
            "grant_id": gid,
            "retention": RETENTION_SECONDS,
            "deletion_due": int(due[0]["deletion_due"]),
            "deleted_files": [Path(p).name for p in done.deleted],
            "ack_tx": done.tx_hash,
            "ack_uses": done.uses,
            "history": sorted(rows),
        }
        acked = _utc(int(rows["deletion_acknowledged"]["at"]))
        self.n.say(
            f"her history: deleted, acknowledged on {acked}",
            ok=True,
        )

    def oversight(self) -> None:
        self.n.step("The regulator lists overdue sealed accesses and what institutions still owe")
        seal_id = int(self.report["sealed"]["seal_id"])
        (record,) = sl.read_seals(self.rpc, self.ledger_address, [seal_id])
        if not record.overdue(self._chain_time()):
            self._tick_past(record.unseal_at)
        with self.client("regulator") as c:
            before = self._chain_time()
            overdue: list[dict[str, Any]] = c.get_all("/v1/sealed/overdue")
            sl.check_overdue(self.rpc, self.ledger_address, (before, self._chain_time()), overdue)
            self._wait_indexed(c, self._head())
            owed: list[dict[str, Any]] = c.get_all(
                "/v1/acknowledgements/owed", params={"institution": self.cast["bank"].address}
            )
        if seal_id not in {int(i["seal_id"]) for i in overdue}:
            raise DemoError(f"seal {seal_id} is past its date but not in the overdue list")
        self.n.say(
            f"{len(overdue)} overdue sealed access(es), checked against the chain; seal "
            f"{seal_id} of {self.cast['tax'].label} is among them (past its date, not revealed)",
            ok=True,
        )
        late = sorted(r["grant_id"] for r in owed if r.get("deletion_overdue"))
        self.report["oversight"] = {
            "overdue_seals": sorted(int(i["seal_id"]) for i in overdue),
            "bank_owed": sorted(r["grant_id"] for r in owed),
            "bank_deletions_overdue": late,
        }
        self.n.say(
            f"{self.cast['bank'].label} still owes {len(owed)} acknowledgement(s); "
            f"{len(late)} deletion(s) overdue (the revoked loan grants kept nothing)",
            ok=True,
        )

    def _tick_past(self, unseal_at: int) -> None:
        """The chain's clock moves with its blocks: wait out the seal, then mine one."""
        time.sleep(max(0.0, unseal_at - time.time() + 1))
        self._fund(self.governor.address)


def _utc(at: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(at))
