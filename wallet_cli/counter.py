"""``datasafe grant code`` (the citizen shows a code at the counter, 亮码) and
``datasafe redeem`` (the clerk scans it: the grant is submitted and the fields pulled).

The code is a one-time grant (``max_uses`` 1) for one named institution, valid for
minutes, signed with the citizen's key here and never sent by this wallet: whoever holds
it can only submit it for that institution, whose key alone opens the field keys in it.
The service relays it (the citizen pays no gas, nor does the clerk) and the clerk's pull
is the verified pull of ``datasafe pull``. Payload format: :mod:`wallet_cli._counter`.

Heavy modules (the QR library, the chain, the vault) are imported inside the commands.
"""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wallet_cli import _counter, _terms
from wallet_cli._context import JsonOpt, command, state
from wallet_cli._counter import CodeError, CounterCode
from wallet_cli._render import kv, purpose_words
from wallet_cli.errors import UserError

if TYPE_CHECKING:
    from ledger.eip712 import Domain
    from vault.keys import Keyring
    from vault.sealing import SealedAsset
    from wallet_cli.grant import Share

#: The grant stays usable this long after the code's deadline, so a pull started just
#: before the deadline still finds it valid.
PULL_MARGIN = 300


def _qr(text: str) -> Any:
    import segno

    return segno.make(text, error=_counter.ERROR, boost_error=False, micro=False)


def qr_svg(text: str) -> str:
    """The code's QR as an SVG document (no XML declaration), for a page to show inline."""
    import io

    buf = io.BytesIO()
    _qr(text).save(buf, kind="svg", scale=4, border=4, xmldecl=False, svgns=True)
    return buf.getvalue().decode()


def _save_qr(qr: Any, out: Path) -> None:
    suffix = out.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise UserError(f"--out {out}: give a .png or .svg file name", code="bad_output")
    out.parent.mkdir(parents=True, exist_ok=True)
    qr.save(str(out), scale=8 if suffix == ".png" else 4, border=4)


def _check_fits(share: Share, to: str) -> None:
    """A code carries the wrapped keys of a few fields for an X25519 key, no more."""
    from vault.keys import Suite

    if len(share.names) > _counter.MAX_FIELDS:
        raise UserError(
            f"a counter code carries at most {_counter.MAX_FIELDS} fields "
            "(use `datasafe grant create` for more)",
            code="code_too_many_fields",
        )
    if share.grantee_key.suite is not Suite.X25519_HKDF_SHA256_AES256GCM:
        raise UserError(
            f"{to} uses a post-quantum hybrid key, whose wrapped keys do not fit a QR code: "
            "use `datasafe grant create`",
            code="code_key_too_large",
        )


def _signed_code(
    grantor: str,
    key: bytes,
    ring: Keyring,
    share: Share,
    sealed: SealedAsset,
    domain: Domain,
    what: tuple[bytes, int],
    seconds: int,
) -> tuple[bytes, int, str]:
    """The one-time grant signed offline and packed: (grant id, deadline, payload text)."""
    from ledger.calls import grant_id_of
    from ledger.eip712 import sign_grant
    from ledger.models import GrantTerms
    from vault.packages import build_key_package

    aid, purpose = what
    deadline = int(time.time()) + seconds
    nonce = secrets.randbits(64)
    gid = grant_id_of(grantor, nonce)
    package = build_key_package(
        sealed, ring, grant_id=gid, fields=share.names, grantee_key=share.grantee_key
    )
    expiry = deadline + PULL_MARGIN
    terms = GrantTerms(aid, share.grantee, purpose, share.mask, 0, expiry, 1)
    signed = sign_grant(key, domain, terms, nonce, deadline)
    text = CounterCode(
        aid,
        share.grantee,
        purpose,
        share.mask,
        expiry,
        deadline,
        nonce,
        signed.signature,
        package.wrapped.ciphertext,
    ).to_text()
    return gid, deadline, text


