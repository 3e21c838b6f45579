"""EIP-55 addresses without eth-utils.

eth-utils imports the whole package for one function (with pydantic and cytoolz behind it,
~0.2 s); every ``datasafe`` command checksums an address before its first network call.
The answers are eth-utils' own (``tests/ledger/test_address.py`` compares them): hex text
with or without ``0x`` (any case, the checksum of mixed-case input is not checked) or 20
raw bytes.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from eth_hash.auto import keccak

_HEX_ADDRESS = re.compile("(0x)?[0-9a-f]{40}", re.IGNORECASE | re.ASCII)


def is_address(value: Any) -> bool:
    """20 bytes, or 40 hex digits with or without ``0x``."""
    if isinstance(value, bytes | bytearray):
        return len(value) == 20
    return isinstance(value, str) and _HEX_ADDRESS.fullmatch(value) is not None


def to_checksum_address(value: str | bytes) -> str:
    """The EIP-55 spelling; :class:`ValueError` for anything :func:`is_address` refuses."""
    if not is_address(value):
        raise ValueError(f"not an address: {value!r}")
    if isinstance(value, str):
        return _checksum(value[-40:].lower())
    return _checksum(bytes(value).hex())


@lru_cache(maxsize=65536)
def _checksum(lower: str) -> str:
    # The same few addresses are checksummed on every read: memoised (one keccak each).
    digest = keccak(lower.encode()).hex()
    return "0x" + "".join(c.upper() if digest[i] in "89abcdef" else c for i, c in enumerate(lower))
