"""The code shown at the counter (亮码): a one-time grant, signed offline, in a QR code.

The payload is the citizen's EIP-712 ``Grant`` signature with its terms and the grant's
field keys wrapped to the institution, packed in binary and written in RFC 4648 base32
(upper case, no padding, after the prefix ``DS1:``): every character is in the QR
alphanumeric set, and a scanner's text pastes into a shell without quoting.

Binary layout (big-endian), version 1::

    version u8 = 1 | asset_id 32 | grantee 20 | purpose u32 | fields_mask u64
    | expiry u32 | deadline u32 | nonce u64 | signature 65 (r ‖ s ‖ v) | wrapped HPKE ct

``not_before`` is 0 and ``max_uses`` is 1 for every code; the grantor is recovered from
the signature (a code whose terms were altered recovers another address and is refused);
the wrapped ciphertext opens only for this grant, asset, root and grantee (AES-GCM), so
an altered one is refused before anything is submitted.

Nothing here imports the chain, the vault or a QR library: the command functions do.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

from wallet_cli.errors import RefusedError, UserError

PREFIX = "DS1:"
VERSION = 1
_HEAD = struct.Struct(">B32s20sIQIIQ65s")
#: The wrapped field keys: X25519 ``enc`` (32) + one 32-byte key per field + the GCM tag.
_ENC_LEN = 32
_TAG_LEN = 16
MAX_FIELDS = 5
#: The largest payload text (all five fields of the income statement): the bound the QR
#: version in docs/wallet.md is chosen for; the tests hold the codec to it.
MAX_TEXT_LEN = len(PREFIX) + -(-(_HEAD.size + _ENC_LEN + 32 * MAX_FIELDS + _TAG_LEN) * 8 // 5)
#: Error correction "M" (15 % of the code may be smudged or glared): a screen at arm's length.
ERROR = "m"
#: Short-lived by default: the code is signed to be redeemed within minutes, at the counter.
DEFAULT_VALID = "10m"
MAX_VALID_SECONDS = 24 * 3600


class CodeError(RefusedError):
    """A counter code that cannot be redeemed; ``code`` says why (altered, expired, used…)."""

    code = "code_invalid"


@dataclass(frozen=True)
class CounterCode:
    """The decoded payload: a one-time grant's terms, signature and wrapped field keys."""

    asset_id: bytes
    grantee: str
    purpose: int
    fields_mask: int
    expiry: int
    deadline: int
    nonce: int
    signature: bytes
    wrapped: bytes

    def to_bytes(self) -> bytes:
        grantee = bytes.fromhex(self.grantee.removeprefix("0x"))
        head = _HEAD.pack(
            VERSION,
            self.asset_id,
            grantee,
            self.purpose,
            self.fields_mask,
            self.expiry,
            self.deadline,
            self.nonce,
            self.signature,
        )
        return head + self.wrapped

    def to_text(self) -> str:
        return PREFIX + base64.b32encode(self.to_bytes()).decode().rstrip("=")

    @classmethod
    def from_bytes(cls, raw: bytes) -> CounterCode:
        if not raw or raw[0] != VERSION:
            got = raw[0] if raw else "nothing"
            raise CodeError(
                f"this code is of version {got}; this wallet reads version {VERSION} "
                "(update the wallet, or ask for a new code)",
                code="code_version",
            )
        if len(raw) < _HEAD.size + _ENC_LEN + 32 + _TAG_LEN:
            raise CodeError(
                "the code is cut short (a part of it was not scanned)", code="code_altered"
            )
        _, aid, grantee, purpose, mask, expiry, deadline, nonce, sig = _HEAD.unpack_from(raw)
        wrapped = raw[_HEAD.size :]
        if (len(wrapped) - _ENC_LEN - _TAG_LEN) % 32 or mask == 0:
            raise CodeError("the code is malformed (altered or mis-scanned)", code="code_altered")
        if mask.bit_count() != (len(wrapped) - _ENC_LEN - _TAG_LEN) // 32:
            raise CodeError(
                "the code's field list and its keys do not match (altered)", code="code_altered"
            )
        return cls(aid, "0x" + grantee.hex(), purpose, mask, expiry, deadline, nonce, sig, wrapped)

    @classmethod
    def from_text(cls, text: str) -> CounterCode:
        """The payload as a scanner types it (case, spaces and line breaks forgiven)."""
        s = "".join(text.split()).upper()
        if not s.startswith(PREFIX):
            raise UserError(
                f"this is not a DataSafe counter code (it should start with {PREFIX})",
                code="not_a_code",
            )
        body = s[len(PREFIX) :]
        try:
            raw = base64.b32decode(body + "=" * (-len(body) % 8))
        except (binascii.Error, ValueError):
            raise CodeError(
                "the code is not valid base32 (altered or mis-scanned)", code="code_altered"
            ) from None
        return cls.from_bytes(raw)


def check_fresh(code: CounterCode, now: int) -> None:
    """Refuse an expired code before anything is sent (the ledger would refuse it too)."""
    if code.deadline <= now:
        raise CodeError(
            f"the code expired {_ago(now - code.deadline)} ago: ask the citizen to show a new one",
            code="code_expired",
        )


def _ago(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def wrapped_size(n_fields: int) -> int:
    return _ENC_LEN + 32 * n_fields + _TAG_LEN
