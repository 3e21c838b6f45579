"""A passphrase-sealed HPKE key (the demo's wallet homes): round trip, the wallet opens it,
and every wrong input is refused with a typed error."""

from __future__ import annotations

import pytest

from vault.errors import DecryptionError, MalformedInputError
from vault.keyfile import open_private_key, seal_private_key
from vault.keys import EncryptionKeyPair, Suite
from wallet_cli._home import StoredEncKey, open_enc_key

ADDRESS = "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"
N = 2**10  # a fast work factor for tests


@pytest.mark.parametrize("suite", list(Suite))
def test_round_trip_and_the_wallet_opens_it(suite: Suite) -> None:
    pair = EncryptionKeyPair.generate(suite)
    sealed = seal_private_key(pair, "pass", ADDRESS, n=N)
    assert pair.private_bytes().hex() not in str(sealed)
    assert open_private_key(sealed, "pass", ADDRESS.lower()).digest() == pair.digest()
    stored = StoredEncKey(
        digest=pair.digest().hex(),
        suite=int(suite),
        public_key=pair.public_key.to_bytes().hex(),
        created=0,
        current=True,
        registered_block=None,
        blob=sealed,
    )
    assert open_enc_key(stored, "pass", ADDRESS).digest() == pair.digest()


def test_wrong_passphrase_other_member_and_damage_are_refused() -> None:
    pair = EncryptionKeyPair.generate()
    sealed = seal_private_key(pair, "pass", ADDRESS, n=N)
    with pytest.raises(DecryptionError):
        open_private_key(sealed, "wrong", ADDRESS)
    with pytest.raises(DecryptionError):  # bound to its member's address
        open_private_key(sealed, "pass", "0x" + "11" * 20)
    other = EncryptionKeyPair.generate()
    with pytest.raises(DecryptionError):  # bound to its key digest
        open_private_key(sealed | {"digest": other.digest().hex()}, "pass", ADDRESS)
    with pytest.raises(MalformedInputError):
        open_private_key({k: v for k, v in sealed.items() if k != "salt"}, "pass", ADDRESS)
    with pytest.raises(MalformedInputError):
        open_private_key(sealed | {"nonce": "zz"}, "pass", ADDRESS)
