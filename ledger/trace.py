"""Trace rows: every consent change and every access, read from the indexer's tables.

One row shape (:class:`TraceRow`) serves the regulator's trace, the subject's history
and :mod:`ledger.audit`, which re-derives the same rows from chain events and compares.

Kinds: ``granted``, ``revoked``, ``paused``, ``resumed`` (one per consent event),
``expired`` (derived: see below), ``access`` (one per ``Accessed`` event); the lifecycle:
``recall`` (derived, docs/tracing.md), ``recall_acknowledged``, ``deletion_acknowledged``.

Order and cursor. Rows are sorted by the key ``(at, block_number, log_index, rank)``:
``at`` is the block timestamp of the event (for ``expired``, the grant's expiry), ``rank``
is 0 for an event row, 1 for an expiry row and, for a recall row, :func:`recall_rank` of
its grant id (the rows of one supersession share its log). Block timestamps never decrease
along the chain, so for event rows this is the chain order ``(block, log index)``; an
expiry row sits at its expiry time and cites the ``ConsentGranted`` log that fixed the
expiry. Pages are cut by keyset (``key > last key``), never by OFFSET, so a cursor stays
valid while the indexer appends rows. A cursor is opaque (base64url JSON) and bound to the
query's filters and order.

Expiry. The contract's ``check`` answers "expired" once ``block.timestamp >= expiry``.
An ``expired`` row therefore appears when the last *indexed* block's timestamp is at or
past the grant's expiry, unless the grant was revoked before it expired (a revoked grant
does not expire a second time). Its ``at`` is the expiry; its proof is the grant's log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger import db
from ledger.errors import LedgerError
from ledger.lifecycle import recall_rank

Order = Literal["asc", "desc"]
CONSENT_KINDS = ("granted", "revoked", "paused", "resumed", "expired")
LIFECYCLE_KINDS = ("recall", "recall_acknowledged", "deletion_acknowledged")
ALL_KINDS = (*CONSENT_KINDS, "access", *LIFECYCLE_KINDS)
EVENT_KIND = {
    "ConsentGranted": "granted",
    "ConsentRevoked": "revoked",
    "ConsentPaused": "paused",
    "ConsentResumed": "resumed",
    "Accessed": "access",
    "RecallAcknowledged": "recall_acknowledged",
    "DeletionAcknowledged": "deletion_acknowledged",
}
_GRANT_EVENT_KINDS = frozenset(k for k in EVENT_KIND.values() if k != "access")
KIND_EVENT = {v: k for k, v in EVENT_KIND.items()}

_ACCESSES = db.accesses
_GRANTS = db.grants
_GRANT_EVENTS = db.grant_events
_ASSETS = db.assets
_ASSET_EVENTS = db.asset_events
_CURSOR = db.indexer_cursor
_BLOCKS = db.indexed_blocks

SortKey = tuple[int, int, int, int]
_I64_MAX = (1 << 63) - 1
_I32_MAX = (1 << 31) - 1


class TraceError(LedgerError):
    """Root of trace query failures."""


class InvalidCursorError(TraceError):
    """The cursor is malformed, or was issued for another query (filters or order differ)."""


class IndexNotReadyError(TraceError):
    """The indexer's tables do not exist yet (the indexer has never run on this database)."""


@dataclass(frozen=True, slots=True)
class TraceRow:
    """One consent change or access, with the chain coordinates that prove it.

    ``actor`` is who caused the event (grantor, revoker, pauser; the custodian for an
    access). ``terms`` fields (``not_before``, ``expiry``, ``max_uses``) are the grant's;
    ``use``/``nonce`` are the access's (``nonce`` is the grant's for consent rows).
    ``issuer``/``schema_id`` come from the asset and may be None if the asset is unknown.
    """

    kind: str
    grant_id: str
    subject: str
    institution: str
    asset_id: str
    issuer: str | None
    schema_id: str | None
    purpose: int
    fields_mask: int
    actor: str
    not_before: int
    expiry: int
    max_uses: int
    use: int | None
    nonce: str
    at: int
    block_number: int
    block_hash: str
    log_index: int
    tx_hash: str

    @property
    def rank(self) -> int:
        return recall_rank(self.grant_id) if self.kind == "recall" else int(self.kind == "expired")

    @property
    def key(self) -> SortKey:
        return (self.at, self.block_number, self.log_index, self.rank)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TraceRow:
        """Parse a row from the JSON export (``?format=json``); raises TraceError."""
        try:
            return cls(**{f.name: data[f.name] for f in fields(cls)})
        except (KeyError, TypeError) as exc:
            raise TraceError(f"not a trace row: {exc}") from exc


