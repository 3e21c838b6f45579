"""The blob scrub: a lost or damaged ciphertext is the operator's alarm, not the citizen's
surprise at her next pull.

Each pass reads a bounded slice of the blob store (at most ``max_blobs`` blobs and
``max_bytes`` bytes, at least one blob), in asset-id order from a cursor kept in
``api_scrub_state``, so a large store is covered over several passes and a restarted service
resumes where the last pass stopped. Every blob is checked three ways:

1. it exists (else **missing**);
2. its bytes hash to its content address (else **corrupt**);
3. it parses as a sealed asset whose recomputed ciphertext digest is the anchored one, both
   the digest the database recorded at anchoring and the digest the chain holds (else
   **corrupt**).

Findings live in ``api_scrub_findings`` until a later check finds the blob sound again (a
restore); ``datasafe-node status``, ``/readyz`` (``checks.blobs``) and ``/metrics``
(``datasafe_blobs_missing``, ``datasafe_blobs_corrupt``,
``datasafe_blob_scrub_last_run_timestamp_seconds``) report them. The service runs a pass
every ``scrub_interval_seconds``; ``datasafe-node scrub`` runs passes on demand.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from api import errors
from api.db import assets, scrub_findings, scrub_state, sealed_assets
from ledger.abi import ledger_abi
from ledger.calls import LedgerCalls
from ledger.client import LedgerClient
from vault.errors import VaultError
from vault.sealing import SealedAsset, ciphertext_digest
from vault.store import BlobStore

log = logging.getLogger("api.scrub")

MISSING = "missing"
CORRUPT = "corrupt"

#: Reads the chain's anchored ciphertext digests of some assets (None: not on chain).
ChainDigests = Callable[[Sequence[bytes]], list[bytes | None]]


@dataclass
class Finding:
    asset_id: str
    blob: str
    problem: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {
            "asset_id": self.asset_id,
            "blob": self.blob,
            "problem": self.problem,
            "detail": self.detail,
        }


@dataclass
class PassReport:
    """What one pass did."""

    checked: int = 0
    bytes_read: int = 0
    #: The pass reached the end of the store (the next one starts from the top).
    wrapped: bool = False
    #: Digests compared with the chain (False when the chain was unreachable or not given).
    chain_checked: bool = False
    findings: list[Finding] = field(default_factory=list)

    def count(self, problem: str) -> int:
        return sum(1 for f in self.findings if f.problem == problem)

    def as_dict(self) -> dict[str, Any]:
        return {
            "missing": self.count(MISSING),
            "corrupt": self.count(CORRUPT),
            "checked": self.checked,
            "bytes_read": self.bytes_read,
            "wrapped": self.wrapped,
            "chain_checked": self.chain_checked,
            "findings": [f.as_dict() for f in self.findings],
        }


def chain_digests(rpc_url: str, ledger_address: str) -> ChainDigests:
    """Digests read from the chain itself, one batched ``eth_call`` round trip per pass."""
    calls = LedgerCalls(ledger_abi())

    def read(asset_ids: Sequence[bytes]) -> list[bytes | None]:
        if not asset_ids:
            return []
        with LedgerClient(rpc_url, ledger_address) as client:
            got = client.read_many([calls.get_asset(a) for a in asset_ids])
        return [a.ciphertext_digest if a.exists else None for a in got]

    return read


def _check(
    blobs: BlobStore, blob_hex: str, asset_id: str, anchored: str | None
) -> tuple[Finding | None, int, bytes | None]:
    """(finding or None, bytes read, recomputed ciphertext digest)."""
    digest = bytes.fromhex(blob_hex)
    path = blobs.path_for(digest)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Finding(asset_id, blob_hex, MISSING, f"{path} does not exist"), 0, None
    except OSError as exc:
        return Finding(asset_id, blob_hex, MISSING, f"{path} is unreadable: {exc}"), 0, None
    if hashlib.sha256(data).digest() != digest:
        return (
            Finding(asset_id, blob_hex, CORRUPT, "bytes do not hash to the blob's address"),
            (len(data)),
            None,
        )
    try:
        sealed = SealedAsset.from_bytes(data)
    except VaultError as exc:
        return Finding(asset_id, blob_hex, CORRUPT, f"not a sealed asset: {exc}"), len(data), None
    recomputed = ciphertext_digest(sealed.asset_id, sealed.version, sealed.fields)
    if "0x" + sealed.asset_id.hex() != asset_id:
        return (
            Finding(asset_id, blob_hex, CORRUPT, f"holds asset 0x{sealed.asset_id.hex()}"),
            len(data),
            None,
        )
    if anchored is not None and "0x" + recomputed.hex() != anchored.lower():
        detail = f"ciphertext digest 0x{recomputed.hex()} is not the recorded anchor {anchored}"
        return Finding(asset_id, blob_hex, CORRUPT, detail), len(data), None
    return None, len(data), recomputed


def scrub_pass(
    engine: Engine,
    blobs: BlobStore,
    *,
    max_blobs: int,
    max_bytes: int,
    chain: ChainDigests | None = None,
    now: int | None = None,
) -> PassReport:
    """Check the next slice of blobs from the saved cursor; record findings and the cursor."""
    now = int(time.time()) if now is None else now
    report = PassReport()
    with engine.connect() as conn:
        state = _state(conn)
        stmt = (
            sa.select(sealed_assets.c.asset_id, sealed_assets.c.blob, assets.c.ciphertext_digest)
            .select_from(
                sealed_assets.outerjoin(assets, assets.c.asset_id == sealed_assets.c.asset_id)
            )
            .order_by(sealed_assets.c.asset_id)
            .limit(max_blobs)
        )
        if state["cursor"] is not None:
            stmt = stmt.where(sealed_assets.c.asset_id > state["cursor"])
        rows = conn.execute(stmt).all()
    sound: list[str] = []
    recomputed: dict[str, bytes] = {}
    cursor = state["cursor"]
    for asset_id, blob_hex, anchored in rows:
        if report.checked and report.bytes_read >= max_bytes:
            break
        finding, size, digest = _check(blobs, str(blob_hex), str(asset_id), anchored)
        report.checked += 1
        report.bytes_read += size
        cursor = str(asset_id)
        if finding is not None:
            report.findings.append(finding)
        elif digest is not None:
            recomputed[str(asset_id)] = digest
    sound += _sound_against_chain(chain, recomputed, report)
    blob_of = {str(a): str(b) for a, b, _ in rows}
    for f in report.findings:
        f.blob = f.blob or blob_of.get(f.asset_id, "")
    report.wrapped = len(rows) < max_blobs and report.checked == len(rows)
    with engine.begin() as conn:
        if sound:
            conn.execute(scrub_findings.delete().where(scrub_findings.c.asset_id.in_(sound)))
        for f in report.findings:
            conn.execute(scrub_findings.delete().where(scrub_findings.c.asset_id == f.asset_id))
            conn.execute(
                scrub_findings.insert().values(
                    asset_id=f.asset_id,
                    blob=f.blob,
                    problem=f.problem,
                    detail=f.detail,
                    detected_at=now,
                )
            )
        values: dict[str, Any] = {
            "cursor": None if report.wrapped else cursor,
            "last_run_at": now,
            "checked_total": state["checked_total"] + report.checked,
        }
        if report.wrapped:
            values["last_full_pass_at"] = now
            values["full_passes"] = state["full_passes"] + 1
            # Findings of assets no longer stored (deleted since) are not an alarm.
            conn.execute(
                scrub_findings.delete().where(
                    scrub_findings.c.asset_id.not_in(sa.select(sealed_assets.c.asset_id))
                )
            )
        conn.execute(scrub_state.update().where(scrub_state.c.id == 1).values(**values))
    if report.findings:
        log.error(
            "blob scrub found damage",
            extra={"missing": report.count(MISSING), "corrupt": report.count(CORRUPT)},
        )
    return report


def _sound_against_chain(
    chain: ChainDigests | None, recomputed: dict[str, bytes], report: PassReport
) -> list[str]:
    """Assets whose recomputed digest the chain anchors; the others become findings.

    Without a chain (or when it is unreachable) the digests stand as checked against the DB.
    """
    if chain is None or not recomputed:
        return list(recomputed)
    sound: list[str] = []
    ids = list(recomputed)
    try:
        on_chain = chain([bytes.fromhex(a[2:]) for a in ids])
    except Exception as exc:  # an unreachable chain must not stop the scrub: DB-only then
        log.warning("scrub: chain unreachable, digests checked against the DB only: %s", exc)
        return ids
    report.chain_checked = True
    for asset_id, want in zip(ids, on_chain, strict=True):
        got = recomputed[asset_id]
        if want is None:
            report.findings.append(
                Finding(asset_id, "", CORRUPT, "the chain holds no anchor for this asset")
            )
        elif want != got:
            report.findings.append(
                Finding(
                    asset_id,
                    "",
                    CORRUPT,
                    f"ciphertext digest 0x{got.hex()} is not the chain's 0x{want.hex()}",
                )
            )
        else:
            sound.append(asset_id)
    return sound


def _state(conn: Connection) -> dict[str, Any]:
    """The state row (:func:`api.db.migrate` creates it)."""
    row = conn.execute(sa.select(scrub_state).where(scrub_state.c.id == 1)).mappings().first()
    if row is None:
        raise errors.NotReadyError("the database is not migrated (no api_scrub_state row)")
    return dict(row)


def scrub_all(
    engine: Engine,
    blobs: BlobStore,
    *,
    max_blobs: int,
    max_bytes: int,
    chain: ChainDigests | None = None,
) -> PassReport:
    """Passes until the store has been covered once from where the cursor stood (on demand)."""
    total = PassReport(chain_checked=chain is not None)
    while True:
        one = scrub_pass(engine, blobs, max_blobs=max_blobs, max_bytes=max_bytes, chain=chain)
        total.checked += one.checked
        total.bytes_read += one.bytes_read
        total.findings += one.findings
        total.chain_checked = total.chain_checked and one.chain_checked
        if one.wrapped:
            total.wrapped = True
            return total


def health(engine: Engine) -> dict[str, Any]:
    """What the scrub knows now: counts of missing and corrupt blobs, and when it last ran."""
    with engine.connect() as conn:
        by_problem = sa.select(scrub_findings.c.problem, sa.func.count()).group_by(
            scrub_findings.c.problem
        )
        counts: dict[str, int] = {str(p): int(n) for p, n in conn.execute(by_problem).all()}
        state = conn.execute(sa.select(scrub_state).where(scrub_state.c.id == 1)).mappings().first()
        stored = conn.execute(sa.select(sa.func.count()).select_from(sealed_assets)).scalar_one()
    missing, corrupt = int(counts.get(MISSING, 0)), int(counts.get(CORRUPT, 0))
    return {
        "ok": missing == 0 and corrupt == 0,
        "blobs": int(stored),
        "missing": missing,
        "corrupt": corrupt,
        "last_run_at": state["last_run_at"] if state else None,
        "last_full_pass_at": state["last_full_pass_at"] if state else None,
        "full_passes": int(state["full_passes"]) if state else 0,
    }


def findings(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(scrub_findings).order_by(scrub_findings.c.asset_id))
        return [dict(r) for r in rows.mappings()]
