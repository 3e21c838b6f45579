"""Typed client against the real contract: reads, writes, relayed signatures, decoded reverts."""

from __future__ import annotations

import pytest
from _ledger_world import ASSET_ID, FAR_FUTURE, World

from ledger import eip712
from ledger.abi import ledger_abi
from ledger.calls import LedgerCalls, Write, grant_id_of
from ledger.client import AsyncLedgerClient, LedgerClient
from ledger.errors import ContractRevertError, LedgerError, contract_error
from ledger.models import (
    AccessRequest,
    AssetStatus,
    GrantStatus,
    MemberKind,
    MemberStatus,
    Reason,
    Role,
)
from ledger.rpc import AsyncRpcClient


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def test_calls_cover_every_abi_function() -> None:
    abi = ledger_abi()
    methods = {_camel(m) for m in dir(LedgerCalls) if not m.startswith("_")}
    methods |= {"VERSION"} if "version" in dir(LedgerCalls) else set()
    missing = set(abi.functions) - methods
    assert not missing, f"LedgerCalls lacks {sorted(missing)}"


def test_typed_reads(world: World) -> None:
    member = world.gov.get_member(world.subject)
    assert member.kind is MemberKind.INDIVIDUAL
    assert member.status is MemberStatus.ACTIVE
    assert member.roles == Role.SUBJECT
    asset = world.gov.get_asset(ASSET_ID)
    assert asset.owner == world.subject
    assert asset.status is AssetStatus.ACTIVE
    assert asset.version == 1
    assert world.gov.get_schema(asset.schema_id).field_count == 3
    assert world.gov.read(world.gov.calls.version()) == "1.0.0"
    gov, has = world.gov.read_many(
        [world.gov.calls.governor(), world.gov.calls.has_roles(world.bank, Role.CONSUMER)]
    )
    assert gov == world.manifest.governor
    assert has is True


def test_suspension_records_its_authority_in_events_and_reads(world: World) -> None:
    gov = world.gov
    receipt = gov.send(gov.calls.suspend_member(world.bank, b"\x07" * 32))
    (suspended,) = receipt.events_named("MemberSuspended")
    assert suspended.args["authority"] == Role.GOVERNOR
    assert suspended.args["suspendedBy"].lower() == world.manifest.governor.lower()
    assert gov.read(gov.calls.suspension_authority(world.bank)) == Role.GOVERNOR
    receipt = gov.send(gov.calls.reinstate_member(world.bank, b"\x08" * 32))
    (reinstated,) = receipt.events_named("MemberReinstated")
    assert reinstated.args["authority"] == Role.GOVERNOR
    assert gov.read(gov.calls.suspension_authority(world.bank)) == 0
    # a handover to oneself is refused with a decoded error, not a silent loss of the role
    with pytest.raises(contract_error("MembershipInvalidGovernor")):
        gov.send(gov.calls.transfer_governance(world.manifest.governor))


def test_schema_issuers_read_from_chain(world: World) -> None:
    gov = world.gov
    schema_id = gov.get_asset(ASSET_ID).schema_id
    issuer = gov.get_schema(schema_id).issuer
    assert gov.read(gov.calls.is_schema_issuer(schema_id, issuer)) is True
    assert gov.read(gov.calls.is_schema_issuer(schema_id, world.bank)) is False
    # only the registrant decides who else issues under its schema
    with pytest.raises(contract_error("SchemaNotOwner")):
        gov.send(gov.calls.set_schema_issuer(schema_id, world.bank, True))


def test_relayed_grant_access_and_revoke(world: World) -> None:
    terms = world.terms()
    signed = eip712.sign_grant(world.subject_key, world.domain, terms, nonce=7, deadline=FAR_FUTURE)
    receipt = world.gov.send(world.gov.calls.grant_by_sig(signed))
    (granted,) = receipt.events_named("ConsentGranted")
    grant_id = grant_id_of(world.subject, 7)
    assert granted.args["grantId"] == grant_id
    assert world.gov.read(world.gov.calls.grant_id_of(world.subject, 7)) == grant_id
    grant = world.gov.get_grant(grant_id)
    assert grant.status is GrantStatus.ACTIVE
    assert grant.fields_mask == 0b101
    assert world.gov.check(grant_id, world.bank, 0b001).allowed
    refused = world.gov.check(grant_id, world.bank, 0b010)
    assert (refused.allowed, refused.reason) == (False, Reason.FIELDS_NOT_GRANTED)

    request = AccessRequest(grant_id, 0b100, nonce=1, deadline=FAR_FUTURE)
    sig = eip712.sign_access_request(world.bank_key, world.domain, request)
    receipt = world.gov.send(world.gov.calls.record_access(request, sig))
    (accessed,) = receipt.events_named("Accessed")
    assert (accessed.args["nonce"], accessed.args["fieldsMask"]) == (1, 0b100)
    assert not {"use", "custodian", "grantee"} & set(accessed.args)
    assert world.gov.get_grant(grant_id).uses == 1  # limited or not, the first use is counted
    assert world.gov.read(world.gov.calls.is_access_nonce_used(world.bank, 1))

    nonce = world.gov.nonces(world.subject)
    revoke = eip712.sign_status_change(
        world.subject_key, world.domain, "RevokeConsent", grant_id, nonce, FAR_FUTURE
    )
    world.gov.send(world.gov.calls.revoke_by_sig(revoke))
    assert world.gov.check(grant_id, world.bank, 0b001).reason is Reason.REVOKED


