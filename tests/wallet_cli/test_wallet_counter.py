"""The code at the counter (亮码): the citizen shows a one-time code, the bank redeems it
(submit + verified pull in one step); replayed, expired, altered and misdirected codes are
refused before anything is sent. Also grant terms as people say them, on the real stack."""

from __future__ import annotations

import json
import time
from pathlib import Path

import png
import pytest
import segno
from _stack import Stack

from wallet_cli import _counter
from wallet_cli._counter import CodeError, CounterCode
from wallet_cli.counter import read_image
from wallet_cli.errors import UserError


def _sample(n_fields: int, deadline: int = 2_000_000_000) -> CounterCode:
    return CounterCode(
        asset_id=b"\xaa" * 32,
        grantee="0x" + "bb" * 20,
        purpose=1,
        fields_mask=(1 << n_fields) - 1,
        expiry=deadline + 300,
        deadline=deadline,
        nonce=2**64 - 1,
        signature=b"\xcc" * 65,
        wrapped=b"\xdd" * _counter.wrapped_size(n_fields),
    )


def test_codec_round_trip_and_size_bound() -> None:
    for n in range(1, _counter.MAX_FIELDS + 1):
        code = _sample(n)
        text = code.to_text()
        assert set(text) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")  # QR alnum
        assert CounterCode.from_text(text) == code
        assert CounterCode.from_text(text.lower()[:40] + "\n " + text[40:]) == code
        assert len(text) <= _counter.MAX_TEXT_LEN
        qr = segno.make(text, error=_counter.ERROR, boost_error=False, micro=False)
        assert qr.mode == "alphanumeric" and qr.error == "M"
        # docs/wallet.md: version 12-M for two fields, at most 15-M (77×77 modules) for five
        assert qr.version <= (12 if n <= 2 else 15), (n, qr.version)
    assert _counter.MAX_TEXT_LEN <= 600  # alphanumeric capacity of version 15-M


def test_codec_refusals() -> None:
    text = _sample(2).to_text()
    with pytest.raises(UserError) as u:
        CounterCode.from_text("hello")
    assert u.value.code == "not_a_code"
    for bad, code in (
        (text[:-30], "code_altered"),  # cut short: keys and field count disagree
        (text[:60], "code_altered"),
        (text[:10] + "1" + text[11:], "code_altered"),  # '1' is not base32
        ("DS1:" + "AA" + text[6:], "code_version"),  # version byte 0 ("AE…" is 1)
    ):
        with pytest.raises(CodeError) as err:
            CounterCode.from_text(bad)
        assert err.value.code == code, (bad, err.value)
    with pytest.raises(CodeError) as err:
        _counter.check_fresh(_sample(1, deadline=1000), now=1000)
    assert err.value.code == "code_expired" and "ask the citizen to show a new one" in str(
        err.value
    )
    _counter.check_fresh(_sample(1, deadline=1001), now=1000)


def _show(stack: Stack, aid: str, *extra: str) -> dict[str, object]:
    shown: dict[str, object] = stack.citizen.json(
        "grant",
        "code",
        "--asset",
        aid,
        "--to",
        "citybank",
        "--fields",
        "name,income",
        "--purpose",
        "loan",
        *extra,
    )
    return shown


