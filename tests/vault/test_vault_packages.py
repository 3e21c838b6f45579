"""Key packages and disclosures: grants open for their grantee only, and only for F."""

from __future__ import annotations

import dataclasses

import cbor2
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault import wire
from vault.errors import (
    FieldError,
    InputTooLargeError,
    MalformedInputError,
    TamperedCiphertextError,
    TamperedProofError,
    VaultError,
    WrongKeyError,
)
from vault.keys import EncryptionKeyPair, Keyring, Suite
from vault.limits import Limits
from vault.merkle import MerkleProof
from vault.packages import (
    Anchor,
    DisclosedField,
    Disclosure,
    KeyPackage,
    build_disclosure,
    build_key_package,
    fields_mask,
    open_disclosure,
    open_key_package,
    rewrap_key_package,
)
from vault.sealing import SealedAsset, field_aad, seal_asset

GRANT = b"\x42" * 32
ISSUER = b"\x11" * 20
GRANTED = ["income", "name"]


@pytest.fixture(scope="module")
def package(
    sealed: SealedAsset, owner: EncryptionKeyPair, grantee: EncryptionKeyPair
) -> KeyPackage:
    return build_key_package(
        sealed, owner, grant_id=GRANT, fields=GRANTED, grantee_key=grantee.public_key
    )


@pytest.fixture(scope="module")
def disclosure(sealed: SealedAsset, package: KeyPackage) -> Disclosure:
    return build_disclosure(sealed, package, anchor=Anchor(sealed.root, ISSUER, 1234))


def test_grantee_opens_exactly_the_granted_fields(
    sealed: SealedAsset, disclosure: Disclosure, grantee: EncryptionKeyPair
) -> None:
    wire_bytes = disclosure.to_bytes()
    again = Disclosure.from_bytes(wire_bytes)
    assert again == disclosure
    values = open_disclosure(
        again, grantee, grant_id=GRANT, expected_root=sealed.root, expected_issuer=ISSUER
    )
    assert values == {"name": b"Alice Zhang", "income": b"123456.78"}
    assert list(values) == ["name", "income"]  # schema order, whatever order was asked


def test_open_key_package_with_the_whole_asset(
    sealed: SealedAsset, package: KeyPackage, grantee: EncryptionKeyPair
) -> None:
    got = open_key_package(sealed, package, grantee, grant_id=GRANT, expected_root=sealed.root)
    assert set(got) == set(GRANTED)


def test_package_wire_round_trip(package: KeyPackage) -> None:
    assert KeyPackage.from_bytes(package.to_bytes()) == package
    with pytest.raises(InputTooLargeError):
        KeyPackage.from_bytes(package.to_bytes(), limits=Limits(max_key_package_bytes=50))


def test_package_for_a_does_not_open_for_b(
    sealed: SealedAsset, disclosure: Disclosure, stranger: EncryptionKeyPair
) -> None:
    with pytest.raises(WrongKeyError):
        open_disclosure(disclosure, stranger, grant_id=GRANT, expected_root=sealed.root)
    # even if B relabels the package as addressed to B's key
    pkg = disclosure.package
    relabelled = dataclasses.replace(
        pkg, wrapped=dataclasses.replace(pkg.wrapped, recipient=stranger.digest())
    )
    with pytest.raises(TamperedCiphertextError):
        open_disclosure(
            dataclasses.replace(disclosure, package=relabelled),
            stranger,
            grant_id=GRANT,
            expected_root=sealed.root,
        )


def test_package_is_bound_to_the_grant_id(
    sealed: SealedAsset, disclosure: Disclosure, grantee: EncryptionKeyPair
) -> None:
    with pytest.raises(WrongKeyError):
        open_disclosure(disclosure, grantee, grant_id=b"\x43" * 32, expected_root=sealed.root)
    relabelled = dataclasses.replace(disclosure.package, grant_id=b"\x43" * 32)
    with pytest.raises(TamperedCiphertextError):
        open_disclosure(
            dataclasses.replace(disclosure, package=relabelled),
            grantee,
            grant_id=b"\x43" * 32,
            expected_root=sealed.root,
        )


def test_package_field_list_is_authenticated(
    sealed: SealedAsset, owner: EncryptionKeyPair, grantee: EncryptionKeyPair, package: KeyPackage
) -> None:
    # claim a third field: the HPKE context no longer matches
    widened = dataclasses.replace(package, field_names=("name", "income", "address"))
    with pytest.raises(TamperedCiphertextError):
        widened.open(grantee, grant_id=GRANT, root=sealed.root)
    renamed = dataclasses.replace(package, field_names=("name", "address"))
    with pytest.raises(TamperedCiphertextError):
        renamed.open(grantee, grant_id=GRANT, root=sealed.root)


