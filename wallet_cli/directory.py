"""``datasafe directory``: institutions and departments by their registered names.

Names are the governor's ``MemberNamed`` records on the ledger's forwarder; the wallet
reads them, and each member's kind and status, from the chain through its own RPC
(--rpc), never from the service. Local contacts stay what they are: your nicknames.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from wallet_cli import _chain
from wallet_cli._context import JsonOpt, State, command, state
from wallet_cli._render import kv, table
from wallet_cli.errors import UserError

app = typer.Typer(help="Member directory: list, search, name (governor).", no_args_is_help=True)


def _entries(st: State, query: str | None) -> list[dict[str, Any]]:
    from ledger.directory import read_directory
    from wallet_cli.agent import _ledger

    p = st.profile()
    rpc = st.rpc(p, required="the directory")
    assert rpc is not None
    ledger, start = _ledger(st, None)
    with _chain.rpc_client(rpc) as r:
        entries = read_directory(r, ledger, from_block=start, query=query)
    nicknames: dict[str, list[str]] = {}
    for nick, address in st.home.contacts().items():
        nicknames.setdefault(address.lower(), []).append(nick)
    return [
        e.to_json() | {"nicknames": sorted(nicknames.get(e.address.lower(), []))} for e in entries
    ]


def _show(st: State, rows: list[dict[str, Any]], title: str) -> None:
    st.emit(
        rows,
        lambda c: table(
            c,
            title,
            ["name", "kind", "status", "address", "your nickname"],
            (
                (r["name"], r["kind"], r["status"], r["address"], ", ".join(r["nicknames"]))
                for r in rows
            ),
        ),
    )


@app.command("list")
@command
def list_(json_out: JsonOpt = False) -> None:
    """Every named member, with kind and status, read from the chain.

    Example: datasafe --rpc http://127.0.0.1:8545 directory list
    """
    st = state()
    _show(st, _entries(st, None), "Member directory (from the chain)")


@app.command()
@command
def search(
    words: Annotated[list[str], typer.Argument(help="Words the name must contain")],
    json_out: JsonOpt = False,
) -> None:
    """Named members whose name contains every word (any case).

    Example: datasafe --rpc http://127.0.0.1:8545 directory search city bank
    """
    st = state()
    query = " ".join(words)
    if not query.strip():
        raise UserError("give a word to search for")
    _show(st, _entries(st, query), f"Members named like {query!r} (from the chain)")


@app.command()
@command
def name(
    member: Annotated[str, typer.Argument(help="Member: address, profile or contact")],
    registered_name: Annotated[str, typer.Argument(metavar="NAME", help="The registered name")],
    json_out: JsonOpt = False,
) -> None:
    """Give a member its registered name (the governor's own transaction).

    Example: datasafe -p governor --rpc http://127.0.0.1:8545 directory name 0xB0B… "City Bank"
    """
    from ledger.directory import encode_name_member
    from ledger.errors import LedgerError
    from ledger.forwarder import forwarder_address
    from wallet_cli.agent import _agent_address, _ledger

    st = state()
    p, key = st.unlock()
    rpc = st.rpc(p, required="directory name")
    assert rpc is not None
    address = _agent_address(st, member)
    try:
        data = encode_name_member(address, registered_name)
    except LedgerError as exc:
        raise UserError(str(exc), code="invalid_name") from None
    ledger, _ = _ledger(st, key)
    from ledger import trust
    from ledger.calls import LedgerCalls

    with _chain.rpc_client(rpc) as r:
        governor = trust.read(r, st.require_pin(None), LedgerCalls().governor())
    # The forwarder would refuse anyone else (ForwarderNotGovernor): say so before signing.
    if governor.lower() != p.address.lower():
        raise UserError(
            f"only the governor ({governor}) names members; you are {p.address}",
            code="not_governor",
        )
    raw = _chain.sign_call(rpc, key, forwarder_address(ledger), data)
    out = _chain.send_raw(rpc, raw, "nameMember")
    result = {"member": address, "name": registered_name, **out}
    st.emit(result, lambda c: kv(c, "Member named", result))
