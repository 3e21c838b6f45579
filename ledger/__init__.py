"""DataSafe Ledger: ledger package."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence

#: The interpreter's own default: what the C stack of every supported platform holds.
SANE_RECURSION_LIMIT = 1000


def _lower(limit: int = SANE_RECURSION_LIMIT) -> int:
    if sys.getrecursionlimit() > limit:
        sys.setrecursionlimit(limit)
    return sys.getrecursionlimit()


def restore_recursion_limit(limit: int = SANE_RECURSION_LIMIT) -> int:
    """Undo py_ecc's import-time ``sys.setrecursionlimit(100000)``; returns the limit now.

    eth-account imports py_ecc (through eth-keyfile), which raises the limit so far that a
    deeply nested structure overflows the C stack and the process dies with SIGSEGV instead
    of raising ``RecursionError``. Importing ``ledger`` installs :class:`_PyEccGuard`, which
    lowers the limit again right after py_ecc is imported, whenever that happens; py_ecc
    itself is not imported here (it costs ~0.5 s, and the wallet never needs it).
    """
    return _lower(limit)


class _PyEccGuard(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of ``py_ecc`` so its side effect is undone."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "py_ecc":
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        loader = spec.loader if spec is not None else None
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module

        def exec_module(module: types.ModuleType) -> None:
            try:
                original(module)
            finally:
                _lower()

        with contextlib.suppress(AttributeError):
            loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if not any(isinstance(f, _PyEccGuard) for f in sys.meta_path):
    sys.meta_path.insert(0, _PyEccGuard())
restore_recursion_limit()
