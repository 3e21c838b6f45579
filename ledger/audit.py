"""Audit verify: re-derive trace rows from chain events and report where an answer drifts.

The regulator does not have to trust the index (DESIGN.md, trust model 5). For a block
range, :func:`chain_rows` fetches the ledger's consent and access logs straight from the
node with ``eth_getLogs`` (never from the index), decodes them with the ABI and builds the
same :class:`~ledger.trace.TraceRow` rows the index serves; the grant terms and asset
issuer an access row cites are fetched the same way (``eth_getLogs`` filtered by the
indexed grant / asset id topics, from the deployment block). :func:`diff` then compares
row by row, keyed by the log's ``(block_number, log_index)``:

* ``missing``: on chain, absent from the answer;
* ``extra``: in the answer, not on chain;
* ``altered``: both, with the fields that differ (chain value vs answer value).

Two entry points: :func:`verify_index` checks the indexer's tables in a database, and
:func:`verify_rows` checks rows someone was given (e.g. the API's
``/v1/trace/...?format=json`` export); the latter needs only an RPC URL and the
deployment manifest, which is what ``datasafe audit verify`` runs.

``expired`` rows are not events: they are a function of the ``granted`` row's expiry
(which is verified) and the head time, so they are left out of the comparison. ``recall``
rows are re-derived: for each ``AssetSuperseded`` log in the range, every grant on the old
version (``ConsentGranted`` by asset topic) with at least one ``Accessed`` log before it
owes one; they are keyed by the supersession's log and the grant id.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from ledger import db, trace
from ledger.companions import log_addresses
from ledger.errors import LedgerError
from ledger.indexer._abi import EventSpec, companion_abis, event_specs, load_abi
from ledger.indexer._ranges import RangeSizer
from ledger.indexer._rpc import JsonRpc
from ledger.indexer.errors import IndexerRpcError, RpcResponseError
from ledger.manifest import Manifest
from ledger.trace import TraceFilter, TraceRow
from ledger.trust import PinnedDeployment

_EVENTS = (
    "ConsentGranted",
    "ConsentRevoked",
    "ConsentPaused",
    "ConsentResumed",
    "Accessed",
    "RecallAcknowledged",
    "DeletionAcknowledged",
)
_ACKS = frozenset({"RecallAcknowledged", "DeletionAcknowledged"})
_ID_CHUNK = 200
_COMPARED = tuple(f.name for f in fields(TraceRow))


class AuditError(LedgerError):
    """The audit could not run (bad range, unreadable chain, malformed rows)."""


@dataclass(frozen=True)
class Altered:
    """A row present on both sides whose fields differ."""

    block_number: int
    log_index: int
    chain: TraceRow
    claimed: TraceRow
    fields: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "block_number": self.block_number,
            "log_index": self.log_index,
            "tx_hash": self.chain.tx_hash,
            "fields": self.fields,
            "chain": self.chain.to_json(),
            "claimed": self.claimed.to_json(),
        }


@dataclass(frozen=True)
class AuditReport:
    """Every difference between the chain and the answer over ``[from_block, to_block]``."""

    from_block: int
    to_block: int
    chain_rows: int
    claimed_rows: int
    missing: list[TraceRow] = field(default_factory=list)
    extra: list[TraceRow] = field(default_factory=list)
    altered: list[Altered] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.altered)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "from_block": self.from_block,
            "to_block": self.to_block,
            "chain_rows": self.chain_rows,
            "claimed_rows": self.claimed_rows,
            "missing": [r.to_json() for r in self.missing],
            "extra": [r.to_json() for r in self.extra],
            "altered": [a.to_json() for a in self.altered],
            "seconds": round(self.seconds, 3),
        }


def diff(
    chain: Iterable[TraceRow], claimed: Iterable[TraceRow], *, from_block: int, to_block: int
) -> AuditReport:
    """Compare rows keyed by ``(block_number, log_index)`` (and the grant id for recall rows,
    which share their supersession's log); expiry rows are skipped."""
    truth = {_key(r): r for r in chain if r.kind != "expired"}
    given: dict[tuple[int, int, str], TraceRow] = {}
    extra: list[TraceRow] = []
    count = 0
    for r in claimed:
        if r.kind == "expired":
            continue
        count += 1
        key = _key(r)
        if key in given:  # the same log twice is itself a difference
            extra.append(r)
            continue
        given[key] = r
    missing = [truth[k] for k in sorted(truth.keys() - given.keys())]
    extra += [given[k] for k in sorted(given.keys() - truth.keys())]
    altered = []
    for k in sorted(truth.keys() & given.keys()):
        a, b = truth[k], given[k]
        changed = {
            n: {"chain": getattr(a, n), "claimed": getattr(b, n)}
            for n in _COMPARED
            if getattr(a, n) != getattr(b, n)
        }
        if changed:
            altered.append(Altered(k[0], k[1], a, b, changed))
    return AuditReport(
        from_block=from_block,
        to_block=to_block,
        chain_rows=len(truth),
        claimed_rows=count,
        missing=missing,
        extra=extra,
        altered=altered,
    )


def _key(row: TraceRow) -> tuple[int, int, str]:
    return (row.block_number, row.log_index, row.grant_id if row.kind == "recall" else "")


# Re-deriving from the chain ----------------------------------------------------------


class _Chain:
    """The few ``eth_getLogs`` shapes the audit needs, with range halving on refusal."""

    def __init__(self, rpc_url: str, address: str, batch_size: int, timeout: float) -> None:
        self.rpc = JsonRpc(rpc_url, timeout=timeout)
        # The ledger's logs and its companions' (claims ...), as the indexer reads them.
        self.addresses = [a.lower() for a in log_addresses(address)]
        self.batch_size = batch_size
        specs = event_specs([*load_abi(), *companion_abis()])
        self.by_topic: dict[str, EventSpec] = {t: s for t, s in specs.items()}
        self.topic: dict[str, str] = {s.name: t for t, s in specs.items()}
        self._timestamps: dict[int, int] = {}

    def close(self) -> None:
        self.rpc.close()

    def logs(self, first: int, last: int, topics: Sequence[Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        sizer = RangeSizer(max_span=self.batch_size)
        start = first
        while start <= last:
            lo, hi = sizer.next_range(start, last)
            params = {
                "address": self.addresses,
                "fromBlock": hex(lo),
                "toBlock": hex(hi),
                "topics": list(topics),
            }
            try:
                got = self.rpc.call("eth_getLogs", [params])
            except RpcResponseError as exc:
                if sizer.refused(lo, hi):
                    continue
                raise AuditError(f"node refuses eth_getLogs for blocks {lo}..{hi}: {exc}") from exc
            if not isinstance(got, list):
                raise AuditError("eth_getLogs did not return a list")
            sizer.succeeded()
            out.extend(got)
            start = hi + 1
        out.sort(key=lambda lg: (int(lg["blockNumber"], 16), int(lg["logIndex"], 16)))
        return out

    def by_ids(
        self, name: str, position: int, ids: Iterable[str], first: int, last: int
    ) -> list[dict[str, Any]]:
        """Logs of event ``name`` whose indexed topic at ``position`` is one of ``ids``."""
        wanted = sorted(set(ids))
        out: list[dict[str, Any]] = []
        for i in range(0, len(wanted), _ID_CHUNK):
            topics: list[Any] = [self.topic[name]] + [None] * (position - 1)
            topics.append(wanted[i : i + _ID_CHUNK])
            out.extend(self.logs(first, last, topics))
        return out

    def decode(self, lg: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        topics = lg["topics"]
        spec = self.by_topic.get(str(topics[0]).lower()) if topics else None
        if spec is None:
            raise AuditError(f"log {lg.get('logIndex')} in block {lg.get('blockNumber')} unknown")
        try:
            return spec.name, spec.decode(topics, lg["data"])
        except ValueError as exc:
            raise AuditError(f"cannot decode {spec.name}: {exc}") from exc

    def timestamps(self, logs: Sequence[dict[str, Any]]) -> None:
        need = set()
        for lg in logs:
            number = int(lg["blockNumber"], 16)
            ts = lg.get("blockTimestamp")
            if ts is not None:
                self._timestamps[number] = int(ts, 16)
            elif number not in self._timestamps:
                need.add(number)
        if need:
            for number, header in self.rpc.headers(sorted(need)).items():
                if header is None:
                    raise AuditError(f"block {number} disappeared during the audit")
                self._timestamps[number] = int(header["timestamp"], 16)

    def timestamp(self, number: int) -> int:
        return self._timestamps[number]


@dataclass(frozen=True)
class _Grant:
    grant_id: str
    asset_id: str
    owner: str
    grantee: str
    grantor: str
    purpose: int
    fields_mask: int
    not_before: int
    expiry: int
    max_uses: int
    nonce: str


def _grant_of(args: dict[str, Any]) -> _Grant:
    terms = args["terms"]
    return _Grant(
        grant_id=args["grantId"],
        asset_id=args["assetId"],
        owner=args["owner"],
        grantee=args["grantee"],
        grantor=args["grantor"],
        purpose=int(terms["purpose"]),
        fields_mask=int(terms["fieldsMask"]),
        not_before=db.saturate_i64(int(terms["notBefore"])),
        expiry=db.saturate_i64(int(terms["expiry"])),
        max_uses=int(terms["maxUses"]),
        nonce=str(args["nonce"]),
    )


def _derive_accesses(
    chain: _Chain,
    decoded: Sequence[tuple[dict[str, Any], str, dict[str, Any]]],
    deploy_block: int,
    from_block: int,
) -> None:
    """Adds ``custodian`` and ``use`` to each ``Accessed`` in ``decoded`` (in chain order).

    The event carries neither: the custodian is the transaction's sender, and a grant's
    n-th ``Accessed`` event in chain order is its use n, so the grant's accesses before
    the range are counted too.
    """
    accessed = [(lg, args) for lg, name, args in decoded if name == "Accessed"]
    if not accessed:
        return
    try:
        senders = chain.rpc.senders([str(lg["transactionHash"]) for lg, _ in accessed])
    except (IndexerRpcError, RpcResponseError) as exc:
        raise AuditError(f"cannot read the senders of access transactions: {exc}") from exc
    uses: dict[str, int] = {}
    if from_block > deploy_block:
        ids = {args["grantId"] for _, args in accessed}
        for lg in chain.by_ids("Accessed", 1, ids, deploy_block, from_block - 1):
            grant_id = chain.decode(lg)[1]["grantId"]
            uses[grant_id] = uses.get(grant_id, 0) + 1
    for lg, args in accessed:
        uses[args["grantId"]] = uses.get(args["grantId"], 0) + 1
        args["use"] = uses[args["grantId"]]
        args["custodian"] = senders[str(lg["transactionHash"]).lower()]


def chain_rows(
    rpc_url: str,
    ledger_address: str,
    from_block: int,
    to_block: int,
    *,
    deploy_block: int = 0,
    flt: TraceFilter | None = None,
    batch_size: int = 2000,
    timeout: float = 30.0,
) -> list[TraceRow]:
    """Trace rows of ``[from_block, to_block]`` built from ``eth_getLogs`` only."""
    if from_block > to_block or from_block < 0:
        raise AuditError(f"invalid block range {from_block}..{to_block}")
    chain = _Chain(rpc_url, ledger_address, batch_size, timeout)
    try:
        logs = chain.logs(from_block, to_block, [[chain.topic[n] for n in _EVENTS]])
        decoded = [(lg, *chain.decode(lg)) for lg in logs]
        grants: dict[str, _Grant] = {}
        for _, name, args in decoded:
            if name == "ConsentGranted":
                grants[args["grantId"]] = _grant_of(args)
        unknown = {a["grantId"] for _, _, a in decoded} - grants.keys()
        if unknown:
            for lg in chain.by_ids("ConsentGranted", 1, unknown, deploy_block, to_block):
                _, args = chain.decode(lg)
                grants[args["grantId"]] = _grant_of(args)
        assets: dict[str, tuple[str, str]] = {}
        asset_ids = {g.asset_id for g in grants.values()}
        if asset_ids:
            anchored = chain.by_ids("AssetAnchored", 1, asset_ids, deploy_block, to_block)
            for lg in anchored:
                _, args = chain.decode(lg)
                assets[args["assetId"]] = (args["issuer"], args["schemaId"])
            superseded = chain.by_ids("AssetSuperseded", 2, asset_ids, deploy_block, to_block)
            if superseded:
                # A new version keeps the old version's schema: follow it back.
                olds = {chain.decode(lg)[1]["oldAssetId"] for lg in superseded}
                for lg in chain.by_ids("AssetAnchored", 1, olds, deploy_block, to_block):
                    _, args = chain.decode(lg)
                    assets.setdefault(args["assetId"], (args["issuer"], args["schemaId"]))
                for lg in superseded:
                    _, args = chain.decode(lg)
                    old = assets.get(args["oldAssetId"])
                    assets[args["newAssetId"]] = (args["issuer"], old[1] if old else "")
        _derive_accesses(chain, decoded, deploy_block, from_block)
        recalls = _recalls(chain, from_block, to_block, deploy_block)
        chain.timestamps(logs + [lg for lg, _, _ in recalls])
        rows = []
        for lg, name, args in decoded:
            grant = grants.get(args["grantId"])
            if grant is None:
                raise AuditError(f"{name} cites grant {args['grantId']} that was never granted")
            rows.append(_row(lg, name, args, grant, assets.get(grant.asset_id), chain))
        for lg, grant, uses in recalls:
            row = _row(lg, "ConsentGranted", {"grantor": ""}, grant, None, chain)
            issuer = chain.decode(lg)[1]["issuer"]
            rows.append(
                replace(
                    row,
                    kind="recall",
                    actor=issuer,
                    use=uses,
                    issuer=issuer,
                    schema_id=_schema_of(chain, grant.asset_id, deploy_block, to_block),
                )
            )
    finally:
        chain.close()
    if flt is not None:
        rows = [r for r in rows if flt.matches(r)]
    return rows


def _row(
    lg: dict[str, Any],
    name: str,
    args: dict[str, Any],
    grant: _Grant,
    asset: tuple[str, str] | None,
    chain: _Chain,
) -> TraceRow:
    number = int(lg["blockNumber"], 16)
    common: dict[str, Any] = {
        "kind": trace.EVENT_KIND[name],
        "grant_id": grant.grant_id,
        "subject": grant.owner,
        "institution": grant.grantee,
        "asset_id": grant.asset_id,
        "issuer": asset[0] if asset else None,
        "schema_id": (asset[1] or None) if asset else None,
        "purpose": grant.purpose,
        "at": chain.timestamp(number),
        "block_number": number,
        "block_hash": str(lg["blockHash"]).lower(),
        "log_index": int(lg["logIndex"], 16),
        "tx_hash": str(lg["transactionHash"]).lower(),
    }
    if name == "Accessed":
        return TraceRow(
            **common,
            fields_mask=int(args["fieldsMask"]),
            actor=args["custodian"],
            not_before=0,
            expiry=0,
            max_uses=0,
            use=int(args["use"]),
            nonce=str(args["nonce"]),
        )
    if name in _ACKS:
        actor = grant.grantee
    else:
        actor = args["grantor"] if name == "ConsentGranted" else args["by"]
    return TraceRow(
        **common,
        fields_mask=grant.fields_mask,
        actor=actor,
        not_before=grant.not_before,
        expiry=grant.expiry,
        max_uses=grant.max_uses,
        use=None,
        nonce=grant.nonce,
    )


def _recalls(
    chain: _Chain, first: int, last: int, deploy_block: int
) -> list[tuple[dict[str, Any], _Grant, int]]:
    """(AssetSuperseded log, grant, pulls) for each grant that pulled a version superseded
    in ``[first, last]``: the contract refuses pulls of a superseded version, so the pulls
    counted before the log are all there ever are."""
    superseded = chain.logs(first, last, [[chain.topic["AssetSuperseded"]]])
    if not superseded:
        return []
    by_asset: dict[str, list[_Grant]] = {}
    old_ids = {chain.decode(lg)[1]["oldAssetId"] for lg in superseded}
    for lg in chain.by_ids("ConsentGranted", 2, old_ids, deploy_block, last):
        grant = _grant_of(chain.decode(lg)[1])
        by_asset.setdefault(grant.asset_id, []).append(grant)
    ids = {g.grant_id for gs in by_asset.values() for g in gs}
    pulls: dict[str, list[tuple[int, int]]] = {}
    for lg in chain.by_ids("Accessed", 1, ids, deploy_block, last) if ids else []:
        at = (int(lg["blockNumber"], 16), int(lg["logIndex"], 16))
        pulls.setdefault(chain.decode(lg)[1]["grantId"], []).append(at)
    out = []
    for lg in superseded:
        at = (int(lg["blockNumber"], 16), int(lg["logIndex"], 16))
        for grant in by_asset.get(chain.decode(lg)[1]["oldAssetId"], []):
            uses = sum(1 for p in pulls.get(grant.grant_id, []) if p < at)
            if uses:
                out.append((lg, grant, uses))
    return out


def _schema_of(chain: _Chain, asset_id: str, deploy_block: int, last: int) -> str | None:
    """The schema of an asset version from its anchoring, or its first version's."""
    for lg in chain.by_ids("AssetAnchored", 1, {asset_id}, deploy_block, last):
        return str(chain.decode(lg)[1]["schemaId"])
    for lg in chain.by_ids("AssetSuperseded", 2, {asset_id}, deploy_block, last):
        return _schema_of(chain, chain.decode(lg)[1]["oldAssetId"], deploy_block, last)
    return None


# Entry points ------------------------------------------------------------------------


def _manifest(manifest: Manifest | PinnedDeployment | Path | str) -> Manifest | PinnedDeployment:
    """A manifest, or a client's pinned deployment (both give the address and deploy block)."""
    if isinstance(manifest, Manifest | PinnedDeployment):
        return manifest
    return Manifest.load(Path(manifest))


def _head(rpc_url: str) -> int:
    with JsonRpc(rpc_url) as rpc:
        return rpc.block_number()


def _range_filter(flt: TraceFilter | None, first: int, last: int) -> TraceFilter:
    base = flt or TraceFilter()
    kinds = frozenset(base.kinds) - {"expired"}
    return replace(base, kinds=kinds or frozenset({"access"}), from_block=first, to_block=last)


def verify_rows(
    rpc_url: str,
    manifest: Manifest | PinnedDeployment | Path | str,
    rows: Iterable[TraceRow | dict[str, Any]],
    *,
    from_block: int,
    to_block: int,
    flt: TraceFilter | None = None,
) -> AuditReport:
    """Check rows someone was given for ``[from_block, to_block]`` against the chain.

    ``rows`` may be :class:`TraceRow` objects or the dicts of the JSON export; they must be
    the complete answer for the same range and filter (any row outside it is "extra").
    """
    m = _manifest(manifest)
    started = time.perf_counter()
    claimed = [r if isinstance(r, TraceRow) else TraceRow.from_json(r) for r in rows]
    rng = _range_filter(flt, from_block, to_block)
    truth = chain_rows(
        rpc_url, m.ledger_address, from_block, to_block, deploy_block=m.deploy_block, flt=rng
    )
    report = diff(truth, claimed, from_block=from_block, to_block=to_block)
    return replace(report, seconds=time.perf_counter() - started)


def index_rows(engine: Engine, flt: TraceFilter) -> list[TraceRow]:
    """The index's rows for a filter (every page), as the trace API would serve them."""
    with engine.connect() as conn:
        return list(trace.iter_rows(conn, flt))


def verify_index(
    rpc_url: str,
    manifest: Manifest | PinnedDeployment | Path | str,
    engine: Engine,
    *,
    from_block: int | None = None,
    to_block: int | None = None,
    flt: TraceFilter | None = None,
) -> AuditReport:
    """Check the indexer's tables against the chain over a block range.

    Defaults: from the deployment block to the last block the index claims to cover
    (blocks the indexer has not reached yet are not differences).
    """
    m = _manifest(manifest)
    started = time.perf_counter()
    first = m.deploy_block if from_block is None else from_block
    if to_block is None:
        with engine.connect() as conn:
            indexed = trace.last_indexed_block(conn)
        last = min(_head(rpc_url), indexed if indexed is not None else first - 1)
    else:
        last = to_block
    if last < first:
        return AuditReport(first, last, 0, 0, seconds=time.perf_counter() - started)
    rng = _range_filter(flt, first, last)
    claimed = index_rows(engine, rng)
    truth = chain_rows(rpc_url, m.ledger_address, first, last, deploy_block=m.deploy_block, flt=rng)
    report = diff(truth, claimed, from_block=first, to_block=last)
    return replace(report, seconds=time.perf_counter() - started)
