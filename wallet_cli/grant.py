"""``datasafe grant``: share chosen fields with an institution, and take it back."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from api.client import DataSafeClient, verified_member_key
from api.terms import PURPOSES, describe_terms, retention_words
from ledger import trust
from ledger.calls import grant_id_of
from ledger.eip712 import Domain, sign_grant
from ledger.keybinding import KeyBindingError
from ledger.models import GrantStatus, GrantTerms
from vault.keys import Keyring, PublicEncryptionKey
from vault.packages import build_key_package
from vault.sealing import SealedAsset
from wallet_cli import _assets, _confirm, _status, _terms
from wallet_cli._context import JsonOpt, State, command, state
from wallet_cli._home import Profile
from wallet_cli._render import kv, purpose_words, table, when
from wallet_cli.contacts import display_name, member_or_none, name_of, resolve_member
from wallet_cli.errors import ContradictedError, RefusedError, UserError

app = typer.Typer(help="Grant, list, revoke, pause and resume consents.", no_args_is_help=True)

_SIGNATURE_TTL = 3600


def parse_purpose(value: str) -> int:
    if value.isdigit():
        code = int(value)
        if code >= 2**32:
            raise UserError(f"purpose code {code} is too large")
        return code
    hits = [c for c, words in PURPOSES.items() if value.lower() in words.lower()]
    if len(hits) != 1:
        known = "; ".join(f"{c} = {w}" for c, w in PURPOSES.items())
        raise UserError(f"unknown purpose {value!r}: give a code or one of: {known}")
    return hits[0]


def parse_fields(spec: str, schema_fields: list[str]) -> tuple[list[str], int]:
    wanted = [f.strip() for f in spec.split(",") if f.strip()]
    if not wanted:
        raise UserError("name at least one field (--fields a,b)")
    unknown = [f for f in wanted if f not in schema_fields]
    if unknown:
        raise UserError(
            f"this asset has no field {', '.join(map(repr, unknown))}; its fields are: "
            f"{', '.join(schema_fields)}",
            code="unknown_field",
        )
    if len(set(wanted)) != len(wanted):
        raise UserError("a field is named twice")
    mask = 0
    for f in wanted:
        mask |= 1 << schema_fields.index(f)
    return [f for f in schema_fields if f in wanted], mask


def _domain(st: State, c: DataSafeClient) -> Domain:
    chain_id, ledger = st.ledger_address(c)
    assert chain_id is not None
    return Domain(chain_id, ledger)


@dataclass
class Share:
    """What a grant shares, checked: the asset as anchored, the fields, the grantee's key."""

    asset: dict[str, Any]
    schema: dict[str, Any]
    names: list[str]
    mask: int
    member: dict[str, Any]
    grantee: str
    grantee_key: PublicEncryptionKey
    anchor: dict[str, Any]


def prepare_share(st: State, c: DataSafeClient, asset: str, to: str, fields: str) -> Share:
    """The asset, fields and grantee of a grant; with --rpc the grantee's key is its own."""
    a: dict[str, Any] = c.get(f"/v1/assets/{asset}")
    schema = _assets.schema_fields(c, a["schema_id"])
    names, mask = parse_fields(fields, list(schema["fields"]))
    member = resolve_member(st, c, to)
    grantee = member["address"]
    grantee_key = PublicEncryptionKey.from_bytes(
        _assets.b64(member["encryption_key"], "an encryption key")
    )
    anchor = _assets.anchored(st, c, a)
    if anchor["status"] != "active":
        raise RefusedError(
            f"asset {asset} is {anchor['status']}; it cannot be shared",
            code=f"asset_{anchor['status']}",
        )
    rpc = st.rpc()
    if rpc is not None:
        _assets.check_fields_hash(list(schema["fields"]), anchor["fields_hash"])
        # The grantee's key must be the one it bound itself (signature + proof of possession).
        with st.chain(rpc, st.ledger_address(c)[1]) as lc:
            try:
                grantee_key = verified_member_key(lc, member)
            except KeyBindingError as exc:
                if exc.reason == "no_key":
                    raise RefusedError(
                        f"{to} has no encryption key of its own binding yet: {exc}",
                        code="no_encryption_key",
                    ) from None
                raise ContradictedError(
                    f"the key the service serves for {to} is not {to}'s own binding: {exc}",
                    code="service_mismatch",
                ) from None
    return Share(a, schema, names, mask, member, grantee, grantee_key, anchor)


