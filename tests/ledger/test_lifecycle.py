"""Recall and deletion acknowledgements: digests equal the contract's and eth-account's, the
packed batch is what the contract reads, and the chain records and refuses as documented."""

from __future__ import annotations

import dataclasses

import pytest
from _ledger_world import ASSET_ID, FAR_FUTURE, World

from ledger import eip712
from ledger.calls import grant_id_of
from ledger.errors import LedgerError
from ledger.lifecycle import (
    ACK_ITEM_SIZE,
    PRIMARY,
    Acknowledgement,
    SignedAcknowledgement,
    ack_digest,
    deletion_due,
    ended_at,
    has_ended,
    pack_ack_batch,
    recall_owed,
    sign_acknowledgement,
)
from ledger.models import AccessRequest, AckKind, GrantStatus, Reason

GRANT_ID = b"\x42" * 32


@pytest.mark.parametrize("kind", list(AckKind))
def test_ack_digest_field_by_field(world: World, kind: AckKind) -> None:
    base = Acknowledgement(kind, GRANT_ID, 3, 1_750_000_000)
    variants = [
        base,
        dataclasses.replace(base, grant_id=b"\x01" * 32),
        dataclasses.replace(base, uses=2**32 - 1),
        dataclasses.replace(base, at=2**64 - 1),
    ]
    seen = set()
    for ack in variants:
        contract = world.gov.read(world.gov.calls.hash_acknowledgement(ack))
        reference = eip712.reference_digest(
            eip712.typed_data(world.domain, PRIMARY[kind], ack.message())
        )
        assert ack_digest(world.domain, ack) == contract == reference
        seen.add(contract)
    assert len(seen) == len(variants)
    # The kinds are different types: one signature never counts as the other.
    other = AckKind.DELETION if kind is AckKind.RECALL else AckKind.RECALL
    assert ack_digest(world.domain, dataclasses.replace(base, kind=other)) not in seen


def test_pack_layout() -> None:
    ack = Acknowledgement(AckKind.DELETION, GRANT_ID, 5, 0x0102030405060708)
    signed = sign_acknowledgement(b"\x11" * 32, eip712.Domain(1, "0x" + "00" * 20), ack)
    packed = pack_ack_batch([signed, signed])
    assert len(packed) == 2 * ACK_ITEM_SIZE
    assert packed[0] == 2 and packed[1:33] == GRANT_ID
    assert packed[33:37] == (5).to_bytes(4, "big")
    assert packed[37:45] == bytes.fromhex("0102030405060708")
    assert packed[45:109] == eip712.compact_signature(signed.signature)


def test_pack_refuses_bad_fields() -> None:
    sig = bytes(64) + b"\x1b"
    with pytest.raises(LedgerError, match="32 bytes"):
        pack_ack_batch([SignedAcknowledgement(Acknowledgement(AckKind.RECALL, b"\1", 0, 0), sig)])
    with pytest.raises(LedgerError, match="out of range"):
        pack_ack_batch(
            [SignedAcknowledgement(Acknowledgement(AckKind.RECALL, GRANT_ID, 2**32, 0), sig)]
        )


def test_rules() -> None:
    active = GrantStatus.ACTIVE
    assert not has_ended(active, expiry=100, uses=1, max_uses=3, now=99)
    assert has_ended(active, expiry=100, uses=1, max_uses=3, now=100)
    assert has_ended(active, expiry=100, uses=3, max_uses=3, now=50)
    assert not has_ended(active, expiry=100, uses=3, max_uses=0, now=50)
    assert has_ended(GrantStatus.REVOKED, expiry=100, uses=0, max_uses=3, now=50)
    assert not has_ended(GrantStatus.PAUSED, expiry=100, uses=0, max_uses=3, now=50)
    assert ended_at(active, 100, 1, 3, revoked_at=None, last_access_at=None, now=99) is None
    assert ended_at(active, 100, 1, 3, revoked_at=None, last_access_at=None, now=150) == 100
    assert ended_at(GrantStatus.REVOKED, 100, 1, 3, revoked_at=40, last_access_at=30, now=50) == 40
    assert ended_at(active, 100, 3, 3, revoked_at=None, last_access_at=30, now=50) == 30
    assert deletion_due(40, 86400) == 86440
    assert recall_owed(1, superseded=True)
    assert not recall_owed(0, superseded=True)
    assert not recall_owed(4, superseded=False)


