"""Consent terms in words, for receipts a person can read.

One describer for the service and the clients: the service writes ``terms_text`` with it, and
the wallet writes its own text with it from terms it checked itself (the chain's grant, the
terms it signed, a proposal's terms as its proposer signed them), never showing the
service's ``terms_text`` (:func:`api.bank.checked_terms_text`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol


class Terms(Protocol):
    """Grant terms: the service's model (asset id as 0x-hex) or ledger's (bytes), or a
    :class:`ledger.models.Grant` read from the chain."""

    @property
    def asset_id(self) -> bytes | str: ...
    @property
    def grantee(self) -> str: ...
    @property
    def purpose(self) -> int: ...
    @property
    def fields_mask(self) -> int: ...
    @property
    def not_before(self) -> int: ...
    @property
    def expiry(self) -> int: ...
    @property
    def max_uses(self) -> int: ...
    @property
    def retention(self) -> int: ...


#: Purpose codes of the off-chain catalogue (unknown codes are shown as numbers).
PURPOSES = {
    1: "loan underwriting",
    2: "account opening (KYC)",
    3: "notarial act",
    4: "insurance underwriting",
    5: "employment screening",
    6: "tenancy application",
}


def field_names(mask: int, fields: list[str] | None) -> list[str]:
    known = fields or []
    return [known[i] if i < len(known) else f"field {i}" for i in range(64) if mask >> i & 1]


def _when(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe_terms(t: Terms, fields: list[str] | None, asset: dict[str, Any] | None) -> str:
    """``fields``: the schema's field names (the mask's bits index them); ``asset``: its
    ``version`` and ``issuer``, or None."""
    names = ", ".join(field_names(t.fields_mask, fields))
    purpose = PURPOSES.get(t.purpose, f"purpose code {t.purpose}")
    aid = t.asset_id if isinstance(t.asset_id, str) else "0x" + t.asset_id.hex()
    what = f"asset {aid}"
    if asset is not None:
        what += f" (version {asset['version']}, issued by {asset['issuer']})"
    start = "immediately" if t.not_before == 0 else f"from {_when(t.not_before)}"
    uses = "without a limit on uses" if t.max_uses == 0 else f"at most {t.max_uses} time(s)"
    return (
        f"{t.grantee} may read {names} of {what} for {purpose}, valid {start} "
        f"until {_when(t.expiry)}, {uses}; {retention_words(t.retention)}."
    )


def retention_words(seconds: int) -> str:
    """What the grantee must do with what it read once the grant ends (signed in the terms)."""
    if seconds == 0:
        return "it deletes what it read when the grant ends"
    days, rest = divmod(seconds, 86400)
    span = f"{days} day(s)" if rest == 0 else f"{seconds} second(s)"
    return f"it deletes what it read within {span} of the grant's end"
