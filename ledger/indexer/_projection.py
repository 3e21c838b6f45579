"""Turns decoded ledger events into rows: event rows appended, current-state rows updated.

The same handlers serve live indexing and the replay after a re-org rollback, so
the current-state tables (members, member_agents, assets, grants) are always a
pure function of the event rows below the cursor.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ledger import db
from ledger.indexer._claims import CLAIM_EVENTS, ClaimsProjection
from ledger.indexer._lifecycle import SEALED_EVENTS, LifecycleProjection, _json_safe
from ledger.indexer.errors import InconsistentEventError
from ledger.lifecycle import recall_rank

MEMBER_KINDS = (
    "none",
    "individual",
    "enterprise",
    "bank",
    "notary",
    "insurer",
    "department",
    "regulator",
    "operator",
)
SELECT_CHUNK = 500


@dataclass(frozen=True, slots=True)
class LogRef:
    """Chain coordinates of one log."""

    block_number: int
    block_hash: str
    block_timestamp: int
    tx_hash: str
    log_index: int

    def row(self) -> dict[str, Any]:
        return {
            "block_number": self.block_number,
            "block_hash": self.block_hash,
            "block_timestamp": self.block_timestamp,
            "tx_hash": self.tx_hash,
            "log_index": self.log_index,
        }


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    name: str
    args: dict[str, Any]
    ref: LogRef


_T_MEMBERS = db.members
_T_AGENTS = db.member_agents
_T_MEMBER_EVENTS = db.member_events
_T_SCHEMAS = db.schemas
_T_ASSETS = db.assets
_T_ASSET_EVENTS = db.asset_events
_T_GRANTS = db.grants
_T_GRANT_EVENTS = db.grant_events
_T_ACCESSES = db.accesses
_T_REFUSALS = db.access_refusals
_T_ACK_REFUSALS = db.acknowledgement_refusals
_T_SKIPPED = db.skipped_logs
_T_SEALED_EVENTS = db.sealed_events

EVENT_TABLES: tuple[sa.Table, ...] = (
    _T_MEMBER_EVENTS,
    _T_SCHEMAS,
    _T_ASSET_EVENTS,
    _T_GRANT_EVENTS,
    _T_ACCESSES,
    _T_REFUSALS,
    _T_ACK_REFUSALS,
    _T_SKIPPED,
    _T_SEALED_EVENTS,
    db.claim_events,
)

MEMBER_EVENTS = frozenset(
    {
        "MemberAdmitted",
        "MemberRolesChanged",
        "MemberSuspended",
        "MemberReinstated",
        "EncryptionKeyBound",
        "AgentAdded",
        "AgentRemoved",
        "GovernanceTransferStarted",
        "GovernanceTransferred",
    }
)
ASSET_EVENTS = frozenset(
    {"AssetAnchored", "AssetSuperseded", "AssetDisputed", "DisputeResolved", "AssetRetired"}
)
ACK_EVENTS = frozenset({"RecallAcknowledged", "DeletionAcknowledged"})
GRANT_EVENTS = ACK_EVENTS | {"ConsentGranted", "ConsentRevoked", "ConsentPaused", "ConsentResumed"}
#: M-of-N consent (issue 18): an enterprise's threshold, and each approval a grant carried.
APPROVAL_EVENTS = frozenset({"ApprovalThresholdSet", "ConsentApproved"})
OTHER_EVENTS = APPROVAL_EVENTS | {
    "SchemaRegistered",
    "Accessed",
    "AccessRefused",
    "AcknowledgementRefused",
}
HANDLED_EVENTS = (
    MEMBER_EVENTS | ASSET_EVENTS | GRANT_EVENTS | OTHER_EVENTS | set(SEALED_EVENTS) | CLAIM_EVENTS
)


def dialect_insert(conn: Connection, table: sa.Table) -> Any:
    """INSERT with ON CONFLICT support for the connection's dialect."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"unsupported database dialect {conn.dialect.name}")


def _pk_name(table: sa.Table) -> list[str]:
    return [c.name for c in table.primary_key.columns]


def _select_in(conn: Connection, table: sa.Table, column: str, keys: Iterable[Any]) -> list[Any]:
    keys = list(keys)
    rows: list[Any] = []
    for start in range(0, len(keys), SELECT_CHUNK):
        chunk = keys[start : start + SELECT_CHUNK]
        rows.extend(conn.execute(sa.select(table).where(table.c[column].in_(chunk))).mappings())
    return rows