def test_packed_access_batch_records_and_refuses_on_chain(world: World) -> None:
    terms = world.terms(fields_mask=0b11)
    signed = eip712.sign_grant(world.subject_key, world.domain, terms, nonce=8, deadline=FAR_FUTURE)
    world.gov.send(world.gov.calls.grant_by_sig(signed))
    grant_id = grant_id_of(world.subject, 8)
    ok = AccessRequest(grant_id, 0b01, nonce=40, deadline=FAR_FUTURE)
    outside = AccessRequest(grant_id, 0b100, nonce=41, deadline=FAR_FUTURE)
    sigs = [eip712.sign_access_request(world.bank_key, world.domain, r) for r in (ok, outside)]
    write = world.gov.calls.record_access_batch([ok, outside], sigs)
    assert len(write.data) == 4 + 64 + 2 * eip712.ACCESS_ITEM_SIZE
    receipt = world.gov.send(write)
    (accessed,) = receipt.events_named("Accessed")
    # The event names no grantee: the grant's own (the signer) is the only one recorded.
    assert (accessed.args["grantId"], accessed.args["nonce"]) == (grant_id, 40)
    assert set(accessed.args) == {"grantId", "fieldsMask", "nonce"}
    (refused,) = receipt.events_named("AccessRefused")
    assert refused.args["reason"] == Reason.FIELDS_NOT_GRANTED
    assert world.gov.read(world.gov.calls.is_access_nonce_used(world.bank, 40))
    assert not world.gov.read(world.gov.calls.is_access_nonce_used(world.bank, 41))


def test_malformed_packed_batch_reverts_with_its_length(world: World) -> None:
    fn = ledger_abi().fn("recordAccessBatch")
    with pytest.raises(contract_error("ConsentMalformedBatch")) as info:
        world.gov.send(Write(fn, fn.encode(b"\x01" * (eip712.ACCESS_ITEM_SIZE + 1))))
    assert info.value.fields["length"] == eip712.ACCESS_ITEM_SIZE + 1


def test_reverting_call_raises_decoded_error_and_sends_nothing(world: World) -> None:
    sender = world.manifest.governor
    nonce_before = world.gov.rpc.call("eth_getTransactionCount", [sender, "latest"])
    block_before = world.gov.rpc.call("eth_blockNumber")
    missing = b"\x99" * 32
    with pytest.raises(contract_error("ConsentNotFound")) as info:
        world.gov.send(world.gov.calls.revoke(missing))
    err = info.value
    assert isinstance(err, ContractRevertError)
    assert isinstance(err, LedgerError)
    assert err.error_name == "ConsentNotFound"
    assert err.args == (missing,)
    assert err.fields == {"grantId": missing}
    assert "ConsentNotFound(grantId=0x9999" in str(err)
    assert world.gov.rpc.call("eth_getTransactionCount", [sender, "latest"]) == nonce_before
    assert world.gov.rpc.call("eth_blockNumber") == block_before


def test_bad_signature_is_rejected_with_named_error(world: World) -> None:
    terms = world.terms()
    # Signed by the bank, claimed for the subject.
    forged = eip712.sign_grant(world.bank_key, world.domain, terms, nonce=1, deadline=FAR_FUTURE)
    claimed = type(forged)(terms, world.subject, 1, FAR_FUTURE, forged.signature)
    with pytest.raises(contract_error("SignatureSignerMismatch")) as info:
        world.gov.send(world.gov.calls.grant_by_sig(claimed))
    assert info.value.fields == {"expected": world.subject, "recovered": world.bank}


def test_encoding_error_is_a_ledger_error() -> None:
    with pytest.raises(LedgerError, match="cannot encode"):
        LedgerCalls().get_grant(b"x" * 33)
    with pytest.raises(LedgerError, match="not an address"):
        LedgerCalls().get_member("0x1234")


async def test_async_client_reads_and_writes(world: World) -> None:
    from ledger.tx import AsyncTxManager, LocalKeySender

    rpc = AsyncRpcClient(world.url)
    tx = AsyncTxManager(rpc, LocalKeySender.from_key(world.subject_key), abi=ledger_abi())
    client = AsyncLedgerClient(rpc, world.manifest.ledger_address, tx=tx)
    try:
        receipt = await client.send(client.calls.grant(world.terms(max_uses=0), 42))
        grant_id = receipt.events_named("ConsentGranted")[0].args["grantId"]
        result = await client.check(grant_id, world.bank, 0b1)
        assert result.allowed and result.reason is Reason.OK
        grants = await client.read_many([client.calls.get_grant(grant_id)] * 3)
        assert {g.status for g in grants} == {GrantStatus.ACTIVE}
        with pytest.raises(contract_error("ConsentGrantExists")):
            await client.send(client.calls.grant(world.terms(), 42))
    finally:
        await client.close()


def test_read_only_client_refuses_to_send(world: World) -> None:
    with (
        LedgerClient(world.url, world.manifest.ledger_address) as client,
        pytest.raises(LedgerError, match="no sender"),
    ):
        client.send(client.calls.revoke(b"\0" * 32))
