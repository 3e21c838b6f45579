"""``datasafe grant revoke|pause|resume``: a subject's signed status change, sent and read back.

The change is signed here with the signer's current signature nonce (read through its own
RPC) and sent through the service, another relayer (``--relay URL``) or the signer's own
transaction (``--direct``). It is done only once the chain the wallet reads shows the new
status; at a terminal, when that does not happen, the wallet offers to send the same signed
message itself.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import typer

from api.client import DataSafeClient
from ledger import trust
from ledger.eip712 import Domain, StatusKind, sign_status_change
from ledger.models import Grant, GrantStatus, SignedStatusChange
from wallet_cli import _assets, _chain, _confirm
from wallet_cli._context import State, state
from wallet_cli._render import kv
from wallet_cli.errors import NotConfirmedError, UserError

_EXPECTED = {
    "revoke": GrantStatus.REVOKED,
    "pause": GrantStatus.PAUSED,
    "resume": GrantStatus.ACTIVE,
}
_DONE = {"revoke": "revoked", "pause": "paused", "resume": "resumed"}
_ACTION: dict[StatusKind, str] = {
    "RevokeConsent": "revoke",
    "PauseConsent": "pause",
    "ResumeConsent": "resume",
}


def change(
    grant: str, action: str, kind: StatusKind, yes: bool, direct: bool, relay: str | None
) -> None:
    """Sign ``action`` for ``grant``, send it, and report it once the chain shows it."""
    st = state()
    if st.json and not yes:
        raise UserError("--json is for scripts: add --yes (there is no one to confirm)")
    if direct and relay:
        raise UserError("give --direct or --relay URL, not both")
    gid = _assets.b32(grant, "grant id")
    p, key = st.unlock()
    rpc = st.rpc(p, required=f"{action} (it reads your signature nonce)")
    assert rpc is not None
    with st.client(key, p) as c:
        _ask(st, c, rpc, grant, action, yes)
        receipt, domain, signed = send(st, c, key, p.address, rpc, gid, kind, direct, relay)
    try:
        live = confirmed(st, rpc, action, grant, receipt.get("tx_hash"))
    except NotConfirmedError as exc:
        # At a terminal the wallet offers to send the same signed message itself.
        if direct or st.json or not sys.stdin.isatty():
            raise
        typer.echo(f"error: {exc}", err=True)
        if not typer.confirm(
            f"Send your signed {action} to the chain yourself now (your own gas)?", default=False
        ):
            raise
        receipt = _send_own(rpc, key, domain, action, grant, signed)
        live = confirmed(st, rpc, action, grant, receipt["tx_hash"])
    receipt |= {"status": live.status.name.lower(), "confirmed_on_chain": True}
    p.save_receipt(receipt, suffix=f"-{action}-{receipt['block']}")
    _emit(st, receipt, _DONE[action])


def send(
    st: State,
    c: DataSafeClient,
    key: bytes,
    signer: str,
    rpc: str,
    gid: bytes,
    kind: StatusKind,
    direct: bool = False,
    relay: str | None = None,
) -> tuple[dict[str, Any], Domain, SignedStatusChange]:
    """``kind`` for grant ``gid`` signed here (the signer's nonce read through ``rpc``) and
    sent: (the receipt the relayer or the chain gave, the domain, the signed change)."""
    action = _ACTION[kind]
    grant = "0x" + gid.hex()
    chain_id, ledger = st.ledger_address(c)
    assert chain_id is not None
    domain = Domain(chain_id, ledger)
    with st.chain(rpc, domain.verifying_contract) as lc:
        nonce = lc.nonces(signer)
    signed = sign_status_change(key, domain, kind, gid, nonce, int(time.time()) + 3600)
    if direct:
        return _send_own(rpc, key, domain, action, grant, signed), domain, signed
    return _relay(c, key, domain, action, grant, signed, relay), domain, signed


def checked_words(st: State, c: DataSafeClient, rpc: str, grant: str) -> tuple[dict[str, Any], str]:
    """The service's grant row, checked against the grant on the chain, and the grant in
    words written here from the chain's terms, asset and field names (never the service's
    ``terms_text``)."""
    from api.bank import describe_view, grant_view

    pin = st.require_pin(c)
    with _chain.rpc_client(rpc) as r:
        view = grant_view(c, r, pin, grant, None)
    return view.row, describe_view(view)


def _ask(st: State, c: DataSafeClient, rpc: str, grant: str, action: str, yes: bool) -> None:
    """The grant's terms (as the chain holds them) shown and the change confirmed, unless --yes."""
    if yes:  # nothing to show: the service's row still has to exist (and be ours to see)
        c.get(f"/v1/grants/{grant}")
        return
    st.console.print(f"{action.capitalize()}: {checked_words(st, c, rpc, grant)[1]}")
    if not typer.confirm(f"{action.capitalize()} this grant?", default=False):
        raise UserError("cancelled; nothing was signed or sent", code="cancelled")


def _relay(
    c: DataSafeClient,
    key: bytes,
    domain: Domain,
    action: str,
    grant: str,
    signed: SignedStatusChange,
    relay: str | None,
) -> dict[str, Any]:
    """The signed change relayed by this service, or by the one at ``relay``."""
    body = {
        "signer": signed.signer,
        "deadline": signed.deadline,
        "signature": "0x" + signed.signature.hex(),
    }
    if not relay:
        receipt: dict[str, Any] = c.post(f"/v1/grants/{grant}/{action}", body)
        return receipt
    with DataSafeClient(
        relay.rstrip("/"),
        key,
        chain_id=domain.chain_id,
        ledger_address=domain.verifying_contract,
        timeout=30.0,
    ) as rc:
        relayed: dict[str, Any] = rc.post(f"/v1/grants/{grant}/{action}", body) | {"via": relay}
        return relayed


def _send_own(
    rpc: str, key: bytes, domain: Domain, action: str, grant: str, signed: SignedStatusChange
) -> dict[str, Any]:
    """The signed change sent to the chain by the signer itself (its own gas)."""
    sent = _chain.send_ledger_tx(
        rpc,
        key,
        domain.verifying_contract,
        f"{action}BySig",
        signed.grant_id,
        signed.signer,
        signed.deadline,
        signed.signature,
    )
    return {"grant_id": grant.lower(), "via": "own transaction"} | sent


def confirmed(st: State, rpc: str, action: str, grant: str, tx: str | None) -> Grant:
    """The grant read back through the wallet's own RPC until it shows the new status."""
    gid = _assets.b32(grant, "grant id")
    return _confirm.on_chain(
        st,
        rpc,
        lambda r, pin: trust.get_grant(r, pin, gid),
        lambda got: got.status == _EXPECTED[action],
        what=f"grant {grant} {_DONE[action]}",
        claimed_tx=tx,
        offer=(
            f"Send your signed {action} without this service: `datasafe grant {action} "
            f"{grant} --direct` (through --rpc, with your own gas) or `--relay URL` "
            "(another relayer)."
        ),
    )


def _emit(st: State, receipt: dict[str, Any], done: str) -> None:
    st.emit(
        receipt,
        lambda con: kv(
            con,
            f"Grant {done} (read back from the chain)",
            {
                "grant": receipt["grant_id"],
                "status": receipt["status"],
                "transaction": receipt["tx_hash"],
                "block": receipt["block"],
            },
        ),
    )
