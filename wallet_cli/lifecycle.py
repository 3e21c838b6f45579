"""Institution lifecycle commands: ``datasafe institution inbox | recall | delete``.

The inbox lists, from the service's event index, the recalls (a version this institution
pulled was corrected) and deletions (a grant that ended) still to acknowledge. ``recall`` and
``delete`` sign the acknowledgement here and check it on chain (:mod:`api.bank_lifecycle`);
``delete`` first removes the files ``datasafe pull`` saved for the grant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from api.bank_lifecycle import Acknowledged, acknowledge, delete_and_acknowledge
from ledger.lifecycle import LifecycleError
from ledger.models import AckKind
from wallet_cli import _assets
from wallet_cli._chain import rpc_client
from wallet_cli._context import JsonOpt, command, state
from wallet_cli._render import table, when
from wallet_cli.contacts import name_of, resolve_member
from wallet_cli.errors import RefusedError

app = typer.Typer(no_args_is_help=True, help="Institution: recalls and deletions owed.")

GrantArg = Annotated[str, typer.Argument(help="Grant id (0x…)")]


def _owed_cells(r: dict[str, Any]) -> list[str]:
    due = []
    if r.get("recall_age") is not None:
        due.append(f"recall (corrected {when(r['recalled_at'])})")
    if r.get("deletion_overdue") is not None:
        late = " OVERDUE" if r["deletion_overdue"] else ""
        due.append(f"delete by {when(r['deletion_due'])}{late}")
    return [r["grant_id"], r["subject"], str(r["uses"]), "; ".join(due) or "settled"]


@app.command("inbox")
@command
def inbox(
    all_: Annotated[bool, typer.Option("--all", help="Also the settled ones")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Recalls and deletions this institution still owes (oldest grant ids first).

    Example: datasafe -p citybank institution inbox
    """
    st = state()
    p, key = st.unlock()
    with st.client(key, p) as c:
        rows: list[dict[str, Any]] = c.get(
            "/v1/acknowledgements/owed", params={"outstanding": str(not all_).lower()}
        )
    st.emit(
        {"owed": rows},
        lambda con: table(
            con,
            "Owed acknowledgements" if rows else "Nothing owed",
            ["grant", "subject", "pulls", "owed"],
            [_owed_cells(r) for r in rows],
        ),
    )


@app.command("owed")
@command
def owed(
    institution: Annotated[
        str | None, typer.Option(help="Regulator: one institution (name or address)")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Regulator: recalls unacknowledged (with age) and deletions outstanding or overdue.

    Example: datasafe -p regulator institution owed --institution citybank
    """
    st = state()
    p, key = st.unlock()
    params: dict[str, str] = {}
    with st.client(key, p) as c:
        if institution is not None:
            who = resolve_member(st, c, institution, need_key=False)
            params["institution"] = str(who["address"])
        rows: list[dict[str, Any]] = c.get("/v1/acknowledgements/owed", params=params)
    st.emit(
        {"owed": rows},
        lambda con: table(
            con,
            "Owed acknowledgements" if rows else "Nothing owed",
            ["grant", "institution", "recall waiting", "deletion due", "overdue"],
            [
                [
                    r["grant_id"],
                    name_of(st, r["institution"]),
                    "-" if r.get("recall_age") is None else f"{r['recall_age'] // 3600} h",
                    when(r.get("deletion_due")),
                    "yes" if r.get("deletion_overdue") else "-",
                ]
                for r in rows
            ],
        ),
    )


def _done(st: Any, done: Acknowledged) -> None:
    data = {
        "grant_id": done.grant_id,
        "kind": done.kind.name.lower(),
        "uses": done.uses,
        "at": done.at,
        "tx_hash": done.tx_hash,
        "deleted": [str(p) for p in done.deleted],
    }
    st.emit(
        data,
        lambda con: con.print(
            f"{done.kind.name.capitalize()} of grant {done.grant_id} acknowledged on chain "
            f"({done.uses} pull(s), tx {done.tx_hash})"
            + (f"; deleted {len(done.deleted)} file(s)" if done.deleted else "")
        ),
    )


def _run(kind: AckKind, grant: str, out: Path | None) -> None:
    st = state()
    _assets.b32(grant, "grant id")
    p, key = st.unlock()
    rpc = st.rpc(p, required="acknowledge (the grant and the result are read from the chain)")
    assert rpc is not None
    with st.client(key, p) as c, rpc_client(rpc) as r:
        pin = st.require_pin(c, p)
        try:
            if kind is AckKind.DELETION:
                assert out is not None
                done = delete_and_acknowledge(c, r, pin, key, grant, out)
            else:
                done = acknowledge(c, r, pin, key, grant, kind)
        except LifecycleError as exc:
            raise RefusedError(f"{exc} ({exc.code})", code=exc.code) from None
    _done(st, done)


@app.command("recall")
@command
def recall(grant: GrantArg, json_out: JsonOpt = False) -> None:
    """Acknowledge a recall: the version pulled under this grant was corrected.

    Example: datasafe -p citybank --rpc http://127.0.0.1:8545 institution recall 0xab…
    """
    _run(AckKind.RECALL, grant, None)


@app.command("delete")
@command
def delete(
    grant: GrantArg,
    out: Annotated[Path, typer.Option(help="Directory the pulls were saved to")],
    json_out: JsonOpt = False,
) -> None:
    """Delete what was saved for an ended grant, then acknowledge the deletion on chain.

    Example: datasafe -p citybank --rpc URL institution delete 0xab… --out ./loan-123
    """
    _run(AckKind.DELETION, grant, out)
