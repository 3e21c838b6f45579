"""Grant terms as people say them: ``--for 3d``, ``--from``/``--until`` dates and times in
the local time zone, ``--uses 1|unlimited``; and the purposes with their descriptions.

Pure functions with the current time passed in (pyca's ``*_at_time`` habit), so every
refusal is a unit test; every refusal is a :class:`~wallet_cli.errors.UserError` with a
stable code.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from api.terms import PURPOSES
from wallet_cli.errors import UserError

#: What each purpose code means, in the words a clerk would use at the counter.
PURPOSE_DESCRIPTIONS = {
    1: "A lender checks identity and income to decide on a loan or credit line.",
    2: "A bank or payment firm verifies who you are before opening an account (know your "
    "customer).",
    3: "A notary checks identity and facts before certifying a document or a transaction.",
    4: "An insurer assesses the risk it takes on before offering a policy.",
    5: "An employer confirms identity, qualifications or past employment before hiring.",
    6: "A landlord or agency checks identity and income before renting out a home.",
}

_UNITS = {"m": 60, "min": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_DURATION = re.compile(r"^\s*(\d+)\s*(m|min|h|d|w)\s*$", re.IGNORECASE)
_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")
#: The ledger stores expiry as uint64; nobody means a grant past the year 9999.
_MAX_SECONDS = 100 * 365 * 86_400


@dataclass(frozen=True)
class Window:
    """When a grant may be used: ``not_before`` (0 = at once) to ``expiry`` (unix seconds)."""

    not_before: int
    expiry: int


def local_zone() -> dt.tzinfo:
    """The time zone dates are typed and shown in (``TZ`` if it names one, else the system's)."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    zone = dt.datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone


def local_when(ts: int, zone: dt.tzinfo | None = None) -> str:
    """``2026-12-24 18:00 CET (UTC+01:00)``: a time as the person reads their own clock."""
    t = dt.datetime.fromtimestamp(ts, zone or local_zone())
    offset = t.strftime("%z")
    if offset in ("", "+0000"):
        return f"{t:%Y-%m-%d %H:%M} UTC"
    utc = f"UTC{offset[:3]}:{offset[3:]}"
    name = t.tzname() or ""
    label = f"{name} ({utc})" if name[:1].isalpha() and not name.startswith("UTC") else utc
    return f"{t:%Y-%m-%d %H:%M} {label}"


def parse_duration(text: str, option: str = "--for") -> int:
    """``90m``, ``2h``, ``3d``, ``2w`` -> seconds (at least one minute)."""
    m = _DURATION.match(text)
    if m is None:
        raise UserError(
            f"{option} {text!r} is not a duration: say a number and a unit, e.g. 30m, 2h, 3d, 2w",
            code="bad_duration",
        )
    seconds = int(m.group(1)) * _UNITS[m.group(2).lower()]
    if seconds <= 0:
        raise UserError(f"{option} {text!r} is no time at all", code="bad_duration")
    if seconds > _MAX_SECONDS:
        raise UserError(f"{option} {text!r} is longer than 100 years", code="bad_duration")
    return seconds


def parse_when(text: str, option: str, zone: dt.tzinfo, *, end_of_day: bool) -> int:
    """A date (``2026-12-24``) or date and time (``2026-12-24 18:00``, ISO 8601, with or
    without an offset) -> unix seconds. A bare date means the start of that day for
    ``--from`` and its last second for ``--until``; times without an offset are local."""
    s = text.strip()
    try:
        day = dt.date.fromisoformat(s)
    except ValueError:
        day = None
    if day is not None and len(s) == 10:
        t = dt.datetime.combine(day, dt.time(23, 59, 59) if end_of_day else dt.time(0, 0))
        return int(t.replace(tzinfo=zone).timestamp())
    parsed: dt.datetime | None = None
    try:
        parsed = dt.datetime.fromisoformat(s.replace(" ", "T", 1) if " " in s else s)
    except ValueError:
        for fmt in _FORMATS:
            try:
                parsed = dt.datetime.strptime(s, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise UserError(
            f"{option} {text!r} is not a date or time: say 2026-12-24, '2026-12-24 18:00' "
            "(your local time) or 2026-12-24T18:00+08:00",
            code="bad_date",
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return int(parsed.timestamp())


def grant_window(
    *,
    now: int,
    for_: str | None = None,
    days: int | None = None,
    start: str | None = None,
    until: str | None = None,
    zone: dt.tzinfo | None = None,
) -> Window:
    """The validity window from the options as typed; refuses what would be void.

    Exactly one of ``--for``, ``--days`` (kept for scripts) and ``--until`` ends the window;
    ``--from`` starts it (default: now) and a duration counts from that start.
    """
    zone = zone or local_zone()
    given = [n for n, v in (("--for", for_), ("--days", days), ("--until", until)) if v is not None]
    if len(given) != 1:
        raise UserError(
            "say how long the grant lasts with exactly one of --for (e.g. 3d), --until (a date "
            f"or time) or --days N{'; you gave ' + ' and '.join(given) if given else ''}",
            code="bad_window",
        )
    not_before = parse_when(start, "--from", zone, end_of_day=False) if start else 0
    begin = max(not_before, now)
    if days is not None:
        if days <= 0:
            raise UserError("--days must be at least 1", code="bad_duration")
        expiry = begin + days * 86_400
    elif for_ is not None:
        expiry = begin + parse_duration(for_)
    else:
        expiry = parse_when(str(until), "--until", zone, end_of_day=True)
    if expiry <= now:
        raise UserError(
            f"--until {until} ({local_when(expiry, zone)}) is in the past: the grant would be "
            "expired already",
            code="grant_expired",
        )
    if not_before and expiry <= not_before:
        raise UserError(
            f"the grant would end ({local_when(expiry, zone)}) before it starts "
            f"(--from {start}, {local_when(not_before, zone)})",
            code="grant_window_invalid",
        )
    # A start already past is the same as no start: the grant is usable at once.
    return Window(not_before if not_before > now else 0, expiry)


def parse_uses(uses: str | None, max_uses: int | None) -> int:
    """``--uses 3`` or ``--uses unlimited`` (``--max-uses N``, 0 = no limit, for scripts)."""
    if uses is not None and max_uses is not None:
        raise UserError("give --uses or --max-uses, not both", code="bad_uses")
    if uses is None:
        return 1 if max_uses is None else max_uses
    word = uses.strip().lower()
    if word in ("unlimited", "any", "∞", "no limit"):
        return 0
    if not word.isdigit():
        raise UserError(
            f"--uses {uses!r} is not a number of reads: say 1, 3 … or unlimited", code="bad_uses"
        )
    n = int(word)
    if n == 0:
        raise UserError(
            "--uses 0 would allow no read at all: say 1 or more, or --uses unlimited",
            code="bad_uses",
        )
    if n >= 2**32:
        raise UserError(f"--uses {n} is too large (at most {2**32 - 1})", code="bad_uses")
    return n


def purposes() -> list[dict[str, object]]:
    return [
        {"code": c, "purpose": w, "description": PURPOSE_DESCRIPTIONS.get(c, "")}
        for c, w in PURPOSES.items()
    ]
