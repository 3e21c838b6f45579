"""The institution's local checks refuse tampered answers (pure: real vault crypto, no I/O)."""

from __future__ import annotations

import base64
import os

import httpx
import pytest

from api.bank import GrantView, _open
from api.client import DataSafeProblemError
from ledger.errors import RpcUnavailableError
from ledger.models import Asset, AssetStatus, Grant, GrantStatus
from vault.keys import EncryptionKeyPair
from vault.packages import Anchor, build_disclosure, build_key_package
from vault.sealing import seal_asset
from wallet_cli._context import translate
from wallet_cli.errors import EXIT_CONTRADICTED, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USER

ISSUER = bytes.fromhex("70997970C51812dc3A010C7d01b50e0d17dc79C8".lower())


def _pulled() -> tuple[dict[str, object], EncryptionKeyPair, bytes, bytes]:
    owner, bank = EncryptionKeyPair.generate(), EncryptionKeyPair.generate()
    aid, gid = os.urandom(32), os.urandom(32)
    sealed = seal_asset(
        [("name", b"Li Wei"), ("income", b"182000"), ("id", b"1101")],
        asset_id=aid,
        version=1,
        owner_key=owner.public_key,
    )
    package = build_key_package(
        sealed, owner, grant_id=gid, fields=["income"], grantee_key=bank.public_key
    )
    disclosure = build_disclosure(sealed, package, anchor=Anchor(sealed.root, ISSUER, 7))
    pulled = {"disclosure": base64.b64encode(disclosure.to_bytes()).decode(), "fields": ["income"]}
    return pulled, bank, gid, sealed.root


SCHEMA = ["name", "income", "id"]


def _view(gid: bytes, mask: int = 0b10) -> GrantView:
    """A grant of ``income`` (bit 1) as the chain would show it."""
    grant = Grant(bytes(32), "0x" + "22" * 20, 1, mask, 0, 0, 1, 0, GrantStatus.ACTIVE)
    asset = Asset(
        "0x" + "33" * 20, AssetStatus.ACTIVE, 1, "0x" + ISSUER.hex(), bytes(32), *[bytes(32)] * 4
    )
    names = [n for i, n in enumerate(SCHEMA) if mask >> i & 1]
    return GrantView(gid, grant, asset, SCHEMA, names, {})


def _refused(exc: BaseException) -> str:
    err = translate(exc)
    assert err is not None and err.exit_code == EXIT_REFUSED
    return err.code


def test_genuine_disclosure_opens_granted_fields_only() -> None:
    pulled, bank, gid, root = _pulled()
    assert _open(_view(gid), pulled, bank, root, "0x" + ISSUER.hex()) == {"income": b"182000"}


def test_leaves_outside_the_grants_mask_on_chain_are_refused() -> None:
    """The disclosure's leaf (income, index 1) is not at a bit the grant on chain allows."""
    pulled, bank, gid, root = _pulled()
    for mask in (0b01, 0b11, 0b100):
        with pytest.raises(Exception) as info:
            _open(_view(gid, mask), pulled, bank, root, "0x" + ISSUER.hex())
        err = translate(info.value)
        assert err is not None and err.exit_code == EXIT_CONTRADICTED
        assert err.code == "disclosure_mismatch"


def test_wrong_root_issuer_grant_or_key_is_refused() -> None:
    pulled, bank, gid, root = _pulled()
    issuer = "0x" + ISSUER.hex()
    cases = [
        (bank, gid, bytes(32), issuer),  # a root other than the anchored one
        (bank, gid, root, "0x" + "11" * 20),  # another issuer
        (bank, os.urandom(32), root, issuer),  # another grant's package
        (EncryptionKeyPair.generate(), gid, root, issuer),  # not our key
    ]
    for keys, g, r, i in cases:
        with pytest.raises(Exception) as info:
            _open(_view(g), pulled, keys, r, i)
        assert _refused(info.value) == "verification_failed"


def test_tampered_ciphertext_is_refused() -> None:
    pulled, bank, gid, root = _pulled()
    raw = bytearray(base64.b64decode(str(pulled["disclosure"])))
    raw[-40] ^= 1
    tampered = {"disclosure": base64.b64encode(bytes(raw)).decode(), "fields": ["income"]}
    with pytest.raises(Exception) as info:
        _open(_view(gid), tampered, bank, root, "0x" + ISSUER.hex())
    assert _refused(info.value) == "verification_failed"


def test_translation_of_library_failures() -> None:
    req = httpx.Request("GET", "http://127.0.0.1:9/v1/assets")
    err = translate(httpx.ConnectError("refused", request=req))
    assert err is not None and err.exit_code == EXIT_UNREACHABLE
    assert "127.0.0.1:9" in str(err)
    err = translate(RpcUnavailableError("http://127.0.0.1:9", "ConnectError"))
    assert err is not None and err.exit_code == EXIT_UNREACHABLE
    err = translate(DataSafeProblemError(404, {"code": "grant_not_found", "detail": "no"}))
    assert err is not None and err.exit_code == EXIT_USER
    err = translate(DataSafeProblemError(403, {"code": "grant_revoked", "detail": "revoked"}))
    assert err is not None and err.exit_code == EXIT_REFUSED and err.code == "grant_revoked"
    err = translate(DataSafeProblemError(503, {"code": "chain_unavailable", "detail": "down"}))
    assert err is not None and err.exit_code == EXIT_UNREACHABLE
    assert translate(KeyError("x")) is None