class Projector(LifecycleProjection, ClaimsProjection):
    """Applies events of one block range (or a replay) and writes the rows in ``flush``.

    In replay mode (``restrict`` given) no event rows are appended and only the
    current-state rows of the restricted keys change; they were deleted beforehand and
    are rebuilt from the event rows that survived the rollback.
    """

    def __init__(self, conn: Connection, *, restrict: dict[str, set[Any]] | None = None) -> None:
        self._conn = conn
        self._replay = restrict is not None
        self._restrict = restrict or {}
        self._inserts: dict[sa.Table, list[dict[str, Any]]] = defaultdict(list)
        self._state: dict[sa.Table, dict[Any, dict[str, Any]]] = defaultdict(dict)
        self._dirty: dict[sa.Table, set[Any]] = defaultdict(set)
        self._handlers: dict[str, Callable[[dict[str, Any], LogRef], None]] = {
            "MemberAdmitted": self._member_admitted,
            "MemberRolesChanged": self._member_roles,
            "MemberSuspended": self._member_suspended,
            "MemberReinstated": self._member_reinstated,
            "EncryptionKeyBound": self._key_bound,
            "AgentAdded": self._agent_added,
            "AgentRemoved": self._agent_removed,
            "GovernanceTransferStarted": self._governance_started,
            "GovernanceTransferred": self._governance_transferred,
            "SchemaRegistered": self._schema_registered,
            "AssetAnchored": self._asset_anchored,
            "AssetSuperseded": self._asset_superseded,
            "AssetDisputed": self._asset_status("disputed", "owner", "by"),
            "DisputeResolved": self._asset_status("active", None, "issuer"),
            "AssetRetired": self._asset_status("retired", None, "issuer"),
            "ConsentGranted": self._consent_granted,
            "ConsentRevoked": self._grant_status("revoked"),
            "ConsentPaused": self._grant_status("paused"),
            "ConsentResumed": self._grant_status("active"),
            "Accessed": self._accessed,
            "AccessRefused": self._access_refused,
            "ApprovalThresholdSet": self._threshold_set,
            "ConsentApproved": self._consent_approved,
            **self._lifecycle_handlers(),
            **self._claim_handlers(),
        }
        assert set(self._handlers) == HANDLED_EVENTS

    # Loading -------------------------------------------------------------------------

    def prefetch(self, events: Iterable[DecodedEvent]) -> None:
        """Load the current-state rows the events will touch, one query per table."""
        events = list(events)
        members: set[str] = set()
        assets: set[str] = set()
        grants: set[str] = set()
        for ev in events:
            a = ev.args
            if ev.name in MEMBER_EVENTS:
                if "account" in a:
                    members.add(a["account"])
            elif ev.name == "AssetSuperseded":
                assets.add(a["oldAssetId"])
            elif ev.name in ASSET_EVENTS:
                assets.add(a["assetId"])
            elif ev.name in GRANT_EVENTS or ev.name == "Accessed":
                grants.add(a["grantId"])
        self._load(_T_MEMBERS, "address", members)
        self._load(_T_ASSETS, "asset_id", assets)
        self._load(_T_GRANTS, "grant_id", grants)
        claims = {ev.args["claimId"] for ev in events if ev.name in CLAIM_EVENTS}
        self._load(db.claims, "claim_id", claims)

    def _load(self, table: sa.Table, column: str, keys: set[Any]) -> None:
        cache = self._state[table]
        missing = [k for k in keys if k not in cache]
        for row in _select_in(self._conn, table, column, missing):
            cache[row[column]] = dict(row)

    def _get(self, table: sa.Table, key: Any) -> dict[str, Any] | None:
        cache = self._state[table]
        if key not in cache:
            pk = _pk_name(table)
            if len(pk) == 1:
                row = (
                    self._conn.execute(sa.select(table).where(table.c[pk[0]] == key))
                    .mappings()
                    .first()
                )
            else:
                cond = sa.and_(*(table.c[n] == v for n, v in zip(pk, key, strict=True)))
                row = self._conn.execute(sa.select(table).where(cond)).mappings().first()
            if row is None:
                return None
            cache[key] = dict(row)
        return cache[key]

    def _put(
        self,
        table: sa.Table,
        key: Any,
        row: dict[str, Any],
        restrict_key: str,
        restrict_value: Any = None,
    ) -> None:
        owner_key = key if restrict_value is None else restrict_value
        if self._replay and owner_key not in self._restrict.get(restrict_key, set()):
            return
        self._state[table][key] = row
        self._dirty[table].add(key)

    def _require(self, table: sa.Table, key: Any, what: str, ref: LogRef) -> dict[str, Any]:
        row = self._get(table, key)
        if row is None:
            raise InconsistentEventError(
                f"{what} {key} is unknown to the index (block {ref.block_number}, "
                f"log {ref.log_index}); the index must be rebuilt from the deployment block"
            )
        return row

    def _record(self, table: sa.Table, row: dict[str, Any]) -> None:
        if not self._replay:
            self._inserts[table].append(row)

    # Applying ------------------------------------------------------------------------

    def apply(self, event: DecodedEvent) -> None:
        self._handlers[event.name](event.args, event.ref)

    def _member_event(
        self, name: str, a: dict[str, Any], ref: LogRef, account: str, actor: str | None
    ) -> None:
        self._record(
            _T_MEMBER_EVENTS,
            {**ref.row(), "event": name, "account": account, "actor": actor, "args": a},
        )

    def _threshold_set(self, a: dict[str, Any], ref: LogRef) -> None:
        enterprise = a["enterprise"]
        self._member_event("ApprovalThresholdSet", a, ref, enterprise, enterprise)

    def _consent_approved(self, a: dict[str, Any], ref: LogRef) -> None:
        """One approval a thresholded grant carried: kept with the grant's events (the trace
        lists only its consent kinds, so it shows no new row)."""
        row = {"event": "ConsentApproved", "grant_id": a["grantId"], "actor": a["agent"]}
        self._record(_T_GRANT_EVENTS, {**ref.row(), **row, "args": a})

    def _member_admitted(self, a: dict[str, Any], ref: LogRef) -> None:
        kind = int(a["kind"])
        row = {
            "address": a["account"],
            "roles": a["roles"],
            "kind": kind,
            "kind_name": MEMBER_KINDS[kind] if kind < len(MEMBER_KINDS) else f"kind{kind}",
            "status": "active",
            # Admission binds no key; the member's own EncryptionKeyBound does.
            "key_version": 0,
            "enc_key_hash": "0x" + "00" * 32,
            "admitted_by": a["admittedBy"],
            "admitted_at": a["timestamp"],
            "admitted_block": ref.block_number,
            "updated_block": ref.block_number,
        }
        self._put(_T_MEMBERS, a["account"], row, "members")
        self._member_event("MemberAdmitted", a, ref, a["account"], a["admittedBy"])

    def _update_member(self, a: dict[str, Any], ref: LogRef, **changes: Any) -> None:
        row = self._require(_T_MEMBERS, a["account"], "member", ref)
        self._put(
            _T_MEMBERS,
            a["account"],
            {**row, **changes, "updated_block": ref.block_number},
            "members",
        )

    def _member_roles(self, a: dict[str, Any], ref: LogRef) -> None:
        self._update_member(a, ref, roles=a["newRoles"])
        self._member_event("MemberRolesChanged", a, ref, a["account"], a["changedBy"])

    def _member_suspended(self, a: dict[str, Any], ref: LogRef) -> None:
        self._update_member(a, ref, status="suspended")
        self._member_event("MemberSuspended", a, ref, a["account"], a["suspendedBy"])

    def _member_reinstated(self, a: dict[str, Any], ref: LogRef) -> None:
        self._update_member(a, ref, status="active")
        self._member_event("MemberReinstated", a, ref, a["account"], a["reinstatedBy"])

    def _key_bound(self, a: dict[str, Any], ref: LogRef) -> None:
        self._update_member(a, ref, key_version=a["keyVersion"], enc_key_hash=a["encKeyHash"])
        self._member_event("EncryptionKeyBound", a, ref, a["account"], a["submittedBy"])

    def _agent_added(self, a: dict[str, Any], ref: LogRef) -> None:
        key = (a["enterprise"], a["agent"])
        row = {
            "enterprise": a["enterprise"],
            "agent": a["agent"],
            "expiry": db.saturate_i64(a["expiry"]),
            "active": True,
            "updated_block": ref.block_number,
        }
        self._put(_T_AGENTS, key, row, "members", a["enterprise"])
        self._member_event("AgentAdded", a, ref, a["enterprise"], a["enterprise"])

    def _agent_removed(self, a: dict[str, Any], ref: LogRef) -> None:
        key = (a["enterprise"], a["agent"])
        row = self._require(_T_AGENTS, key, "agent", ref)
        self._put(
            _T_AGENTS,
            key,
            {**row, "active": False, "updated_block": ref.block_number},
            "members",
            a["enterprise"],
        )
        self._member_event("AgentRemoved", a, ref, a["enterprise"], a["enterprise"])

    def _governance_started(self, a: dict[str, Any], ref: LogRef) -> None:
        self._member_event("GovernanceTransferStarted", a, ref, a["pendingGovernor"], a["governor"])

    def _governance_transferred(self, a: dict[str, Any], ref: LogRef) -> None:
        self._member_event("GovernanceTransferred", a, ref, a["newGovernor"], a["previousGovernor"])

    def _schema_registered(self, a: dict[str, Any], ref: LogRef) -> None:
        self._record(
            _T_SCHEMAS,
            {
                **ref.row(),
                "schema_id": a["schemaId"],
                "issuer": a["issuer"],
                "field_count": a["fieldCount"],
                "fields_hash": a["fieldsHash"],
            },
        )

    def _asset_event(
        self,
        name: str,
        a: dict[str, Any],
        ref: LogRef,
        asset_id: str,
        related: str | None,
        owner: str | None,
        actor: str | None,
    ) -> None:
        self._record(
            _T_ASSET_EVENTS,
            {
                **ref.row(),
                "event": name,
                "asset_id": asset_id,
                "related_asset_id": related,
                "owner": owner,
                "actor": actor,
                "args": a,
            },
        )

    def _asset_anchored(self, a: dict[str, Any], ref: LogRef) -> None:
        row = {
            **ref.row(),
            "asset_id": a["assetId"],
            "version": 1,
            "owner": a["owner"],
            "issuer": a["issuer"],
            "schema_id": a["schemaId"],
            "root": a["root"],
            "ciphertext_digest": a["ciphertextDigest"],
            "status": "active",
            "previous": None,
            "next": None,
            "updated_block": ref.block_number,
        }
        self._put(_T_ASSETS, a["assetId"], row, "assets")
        self._asset_event("AssetAnchored", a, ref, a["assetId"], None, a["owner"], a["issuer"])

    def _asset_superseded(self, a: dict[str, Any], ref: LogRef) -> None:
        old_id, new_id = a["oldAssetId"], a["newAssetId"]
        old = self._require(_T_ASSETS, old_id, "asset", ref)
        self._put(
            _T_ASSETS,
            old_id,
            {**old, "status": "superseded", "next": new_id, "updated_block": ref.block_number},
            "assets",
        )
        new = {
            **ref.row(),
            "asset_id": new_id,
            "version": a["version"],
            "owner": a["owner"],
            "issuer": a["issuer"],
            "schema_id": old["schema_id"],
            "root": a["root"],
            "ciphertext_digest": a["ciphertextDigest"],
            "status": "active",
            "previous": old_id,
            "next": None,
            "updated_block": ref.block_number,
        }
        self._put(_T_ASSETS, new_id, new, "assets")
        self._asset_event("AssetSuperseded", a, ref, old_id, new_id, a["owner"], a["issuer"])

    def _asset_status(
        self, status: str, owner_arg: str | None, actor_arg: str
    ) -> Callable[[dict[str, Any], LogRef], None]:
        def handler(a: dict[str, Any], ref: LogRef) -> None:
            asset_id = a["assetId"]
            row = self._require(_T_ASSETS, asset_id, "asset", ref)
            self._put(
                _T_ASSETS,
                asset_id,
                {**row, "status": status, "updated_block": ref.block_number},
                "assets",
            )
            name = {
                "disputed": "AssetDisputed",
                "active": "DisputeResolved",
                "retired": "AssetRetired",
            }[status]
            owner = a[owner_arg] if owner_arg else row["owner"]
            self._asset_event(name, a, ref, asset_id, None, owner, a[actor_arg])

        return handler

    def _consent_granted(self, a: dict[str, Any], ref: LogRef) -> None:
        terms = a["terms"]
        row = {
            "grant_id": a["grantId"],
            "asset_id": a["assetId"],
            "owner": a["owner"],
            "grantee": a["grantee"],
            "grantor": a["grantor"],
            "purpose": terms["purpose"],
            "fields_mask": terms["fieldsMask"],
            "not_before": db.saturate_i64(terms["notBefore"]),
            "expiry": db.saturate_i64(terms["expiry"]),
            "max_uses": terms["maxUses"],
            "retention": terms.get("retention", 0),
            "revoked_at": None,
            "recall_acked_at": None,
            "deletion_acked_at": None,
            "trace_rank": recall_rank(a["grantId"]),
            "uses": 0,
            "status": "active",
            "nonce": str(a["nonce"]),
            "granted_at": a["timestamp"],
            **ref.row(),
            "updated_block": ref.block_number,
        }
        self._put(_T_GRANTS, a["grantId"], row, "grants")
        self._record(
            _T_GRANT_EVENTS,
            {
                **ref.row(),
                "event": "ConsentGranted",
                "grant_id": a["grantId"],
                "actor": a["grantor"],
                "args": _json_safe(a),
            },
        )

    def _grant_status(self, status: str) -> Callable[[dict[str, Any], LogRef], None]:
        name = {"revoked": "ConsentRevoked", "paused": "ConsentPaused", "active": "ConsentResumed"}[
            status
        ]

        def handler(a: dict[str, Any], ref: LogRef) -> None:
            row = self._require(_T_GRANTS, a["grantId"], "grant", ref)
            changes = {"status": status, "updated_block": ref.block_number}
            if status == "revoked":
                changes["revoked_at"] = a["timestamp"]
            self._put(_T_GRANTS, a["grantId"], {**row, **changes}, "grants")
            self._record(
                _T_GRANT_EVENTS,
                {**ref.row(), "event": name, "grant_id": a["grantId"], "actor": a["by"], "args": a},
            )

        return handler

    def _accessed(self, a: dict[str, Any], ref: LogRef) -> None:
        # The event carries no use number (and the chain counts only limited grants): the n-th
        # Accessed event of a grant, in chain order, is its use n, so the index counts them.
        # Nor a grantee: the contract records only the grant's own, so the grant row names it.
        grant = self._require(_T_GRANTS, a["grantId"], "grant", ref)
        use = int(grant["uses"]) + 1
        self._put(
            _T_GRANTS,
            a["grantId"],
            {**grant, "uses": use, "updated_block": ref.block_number},
            "grants",
        )
        self._record(
            _T_ACCESSES,
            {
                **ref.row(),
                "grant_id": a["grantId"],
                "grantee": grant["grantee"],
                "custodian": a["custodian"],
                "owner": grant["owner"],
                "asset_id": grant["asset_id"],
                "fields_mask": a["fieldsMask"],
                "purpose": grant["purpose"],
                "use": use,
                "nonce": str(a["nonce"]),
            },
        )

    def _access_refused(self, a: dict[str, Any], ref: LogRef) -> None:
        self._record(
            _T_REFUSALS,
            {
                **ref.row(),
                "grant_id": a["grantId"],
                "grantee": a["grantee"],
                "custodian": a["custodian"],
                "reason": a["reason"],
                "nonce": str(a["nonce"]),
            },
        )

    def skipped(self, row: dict[str, Any]) -> None:
        self._record(_T_SKIPPED, row)

    # Writing -------------------------------------------------------------------------

    def flush(self) -> int:
        """Write appended event rows (idempotently) and upsert changed state rows."""
        written = 0
        for table, rows in self._inserts.items():
            if rows:
                stmt = dialect_insert(self._conn, table).on_conflict_do_nothing()
                self._conn.execute(stmt, rows)
                written += len(rows)
        for table, keys in self._dirty.items():
            if not keys:
                continue
            rows = [self._state[table][k] for k in keys]
            ins = dialect_insert(self._conn, table)
            pk = _pk_name(table)
            stmt = ins.on_conflict_do_update(
                index_elements=pk,
                set_={c.name: ins.excluded[c.name] for c in table.columns if c.name not in pk},
            )
            self._conn.execute(stmt, rows)
        self._inserts.clear()
        self._dirty.clear()
        return written
