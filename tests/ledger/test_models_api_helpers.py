"""What ledger now provides for the api (pure: no chain): reason words, views, memoised domain."""

from __future__ import annotations

import pytest

from ledger import eip712
from ledger.abi import ledger_abi
from ledger.errors import LedgerError
from ledger.models import (
    REASON_TEXT,
    Asset,
    AssetStatus,
    Member,
    MemberKind,
    MemberStatus,
    Reason,
    Role,
    Schema,
)

ADDR = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"


def test_every_reason_has_words() -> None:
    assert set(REASON_TEXT) == set(Reason)
    assert Reason.REVOKED.text == "the subject revoked the grant"
    assert Reason(12).text == "the grant does not cover the requested fields"


def test_role_names_in_bit_order() -> None:
    m = Member(
        Role.ISSUER | Role.REGISTRAR, MemberKind.DEPARTMENT, MemberStatus.ACTIVE, 1, 0, 1, b"", b""
    )
    assert m.role_names() == ["issuer", "registrar"]
    none = Member(Role(0), MemberKind.NONE, MemberStatus.NONE, 0, 0, 0, b"", b"")
    assert none.role_names() == []


def test_asset_and_schema_exist_only_when_registered() -> None:
    z = b"\0" * 32
    none = Asset.from_tuple((ADDR, 0, 0, ADDR, z, z, z, z, z))
    live = Asset.from_tuple((ADDR, 1, 1, ADDR, z, z, z, z, z))
    assert not none.exists and live.exists and live.status is AssetStatus.ACTIVE
    assert not Schema.from_tuple((ADDR, 0, 0, z)).exists
    assert Schema.from_tuple((ADDR, 3, 5, z)).exists


def test_ledger_domain_memoised_across_address_spellings() -> None:
    a = eip712.ledger_domain(31337, ADDR.lower())
    assert eip712.ledger_domain(31337, ADDR) is a
    assert a.verifying_contract == ADDR
    assert eip712.ledger_domain(1, ADDR) is not a


def test_decode_input_rejects_truncated_calldata_with_ledger_error() -> None:
    fn = ledger_abi().fn("registerSchema")
    good = fn.encode(b"\1" * 32, 3, b"\2" * 32)
    assert fn.decode_input(good) == (b"\1" * 32, 3, b"\2" * 32)
    with pytest.raises(LedgerError, match="cannot decode"):
        fn.decode_input(good[:40])
    with pytest.raises(LedgerError, match="not a registerSchema call"):
        fn.decode_input(b"\0\0\0\0" + good[4:])
