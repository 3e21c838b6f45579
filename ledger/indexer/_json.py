"""Event arguments as stored in the index's JSON columns."""

from __future__ import annotations

from typing import Any


def json_safe(value: Any) -> Any:
    """JSON-storable copy: integers beyond 2**53 become strings (JSON readers lose them)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1 << 53:
        return str(value)
    return value
