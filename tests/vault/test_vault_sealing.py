"""Sealing and opening: round trips, tampering, limits, rotation, nonces."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections import OrderedDict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault import wire
from vault.errors import (
    FieldError,
    InputTooLargeError,
    MalformedInputError,
    TamperedCiphertextError,
    TamperedProofError,
    UnknownSuiteError,
    UnsupportedVersionError,
    VaultError,
    WrongKeyError,
)
from vault.keys import EncryptionKeyPair, Keyring, Suite
from vault.limits import Limits
from vault.merkle import SALT_LEN, merkle_root
from vault.sealing import (
    FieldCiphertext,
    SealedAsset,
    field_key,
    open_asset,
    rewrap_asset,
    seal_asset,
    unwrap_asset_key,
)

FIELDS = [
    ("name", b"Alice Zhang"),
    ("id_number", b"440300199001010000"),
    ("income", b"123456.78"),
    ("employer", b"Shenzhen Water"),
    ("address", b"1 Futian Road"),
]
AID = bytes(range(32))


def test_round_trip_in_schema_order(owner: EncryptionKeyPair, sealed: SealedAsset) -> None:
    opened = open_asset(SealedAsset.from_bytes(sealed.to_bytes()), owner)
    assert list(opened.fields.items()) == FIELDS
    assert sealed.field_names == tuple(n for n, _ in FIELDS)
    assert opened.root == sealed.root == merkle_root(sealed.commitments)
    assert len(sealed.root) == len(sealed.ciphertext_digest) == 32


def test_mapping_input_and_empty_value(owner: EncryptionKeyPair) -> None:
    fields = OrderedDict([("b", b""), ("a", b"x" * 1000)])
    s = seal_asset(fields, asset_id=AID, version=0, owner_key=owner.public_key)
    assert open_asset(s, owner, expected_root=s.root).fields == dict(fields)
    assert s.field_names == ("b", "a")


def test_pq_owner_round_trip() -> None:
    pq = EncryptionKeyPair.generate(Suite.MLKEM768X25519_HKDF_SHA256_AES256GCM)
    s = seal_asset(FIELDS, asset_id=AID, version=1, owner_key=pq.public_key)
    assert s.wrapped_key.suite is Suite.MLKEM768X25519_HKDF_SHA256_AES256GCM
    assert len(s.wrapped_key.ciphertext) == 1168
    assert list(open_asset(s, pq).fields.items()) == FIELDS


def test_wrong_key(sealed: SealedAsset, stranger: EncryptionKeyPair) -> None:
    with pytest.raises(WrongKeyError):
        open_asset(sealed, stranger)


def test_recipient_digest_pointing_at_our_key_still_fails(
    sealed: SealedAsset, stranger: EncryptionKeyPair
) -> None:
    forged = dataclasses.replace(
        sealed,
        wrapped_key=dataclasses.replace(sealed.wrapped_key, recipient=stranger.digest()),
    )
    with pytest.raises(TamperedCiphertextError):
        open_asset(forged, stranger)


def test_expected_root_mismatch(owner: EncryptionKeyPair, sealed: SealedAsset) -> None:
    with pytest.raises(TamperedProofError):
        open_asset(sealed, owner, expected_root=b"\x00" * 32)


def test_field_swap_between_assets_is_detected(owner: EncryptionKeyPair) -> None:
    a = seal_asset(FIELDS, asset_id=AID, version=1, owner_key=owner.public_key)
    b = seal_asset(FIELDS, asset_id=AID, version=2, owner_key=owner.public_key)
    mixed = dataclasses.replace(a, fields=(b.fields[0], *a.fields[1:]))
    with pytest.raises(VaultError):
        open_asset(mixed, owner)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_flipped_byte_in_the_wire_form_is_detected(
    data: st.DataObject, owner: EncryptionKeyPair, sealed: SealedAsset
) -> None:
    blob = bytearray(sealed.to_bytes())
    i = data.draw(st.integers(0, len(blob) - 1))
    blob[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(VaultError):
        open_asset(SealedAsset.from_bytes(bytes(blob)), owner)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_flipped_byte_in_any_component_is_detected(
    data: st.DataObject, owner: EncryptionKeyPair, sealed: SealedAsset
) -> None:
    part = data.draw(
        st.sampled_from(["ciphertext", "salt", "nonce", "commitment", "wrapped", "root", "digest"])
    )
    k = data.draw(st.integers(0, len(sealed.fields) - 1))
    f = sealed.fields[k]

    def flip(b: bytes, lo: int = 0, hi: int | None = None) -> bytes:
        hi = len(b) if hi is None else hi
        j = data.draw(st.integers(lo, hi - 1))
        out = bytearray(b)
        out[j] ^= data.draw(st.integers(1, 255))
        return bytes(out)

    s = sealed
    if part in ("ciphertext", "salt", "nonce", "commitment"):
        if part == "ciphertext":
            nf = dataclasses.replace(f, ciphertext=flip(f.ciphertext))
        elif part == "salt":  # the salt is the first 32 bytes of the field plaintext
            nf = dataclasses.replace(f, ciphertext=flip(f.ciphertext, 0, 32))
        elif part == "nonce":
            nf = dataclasses.replace(f, nonce=flip(f.nonce))
        else:
            nf = dataclasses.replace(f, commitment=flip(f.commitment))
        s = dataclasses.replace(s, fields=(*s.fields[:k], nf, *s.fields[k + 1 :]))
    elif part == "wrapped":
        wk = s.wrapped_key
        s = dataclasses.replace(
            s, wrapped_key=dataclasses.replace(wk, ciphertext=flip(wk.ciphertext))
        )
    elif part == "root":
        s = dataclasses.replace(s, root=flip(s.root))
    else:
        s = dataclasses.replace(s, ciphertext_digest=flip(s.ciphertext_digest))
    with pytest.raises(VaultError):
        open_asset(s, owner)


def test_nonces_and_field_keys_never_repeat(owner: EncryptionKeyPair) -> None:
    seen_nonces: set[bytes] = set()
    seen_keys: set[bytes] = set()
    for version in range(20):
        s = seal_asset(FIELDS, asset_id=AID, version=version % 2, owner_key=owner.public_key)
        asset_key = unwrap_asset_key(s, owner)
        for f in s.fields:
            key = field_key(asset_key, s.asset_id, s.version, f.name)
            assert key not in seen_keys  # each field key encrypts exactly one message
            assert f.nonce not in seen_nonces
            seen_keys.add(key)
            seen_nonces.add(f.nonce)
    assert len(seen_keys) == 20 * len(FIELDS)


def test_rotation_rewrap(owner: EncryptionKeyPair) -> None:
    s = seal_asset(FIELDS, asset_id=AID, version=1, owner_key=owner.public_key)
    new = EncryptionKeyPair.generate(Suite.MLKEM768X25519_HKDF_SHA256_AES256GCM)
    ring = Keyring([owner, new])
    # old packages still open with the old key held in the keyring
    assert open_asset(s, ring).fields == dict(FIELDS)
    moved = rewrap_asset(s, ring, new.public_key)
    assert moved.root == s.root and moved.ciphertext_digest == s.ciphertext_digest
    assert open_asset(moved, new).fields == dict(FIELDS)
    with pytest.raises(WrongKeyError):
        open_asset(moved, owner)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ([], FieldError),
        ([("a", b"1"), ("a", b"2")], FieldError),
        ([("", b"1")], FieldError),
        ([("n" * 200, b"1")], InputTooLargeError),
        ([("a", "text")], MalformedInputError),
        ([("a",)], MalformedInputError),
        ([("\ud800", b"1")], FieldError),
    ],
)
def test_bad_fields(
    owner: EncryptionKeyPair, fields: list[tuple[str, object]], error: type
) -> None:
    with pytest.raises(error):
        seal_asset(fields, asset_id=AID, version=1, owner_key=owner.public_key)  # type: ignore[arg-type]


def test_limits(owner: EncryptionKeyPair, sealed: SealedAsset) -> None:
    small = Limits(max_fields=2, max_field_value_bytes=4, max_sealed_asset_bytes=100)
    with pytest.raises(InputTooLargeError):
        seal_asset(
            [("a", b"12345")], asset_id=AID, version=1, owner_key=owner.public_key, limits=small
        )
    with pytest.raises(InputTooLargeError):
        seal_asset(
            [("a", b""), ("b", b""), ("c", b"")],
            asset_id=AID,
            version=1,
            owner_key=owner.public_key,
            limits=small,
        )
    with pytest.raises(InputTooLargeError):
        SealedAsset.from_bytes(sealed.to_bytes(), limits=small)


def test_bad_context(owner: EncryptionKeyPair) -> None:
    with pytest.raises(MalformedInputError):
        seal_asset(FIELDS, asset_id=b"short", version=1, owner_key=owner.public_key)
    with pytest.raises(MalformedInputError):
        seal_asset(FIELDS, asset_id=AID, version=-1, owner_key=owner.public_key)


def test_truncated_and_malformed_wire(sealed: SealedAsset) -> None:
    data = sealed.to_bytes()
    for cut in (0, 1, 10, len(data) // 2, len(data) - 1):
        with pytest.raises(MalformedInputError):
            SealedAsset.from_bytes(data[:cut])
    with pytest.raises(MalformedInputError):
        SealedAsset.from_bytes(data + b"\x00")
    with pytest.raises(MalformedInputError):
        SealedAsset.from_bytes(wire.encode(["datasafe/key-package", 1]))
    with pytest.raises(MalformedInputError):
        SealedAsset.from_bytes(wire.encode({"a": 1}))


def _reencode(sealed: SealedAsset, index: int, value: object) -> bytes:
    import cbor2

    obj = cbor2.loads(sealed.to_bytes())
    obj[index] = value
    return wire.encode(obj)


def test_unknown_version_and_suite_on_the_wire(sealed: SealedAsset) -> None:
    with pytest.raises(UnsupportedVersionError):
        SealedAsset.from_bytes(_reencode(sealed, 1, 2))
    wk = sealed.wrapped_key
    with pytest.raises(UnknownSuiteError):
        SealedAsset.from_bytes(_reencode(sealed, 4, [99, wk.recipient, wk.ciphertext]))
    with pytest.raises(MalformedInputError):
        SealedAsset.from_bytes(_reencode(sealed, 3, "1"))
    with pytest.raises(MalformedInputError):
        SealedAsset.from_bytes(_reencode(sealed, 5, [["a", b"\x00" * 32, b"\x00" * 11, b""]]))


def test_non_canonical_cbor_is_refused(sealed: SealedAsset) -> None:
    data = sealed.to_bytes()
    # re-encode the version (small int 1 = 0x01) as a one-byte-argument integer 0x18 0x01
    assert data[1:2] == b"\x75"  # text string of length 21 ("datasafe/sealed-asset")
    pos = 1 + 1 + 21
    assert data[pos] == 0x01
    longer = data[:pos] + b"\x18\x01" + data[pos + 1 :]
    with pytest.raises(MalformedInputError):
        SealedAsset.from_bytes(longer)


def test_truncated_field_ciphertext(owner: EncryptionKeyPair, sealed: SealedAsset) -> None:
    f = sealed.fields[0]
    short = FieldCiphertext(f.name, f.commitment, f.nonce, f.ciphertext[:10])
    with pytest.raises(VaultError):
        open_asset(dataclasses.replace(sealed, fields=(short, *sealed.fields[1:])), owner)


def test_no_library_exception_escapes_on_random_bytes(owner: EncryptionKeyPair) -> None:
    for _ in range(200):
        junk = os.urandom(64)
        with pytest.raises(VaultError):
            SealedAsset.from_bytes(junk)


KNOWN_FIELD_KEY_HEX = "42a77c634cd68c6ddf006e54c58807b9f4ffe6a0ade91b4ac5ab991a0eaaac2b"


def test_field_key_fast_path_equals_cryptography_hkdf() -> None:
    """The per-asset HKDF extract shortcut derives exactly cryptography's HKDF keys."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from vault.sealing import field_key, field_key_reference, field_keys

    @settings(max_examples=200, deadline=None)
    @given(
        asset_key=st.binary(min_size=32, max_size=32),
        asset_id=st.binary(min_size=32, max_size=32),
        version=st.integers(min_value=0, max_value=2**64 - 1),
        names=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=8),
    )
    def check(asset_key: bytes, asset_id: bytes, version: int, names: list[str]) -> None:
        expected = [field_key_reference(asset_key, asset_id, version, n) for n in names]
        assert field_keys(asset_key, asset_id, version, names) == expected
        assert [field_key(asset_key, asset_id, version, n) for n in names] == expected

    check()