def test_show_redeem_history_and_replay(stack: Stack, tmp_path: Path) -> None:
    aid = stack.issue("counter")
    receipts = stack.citizen.home / "profiles" / "li" / "receipts"
    before = sorted(receipts.iterdir()) if receipts.exists() else []
    shown = _show(stack, aid, "--out", str(tmp_path / "code.svg"))
    text = str(shown["payload"])
    assert text.startswith("DS1:") and shown["payload_chars"] == len(text)
    assert shown["qr_version"] == 12 and shown["qr_error"] == "M"
    assert shown["grantee_name"] == "citybank" and shown["fields"] == ["name", "income"]
    assert (tmp_path / "code.svg").read_text().lstrip().startswith("<?xml")
    # nothing was sent: no grant on chain, no receipt
    gid = str(shown["grant_id"])
    assert stack.world.ledger.functions.getGrant(bytes.fromhex(gid[2:])).call()[8] == 0
    assert (sorted(receipts.iterdir()) if receipts.exists() else []) == before

    # another institution cannot use it
    line = stack.regulator.fails(3, "redeem", text, "--out", str(tmp_path / "reg"))
    assert "this code is for citybank" not in line  # the regulator has no such contact
    assert f"this code is for {stack.world.bank.address}, not for regulator" in line
    assert not (tmp_path / "reg").exists()

    pulled = stack.bank.json("redeem", text, "--out", str(tmp_path / "counter"))
    assert pulled["grant_id"] == gid and pulled["use"] == 1
    assert pulled["fields"] == {"name": "Li Wei", "income": "182000"}
    assert pulled["grantor"] == stack.world.citizen.address and len(pulled["checks"]) == 5
    assert json.loads(Path(pulled["saved_to"]).read_text())["fields"] == pulled["fields"]
    grant = stack.world.ledger.functions.getGrant(bytes.fromhex(gid[2:])).call()
    assert (grant[6], grant[7], grant[8]) == (1, 1, 1)  # max_uses 1, used once, ACTIVE

    history = stack.citizen.json("history", "list")
    mine = [r for r in history["accesses"] if r["grant_id"] == gid]
    assert [(r["event"], r["tx_hash"]) for r in mine] == [("accessed", pulled["access_tx"])]

    # replayed: refused before anything is sent
    line = stack.bank.fails(3, "redeem", text, "--out", str(tmp_path / "again"))
    assert "already redeemed" in line and "a code works once" in line
    assert not (tmp_path / "again").exists()
    r = stack.bank.run("--json", "redeem", text, "--out", str(tmp_path / "again"))
    assert r.exit_code == 3 and json.loads(r.stdout)["error"]["code"] == "code_used"


def test_redeem_from_an_image(stack: Stack, tmp_path: Path) -> None:
    aid = stack.issue("counter-image")
    shown = _show(stack, aid, "--out", str(tmp_path / "code.png"), "--valid", "2m")
    pulled = stack.bank.json(
        "redeem", "--image", str(tmp_path / "code.png"), "--out", str(tmp_path / "counter")
    )
    assert pulled["grant_id"] == shown["grant_id"]
    assert pulled["fields"] == {"name": "Li Wei", "income": "182000"}
    (tmp_path / "noise.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    assert "not a PNG image" in stack.bank.fails(
        2, "redeem", "--image", str(tmp_path / "noise.png")
    )
    assert "no image at" in stack.bank.fails(2, "redeem", "--image", str(tmp_path / "nope.png"))


def _with(text: str, **changes: object) -> str:
    code = CounterCode.from_text(text)
    fields = {k: getattr(code, k) for k in code.__dataclass_fields__} | changes
    return CounterCode(**fields).to_text()  # type: ignore[arg-type]


def test_altered_expired_and_misdirected_codes(stack: Stack, tmp_path: Path) -> None:
    aid = stack.issue("counter-refused")
    shown = _show(stack, aid)
    text, gid = str(shown["payload"]), bytes.fromhex(str(shown["grant_id"])[2:])
    code = CounterCode.from_text(text)
    out = str(tmp_path / "x")
    refusals = [
        # widened terms (one more field, and a key for it): the signature no longer matches
        (
            _with(
                text,
                fields_mask=code.fields_mask | 1 << 1,
                wrapped=code.wrapped + b"\0" * 32,
            ),
            "not signed by the owner",
            "code_altered",
        ),
        (_with(text, purpose=2), "not signed by the owner", "code_altered"),
        (_with(text, expiry=code.expiry + 86_400), "not signed by the owner", "code_altered"),
        # the wrapped keys flipped: they no longer open for this grant
        (
            _with(text, wrapped=code.wrapped[:-1] + bytes([code.wrapped[-1] ^ 1])),
            "do not open with your key",
            "code_altered",
        ),
        (_with(text, deadline=int(time.time()) - 5), "expired", "code_expired"),
        (_with(text, grantee=stack.world.bank2.address), "this code is for", "code_not_for_you"),
        ("DS1:" + text[4:40], "cut short", "code_altered"),
    ]
    for payload, words, slug in refusals:
        r = stack.bank.run("--json", "redeem", payload, "--out", out)
        assert r.exit_code == 3, (slug, r.stdout, r.stderr)
        err = json.loads(r.stdout)["error"]
        assert err["code"] == slug and words in err["message"], (slug, err)
    assert "not a DataSafe counter code" in stack.bank.fails(2, "redeem", "hello", "--out", out)
    assert "one of them" in stack.bank.fails(2, "redeem", "--out", out)
    assert not (tmp_path / "x").exists()
    assert stack.world.ledger.functions.getGrant(gid).call()[8] == 0  # nothing was submitted
    # the unaltered code still works afterwards
    assert stack.bank.json("redeem", text, "--out", out)["use"] == 1
    # the citizen's own refusals
    for extra, words in (
        (("--valid", "2d"), "at most 24h"),
        (("--valid", "soon"), "is not a duration"),
        (("--out", str(tmp_path / "code.jpg")), "give a .png or .svg"),
    ):
        assert words in stack.citizen.fails(2, *_show_args(aid, "name"), *extra)
    # all five fields still fit a version 15-M code
    five = stack.citizen.json(*_show_args(aid, "name,id_number,address,income,employer"))
    assert five["qr_version"] <= 15 and five["payload_chars"] <= _counter.MAX_TEXT_LEN


