"""The claims companion's events as rows: ``claim_events`` appended, ``claims`` kept current.

A mixin of :class:`ledger.indexer._projection.Projector` (it uses its state cache, replay
restriction and event-row buffer), kept apart so the ledger's own projection stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import sqlalchemy as sa

from ledger import db

CLAIM_EVENTS = frozenset({"ClaimFiled", "ClaimFulfilled", "ClaimRefused"})
_T_CLAIMS = db.claims
_T_CLAIM_EVENTS = db.claim_events

Handler = Callable[[dict[str, Any], Any], None]


class _Projector(Protocol):
    def _put(self, table: sa.Table, key: Any, row: dict[str, Any], restrict_key: str) -> None: ...

    def _require(self, table: sa.Table, key: Any, what: str, ref: Any) -> dict[str, Any]: ...

    def _record(self, table: sa.Table, row: dict[str, Any]) -> None: ...


class ClaimsProjection:
    """Handlers for :data:`CLAIM_EVENTS`; the replay key is ``"claims"`` (claim ids)."""

    def _claim_handlers(self: _Projector) -> dict[str, Handler]:
        def filed(a: dict[str, Any], ref: Any) -> None:
            row = {
                "claim_id": a["claimId"],
                "subject": a["subject"],
                "department": a["department"],
                "schema_id": a["schemaId"],
                "reference_hash": a["referenceHash"],
                "relayer": a["relayer"],
                "status": "open",
                "filed_at": int(a["at"]),
                "closed_at": None,
                "asset_id": None,
                "reason_code": None,
                "reason_hash": None,
                "block_number": ref.block_number,
                "log_index": ref.log_index,
                "tx_hash": ref.tx_hash,
                "closed_tx_hash": None,
                "updated_block": ref.block_number,
            }
            self._put(_T_CLAIMS, a["claimId"], row, "claims")
            event = {"event": "ClaimFiled", "claim_id": a["claimId"], "actor": a["relayer"]}
            self._record(_T_CLAIM_EVENTS, {**ref.row(), **event, "args": a})

        def closed(name: str, status: str) -> Handler:
            def handler(a: dict[str, Any], ref: Any) -> None:
                row = self._require(_T_CLAIMS, a["claimId"], "claim", ref)
                changes: dict[str, Any] = {
                    "status": status,
                    "closed_at": int(a["at"]),
                    "closed_tx_hash": ref.tx_hash,
                    "updated_block": ref.block_number,
                }
                if status == "fulfilled":
                    changes["asset_id"] = a["assetId"]
                else:
                    changes["reason_code"] = int(a["reasonCode"])
                    changes["reason_hash"] = a["reasonHash"]
                self._put(_T_CLAIMS, a["claimId"], {**row, **changes}, "claims")
                event = {"event": name, "claim_id": a["claimId"], "actor": a["department"]}
                self._record(_T_CLAIM_EVENTS, {**ref.row(), **event, "args": a})

            return handler

        return {
            "ClaimFiled": filed,
            "ClaimFulfilled": closed("ClaimFulfilled", "fulfilled"),
            "ClaimRefused": closed("ClaimRefused", "refused"),
        }
