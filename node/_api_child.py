"""The API child, started ahead of time (``python -m node._api_child --host H --port P``).

Importing the service is most of an API start. The node starts this process first, so the
imports run while the node starts the chain and checks the database; the child then waits
for one JSON line on stdin, its settings (``DATASAFE_API_*``), and serves exactly as
``python -m api`` with the same arguments does. End of input before that line: the node
stopped before it needed the API, and the child exits.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    import uvicorn  # noqa: F401  (imported now, used by api.cli.main)

    import api.app  # noqa: F401
    from api.cli import main as serve

    line = sys.stdin.readline()
    if not line.strip():
        return
    os.environ.update(json.loads(line))
    serve(sys.argv[1:])


if __name__ == "__main__":
    main()
