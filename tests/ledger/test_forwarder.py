"""The ERC-2771 forwarder and the member directory, against a real chain: digests match
the contract's, the forwarder is recognised by its code, and names come only from its logs."""

from __future__ import annotations

import dataclasses

import pytest
from _ledger_world import FAR_FUTURE, World
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak

from ledger import directory
from ledger import forwarder as fwd
from ledger.calls import Write
from ledger.client import LedgerClient
from ledger.errors import LedgerError
from ledger.rpc import RpcClient
from ledger.trust import (
    DeploymentMismatchError,
    PinnedDeployment,
    read_deployment,
    verify_deployment,
)
from ledger.tx import LocalKeySender


def _request(world: World, data: bytes, nonce: int = 0) -> fwd.ForwardRequest:
    return fwd.ForwardRequest(world.subject, world.manifest.ledger_address, nonce, FAR_FUTURE, data)


def _dispute() -> bytes:
    from _ledger_world import ASSET_ID

    from ledger.abi import ledger_abi

    return ledger_abi().fn("disputeAsset").encode(ASSET_ID, keccak(b"wrong"))


def test_digest_matches_contract_and_reference(world: World) -> None:
    forwarder = fwd.forwarder_address(world.manifest.ledger_address)
    req = _request(world, _dispute(), nonce=7)
    chain_id = world.manifest.chain_id
    ours = fwd.request_digest(chain_id, forwarder, req)
    with RpcClient(world.url) as rpc:
        spec = fwd.forwarder_abi().fn("hashRequest")
        raw = rpc.call(
            "eth_call",
            [{"to": forwarder, "data": "0x" + spec.encode(req.as_tuple()).hex()}, "latest"],
        )
    assert ours == bytes.fromhex(raw[2:])
    reference = encode_typed_data(full_message=fwd.typed_data(chain_id, forwarder, req))
    signed = Account.sign_message(reference, world.subject_key)
    assert fwd.request_signer(chain_id, forwarder, req, bytes(signed.signature)) == world.subject


def test_forwarded_dispute_lands_for_the_owner(world: World) -> None:
    from _ledger_world import ASSET_ID

    from ledger.models import AssetStatus

    with RpcClient(world.url) as rpc:
        forwarder = fwd.read_forwarder(rpc, world.manifest.ledger_address)
        assert fwd.read_nonce(rpc, forwarder, world.subject) == 0
    req = _request(world, _dispute())
    sig = fwd.sign_request(
        bytes.fromhex(world.governor_key[2:]), world.manifest.chain_id, forwarder, req
    )
    spec = fwd.forwarder_abi().fn("execute")
    relay = LedgerClient(world.url, forwarder, sender=LocalKeySender.from_key(world.bank_key))
    try:
        with pytest.raises(LedgerError):  # signed by the governor, not the owner
            relay.send(Write(spec, fwd.encode_execute(req, sig)))
        sig = fwd.sign_request(
            bytes.fromhex(world.subject_key[2:]), world.manifest.chain_id, forwarder, req
        )
        relay.send(Write(spec, fwd.encode_execute(req, sig)))
    finally:
        relay.close()
    assert world.gov.get_asset(ASSET_ID).status == AssetStatus.DISPUTED
    with RpcClient(world.url) as rpc:
        assert fwd.read_nonce(rpc, forwarder, world.subject) == 1


def test_forwarder_is_recognised_by_its_code(world: World) -> None:
    ledger = world.manifest.ledger_address
    assert world.manifest.forwarder_address == fwd.forwarder_address(ledger)
    assert world.manifest.forwarder_code_hash == fwd.forwarder_code_hash()
    with RpcClient(world.url) as rpc:
        pin = read_deployment(rpc, ledger)
        assert pin.forwarder_code_hash == fwd.forwarder_code_hash()
        assert PinnedDeployment.from_json(pin.to_json()) == pin
        verify_deployment(rpc, pin)
        other = dataclasses.replace(pin, forwarder_code_hash="0x" + "ab" * 32)
        with pytest.raises(DeploymentMismatchError, match="forwarder runtime code hash"):
            verify_deployment(rpc, other)
        with pytest.raises(fwd.ForwarderError, match="runs other code"):
            fwd.check_forwarder(rpc, fwd.forwarder_address(ledger), "0x" + "ab" * 32)
        # a contract that is not this ledger has no forwarder it trusts
        with pytest.raises(LedgerError):
            fwd.read_forwarder(rpc, world.bank)


def _name(world: World, key: str, account: str, name: str) -> None:
    forwarder = fwd.forwarder_address(world.manifest.ledger_address)
    client = LedgerClient(world.url, forwarder, sender=LocalKeySender.from_key(key))
    try:
        spec = fwd.forwarder_abi().fn("nameMember")
        client.send(Write(spec, directory.encode_name_member(account, name)))
    finally:
        client.close()


def test_directory_from_logs_with_kind_and_status(world: World) -> None:
    issuer = Account.from_key(world.issuer_key).address
    _name(world, world.governor_key, world.bank, "City Commercial Bank")
    _name(world, world.governor_key, issuer, "Tax Bureau")
    _name(world, world.governor_key, issuer, "Municipal Tax Bureau")  # renamed: the latest stands
    with pytest.raises(LedgerError):  # only the governor names
        _name(world, world.bank_key, world.bank, "Best Bank")
    with pytest.raises(LedgerError):  # only members are named
        _name(world, world.governor_key, Account.create().address, "Nobody")
    with pytest.raises(LedgerError):
        directory.encode_name_member(world.bank, "x" * 97)
    with RpcClient(world.url) as rpc:
        entries = directory.read_directory(rpc, world.manifest.ledger_address)
        found = directory.read_directory(rpc, world.manifest.ledger_address, query="TAX bureau")
    assert [(e.name, e.kind, e.status) for e in entries] == [
        ("City Commercial Bank", "bank", "active"),
        ("Municipal Tax Bureau", "department", "active"),
    ]
    assert [e.address for e in found] == [issuer]
    assert directory.matches("Ｃｉｔｙ Bank", "city")  # width- and case-insensitive
