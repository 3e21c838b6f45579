"""``datasafe history``: who accessed which fields of my data, when, why, with the proof."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from api.client import DataSafeProblemError
from wallet_cli import _chain, _trace
from wallet_cli._context import JsonOpt, State, command, state
from wallet_cli._render import purpose_words, table, when
from wallet_cli.contacts import name_of

app = typer.Typer(help="Who accessed my data (data tracker).", no_args_is_help=True)


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
    st: State, rpc: str, ledger: str, start: int, me: str
) -> tuple[list[dict[str, Any]], int]:
    head = _chain.block_number(rpc)
    rows = [
        r
        for r in _trace.trace(rpc, ledger, start, head)
        if r["event"] in ("accessed", "refused")
        and me.lower() in (str(r["subject"]).lower(), str(r["institution"]).lower())
    ]
    return rows, head


@app.command("list")
@command
def list_(
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep watching for new events")
    ] = False,
    follow_for: Annotated[
        float, typer.Option(help="With --follow: stop after N seconds (0 = until Ctrl-C)")
    ] = 0.0,
    interval: Annotated[float, typer.Option(help="Polling interval with --follow")] = 2.0,
    json_out: JsonOpt = False,
) -> None:
    """Accesses to my data (or, for an institution, my accesses) with the proving transaction.

    From chain events with --rpc (nothing trusted), else from the service's index.

    Example: datasafe --rpc http://127.0.0.1:8545 history list --follow
    """
    st = state()
    p, key = st.unlock()
    with st.client(key, p) as c:
        grants: dict[str, dict[str, Any]] = {}
        try:
            grants = {g["grant_id"].lower(): g for g in c.get("/v1/grants")}
        except DataSafeProblemError:
            grants = {}
        rpc = st.rpc(p, required="--follow" if follow else None)
        if rpc is not None:
            info = st.info(c)
            ledger = str(info["ledger_address"])
            rows, head = _rows_from_chain(st, rpc, ledger, int(info["deploy_block"]), p.address)
            source = "chain"
        else:
            source = "service"
            rows = [
                {
                    "block": r["block"],
                    "time": r["block_timestamp"],
                    "tx_hash": r["tx_hash"],
                    "event": "accessed",
                    "grant_id": r["grant_id"],
                    "asset_id": r["asset_id"],
                    "subject": r["owner"],
                    "institution": r["grantee"],
                    "purpose": r["purpose"],
                    "fields_mask": r["fields_mask"],
                    "use": r["use"],
                    "reason": None,
                }
                for r in c.get("/v1/access")
            ]

    def line(r: dict[str, Any]) -> tuple[Any, ...]:
        what = _fields(r["fields_mask"], grants.get(str(r["grant_id"]).lower()))
        if r["event"] == "refused":
            what = f"refused: {r['reason']}"
        return (
            when(r["time"]),
            name_of(st, str(r["institution"])),
            what,
            purpose_words(int(r["purpose"] or 0)),
            r["use"] or "-",
            r["tx_hash"],
        )

    cols = ["when", "who", "fields", "purpose", "use", "proof (tx)"]
    for r in rows:
        r["fields"] = (grants.get(str(r["grant_id"]).lower()) or {}).get("fields")
    st.emit(
        {"source": source, "accesses": rows},
        lambda con: table(con, f"Accesses (from the {source})", cols, map(line, rows)),
    )
    if not follow or rpc is None:
        return
    ends = time.monotonic() + follow_for if follow_for > 0 else None
    while ends is None or time.monotonic() < ends:
        time.sleep(interval)
        new, new_head = _rows_from_chain(st, rpc, ledger, int(info["deploy_block"]), p.address)
        fresh = [r for r in new if r["block"] > head]
        head = max(head, new_head)
        for r in fresh:
            if st.json:
                import json

                typer.echo(json.dumps(r, default=str))
            else:
                st.console.print("  ".join(str(v) for v in line(r)))
