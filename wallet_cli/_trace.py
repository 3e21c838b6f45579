"""Consent and access trails rebuilt straight from the ledger's events (no index trusted)."""

from __future__ import annotations

from typing import Any

from eth_utils.address import to_checksum_address

from ledger.models import Reason
from wallet_cli import _chain

TRACE_EVENTS = (
    "ConsentGranted",
    "ConsentRevoked",
    "ConsentPaused",
    "ConsentResumed",
    "Accessed",
    "AccessRefused",
)
_NAMES = {
    "ConsentGranted": "granted",
    "ConsentRevoked": "revoked",
    "ConsentPaused": "paused",
    "ConsentResumed": "resumed",
    "Accessed": "accessed",
    "AccessRefused": "refused",
}


def _hex(b: Any) -> str:
    return "0x" + bytes(b).hex() if isinstance(b, bytes | bytearray) else str(b)


def trace(
    rpc_url: str, ledger: str, from_block: int, to_block: int | str = "latest"
) -> list[dict[str, Any]]:
    """Every consent and access event in chain order, each with its grant's context."""
    events = _chain.get_events(
        rpc_url, ledger, TRACE_EVENTS, from_block=from_block, to_block=to_block
    )
    grants: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for e in events:
        gid = _hex(e.args["grantId"])
        if e.name == "ConsentGranted":
            t = e.args["terms"]
            grants[gid] = {
                "asset_id": _hex(t[0]),
                "institution": to_checksum_address(t[1]),
                "purpose": int(t[2]),
                "fields_mask": int(t[3]),
                "expiry": int(t[5]),
                "max_uses": int(t[6]),
                "subject": str(e.args["owner"]),
                "grantor": str(e.args["grantor"]),
            }
        g = grants.get(gid, {})
        row = {
            "block": e.block_number,
            "time": e.args.get("timestamp"),
            "tx_hash": e.tx_hash,
            "log_index": e.log_index,
            "event": _NAMES[e.name],
            "grant_id": gid,
            "asset_id": g.get("asset_id"),
            "subject": g.get("subject"),
            "institution": g.get("institution"),
            "purpose": g.get("purpose"),
            "fields_mask": g.get("fields_mask"),
            "use": None,
            "reason": None,
            "by": str(e.args.get("by") or e.args.get("grantor") or e.args.get("custodian") or ""),
        }
        if e.name == "Accessed":
            row["fields_mask"] = int(e.args["fieldsMask"])
            row["use"] = int(e.args["use"])
        if e.name == "AccessRefused":
            row["reason"] = Reason(int(e.args["reason"])).name.lower()
        rows.append(row)
    missing = [r["block"] for r in rows if r["time"] is None]
    if missing:
        times = _chain.block_times(rpc_url, missing)
        for r in rows:
            if r["time"] is None:
                r["time"] = times[r["block"]]
    return rows
