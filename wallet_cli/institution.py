"""Institution commands (bank, notary, insurer): ``datasafe verify`` and ``datasafe pull``.

A pull is verified here, not trusted: the grant is read from the chain, the
access record must be in the access transaction's receipt, each field must
decrypt and prove against the root the issuer anchored on chain, and the
issuer must hold the ISSUER role.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from api.bank import grant_view, pull_verified
from api.client import DataSafeClient
from vault.keys import KeySource
from wallet_cli import _assets
from wallet_cli._chain import rpc_client
from wallet_cli._context import JsonOpt, State, command, state
from wallet_cli._home import Profile
from wallet_cli._render import kv, purpose_words, table, when
from wallet_cli.contacts import name_of
from wallet_cli.errors import ContradictedError, RefusedError, UserError


def _mask_for(granted: list[str], grant_mask: int, fields: str | None) -> tuple[list[str], int]:
    if not fields:
        return granted, grant_mask
    wanted = [f.strip() for f in fields.split(",") if f.strip()]
    bits = [i for i in range(64) if grant_mask >> i & 1]
    by_name = dict(zip(granted, bits, strict=False))
    unknown = [f for f in wanted if f not in by_name]
    if unknown:
        raise UserError(
            f"the grant does not cover {', '.join(map(repr, unknown))}; it covers: "
            f"{', '.join(granted)}",
            code="fields_not_granted",
        )
    mask = 0
    for f in wanted:
        mask |= 1 << by_name[f]
    return wanted, mask


def _view(st: State, c: DataSafeClient, gid: str, me: str) -> tuple[dict[str, Any], Any]:
    """The grant row; with the chain, the :class:`GrantView` it was checked against."""
    rpc = st.rpc()
    if rpc is None:
        row: dict[str, Any] = c.get(f"/v1/grants/{gid}")
        return row, None
    pin = st.require_pin(c)
    with rpc_client(rpc) as r:
        view = grant_view(c, r, pin, gid, me)
    return view.row, view


def _verdict(st: State, c: DataSafeClient, gid: str, me: str, mask: int) -> dict[str, Any]:
    verdict: dict[str, Any] = c.get(f"/v1/grants/{gid}/verify", params={"fields_mask": mask})
    rpc = st.rpc()
    if rpc is not None:
        with st.chain(rpc, st.ledger_address(c)[1]) as lc:
            # judged as the service judges: at the time an access would be recorded
            res, _ = lc.check_at_next_block(bytes.fromhex(gid[2:]), me, mask)
        if res.allowed != verdict["allowed"]:
            raise ContradictedError(
                "the service's verdict differs from the chain's check", code="service_mismatch"
            )
        verdict["checked_on_chain"] = True
    return verdict


def pull_into(
    st: State,
    c: DataSafeClient,
    p: Profile,
    key: bytes,
    ring: KeySource,
    *,
    grant: str,
    out: Path,
    fields: str | None = None,
) -> tuple[dict[str, Any], Callable[[Any], None]]:
    """The verified pull of ``grant`` saved under ``out``: the data and its human rendering."""
    rpc = st.rpc(p, required="pull (every field is verified against the chain)")
    assert rpc is not None
    g, view = _view(st, c, grant, p.address)
    _, mask = _mask_for(view.fields, view.grant.fields_mask, fields)
    if mask != view.grant.fields_mask:
        raise UserError(
            "a pull releases every granted field together (one access record for the "
            f"whole key package): omit --fields or name all of {', '.join(view.fields)}",
            code="fields_mask_mismatch",
        )
    verdict = _verdict(st, c, grant, p.address, mask)
    if not verdict["allowed"]:
        raise RefusedError(
            f"not allowed: {verdict['reason']} ({verdict['code']})", code=verdict["code"]
        )
    with rpc_client(rpc) as r:
        done = pull_verified(
            c, r, st.require_pin(c, p), grant_id=grant, key=key, ring=ring, view=view
        )
    anchor: dict[str, Any] = {"issuer": done.issuer, "root": done.root, "version": done.version}
    out.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "grant_id": grant,
        "asset_id": done.asset_id,
        "issuer": anchor["issuer"],
        "root": anchor["root"],
        "version": anchor["version"],
        "purpose": g["terms"]["purpose"],
        "use": done.use,
        "access_tx": done.access.tx_hash,
        "access_block": done.access.block_number,
        "fields": {k: v.decode("utf-8", "replace") for k, v in done.fields.items()},
        "checks": done.checks,
    }
    target = out / f"{grant}-use{done.use}.json"
    target.write_text(json.dumps(data, indent=2) + "\n")
    target.chmod(0o600)
    data["saved_to"] = str(target)

    def human(con: Any) -> None:
        kv(
            con,
            f"Pulled and verified (use {done.use})",
            {"issuer": name_of(st, anchor["issuer"]), "saved to": target},
        )
        for check in done.checks:
            con.print(f"  ✓ {check}")
        table(con, "Fields", ["field", "value"], list(data["fields"].items()))

    return data, human


FieldsOpt = Annotated[str | None, typer.Option(help="Field names (default: all granted)")]


@command
def verify(
    grant: Annotated[str, typer.Argument(help="Grant id (0x…)")],
    fields: FieldsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Institution: may I read these fields under this grant right now? (chain's answer)

    Example: datasafe -p citybank verify 0xab… --fields name,income
    """
    st = state()
    _assets.b32(grant, "grant id")
    p, key = st.unlock()
    with st.client(key, p) as c:
        g, view = _view(st, c, grant, p.address)
        granted = view.fields if view is not None else list(g["fields"] or [])
        names, mask = _mask_for(granted, int(g["terms"]["fields_mask"]), fields)
        verdict = _verdict(st, c, grant, p.address, mask)
    verdict["fields"] = names
    if not verdict["allowed"]:
        raise RefusedError(
            f"not allowed: {verdict['reason']} ({verdict['code']})", code=verdict["code"]
        )
    st.emit(
        verdict,
        lambda con: con.print(
            f"Allowed: {', '.join(names)} under grant {grant} "
            f"(for {purpose_words(g['terms']['purpose'])}, until {when(g['terms']['expiry'])}, "
            f"block {verdict['block']})"
        ),
    )


@command
def pull(
    grant: Annotated[str, typer.Argument(help="Grant id (0x…)")],
    out: Annotated[Path, typer.Option(help="Directory for the verified data")],
    fields: FieldsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Institution: pull granted fields, verify every one locally, save the verified data.

    Needs --rpc: the grant, the access record, the anchored root and the issuer's role are
    read from the chain, not taken from the service.

    Example: datasafe -p citybank --rpc http://127.0.0.1:8545 pull 0xab… --out ./loan-123
    """
    st = state()
    _assets.b32(grant, "grant id")
    p = st.profile()
    rpc = st.rpc(p, required="pull (every field is verified against the chain)")
    assert rpc is not None
    key, ring = st.keys(p)
    with st.client(key, p) as c:
        data, human = pull_into(st, c, p, key, ring, grant=grant, out=out, fields=fields)
    st.emit(data, human)
