"""``datasafe sealed``: sealed accesses (lawful access without consent, told to the subject at
once, opened after the unseal date).

A department records one (``record``: the opening stays in this wallet, only its hash goes
on chain) and reveals it (``reveal``); a regulator extends one with a reason (``extend``)
and lists the overdue (``overdue``); a subject lists its own (``list``; ``datasafe history``
shows them too). Every list the service answers is checked against the chain the wallet
reads itself: a record the service hides, alters or invents, or an opening that does not
hash to the commitment, is an error (exit 6), not a line.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from eth_hash.auto import keccak

from api.client import DataSafeClient, DataSafeProblemError
from ledger import sealed as sl
from ledger.address import is_address, to_checksum_address
from ledger.errors import UnknownRevertError, default_registry
from ledger.rpc import RpcClient
from wallet_cli import _chain
from wallet_cli._context import JsonOpt, State, command, state
from wallet_cli._home import Profile
from wallet_cli._render import kv, table, when
from wallet_cli._terms import local_zone, parse_when
from wallet_cli.contacts import name_of
from wallet_cli.errors import RefusedError, UserError

app = typer.Typer(help="Sealed accesses: record, reveal, extend, list.", no_args_is_help=True)

COLUMNS = ["seal", "department", "sealed on", "unseals", "status", "details"]
_OPENINGS = "sealed-openings.json"


def line(st: State, item: dict[str, Any]) -> str:
    """The subject's sentence for one record."""
    text = (
        f"sealed access by {name_of(st, str(item['department']))} on "
        f"{when(int(item['sealed_at']))}, unseals {when(int(item['unseal_at']))}"
    )
    if item.get("opening"):
        o = item["opening"]
        text += (
            f"; unsealed: {name_of(st, str(o['institution']))} received fields "
            f"{_bits(int(o['fields_mask']))} under legal basis {o['legal_basis_ref']}"
        )
    elif int(item.get("extensions") or 0):
        text += f" (extended {item['extensions']}x by a regulator)"
    return text


def _bits(mask: int) -> str:
    return ",".join(str(i) for i in range(64) if mask >> i & 1)


def _row(st: State, item: dict[str, Any]) -> tuple[Any, ...]:
    details = "-"
    if item.get("opening"):
        o = item["opening"]
        details = f"to {name_of(st, str(o['institution']))}, fields {_bits(int(o['fields_mask']))}"
    status = "OVERDUE" if item.get("overdue") else str(item["status"])
    return (
        item["seal_id"],
        name_of(st, str(item["department"])),
        when(int(item["sealed_at"])),
        when(int(item["unseal_at"])),
        status,
        details,
    )


def _rpc(st: State, p: Profile, what: str) -> RpcClient:
    url = st.rpc(p, required=what)
    assert url is not None
    return _chain.rpc_client(url)


def for_history(st: State, c: DataSafeClient, p: Profile) -> list[dict[str, Any]]:
    """A subject's records for ``datasafe history`` (none for a member that is no subject)."""
    try:
        return verified_seals(st, c, p, p.address)[0]
    except DataSafeProblemError as exc:
        if exc.code == "role_required":
            return []
        raise


def chain_seals(rpc_url: str, ledger: str, subject: str) -> list[dict[str, Any]]:
    """A subject's records read from the chain alone (history without a service)."""
    with _chain.rpc_client(rpc_url) as rpc:
        sl.check_companion(rpc, ledger)
        records = sl.read_seals(rpc, ledger, sl.subject_seal_ids(rpc, ledger, subject))
        openings = sl.unseal_openings(rpc, ledger, [r.seal_id for r in records])
    return [
        r.to_json() | {"opening": openings[r.seal_id].to_json() if r.seal_id in openings else None}
        for r in records
    ]


def verified_seals(
    st: State, c: DataSafeClient, p: Profile, subject: str | None
) -> tuple[list[dict[str, Any]], bool]:
    """The service's list of ``subject``'s records (None: all, a regulator), checked against
    the chain; ``(items, checked)``, unchecked only with ``--no-chain``."""
    from wallet_cli._confirm import despite_index_lag

    params = {"subject": subject} if subject else None
    if st.rpc(p) is None:
        return c.get_all("/v1/sealed", params=params), False
    pin = st.require_pin(c, p)
    with _rpc(st, p, "sealed") as rpc:
        sl.check_companion(rpc, pin.ledger_address, pin.companions)

        def attempt() -> list[dict[str, Any]]:
            items: list[dict[str, Any]] = c.get_all("/v1/sealed", params=params)
            sl.check_listing(rpc, pin.ledger_address, subject, items)
            return items

        return despite_index_lag(st.settings.confirm_timeout, attempt), True