def test_field_key_known_answer() -> None:
    """A fixed vector, so a change of both paths at once is caught too."""
    from vault.sealing import field_key

    key = field_key(bytes(range(32)), bytes(32), 1, "name")
    assert key.hex() == KNOWN_FIELD_KEY_HEX


def _stream(label: str, n: int) -> bytes:
    return hashlib.shake_256(label.encode()).digest(n)


# Sealed with fixed random bytes by the seal before its rework (main at 71a01c2): the root, and
# sha256 over every field's name, commitment, nonce and ciphertext followed by the root and the
# ciphertext digest. The shapes cross the seal's small/large hashing paths (4,096 bytes).
SEAL_PINS = {
    "ten-102": (
        [(f"field_{i}", _stream(f"v{i}", 102)) for i in range(10)],
        "e068bf0a4eea1b15a7fd504f996ecec3be50245de89d2abd8c40ae36d5fa7959",
        "8e3b0283390c5dc727af02f7bd952ca6970d4b9a1ced5db038bcf751726d895f",
    ),
    "mixed": (
        [
            ("名前", b""),
            ("b", _stream("b", 5000)),
            ("c", _stream("c", 4096)),
            ("d", _stream("d", 4097)),
            ("e", b"x"),
        ],
        "7f0d7138e4c2a0e95762636ccd965332e088e1f3c33ae869c5c0674d1b0b8601",
        "d03e4d3d6f13c72d7af5f371a0e0f287869da5b31e7ac2d01a0a87dda36b8a90",
    ),
    "one": (
        [("only", _stream("only", 33))],
        "52a64c8dc0947f848ab14e0ea7c5124e60c2a7b0aeb8d48abe3f6a9841bd8396",
        "343bcb63533bf8a94d6604f8cc086d992f69ea172e964067c60aac11b9335d18",
    ),
}


@pytest.mark.parametrize("shape", sorted(SEAL_PINS))
def test_seal_output_is_pinned(owner: EncryptionKeyPair, shape: str) -> None:
    """Same fields and random bytes, same sealed bytes: records sealed before still match."""
    from vault.limits import DEFAULT_LIMITS
    from vault.sealing import KEY_LEN, NONCE_LEN, _normalise_fields, _seal

    fields, root_hex, digest_hex = SEAL_PINS[shape]
    randomness = _stream("rand-" + shape, KEY_LEN + (SALT_LEN + NONCE_LEN) * len(fields))
    sealed = _seal(
        _normalise_fields(fields, DEFAULT_LIMITS),
        randomness,
        _stream("id-" + shape, 32),
        7,
        owner.public_key,
    )
    h = hashlib.sha256()
    for f in sealed.fields:
        h.update(f.name.encode() + f.commitment + f.nonce + f.ciphertext)
    h.update(sealed.root + sealed.ciphertext_digest)
    assert (sealed.root.hex(), h.hexdigest()) == (root_hex, digest_hex)
    assert list(open_asset(sealed, owner, expected_root=sealed.root).fields.items()) == fields
