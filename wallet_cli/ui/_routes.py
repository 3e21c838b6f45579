"""The console's JSON endpoints: each runs one CLI command (or the wizard/trace helpers).

``work(base, given)`` gets the state ``datasafe ui`` was started with and the request's
query and JSON body; what it returns is sent as ``{"data": ...}``, a command's failure as
``{"error": {"code", "message"}}`` with the CLI's words.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import Response

from wallet_cli._context import State
from wallet_cli._render import purpose_words
from wallet_cli.contacts import name_of
from wallet_cli.errors import UserError
from wallet_cli.ui import _views
from wallet_cli.ui._calls import CallError, command, helper

Work = Callable[[State, dict[str, Any]], Any]


def _text(given: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = given.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise CallError(UserError(f"{name.replace('_', ' ')} is required", code="missing"))
        return ""
    if not isinstance(value, str):
        raise CallError(UserError(f"{name} must be text", code="invalid_input"))
    return value.strip()


def _block(given: dict[str, Any], name: str) -> int | None:
    value = given.get(name)
    if value in (None, ""):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise CallError(UserError(f"{name.replace('_', ' ')} must be a block number", code="invalid"))


def session(base: State, given: dict[str, Any]) -> Any:
    return helper(base, _views.session)


def safe(base: State, given: dict[str, Any]) -> Any:
    """My safe: each asset opened locally, its fields checked against the anchored root."""
    from wallet_cli import data

    assets: list[dict[str, Any]] = command(base, data.list_)
    for a in assets:
        try:
            a["opened"] = command(base, data.open_, asset=a["asset_id"], out=None)
        except CallError as exc:
            a["opened"] = None
            a["open_error"] = exc.to_json()["error"]
    return assets


def _named(base: State, rows: list[dict[str, Any]], who: str, purpose: Callable[[Any], Any]) -> Any:
    """Rows with the wallet's name for ``who`` and the purpose in words (as the CLI shows)."""
    for r in rows:
        r[f"{who}_name"] = name_of(base, str(r[who])) if r.get(who) else ""
        code = purpose(r)
        r["purpose_words"] = purpose_words(int(code)) if code is not None else ""
    return rows


def dispute(base: State, given: dict[str, Any]) -> Any:
    """``data dispute``: the issuer must resolve it; grants on the record pause meanwhile."""
    from wallet_cli import data

    asset, reason = _text(given, "asset_id"), _text(given, "reason")
    return command(base, data.dispute, asset=asset, reason=reason, direct=False)


def member_action(action: str) -> Work:
    """``member suspend|reinstate`` (the regulator's own transaction)."""

    def work(base: State, given: dict[str, Any]) -> Any:
        from wallet_cli import member

        fn = {"suspend": member.suspend, "reinstate": member.reinstate}[action]
        return command(base, fn, member=_text(given, "member"), reason=_text(given, "reason"))

    return work


def grants(base: State, given: dict[str, Any]) -> Any:
    from wallet_cli import grant

    return _named(base, command(base, grant.list_), "grantee", lambda g: g["terms"]["purpose"])


def grant_action(action: str) -> Work:
    def work(base: State, given: dict[str, Any]) -> Any:
        from wallet_cli import grant

        fn = {"revoke": grant.revoke, "pause": grant.pause, "resume": grant.resume}[action]
        gid = _text(given, "grant_id")
        return command(base, fn, grant=gid, yes=True, direct=False, relay=None)

    return work


def _share(given: dict[str, Any]) -> dict[str, str]:
    """What is shared with whom and why: the terms a grant and a counter code both name."""
    fields = given.get("fields")
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields) or not fields:
        raise CallError(UserError("tick at least one field to share", code="missing"))
    return {
        "asset": _text(given, "asset"),
        "to": _text(given, "to"),
        "fields": ",".join(fields),
        "purpose": _text(given, "purpose"),
    }


def _grant_terms(given: dict[str, Any]) -> dict[str, str]:
    return {
        **_share(given),
        "for_": _text(given, "duration"),
        "uses": _text(given, "uses"),
    }


def grant_preview(base: State, given: dict[str, Any]) -> Any:
    return helper(base, _views.grant_preview, **_grant_terms(given))


def grant_create(base: State, given: dict[str, Any]) -> Any:
    """The CLI's ``grant create --yes``: the page showed the confirmation, the person agreed."""
    from wallet_cli import grant

    terms = _grant_terms(given)
    return command(
        base,
        grant.create,
        **terms,
        from_=None,
        until=None,
        days=None,
        max_uses=None,
        on_behalf_of=None,
        yes=True,
    )


