"""The lifecycle's acknowledgements and the sealed companion's events as rows.

A mixin of :class:`ledger.indexer._projection.Projector`, like :mod:`ledger.indexer._claims`
(it uses the projector's state cache, replay restriction and event-row buffer), kept apart
for the projection module's size.
"""

from __future__ import annotations

from typing import Any

from ledger import db
from ledger.indexer._claims import Handler, _Projector

#: The sealed-access companion's events, and who acted in each.
SEALED_EVENTS: dict[str, str] = {
    "AccessSealed": "department",
    "SealExtended": "regulator",
    "AccessUnsealed": "unsealedBy",
}


class LifecycleProjection:
    """Handlers for the acknowledgement events and :data:`SEALED_EVENTS`."""

    def _lifecycle_handlers(self: _Projector) -> dict[str, Handler]:
        def sealed(name: str, actor: str) -> Handler:
            def handler(a: dict[str, Any], ref: Any) -> None:
                event = {"event": name, "seal_id": int(a["sealId"]), "subject": a["subject"]}
                self._record(
                    db.sealed_events,
                    {**ref.row(), **event, "actor": a[actor], "args": _json_safe(a)},
                )

            return handler

        def acknowledged(name: str, column: str) -> Handler:
            """A recorded acknowledgement: its mined time on the grant, the event beside it."""

            def handler(a: dict[str, Any], ref: Any) -> None:
                row = self._require(db.grants, a["grantId"], "grant", ref)
                changes = {column: ref.block_timestamp, "updated_block": ref.block_number}
                self._put(db.grants, a["grantId"], {**row, **changes}, "grants")
                event = {"event": name, "grant_id": a["grantId"], "actor": row["grantee"]}
                self._record(db.grant_events, {**ref.row(), **event, "args": _json_safe(a)})

            return handler

        def refused(a: dict[str, Any], ref: Any) -> None:
            refusal = {"grant_id": a["grantId"], "signer": a["signer"], "kind": a["kind"]}
            self._record(
                db.acknowledgement_refusals, {**ref.row(), **refusal, "reason": a["reason"]}
            )

        return {
            **{name: sealed(name, actor) for name, actor in SEALED_EVENTS.items()},
            "RecallAcknowledged": acknowledged("RecallAcknowledged", "recall_acked_at"),
            "DeletionAcknowledged": acknowledged("DeletionAcknowledged", "deletion_acked_at"),
            "AcknowledgementRefused": refused,
        }


def _json_safe(value: Any) -> Any:
    """JSON-storable copy: integers beyond 2**53 become strings (JSON readers lose them)."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1 << 53:
        return str(value)
    return value