#: Column order of the CSV export.
CSV_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TraceRow))


@dataclass(frozen=True)
class TraceFilter:
    """Conditions every returned row meets (all optional, combined with AND).

    Addresses and ids are compared lowercase. ``from_time``/``to_time`` bound ``at``
    (inclusive, unix seconds); ``from_block``/``to_block`` bound the cited block.
    """

    kinds: frozenset[str] = frozenset(ALL_KINDS)
    subject: str | None = None
    institution: str | None = None
    asset_id: str | None = None
    issuer: str | None = None
    purpose: int | None = None
    grant_id: str | None = None
    from_time: int | None = None
    to_time: int | None = None
    from_block: int | None = None
    to_block: int | None = None

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(ALL_KINDS)
        if unknown:
            raise TraceError(f"unknown kinds {sorted(unknown)}; known: {', '.join(ALL_KINDS)}")
        for name in ("subject", "institution", "asset_id", "issuer", "grant_id"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, value.lower())

    def conditions(self) -> dict[str, Any]:
        """Every condition but ``kinds``, by name (what a cursor's fingerprint binds)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "kinds"}

    def with_kinds(self, kinds: Iterable[str]) -> TraceFilter:
        """The same conditions over other kinds of rows."""
        return replace(self, kinds=frozenset(kinds))

    def fingerprint(self, order: Order) -> str:
        """Short digest binding a cursor to this query."""
        data = {"kinds": sorted(self.kinds), **self.conditions(), "order": order}
        raw = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(raw).hexdigest()[:16]

    def matches(self, row: TraceRow) -> bool:
        """The same conditions in Python (used on rows re-derived from the chain)."""
        checks: list[tuple[Any, Any]] = [
            (self.subject, row.subject),
            (self.institution, row.institution),
            (self.asset_id, row.asset_id),
            (self.issuer, row.issuer),
            (self.purpose, row.purpose),
            (self.grant_id, row.grant_id),
        ]
        if row.kind not in self.kinds:
            return False
        if any(want is not None and want != have for want, have in checks):
            return False
        if self.from_time is not None and row.at < self.from_time:
            return False
        if self.to_time is not None and row.at > self.to_time:
            return False
        if self.from_block is not None and row.block_number < self.from_block:
            return False
        return not (self.to_block is not None and row.block_number > self.to_block)


# Cursors -----------------------------------------------------------------------------


def encode_cursor(key: SortKey, flt: TraceFilter, order: Order) -> str:
    payload = {"v": 1, "k": list(key), "q": flt.fingerprint(order)}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, flt: TraceFilter, order: Order) -> SortKey:
    """The key after which the next page starts; InvalidCursorError when it does not fit."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        key = payload["k"]
        if payload.get("v") != 1 or len(key) != 4 or not all(type(k) is int for k in key):
            raise ValueError("bad shape")
        # The columns are BIGINT, BIGINT, INTEGER and a rank (0, 1, or a recall's rank).
        limits = (_I64_MAX, _I64_MAX, _I32_MAX, recall_rank("f" * 12))
        if not all(0 <= k <= hi for k, hi in zip(key, limits, strict=True)):
            raise ValueError("out of range")
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursorError("the cursor is malformed") from exc
    if payload.get("q") != flt.fingerprint(order):
        raise InvalidCursorError("the cursor belongs to another query (filters or order differ)")
    return (key[0], key[1], key[2], key[3])


# Queries -----------------------------------------------------------------------------


def _after(cols: Sequence[Any], key: SortKey, order: Order) -> Any:
    """Keyset condition ``cols > key`` (``<`` for desc), written out for every dialect."""

    def op(c: Any, v: int) -> Any:
        return c > v if order == "asc" else c < v

    terms = []
    for i in range(len(cols)):
        eqs = [cols[j] == key[j] for j in range(i)]
        terms.append(sa.and_(*eqs, op(cols[i], key[i])))
    # The redundant bound on the leading column lets an index range scan start at the key.
    bound = cols[0] >= key[0] if order == "asc" else cols[0] <= key[0]
    return sa.and_(bound, sa.or_(*terms))


def _lit(value: int) -> Any:
    # A literal column, not a bound parameter: PostgreSQL cannot type parameters in a UNION.
    return sa.literal_column(str(int(value)), sa.BigInteger)


