"""``datasafe agent``: an enterprise names people who may grant on its behalf, until a date."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import typer

from ledger.address import is_address, to_checksum_address
from ledger.trust import PinnedDeployment
from wallet_cli import _chain
from wallet_cli._context import JsonOpt, State, command, state
from wallet_cli._render import kv, table, when
from wallet_cli._terms import grant_window
from wallet_cli.errors import UserError

app = typer.Typer(help="Enterprise agents: add, remove, list.", no_args_is_help=True)


def _agent_address(st: State, who: str) -> str:
    if is_address(who):
        return to_checksum_address(who)
    if st.home.profile(who).exists:
        return st.home.profile(who).address
    if who in st.home.contacts():
        return st.home.contacts()[who]
    raise UserError(
        f"unknown agent {who!r}: not an address, profile or contact", code="unknown_member"
    )


def _ledger(st: State, key: bytes | None) -> tuple[str, int]:
    """The pinned ledger (manifest or profile pin), never the service's word for it."""
    try:
        st.api_base(st.profile())
    except UserError:
        return _pin_fields(st.require_pin(None))
    with st.client(key) as c:
        return _pin_fields(st.require_pin(c))


def _pin_fields(pin: PinnedDeployment) -> tuple[str, int]:
    return pin.ledger_address, pin.deploy_block


def _change(
    st: State, key: bytes, rpc: str, fn: str, agent: str, expiry: int, *args: Any
) -> dict[str, Any]:
    """``fn`` relayed through the forwarder (no gas) when a service is set, else sent directly;
    done only once the wallet's own chain reads show the agent's new expiry."""
    from ledger.calls import LedgerCalls

    read = LedgerCalls().agent_expiry(st.profile().address, agent)
    return _forward_and_confirm(
        st, key, rpc, fn, read, lambda got: bool(got == expiry), f"{fn}({agent})", *args
    )


def _forward_and_confirm(
    st: State,
    key: bytes,
    rpc: str,
    fn: str,
    read: Any,
    done: Callable[[Any], bool],
    what: str,
    *args: Any,
) -> dict[str, Any]:
    """``fn`` forwarded (or sent), done once ``read`` on the wallet's own chain is ``done``."""
    from ledger import trust
    from wallet_cli import _confirm

    p = st.profile()
    try:
        st.api_base(p)
    except UserError:
        ledger, _ = _pin_fields(st.require_pin(None))
        return _chain.send_ledger_tx(rpc, key, ledger, fn, *args)
    with st.client(key) as c:
        ledger, _ = _pin_fields(st.require_pin(c))
        out = _chain.forward(c, rpc, key, ledger, fn, *args)
    _confirm.on_chain(
        st,
        rpc,
        lambda r, pin: trust.read(r, pin, read),
        done,
        what=f"{what} for {p.address}",
        claimed_tx=out.get("tx_hash"),
        offer="Try another service (--api URL), or drop --api to send it yourself (needs gas).",
    )
    return {"tx_hash": out.get("tx_hash"), "block": out.get("block"), "via": "forwarder"}


