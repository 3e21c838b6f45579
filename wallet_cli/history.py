"""``datasafe history``: who accessed which fields of my data, when, why, with the proof.

With a service configured the rows come from its index (``GET /v1/me/history``, signed),
``--since`` takes the cursor the previous answer printed, and ``--follow`` streams
``GET /v1/me/events`` (server-sent events, resumed with ``Last-Event-ID`` after a dropped
connection). With only ``--rpc`` (no service), or while the service has no index yet, the
rows are decoded straight from the chain's events; there ``--since`` is a block number.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import typer

from api.client import DataSafeClient, DataSafeProblemError
from wallet_cli import _chain, _trace, sealed
from wallet_cli._context import JsonOpt, State, command, state
from wallet_cli._home import Profile
from wallet_cli._progress import Step, counting, progress
from wallet_cli._render import purpose_words, table, when
from wallet_cli.contacts import name_of
from wallet_cli.errors import UserError

app = typer.Typer(help="Who accessed my data (data tracker).", no_args_is_help=True)

_WATCHING = "Watching for new events (Ctrl-C to stop)"

COLUMNS = ["when", "event", "who", "fields", "purpose", "use", "proof (tx)"]


def _fields(mask: int | None, grant: dict[str, Any] | None) -> str:
    """Field names of an access mask, named through the grant (its fields, in bit order)."""
    if mask is None:
        return "-"
    by_bit: dict[int, str] = {}
    if grant is not None and grant.get("fields"):
        granted = int(grant["terms"]["fields_mask"])
        bits = [i for i in range(64) if granted >> i & 1]
        by_bit = dict(zip(bits, grant["fields"], strict=False))
    return ", ".join(by_bit.get(i, f"field {i}") for i in range(64) if mask >> i & 1)


def _rows_from_chain(
    rpc: str, ledger: str, start: int, me: str, step: Step | None = None
) -> tuple[list[dict[str, Any]], int]:
    head = _chain.block_number(rpc)
    rows = [
        r
        for r in _trace.trace(rpc, ledger, start, head, on_blocks=step)
        if r["event"] in ("accessed", "refused")
        and me.lower() in (str(r["subject"]).lower(), str(r["institution"]).lower())
    ]
    return rows + [c for c in claim_rows(rpc, ledger, me, start) if c["block"] <= head], head


_CLAIM_EVENTS = {
    "ClaimFiled": "claim_filed",
    "ClaimFulfilled": "claim_fulfilled",
    "ClaimRefused": "claim_refused",
}


def claim_row(e: dict[str, Any]) -> dict[str, Any]:
    """A claim event (:func:`ledger.claims_history.event_json`, or the service's stream) in
    the history's shape: the department in the "who" column."""
    return {
        "block": e["block_number"],
        "time": e["at"],
        "tx_hash": e["tx_hash"],
        "log_index": e["log_index"],
        "event": _CLAIM_EVENTS[e["event"]],
        "claim_id": e["claim_id"],
        "grant_id": None,
        "asset_id": e.get("asset_id"),
        "subject": e["subject"],
        "institution": e["department"],
        "purpose": None,
        "fields_mask": None,
        "fields": None,
        "use": None,
        "reason": e.get("reason") or (f"code {e['reason_code']}" if e.get("reason_code") else None),
    }


def claim_rows(rpc: str, ledger: str, me: str, start: int) -> list[dict[str, Any]]:
    """Her claims' events read from her own node (none where the claims companion is not the
    pinned code: then there is nothing to believe)."""
    from ledger.claims_history import subject_events
    from ledger.companions import CompanionError, check_companions

    with _chain.rpc_client(rpc) as r:
        try:
            check_companions(r, ledger)
        except CompanionError:
            return []
        return [claim_row(e) for e in subject_events(r, ledger, me, start)]


def service_row(item: dict[str, Any]) -> dict[str, Any]:
    """A ``/v1/me/history`` row in the wallet's shape (the chain path's keys)."""
    return {
        "block": item["block_number"],
        "time": item["at"],
        "tx_hash": item["tx_hash"],
        "log_index": item["log_index"],
        "event": _trace.event_name(str(item["kind"])),
        "grant_id": item["grant_id"],
        "asset_id": item["asset_id"],
        "subject": item["subject"],
        "institution": item["institution"],
        "purpose": item["purpose"],
        "fields_mask": item["fields_mask"],
        "fields": item.get("fields"),
        "use": item.get("use"),
        "reason": None,
    }


def _from_service(c: DataSafeClient, since: str | None) -> tuple[list[dict[str, Any]], Any, int]:
    """Every row after ``since`` (paging while the service has more), the last cursor and the
    last block the service's index covers.

    Raises ``DataSafeProblemError`` ``not_ready`` when the service has no index yet.
    """
    rows: list[dict[str, Any]] = []
    cursor = since
    while True:
        params: dict[str, Any] = {"limit": 500}
        if cursor:
            params["since"] = cursor
        page = c.get("/v1/me/history", params=params)
        if page.get("indexed_to") is None:
            raise DataSafeProblemError(503, {"code": "not_ready", "detail": "no index yet"})
        rows += [service_row(i) for i in page["items"]]
        cursor = page["cursor"]
        if not page["has_more"]:
            return rows, cursor, int(page["indexed_to"])


#: The lifecycle rows in the subject's words (issue 17): told of a correction, and what the
#: institution acknowledged ("deleted, acknowledged on <time>").
EVENT_WORDS = {
    "recall": "told of correction",
    "recall_acknowledged": "correction acknowledged",
    "deletion_acknowledged": "deleted, acknowledged",
    "claim_filed": "claim filed",
    "claim_fulfilled": "claim answered: issued",
    "claim_refused": "claim refused",
}


def _claim_line(st: State, r: dict[str, Any]) -> tuple[Any, ...]:
    what = {
        "claim_filed": f"claim {str(r['claim_id'])[:10]}…",
        "claim_fulfilled": f"asset {str(r['asset_id'])[:10]}…",
        "claim_refused": f"refused: {r['reason']}",
    }[r["event"]]
    words = EVENT_WORDS[r["event"]]
    return (
        when(r["time"]),
        words,
        name_of(st, str(r["institution"])),
        what,
        "-",
        "-",
        r["tx_hash"],
    )


def _line(st: State, grants: dict[str, dict[str, Any]], r: dict[str, Any]) -> tuple[Any, ...]:
    if r.get("claim_id"):
        return _claim_line(st, r)
    if r.get("fields") is not None:
        what = ", ".join(r["fields"])
    else:
        what = _fields(r["fields_mask"], grants.get(str(r["grant_id"]).lower()))
    if r["event"] == "refused":
        what = f"refused: {r['reason']}"
    return (
        when(r["time"]),
        EVENT_WORDS.get(r["event"], r["event"]),
        name_of(st, str(r["institution"])),
        what,
        purpose_words(int(r["purpose"] or 0)),
        r["use"] or "-",
        r["tx_hash"],
    )


def _print_row(st: State, grants: dict[str, dict[str, Any]], r: dict[str, Any]) -> None:
    if st.json:
        typer.echo(json.dumps(r, default=str, sort_keys=True))
    else:
        st.console.print("  ".join(str(v) for v in _line(st, grants, r)))


@app.command("list")
@command
def list_(
    since: Annotated[
        str | None,
        typer.Option(help="Only what came after this cursor (printed by the last answer)"),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep watching for new events")
    ] = False,
    follow_for: Annotated[
        float, typer.Option(help="With --follow: stop after N seconds (0 = until Ctrl-C)")
    ] = 0.0,
    interval: Annotated[
        float, typer.Option(help="With --follow on the chain: polling interval (s)")
    ] = 2.0,
    json_out: JsonOpt = False,
) -> None:
    """Accesses to my data and changes to my grants, each with the transaction proving it.

    From the service's index when a service is configured (pass --since CURSOR to see only
    what is new); straight from chain events with --rpc and no service.

    Example: datasafe history list --follow --since 0x…   (cursor from the last answer)
    """
    st = state()
    p, key = st.unlock()
    api = _api_configured(st, p)
    if api:
        with st.client(key, p) as c:
            grants = _grants(c)
            try:
                rows, cursor, indexed_to = _from_service(c, since)
            except DataSafeProblemError as exc:
                if exc.code == "invalid_cursor":
                    raise UserError(
                        f"--since: {exc.detail or 'not a cursor of this history'} (invalid_cursor)",
                        code="invalid_cursor",
                    ) from None
                fallback = (
                    st.rpc(p) if exc.code in _trace.INDEX_MISSING | {"role_required"} else None
                )
                if fallback is None:
                    raise
            else:
                claims, cursor = _service_claims(st, c, p, since, indexed_to, cursor)
                _show(st, grants, rows + claims, "service", cursor, sealed.for_history(st, c, p))
                if follow:
                    shown = {(r["block"], r["log_index"]) for r in claims}
                    _follow_service(st, c, key, grants, cursor, follow_for, shown)
                return
            pin = st.require_pin(c, p)
            info = {"ledger_address": pin.ledger_address, "deploy_block": pin.deploy_block}
        _chain_history(st, p, fallback, info, grants, since, follow, follow_for, interval)
        return
    rpc = st.rpc(p, required="history without a service")
    assert rpc is not None
    pin = st.require_pin(None, p)
    info = {"ledger_address": pin.ledger_address, "deploy_block": pin.deploy_block}
    _chain_history(st, p, rpc, info, {}, since, follow, follow_for, interval)


def _service_claims(
    st: State, c: DataSafeClient, p: Profile, since: str | None, indexed_to: int, cursor: Any
) -> tuple[list[dict[str, Any]], Any]:
    """Her claims' events from her own node (with --rpc), as far as the service's index goes
    and after ``since``; the cursor moved past the last of them (any row the index adds later
    sorts after an event of a block it already covers)."""
    from ledger.trace import TraceFilter, decode_cursor, encode_cursor

    rpc = st.rpc(p)
    if rpc is None:
        return [], cursor
    pin = st.require_pin(c, p)
    rows = claim_rows(rpc, pin.ledger_address, p.address, pin.deploy_block)
    rows = [r for r in rows if r["block"] <= indexed_to]
    flt = TraceFilter(subject=p.address)
    after = decode_cursor(since, flt, "asc") if since else None
    keyed = [((r["time"], r["block"], r["log_index"], 0), r) for r in rows]
    keyed = [(k, r) for k, r in keyed if after is None or k > after]
    ends = [k for k, _ in keyed[-1:]] + ([decode_cursor(cursor, flt, "asc")] if cursor else [])
    if ends:
        cursor = encode_cursor(max(ends), flt, "asc")
    return [r for _, r in keyed], cursor


def _api_configured(st: State, p: Profile) -> bool:
    try:
        st.api_base(p)
    except UserError:
        return False
    return True


def _grants(c: DataSafeClient) -> dict[str, dict[str, Any]]:
    try:
        return {g["grant_id"].lower(): g for g in c.get_all("/v1/grants")}
    except DataSafeProblemError:
        return {}


def _show(
    st: State,
    grants: dict[str, dict[str, Any]],
    rows: list[dict[str, Any]],
    source: str,
    cursor: Any,
    seals: list[dict[str, Any]] | None = None,
) -> None:
    for r in rows:
        if r.get("fields") is None:
            r["fields"] = (grants.get(str(r["grant_id"]).lower()) or {}).get("fields")
    rows = sorted(rows, key=lambda r: (r["time"], r["block"], r["log_index"]))
    claims = [r for r in rows if r.get("claim_id")]
    accesses = [r for r in rows if r["event"] in ("accessed", "refused")]
    changes = [r for r in rows if r["event"] not in ("accessed", "refused") and r not in claims]

    def human(con: Any) -> None:
        table(
            con,
            f"History (from the {source})",
            COLUMNS,
            (_line(st, grants, r) for r in rows),
        )
        for item in seals or []:
            con.print(sealed.line(st, item))
        if cursor is not None:
            con.print(f"cursor: {cursor}  (pass --since to see only what is new)")

    st.emit(
        {
            "source": source,
            "accesses": accesses,
            "changes": changes,
            "claims": claims,
            "sealed": seals or [],
            "cursor": cursor,
        },
        human,
    )


def _follow_service(
    st: State,
    c: DataSafeClient,
    key: bytes,
    grants: dict[str, dict[str, Any]],
    cursor: str | None,
    follow_for: float,
    shown: set[tuple[int, int]],
) -> None:
    """Stream ``/v1/me/events``; reconnect with ``Last-Event-ID`` if the connection drops.

    A claim event is printed once, and only once the chain shows it (with --rpc)."""
    p = st.profile()
    rpc = st.rpc(p)
    pin = st.require_pin(c, p) if rpc is not None else None

    def claim(data: dict[str, Any]) -> dict[str, Any] | None:
        if rpc is not None and pin is not None:
            from ledger.claims_history import check_event

            with _chain.rpc_client(rpc) as r:
                check_event(r, pin.ledger_address, p.address, data)
        place = (data["block_number"], data["log_index"])
        if place in shown:
            return None
        shown.add(place)
        return claim_row(data)

    ends = time.monotonic() + follow_for if follow_for > 0 else None
    with progress(st, _WATCHING, transient=True) as step:
        seen = counting(step)
        while ends is None or time.monotonic() < ends:
            cursor = _stream_once(st, c, key, grants, cursor, ends, seen, claim)
    if not st.json and cursor is not None:
        st.console.print(f"cursor: {cursor}")


def _stream_once(
    st: State,
    c: DataSafeClient,
    key: bytes,
    grants: dict[str, dict[str, Any]],
    cursor: str | None,
    ends: float | None,
    seen: Callable[[int], None],
    claim: Callable[[dict[str, Any]], dict[str, Any] | None],
) -> str | None:
    """One connection to ``/v1/me/events``: its rows printed; the cursor to resume from."""
    params: dict[str, Any] = {}
    if ends is not None:
        params["max_seconds"] = max(0.5, ends - time.monotonic())
    headers = {"Accept": "text/event-stream"}
    if cursor:
        headers["Last-Event-ID"] = cursor
    try:
        with _trace.open_stream(c, key, "/v1/me/events", params=params, headers=headers) as resp:
            for ev_id, name, data in _trace.sse(resp):
                cursor = ev_id or cursor
                row = claim(json.loads(data)) if name.startswith("claim_") else None
                if not name.startswith("claim_"):
                    row = service_row(json.loads(data))
                if row is not None:
                    _print_row(st, grants, row)
                    seen(1)
    except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ReadTimeout):
        time.sleep(0.5)  # dropped: resume from the last event seen
        return cursor
    if ends is None:
        time.sleep(0.5)
    return cursor


