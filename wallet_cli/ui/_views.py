"""What the console shows that no single command emits: built from the commands' helpers.

Each function takes the request's state (``_calls.helper``) and calls the functions the CLI
commands call — the grant wizard's confirmation is ``grant._terms_words``, the trace is
``audit.service_rows`` with ``audit``'s own filter parsing — so a page and a command can
never disagree about what is checked or how it is said.
"""

from __future__ import annotations

import csv
import inspect
import io
import time
from typing import Any

from api.client import DataSafeProblemError
from ledger.models import GrantTerms
from wallet_cli import _assets, _terms, _trace, audit, grant
from wallet_cli._context import State
from wallet_cli._render import purpose_words
from wallet_cli.contacts import name_of
from wallet_cli.errors import UserError


def session(st: State) -> dict[str, Any]:
    """Who the console acts as (the profile ``datasafe ui`` was started for)."""
    p = st.profile()
    try:
        api: str | None = st.api_base(p)
    except UserError:
        api = None
    return {
        "profile": p.name,
        "address": p.address,
        "kind": p.meta().get("kind"),
        "api": api,
        "rpc": st.rpc(p),
    }


def grant_preview(
    st: State, *, asset: str, to: str, fields: str, purpose: str, for_: str, uses: str
) -> dict[str, Any]:
    """The wizard's last step: the CLI's plain-words confirmation for these terms."""
    aid = _assets.b32(asset, "asset id")
    code = grant.parse_purpose(purpose)
    zone = _terms.local_zone()
    window = _terms.grant_window(now=int(time.time()), for_=for_, zone=zone)
    max_uses = _terms.parse_uses(uses, None)
    p, key = st.unlock()
    with st.client(key, p) as c:
        share = grant.prepare_share(st, c, asset, to, fields)
        terms = GrantTerms(
            aid, share.grantee, code, share.mask, window.not_before, window.expiry, max_uses
        )
        words = grant._terms_words(st, c, share, terms, zone)
    hidden = [f for f in share.schema["fields"] if f not in share.names]
    return {"words": words, "not_shared": hidden, "fields": share.names}


def asset_fields(st: State, *, asset: str) -> dict[str, Any]:
    """An asset's field names (its schema), for the wizard's checkboxes."""
    _assets.b32(asset, "asset id")
    p, key = st.unlock()
    with st.client(key, p) as c:
        a: dict[str, Any] = c.get(f"/v1/assets/{asset}")
        schema = _assets.schema_fields(c, a["schema_id"])
    return {"asset_id": a["asset_id"], "type": schema["name"], "fields": list(schema["fields"])}


_NAMES_FOR = 30.0  # seconds a read of the directory is reused (a trace reads it per page)
_names: dict[str, tuple[float, dict[str, str]]] = {}


def registered_names(st: State) -> dict[str, str]:
    """Address (lower case) -> the name the chain's directory registered; empty without one."""
    from wallet_cli import directory

    where = f"{st.settings.home}|{st.profile_name}|{st.rpc_url}"
    seen = _names.get(where)
    if seen is not None and time.monotonic() - seen[0] < _NAMES_FOR:
        return dict(seen[1])
    try:
        names = {e["address"].lower(): e["name"] for e in directory._entries(st, None)}
    except UserError:
        names = {}
    _names[where] = (time.monotonic(), names)
    return dict(names)


def _trace_params(st: State, q: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    kind = q.get("kind") or "all"
    if kind not in ("accesses", "consents", "all"):
        raise UserError(f"kind must be accesses, consents or all, not {kind!r}")
    blocks = {}
    for name in ("from_block", "to_block"):
        value = q.get(name)
        if value:
            if not str(value).isdigit():
                raise UserError(f"{name.replace('_', ' ')} must be a block number, not {value!r}")
            blocks[name] = int(value)
    code = grant.parse_purpose(q["purpose"]) if q.get("purpose") else None
    params = audit._service_params(
        q.get("subject") or None,
        audit._address(st, q.get("institution") or None, "institution"),
        q.get("asset") or None,
        audit._address(st, q.get("issuer") or None, "issuer"),
        q.get("grant") or None,
        code,
        audit._day(q.get("since") or None, False),
        audit._day(q.get("until") or None, True),
        blocks.get("from_block"),
        blocks.get("to_block"),
    )
    return kind, params


def trace_page(
    st: State, *, query: dict[str, Any], route: str, cursor: str | None
) -> dict[str, Any]:
    """One page of the regulator's trace (the page ``audit.service_rows`` reads in its loop).

    Page by page, so the browser draws the first rows while the rest arrive.
    """
    kind, params = _trace_params(st, query)
    limit = str(query.get("limit") or "1000")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        raise UserError(f"limit must be 1 to 1000 rows, not {limit!r}")
    if route not in audit._ROUTES[kind]:
        raise UserError(f"route must be one of {', '.join(audit._ROUTES[kind])}, not {route!r}")
    p, key = st.unlock()
    with st.client(key, p) as c:
        page = c.get(
            f"/v1/trace/{route}",
            params=dict(params, limit=int(limit), **({"cursor": cursor} if cursor else {})),
        )
    if page["indexed_to"] is None:
        raise DataSafeProblemError(503, {"code": "not_ready", "detail": "no index yet"})
    rows: list[dict[str, Any]] = page["items"]
    names = registered_names(st)
    for r in rows:
        r["event"] = _trace.event_name(str(r["kind"]))
        inst = str(r.get("institution") or "").lower()
        if inst and inst not in names:
            names[inst] = name_of(st, inst)
        r["institution_name"] = names.get(inst, "")
        code = r.get("purpose")
        r["purpose_words"] = purpose_words(int(code)) if code is not None else ""
    return {
        "rows": rows,
        "next_cursor": page["next_cursor"],
        "indexed_to": page["indexed_to"],
        "routes": audit._ROUTES[kind],
    }


def export(st: State, *, query: dict[str, Any], fmt: str) -> list[dict[str, Any]] | str:
    """The service's streamed export (JSON rows, or CSV with the service's columns)."""
    from ledger.trace import CSV_COLUMNS

    if fmt not in ("csv", "json"):
        raise UserError(f"format must be csv or json, not {fmt!r}")
    kind, params = _trace_params(st, query)
    p, key = st.unlock()
    with st.client(key, p) as c:
        rows = audit.exported_rows(c, key, kind, params)
    if fmt == "json":
        return rows
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*CSV_COLUMNS, "fields"])
    for r in rows:
        fields = r.get("fields")
        w.writerow([*(r[k] for k in CSV_COLUMNS), ";".join(fields) if fields else ""])
    return buf.getvalue()


def audit_verify(st: State, *, from_block: int | None, to_block: int | None) -> Any:
    """``audit verify`` over a block range (from the deployment when no start is given)."""
    if from_block is None:
        with st.client(None) as c:
            from_block = st.require_pin(c).deploy_block
    return inspect.unwrap(audit.verify_)(from_block=from_block, to_block=to_block, rows_file=None)
