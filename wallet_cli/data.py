"""``datasafe data``: my data safe — list, open (decrypt locally and verify), dispute."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from eth_hash.auto import keccak

from ledger import trust
from ledger.models import AssetStatus
from vault.sealing import SealedAsset, open_asset
from wallet_cli import _assets, _chain, _confirm
from wallet_cli._context import JsonOpt, State, command, state
from wallet_cli._render import kv, table, when
from wallet_cli.contacts import name_of
from wallet_cli.errors import RefusedError

app = typer.Typer(help="My data: list, open locally, dispute.", no_args_is_help=True)


def _value(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + raw.hex()


@app.command("list")
@command
def list_(json_out: JsonOpt = False) -> None:
    """List the assets in my safe: issuer, type, version, status.

    Example: datasafe data list
    """
    st = state()
    p, key = st.unlock()
    with st.client(key, p) as c:
        assets: list[dict[str, Any]] = c.get_all("/v1/assets")
        names: dict[str, str] = {}
        for a in assets:
            if a["schema_id"] not in names:
                names[a["schema_id"]] = _assets.schema_fields(c, a["schema_id"])["name"]
            a["type"] = names[a["schema_id"]]
            a["issuer_name"] = name_of(st, a["issuer"])
            if st.rpc() is not None:
                a["chain"] = _assets.anchored(st, c, a)
                a["status"] = a["chain"]["status"]
    st.emit(
        assets,
        lambda con: table(
            con,
            "My data",
            ["asset", "type", "issuer", "version", "status"],
            [
                (a["asset_id"], a["type"], a["issuer_name"], a["version"], a["status"])
                for a in assets
            ],
        ),
    )


@app.command("open")
@command
def open_(
    asset: Annotated[str, typer.Argument(help="Asset id (0x…)")],
    out: Annotated[Path | None, typer.Option(help="Also save the verified values (JSON)")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Decrypt an asset locally and verify every field against the anchored root.

    With --rpc the root, issuer and schema come from the chain, not from the service.

    Example: datasafe --rpc http://127.0.0.1:8545 data open 0x1234…
    """
    st = state()
    _assets.b32(asset, "asset id")
    p = st.profile()
    key, ring = st.keys(p)
    with st.client(key, p) as c:
        sealed_out: dict[str, Any] = c.get(f"/v1/assets/{asset}/sealed")
        anchor = _assets.anchored(st, c, sealed_out)
        schema = _assets.schema_fields(c, sealed_out["schema_id"])
    if anchor["source"] == "chain":
        _assets.check_fields_hash(schema["fields"], anchor["fields_hash"])
    raw = _assets.b64(sealed_out["sealed"], "a sealed asset")
    sealed = SealedAsset.from_bytes(raw)
    _assets.check_digest(raw, sealed, anchor["ciphertext_digest"])
    if list(sealed.field_names) != list(schema["fields"]):
        raise RefusedError(
            "the sealed fields differ from the schema's fields", code="verification_failed"
        )
    opened = open_asset(sealed, ring, expected_root=bytes.fromhex(anchor["root"][2:]))
    key_binding = None
    if anchor["source"] == "chain":
        # Is the key bound on chain for the owner one of this wallet's? "foreign" means
        # someone holding the account key bound another one: new data would go to it.
        bound = bytes.fromhex(anchor["owner_key_hash"][2:])
        key_binding = "yours" if bound in ring else "none" if not any(bound) else "foreign"
    values = {k: _value(v) for k, v in opened.fields.items()}
    data = {
        "asset_id": sealed_out["asset_id"],
        "type": schema["name"],
        "issuer": anchor["issuer"],
        "version": anchor["version"],
        "status": anchor["status"],
        "root": anchor["root"],
        "verified_against": anchor["source"],
        "anchored_block": sealed_out["anchor"]["block"],
        "anchored_at": anchor["anchored_at"],
        "anchor_tx": sealed_out["anchor"]["tx_hash"],
        "fields": values,
        "key_binding": key_binding,
    }
    if out is not None:
        out.write_text(json.dumps(data, indent=2) + "\n")
        out.chmod(0o600)

    st.emit(data, lambda con: _show_opened(st, con, data, schema, anchor))


