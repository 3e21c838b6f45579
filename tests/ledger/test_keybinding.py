"""A member's key is the one it bound itself: read from a real chain, checked once."""

from __future__ import annotations

import hashlib

import pytest
from _ledger_world import FAR_FUTURE, World
from eth_account import Account
from eth_utils.crypto import keccak

from ledger import eip712
from ledger.errors import contract_error
from ledger.keybinding import KeyBindingError, check_member_key, read_key_binding
from ledger.models import SignedKeyBinding

PUBLIC = b"DSPK-any-public-key-encoding"
PROOF = b"a proof the verifier accepts"


def _accept(public_key: bytes, proof: bytes, *, chain_id: int, ledger: str, account: str) -> bool:
    return proof == PROOF


def _refuse(public_key: bytes, proof: bytes, *, chain_id: int, ledger: str, account: str) -> bool:
    return False


def _bind(world: World, signer_key: str, account: str, key_hash: bytes, proof: bytes) -> None:
    """``signer_key`` signs a KeyBinding naming ``account``; the governor relays (and pays)."""
    version = world.gov.get_member(account).key_version + 1
    digest = eip712.key_binding_digest(world.domain, account, key_hash, proof, version, FAR_FUTURE)
    signature = eip712.sign_digest(signer_key, digest)
    signed = SignedKeyBinding(account, key_hash, proof, version, FAR_FUTURE, signature)
    world.gov.send(world.gov.calls.bind_encryption_key_by_sig(signed))


def test_admission_gives_no_usable_key(world: World) -> None:
    with pytest.raises(KeyBindingError) as err:
        read_key_binding(world.gov, world.subject)
    assert err.value.reason == "no_key"
    with pytest.raises(KeyBindingError) as err:
        read_key_binding(world.gov, Account.create().address)
    assert err.value.reason == "not_member"


def test_member_signed_binding_is_checked_key_proof_and_verifier(world: World) -> None:
    key_hash = hashlib.sha256(PUBLIC).digest()
    _bind(world, world.subject_key, world.subject, key_hash, PROOF)
    binding = check_member_key(world.gov, world.subject, PUBLIC, PROOF, _accept)
    assert binding.key_version == 1
    assert binding.key_proof_hash == keccak(PROOF)
    assert binding.chain_id == world.manifest.chain_id
    assert binding.ledger == world.manifest.ledger_address
    cases = {
        "key_mismatch": (b"another key", PROOF, _accept),
        "proof_mismatch": (PUBLIC, b"another proof", _accept),
        "proof_invalid": (PUBLIC, PROOF, _refuse),
    }
    for reason, (public, proof, verifier) in cases.items():
        with pytest.raises(KeyBindingError) as err:
            check_member_key(world.gov, world.subject, public, proof, verifier)
        assert err.value.reason == reason


def test_governor_cannot_bind_or_replace_a_members_key(world: World) -> None:
    operator_hash = hashlib.sha256(b"the operator's own key").digest()
    governor = Account.from_key(world.governor_key).address
    with pytest.raises(contract_error("MembershipKeySignerMismatch")) as err:
        _bind(world, world.governor_key, world.subject, operator_hash, PROOF)
    assert err.value.fields["recovered"] == governor
    _bind(world, world.subject_key, world.subject, hashlib.sha256(PUBLIC).digest(), PROOF)
    with pytest.raises(contract_error("MembershipKeySignerMismatch")):
        _bind(world, world.governor_key, world.subject, operator_hash, PROOF)
    # the direct form binds the sender's own key only
    world.gov.send(world.gov.calls.bind_encryption_key(operator_hash, PROOF))
    assert read_key_binding(world.gov, world.subject).key_hash == hashlib.sha256(PUBLIC).digest()
    assert read_key_binding(world.gov, governor).key_hash == operator_hash


def test_a_relayed_binding_lands_once(world: World) -> None:
    signed = eip712.sign_key_binding(
        world.bank_key, world.domain, b"\x01" * 32, PROOF, 1, FAR_FUTURE
    )
    world.gov.send(world.gov.calls.bind_encryption_key_by_sig(signed))
    with pytest.raises(contract_error("MembershipKeyVersionMismatch")):
        world.gov.send(world.gov.calls.bind_encryption_key_by_sig(signed))
    assert read_key_binding(world.gov, signed.account).key_version == 1