def _text(value: str) -> Any:
    return sa.literal_column(f"'{value}'", sa.String)


def _null_int() -> Any:
    return sa.cast(sa.null(), sa.BigInteger)


def _issuer_assets(issuer: str) -> Any:
    return sa.select(_ASSETS.c.asset_id).where(_ASSETS.c.issuer == issuer)


def _access_select(
    flt: TraceFilter, after: SortKey | None, order: Order, now: int | None
) -> sa.Select[Any]:
    a = _ACCESSES
    s = _ASSETS
    q = sa.select(
        _text("access").label("kind"),
        a.c.grant_id,
        a.c.owner.label("subject"),
        a.c.grantee.label("institution"),
        a.c.asset_id,
        s.c.issuer,
        s.c.schema_id,
        a.c.purpose,
        a.c.fields_mask,
        a.c.custodian.label("actor"),
        _lit(0).label("not_before"),
        _lit(0).label("expiry"),
        _lit(0).label("max_uses"),
        a.c.use,
        a.c.nonce,
        a.c.block_timestamp.label("at"),
        a.c.block_number,
        a.c.block_hash,
        a.c.log_index,
        a.c.tx_hash,
        _lit(0).label("rank"),
    ).select_from(a.outerjoin(s, s.c.asset_id == a.c.asset_id))
    # Accesses carry the same owner/grantee/asset/purpose/grant columns as grants.
    conds = _grant_conds(a, flt)
    conds += _range(a.c.block_timestamp, a.c.block_number, flt)
    if now is not None:
        conds.append(a.c.block_timestamp <= now)
    if after is not None:
        cols = (a.c.block_timestamp, a.c.block_number, a.c.log_index, _lit(0))
        # rank is constant 0 here: compare on the first three columns plus the literal.
        conds.append(_after(cols, after, order))
    return q.where(*conds)


def _range(at: Any, block: Any, flt: TraceFilter) -> list[Any]:
    conds = []
    if flt.from_time is not None:
        conds.append(at >= flt.from_time)
    if flt.to_time is not None:
        conds.append(at <= flt.to_time)
    if flt.from_block is not None:
        conds.append(block >= flt.from_block)
    if flt.to_block is not None:
        conds.append(block <= flt.to_block)
    return conds


def _grant_conds(g: Any, flt: TraceFilter) -> list[Any]:
    conds = []
    if flt.subject is not None:
        conds.append(g.c.owner == flt.subject)
    if flt.institution is not None:
        conds.append(g.c.grantee == flt.institution)
    if flt.asset_id is not None:
        conds.append(g.c.asset_id == flt.asset_id)
    if flt.issuer is not None:
        conds.append(g.c.asset_id.in_(_issuer_assets(flt.issuer)))
    if flt.purpose is not None:
        conds.append(g.c.purpose == flt.purpose)
    if flt.grant_id is not None:
        conds.append(g.c.grant_id == flt.grant_id)
    return conds


def _grant_row(kind: Any, actor: Any, use: Any, at: Any, log: Any, rank: Any) -> list[Any]:
    """The columns of a row about a grant (``_GRANTS``, ``_ASSETS``), citing ``log``'s table."""
    g, s = _GRANTS, _ASSETS
    return [
        kind.label("kind"),
        g.c.grant_id,
        g.c.owner.label("subject"),
        g.c.grantee.label("institution"),
        g.c.asset_id,
        s.c.issuer,
        s.c.schema_id,
        g.c.purpose,
        g.c.fields_mask,
        actor.label("actor"),
        g.c.not_before,
        g.c.expiry,
        g.c.max_uses,
        use.label("use"),
        g.c.nonce,
        at.label("at"),
        log.c.block_number,
        log.c.block_hash,
        log.c.log_index,
        log.c.tx_hash,
        rank.label("rank"),
    ]


