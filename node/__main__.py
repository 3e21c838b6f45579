"""``python -m node``: the same as ``datasafe-node``."""

from node.cli import main

main()
