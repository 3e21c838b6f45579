"""The ledger tests' world: constants and the populated ``World`` (fixture in conftest.py).

A module of its own, not ``conftest``: test modules import it by name, and a sub-directory's
conftest (tests/ledger/indexer/) would otherwise shadow ``from conftest import ...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account

from ledger.client import LedgerClient
from ledger.eip712 import Domain
from ledger.manifest import Manifest
from ledger.models import GrantTerms

SCHEMA_ID = b"\x5c" * 32
ASSET_ID = b"\xa5" * 32
FAR_FUTURE = 4_000_000_000


@dataclass
class World:
    """Governor (also custodian), issuer, subject, bank, one schema and one anchored asset."""

    url: str
    manifest: Manifest
    gov: LedgerClient
    issuer: LedgerClient
    governor_key: str
    issuer_key: str
    subject_key: str
    bank_key: str
    domain: Domain

    @property
    def subject(self) -> str:
        return str(Account.from_key(self.subject_key).address)

    @property
    def bank(self) -> str:
        return str(Account.from_key(self.bank_key).address)

    def terms(self, **overrides: Any) -> GrantTerms:
        values: dict[str, Any] = {
            "asset_id": ASSET_ID,
            "grantee": self.bank,
            "purpose": 1,
            "fields_mask": 0b101,
            "not_before": 0,
            "expiry": FAR_FUTURE,
            "max_uses": 3,
        }
        values.update(overrides)
        return GrantTerms(**values)
