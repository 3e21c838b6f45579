"""The node's errors and exit codes (the composition root builds on ``ledger``: its errors are
:class:`ledger.errors.LedgerError`, so every command reports them the same way)."""

from __future__ import annotations

from ledger.errors import LedgerError

EXIT_ERROR = 1
EXIT_USAGE = 2
#: The chain is behind what the database recorded (lost state); nothing was started.
EXIT_CHAIN_BEHIND = 3
#: The blob scrub found ciphertext blobs missing or corrupt (data loss until restored).
EXIT_BLOBS_DAMAGED = 4


class NodeError(LedgerError):
    """The node cannot start or act (busy data dir, key file, child process)."""


class NodeRunningError(NodeError):
    """Another ``datasafe-node up`` holds the data dir's lock."""


class ChainBehindDatabaseError(NodeError):
    """The chain lacks blocks or transactions the database recorded as confirmed.

    Typically the embedded anvil was killed (power loss, SIGKILL of anvil itself)
    after its last periodic state write: the transactions mined since are gone from
    the chain but the service's database and index still describe them. Serving
    would give answers the chain contradicts, so the node refuses to start.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "the chain is behind the database: "
            + "; ".join(problems)
            + ". The chain lost confirmed state (e.g. anvil killed before its state write); "
            "restore the data dir from a backup taken while the node was down, or start "
            "over with `datasafe-node reset --yes`"
        )
        self.problems = problems