def _grant_and_pull(world: World, nonce: int, pulls: int) -> tuple[bytes, int]:
    """A relayed grant (retention one hour) and ``pulls`` accesses; the id and the grant's time."""
    signed = eip712.sign_grant(
        world.subject_key, world.domain, world.terms(retention=3600), nonce, FAR_FUTURE
    )
    receipt = world.gov.send(world.gov.calls.grant_by_sig(signed))
    granted_at = int(receipt.events_named("ConsentGranted")[0].args["timestamp"])
    grant_id = grant_id_of(world.subject, nonce)
    for i in range(pulls):
        request = AccessRequest(grant_id, 0b1, nonce=500 + 10 * nonce + i, deadline=FAR_FUTURE)
        sig = eip712.sign_access_request(world.bank_key, world.domain, request)
        world.gov.send(world.gov.calls.record_access(request, sig))
    return grant_id, granted_at


def test_deletion_and_recall_recorded_and_refused_on_chain(world: World) -> None:
    grant_id, at = _grant_and_pull(world, 21, pulls=2)
    assert world.gov.get_grant(grant_id).retention == 3600

    def sign(key: str, kind: AckKind, uses: int) -> SignedAcknowledgement:
        return sign_acknowledgement(key, world.domain, Acknowledgement(kind, grant_id, uses, at))

    # Live grant, current version: both refused, nothing recorded.
    live = world.gov.send(
        world.gov.calls.acknowledge_batch(
            [sign(world.bank_key, AckKind.DELETION, 2), sign(world.bank_key, AckKind.RECALL, 2)]
        )
    )
    reasons = [e.args["reason"] for e in live.events_named("AcknowledgementRefused")]
    assert reasons == [Reason.GRANT_LIVE, Reason.NOT_RECALLED]
    # The department corrects the record: the bank owes a recall.
    world.issuer.send(
        world.issuer.calls.supersede_asset(ASSET_ID, b"\xa6" * 32, b"\7" * 32, b"\x08" * 32)
    )
    nonce = world.gov.nonces(world.subject)
    revoke = eip712.sign_status_change(
        world.subject_key, world.domain, "RevokeConsent", grant_id, nonce, FAR_FUTURE
    )
    world.gov.send(world.gov.calls.revoke_by_sig(revoke))
    receipt = world.gov.send(
        world.gov.calls.acknowledge_batch(
            [
                sign(world.subject_key, AckKind.DELETION, 2),  # someone else's grant
                sign(world.bank_key, AckKind.RECALL, 2),
                sign(world.bank_key, AckKind.DELETION, 2),
                sign(world.bank_key, AckKind.DELETION, 2),  # replay
            ]
        )
    )
    refused = [e.args["reason"] for e in receipt.events_named("AcknowledgementRefused")]
    assert refused == [Reason.NOT_GRANTEE, Reason.ALREADY_ACKNOWLEDGED]
    (recall,) = receipt.events_named("RecallAcknowledged")
    (deletion,) = receipt.events_named("DeletionAcknowledged")
    # The signed uses equal the grant's count, which no longer moves: the events leave them out.
    assert (recall.args, deletion.args) == ({"grantId": grant_id, "at": at},) * 2
    assert world.gov.get_grant(grant_id).uses == 2
    grant = world.gov.get_grant(grant_id)
    assert grant.acknowledged(AckKind.RECALL) and grant.acknowledged(AckKind.DELETION)