def _chain_history(
    st: State,
    p: Profile,
    rpc: str,
    info: dict[str, Any],
    grants: dict[str, dict[str, Any]],
    since: str | None,
    follow: bool,
    follow_for: float,
    interval: float,
) -> None:
    ledger = str(info["ledger_address"])
    start = int(info["deploy_block"])
    if since is not None:
        if not since.isdigit():
            raise UserError(
                "reading the chain, --since is a block number (cursors are the service's)"
            )
        start = max(start, int(since) + 1)
    with progress(st, "Reading ledger events", unit="blocks") as step:
        rows, head = _rows_from_chain(rpc, ledger, start, p.address, step)
    _show(st, grants, rows, "chain", head, sealed.chain_seals(rpc, ledger, p.address))
    if not follow:
        return
    ends = time.monotonic() + follow_for if follow_for > 0 else None
    with progress(st, _WATCHING, transient=True) as step:
        seen = counting(step)
        while ends is None or time.monotonic() < ends:
            time.sleep(interval)
            if _chain.block_number(rpc) <= head:
                continue
            # from the deployment again: an access needs its grant's event for its context
            new, new_head = _rows_from_chain(rpc, ledger, int(info["deploy_block"]), p.address)
            fresh = [r for r in new if r["block"] > head]
            head = max(head, new_head)
            step(0, note=f"chain head {head}")
            for r in fresh:
                r["fields"] = (grants.get(str(r["grant_id"]).lower()) or {}).get("fields")
                _print_row(st, grants, r)
            seen(len(fresh))
