"""The security suite reuses the API tests' real fixtures (anvil, deployed ledger, uvicorn).

``tests/api`` has no package; its helpers (``_api_server``, ``_api_world``...) are imported
by path, and its ``conftest.py`` is loaded under another module name so its fixtures are
defined here too (on the session's ``anvil_chain``, tests/conftest.py).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_API = Path(__file__).resolve().parents[1] / "api"
if str(_API) not in sys.path:
    sys.path.insert(0, str(_API))

_spec = importlib.util.spec_from_file_location("_security_api_conftest", _API / "conftest.py")
assert _spec is not None and _spec.loader is not None
_api_conftest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_api_conftest)

world_session = _api_conftest.world_session
world = _api_conftest.world
bare_settings = _api_conftest.bare_settings
bare_server = _api_conftest.bare_server
server = _api_conftest.server

# The edge suite's own fixtures (tests/security/_edge.py).
from _edge import edge_anvil, edge_db, edge_world  # noqa: E402

__all__ = ["edge_anvil", "edge_db", "edge_world"]
