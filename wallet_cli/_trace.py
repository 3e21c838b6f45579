"""Consent and access trails rebuilt straight from the ledger's events (no index trusted)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from api.client import DataSafeClient, DataSafeProblemError
from api.envelope import sign_request
from ledger.address import to_checksum_address
from ledger.models import Event, Reason
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


def _access_context(
    rpc_url: str, ledger: str, events: list[Event], start: int, from_block: int
) -> tuple[dict[str, int], dict[str, str]]:
    """Uses of the accessed grants before ``from_block`` (counted from ``start``) and the
    senders of the access transactions: ``Accessed`` names neither."""
    accessed = [e for e in events if e.name == "Accessed"]
    uses: dict[str, int] = {}
    if not accessed:
        return uses, {}
    senders = _chain.tx_senders(rpc_url, [e.tx_hash for e in accessed])
    if from_block > start:
        ids = sorted({_hex(e.args["grantId"]) for e in accessed})
        for e in _chain.get_events(
            rpc_url, ledger, ["Accessed"], from_block=start, to_block=from_block - 1, topics=[ids]
        ):
            gid = _hex(e.args["grantId"])
            uses[gid] = uses.get(gid, 0) + 1
    return uses, senders


def trace(
    rpc_url: str,
    ledger: str,
    from_block: int,
    to_block: int | str = "latest",
    on_blocks: Callable[[int, int], None] | None = None,
    *,
    deploy_block: int | None = None,
) -> list[dict[str, Any]]:
    """Every consent and access event in chain order, each with its grant's context.

    ``Accessed`` carries neither custodian nor use number: the custodian (``by``) is the
    transaction's sender, and a grant's n-th access in chain order is its use n, so accesses
    from ``deploy_block`` (default ``from_block``) up to ``from_block`` are counted too.
    """
    events = _chain.get_events(
        rpc_url, ledger, TRACE_EVENTS, from_block=from_block, to_block=to_block, on_blocks=on_blocks
    )
    start = from_block if deploy_block is None else deploy_block
    uses, senders = _access_context(rpc_url, ledger, events, start, from_block)
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
            uses[gid] = uses.get(gid, 0) + 1
            row["fields_mask"] = int(e.args["fieldsMask"])
            row["use"] = uses[gid]
            row["by"] = to_checksum_address(senders[e.tx_hash.lower()])
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


# ---- the service's index (GET /v1/trace/*, /v1/me/history, /v1/me/events) ---------------

#: Problem slugs meaning "the service has no index to answer from" (fall back to the chain).
INDEX_MISSING = {"not_ready"}


def event_name(kind: str) -> str:
    """The service's row kind in the wallet's words (``access`` -> ``accessed``)."""
    return "accessed" if kind == "access" else kind


@contextmanager
def open_stream(
    c: DataSafeClient,
    key: bytes,
    path: str,
    *,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Iterator[httpx.Response]:
    """A GET signed with ``key`` whose body is read as it arrives (SSE, streamed exports).

    A problem answer (status >= 400) raises :class:`DataSafeProblemError` before any byte
    of the body is handed out.
    """
    if c.chain_id is None or c.ledger_address is None:
        info = c.info()
        c.chain_id, c.ledger_address = int(info["chain_id"]), str(info["ledger_address"])
    req = c.http.build_request("GET", path, params=params, headers=headers)
    envelope = sign_request(
        key,
        chain_id=c.chain_id,
        ledger_address=c.ledger_address,
        method="GET",
        path=req.url.raw_path.decode("ascii"),
    )
    req.headers.update(envelope.to_headers())
    resp = c.http.send(req, stream=True)
    try:
        if resp.status_code >= 400:
            resp.read()
            try:
                problem = resp.json()
            except ValueError:
                problem = {"code": "http_error", "detail": resp.text[:200]}
            raise DataSafeProblemError(resp.status_code, problem)
        yield resp
    finally:
        resp.close()


def sse(resp: httpx.Response) -> Iterator[tuple[str | None, str, str]]:
    """``(id, event, data)`` of each server-sent event; comments (keep-alives) skipped."""
    ev_id: str | None = None
    ev_name = "message"
    data: list[str] = []
    for line in resp.iter_lines():
        if not line:
            if data:
                yield ev_id, ev_name, "\n".join(data)
            ev_id, ev_name, data = None, "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            ev_id = value
        elif name == "event":
            ev_name = value
        elif name == "data":
            data.append(value)
