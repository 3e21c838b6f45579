"""Grant terms as people say them (pure: the time and the time zone are passed in)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from wallet_cli import _terms
from wallet_cli._context import State
from wallet_cli.contacts import display_name
from wallet_cli.errors import UserError
from wallet_cli.settings import WalletSettings

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
# 2026-12-01 10:00 in Shanghai
NOW = int(dt.datetime(2026, 12, 1, 10, 0, tzinfo=SHANGHAI).timestamp())


def _at(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=SHANGHAI).timestamp())  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30m", 1800),
        ("90min", 5400),
        ("2h", 7200),
        ("3d", 259_200),
        ("90d", 7_776_000),
        ("2w", 1_209_600),
        (" 1D ", 86_400),
    ],
)
def test_durations(text: str, seconds: int) -> None:
    assert _terms.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "3", "d", "3 days", "1.5h", "-2h", "0h", "0d", "99999999w"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UserError) as err:
        _terms.parse_duration(text)
    assert err.value.code == "bad_duration" and "--for" in str(err.value)


def test_for_counts_from_now_or_from_the_start() -> None:
    w = _terms.grant_window(now=NOW, for_="2h", zone=SHANGHAI)
    assert (w.not_before, w.expiry) == (0, NOW + 7200)
    w = _terms.grant_window(now=NOW, for_="3d", start="2026-12-24 18:00", zone=SHANGHAI)
    assert w.not_before == _at(2026, 12, 24, 18, 0)
    assert w.expiry == _at(2026, 12, 27, 18, 0)
    assert _terms.grant_window(now=NOW, days=30, zone=SHANGHAI).expiry == NOW + 30 * 86_400


def test_dates_and_times_local_and_iso() -> None:
    def until(text: str) -> int:
        return _terms.grant_window(now=NOW, until=text, zone=SHANGHAI).expiry

    assert until("2026-12-24") == _at(2026, 12, 24, 23, 59, 59)  # a bare date: its last second
    assert until("2026-12-24 18:00") == _at(2026, 12, 24, 18, 0)
    assert until("2026-12-24T18:00") == _at(2026, 12, 24, 18, 0)
    assert until("2026-12-24 18:00:30") == _at(2026, 12, 24, 18, 0, 30)
    # an explicit offset wins over the local zone
    assert until("2026-12-24T18:00+00:00") == _at(2026, 12, 25, 2, 0)
    assert until("2026-12-24T10:00Z") == _at(2026, 12, 24, 18, 0)
    w = _terms.grant_window(now=NOW, start="2026-12-24", until="2026-12-31", zone=SHANGHAI)
    assert w.not_before == _at(2026, 12, 24, 0, 0)  # a bare --from date: its first second
    # a start already past means "at once"
    assert _terms.grant_window(now=NOW, start="2026-11-01", for_="1d", zone=SHANGHAI) == (
        _terms.Window(0, NOW + 86_400)
    )


@pytest.mark.parametrize(
    ("kw", "code", "words"),
    [
        ({}, "bad_window", "exactly one of --for"),
        ({"for_": "2h", "until": "2026-12-24"}, "bad_window", "you gave --for and --until"),
        ({"until": "2026-11-30"}, "grant_expired", "in the past"),
        ({"until": "2026-12-01 09:59"}, "grant_expired", "in the past"),
        ({"until": "24/12/2026"}, "bad_date", "is not a date or time"),
        ({"until": "2026-13-01"}, "bad_date", "is not a date or time"),
        ({"start": "tomorrow", "for_": "1d"}, "bad_date", "--from 'tomorrow'"),
        (
            {"start": "2026-12-24 18:00", "until": "2026-12-24 17:00"},
            "grant_window_invalid",
            "before it starts",
        ),
        ({"start": "2026-12-24", "until": "2026-12-10"}, "grant_window_invalid", "before it"),
        ({"days": 0}, "bad_duration", "at least 1"),
        ({"for_": "soon"}, "bad_duration", "is not a duration"),
    ],
)
def test_bad_windows(kw: dict[str, object], code: str, words: str) -> None:
    with pytest.raises(UserError) as err:
        _terms.grant_window(now=NOW, zone=SHANGHAI, **kw)  # type: ignore[arg-type]
    assert err.value.code == code and words in str(err.value), str(err.value)


def test_uses() -> None:
    assert _terms.parse_uses(None, None) == 1
    assert _terms.parse_uses("3", None) == 3
    assert _terms.parse_uses("unlimited", None) == 0
    assert _terms.parse_uses(None, 0) == 0  # scripts' --max-uses 0 = no limit
    for bad, words in (
        ("0", "would allow no read at all"),
        ("-1", "is not a number"),
        ("many", "is not a number"),
        (str(2**32), "too large"),
    ):
        with pytest.raises(UserError) as err:
            _terms.parse_uses(bad, None)
        assert err.value.code == "bad_uses" and words in str(err.value)
    with pytest.raises(UserError, match="not both"):
        _terms.parse_uses("2", 2)


def test_local_when_names_the_zone() -> None:
    assert _terms.local_when(_at(2026, 12, 24, 18, 0), SHANGHAI) == "2026-12-24 18:00 UTC+08:00"
    assert _terms.local_when(_at(2026, 12, 24, 18, 0), dt.UTC) == "2026-12-24 10:00 UTC"


def test_purposes_have_descriptions() -> None:
    rows = _terms.purposes()
    assert [r["code"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(r["description"] for r in rows)


def test_display_names_registered_nickname_address(tmp_path: Path) -> None:
    st = State(settings=WalletSettings(home=tmp_path))
    bank = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
    other = "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65"
    st.home.set_contact("citybank", bank)
    assert display_name(st, bank) == "citybank"
    assert display_name(st, bank.lower(), {"name": "City Bank of Weihai"}) == (
        "City Bank of Weihai (your contact citybank)"
    )
    assert display_name(st, bank, {"name": "CityBank"}) == "CityBank"  # same name, said once
    assert display_name(st, other, {"name": "Tax Bureau"}) == "Tax Bureau"
    assert display_name(st, other.lower(), {"name": "  "}) == other  # checksummed address
    assert display_name(st, other.lower(), None) == other
