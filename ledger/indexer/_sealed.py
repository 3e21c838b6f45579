"""The sealed-access companion's events as ``sealed_events`` rows (one per log).

A mixin of :class:`ledger.indexer._projection.Projector` (it uses its event-row buffer), kept
apart like :mod:`ledger.indexer._claims`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import sqlalchemy as sa

from ledger import db
from ledger.indexer._json import json_safe

#: The sealed-access companion's events, and who acted in each.
SEALED_EVENTS: dict[str, str] = {
    "AccessSealed": "department",
    "SealExtended": "regulator",
    "AccessUnsealed": "unsealedBy",
}
_T_SEALED_EVENTS = db.sealed_events

Handler = Callable[[dict[str, Any], Any], None]


class _Projector(Protocol):
    def _record(self, table: sa.Table, row: dict[str, Any]) -> None: ...


class SealedProjection:
    """Handlers for :data:`SEALED_EVENTS`: each log appended as it is."""

    def _sealed_handlers(self: _Projector) -> dict[str, Handler]:
        def handler_for(name: str, actor: str) -> Handler:
            def handler(a: dict[str, Any], ref: Any) -> None:
                self._record(
                    _T_SEALED_EVENTS,
                    {
                        **ref.row(),
                        "event": name,
                        "seal_id": int(a["sealId"]),
                        "subject": a["subject"],
                        "actor": a[actor],
                        "args": json_safe(a),
                    },
                )

            return handler

        return {name: handler_for(name, actor) for name, actor in SEALED_EVENTS.items()}