def _consent_event_select(
    flt: TraceFilter, after: SortKey | None, order: Order, now: int | None
) -> sa.Select[Any]:
    e, g, s = _GRANT_EVENTS, _GRANTS, _ASSETS
    kind = sa.case(
        *((e.c.event == ev, k) for ev, k in EVENT_KIND.items() if k != "access"),
        else_=e.c.event,
    )
    q = sa.select(
        *_grant_row(kind, e.c.actor, _null_int(), e.c.block_timestamp, e, _lit(0))
    ).select_from(
        e.join(g, g.c.grant_id == e.c.grant_id).outerjoin(s, s.c.asset_id == g.c.asset_id)
    )
    events = [KIND_EVENT[k] for k in sorted(flt.kinds) if k in KIND_EVENT and k != "access"]
    conds = [e.c.event.in_(events), *_grant_conds(g, flt)]
    conds += _range(e.c.block_timestamp, e.c.block_number, flt)
    if now is not None:
        conds.append(e.c.block_timestamp <= now)
    if after is not None:
        cols = (e.c.block_timestamp, e.c.block_number, e.c.log_index, _lit(0))
        conds.append(_after(cols, after, order))
    return q.where(*conds)


def _expiry_select(
    flt: TraceFilter, after: SortKey | None, order: Order, head_time: int
) -> sa.Select[Any]:
    g, s, e = _GRANTS, _ASSETS, _GRANT_EVENTS
    revoked_first = (
        sa.select(e.c.id)
        .where(
            e.c.grant_id == g.c.grant_id,
            e.c.event == "ConsentRevoked",
            e.c.block_timestamp < g.c.expiry,
        )
        .exists()
    )
    q = sa.select(
        *_grant_row(_text("expired"), g.c.grantor, _null_int(), g.c.expiry, g, _lit(1))
    ).select_from(g.outerjoin(s, s.c.asset_id == g.c.asset_id))
    conds = [g.c.expiry <= head_time, ~revoked_first, *_grant_conds(g, flt)]
    conds += _range(g.c.expiry, g.c.block_number, flt)
    if after is not None:
        cols = (g.c.expiry, g.c.block_number, g.c.log_index, _lit(1))
        conds.append(_after(cols, after, order))
    return q.where(*conds)


def _recall_select(
    flt: TraceFilter, after: SortKey | None, order: Order, now: int | None
) -> sa.Select[Any]:
    """One row per grant that pulled a version before it was superseded (pulls of a superseded
    version are refused, so ``uses`` counts them); it cites the ``AssetSuperseded`` log."""
    g, s, e = _GRANTS, _ASSETS, _ASSET_EVENTS
    q = sa.select(
        *_grant_row(_text("recall"), e.c.actor, g.c.uses, e.c.block_timestamp, e, g.c.trace_rank)
    ).select_from(
        e.join(g, g.c.asset_id == e.c.asset_id).outerjoin(s, s.c.asset_id == g.c.asset_id)
    )
    conds = [e.c.event == "AssetSuperseded", g.c.uses > 0, *_grant_conds(g, flt)]
    conds += _range(e.c.block_timestamp, e.c.block_number, flt)
    if now is not None:
        conds.append(e.c.block_timestamp <= now)
    if after is not None:
        cols = (e.c.block_timestamp, e.c.block_number, e.c.log_index, g.c.trace_rank)
        conds.append(_after(cols, after, order))
    return q.where(*conds)


def head_time(conn: Connection) -> int | None:
    """Timestamp of the last indexed block (None before the first indexed block)."""
    return conn.execute(
        sa.select(_BLOCKS.c.timestamp)
        .select_from(_CURSOR.join(_BLOCKS, _BLOCKS.c.number == _CURSOR.c.last_block))
        .where(_CURSOR.c.id == 1)
    ).scalar_one_or_none()


def last_indexed_block(conn: Connection) -> int | None:
    return conn.execute(
        sa.select(_CURSOR.c.last_block).where(_CURSOR.c.id == 1)
    ).scalar_one_or_none()


def build_query(
    flt: TraceFilter,
    *,
    after: SortKey | None = None,
    order: Order = "asc",
    limit: int | None = None,
    now: int | None = None,
) -> sa.Select[Any]:
    """One SELECT over the kinds asked for, sorted by the trace key, cut after ``after``.

    ``now`` is the head time read *before* this query: expiry rows up to it are included,
    and event rows are capped at it, so that rows the indexer commits while the query runs
    cannot overtake an expiry row that was not visible yet (a consumer that keeps its
    position, like a webhook or a history poll, would skip that expiry for ever).
    None: no expiry rows, no cap.
    """
    parts: list[sa.Select[Any]] = []
    if "access" in flt.kinds:
        parts.append(_access_select(flt, after, order, now))
    if set(flt.kinds) & _GRANT_EVENT_KINDS:
        parts.append(_consent_event_select(flt, after, order, now))
    if "recall" in flt.kinds:
        parts.append(_recall_select(flt, after, order, now))
    if "expired" in flt.kinds and now is not None:
        parts.append(_expiry_select(flt, after, order, now))
    if not parts:
        raise TraceError("no kinds to query")
    names = ("at", "block_number", "log_index", "rank")
    if len(parts) == 1:
        part = parts[0]
        cols = [part.selected_columns[n] for n in names]
        ordering = [c.asc() if order == "asc" else c.desc() for c in cols[:3]]
        stmt: Any = part.order_by(*ordering)
    else:
        union = sa.union_all(*parts).subquery("trace")
        cols = [union.c[n] for n in names]
        ordering = [c.asc() if order == "asc" else c.desc() for c in cols]
        stmt = sa.select(union).order_by(*ordering)
    if limit is not None:
        stmt = stmt.limit(limit)
    return stmt  # type: ignore[no-any-return]


