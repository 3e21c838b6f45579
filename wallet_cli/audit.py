"""``datasafe audit``: the regulator's trace (the service's index, or chain events) and
``audit verify``, which re-derives trace rows from the chain and reports every difference."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from api.client import DataSafeClient, DataSafeProblemError
from ledger import trust
from wallet_cli import _chain, _trace
from wallet_cli._context import JsonOpt, State, command, state
from wallet_cli._progress import counting, progress
from wallet_cli._render import purpose_words, table, when
from wallet_cli.contacts import name_of
from wallet_cli.errors import EXIT_REFUSED, UserError
from wallet_cli.grant import parse_purpose

app = typer.Typer(
    help="Regulator: trace grants and accesses; verify them against the chain.",
    no_args_is_help=True,
)

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


def _chain_source(st: State) -> tuple[str, str, int]:
    """RPC, ledger address and deploy block of the pinned deployment (never /v1/info)."""
    rpc = st.rpc(required="audit trace (it reads chain events)")
    assert rpc is not None
    if _api_configured(st):
        with st.client(None) as c:
            pin = st.require_pin(c)
    else:
        pin = st.require_pin(None)
    return rpc, pin.ledger_address, pin.deploy_block


def _api_configured(st: State) -> bool:
    return bool(st.api_url or st.settings.api)


def _service_params(
    subject: str | None,
    inst: str | None,
    asset: str | None,
    issuer: str | None,
    grant: str | None,
    code: int | None,
    lo: int | None,
    hi: int | None,
    from_block: int | None,
    to_block: int | None,
) -> dict[str, Any]:
    values = {
        "subject": subject,
        "institution": inst,
        "asset_id": asset,
        "issuer": issuer,
        "grant_id": grant,
        "purpose": code,
        "from_time": lo,
        "to_time": hi,
        "from_block": from_block,
        "to_block": to_block,
    }
    return {k: v for k, v in values.items() if v is not None}


_ROUTES = {"accesses": ["accesses"], "consents": ["consents"], "all": ["accesses", "consents"]}


def _order_key(r: dict[str, Any]) -> tuple[int, int, int]:
    return (int(r["at"]), int(r["block_number"]), int(r["log_index"]))


def service_rows(
    c: DataSafeClient,
    kind: str,
    params: dict[str, Any],
    page_size: int,
    on_rows: Callable[[int], None] | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Every matching row, page by page (keyset cursor), merged in chronological order."""
    rows: list[dict[str, Any]] = []
    indexed_to: int | None = None
    for route in _ROUTES[kind]:
        cursor: str | None = None
        while True:
            q = dict(params, limit=page_size, **({"cursor": cursor} if cursor else {}))
            page = c.get(f"/v1/trace/{route}", params=q)
            indexed_to = page["indexed_to"]
            rows += page["items"]
            if on_rows is not None:
                on_rows(len(page["items"]))
            cursor = page["next_cursor"]
            if cursor is None:
                break
    if indexed_to is None:
        raise DataSafeProblemError(503, {"code": "not_ready", "detail": "no index yet"})
    rows.sort(key=_order_key)
    for r in rows:
        r["event"] = _trace.event_name(str(r["kind"]))
    return rows, indexed_to