def asset_fields(base: State, given: dict[str, Any]) -> Any:
    return helper(base, _views.asset_fields, asset=_text(given, "asset"))


def history(base: State, given: dict[str, Any]) -> Any:
    from wallet_cli import history as hist

    out = command(base, hist.list_, since=None, follow=False, follow_for=0.0, interval=2.0)
    for rows in (out["accesses"], out["changes"]):
        _named(base, rows, "institution", lambda r: r.get("purpose"))
    # her claims, read from her own node by the command (the department is "who")
    for r in _named(base, out["claims"], "institution", lambda r: None):
        r["event_words"] = hist.EVENT_WORDS[r["event"]]
    return out


def directory(base: State, given: dict[str, Any]) -> Any:
    from wallet_cli import directory as d

    return command(base, d.list_)


def purposes(base: State, given: dict[str, Any]) -> Any:
    from wallet_cli import grant

    return command(base, grant.purposes)


def contacts(base: State, given: dict[str, Any]) -> Any:
    return [{"name": k, "address": v} for k, v in sorted(base.home.contacts().items())]


def trace(base: State, given: dict[str, Any]) -> Any:
    route = str(given.get("route") or "accesses")
    cursor = str(given.get("cursor") or "") or None
    return helper(base, _views.trace_page, query=given, route=route, cursor=cursor)


def export(base: State, given: dict[str, Any]) -> Any:
    fmt = _text(given, "format")
    out = helper(base, _views.export, query=given, fmt=fmt)
    if fmt == "csv":
        return Response(out, media_type="text/csv; charset=utf-8")
    return out


def audit_verify(base: State, given: dict[str, Any]) -> Any:
    return helper(
        base,
        _views.audit_verify,
        from_block=_block(given, "from_block"),
        to_block=_block(given, "to_block"),
    )


def audit_grants(base: State, given: dict[str, Any]) -> Any:
    from wallet_cli import audit

    return command(base, audit.verify_, from_block=None, to_block=None, rows_file=None)


def desk_verify(base: State, given: dict[str, Any]) -> Any:
    from wallet_cli import institution

    return command(base, institution.verify, grant=_text(given, "grant_id"), fields=None)


def desk_pull(base: State, given: dict[str, Any]) -> Any:
    from wallet_cli import institution

    out = base.home.path / "pulled"
    return command(base, institution.pull, grant=_text(given, "grant_id"), out=out, fields=None)


def counter_code(base: State, given: dict[str, Any]) -> Any:
    """``grant code``: the one-time counter grant, with its QR code as SVG (same function)."""
    from wallet_cli import counter
    from wallet_cli._counter import DEFAULT_VALID

    valid = _text(given, "valid", required=False) or DEFAULT_VALID
    data: dict[str, Any] = command(base, counter.code, **_share(given), valid=valid, out=None)
    return data | {"svg": counter.qr_svg(str(data["payload"]))}


def counter_redeem(base: State, given: dict[str, Any]) -> Any:
    """``redeem <code>`` at the desk: the code checked on chain, submitted, the fields pulled."""
    from wallet_cli import counter

    out = base.home.path / "pulled"
    return command(base, counter.redeem, payload=_text(given, "payload"), image=None, out=out)


#: (method, path, work), listed explicitly.
API: list[tuple[str, str, Work]] = [
    ("GET", "/api/session", session),
    ("GET", "/api/safe", safe),
    ("POST", "/api/safe/dispute", dispute),
    ("GET", "/api/grants", grants),
    ("POST", "/api/grants/revoke", grant_action("revoke")),
    ("POST", "/api/grants/pause", grant_action("pause")),
    ("POST", "/api/grants/resume", grant_action("resume")),
    ("POST", "/api/grants/preview", grant_preview),
    ("POST", "/api/grants", grant_create),
    ("GET", "/api/asset-fields", asset_fields),
    ("GET", "/api/history", history),
    ("GET", "/api/directory", directory),
    ("GET", "/api/purposes", purposes),
    ("GET", "/api/contacts", contacts),
    ("GET", "/api/trace", trace),
    ("GET", "/api/trace/export", export),
    ("POST", "/api/audit/verify", audit_verify),
    ("POST", "/api/audit/grants", audit_grants),
    ("POST", "/api/members/suspend", member_action("suspend")),
    ("POST", "/api/members/reinstate", member_action("reinstate")),
    ("POST", "/api/desk/verify", desk_verify),
    ("POST", "/api/desk/pull", desk_pull),
    ("POST", "/api/counter/code", counter_code),
    ("POST", "/api/desk/redeem", counter_redeem),
]
