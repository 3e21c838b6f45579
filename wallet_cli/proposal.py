"""``datasafe proposal``: an agent of an enterprise with an M-of-N policy reviews and approves
the grants its colleagues propose.

The service keeps the proposals and the approvals; the wallet believes neither. Every
approval is recovered here and counted only if the chain the wallet reads shows its signer
as a live agent now (:func:`ledger.approvals.judge_approvals`); a signature the service
attributes to the wrong person ends the command (exit 6, the service contradicted). The
terms shown are the ones the proposer's own approval signs (else exit 6,
``terms_not_proposed``), put in words here from the asset and field names on the chain; the
service's ``terms_text`` is never shown.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ledger import eip712
from ledger._pin import ServiceContradictedError
from ledger.approvals import ApprovalVerdict, judge_approvals
from ledger.models import GrantTerms
from wallet_cli._context import JsonOpt, State, command, state
from wallet_cli._render import kv, table, when
from wallet_cli.errors import UserError

app = typer.Typer(help="Enterprise grant proposals: list, show, approve.", no_args_is_help=True)

YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")]


def _terms(p: dict[str, Any]) -> GrantTerms:
    return GrantTerms.from_json(p["terms"])


def _judge(st: State, c: Any, p: dict[str, Any]) -> tuple[ApprovalVerdict, str]:
    """The proposal's approvals as the wallet's own chain reads judge them, and its terms in
    words written here: the terms its proposer signed, the asset and field names the chain
    holds (the service's ``terms_text`` is never shown)."""
    from api.bank import checked_terms_text
    from wallet_cli._chain import rpc_client

    rpc = st.rpc(required="proposal")
    assert rpc is not None
    pin = st.require_pin(c)
    pairs = [(a["agent"], bytes.fromhex(a["signature"][2:])) for a in p["approvals"]]
    terms = _terms(p)
    with rpc_client(rpc) as r:
        verdict = judge_approvals(
            r,
            pin,
            p["enterprise"],
            terms,
            int(p["nonce"]),
            p["deadline"],
            pairs,
            proposer=p["proposer"],
        )
        return verdict, checked_terms_text(c, r, pin, terms)


def _row(p: dict[str, Any], judged: tuple[ApprovalVerdict, str]) -> dict[str, Any]:
    v, text = judged
    return {
        "proposal_id": p["proposal_id"],
        "enterprise": p["enterprise"],
        "proposer": p["proposer"],
        "terms": p["terms"],
        "terms_text": text,
        "deadline": p["deadline"],
        "status": p["status"],
        "needed": v.needed,
        "approved_by": list(v.counted),
        "not_counting": [{"agent": a, "why": why} for a, why in v.stale],
    }


def _show(st: State, row: dict[str, Any]) -> None:
    kv(
        st.console,
        f"Proposal {row['proposal_id']}",
        {
            "enterprise": row["enterprise"],
            "proposed by": row["proposer"],
            "what": row["terms_text"],
            "approvals": f"{len(row['approved_by'])} of {row['needed']} (checked on the chain)",
            "approved by": ", ".join(row["approved_by"]) or "-",
            "not counting": "; ".join(f"{s['agent']} ({s['why']})" for s in row["not_counting"])
            or "-",
            "sign before": when(row["deadline"]),
            "status": row["status"],
        },
    )


@app.command("list")
@command
def list_(
    enterprise: Annotated[str, typer.Option("--for", help="The enterprise's address")],
    json_out: JsonOpt = False,
) -> None:
    """The enterprise's proposals, each approval checked against the chain.

    Example: datasafe -p clerk proposal list --for 0xAc…
    """
    st = state()
    p, key = st.unlock()
    with st.client(key, p) as c:
        proposals: list[dict[str, Any]] = c.get("/v1/proposals", params={"enterprise": enterprise})
        rows = [_row(x, _judge(st, c, x)) for x in proposals]
    st.emit(
        rows,
        lambda con: table(
            con,
            "Grant proposals",
            ["proposal", "what", "proposed by", "approvals", "status"],
            [
                (
                    r["proposal_id"][:10] + "…",
                    r["terms_text"],
                    r["proposer"],
                    f"{len(r['approved_by'])}/{r['needed']}",
                    r["status"],
                )
                for r in rows
            ],
        ),
    )


@app.command()
@command
def show(
    proposal: Annotated[str, typer.Argument(help="Proposal id (0x…)")],
    json_out: JsonOpt = False,
) -> None:
    """What is proposed, by whom, and who has approved (checked on the chain).

    Example: datasafe -p clerk proposal show 0xab…
    """
    st = state()
    p, key = st.unlock()
    with st.client(key, p) as c:
        got: dict[str, Any] = c.get(f"/v1/proposals/{proposal}")
        row = _row(got, _judge(st, c, got))
    st.emit(row, lambda _con: _show(st, row))


@app.command()
@command
def approve(
    proposal: Annotated[str, typer.Argument(help="Proposal id (0x…)")],
    yes: YesOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Approve a proposed grant: shown in plain words first, then signed here.

    Example: datasafe -p clerk proposal approve 0xab…
    """
    st = state()
    if st.json and not yes:
        raise UserError("--json is for scripts: add --yes (there is no one to confirm)")
    p, key = st.unlock()
    with st.client(key, p) as c:
        got: dict[str, Any] = c.get(f"/v1/proposals/{proposal}")
        judged = _judge(st, c, got)
        verdict = judged[0]
        row = _row(got, judged)
        if not st.json:
            _show(st, row)
        if got["status"] != "pending":
            raise UserError(f"the proposal is {got['status']}: nothing to approve", code="closed")
        if p.address.lower() in {a.lower() for a in verdict.counted}:
            raise UserError("you have approved this proposal already", code="approval_exists")
        if not yes and not typer.confirm(
            f"Approve this grant for {got['enterprise']}?", default=False
        ):
            raise UserError("cancelled; nothing was signed or sent", code="cancelled")
        pin = st.require_pin(c)
        domain = eip712.ledger_domain(pin.chain_id, pin.ledger_address)
        digest = eip712.approval_digest(
            domain,
            got["enterprise"],
            verdict.epoch,
            _terms(got),
            int(got["nonce"]),
            got["deadline"],
        )
        signature = "0x" + eip712.sign_digest(key, digest).hex()
        after: dict[str, Any] = c.post(
            f"/v1/proposals/{proposal}/approvals", {"signature": signature}
        )
        judged = _judge(st, c, after)
        row = _row(after, judged)
    mine = p.address.lower() in {a.lower() for a in judged[0].counted}
    if after["status"] == "pending" and not mine:
        # The service took the approval and does not show it counting: it dropped or altered it.
        raise ServiceContradictedError(
            f"the service accepted your approval of {proposal} but does not list it"
        )
    if after["status"] == "granted":
        _confirm_granted(st, after)
    st.emit(row, lambda _con: _show(st, row))


def _confirm_granted(st: State, p: dict[str, Any]) -> None:
    """The service says it relayed the grant: the chain must show it with these terms."""
    from ledger import trust
    from ledger.models import GrantStatus
    from wallet_cli import _confirm

    rpc = st.rpc()
    assert rpc is not None
    terms = _terms(p)
    gid = bytes.fromhex(p["proposal_id"][2:])
    _confirm.on_chain(
        st,
        rpc,
        lambda r, pin: trust.get_grant(r, pin, gid),
        lambda g: (
            g.status == GrantStatus.ACTIVE
            and g.asset_id == terms.asset_id
            and g.fields_mask == terms.fields_mask
            and g.grantee.lower() == terms.grantee.lower()
        ),
        what=f"grant {p['proposal_id']} approved by enough agents",
        claimed_tx=p.get("tx_hash"),
        offer="Your approval is signed; another agent can relay the grant through another service.",
    )
