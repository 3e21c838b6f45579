"""Our EIP-712 digests equal the contract's and eth-account's, field by field."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from _ledger_world import FAR_FUTURE, World
from eth_account import Account
from eth_utils.crypto import keccak

from ledger import eip712
from ledger.errors import LedgerError
from ledger.models import AccessRequest, GrantTerms

GRANT_ID = b"\x42" * 32


def test_signing_uses_coincurve() -> None:
    assert eip712.signing_backend() == "CoinCurveECCBackend"


def test_domain_separator_matches_contract(world: World) -> None:
    on_chain = world.gov.read(world.gov.calls.domain_separator())
    assert on_chain == world.domain.separator
    # eth-account's own domain hash (the first 32 bytes after 0x1901 of the encoded message).
    document = eip712.typed_data(
        world.domain, "RevokeConsent", eip712.status_message(GRANT_ID, 0, 1)
    )
    from eth_account.messages import encode_typed_data

    assert encode_typed_data(full_message=document).header == on_chain


def _grant_variants(base: GrantTerms) -> list[tuple[str, GrantTerms, int, int]]:
    out = [("base", base, 5, FAR_FUTURE)]
    changes: dict[str, Any] = {
        "asset_id": b"\x01" * 32,
        "grantee": "0x000000000000000000000000000000000000dEaD",
        "purpose": 2**32 - 1,
        "fields_mask": 2**64 - 1,
        "not_before": 123,
        "expiry": 2**64 - 1,
        "max_uses": 65535,
        "retention": 2**32 - 1,
    }
    for field, value in changes.items():
        out.append((field, dataclasses.replace(base, **{field: value}), 5, FAR_FUTURE))
    out.append(("nonce", base, 2**256 - 1, FAR_FUTURE))
    out.append(("deadline", base, 5, 1))
    return out


def test_grant_digest_field_by_field(world: World) -> None:
    seen = set()
    for field, terms, nonce, deadline in _grant_variants(world.terms()):
        contract = world.gov.read(world.gov.calls.hash_grant(terms, nonce, deadline))
        reference = eip712.reference_digest(
            eip712.typed_data(
                world.domain, "GrantConsent", eip712.grant_message(terms, nonce, deadline)
            )
        )
        fast = eip712.grant_digest(world.domain, terms, nonce, deadline)
        assert contract == reference == fast, field
        seen.add(contract)
    assert len(seen) == len(_grant_variants(world.terms())), "a field does not reach the digest"


@pytest.mark.parametrize("kind", ["RevokeConsent", "PauseConsent", "ResumeConsent"])
def test_status_digests(world: World, kind: eip712.StatusKind) -> None:
    view = {
        "RevokeConsent": world.gov.calls.hash_revoke,
        "PauseConsent": world.gov.calls.hash_pause,
        "ResumeConsent": world.gov.calls.hash_resume,
    }[kind]
    seen = set()
    for grant_id, nonce, deadline in [
        (GRANT_ID, 0, FAR_FUTURE),
        (b"\x43" * 32, 0, FAR_FUTURE),
        (GRANT_ID, 1, FAR_FUTURE),
        (GRANT_ID, 0, 7),
    ]:
        contract = world.gov.read(view(grant_id, nonce, deadline))
        reference = eip712.reference_digest(
            eip712.typed_data(world.domain, kind, eip712.status_message(grant_id, nonce, deadline))
        )
        assert (
            contract
            == reference
            == eip712.status_digest(world.domain, kind, grant_id, nonce, deadline)
        )
        seen.add(contract)
    assert len(seen) == 4


def test_access_request_digest_field_by_field(world: World) -> None:
    base = AccessRequest(GRANT_ID, 0b11, 9, FAR_FUTURE)
    variants = [
        base,
        dataclasses.replace(base, grant_id=b"\x01" * 32),
        dataclasses.replace(base, fields_mask=2**64 - 1),
        dataclasses.replace(base, nonce=2**255),
        dataclasses.replace(base, deadline=0),
    ]
    seen = set()
    for request in variants:
        contract = world.gov.read(world.gov.calls.hash_access_request(request))
        reference = eip712.reference_digest(
            eip712.typed_data(world.domain, "AccessRequest", eip712.access_message(request))
        )
        assert contract == reference == eip712.access_digest(world.domain, request)
        seen.add(contract)
    assert len(seen) == len(variants)


def test_key_binding_digest_field_by_field(world: World) -> None:
    account = Account.from_key(world.subject_key).address
    base = (account, b"\x11" * 32, b"proof", 1, FAR_FUTURE)
    variants = [
        base,
        (Account.from_key(world.bank_key).address, *base[1:]),
        (base[0], b"\x12" * 32, *base[2:]),
        (*base[:2], b"other proof", *base[3:]),
        (*base[:3], 2**32 - 1, base[4]),
        (*base[:4], 0),
    ]
    seen = set()
    for acct, key_hash, proof, version, deadline in variants:
        contract = world.gov.read(
            world.gov.calls.hash_key_binding(acct, key_hash, keccak(proof), version, deadline)
        )
        reference = eip712.reference_digest(
            eip712.typed_data(
                world.domain,
                "KeyBinding",
                eip712.key_binding_message(acct, key_hash, proof, version, deadline),
            )
        )
        fast = eip712.key_binding_digest(world.domain, acct, key_hash, proof, version, deadline)
        assert contract == reference == fast
        seen.add(contract)
    assert len(seen) == len(variants)
    signed = eip712.sign_key_binding(world.subject_key, world.domain, *base[1:])
    assert signed.account == account
    assert (
        eip712.recover(eip712.key_binding_digest(world.domain, *base), signed.signature) == account
    )


def test_type_strings_hash_to_contract_typehashes() -> None:
    # The contract's type strings, as documented in docs/contracts.md.
    assert eip712.type_string("GrantConsent") == (
        "GrantConsent(bytes32 assetId,address grantee,uint32 purpose,uint64 fieldsMask,"
        "uint64 notBefore,uint64 expiry,uint32 maxUses,uint32 retention,uint256 nonce,"
        "uint64 deadline)"
    )
    assert eip712.type_string("RecallAcknowledgement") == (
        "RecallAcknowledgement(bytes32 grantId,uint32 uses,uint64 at)"
    )
    assert eip712.type_string("DeletionAcknowledgement") == (
        "DeletionAcknowledgement(bytes32 grantId,uint32 uses,uint64 at)"
    )
    assert eip712.type_string("AccessRequest") == (
        "AccessRequest(bytes32 grantId,uint64 fieldsMask,uint256 nonce,uint64 deadline)"
    )
    assert eip712.type_string("KeyBinding") == (
        "KeyBinding(address account,bytes32 keyHash,bytes32 keyProofHash,uint32 keyVersion,"
        "uint64 deadline)"
    )


def test_signatures_match_eth_account_and_recover(world: World) -> None:
    terms = world.terms()
    signed = eip712.sign_grant(world.subject_key, world.domain, terms, 3, FAR_FUTURE)
    document = eip712.typed_data(
        world.domain, "GrantConsent", eip712.grant_message(terms, 3, FAR_FUTURE)
    )
    # RFC 6979 signing is deterministic: both signers produce the same bytes.
    assert signed.signature == eip712.sign_typed_data_reference(world.subject_key, document)
    digest = eip712.grant_digest(world.domain, terms, 3, FAR_FUTURE)
    assert eip712.recover(digest, signed.signature) == world.subject
    assert signed.grantor == Account.from_key(world.subject_key).address
    s = int.from_bytes(signed.signature[32:64], "big")
    assert s <= 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


def test_bad_inputs_raise_ledger_errors() -> None:
    with pytest.raises(LedgerError):
        eip712.sign_digest("0x1234", b"\0" * 32)
    with pytest.raises(LedgerError):
        eip712.recover(b"\0" * 32, b"\0" * 64)


def test_packed_access_item_layout() -> None:
    key = b"\x07" * 32
    domain = eip712.ledger_domain(31337, "0x" + "11" * 20)
    request = AccessRequest(GRANT_ID, 0b1011, 2**200 + 5, 1_900_000_000)
    sig = eip712.sign_access_request(key, domain, request)
    item = eip712.pack_access_batch([request], [sig])
    assert len(item) == eip712.ACCESS_ITEM_SIZE
    assert item[0:32] == GRANT_ID
    assert int.from_bytes(item[32:40], "big") == 0b1011
    assert int.from_bytes(item[40:72], "big") == 2**200 + 5
    assert int.from_bytes(item[72:80], "big") == 1_900_000_000
    assert item[80:112] == sig[:32]
    vs = int.from_bytes(item[112:144], "big")
    assert vs >> 255 == sig[64] - 27
    assert (vs & (2**255 - 1)).to_bytes(32, "big") == sig[32:64]
    assert eip712.pack_access_batch([request] * 3, [sig] * 3) == item * 3


@pytest.mark.parametrize(
    "bad",
    [
        b"\x01" * 64,  # already compact, or cut
        b"\x01" * 64 + b"\x00",  # v = 0
        b"\x01" * 32
        + (0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A1).to_bytes(32, "big")
        + b"\x1b",  # s = n/2 + 1
    ],
)
def test_compact_signature_refuses_what_the_contract_refuses(bad: bytes) -> None:
    with pytest.raises(eip712.SignatureFormatError):
        eip712.compact_signature(bad)


def test_pack_access_batch_refuses_mismatch_and_out_of_range() -> None:
    request = AccessRequest(GRANT_ID, 1, 1, 1)
    sig = b"\x01" * 64 + b"\x1b"
    with pytest.raises(LedgerError):
        eip712.pack_access_batch([request], [])
    with pytest.raises(LedgerError):
        eip712.pack_access_batch([dataclasses.replace(request, fields_mask=2**64)], [sig])
    with pytest.raises(LedgerError):
        eip712.pack_access_batch([dataclasses.replace(request, grant_id=b"\x01")], [sig])
