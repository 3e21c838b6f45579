"""``datasafe member``: a regulator (or the governor) suspends and reinstates a member.

Each is the signer's own ledger transaction (``suspendMember`` / ``reinstateMember``) sent
to the RPC node. Only the reason's hash goes on chain (``keccak256`` of its UTF-8 text); the
wallet prints it so the text can be matched to the record later. A suspended institution's
grants stop passing ``verify`` and ``pull`` from the next block.
"""

from __future__ import annotations

from typing import Annotated

import typer
from eth_hash.auto import keccak

from wallet_cli import _chain
from wallet_cli._context import JsonOpt, State, command, state
from wallet_cli._render import kv
from wallet_cli.agent import _agent_address, _ledger
from wallet_cli.errors import UserError

app = typer.Typer(help="Regulator: suspend and reinstate members.", no_args_is_help=True)

Reason = Annotated[str, typer.Option("--reason", help="Why (its keccak256 goes on chain)")]


def reason_hash(reason: str) -> bytes:
    """The on-chain ``reasonHash`` of a reason text: keccak256 of its UTF-8 bytes."""
    return keccak(reason.encode())


def _act(st: State, fn: str, who: str, reason: str, verb: str) -> None:
    if not reason.strip():
        raise UserError("--reason must not be empty")
    p, key = st.unlock()
    rpc = st.rpc(p, required=f"member {verb}")
    assert rpc is not None
    address = _agent_address(st, who)
    ledger, _ = _ledger(st, key)
    digest = reason_hash(reason)
    out = _chain.send_ledger_tx(rpc, key, ledger, fn, address, digest)
    data = {
        "member": address,
        "action": verb,
        "by": p.address,
        "reason": reason,
        "reason_hash": "0x" + digest.hex(),
        **out,
    }
    st.emit(
        data,
        lambda c: kv(
            c,
            {"suspend": "Member suspended", "reinstate": "Member reinstated"}[verb],
            {
                "member": address,
                "reason": reason,
                "reason hash": data["reason_hash"],
                "transaction": out["tx_hash"],
                "block": out["block"],
            },
        ),
    )


@app.command()
@command
def suspend(
    member: Annotated[str, typer.Argument(help="Member: address, profile or contact")],
    reason: Reason,
    json_out: JsonOpt = False,
) -> None:
    """Suspend a member: its grants stop passing verify and pull from the next block.

    Example: datasafe -p regulator --rpc http://127.0.0.1:8545 member suspend citybank
    --reason "case 2026-17: unauthorised resale of data"
    """
    _act(state(), "suspendMember", member, reason, "suspend")


@app.command()
@command
def reinstate(
    member: Annotated[str, typer.Argument(help="Member: address, profile or contact")],
    reason: Reason,
    json_out: JsonOpt = False,
) -> None:
    """Lift a suspension.

    Example: datasafe -p regulator --rpc http://127.0.0.1:8545 member reinstate citybank
    --reason "case 2026-17 closed"
    """
    _act(state(), "reinstateMember", member, reason, "reinstate")