def sealed_of(c: DataSafeClient, asset: str, anchor: dict[str, Any]) -> SealedAsset:
    """The sealed asset from the service, accepted only when it is the anchored one."""
    sealed_out = c.get(f"/v1/assets/{asset}/sealed")
    sealed = SealedAsset.from_bytes(_assets.b64(sealed_out["sealed"], "a sealed asset"))
    if "0x" + sealed.root.hex() != anchor["root"].lower():
        raise RefusedError("the sealed asset is not the anchored one", code="verification_failed")
    return sealed


def _owner_profile(st: State, signer: Profile, on_behalf: str | None) -> Profile:
    return st.home.resolve(on_behalf) if on_behalf else signer


#: Retention in days as the wallet asks for it; the terms carry seconds (GrantTerms.retention).
KeepDaysOpt = Annotated[
    int,
    typer.Option(
        "--keep-days",
        help="Days the institution may keep what it read after the grant ends (0 = delete at "
        "the end)",
        min=0,
        max=49_710,
        callback=lambda days: days * 86_400,
    ),
]


@app.command()
@command
def create(
    asset: Annotated[str, typer.Option(help="Asset id (0x…), see `datasafe data list`")],
    to: Annotated[str, typer.Option(help="Institution: contact name or address")],
    fields: Annotated[str, typer.Option(help="Comma-separated field names, e.g. name,income")],
    purpose: Annotated[str, typer.Option(help="Purpose code or words, e.g. 'loan'")],
    for_: Annotated[
        str | None, typer.Option("--for", help="Valid for this long: 30m, 2h, 3d, 90d, 2w")
    ] = None,
    from_: Annotated[
        str | None,
        typer.Option(
            "--from", help="Usable from this date or time (2026-12-24 or '2026-12-24 18:00', local)"
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Valid until this date (end of day) or time ('2026-12-24 18:00', local)"),
    ] = None,
    days: Annotated[int | None, typer.Option(help="Valid for N days (same as --for Nd)")] = None,
    uses: Annotated[
        str | None, typer.Option(help="How many reads: 1 (default), 3 … or unlimited")
    ] = None,
    max_uses: Annotated[
        int | None,
        typer.Option(help="For scripts: at most this many reads, 0 = no limit", min=0),
    ] = None,
    retention: KeepDaysOpt = 0,
    on_behalf_of: Annotated[
        str | None,
        typer.Option(
            "--on-behalf-of", help="Enterprise profile you are an agent of (it owns the asset)"
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Grant an institution access to some fields of an asset, for a purpose and a time.

    Shows what will be shared in plain words and asks to confirm; the key package is built
    here (the service never sees a key), the consent is signed here, the service relays it.

    Example: datasafe grant create --asset 0x12… --to citybank --fields name,income
    --purpose loan --for 30d --uses 3

    Times are your local time zone unless they carry an offset; `datasafe purposes` lists
    the purposes.
    """
    st = state()
    if st.json and not yes:
        raise UserError("--json is for scripts: add --yes (there is no one to confirm)")
    aid = _assets.b32(asset, "asset id")
    purpose_code = parse_purpose(purpose)
    now = int(time.time())
    zone = _terms.local_zone()
    window = _terms.grant_window(now=now, for_=for_, days=days, start=from_, until=until, zone=zone)
    max_uses = _terms.parse_uses(uses, max_uses)
    signer = st.profile()
    owner = _owner_profile(st, signer, on_behalf_of)
    key, ring = st.keys(signer, owner)
    with st.client(key, signer) as c:
        share = prepare_share(st, c, asset, to, fields)
        when_ = (window.not_before, window.expiry)
        terms = GrantTerms(
            aid, share.grantee, purpose_code, share.mask, *when_, max_uses, retention
        )
        terms_words = _terms_words(st, c, share, terms, zone)
        _show_terms(st, share, terms_words)
        if not yes and not typer.confirm("Sign and send this consent?", default=False):
            raise UserError("cancelled; nothing was signed or sent", code="cancelled")
        receipt, gid = _send_grant(st, c, key, ring, signer.address, terms, asset, share, now)
    _finish(st, owner, signer, receipt, gid, terms, share, terms_words)


def signed_terms(terms: GrantTerms, share: Share) -> dict[str, Any]:
    """A receipt's terms: what was signed here, in words written here (the service's echo of
    the terms and its ``terms_text`` are replaced: a receipt never carries its description)."""
    anchor = {"version": share.anchor["version"], "issuer": share.anchor["issuer"]}
    return {
        "terms": _terms_json(terms),
        "terms_text": describe_terms(terms, list(share.schema["fields"]), anchor),
    }


def _finish(
    st: State,
    owner: Profile,
    signer: Profile,
    receipt: dict[str, Any],
    gid: bytes,
    terms: GrantTerms,
    share: Share,
    terms_words: str,
) -> None:
    """The grant confirmed on chain (with --rpc), its receipt completed, saved and shown."""
    rpc = st.rpc()
    if rpc is not None:
        _confirm_grant(st, rpc, gid, terms, receipt.get("tx_hash"))
    receipt |= signed_terms(terms, share) | {
        "fields": share.names,
        "grantee_name": display_name(st, share.grantee, share.member),
        "words": terms_words,
        "confirmed_on_chain": rpc is not None,
    }
    _save_and_emit(st, owner, signer, receipt)


def _terms_words(
    st: State, c: DataSafeClient, share: Share, terms: GrantTerms, zone: dt.tzinfo
) -> str:
    """The grant in plain words, as the owner confirms it (names as this wallet knows them)."""
    a, grantee, max_uses = share.asset, terms.grantee, terms.max_uses
    start_words = (
        f"from {_terms.local_when(terms.not_before, zone)}" if terms.not_before else "from now"
    )
    return (
        f"{display_name(st, grantee, share.member)} ({share.member['kind']}, {grantee}) may "
        f"read {', '.join(share.names)} of your {share.schema['name']} (version "
        f"{a['version']}, issued by "
        f"{display_name(st, a['issuer'], member_or_none(c, a['issuer']))}) for "
        f"{purpose_words(terms.purpose)}, {start_words} until "
        f"{_terms.local_when(terms.expiry, zone)}, "
        + ("without a limit on reads" if max_uses == 0 else f"at most {max_uses} time(s)")
        + f"; {retention_words(terms.retention)}."
    )


def _show_terms(st: State, share: Share, terms_words: str) -> None:
    if st.json:
        return
    st.console.print("You are about to share:", style="bold")
    st.console.print("  " + terms_words)
    hidden = [f for f in share.schema["fields"] if f not in share.names]
    if hidden:
        st.console.print(f"  Not shared: {', '.join(hidden)}.")


def _send_grant(
    st: State,
    c: DataSafeClient,
    key: bytes,
    ring: Keyring,
    grantor: str,
    terms: GrantTerms,
    asset: str,
    share: Share,
    now: int,
) -> tuple[dict[str, Any], bytes]:
    """The consent signed here, its key package built here (from the anchored sealed asset),
    relayed by the service: the service's receipt and the grant id."""
    import base64

    sealed = sealed_of(c, asset, share.anchor)
    nonce = secrets.randbits(64)
    gid = grant_id_of(grantor, nonce)
    package = build_key_package(
        sealed, ring, grant_id=gid, fields=share.names, grantee_key=share.grantee_key
    )
    signed = sign_grant(key, _domain(st, c), terms, nonce, now + _SIGNATURE_TTL)
    receipt: dict[str, Any] = c.post(
        "/v1/grants",
        {
            "terms": _terms_json(terms),
            "grantor": grantor,
            "nonce": str(nonce),
            "deadline": signed.deadline,
            "signature": "0x" + signed.signature.hex(),
            "key_package": base64.b64encode(package.to_bytes()).decode(),
        },
    )
    return receipt, gid


def _terms_json(terms: GrantTerms) -> dict[str, Any]:
    return {
        "asset_id": "0x" + terms.asset_id.hex(),
        "grantee": terms.grantee,
        "purpose": terms.purpose,
        "fields_mask": terms.fields_mask,
        "not_before": terms.not_before,
        "expiry": terms.expiry,
        "max_uses": terms.max_uses,
        "retention": terms.retention,
    }


def _confirm_grant(
    st: State, rpc: str, gid: bytes, terms: GrantTerms, claimed_tx: str | None
) -> None:
    """The grant is on the chain, active, with exactly the terms signed here."""
    _confirm.on_chain(
        st,
        rpc,
        lambda r, pin: trust.get_grant(r, pin, gid),
        lambda got: (
            got.status == GrantStatus.ACTIVE
            and got.asset_id == terms.asset_id
            and got.grantee.lower() == terms.grantee.lower()
            and got.fields_mask == terms.fields_mask
            and got.expiry == terms.expiry
            and got.not_before == terms.not_before
            and got.max_uses == terms.max_uses
            and got.retention == terms.retention
        ),
        what=f"grant 0x{gid.hex()} with the terms you signed",
        claimed_tx=claimed_tx,
        offer="Your signature is unused: grant again through another service (--api URL).",
    )


def _save_and_emit(st: State, owner: Profile, signer: Profile, receipt: dict[str, Any]) -> None:
    """The consent receipt saved with the owner (and the signing agent), then shown."""
    path = owner.save_receipt(receipt)
    if signer is not owner:
        signer.save_receipt(receipt)
    receipt["saved_to"] = str(path)
    st.emit(
        receipt,
        lambda con: kv(
            con,
            "Consent receipt",
            {
                "grant": receipt["grant_id"],
                "terms": receipt["words"],
                "signed by": receipt["grantor"],
                "transaction": receipt["tx_hash"],
                "block": receipt["block"],
                "saved to": path,
            },
        ),
    )


@command
def purposes(json_out: JsonOpt = False) -> None:
    """The purposes a grant can be for, with what each means (give the code or a word).

    Example: datasafe purposes
    """
    st = state()
    rows = _terms.purposes()
    st.emit(
        rows,
        lambda con: table(
            con,
            "Purposes",
            ["code", "purpose", "what it means"],
            [(r["code"], r["purpose"], r["description"]) for r in rows],
        ),
    )


@app.command("list")
@command
def list_(json_out: JsonOpt = False) -> None:
    """My grants with their live status (from the chain, through the service).

    With --rpc each grant's terms must be the chain's (else exit 6) and its field names are
    read from the schema on chain.

    Example: datasafe grant list
    """
    st = state()
    p, key = st.unlock()
    with st.client(key, p) as c:
        grants: list[dict[str, Any]] = c.get_all("/v1/grants")
        rpc = st.rpc()
        if rpc is not None and grants:
            from api.bank import verified_fields

            pin = st.require_pin(c)
            names: dict[bytes, list[str]] = {}
            with st.chain(rpc, pin.ledger_address) as lc:
                for g in grants:
                    gid = bytes.fromhex(g["grant_id"][2:])
                    live = lc.get_grant(gid)
                    trust.check_grant_row(live, g, gid)
                    if live.asset_id not in names:
                        asset = trust.get_asset(lc.rpc, pin, live.asset_id)
                        names[live.asset_id] = verified_fields(c, lc.rpc, pin, asset)
                    g["fields"] = trust.names_for_mask(names[live.asset_id], live.fields_mask)
                    g["status"] = live.status.name.lower()
                    g["uses"] = live.uses
                    if live.status == GrantStatus.ACTIVE:
                        # expiry, exhaustion, a disputed asset… as the chain's check sees it now
                        verdict, _ = lc.check_at_next_block(gid, live.grantee, live.fields_mask)
                        if not verdict.allowed:
                            g["status"] = verdict.reason.name.lower()
    now = int(time.time())
    for g in grants:
        if g["status"] == "active" and g["terms"]["expiry"] <= now:
            g["status"] = "expired"
    st.emit(
        grants,
        lambda con: table(
            con,
            "My grants",
            ["grant", "to", "fields", "purpose", "until", "uses", "status"],
            [
                (
                    g["grant_id"],
                    name_of(st, g["grantee"]),
                    ",".join(g["fields"] or []),
                    purpose_words(g["terms"]["purpose"]),
                    when(g["terms"]["expiry"]),
                    f"{g['uses']}/{g['terms']['max_uses'] or '∞'}",
                    g["status"],
                )
                for g in grants
            ],
        ),
    )


@app.command()
@command
def show(
    grant: Annotated[str, typer.Argument(help="Grant id (0x…)")],
    json_out: JsonOpt = False,
) -> None:
    """One grant: its saved consent receipt and its live status.

    The terms are put in words here, from the grant on the chain (with --rpc; the service's
    row must agree with it) or else from the receipt of what you signed.

    Example: datasafe grant show 0xab…
    """
    st = state()
    _assets.b32(grant, "grant id")
    p, key = st.unlock()
    saved = next((r for r in p.receipts() if r["grant_id"].lower() == grant.lower()), None)
    rpc = st.rpc(required=None if saved and saved.get("words") else "grant show without a receipt")
    with st.client(key, p) as c:
        if rpc is not None:
            live, words = _status.checked_words(st, c, rpc, grant)
        else:
            live, words = c.get(f"/v1/grants/{grant}"), str(saved["words"] if saved else "")
    live["terms_text"] = words
    data = {"grant": live, "receipt": saved}
    st.emit(
        data,
        lambda con: kv(
            con,
            f"Grant {grant}",
            {
                "terms": live["terms_text"],
                "status": live["status"],
                "uses": f"{live['uses']}/{live['terms']['max_uses'] or '∞'}",
                "receipt": "saved" if saved else "not in this wallet",
            },
        ),
    )


DirectOpt = Annotated[
    bool,
    typer.Option(
        "--direct",
        help="Send the signed message to the chain yourself (through --rpc, your own gas)",
    ),
]
RelayOpt = Annotated[
    str | None, typer.Option("--relay", help="Relay through another service (its URL)")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")]


@app.command()
@command
def revoke(
    grant: Annotated[str, typer.Argument(help="Grant id (0x…)")],
    yes: YesOpt = False,
    direct: DirectOpt = False,
    relay: RelayOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Revoke a grant for good; the service deletes its key package.

    Example: datasafe --rpc http://127.0.0.1:8545 grant revoke 0xab… --yes
    """
    _status.change(grant, "revoke", "RevokeConsent", yes, direct, relay)


@app.command()
@command
def pause(
    grant: Annotated[str, typer.Argument(help="Grant id (0x…)")],
    yes: YesOpt = False,
    direct: DirectOpt = False,
    relay: RelayOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Pause a grant (reads are refused until resumed).

    Example: datasafe --rpc http://127.0.0.1:8545 grant pause 0xab… --yes
    """
    _status.change(grant, "pause", "PauseConsent", yes, direct, relay)


@app.command()
@command
def resume(
    grant: Annotated[str, typer.Argument(help="Grant id (0x…)")],
    yes: YesOpt = False,
    direct: DirectOpt = False,
    relay: RelayOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Resume a paused grant.

    Example: datasafe --rpc http://127.0.0.1:8545 grant resume 0xab… --yes
    """
    _status.change(grant, "resume", "ResumeConsent", yes, direct, relay)


def _register_counter_code() -> None:
    """``datasafe grant code``: the counter code lives in wallet_cli.counter."""
    from wallet_cli.counter import code

    app.command("code")(code)


_register_counter_code()


def _register_carry() -> None:
    """``datasafe grant carry``: lives in wallet_cli._carry."""
    from wallet_cli._carry import carry

    app.command("carry")(carry)


_register_carry()
