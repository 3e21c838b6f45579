"""``datasafe claims``: ask a department for a record it issues (申领); departments answer.

A subject lists what can be claimed (read from the chain: registered schemas and the active
departments issuing them), files a signed claim the service relays (no gas), and lists her
claims. A department works its queue: fulfil with the asset it issued, or refuse with a
reason. Every answer of the service is held against the chain the wallet reads itself
(the pinned deployment, the claims companion's code, each claim's stored state).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from ledger import claims as cl
from ledger.address import is_address, to_checksum_address
from ledger.trust import PinnedDeployment
from wallet_cli import _chain
from wallet_cli._context import JsonOpt, State, command, state
from wallet_cli._render import kv, table, when
from wallet_cli.contacts import name_of
from wallet_cli.errors import ContradictedError, DeploymentPinError, UserError

T = TypeVar("T")

app = typer.Typer(
    help="Claims: ask a department for a record; departments fulfil or refuse.",
    no_args_is_help=True,
)

#: How long a signed claim stays valid (the service relays it at once).
CLAIM_TTL = 600


def _member(st: State, who: str) -> str:
    if is_address(who):
        return to_checksum_address(who)
    contacts = st.home.contacts()
    if who in contacts:
        return contacts[who]
    raise UserError(f"unknown department {who!r}: not an address or contact", code="unknown_member")


def _b32(value: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UserError(f"{what} is 0x + 64 hex digits, got {value!r}", code="invalid_id")
    return raw


def _checked(st: State, rpc: str, c: Any | None) -> PinnedDeployment:
    """The pinned deployment, verified on the wallet's chain, with the claims companion's code."""
    from ledger.companions import CompanionError, check_companions

    pin = st.require_pin(c)
    st.verify_pin(rpc)
    with _chain.rpc_client(rpc) as r:
        try:
            check_companions(r, pin.ledger_address, pin.companions or None)
        except CompanionError as exc:
            raise DeploymentPinError(str(exc), code=exc.code) from None
    return pin


def _confirmed(st: State, rpc: str, claim_id: bytes, want: cl.ClaimStatus, tx: Any) -> cl.Claim:
    """Done only once the wallet's own chain reads show the claim in state ``want``."""
    from wallet_cli import _confirm

    return _confirm.on_chain(
        st,
        rpc,
        lambda r, pin: cl.read_claim(r, pin.ledger_address, claim_id),
        lambda got: got.status == want,
        what=f"claim 0x{claim_id.hex()} {want.label}",
        claimed_tx=tx,
        offer="Try another service (--api URL).",
    )


def _rows_human(title: str, rows: list[dict[str, Any]]) -> Any:
    return lambda con: table(
        con,
        title,
        ["claim", "department", "status", "filed", "answer"],
        [
            (
                r["claim_id"][:18] + "…",
                r["department"],
                r["status"],
                when(r["filed_at"]),
                r.get("asset_id") or r.get("reason") or "-",
            )
            for r in rows
        ],
    )


@app.command()
@command
def available(json_out: JsonOpt = False) -> None:
    """What can be claimed: each registered schema with the active departments issuing it
    (read from the chain, not the service).

    Example: datasafe --rpc http://127.0.0.1:8545 claims available
    """
    st = state()
    rpc = st.rpc(st.profile(), required="claims available")
    assert rpc is not None
    with st.client(None) as c:
        pin = _checked(st, rpc, c)
    with _chain.rpc_client(rpc) as r:
        rows = [x.to_json() for x in cl.claimable(r, pin.ledger_address, pin.deploy_block)]
    st.emit(
        rows,
        lambda con: table(
            con,
            "Records you can claim",
            ["schema", "department", "fields"],
            [(x["schema_id"], x["department"], x["field_count"]) for x in rows],
        ),
    )


@app.command("file")
@command
def file_(
    department: Annotated[str, typer.Argument(help="Department: address or contact")],
    schema: Annotated[str, typer.Argument(help="Schema id (see `claims available`)")],
    reference: Annotated[
        str,
        typer.Option(help="What the department can find your record by (e.g. a case number)"),
    ],
    salt: Annotated[
        str, typer.Option(help="A secret shared with the department (hex), if it gave one")
    ] = "",
    json_out: JsonOpt = False,
) -> None:
    """File a claim: the department issues the record into your safe, or refuses with a reason.
    Only a hash of the reference goes on chain; the service relays it (no gas).

    Example: datasafe claims file taxbureau 0x59b7… --reference "BC-2025-0042"
    """
    st = state()
    p, key = st.unlock()
    rpc = st.rpc(p, required="claims file")
    assert rpc is not None
    dept = _member(st, department)
    schema_id = _b32(schema, "schema")
    try:
        salt_bytes = bytes.fromhex(salt.removeprefix("0x"))
    except ValueError:
        raise UserError(f"--salt is hex, got {salt!r}", code="invalid_salt") from None
    with st.client(key) as c:
        pin = _checked(st, rpc, c)
        with _chain.rpc_client(rpc) as r:
            nonce = cl.read_nonce(r, pin.ledger_address, p.address)
            head = r.call("eth_getBlockByNumber", ["latest", False])
        try:
            ref = cl.reference_hash(dept, schema_id, reference, salt_bytes)
            request = cl.ClaimRequest(
                p.address, dept, schema_id, ref, nonce, int(head["timestamp"], 16) + CLAIM_TTL
            )
        except cl.ClaimsError as exc:
            raise UserError(str(exc), code=exc.code) from None
        sig = cl.sign_request(key, pin.chain_id, pin.ledger_address, request)
        out = c.post("/v1/claims", {"request": request.to_json(), "signature": "0x" + sig.hex()})
    claim_id = cl.request_digest(pin.chain_id, pin.ledger_address, request)
    claim = _confirmed(st, rpc, claim_id, cl.ClaimStatus.OPEN, out.get("tx_hash"))
    data = claim.to_json() | {"reference_hash": "0x" + ref.hex(), "tx_hash": out.get("tx_hash")}
    st.emit(
        data,
        lambda con: kv(
            con,
            "Claim filed",
            {"claim": data["claim_id"], "department": dept, "status": "open (on chain)"},
        ),
    )


