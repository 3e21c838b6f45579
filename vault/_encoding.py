"""Unambiguous byte encodings shared by the vault (length prefixes, integers)."""

from __future__ import annotations

import struct

from vault.errors import MalformedInputError


def lp(*parts: bytes) -> bytes:
    """Concatenate ``parts`` each prefixed by its length as a 4-byte big-endian integer."""
    return b"".join([b for part in parts for b in (len(part).to_bytes(4, "big"), part)])


def u64(value: int) -> bytes:
    """8-byte big-endian encoding of an unsigned integer."""
    if not 0 <= value < 2**64:
        raise MalformedInputError(f"integer out of range for u64: {value}")
    return struct.pack(">Q", value)


def require_bytes(value: object, name: str, *, length: int | None = None) -> bytes:
    """``value`` as bytes of the expected length, else :class:`MalformedInputError`."""
    if not isinstance(value, bytes):
        raise MalformedInputError(f"{name}: expected bytes, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise MalformedInputError(f"{name}: expected {length} bytes, got {len(value)}")
    return value
