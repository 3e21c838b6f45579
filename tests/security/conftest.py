"""Fixtures of the security suite (each helper module registers its own here)."""

from __future__ import annotations

from _edge import edge_anvil, edge_db, edge_world

__all__ = ["edge_anvil", "edge_db", "edge_world"]
