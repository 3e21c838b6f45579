"""Known answers for the wallet's own V3 keystore code, against eth-account and the spec.

The wallet opens and writes keystores without eth-account (start-up time); these tests hold
it to eth-account's answers both ways, plus the negative cases, and check the encryption
keys sealed under the keystore's derivation (one scrypt per command).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from eth_account import Account
from test_wallet_accounts import SPEC_KEY, SPEC_VECTOR

from vault.keys import EncryptionKeyPair
from wallet_cli._home import Home, StoredEncKey, open_enc_key_with, seal_enc_key
from wallet_cli._keyagent import Secret
from wallet_cli._keystore import (
    KeystoreError,
    address_of,
    checksum,
    make_keystore,
    open_keystore,
)
from wallet_cli.errors import WalletError, WrongPassphraseError

#: Web3 Secret Storage's PBKDF2 test vector (password "testpassword", same key as SPEC_KEY).
PBKDF2_VECTOR = {
    "crypto": {
        "cipher": "aes-128-ctr",
        "cipherparams": {"iv": "6087dab2f9fdbbfaddc31a909735c1e6"},
        "ciphertext": "5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46",
        "kdf": "pbkdf2",
        "kdfparams": {
            "c": 262144,
            "dklen": 32,
            "prf": "hmac-sha256",
            "salt": "ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd",
        },
        "mac": "517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2",
    },
    "id": "3198bc9c-6672-5ab3-d995-4942343ae5b6",
    "version": 3,
}


def test_spec_vectors_open() -> None:
    assert open_keystore(SPEC_VECTOR, "testpassword").key.hex() == SPEC_KEY
    assert open_keystore(PBKDF2_VECTOR, "testpassword").key.hex() == SPEC_KEY


@pytest.mark.parametrize("kdf", ["scrypt", "pbkdf2"])
def test_eth_account_keystore_opens_here(kdf: str) -> None:
    key = os.urandom(32)
    ks = Account.encrypt(key, "their pass", kdf=kdf, iterations=1024 if kdf == "scrypt" else 2)
    assert open_keystore(ks, "their pass").key == key
    with pytest.raises(WrongPassphraseError):
        open_keystore(ks, "not their pass")


def test_ours_opens_in_eth_account() -> None:
    key = os.urandom(32)
    ks, opened = make_keystore(key, "our pass", n=1024)
    assert bytes(Account.decrypt(ks, "our pass")) == key
    assert opened.key == key and open_keystore(ks, "our pass").derived == opened.derived
    assert ks["address"] == Account.from_key(key).address[2:].lower()
    assert address_of(key) == Account.from_key(key).address


def test_checksum_matches_eth_utils() -> None:
    from eth_utils.address import to_checksum_address

    for _ in range(50):
        raw = "0x" + os.urandom(20).hex()
        assert checksum(raw) == to_checksum_address(raw)
        assert checksum(raw.upper().replace("0X", "0x")) == to_checksum_address(raw)


def test_tampered_and_foreign_keystores_are_refused() -> None:
    ks, _ = make_keystore(os.urandom(32), "pass", n=1024)
    bad_mac = copy.deepcopy(ks)
    bad_mac["crypto"]["ciphertext"] = "00" + bad_mac["crypto"]["ciphertext"][2:]
    with pytest.raises(WrongPassphraseError):
        open_keystore(bad_mac, "pass")
    for field, value in [("kdf", "argon2"), ("cipher", "aes-256-gcm")]:
        other = copy.deepcopy(ks)
        other["crypto"][field] = value
        with pytest.raises(KeystoreError, match=value):
            open_keystore(other, "pass")
    huge = copy.deepcopy(ks)
    huge["crypto"]["kdfparams"]["n"] = 2**30  # a hostile file must not eat the machine
    with pytest.raises(KeystoreError, match="out of range"):
        open_keystore(huge, "pass")
    with pytest.raises(KeystoreError):
        open_keystore({"version": 3}, "pass")


def test_encryption_keys_open_from_the_keystore_derivation(tmp_path: Path) -> None:
    """New keys open from the keystore's kdf output alone; an old-format key is opened only
    when a record needs it, and only with the passphrase."""
    home = Home(tmp_path)
    p = home.profile("alice")
    key = os.urandom(32)
    ks, opened = make_keystore(key, "pass", n=1024)
    p.save_meta({"address": address_of(key)})
    p.save_keystore(ks)
    legacy = EncryptionKeyPair.generate()
    p.save_enc_keys(
        [
            StoredEncKey(
                digest=legacy.digest().hex(),
                suite=1,
                public_key=legacy.public_key.to_bytes().hex(),
                created=0,
                current=False,
                registered_block=None,
                blob=seal_enc_key(legacy, "pass", p.address, 1024),
            )
        ]
    )
    current = p.add_enc_key(Secret(opened.key, opened.derived))
    assert current.blob["kdf"] == "keystore-hkdf" and "salt" not in current.blob
    assert json.dumps(current.blob).find(opened.derived.hex()) < 0

    no_pass = Secret(opened.key, opened.derived, None)
    ring = p.ring(no_pass)
    assert len(ring) == 2 and legacy.digest() in ring
    assert ring.current.digest().hex() == current.digest  # opened: no passphrase needed
    with pytest.raises(WalletError, match="needs the passphrase"):
        ring.get(legacy.digest())  # proves the old key was not opened up front

    secret = p.open("pass")  # one derivation; keeps the passphrase while an old key is left
    assert secret.key == key and secret.passphrase == "pass"
    assert p.ring(secret).get(legacy.digest()).digest() == legacy.digest()

    wrong = Secret(opened.key, os.urandom(32))
    with pytest.raises(WrongPassphraseError):
        open_enc_key_with(current, wrong, p.address)
    with pytest.raises(WrongPassphraseError):
        p.open("not the pass")
