"""Vault fixtures: real keys (generated once per session; key generation is the slow part)."""

from __future__ import annotations

import os

import pytest

from vault.keys import EncryptionKeyPair, Suite
from vault.sealing import SealedAsset, seal_asset

FIELDS: list[tuple[str, bytes]] = [
    ("name", b"Alice Zhang"),
    ("id_number", b"440300199001010000"),
    ("income", b"123456.78"),
    ("employer", b"Shenzhen Water"),
    ("address", b"1 Futian Road"),
]


@pytest.fixture(scope="session")
def owner() -> EncryptionKeyPair:
    return EncryptionKeyPair.generate(Suite.X25519_HKDF_SHA256_AES256GCM)


@pytest.fixture(scope="session")
def grantee() -> EncryptionKeyPair:
    return EncryptionKeyPair.generate(Suite.X25519_HKDF_SHA256_AES256GCM)


@pytest.fixture(scope="session")
def pq_grantee() -> EncryptionKeyPair:
    return EncryptionKeyPair.generate(Suite.MLKEM768X25519_HKDF_SHA256_AES256GCM)


@pytest.fixture(scope="session")
def stranger() -> EncryptionKeyPair:
    return EncryptionKeyPair.generate(Suite.X25519_HKDF_SHA256_AES256GCM)


@pytest.fixture(scope="session")
def sealed(owner: EncryptionKeyPair) -> SealedAsset:
    return seal_asset(FIELDS, asset_id=os.urandom(32), version=3, owner_key=owner.public_key)
