"""``datasafe grant carry``: a grant on a corrected version, signed anew for the current one.

A department's correction (a new version) leaves every grant on the old version unusable;
nothing moves it but the subject. This command reads the old grant and the versions from
the chain the wallet reads itself (:func:`ledger.carry.plan_carry`, never the service),
shows the carried terms in plain words, and on one confirmation signs a new grant on the
current version (same institution, fields, purpose, time left and retention, the reads left)
and revokes the old grant: it can never be read again, and revoking it ends it, so the
deletion of what the institution pulled from the wrong version falls due after its retention
(and the service deletes its key package). Both are done only once the chain shows them.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from ledger import trust
from ledger.carry import Carry, CarryError, plan_carry
from wallet_cli import _assets, _status, _terms
from wallet_cli._chain import rpc_client
from wallet_cli._context import JsonOpt, State, command, state
from wallet_cli._render import kv
from wallet_cli.errors import NotConfirmedError, RefusedError, UserError


@command
def carry(
    grant: Annotated[str, typer.Argument(help="Grant id (0x…) on a corrected version")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Carry a grant to the corrected version of its record: you sign a new grant with the
    same terms (the reads left) and the old grant is revoked. Nothing happens without you.

    Example: datasafe grant carry 0xab…
    """
    from wallet_cli.grant import (
        _confirm_grant,
        _send_grant,
        _terms_words,
        prepare_share,
        signed_terms,
    )

    st = state()
    if st.json and not yes:
        raise UserError("--json is for scripts: add --yes (there is no one to confirm)")
    gid = _assets.b32(grant, "grant id")
    signer = st.profile()
    rpc = st.rpc(signer, required="carry (the grant and its versions are read from the chain)")
    assert rpc is not None
    key, ring = st.keys(signer)
    with st.client(key, signer) as c:
        pin = st.require_pin(c, signer)
        with rpc_client(rpc) as r:
            try:
                plan = plan_carry(r, pin, gid, signer.address)
            except CarryError as exc:
                raise RefusedError(f"{exc} ({exc.code})", code=exc.code) from None
        new_asset = "0x" + plan.new_asset_id.hex()
        schema = _assets.schema_fields(c, "0x" + plan.new_asset.schema_id.hex())
        names = trust.names_for_mask(list(schema["fields"]), plan.terms.fields_mask)
        # The grantee's key and the field list, checked on chain as for any new grant.
        share = prepare_share(st, c, new_asset, plan.terms.grantee, ",".join(names))
        words = _terms_words(st, c, share, plan.terms, _terms.local_zone())
        _show(st, plan, words)
        if not yes and not typer.confirm(
            "Sign the new grant and revoke the old one?", default=False
        ):
            raise UserError("cancelled; nothing was signed or sent", code="cancelled")
        receipt, new_gid = _send_grant(
            st, c, key, ring, signer.address, plan.terms, new_asset, share, int(time.time())
        )
        _confirm_grant(st, rpc, new_gid, plan.terms, receipt.get("tx_hash"))
        revoked = _revoke_old(st, c, key, signer.address, rpc, plan)
    receipt |= signed_terms(plan.terms, share) | {
        "fields": share.names,
        "words": words,
        "confirmed_on_chain": True,
        "carried_from": grant.lower(),
        "old_asset_id": "0x" + plan.grant.asset_id.hex(),
        "old_revoked": revoked,
    }
    path = signer.save_receipt(receipt)
    receipt["saved_to"] = str(path)
    st.emit(
        receipt,
        lambda con: kv(
            con,
            "Grant carried to the corrected version (read back from the chain)",
            {
                "new grant": receipt["grant_id"],
                "terms": receipt["terms_text"],
                "old grant": f"{grant.lower()} revoked (tx {revoked['tx_hash']})",
                "transaction": receipt["tx_hash"],
                "saved to": path,
            },
        ),
    )


def _show(st: State, plan: Carry, words: str) -> None:
    if st.json:
        return
    old, new = plan.old_asset, plan.new_asset
    st.console.print(
        f"Your grant 0x{plan.grant_id.hex()} is on version {old.version}, which its department "
        f"corrected (version {new.version} replaces it); it can no longer be read.",
        style="bold",
    )
    st.console.print("Carry it: you sign a new grant on the corrected version.")
    st.console.print("  " + words)
    if plan.grant.max_uses:
        st.console.print(
            f"  ({plan.grant.uses} of its {plan.grant.max_uses} read(s) are used: "
            f"{plan.terms.max_uses} are carried.)"
        )
    st.console.print(
        "  The old grant is revoked; what the institution kept of version "
        f"{old.version} must then be deleted as its retention says."
    )


def _revoke_old(
    st: State, c: Any, key: bytes, signer: str, rpc: str, plan: Carry
) -> dict[str, Any]:
    """The old grant revoked by the subject's signature, confirmed on chain."""
    old = "0x" + plan.grant_id.hex()
    sent, _, _ = _status.send(st, c, key, signer, rpc, plan.grant_id, "RevokeConsent")
    try:
        _status.confirmed(st, rpc, "revoke", old, sent.get("tx_hash"))
    except NotConfirmedError as exc:
        raise NotConfirmedError(
            f"the new grant is on chain, but the old one is not revoked: {exc} Revoke it with "
            f"`datasafe grant revoke {old} --direct`.",
            code=exc.code,
        ) from None
    return {"grant_id": old, "tx_hash": sent.get("tx_hash"), "block": sent.get("block")}