def exported_rows(
    c: DataSafeClient,
    key: bytes,
    kind: str,
    params: dict[str, Any],
    on_bytes: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Every matching row through the streamed JSON export (``format=json``)."""
    rows: list[dict[str, Any]] = []
    for route in _ROUTES[kind]:
        with _trace.open_stream(
            c, key, f"/v1/trace/{route}", params=dict(params, format="json")
        ) as resp:
            body = bytearray()
            for chunk in resp.iter_bytes():
                body += chunk
                if on_bytes is not None:
                    on_bytes(len(chunk))
            rows += json.loads(bytes(body))
    rows.sort(key=_order_key)
    return rows


def _stream_export(
    st: State, c: DataSafeClient, key: bytes, kind: str, params: dict[str, Any], fmt: str
) -> None:
    """Pass the service's streamed export through to stdout (one route: as it arrives)."""
    with progress(st, "Exporting trace rows", unit="bytes") as step:
        received = counting(step)
        if len(_ROUTES[kind]) == 1:
            with _trace.open_stream(
                c, key, f"/v1/trace/{_ROUTES[kind][0]}", params=dict(params, format=fmt)
            ) as resp:
                out = sys.stdout
                for chunk in resp.iter_text():
                    out.write(chunk)
                    received(len(chunk))
                out.flush()
            return
        rows = exported_rows(c, key, kind, params, received)
    if fmt == "json":
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    from ledger.trace import CSV_COLUMNS

    columns = [*CSV_COLUMNS, "fields"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        fields = r.get("fields")
        r["fields"] = ";".join(fields) if fields is not None else ""
        w.writerow([r[k] for k in columns])
    typer.echo(buf.getvalue(), nl=False)


@app.command("trace")
@command
def trace_(
    subject: Annotated[str | None, typer.Option(help="Data subject address")] = None,
    institution: Annotated[str | None, typer.Option(help="Institution: contact or address")] = None,
    asset: Annotated[str | None, typer.Option(help="Asset id")] = None,
    issuer: Annotated[
        str | None, typer.Option(help="Issuing department: contact or address")
    ] = None,
    grant: Annotated[str | None, typer.Option(help="Grant id")] = None,
    purpose: Annotated[str | None, typer.Option(help="Purpose code or words")] = None,
    since: Annotated[str | None, typer.Option(help="From this day (YYYY-MM-DD, UTC)")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this day (YYYY-MM-DD, UTC)")] = None,
    from_block: Annotated[int | None, typer.Option(min=0, help="From this block")] = None,
    to_block: Annotated[int | None, typer.Option(min=0, help="Up to this block")] = None,
    kind: Annotated[str, typer.Option(help="accesses | consents | all")] = "all",
    page_size: Annotated[
        int, typer.Option(min=1, max=1000, help="Rows per page asked of the service")
    ] = 500,
    fmt: Annotated[str, typer.Option("--format", help="table | json | csv")] = "table",
    json_out: JsonOpt = False,
) -> None:
    """Every grant, revocation, pause, resume, expiry and access, with the transaction proving it.

    From the service's index (GET /v1/trace/…, regulator-signed, paged by cursor; json/csv
    through its streamed export) when a service is configured; straight from chain events
    with only --rpc and --manifest (or while the service has no index yet).

    Example: datasafe -p regulator audit trace --institution 0x90F7… --since 2026-01-01
    --format csv
    """
    st = state()
    if fmt not in ("table", "json", "csv"):
        raise UserError(f"--format must be table, json or csv, not {fmt!r}")
    if kind not in _ROUTES:
        raise UserError(f"--kind must be accesses, consents or all, not {kind!r}")
    if json_out or st.json:
        fmt = "json"
    inst = _address(st, institution, "institution")
    iss = _address(st, issuer, "issuer")
    code = parse_purpose(purpose) if purpose is not None else None
    lo, hi = _day(since, False), _day(until, True)
    if _api_configured(st) and st.manifest_path is None:
        params = _service_params(
            subject, inst, asset, iss, grant, code, lo, hi, from_block, to_block
        )
        p, key = st.unlock()
        with st.client(key, p) as c:
            try:
                with progress(st, "Fetching trace rows", unit="rows") as step:
                    rows, indexed_to = service_rows(c, kind, {**params}, page_size, counting(step))
            except DataSafeProblemError as exc:
                if exc.code not in _trace.INDEX_MISSING or st.rpc(p) is None:
                    raise
            else:
                if fmt == "table":
                    _service_table(st, rows, indexed_to)
                else:
                    _stream_export(st, c, key, kind, params, fmt)
                return
    _chain_trace(
        st, subject, inst, asset, iss, grant, code, lo, hi, from_block, to_block, kind, fmt
    )


def _address(st: State, name: str | None, what: str) -> str | None:
    if name is None:
        return None
    addr = st.home.contacts().get(name, name).lower()
    if not addr.startswith("0x") or len(addr) != 42:
        raise UserError(
            f"unknown {what} {name!r}: not an address or contact", code="unknown_member"
        )
    return addr


def _short(value: str) -> str:
    """An id or address cut for a table (the full value is in --format json/csv)."""
    return value[:8] + "…" + value[-4:] if value.startswith("0x") and len(value) > 14 else value


def _service_table(st: State, rows: list[dict[str, Any]], indexed_to: int | None) -> None:
    table(
        st.console,
        f"Trace ({len(rows)} events, from the service's index to block {indexed_to})",
        ["when", "event", "grant", "subject", "institution", "fields", "purpose", "use", "tx"],
        [
            (
                when(r["at"]),
                r["event"],
                _short(str(r["grant_id"])),
                _short(name_of(st, str(r["subject"]))),
                _short(name_of(st, str(r["institution"]))),
                ", ".join(r["fields"]) if r.get("fields") is not None else r["fields_mask"],
                purpose_words(int(r["purpose"] or 0)),
                r["use"] or "",
                r["tx_hash"],
            )
            for r in rows
        ],
    )


def _chain_trace(
    st: State,
    subject: str | None,
    inst: str | None,
    asset: str | None,
    issuer: str | None,
    grant: str | None,
    code: int | None,
    lo: int | None,
    hi: int | None,
    from_block: int | None,
    to_block: int | None,
    kind: str,
    fmt: str,
) -> None:
    if issuer is not None:
        raise UserError("--issuer needs the service's index (pass --api URL)")
    rpc, ledger, start = _chain_source(st)
    with progress(st, "Reading ledger events", unit="blocks") as step:
        rows = _trace.trace(
            rpc,
            ledger,
            max(start, from_block or 0),
            to_block if to_block is not None else "latest",
            on_blocks=step,
            deploy_block=start,
        )
    kinds = {
        "all": None,
        "accesses": {"accessed", "refused"},
        "consents": {"granted", "revoked", "paused", "resumed"},
    }[kind]

    def keep(r: dict[str, Any]) -> bool:
        return (
            (kinds is None or r["event"] in kinds)
            and (subject is None or str(r["subject"]).lower() == subject.lower())
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
def verify_(
    from_block: Annotated[
        int | None, typer.Option(min=0, help="First block of the range (default: deployment)")
    ] = None,
    to_block: Annotated[
        int | None,
        typer.Option(min=0, help="Last block of the range (default: what the index covers)"),
    ] = None,
    rows_file: Annotated[
        list[Path] | None,
        typer.Option("--rows", help="Check this trace export (JSON) instead of asking the service"),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Re-derive trace rows from chain events and report every missing, extra or altered row.

    With --from-block/--to-block/--rows: the service's trace rows for the range (or an
    exported JSON file) are checked against the chain with only --rpc and --manifest
    (ledger.audit.verify_rows). Without them: the service's grant list against the chain,
    and its sealed access records and claims against the companions. Exit 3 when anything
    differs.

    Example: datasafe -p regulator --rpc http://127.0.0.1:8545 --manifest deployment.json
    audit verify --from-block 1 --to-block 500
    """
    st = state()
    if from_block is None and to_block is None and not rows_file:
        _verify_grants(st)
        return
    from ledger.audit import verify_rows

    rpc = st.rpc(required="audit verify")
    assert rpc is not None
    behind: dict[str, Any] = {}
    claimed: list[dict[str, Any]] = []
    if rows_file:
        pin = st.require_pin(None)
        first = pin.deploy_block if from_block is None else from_block
        claimed = _load_exports(rows_file)
        last = _chain.block_number(rpc) if to_block is None else to_block
    else:
        p, key = st.unlock()
        with st.client(key, p) as c:
            pin = st.require_pin(c, p)
            first = pin.deploy_block if from_block is None else from_block
            indexed = _indexed_to(c)
            # The upper bound is the head this wallet reads, never where the service stopped.
            with _chain.rpc_client(rpc) as r:
                rng = trust.audit_upper_bound(r, first, to_block, indexed)
            last = rng.last
            params = {"from_block": first, "to_block": last}
            with progress(st, "Fetching the service's rows", unit="bytes") as step:
                claimed = exported_rows(c, key, "all", params, counting(step))
        if to_block is None:
            behind = {"head": rng.head, "indexed_to": indexed, "index_behind": rng.index_behind}
    if last < first:
        raise UserError(f"empty range: --from-block {first} is after --to-block {last}")
    with progress(st, f"Re-deriving rows from chain events, blocks {first}..{last}"):
        report = verify_rows(rpc, pin, claimed, from_block=first, to_block=last).to_json()
    if behind:
        report |= behind
        if behind["index_behind"]:
            report["ok"] = False
            report["drift"] = (
                f"the service's index stops at block {behind['indexed_to']}, "
                f"{behind['index_behind']} block(s) behind the chain head {behind['head']}"
            )

    st.emit(report, lambda con: _show_report(con, report, first, last))
    if not report["ok"]:
        raise typer.Exit(code=EXIT_REFUSED)


def _load_exports(rows_file: list[Path]) -> list[dict[str, Any]]:
    """The rows of JSON trace exports, in the order given."""
    claimed: list[dict[str, Any]] = []
    for path in rows_file:
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: not a JSON trace export ({exc})") from None
        if not isinstance(loaded, list):
            raise UserError(f"{path}: not a JSON trace export (expected a list of rows)")
        claimed += loaded
    return claimed


def _show_report(con: Console, report: dict[str, Any], first: int, last: int) -> None:
    n = len(report["missing"]) + len(report["extra"]) + len(report["altered"])
    verdict = "everything matches" if report["ok"] else f"{n} difference(s)"
    con.print(
        f"blocks {first}..{last}: {report['chain_rows']} rows on chain, "
        f"{report['claimed_rows']} claimed: {verdict}"
    )
    if report.get("drift"):
        con.print(f"drift: {report['drift']}")
    diffs = [
        *(("missing", r["block_number"], r["log_index"], r["kind"], "") for r in report["missing"]),
        *(("extra", r["block_number"], r["log_index"], r["kind"], "") for r in report["extra"]),
        *(
            (
                "altered",
                a["block_number"],
                a["log_index"],
                a["chain"]["kind"],
                "; ".join(
                    f"{k}: chain {v['chain']!r} vs claimed {v['claimed']!r}"
                    for k, v in a["fields"].items()
                ),
            )
            for a in report["altered"]
        ),
    ]
    if diffs:
        table(con, "Differences", ["problem", "block", "log", "kind", "detail"], diffs)


def _indexed_to(c: DataSafeClient) -> int | None:
    """Where the service says its index ends (a claim: only used to report drift)."""
    page = c.get("/v1/trace/accesses", params={"limit": 1})
    return None if page["indexed_to"] is None else int(page["indexed_to"])


def _companions(st: State, c: DataSafeClient, p: Any, rpc: str) -> dict[str, Any]:
    """The service's sealed access records and claims against the chain (a regulator's view:
    everyone's), by the wallet's one check of each: ``ledger.sealed.check_listing`` (every
    record the companion holds, none invented or altered) and the claims re-derived from the
    claims contract's logs (``ledger.claims.derive_claims``)."""
    from ledger.trust import ServiceContradictedError
    from wallet_cli import claims, sealed

    try:
        seals, seal_drift = len(sealed.verified_seals(st, c, p, None)[0]), []
    except ServiceContradictedError as exc:
        seals, seal_drift = None, [str(exc)]
    checked: dict[str, Any]
    try:
        truth, claim_drift = claims.claims_drift(st, c, rpc)
        checked = {"on_chain": len(truth), "drift": claim_drift}
    except DataSafeProblemError as exc:
        if exc.code != "not_ready":
            raise
        # A service without its claims index lists no claims: said, not counted as drift.
        checked = {"on_chain": None, "drift": [], "not_checked": str(exc)}
    return {"sealed": {"records": seals, "drift": seal_drift}, "claims": checked}


def _verify_grants(st: State) -> None:
    """The service's grant list (status, uses) against the chain's consent events; its sealed
    access records and claims against the companions (:func:`_companions`)."""
    p, key = st.unlock()
    rpc = st.rpc(p, required="audit verify")
    assert rpc is not None
    with st.client(key, p) as c:
        pin = st.require_pin(c, p)
        served: list[dict[str, Any]] = c.get_all("/v1/grants")
        companions = _companions(st, c, p, rpc)
    with progress(st, "Reading ledger events", unit="blocks") as step:
        rows = _trace.trace(rpc, pin.ledger_address, pin.deploy_block, on_blocks=step)
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
    data |= companions
    others = [(what, line) for what in ("sealed", "claims") for line in companions[what]["drift"]]

    def human(con: Console) -> None:
        verdict = "no drift" if not drift else f"{len(drift)} difference(s)"
        con.print(f"{len(served)} grants served, {len(status)} on chain: {verdict}")
        con.print(
            f"sealed access records, claims: {'no drift' if not others else 'drift'} "
            "(checked against the companions)"
        )
        if companions["claims"].get("not_checked"):
            con.print(f"claims not checked: {companions['claims']['not_checked']}")
        if drift or others:
            rows = [(d["grant_id"], d["problem"]) for d in drift] + others
            table(con, "Drift", ["grant / record", "problem"], rows)

    st.emit(data, human)
    if drift or others:
        raise typer.Exit(code=3)