@app.command()
@command
def add(
    agent: Annotated[str, typer.Argument(help="Agent: address, profile or contact")],
    for_: Annotated[
        str | None, typer.Option("--for", help="Valid for this long: 30d, 12w, 2h")
    ] = None,
    days: Annotated[int | None, typer.Option(help="Valid for N days")] = None,
    until: Annotated[
        str | None, typer.Option(help="Valid until a date or time (local, like grant --until)")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Let a person grant and revoke on this enterprise's behalf until an expiry.

    Example: datasafe -p acme --rpc http://127.0.0.1:8545 agent add alice --days 90
    """
    st = state()
    p, key = st.unlock()
    rpc = st.rpc(p, required="agent add")
    assert rpc is not None
    address = _agent_address(st, agent)
    expiry = grant_window(now=int(time.time()), for_=for_, days=days, until=until).expiry
    out = _change(st, key, rpc, "addAgent", address, expiry, address, expiry)
    data = {"enterprise": p.address, "agent": address, "expiry": expiry, **out}
    st.emit(
        data,
        lambda c: kv(
            c,
            "Agent added",
            {"agent": address, "until": when(expiry), "transaction": out["tx_hash"]},
        ),
    )


@app.command()
@command
def remove(
    agent: Annotated[str, typer.Argument(help="Agent: address, profile or contact")],
    json_out: JsonOpt = False,
) -> None:
    """Remove an agent now.

    Example: datasafe -p acme --rpc http://127.0.0.1:8545 agent remove alice
    """
    st = state()
    p, key = st.unlock()
    rpc = st.rpc(p, required="agent remove")
    assert rpc is not None
    address = _agent_address(st, agent)
    out = _change(st, key, rpc, "removeAgent", address, 0, address)
    data = {"enterprise": p.address, "agent": address, **out}
    st.emit(
        data, lambda c: kv(c, "Agent removed", {"agent": address, "transaction": out["tx_hash"]})
    )


@app.command()
@command
def policy(
    threshold: Annotated[
        int, typer.Argument(help="Live agents who must approve a grant (0: none)")
    ],
    purpose: Annotated[
        int | None, typer.Option(help="Only for this purpose code (never below the default)")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """How many live agents must approve each grant of this enterprise's data (M of N).

    Example: datasafe -p acme --rpc http://127.0.0.1:8545 agent policy 2
    """
    from ledger.calls import LedgerCalls
    from ledger.models import ANY_PURPOSE

    if not 0 <= threshold <= 255:
        raise UserError("the threshold is 0 to 255 agents", code="invalid_threshold")
    st = state()
    p, key = st.unlock()
    rpc = st.rpc(p, required="agent policy")
    assert rpc is not None
    code = ANY_PURPOSE if purpose is None else purpose
    if not 0 <= code <= ANY_PURPOSE:
        raise UserError(f"not a purpose code: {purpose}", code="invalid_purpose")
    read = LedgerCalls().approval_policy(p.address, code)
    out = _forward_and_confirm(
        st,
        key,
        rpc,
        "setApprovalThreshold",
        read,
        # A purpose's own threshold never lowers the default: what counts is the greater.
        (lambda got: got[0] == threshold) if purpose is None else (lambda got: got[0] >= threshold),
        f"setApprovalThreshold({threshold})",
        code,
        threshold,
    )
    data = {"enterprise": p.address, "threshold": threshold, "purpose": purpose, **out}
    st.emit(
        data,
        lambda c: kv(
            c,
            "Approval policy set",
            {
                "approvals needed": threshold,
                "purpose": "every purpose" if purpose is None else purpose,
                "transaction": out["tx_hash"],
            },
        ),
    )


@app.command("list")
@command
def list_(json_out: JsonOpt = False) -> None:
    """This enterprise's agents and their expiry, from the chain.

    Example: datasafe -p acme --rpc http://127.0.0.1:8545 agent list
    """
    st = state()
    p = st.profile()
    rpc = st.rpc(p, required="agent list")
    assert rpc is not None
    ledger, start = _ledger(st, None)
    topic = _chain.topic_addr(p.address)
    events = _chain.get_events(
        rpc, ledger, ["AgentAdded", "AgentRemoved"], from_block=start, topics=[topic]
    )
    agents: dict[str, dict[str, Any]] = {}
    for e in events:
        a = to_checksum_address(e.args["agent"])
        agents[a] = {
            "agent": a,
            "expiry": e.args.get("expiry"),
            "active": e.name == "AgentAdded",
            "block": e.block_number,
        }
    now = int(time.time())
    rows = [r | {"active": r["active"] and (r["expiry"] or 0) > now} for r in agents.values()]
    st.emit(
        rows,
        lambda c: table(
            c,
            "Agents",
            ["agent", "until", "active"],
            [(r["agent"], when(r["expiry"]), "yes" if r["active"] else "no") for r in rows],
        ),
    )