def _show(st: State, title: str, items: list[dict[str, Any]], checked: bool) -> None:
    def human(con: Any) -> None:
        mark = "" if checked else "  (service's view, not checked: --no-chain)"
        table(con, title + mark, COLUMNS, (_row(st, i) for i in items))

    st.emit({"sealed": items, "checked_on_chain": checked}, human)


@app.command("list")
@command
def list_(
    subject: Annotated[
        str | None, typer.Option(help="Regulator: only this subject's records")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Sealed access records: mine (subject), or everyone's (regulator), checked on chain.

    Example: datasafe -p regulator --rpc http://127.0.0.1:8545 sealed list --subject 0xAc…
    """
    st = state()
    p, key = st.unlock()
    with st.client(key, p) as c:
        who = subject if subject else None
        if who is None and "regulator" not in _roles(c, p):
            who = p.address
        items, checked = verified_seals(st, c, p, who)
    _show(st, "Sealed accesses", items, checked)


def _roles(c: DataSafeClient, p: Profile) -> list[str]:
    member: dict[str, Any] = c.get(f"/v1/members/{p.address}")
    return list(member.get("roles") or [])


@app.command()
@command
def overdue(json_out: JsonOpt = False) -> None:
    """Regulator: records still sealed at or after their unseal date (checked on chain).

    Example: datasafe -p regulator --rpc http://127.0.0.1:8545 sealed overdue
    """
    st = state()
    p, key = st.unlock()
    with st.client(key, p) as c, _rpc(st, p, "sealed overdue") as rpc:
        pin = st.require_pin(c, p)
        sl.check_companion(rpc, pin.ledger_address, pin.companions)
        before = _chain_time(rpc)
        items: list[dict[str, Any]] = c.get_all("/v1/sealed/overdue")
        sl.check_overdue(rpc, pin.ledger_address, (before, _chain_time(rpc)), items)
    _show(st, f"Overdue sealed accesses ({len(items)})", items, True)


def _chain_time(rpc: RpcClient) -> int:
    return int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)


def _send(
    st: State, c: DataSafeClient, p: Profile, key: bytes, path: str, data: bytes
) -> dict[str, Any]:
    url = st.rpc(p, required="a sealed-access transaction")
    assert url is not None
    pin = st.require_pin(c, p)
    with _chain.rpc_client(url) as rpc:
        companion = sl.check_companion(rpc, pin.ledger_address, pin.companions)
    try:
        # The gas estimate runs the contract's checks: a refusal surfaces here.
        raw = _chain.sign_call(url, key, companion, data)
    except UnknownRevertError as exc:  # the wallet's transport names only the ledger's errors
        raise default_registry().decode(exc.data) from None
    out: dict[str, Any] = c.post(path, {"raw_transaction": raw})
    return out


def _confirmed(st: State, p: Profile, c: DataSafeClient, seal_id: int) -> sl.SealRecord:
    """The record as the chain holds it now (the service's answer proves nothing)."""
    pin = st.require_pin(c, p)
    with _rpc(st, p, "sealed") as rpc:
        (record,) = sl.read_seals(rpc, pin.ledger_address, [seal_id])
    return record


@app.command()
@command
def extend(
    seal_id: Annotated[int, typer.Argument(help="The record's number")],
    until: Annotated[str, typer.Option("--until", help="New unseal date, e.g. 2027-03-01")],
    reason: Annotated[str, typer.Option("--reason", help="Reason reference (its hash on chain)")],
    json_out: JsonOpt = False,
) -> None:
    """Regulator: move a record's unseal date later, recorded with a reason reference.

    Example: datasafe -p regulator sealed extend 3 --until 2027-03-01 --reason "court order 9"
    """
    st = state()
    if not reason.strip():
        raise UserError("--reason must not be empty", code="reason_required")
    at = parse_when(until, "--until", local_zone(), end_of_day=True)
    p, key = st.unlock()
    with st.client(key, p) as c:
        _send(
            st, c, p, key, f"/v1/sealed/{seal_id}/extend", sl.encode_extend(seal_id, at, _h(reason))
        )
        record = _confirmed(st, p, c, seal_id)
    if record.unseal_at != at:
        raise RefusedError(
            f"the chain still shows seal {seal_id} unsealing {when(record.unseal_at)}"
        )
    st.emit(
        record.to_json() | {"reason_hash": "0x" + _h(reason).hex()},
        lambda con: kv(con, f"Seal {seal_id} extended", {"unseals": when(at), "reason": reason}),
    )


def _h(text: str) -> bytes:
    return keccak(text.encode())


@app.command()
@command
def record(
    asset_id: Annotated[str, typer.Argument(help="The asset whose data was disclosed (0x…)")],
    institution: Annotated[str, typer.Option(help="Who received it (address or contact)")],
    fields: Annotated[str, typer.Option(help="Field bits disclosed, e.g. 0,2,5")],
    basis: Annotated[str, typer.Option(help="Legal basis reference (its hash is committed)")],
    until: Annotated[str, typer.Option("--until", help="Unseal date, e.g. 2027-01-31")],
    json_out: JsonOpt = False,
) -> None:
    """Department: record a sealed access; the opening is kept in this wallet until reveal.

    Example: datasafe -p taxbureau sealed record 0xab… --institution citybank --fields 0,2
    --basis "AML art. 12" --until 2027-01-31
    """
    st = state()
    p, key = st.unlock()
    opening = _opening(st, asset_id, institution, fields, basis)
    at = parse_when(until, "--until", local_zone(), end_of_day=True)
    with st.client(key, p) as c:
        data = sl.encode_seal(opening.asset_id, opening.commitment(), at)
        # Kept before sending: a seal whose opening is lost can never be revealed.
        pending = f"pending:{opening.commitment().hex()}"
        _save_opening(p, pending, opening)
        out = _send(st, c, p, key, "/v1/sealed", data)
        seal_id = int(out["seal_id"])
        _save_opening(p, str(seal_id), opening, drop=pending)
        chain = _confirmed(st, p, c, seal_id)
    if chain.commitment != opening.commitment():
        raise RefusedError(f"the chain's seal {seal_id} holds another commitment")
    st.emit(
        chain.to_json(),
        lambda con: kv(
            con,
            f"Sealed access {seal_id} recorded",
            {"unseals": when(at), "subject": chain.subject},
        ),
    )


def _opening(st: State, asset_id: str, institution: str, fields: str, basis: str) -> sl.Opening:
    who = institution if is_address(institution) else st.home.contacts().get(institution, "")
    if not who:
        raise UserError(f"unknown institution {institution!r}", code="unknown_member")
    try:
        mask = sum(1 << int(b) for b in fields.split(",") if b.strip())
        return sl.Opening.new(to_checksum_address(who), bytes.fromhex(asset_id[2:]), mask, basis)
    except (ValueError, sl.SealedError) as exc:
        raise UserError(f"cannot record this seal: {exc}", code="invalid_seal") from None


def _openings(p: Profile) -> dict[str, Any]:
    path = p.dir / _OPENINGS
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    return data


def _save_opening(p: Profile, name: str, opening: sl.Opening, drop: str | None = None) -> None:
    data = _openings(p)
    data[name] = opening.to_json()
    data.pop(drop or "", None)
    path = p.dir / _OPENINGS
    path.write_text(json.dumps(data, indent=2, sort_keys=True))
    path.chmod(0o600)


@app.command()
@command
def reveal(
    seal_id: Annotated[int, typer.Argument(help="The record's number")],
    json_out: JsonOpt = False,
) -> None:
    """Department: reveal a record's details (before its date only the department may).

    Example: datasafe -p taxbureau --rpc http://127.0.0.1:8545 sealed reveal 3
    """
    st = state()
    p, key = st.unlock()
    stored = _openings(p).get(str(seal_id))
    if stored is None:
        raise UserError(f"this wallet holds no opening of seal {seal_id}", code="no_opening")
    opening = sl.Opening.from_json(stored)
    with st.client(key, p) as c:
        try:
            sl.check_opening(_confirmed(st, p, c, seal_id), opening)
        except sl.SealedError as exc:
            raise RefusedError(str(exc), code=exc.code) from None
        _send(st, c, p, key, f"/v1/sealed/{seal_id}/unseal", sl.encode_unseal(seal_id, opening))
        chain = _confirmed(st, p, c, seal_id)
    if chain.status != sl.SealStatus.UNSEALED:
        raise RefusedError(f"the chain still shows seal {seal_id} sealed")
    st.emit(
        chain.to_json() | {"opening": opening.to_json()},
        lambda con: kv(con, f"Seal {seal_id} unsealed", {"at": when(chain.unsealed_at)}),
    )