@command
def code(
    asset: Annotated[str, typer.Option(help="Asset id (0x…), see `datasafe data list`")],
    to: Annotated[str, typer.Option(help="The institution at the counter: contact or address")],
    fields: Annotated[str, typer.Option(help="Comma-separated field names, e.g. name,income")],
    purpose: Annotated[str, typer.Option(help="Purpose code or words, see `datasafe purposes`")],
    valid: Annotated[
        str, typer.Option("--valid", help="How long the code can be redeemed: 5m, 10m, 1h")
    ] = _counter.DEFAULT_VALID,
    out: Annotated[
        Path | None, typer.Option(help="Also save the QR code as a .png or .svg file")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show a one-time code at the counter: the institution scans it and reads these fields once.

    The grant is signed here and carried by the code only; nothing is sent until the clerk
    redeems it (`datasafe redeem`), which must happen before the code expires.

    Example: datasafe grant code --asset 0x12… --to citybank --fields name,income --purpose loan
    """
    from ledger.eip712 import Domain
    from wallet_cli import _assets
    from wallet_cli.contacts import display_name, member_or_none
    from wallet_cli.grant import parse_purpose, prepare_share, sealed_of

    st = state()
    aid = _assets.b32(asset, "asset id")
    purpose_code = parse_purpose(purpose)
    seconds = _terms.parse_duration(valid, "--valid")
    if seconds > _counter.MAX_VALID_SECONDS:
        raise UserError("--valid: a counter code lasts at most 24h", code="bad_duration")
    if out is not None and out.suffix.lower() not in (".png", ".svg"):
        raise UserError(f"--out {out}: give a .png or .svg file name", code="bad_output")
    p = st.profile()
    key, ring = st.keys(p)  # from the agent when unlocked; else one derivation
    with st.client(key, p) as c:
        share = prepare_share(st, c, asset, to, fields)
        _check_fits(share, to)
        sealed = sealed_of(c, asset, share.anchor)
        chain_id, ledger = st.ledger_address(c)
        assert chain_id is not None
        name = display_name(st, share.grantee, share.member)
        issuer = display_name(st, share.asset["issuer"], member_or_none(c, share.asset["issuer"]))
    gid, deadline, text = _signed_code(
        p.address, key, ring, share, sealed, Domain(chain_id, ledger), (aid, purpose_code), seconds
    )
    qr = _qr(text)
    if out is not None:
        _save_qr(qr, out)
    words = (
        f"{name} may read {', '.join(share.names)} of your {share.schema['name']} (issued by "
        f"{issuer}) once, for {purpose_words(purpose_code)}, if it redeems this code before "
        f"{_terms.local_when(deadline)}."
    )
    data = {
        "grant_id": "0x" + gid.hex(),
        "payload": text,
        "payload_chars": len(text),
        "qr_version": qr.version,
        "qr_error": qr.error,
        "valid_until": deadline,
        "grantee": share.grantee,
        "grantee_name": name,
        "fields": share.names,
        "words": words,
        "saved_to": str(out) if out else None,
    }
    st.emit(data, lambda con: _show_code(con, qr, data, out))


def _show_code(con: Any, qr: Any, data: dict[str, Any], out: Path | None) -> None:
    """The code on the terminal, with its terms in words and its text for a typing scanner."""
    con.print("Show this code at the counter:", style="bold")
    # light modules as blocks: right on a dark terminal (on a light one, use --out)
    qr.terminal(out=sys.stdout, compact=True)
    con.print("  " + data["words"])
    con.print(f"  grant {data['grant_id']} · QR version {qr.version}-{qr.error}")
    con.print(f"  code text (for a scanner that types): {data['payload']}", soft_wrap=True)
    if out is not None:
        con.print(f"  saved to {out}")


def read_image(path: Path) -> str:
    """The text of the QR code in a PNG image (a photo or a screenshot of the code)."""
    import png
    import zxingcpp

    try:
        width, height, rows, info = png.Reader(filename=str(path)).asDirect()
        planes = int(info["planes"])
        top = (1 << int(info["bitdepth"])) - 1
        grey = bytearray()
        for row in rows:
            # first channel of each pixel (grey, or red of RGB(A)), scaled to 8 bits
            grey.extend(v * 255 // top for v in row[::planes])
        found = zxingcpp.read_barcodes(memoryview(bytes(grey)).cast("B", (height, width)))
    except FileNotFoundError:
        raise UserError(f"no image at {path}", code="not_a_code") from None
    except (png.Error, ValueError, TypeError) as exc:
        raise UserError(
            f"{path} is not a PNG image this wallet reads ({exc}): paste the code's text instead",
            code="not_a_code",
        ) from None
    texts = [r.text for r in found if r.text]
    if not texts:
        raise UserError(f"no QR code found in {path}", code="not_a_code")
    return str(texts[0])


def _code_of(payload: str | None, image: Path | None) -> CounterCode:
    if (payload is None) == (image is None):
        raise UserError("give the scanned code's text or --image FILE (one of them)")
    return CounterCode.from_text(read_image(image) if image is not None else str(payload))


@command
def redeem(
    payload: Annotated[
        str | None, typer.Argument(help="The code's text (DS1:…), as a scanner types it")
    ] = None,
    image: Annotated[Path | None, typer.Option(help="A PNG image of the code instead")] = None,
    out: Annotated[Path, typer.Option(help="Directory for the verified data")] = Path("."),
    json_out: JsonOpt = False,
) -> None:
    """Institution: redeem a citizen's counter code: submit the grant and pull the fields.

    Refused before anything is sent when the code is expired, already used, made for
    another institution or altered. Needs --rpc (everything is checked against the chain).

    Example: datasafe -p citybank redeem DS1:AEB… --out ./counter
    """
    st = state()
    counter_code = _code_of(payload, image)
    _counter.check_fresh(counter_code, int(time.time()))
    p = st.profile()
    if counter_code.grantee.lower() != p.address.lower():
        from wallet_cli.contacts import name_of

        raise CodeError(
            f"this code is for {name_of(st, counter_code.grantee)}, not for {p.name} ({p.address})",
            code="code_not_for_you",
        )
    rpc = st.rpc(p, required="redeem (the code is checked against the chain)")
    assert rpc is not None
    key, ring = st.keys(p)  # from the agent when unlocked; else one derivation
    from wallet_cli import _redeem
    from wallet_cli.institution import pull_into

    with st.client(key, p) as c:
        submitted = _redeem.submit(st, c, p, rpc, counter_code, ring)
        data, human = pull_into(st, c, p, key, ring, grant=submitted["grant_id"], out=out)
    data |= {"grantor": submitted["grantor"], "grant_tx": submitted["tx_hash"]}

    def both(con: Any) -> None:
        kv(
            con,
            "Code redeemed",
            {
                "grant": submitted["grant_id"],
                "from": submitted["grantor"],
                "transaction": submitted["tx_hash"],
            },
        )
        human(con)

    st.emit(data, both)
