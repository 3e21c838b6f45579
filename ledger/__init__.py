"""DataSafe Ledger: ledger package."""

from __future__ import annotations

import contextlib
import sys

#: The interpreter's own default: what the C stack of every supported platform holds.
SANE_RECURSION_LIMIT = 1000


def restore_recursion_limit(limit: int = SANE_RECURSION_LIMIT) -> int:
    """Undo py_ecc's import-time ``sys.setrecursionlimit(100000)``; returns the limit now.

    eth-account imports py_ecc (through eth-keyfile), which raises the limit so far that a
    deeply nested structure overflows the C stack and the process dies with SIGSEGV instead
    of raising ``RecursionError``. py_ecc is imported here first, so its side effect happens
    now and not later behind our back; entry points (the API app, the CLIs) call this again.
    """
    # A future eth-account without py_ecc: nothing to undo.
    with contextlib.suppress(ImportError):
        import py_ecc  # noqa: F401  (imported for its side effect, which is then undone)
    if sys.getrecursionlimit() > limit:
        sys.setrecursionlimit(limit)
    return sys.getrecursionlimit()


restore_recursion_limit()
