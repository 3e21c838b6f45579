"""A subject's claims in her history: their events read from her own node, and the service's
answers held against them.

``ClaimFiled``, ``ClaimFulfilled`` and ``ClaimRefused`` all index the subject, so one
``eth_getLogs`` on the claims companion gives every state change of her claims with its
transaction (:func:`subject_events`). :func:`check_subject_listing` holds the service's list
of her claims against the chain (each the claim the chain stores, none left out), and
:func:`check_event` a claim event the service streamed (the log it names is in that
transaction's receipt on the reader's node, emitted by the claims companion, with these
arguments).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ledger._pin import ServiceContradictedError
from ledger.address import to_checksum_address
from ledger.claims import (
    REASON_CODES,
    Claim,
    _logs,
    _topic_address,
    claims_abi,
    claims_address,
    filed_claim_ids,
    verify_claims,
)
from ledger.models import Event
from ledger.rpc import RpcClient

EVENTS = ("ClaimFiled", "ClaimFulfilled", "ClaimRefused")


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


def event_json(e: Event) -> dict[str, Any]:
    """One claim event as the history shows it (names as in ``api._claim_webhooks``)."""
    a = e.args
    refused = e.name == "ClaimRefused"
    return {
        "event": e.name,
        "claim_id": _hex(a["claimId"]),
        "subject": to_checksum_address(a["subject"]),
        "department": to_checksum_address(a["department"]),
        "schema_id": _hex(a["schemaId"]) if "schemaId" in a else None,
        "at": int(a["at"]),
        "asset_id": _hex(a["assetId"]) if e.name == "ClaimFulfilled" else None,
        "reason_code": int(a["reasonCode"]) if refused else None,
        "reason": REASON_CODES.get(int(a["reasonCode"])) if refused else None,
        "block_number": e.block_number,
        "log_index": e.log_index,
        "tx_hash": e.tx_hash,
    }


def subject_events(
    rpc: RpcClient, ledger: str, subject: str, from_block: int = 0
) -> list[dict[str, Any]]:
    """Every event of ``subject``'s claims, oldest first, from the companion's logs."""
    abi = claims_abi()
    topics = [
        ["0x" + abi.events_by_name[n].topic0.hex() for n in EVENTS],
        None,
        _topic_address(subject),
    ]
    return [event_json(e) for e in _logs(rpc, claims_address(ledger), topics, from_block, abi)]


def check_subject_listing(
    rpc: RpcClient,
    ledger: str,
    subject: str,
    rows: Iterable[Mapping[str, Any]],
    from_block: int = 0,
    *,
    complete: bool = True,
) -> list[Claim]:
    """The service's list of ``subject``'s claims, each the claim the chain stores and (with
    ``complete``, an unfiltered list) none of her filed claims left out."""
    given = list(rows)
    truth = verify_claims(rpc, ledger, given)
    for claim in truth:
        if claim.subject.lower() != subject.lower():
            raise ServiceContradictedError(
                f"the service lists claim 0x{claim.claim_id.hex()} of {claim.subject} as yours"
            )
    if complete:
        filed = {
            _hex(i) for i in filed_claim_ids(rpc, ledger, subject=subject, from_block=from_block)
        }
        missing = filed - {str(r["claim_id"]).lower() for r in given}
        if missing:
            raise ServiceContradictedError(
                f"the service leaves out {len(missing)} of your claims the chain shows "
                f"({sorted(missing)[0]} ...)"
            )
    return truth


def check_event(rpc: RpcClient, ledger: str, subject: str, data: Mapping[str, Any]) -> None:
    """A claim event the service sent is a log of the claims companion, in the receipt of the
    transaction it names on the reader's node, about ``subject``, with the arguments sent."""
    tx = str(data.get("tx_hash") or "")
    receipt = rpc.call("eth_getTransactionReceipt", [tx]) if tx else None
    if not receipt or int(str(receipt.get("status", "0x0")), 16) != 1:
        raise ServiceContradictedError(f"claim event: no successful transaction {tx!r} on chain")
    address = claims_address(ledger).lower()
    logs = [
        lg
        for lg in receipt.get("logs") or []
        if str(lg.get("address", "")).lower() == address
        and int(str(lg.get("logIndex", "0x0")), 16) == int(data.get("log_index", -1))
    ]
    event = claims_abi().decode_log(logs[0]) if logs else None
    if event is None or event.name not in EVENTS:
        raise ServiceContradictedError(
            f"claim event: transaction {tx} holds no claim log at index {data.get('log_index')}"
        )
    chain = event_json(event)
    if chain["subject"].lower() != subject.lower():
        raise ServiceContradictedError(f"claim event: the log is about {chain['subject']}")
    for name in ("event", "claim_id", "department", "at", "asset_id", "reason_code"):
        if str(chain[name]).lower() != str(data.get(name)).lower():
            raise ServiceContradictedError(
                f"claim event {chain['claim_id']}: the service says {name} {data.get(name)!r}, "
                f"the chain {chain[name]!r}"
            )


__all__ = ["EVENTS", "check_event", "check_subject_listing", "event_json", "subject_events"]