def test_fields_outside_the_grant_stay_sealed(
    sealed: SealedAsset, package: KeyPackage, grantee: EncryptionKeyPair
) -> None:
    keys = package.open(grantee, grant_id=GRANT, root=sealed.root)
    assert set(keys) == set(GRANTED)
    outside = [f for f in sealed.fields if f.name not in GRANTED]
    assert outside
    for f in outside:
        for key in keys.values():
            with pytest.raises(InvalidTag):
                AESGCM(key).decrypt(
                    f.nonce, f.ciphertext, field_aad(sealed.asset_id, sealed.version, f.name)
                )
    # and a disclosure that swaps an outside field in is refused
    d = build_disclosure(sealed, package, anchor=Anchor(sealed.root, ISSUER, 1))
    swapped = dataclasses.replace(
        d, fields=(dataclasses.replace(d.fields[0], field=outside[0]), *d.fields[1:])
    )
    with pytest.raises(FieldError):
        open_disclosure(swapped, grantee, grant_id=GRANT, expected_root=sealed.root)


def test_wrong_anchor(
    sealed: SealedAsset, disclosure: Disclosure, grantee: EncryptionKeyPair
) -> None:
    with pytest.raises(TamperedProofError):
        open_disclosure(disclosure, grantee, grant_id=GRANT, expected_root=b"\x00" * 32)
    with pytest.raises(TamperedProofError):
        open_disclosure(
            disclosure,
            grantee,
            grant_id=GRANT,
            expected_root=sealed.root,
            expected_issuer=b"\x22" * 20,
        )


def test_a_reissued_asset_root_does_not_accept_the_old_package(
    owner: EncryptionKeyPair,
    grantee: EncryptionKeyPair,
    sealed: SealedAsset,
    disclosure: Disclosure,
) -> None:
    newer = seal_asset(
        [(f.name, b"v2") for f in sealed.fields],
        asset_id=sealed.asset_id,
        version=sealed.version + 1,
        owner_key=owner.public_key,
    )
    with pytest.raises(TamperedProofError):
        open_disclosure(disclosure, grantee, grant_id=GRANT, expected_root=newer.root)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_flip_in_ciphertext_wrapped_key_salt_proof_or_root_is_detected(
    data: st.DataObject, sealed: SealedAsset, disclosure: Disclosure, grantee: EncryptionKeyPair
) -> None:
    def flip(b: bytes, lo: int = 0, hi: int | None = None) -> bytes:
        hi = len(b) if hi is None else hi
        out = bytearray(b)
        out[data.draw(st.integers(lo, hi - 1))] ^= data.draw(st.integers(1, 255))
        return bytes(out)

    part = data.draw(
        st.sampled_from(
            ["ciphertext", "salt", "nonce", "commitment", "proof", "wrapped", "root", "pkg_root"]
        )
    )
    k = data.draw(st.integers(0, len(disclosure.fields) - 1))
    d = disclosure.fields[k]
    expected_root = sealed.root
    out = disclosure
    if part in ("ciphertext", "salt", "nonce", "commitment", "proof"):
        f, p = d.field, d.proof
        if part == "ciphertext":
            f = dataclasses.replace(f, ciphertext=flip(f.ciphertext))
        elif part == "salt":
            f = dataclasses.replace(f, ciphertext=flip(f.ciphertext, 0, 32))
        elif part == "nonce":
            f = dataclasses.replace(f, nonce=flip(f.nonce))
        elif part == "commitment":
            f = dataclasses.replace(f, commitment=flip(f.commitment))
        else:
            j = data.draw(st.integers(0, len(p.siblings) - 1))
            sibs = list(p.siblings)
            sibs[j] = flip(sibs[j])
            p = MerkleProof(p.index, p.leaf_count, tuple(sibs))
        fields = list(out.fields)
        fields[k] = DisclosedField(f, p)
        out = dataclasses.replace(out, fields=tuple(fields))
    elif part == "wrapped":
        pkg = out.package
        pkg = dataclasses.replace(
            pkg, wrapped=dataclasses.replace(pkg.wrapped, ciphertext=flip(pkg.wrapped.ciphertext))
        )
        out = dataclasses.replace(out, package=pkg)
    elif part == "root":
        expected_root = flip(expected_root)
    else:
        out = dataclasses.replace(
            out, package=dataclasses.replace(out.package, root=flip(out.package.root))
        )
    with pytest.raises(VaultError):
        open_disclosure(out, grantee, grant_id=GRANT, expected_root=expected_root)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_flipped_wire_byte_is_detected_or_only_touches_the_anchor_hints(
    data: st.DataObject, sealed: SealedAsset, disclosure: Disclosure, grantee: EncryptionKeyPair
) -> None:
    blob = bytearray(disclosure.to_bytes())
    blob[data.draw(st.integers(0, len(blob) - 1))] ^= data.draw(st.integers(1, 255))
    try:
        parsed = Disclosure.from_bytes(bytes(blob))
        open_disclosure(
            parsed, grantee, grant_id=GRANT, expected_root=sealed.root, expected_issuer=ISSUER
        )
    except VaultError:
        return
    # Only the block-number hint is unauthenticated (the caller checks it on-chain).
    assert parsed.anchor.block_number != disclosure.anchor.block_number
    assert dataclasses.replace(parsed, anchor=disclosure.anchor) == disclosure


