"""Access-request nonces that share the ledger's nonce words.

The ledger keeps a grantee's used access nonces as a bitmap, 256 to a storage word
(``nonce >> 8``). A random nonce opens a fresh word every time: a cold read and a
zero-to-non-zero write, about 22,000 gas more per access. :class:`AccessNonces` runs
through the 256 slots of one word before it draws the next, so all but one access in 256
flip a bit in a word already written. Each word is 64 random bits: two processes (or two
machines) of one grantee do not meet in a word, and a forked child draws its own.
"""

from __future__ import annotations

import os
import secrets
import threading

SLOTS_PER_WORD = 256


class AccessNonces:
    """A thread-safe, fork-aware sequence of access nonces, 256 to a random word."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = -1
        self._word = 0
        self._next = SLOTS_PER_WORD

    def next(self) -> int:
        """The next unused nonce: the following slot of this word, or slot 0 of a fresh one."""
        with self._lock:
            # A forked child holds its parent's position: it must not sign the same nonces.
            if self._next == SLOTS_PER_WORD or self._pid != os.getpid():
                self._pid = os.getpid()
                self._word = secrets.randbits(64)
                self._next = 0
            nonce = self._word * SLOTS_PER_WORD + self._next
            self._next += 1
            return nonce


_PROCESS_NONCES = AccessNonces()


def next_access_nonce() -> int:
    """The process's next access nonce (see :class:`AccessNonces`)."""
    return _PROCESS_NONCES.next()
