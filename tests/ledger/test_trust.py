"""Pure parts of ``ledger.trust``: the pin's fingerprint and storage, mask and leaf checks."""

from __future__ import annotations

import dataclasses

import pytest

from ledger.models import Grant, GrantStatus
from ledger.trust import (
    AuditRange,
    PinnedDeployment,
    ServiceContradictedError,
    TrustError,
    check_disclosed_indices,
    check_grant_row,
    fields_hash,
    fingerprint_of,
    names_for_mask,
    normalise_fingerprint,
)

PIN = PinnedDeployment(
    31337,
    "0x5fbdb2315678afecb367f032d93f642f64180aa3",
    "0x" + "ab" * 32,
    "0x" + "cd" * 32,
    7,
)
NAMES = ["name", "id_number", "address", "income", "employer"]


def test_fingerprint_covers_each_fact_and_nothing_else() -> None:
    fp = PIN.fingerprint
    assert len(fp) == 39 and fp.count("-") == 7
    assert fp == fingerprint_of(
        31337, PIN.ledger_address.upper(), "0x" + "AB" * 32, "0x" + "cd" * 32
    )
    others = [
        dataclasses.replace(PIN, chain_id=1),
        dataclasses.replace(PIN, ledger_address="0x" + "11" * 20),
        dataclasses.replace(PIN, genesis_hash="0x" + "ac" * 32),
        dataclasses.replace(PIN, code_hash="0x" + "ce" * 32),
    ]
    assert len({fp, *(o.fingerprint for o in others)}) == 5
    # the scan start is not part of what is pinned
    assert dataclasses.replace(PIN, deploy_block=99).fingerprint == fp


def test_fingerprint_input_forms() -> None:
    raw = PIN.fingerprint.replace("-", "")
    assert normalise_fingerprint(raw.upper()) == PIN.fingerprint
    assert (
        normalise_fingerprint(" ".join(raw[i : i + 4] for i in range(0, 32, 4))) == PIN.fingerprint
    )
    for bad in ("", raw[:-1], raw + "0", "g" * 32):
        with pytest.raises(TrustError):
            normalise_fingerprint(bad)


def test_stored_pin_roundtrips_and_a_tampered_one_is_refused() -> None:
    stored = PIN.to_json()
    assert PinnedDeployment.from_json(stored) == PIN
    with pytest.raises(TrustError, match="fingerprint"):
        PinnedDeployment.from_json(stored | {"ledger_address": "0x" + "22" * 20})
    with pytest.raises(TrustError):
        PinnedDeployment.from_json({"chain_id": 1})
    with pytest.raises(TrustError):
        PinnedDeployment(1, "not an address", "0x" + "00" * 32, "0x" + "00" * 32)


def test_names_for_mask() -> None:
    assert names_for_mask(NAMES, 0b01001) == ["name", "income"]
    with pytest.raises(ServiceContradictedError):
        names_for_mask(NAMES, 1 << 5)
    assert fields_hash(NAMES) != fields_hash(["id_number", "name", *NAMES[2:]])


def test_disclosed_leaves_must_sit_at_the_mask_bits_under_their_names() -> None:
    check_disclosed_indices(NAMES, 0b01001, [(0, "name"), (3, "income")], 5)
    cases = [
        ([(0, "name")], 5),  # a granted leaf missing
        ([(0, "name"), (3, "income"), (4, "employer")], 5),  # one too many
        ([(0, "name"), (2, "income")], 5),  # at another index
        ([(0, "income"), (3, "name")], 5),  # relabelled
        ([(0, "name"), (3, "income")], 6),  # another tree
    ]
    for disclosed, leaves in cases:
        with pytest.raises(ServiceContradictedError) as info:
            check_disclosed_indices(NAMES, 0b01001, disclosed, leaves)
        assert info.value.code == "disclosure_mismatch"


def test_grant_row_against_the_chain() -> None:
    gid = b"\x01" * 32
    grant = Grant(
        b"\x02" * 32,
        "0x" + "33" * 20,
        1,
        0b01001,
        0,
        2_000_000_000,
        3,
        1,
        GrantStatus.ACTIVE,
        retention=86400,
    )
    row = {
        "terms": {
            "asset_id": "0x" + "02" * 32,
            "grantee": "0x" + "33" * 20,
            "purpose": 1,
            "fields_mask": 0b01001,
            "not_before": 0,
            "expiry": 2_000_000_000,
            "max_uses": 3,
            "retention": 86400,
        }
    }
    check_grant_row(grant, row, gid)
    lies = [
        ("fields_mask", 0b01111),
        ("max_uses", 0),
        ("not_before", 1_900_000_000),  # "valid from next year" where the chain says at once
        ("expiry", 2_100_000_000),
        ("retention", 0),
    ]
    for key, value in lies:
        with pytest.raises(ServiceContradictedError) as info:
            check_grant_row(grant, {"terms": row["terms"] | {key: value}}, gid)
        assert info.value.code == "grant_row_mismatch"
    with pytest.raises(ServiceContradictedError) as info:
        check_grant_row(dataclasses.replace(grant, status=GrantStatus.NONE), row, gid)
    assert info.value.code == "grant_not_on_chain"


def test_audit_range_counts_the_index_lag() -> None:
    assert AuditRange(1, 50, 50, 50).index_behind == 0
    assert AuditRange(1, 50, 50, 41).index_behind == 9
    assert AuditRange(1, 50, 50, None).index_behind == 50
