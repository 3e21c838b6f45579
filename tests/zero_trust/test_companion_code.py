"""A deployment whose companion runs other code is refused, though the ledger's own code is ours.

The ledger's runtime code does not contain its companions (its constructor creates them), so
a ledger built from doctored init code runs the genuine ledger code while a companion at the
derived address does something else; its fingerprint looks like any other deployment's. The
clients check each companion's code against their own build (a pin taken from the chain) or
the pin (a manifest), on the chain they read themselves.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ledger import companions
from ledger.artifacts import load_artifact
from ledger.chain import DEV_PRIVATE_KEYS
from ledger.errors import CodeMismatchError
from ledger.manifest import Manifest, deploy_ledger, verify_manifest
from ledger.rpc import RpcClient
from ledger.trust import (
    DeploymentMismatchError,
    PinnedDeployment,
    pin_from_fingerprint,
    read_deployment,
    verify_deployment,
)
from ledger.tx import LocalKeySender


def _doctored_ledger() -> Any:
    """The ledger's init code with one byte of the embedded DataSafeClaims changed."""
    ledger = load_artifact()
    claims = load_artifact(companions.COMPANIONS[0]).bytecode
    at = ledger.bytecode.find(claims)
    assert at > 0, "the ledger's init code embeds the companion's"
    end = at + len(claims) - 1
    doctored = (
        ledger.bytecode[:end] + bytes([ledger.bytecode[end] ^ 0x01]) + ledger.bytecode[end + 1 :]
    )
    return dataclasses.replace(ledger, bytecode=doctored)


def test_a_companion_with_other_code_is_refused(
    chain_snapshot: Any, ledger_manifest: Manifest
) -> None:
    sender = LocalKeySender.from_key(DEV_PRIVATE_KEYS[5])
    fake = deploy_ledger(chain_snapshot.url, sender, artifact=_doctored_ledger())
    name = companions.COMPANIONS[0]
    with RpcClient(chain_snapshot.url) as rpc:
        honest = read_deployment(rpc, ledger_manifest.ledger_address)
        # The ledger's runtime code is the genuine one (its immutables aside): only the
        # companion it created differs.
        assert fake.companion_code_hashes is not None
        assert fake.companion_code_hashes[name] != companions.companion_code_hash(name)
        with pytest.raises(DeploymentMismatchError, match=f"{name} runtime code hash") as info:
            read_deployment(rpc, fake.ledger_address)
        assert "companion runtime code hash" in info.value.differs
        fingerprint = PinnedDeployment.from_manifest(fake).fingerprint
        with pytest.raises(DeploymentMismatchError, match=name):
            pin_from_fingerprint(rpc, fake.ledger_address, fingerprint)
        with pytest.raises(companions.CompanionError, match="runtime code hash"):
            companions.check_companions(rpc, fake.ledger_address)
        # The fake's own ledger facts (a fingerprint someone confirmed), this build's companions.
        carried = dataclasses.replace(
            honest, ledger_address=fake.ledger_address, code_hash=fake.code_hash
        )
        with pytest.raises(DeploymentMismatchError) as info:
            verify_deployment(rpc, carried)
        assert info.value.differs == ("companion runtime code hash",)
        with pytest.raises(CodeMismatchError):
            verify_manifest(
                rpc,
                ledger_manifest.model_copy(
                    update={
                        "ledger_address": fake.ledger_address,
                        "forwarder_address": fake.forwarder_address,
                        "deploy_tx": fake.deploy_tx,
                        "code_hash": fake.code_hash,
                        "companions": fake.companions,
                    }
                ),
            )
        # The honest deployment passes every one of the same checks.
        verify_deployment(rpc, honest)
        verify_manifest(rpc, ledger_manifest)
        assert companions.check_companions(rpc, ledger_manifest.ledger_address) == (
            companions.companion_addresses(ledger_manifest.ledger_address)
        )
