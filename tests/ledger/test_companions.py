"""Companion contracts: where the ledger's constructor put them, what code they run, and the
pin, manifest, indexer and audit covering them."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ledger import companions
from ledger.forwarder import forwarder_address
from ledger.manifest import Manifest
from ledger.rpc import RpcClient
from ledger.trust import (
    DeploymentMismatchError,
    PinnedDeployment,
    read_deployment,
    verify_deployment,
)


def test_addresses_follow_the_ledgers_create_nonces(ledger_manifest: Manifest) -> None:
    ledger = ledger_manifest.ledger_address
    assert companions.created_address(ledger, 1) == forwarder_address(ledger)
    assert companions.COMPANIONS[0] == "DataSafeClaims"
    assert companions.companion_address(ledger, "DataSafeClaims") == companions.created_address(
        ledger, 2
    )
    assert companions.log_addresses(ledger) == [
        ledger,
        *companions.companion_addresses(ledger).values(),
    ]
    with pytest.raises(companions.CompanionError, match="not a companion"):
        companions.companion_address(ledger, "DataSafeForwarder")
    with pytest.raises(companions.CompanionError):
        companions.created_address(ledger, 0x80)


def test_manifest_and_pin_record_the_companions(
    anvil_chain: Any, ledger_manifest: Manifest
) -> None:
    ledger = ledger_manifest.ledger_address
    assert ledger_manifest.companions == companions.companion_addresses(ledger)
    assert ledger_manifest.companion_code_hashes == companions.build_code_hashes()
    assert set(companions.companion_addresses(ledger).values()) <= set(
        ledger_manifest.addresses.values()
    )
    with RpcClient(anvil_chain.url) as rpc:
        assert companions.read_code_hashes(rpc, ledger) == companions.build_code_hashes()
        pin = read_deployment(rpc, ledger)
        assert pin.companions == companions.build_code_hashes()
        assert PinnedDeployment.from_json(pin.to_json()) == pin
        assert PinnedDeployment.from_manifest(ledger_manifest).companions == pin.companions
        verify_deployment(rpc, pin)
        other = dataclasses.replace(
            pin, companion_code_hashes=(("DataSafeClaims", "0x" + "ab" * 32),)
        )
        with pytest.raises(DeploymentMismatchError, match="DataSafeClaims runtime code hash"):
            verify_deployment(rpc, other)
        # A pin from before the companions existed checks only what it pinned.
        verify_deployment(rpc, dataclasses.replace(pin, companion_code_hashes=()))
