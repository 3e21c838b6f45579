"""``datasafe audit``: the regulator's trace straight from chain events, and index drift."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Annotated, Any

import typer
from rich.console import Console

from wallet_cli import _trace
from wallet_cli._context import JsonOpt, State, command, state
from wallet_cli._render import purpose_words, table, when
from wallet_cli.contacts import name_of
from wallet_cli.errors import UserError
from wallet_cli.grant import parse_purpose

app = typer.Typer(help="Regulator: trace grants and accesses from the chain.", no_args_is_help=True)

COLUMNS = [
    "time",
    "event",
    "grant_id",
    "subject",
    "institution",
    "asset_id",
    "purpose",
    "fields_mask",
    "use",
    "reason",
    "block",
    "tx_hash",
]


def _day(value: str | None, end: bool) -> int | None:
    if value is None:
        return None
    try:
        d = dt.datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=dt.UTC)
    except ValueError:
        raise UserError(f"{value!r} is not a date (YYYY-MM-DD)") from None
    return int(d.timestamp()) + (86_399 if end else 0)


def _source(st: State) -> tuple[str, str, int]:
    rpc = st.rpc(required="audit trace (it reads chain events)")
    assert rpc is not None
    if st.manifest_path is not None:
        from ledger.manifest import Manifest

        m = Manifest.load(st.manifest_path)
        return rpc, m.ledger_address, m.deploy_block
    if st.api_url or st.settings.api:
        with st.client(None) as c:
            info = st.info(c)
        return rpc, str(info["ledger_address"]), int(info["deploy_block"])
    raise UserError("audit needs the ledger: pass --manifest PATH (or --api URL)")


@app.command("trace")
@command
def trace_(
    subject: Annotated[str | None, typer.Option(help="Data subject address")] = None,
    institution: Annotated[str | None, typer.Option(help="Institution: contact or address")] = None,
    asset: Annotated[str | None, typer.Option(help="Asset id")] = None,
    grant: Annotated[str | None, typer.Option(help="Grant id")] = None,
    purpose: Annotated[str | None, typer.Option(help="Purpose code or words")] = None,
    since: Annotated[str | None, typer.Option(help="From this day (YYYY-MM-DD, UTC)")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this day (YYYY-MM-DD, UTC)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json | csv")] = "table",
    json_out: JsonOpt = False,
) -> None:
    """Every grant, revocation, pause, resume, access and refused access, from chain events.

    Example: datasafe --rpc http://127.0.0.1:8545 --manifest deployment.json audit trace
    --institution 0x90F7… --since 2026-01-01 --format csv
    """
    st = state()
    if fmt not in ("table", "json", "csv"):
        raise UserError(f"--format must be table, json or csv, not {fmt!r}")
    if json_out or st.json:
        fmt = "json"
    inst = None
    if institution is not None:
        inst = st.home.contacts().get(institution, institution).lower()
        if not inst.startswith("0x") or len(inst) != 42:
            raise UserError(
                f"unknown institution {institution!r}: not an address or contact",
                code="unknown_member",
            )
    code = parse_purpose(purpose) if purpose is not None else None
    lo, hi = _day(since, False), _day(until, True)
    rpc, ledger, start = _source(st)
    rows = _trace.trace(rpc, ledger, start)

    def keep(r: dict[str, Any]) -> bool:
        return (
            (subject is None or str(r["subject"]).lower() == subject.lower())
            and (inst is None or str(r["institution"]).lower() == inst)
            and (asset is None or str(r["asset_id"]).lower() == asset.lower())
            and (grant is None or r["grant_id"].lower() == grant.lower())
            and (code is None or r["purpose"] == code)
            and (lo is None or r["time"] >= lo)
            and (hi is None or r["time"] <= hi)
        )

    rows = [r for r in rows if keep(r)]
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2, default=str))
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        typer.echo(buf.getvalue(), nl=False)
    else:
        table(
            st.console,
            f"Trace ({len(rows)} events, from chain)",
            ["when", "event", "grant", "subject", "institution", "purpose", "use/reason", "tx"],
            [
                (
                    when(r["time"]),
                    r["event"],
                    r["grant_id"],
                    r["subject"],
                    name_of(st, str(r["institution"])),
                    purpose_words(int(r["purpose"] or 0)),
                    r["use"] or r["reason"] or "",
                    r["tx_hash"],
                )
                for r in rows
            ],
        )


@app.command("verify")
@command
def verify_(json_out: JsonOpt = False) -> None:
    """Check the service's grant list against the chain; report any drift.

    Example: datasafe -p regulator --rpc http://127.0.0.1:8545 audit verify
    """
    st = state()
    p, key = st.unlock()
    rpc = st.rpc(p, required="audit verify")
    assert rpc is not None
    with st.client(key, p) as c:
        info = st.info(c)
        served: list[dict[str, Any]] = c.get("/v1/grants")
    rows = _trace.trace(rpc, str(info["ledger_address"]), int(info["deploy_block"]))
    status: dict[str, str] = {}
    uses: dict[str, int] = {}
    for r in rows:
        g = r["grant_id"]
        if r["event"] in ("granted", "resumed"):
            status[g] = "active"
        elif r["event"] in ("revoked", "paused"):
            status[g] = r["event"]
        elif r["event"] == "accessed":
            uses[g] = max(uses.get(g, 0), int(r["use"]))
    drift = []
    for g in served:
        gid = g["grant_id"].lower()
        if gid not in status:
            drift.append({"grant_id": gid, "problem": "served but not on chain"})
            continue
        if g["status"] != status[gid]:
            drift.append(
                {"grant_id": gid, "problem": f"status {g['status']} vs chain {status[gid]}"}
            )
        if int(g["uses"]) != uses.get(gid, 0):
            drift.append(
                {"grant_id": gid, "problem": f"uses {g['uses']} vs chain {uses.get(gid, 0)}"}
            )
    missing = sorted(set(status) - {g["grant_id"].lower() for g in served})
    drift += [{"grant_id": g, "problem": "on chain but not served"} for g in missing]
    data = {"grants_on_chain": len(status), "grants_served": len(served), "drift": drift}

    def human(con: Console) -> None:
        verdict = "no drift" if not drift else f"{len(drift)} difference(s)"
        con.print(f"{len(served)} grants served, {len(status)} on chain: {verdict}")
        if drift:
            table(
                con, "Drift", ["grant", "problem"], [(d["grant_id"], d["problem"]) for d in drift]
            )

    st.emit(data, human)
    if drift:
        raise typer.Exit(code=3)