def test_pq_and_x25519_grantees_side_by_side(
    sealed: SealedAsset,
    owner: EncryptionKeyPair,
    pq_grantee: EncryptionKeyPair,
    grantee: EncryptionKeyPair,
) -> None:
    pkg = build_key_package(
        sealed, owner, grant_id=GRANT, fields=["address"], grantee_key=pq_grantee.public_key
    )
    assert pkg.wrapped.suite is Suite.MLKEM768X25519_HKDF_SHA256_AES256GCM
    d = build_disclosure(sealed, pkg, anchor=Anchor(sealed.root, ISSUER, 9))
    assert open_disclosure(
        Disclosure.from_bytes(d.to_bytes()), pq_grantee, grant_id=GRANT, expected_root=sealed.root
    ) == {"address": b"1 Futian Road"}
    with pytest.raises(WrongKeyError):
        open_disclosure(d, grantee, grant_id=GRANT, expected_root=sealed.root)


def test_grantee_key_rotation(
    sealed: SealedAsset, package: KeyPackage, grantee: EncryptionKeyPair
) -> None:
    new = EncryptionKeyPair.generate()
    moved = rewrap_key_package(package, Keyring([grantee]), new.public_key)
    assert set(moved.open(new, grant_id=GRANT, root=sealed.root)) == set(GRANTED)
    with pytest.raises(WrongKeyError):
        moved.open(grantee, grant_id=GRANT, root=sealed.root)


def test_bad_grant_requests(
    sealed: SealedAsset,
    owner: EncryptionKeyPair,
    grantee: EncryptionKeyPair,
    stranger: EncryptionKeyPair,
) -> None:
    pk = grantee.public_key
    with pytest.raises(FieldError):
        build_key_package(sealed, owner, grant_id=GRANT, fields=[], grantee_key=pk)
    with pytest.raises(FieldError):
        build_key_package(sealed, owner, grant_id=GRANT, fields=["name", "name"], grantee_key=pk)
    with pytest.raises(FieldError):
        build_key_package(sealed, owner, grant_id=GRANT, fields=["nope"], grantee_key=pk)
    with pytest.raises(MalformedInputError):
        build_key_package(sealed, owner, grant_id=b"short", fields=["name"], grantee_key=pk)
    with pytest.raises(WrongKeyError):  # only the owner can build packages
        build_key_package(sealed, stranger, grant_id=GRANT, fields=["name"], grantee_key=pk)


def test_disclosure_for_another_asset_version(
    owner: EncryptionKeyPair, sealed: SealedAsset, package: KeyPackage
) -> None:
    other = seal_asset(
        [("name", b"x")], asset_id=sealed.asset_id, version=99, owner_key=owner.public_key
    )
    with pytest.raises(FieldError):
        build_disclosure(other, package, anchor=Anchor(other.root, ISSUER, 1))


def test_malformed_disclosure_wire(disclosure: Disclosure) -> None:
    obj = cbor2.loads(disclosure.to_bytes())
    obj[4] = 10_000
    with pytest.raises(InputTooLargeError):
        Disclosure.from_bytes(wire.encode(obj))
    obj = cbor2.loads(disclosure.to_bytes())
    obj[2] = [b"\x00" * 32, b"\x00" * 19, 1]
    with pytest.raises(MalformedInputError):
        Disclosure.from_bytes(wire.encode(obj))
    with pytest.raises(MalformedInputError):
        Disclosure.from_bytes(disclosure.to_bytes()[:-3])
    with pytest.raises(InputTooLargeError):
        Disclosure.from_bytes(disclosure.to_bytes(), limits=Limits(max_disclosure_bytes=10))


def test_fields_mask_is_the_schema_index(sealed: SealedAsset, package: KeyPackage) -> None:
    # FIELDS order: name(0), id_number(1), income(2), employer(3), address(4)
    assert fields_mask(sealed, ["income", "name"]) == 0b101
    anchor = Anchor(sealed.root, ISSUER, 1)
    assert build_disclosure(sealed, package, anchor=anchor, expected_mask=0b101).fields
    with pytest.raises(FieldError):
        build_disclosure(sealed, package, anchor=anchor, expected_mask=0b111)
    with pytest.raises(FieldError):
        fields_mask(sealed, ["missing"])