def _until_agrees(
    st: State, key: bytes, rpc: str, attempt: Callable[[Any, Any, PinnedDeployment], T]
) -> T:
    """``attempt(service client, chain client, pin)`` once the pin is checked, again while it
    finds a difference, index lag allowed (:func:`wallet_cli._confirm.despite_index_lag`)."""
    from wallet_cli._confirm import despite_index_lag

    with st.client(key) as c:
        pin = _checked(st, rpc, c)
        with _chain.rpc_client(rpc) as r:
            return despite_index_lag(st.settings.confirm_timeout, lambda: attempt(c, r, pin))


def _listing(
    st: State,
    key: bytes,
    rpc: str,
    params: dict[str, Any],
    check: Callable[[Any, PinnedDeployment, list[dict[str, Any]]], Any] | None = None,
) -> list[dict[str, Any]]:
    """The service's rows, each the claim the chain stores (and ``check``), index lag allowed
    (:func:`_until_agrees`)."""

    def attempt(c: Any, r: Any, pin: PinnedDeployment) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = c.get_all("/v1/claims", params=params)
        cl.verify_claims(r, pin.ledger_address, rows)
        if check is not None:
            check(r, pin, rows)
        return rows

    return _until_agrees(st, key, rpc, attempt)


@app.command("list")
@command
def list_(
    status: Annotated[str | None, typer.Option(help="open, fulfilled or refused")] = None,
    json_out: JsonOpt = False,
) -> None:
    """My claims and their state, checked against the chain (none missing, none altered).

    Example: datasafe claims list
    """
    st = state()
    p, key = st.unlock()
    rpc = st.rpc(p, required="claims list")
    assert rpc is not None
    from ledger.claims_history import check_subject_listing

    def mine(r: Any, pin: PinnedDeployment, rows: list[dict[str, Any]]) -> None:
        complete = status is None
        check_subject_listing(
            r, pin.ledger_address, p.address, rows, pin.deploy_block, complete=complete
        )

    rows = _listing(st, key, rpc, {"status": status} if status else {}, mine)
    st.emit(rows, _rows_human("My claims", rows))


@app.command()
@command
def queue(
    status: Annotated[str, typer.Option(help="open, fulfilled or refused")] = "open",
    json_out: JsonOpt = False,
) -> None:
    """Department: the claims asking you for a record (open ones by default), chain-checked.

    Example: datasafe -p taxbureau claims queue
    """
    st = state()
    p, key = st.unlock()
    rpc = st.rpc(p, required="claims queue")
    assert rpc is not None
    rows = _listing(st, key, rpc, {"status": status})
    st.emit(rows, _rows_human("Claims queue", rows))


def _answer(st: State, claim: str, fn: str, want: cl.ClaimStatus, *args: Any) -> dict[str, Any]:
    p, key = st.unlock()
    rpc = st.rpc(p, required=f"claims {fn}")
    assert rpc is not None
    claim_id = _b32(claim, "claim id")
    route = "fulfil" if want == cl.ClaimStatus.FULFILLED else "refuse"
    with st.client(key) as c:
        pin = _checked(st, rpc, c)
        call = getattr(cl, fn)(claim_id, *args)
        raw = _chain.sign_call(rpc, key, cl.claims_address(pin.ledger_address), call.data)
        out = c.post(f"/v1/claims/0x{claim_id.hex()}/{route}", {"raw_transaction": raw})
    done = _confirmed(st, rpc, claim_id, want, out.get("tx_hash"))
    return done.to_json() | {"tx_hash": out.get("tx_hash")}


@app.command()
@command
def fulfil(
    claim: Annotated[str, typer.Argument(help="Claim id")],
    asset: Annotated[str, typer.Argument(help="The asset you issued into the claimant's safe")],
    json_out: JsonOpt = False,
) -> None:
    """Department: link the record you issued to the claim (same owner, schema and issuer).

    Example: datasafe -p taxbureau claims fulfil 0x… 0x…
    """
    st = state()
    data = _answer(st, claim, "fulfil_claim", cl.ClaimStatus.FULFILLED, _b32(asset, "asset id"))
    st.emit(
        data,
        lambda con: kv(
            con, "Claim fulfilled", {"claim": data["claim_id"], "asset": data["asset_id"]}
        ),
    )


