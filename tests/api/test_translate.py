"""Library exceptions become problems in one place (api._translate), with the right type."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from eth_hash.auto import keccak

from api import errors
from api._translate import decode_revert_data, translate
from ledger import errors as lerr
from vault import errors as verr


@pytest.mark.parametrize(
    ("exc", "slug", "status"),
    [
        (verr.MalformedInputError("bad cbor"), "invalid_vault_data", 400),
        (verr.UnsupportedVersionError("v9"), "invalid_vault_data", 400),
        (verr.UnknownSuiteError("suite 9"), "invalid_vault_data", 400),
        (verr.InputTooLargeError("too big"), "invalid_vault_data", 400),
        (verr.FieldError("no such field"), "invalid_vault_data", 400),
        (verr.TamperedProofError("root"), "invalid_vault_data", 400),
        (verr.NotFoundError("no blob"), "not_found", 404),
        (verr.BlobCorruptedError("digest"), "vault_unavailable", 503),
        (verr.StoreError("disk"), "vault_unavailable", 503),
        (lerr.RpcUnavailableError("http://node", "down"), "chain_unavailable", 503),
        (lerr.ReceiptTimeoutError("0xab", 5.0), "relay_failed", 503),
        (lerr.ManifestNotFoundError("gone"), "not_ready", 503),
        (lerr.ArtifactDriftError("drift"), "not_ready", 503),
    ],
)
def test_library_errors_map_to_problems(exc: Exception, slug: str, status: int) -> None:
    problem = translate(exc)
    assert problem is not None
    assert (problem.slug, problem.status) == (slug, status)
    assert str(exc) in problem.detail
    if isinstance(exc, verr.VaultError) and status == 400:
        assert problem.extensions["vault_error"] == type(exc).__name__


def test_contract_reverts_decode_by_selector() -> None:
    grant_id = b"\x11" * 32
    data = keccak(b"ConsentNotFound(bytes32)")[:4] + encode(["bytes32"], [grant_id])
    assert decode_revert_data(data) == ("ConsentNotFound", (grant_id,))
    problem = translate(lerr.decode_revert(data))
    assert isinstance(problem, errors.GrantNotFoundError)
    refused = keccak(b"ConsentAccessRefused(bytes32,uint8)")[:4] + encode(
        ["bytes32", "uint8"], [grant_id, 3]
    )
    assert translate(lerr.decode_revert(refused)).slug == "grant_revoked"  # type: ignore[union-attr]
    assert decode_revert_data(b"\xde\xad\xbe\xef") is None
    unknown = translate(lerr.decode_revert(b"\xde\xad\xbe\xef"))
    assert unknown is not None and unknown.slug == "contract_rejected"


def test_unknown_exceptions_are_not_guessed() -> None:
    assert translate(RuntimeError("boom")) is None
    own = errors.ConflictError("x")
    assert translate(own) is own
