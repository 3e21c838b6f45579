"""Canonical, versioned CBOR wire format (RFC 8949 §4.2.1 core deterministic encoding).

Every structure is a CBOR array whose first two items are a type string and a
version integer, e.g. ``["datasafe/sealed-asset", 1, ...]``. Decoding is strict:

* the size limit is checked before parsing (:class:`InputTooLargeError`);
* bytes must decode completely and re-encode to exactly the same bytes
  (non-canonical or trailing data -> :class:`MalformedInputError`);
* the type string must match and the version must be known
  (:class:`UnsupportedVersionError`);
* element types are checked by the structure's decoder.

Layouts: docs/wire-format.md.
"""

from __future__ import annotations

from typing import Any

import cbor2

from vault._encoding import require_bytes
from vault.errors import InputTooLargeError, MalformedInputError, UnsupportedVersionError

WIRE_VERSION = 1


def encode(obj: Any) -> bytes:
    """Canonical CBOR encoding."""
    return cbor2.dumps(obj, canonical=True)


def decode(data: bytes, *, max_size: int) -> Any:
    """Decode canonical CBOR of at most ``max_size`` bytes, else a typed error."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedInputError("wire input must be bytes")
    data = bytes(data)
    if len(data) > max_size:
        raise InputTooLargeError(f"{len(data)} bytes exceeds the limit of {max_size}")
    if not data:
        raise MalformedInputError("empty input")
    try:
        obj = cbor2.loads(data)
        again = cbor2.dumps(obj, canonical=True)
    except Exception as exc:  # cbor2 raises several unrelated types on bad input
        raise MalformedInputError(f"not valid CBOR: {type(exc).__name__}") from None
    if again != data:
        raise MalformedInputError("not canonical CBOR (or trailing bytes)")
    return obj


def expect_envelope(obj: Any, kind: str, length: int) -> list[Any]:
    """Check ``[kind, version, ...]`` with exactly ``length`` items; return the list."""
    if not isinstance(obj, list) or len(obj) < 2:
        raise MalformedInputError(f"{kind}: expected an array envelope")
    if obj[0] != kind:
        raise MalformedInputError(f"expected {kind!r}, got {obj[0]!r}")
    if obj[1] != WIRE_VERSION or isinstance(obj[1], bool):
        raise UnsupportedVersionError(f"{kind}: unsupported version {obj[1]!r}")
    if len(obj) != length:
        raise MalformedInputError(f"{kind}: expected {length} items, got {len(obj)}")
    return obj


def expect_list(obj: Any, name: str, *, length: int | None = None) -> list[Any]:
    if not isinstance(obj, list):
        raise MalformedInputError(f"{name}: expected an array")
    if length is not None and len(obj) != length:
        raise MalformedInputError(f"{name}: expected {length} items")
    return obj


def expect_uint(obj: Any, name: str) -> int:
    if not isinstance(obj, int) or isinstance(obj, bool) or not 0 <= obj < 2**64:
        raise MalformedInputError(f"{name}: expected an unsigned 64-bit integer")
    return obj


def expect_text(obj: Any, name: str) -> str:
    if not isinstance(obj, str):
        raise MalformedInputError(f"{name}: expected a text string")
    return obj


expect_bytes = require_bytes
