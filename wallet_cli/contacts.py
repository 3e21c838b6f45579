"""``datasafe contacts``: the person's own names for institutions, and the member directory."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from api.client import DataSafeClient, DataSafeProblemError
from ledger.address import is_address, to_checksum_address
from wallet_cli._context import JsonOpt, State, command, state
from wallet_cli._render import table
from wallet_cli.errors import RefusedError, UserError

app = typer.Typer(
    help="Names for institutions; the service's member directory.", no_args_is_help=True
)


def name_of(st: State, address: str) -> str:
    """The contact name of an address, else the address itself."""
    for name, addr in st.home.contacts().items():
        if addr.lower() == address.lower():
            return name
    return to_checksum_address(address) if is_address(address) else address


def display_name(st: State, address: str, member: dict[str, Any] | None = None) -> str:
    """How the person knows a member: the registered name (when the directory has one) with
    their own nickname for it, else the nickname, else the address."""
    known = name_of(st, address)
    nick = None if known.lower() == address.lower() else known
    registered = str((member or {}).get("name") or "").strip() or None
    if registered and nick and registered.lower() != nick.lower():
        return f"{registered} (your contact {nick})"
    return registered or nick or (to_checksum_address(address) if is_address(address) else address)


def member_or_none(c: DataSafeClient, address: str) -> dict[str, Any] | None:
    """The service's directory entry of ``address`` for its name only; ``None`` if absent."""
    try:
        entry: dict[str, Any] = c.get(f"/v1/members/{address}")
    except DataSafeProblemError:
        return None
    return entry


def resolve_member(
    st: State,
    c: DataSafeClient,
    who: str,
    *,
    role: str | None = "consumer",
    need_key: bool = True,
    what: str = "institution",
) -> dict[str, Any]:
    """A name (contacts) or address -> the member as the chain has it, checked for ``role``."""
    address: str
    if is_address(who):
        address = to_checksum_address(who)
    else:
        address = st.home.contacts().get(who, "")
        if not address:
            raise UserError(
                f"unknown {what} {who!r}: not an address and not in your contacts "
                "(add it with `datasafe contacts add NAME ADDRESS`)",
                code="unknown_member",
            )
    try:
        member: dict[str, Any] = c.get(f"/v1/members/{address}")
    except DataSafeProblemError as exc:
        if exc.status == 404:
            raise UserError(
                f"unknown {what} {who!r}: {address} is not a member of the ledger",
                code="unknown_member",
            ) from None
        raise
    if member["status"] != "active":
        raise RefusedError(
            f"{what} {who} ({address}) is {member['status']}", code="member_suspended"
        )
    if role is not None and role not in member["roles"]:
        raise UserError(
            f"{who} ({address}) is a {member['kind']}, not a {role} of the ledger",
            code="role_required",
        )
    if need_key and not member.get("encryption_key"):
        raise RefusedError(
            f"{who} ({address}) has not published an encryption key; nothing can be shared "
            "with it yet",
            code="no_encryption_key",
        )
    return member


@app.command()
@command
def add(
    name: Annotated[str, typer.Argument(help="Your name for it, e.g. 'City Bank'")],
    address: Annotated[str, typer.Argument(help="Its address (0x…)")],
    json_out: JsonOpt = False,
) -> None:
    """Add (or rename) a contact.

    Example: datasafe contacts add citybank 0x90F79bf6EB2c4f870365E785982E1f101E93b906
    """
    st = state()
    if is_address(name):
        raise UserError("a contact name cannot itself be an address")
    st.home.set_contact(name, address)
    st.emit(
        {"name": name, "address": to_checksum_address(address)},
        lambda c: c.print(f"{name} = {to_checksum_address(address)}"),
    )


@app.command()
@command
def remove(
    name: Annotated[str, typer.Argument(help="Contact name")],
    json_out: JsonOpt = False,
) -> None:
    """Remove a contact.

    Example: datasafe contacts remove citybank
    """
    st = state()
    st.home.remove_contact(name)
    st.emit({"removed": name}, lambda c: c.print(f"Removed {name}"))


@app.command("list")
@command
def list_(json_out: JsonOpt = False) -> None:
    """List your contacts.

    Example: datasafe contacts list
    """
    st = state()
    rows = [{"name": n, "address": a} for n, a in sorted(st.home.contacts().items())]
    st.emit(
        rows,
        lambda c: table(
            c, "Contacts", ["name", "address"], [(r["name"], r["address"]) for r in rows]
        ),
    )


@app.command()
@command
def directory(json_out: JsonOpt = False) -> None:
    """The service's member directory (members who published a key), roles from the chain.

    Example: datasafe --api http://127.0.0.1:8700 contacts directory
    """
    st = state()
    p, key = st.unlock()
    with st.client(key, p) as c:
        rows: list[dict[str, Any]] = c.get_all("/v1/members")
    st.emit(
        rows,
        lambda con: table(
            con,
            "Member directory",
            ["name", "address", "kind", "roles", "status"],
            [
                (
                    name_of(st, r["address"]),
                    r["address"],
                    r["kind"],
                    ",".join(r["roles"]),
                    r["status"],
                )
                for r in rows
            ],
        ),
    )