def _show_opened(
    st: State, con: Any, data: dict[str, Any], schema: dict[str, Any], anchor: dict[str, Any]
) -> None:
    key_binding, values = data["key_binding"], data["fields"]
    kv(
        con,
        f"{schema['name']} (version {anchor['version']}, {anchor['status']})",
        {
            "issued by": name_of(st, anchor["issuer"]),
            "anchored": f"block {data['anchored_block']} {when(anchor['anchored_at'])}".strip(),
            "root": anchor["root"],
            "verified against": "the chain"
            if anchor["source"] == "chain"
            else "the service's anchor (pass --rpc to check the chain)",
        },
    )
    if key_binding == "foreign":
        con.print(
            "Warning: the encryption key bound on chain for this safe is not in this wallet; "
            "new data will be sealed to it. Rotate your key (datasafe account rotate-key).",
            style="bold red",
        )
    table(
        con,
        "Fields (each checked against the root)",
        ["field", "value", "verified"],
        [(k, v, "yes") for k, v in values.items()],
    )


@app.command()
@command
def dispute(
    asset: Annotated[str, typer.Argument(help="Asset id (0x…)")],
    reason: Annotated[
        str, typer.Option(help="Why the data is wrong (only its hash goes on chain)")
    ],
    direct: Annotated[
        bool,
        typer.Option("--direct", help="Broadcast your signed transaction yourself (through --rpc)"),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Dispute an asset: the issuer must resolve it; grants on it pause meanwhile.

    Example: datasafe data dispute 0x1234… --reason "income for 2024 is wrong"
    """
    st = state()
    aid = _assets.b32(asset, "asset id")
    if not reason.strip():
        raise typer.BadParameter("give a reason")
    p, key = st.unlock()
    rpc = st.rpc(p, required="disputing")
    assert rpc is not None
    reason_hash = keccak(reason.encode())
    with st.client(key, p) as c:
        _, ledger = st.ledger_address(c)
        out: dict[str, Any] = {"asset_id": asset.lower()}
        if direct:
            raw = _chain.sign_ledger_tx(rpc, key, ledger, "disputeAsset", aid, reason_hash)
            out |= {"via": "own transaction"} | _confirm.send_raw(rpc, raw)
        else:
            # Signed, relayed through the ledger's forwarder: the service pays the gas.
            fwd = _chain.forward(c, rpc, key, ledger, "disputeAsset", aid, reason_hash)
            out |= {"via": "forwarder", "tx_hash": fwd.get("tx_hash")}
    live = _confirm.on_chain(
        st,
        rpc,
        lambda r, pin: trust.get_asset(r, pin, aid),
        lambda got: got.status == AssetStatus.DISPUTED,
        what=f"asset {asset} disputed",
        claimed_tx=out.get("tx_hash"),
        offer=(
            f"Broadcast your signed dispute yourself: `datasafe data dispute {asset} --reason ... "
            "--direct` (through --rpc)."
        ),
    )
    out["status"] = live.status.name.lower()
    data = {
        "asset_id": out["asset_id"],
        "status": out["status"],
        "reason_hash": "0x" + reason_hash.hex(),
        "confirmed_on_chain": True,
    }
    st.emit(
        data,
        lambda con: con.print(
            f"Asset {asset} is now {out['status']} on chain; the issuer "
            f"{name_of(st, live.issuer)} must resolve it."
        ),
    )


@app.command()
@command
def status(
    asset: Annotated[str, typer.Argument(help="Asset id (0x…)")],
    json_out: JsonOpt = False,
) -> None:
    """An asset's status, with its dispute and resolution history from the chain (--rpc).

    Example: datasafe --rpc http://127.0.0.1:8545 data status 0x1234…
    """
    st = state()
    aid = _assets.b32(asset, "asset id")
    p, key = st.unlock()
    with st.client(key, p) as c:
        a: dict[str, Any] = c.get(f"/v1/assets/{asset}")
        anchor = _assets.anchored(st, c, a)
        events: list[dict[str, Any]] = []
        rpc = st.rpc()
        if rpc is not None:
            pin = st.require_pin(c, p)
            for e in _chain.get_events(
                rpc,
                pin.ledger_address,
                ["AssetDisputed", "DisputeResolved"],
                from_block=pin.deploy_block,
                topics=["0x" + aid.hex()],
            ):
                events.append(
                    {
                        "event": e.name,
                        "block": e.block_number,
                        "tx_hash": e.tx_hash,
                        "at": e.args.get("timestamp"),
                    }
                )
    data = {
        "asset_id": a["asset_id"],
        "status": anchor["status"],
        "source": anchor["source"],
        "events": events,
    }

    def human(con: Any) -> None:
        con.print(f"Asset {a['asset_id']} is {anchor['status']} (from the {anchor['source']})")
        table(
            con,
            "Disputes",
            ["event", "when", "block", "transaction"],
            [(e["event"], when(e["at"]), e["block"], e["tx_hash"]) for e in events],
        )

    st.emit(data, human)