def _show_args(aid: str, fields: str) -> list[str]:
    return [
        "grant",
        "code",
        "--asset",
        aid,
        "--to",
        "citybank",
        "--fields",
        fields,
        "--purpose",
        "loan",
    ]


def test_grant_terms_as_people_say_them(stack: Stack) -> None:
    aid = stack.issue("terms")
    base = ["grant", "create", "--asset", aid, "--to", "citybank", "--fields", "name"]
    base += ["--purpose", "tenancy"]
    r = stack.citizen.run(
        *base,
        "--from",
        "2099-12-24 18:00",
        "--for",
        "3d",
        "--uses",
        "2",
        input="n\n",
        TZ="Asia/Shanghai",
    )
    assert r.exit_code == 2 and "cancelled" in r.stderr
    assert "from 2099-12-24 18:00 CST (UTC+08:00) until 2099-12-27 18:00 CST" in r.stdout
    assert "tenancy application" in r.stdout and "at most 2 time(s)" in r.stdout
    receipt = stack.citizen.json(*base, "--for", "2h", "--uses", "unlimited", "--yes")
    g = stack.world.ledger.functions.getGrant(bytes.fromhex(receipt["grant_id"][2:])).call()
    assert g[6] == 0 and 7100 < g[5] - time.time() <= 7200
    receipt = stack.citizen.json(*base, "--from", "2099-01-01", "--until", "2099-01-02", "--yes")
    g = stack.world.ledger.functions.getGrant(bytes.fromhex(receipt["grant_id"][2:])).call()
    assert g[4] > 0 and g[5] - g[4] == 2 * 86_400 - 1 and g[6] == 1
    for extra, words in (
        (["--for", "2h", "--uses", "0"], "would allow no read at all"),
        (["--for", "2 days"], "is not a duration"),
        (["--until", "2020-01-01 10:00"], "in the past"),
        (["--from", "2099-02-01", "--until", "2099-01-01"], "before it starts"),
        (["--for", "1d", "--until", "2099-01-01"], "exactly one of"),
        (["--until", "next week"], "is not a date or time"),
    ):
        assert words in stack.citizen.fails(2, *base, *extra, "--yes")
    purposes = stack.citizen.json("purposes")
    assert purposes[0]["code"] == 1 and "loan" in purposes[0]["description"]
    human = stack.citizen.ok("purposes").stdout
    assert "what it means" in human and "tenancy application" in human


@pytest.mark.parametrize(("bitdepth", "planes"), [(1, 1), (8, 1), (16, 3), (8, 4)])
def test_read_image_of_any_png_depth(tmp_path: Path, bitdepth: int, planes: int) -> None:
    text = _sample(2).to_text()
    qr = segno.make(text, error=_counter.ERROR, boost_error=False, micro=False)
    top = (1 << bitdepth) - 1
    rows = []
    for row in qr.matrix_iter(scale=4, border=4):
        rows.append([v for dark in row for v in [0 if dark else top] * planes])
    if planes == 4:  # RGBA: opaque
        rows = [[v if i % 4 != 3 else top for i, v in enumerate(r)] for r in rows]
    path = tmp_path / "code.png"
    with path.open("wb") as f:
        png.Writer(
            len(rows[0]) // planes,
            len(rows),
            greyscale=planes == 1,
            alpha=planes == 4,
            bitdepth=bitdepth,
        ).write(f, rows)
    assert read_image(path) == text
    blank = tmp_path / "blank.png"
    with blank.open("wb") as f:
        png.Writer(40, 40, greyscale=True, bitdepth=8).write(f, [[255] * 40] * 40)
    with pytest.raises(UserError, match="no QR code found"):
        read_image(blank)