def _row(m: Any) -> TraceRow:
    return TraceRow(
        kind=m["kind"],
        grant_id=m["grant_id"],
        subject=m["subject"],
        institution=m["institution"],
        asset_id=m["asset_id"],
        issuer=m["issuer"],
        schema_id=m["schema_id"],
        purpose=int(m["purpose"]),
        fields_mask=_u64(int(m["fields_mask"])),
        actor=m["actor"],
        not_before=int(m["not_before"]),
        expiry=int(m["expiry"]),
        max_uses=int(m["max_uses"]),
        use=None if m["use"] is None else int(m["use"]),
        nonce=str(m["nonce"]),
        at=int(m["at"]),
        block_number=int(m["block_number"]),
        block_hash=m["block_hash"],
        log_index=int(m["log_index"]),
        tx_hash=m["tx_hash"],
    )


def _u64(value: int) -> int:
    # In a UNION the Mask64 decorator is not applied to the result column.
    return value + (1 << 64) if value < 0 else value


@dataclass(frozen=True)
class Page:
    rows: list[TraceRow]
    next_cursor: str | None
    indexed_to: int | None


def _guard(exc: sa.exc.SQLAlchemyError) -> TraceError:
    text = str(exc).lower()
    if "no such table" in text or "does not exist" in text or "undefinedtable" in text:
        return IndexNotReadyError("the event index is not built yet (the indexer has not run)")
    return TraceError(f"trace query failed: {exc.__class__.__name__}")


def query_page(
    conn: Connection,
    flt: TraceFilter,
    *,
    cursor: str | None = None,
    order: Order = "asc",
    limit: int = 100,
) -> Page:
    """One page of rows and the cursor of the next page (None at the end)."""
    after = decode_cursor(cursor, flt, order) if cursor else None
    try:
        now = head_time(conn)
        indexed_to = last_indexed_block(conn)
        stmt = build_query(flt, after=after, order=order, limit=limit + 1, now=now)
        rows = [_row(m) for m in conn.execute(stmt).mappings()]
    except sa.exc.SQLAlchemyError as exc:
        raise _guard(exc) from exc
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].key, flt, order) if more and rows else None
    return Page(rows, next_cursor, indexed_to)


def iter_rows(
    conn: Connection,
    flt: TraceFilter,
    *,
    cursor: str | None = None,
    order: Order = "asc",
    chunk: int = 5000,
) -> Iterator[TraceRow]:
    """Every matching row, fetched page by page (keyset), for streamed exports."""
    after = decode_cursor(cursor, flt, order) if cursor else None
    try:
        now = head_time(conn)
    except sa.exc.SQLAlchemyError as exc:
        raise _guard(exc) from exc
    while True:
        try:
            stmt = build_query(flt, after=after, order=order, limit=chunk, now=now)
            rows = [_row(m) for m in conn.execute(stmt).mappings()]
        except sa.exc.SQLAlchemyError as exc:
            raise _guard(exc) from exc
        yield from rows
        if len(rows) < chunk:
            return
        after = rows[-1].key


def fetch(
    conn: Connection,
    flt: TraceFilter,
    *,
    after: SortKey | None = None,
    order: Order = "asc",
    limit: int | None = None,
) -> list[TraceRow]:
    """Rows after a raw key (for consumers keeping their own position, e.g. webhooks)."""
    try:
        now = head_time(conn)
        stmt = build_query(flt, after=after, order=order, limit=limit, now=now)
        return [_row(m) for m in conn.execute(stmt).mappings()]
    except sa.exc.SQLAlchemyError as exc:
        raise _guard(exc) from exc