@app.command()
@command
def refuse(
    claim: Annotated[str, typer.Argument(help="Claim id")],
    code: Annotated[
        str, typer.Option(help=f"Reason: {', '.join(cl.REASON_BY_NAME)} (or a number)")
    ],
    reason: Annotated[
        str, typer.Option(help="Reason text for the claimant (only its hash goes on chain)")
    ] = "",
    json_out: JsonOpt = False,
) -> None:
    """Department: refuse a claim with a reason code (and the hash of a reason text).

    Example: datasafe -p taxbureau claims refuse 0x… --code no_record --reason "not found"
    """
    from eth_hash.auto import keccak

    st = state()
    number = cl.REASON_BY_NAME.get(code) or (int(code) if code.isdigit() else 0)
    if not 0 < number < 1 << 16:
        raise UserError(f"unknown reason code {code!r}", code="invalid_reason")
    reason_hash = keccak(reason.encode()) if reason else b"\0" * 32
    data = _answer(st, claim, "refuse_claim", cl.ClaimStatus.REFUSED, number, reason_hash)
    st.emit(
        data,
        lambda con: kv(con, "Claim refused", {"claim": data["claim_id"], "reason": data["reason"]}),
    )


def claims_drift(st: State, c: Any, rpc: str) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Every claim the service lists against the claims re-derived from the claims contract's
    logs (``ledger.claims.derive_claims``): the chain's claims and one line per difference."""
    pin = _checked(st, rpc, c)
    rows: list[dict[str, Any]] = c.get_all("/v1/claims")
    with _chain.rpc_client(rpc) as r:
        truth = cl.derive_claims(r, pin.ledger_address, pin.deploy_block)
    return truth, cl.diff_claims(truth, rows)


@app.command()
@command
def audit(json_out: JsonOpt = False) -> None:
    """Regulator: every claim the service lists, against the claims re-derived from the claims
    contract's logs (missing, extra or altered claims exit 6).

    Example: datasafe -p regulator claims audit
    """
    st = state()
    p, key = st.unlock()
    rpc = st.rpc(p, required="claims audit")
    assert rpc is not None
    with st.client(key) as c:
        truth, problems = claims_drift(st, c, rpc)
    if problems:
        raise ContradictedError(
            f"{len(problems)} difference(s) between the service's claims and the chain's: "
            + "; ".join(problems[:3]),
            code="audit_drift",
        )
    data = {"ok": True, "claims": len(truth)}
    st.emit(
        data, lambda con: kv(con, "Claims audit", {"claims on chain": len(truth), "drift": "none"})
    )


def _took(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


@app.command()
@command
def stats(json_out: JsonOpt = False) -> None:
    """Regulator: per department, claims outstanding (and the oldest) and how long answers
    took, derived from the claims contract's logs; the service's figures must agree (exit 6).

    Example: datasafe -p regulator claims stats
    """
    from ledger.claims_audit import chain_rows, department_stats, diff_stats

    st = state()
    p, key = st.unlock()
    rpc = st.rpc(p, required="claims stats")
    assert rpc is not None
    from ledger.trust import ServiceContradictedError

    def attempt(c: Any, r: Any, pin: PinnedDeployment) -> tuple[dict[str, Any], Any]:
        rows: list[dict[str, Any]] = c.get_all("/v1/claims/stats")
        head = r.call("eth_getBlockByNumber", ["latest", False])
        _, claims = chain_rows(r, pin.ledger_address, pin.deploy_block, int(head["number"], 16))
        truth = department_stats(claims)
        problems = diff_stats(truth, rows)
        if problems:
            raise ServiceContradictedError(
                f"{len(problems)} difference(s) between the service's claim figures and the "
                "chain's: " + "; ".join(problems[:3])
            )
        return head, truth

    try:
        head, truth = _until_agrees(st, key, rpc, attempt)
    except ServiceContradictedError as exc:
        raise ContradictedError(str(exc), code="audit_drift") from None
    now = int(head["timestamp"], 16)
    out = [
        t | {"oldest_open_age": None if t["oldest_open_at"] is None else now - t["oldest_open_at"]}
        for t in truth.values()
    ]
    st.emit(
        {"departments": out, "checked_on_chain": True, "block": int(head["number"], 16)},
        lambda con: table(
            con,
            "Claims per department (from the chain; the service agrees)",
            ["department", "filed", "open", "oldest open", "answered", "mean to answer", "longest"],
            [
                (
                    name_of(st, str(t["department"])),
                    t["filed"],
                    t["open"],
                    _took(t["oldest_open_age"]),
                    f"{t['fulfilled']} issued, {t['refused']} refused",
                    _took(t["mean_seconds_to_close"]),
                    _took(t["max_seconds_to_close"]),
                )
                for t in out
            ],
        ),
    )
