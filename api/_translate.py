"""Translate exceptions of the libraries we compose into :class:`ApiError` problems.

This is the one place where ``ledger.errors.LedgerError``, ``vault.errors.VaultError``,
SQLAlchemy and aiohttp exceptions become problems; routes let them propagate (or call
:func:`translate` when they need the problem in hand).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import sqlalchemy.exc

from api import errors
from ledger import errors as lerr
from vault import errors as verr

log = logging.getLogger("api.translate")


def library_roots() -> list[type[BaseException]]:
    return [
        sqlalchemy.exc.SQLAlchemyError,
        aiohttp.ClientError,
        ConnectionError,
        TimeoutError,
        asyncio.TimeoutError,
        lerr.LedgerError,
        verr.VaultError,
    ]


def translate(exc: BaseException) -> errors.ApiError | None:
    if isinstance(exc, errors.ApiError):
        return exc
    if isinstance(exc, lerr.LedgerError):
        return _translate_ledger(exc)
    if isinstance(exc, verr.VaultError):
        return _translate_vault(exc)
    if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        return errors.DatabaseUnavailableError()
    if isinstance(exc, sqlalchemy.exc.IntegrityError):
        return errors.ConflictError("the record already exists")
    if isinstance(exc, aiohttp.ClientError | ConnectionError | TimeoutError):
        return errors.ChainUnavailableError()
    return None


def _translate_ledger(exc: lerr.LedgerError) -> errors.ApiError:
    if isinstance(exc, lerr.ContractRevertError):
        return _revert_problem(exc, {})
    if isinstance(exc, lerr.RpcError):
        return errors.ChainUnavailableError(f"chain node error: {exc}")
    if isinstance(exc, lerr.TransactionError):
        return errors.RelayFailedError(str(exc))
    # manifest, artifact, configuration, chain process: the service is not set up right
    return errors.NotReadyError(f"{type(exc).__name__}: {exc}")


def _translate_vault(exc: verr.VaultError) -> errors.ApiError:
    detail = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, verr.NotFoundError):
        return errors.NotFoundError(detail)
    if isinstance(exc, verr.StoreError):
        return errors.VaultStoreError(detail)
    # malformed / too large / unknown version or suite / bad field names / a proof or digest
    # that does not verify: the client sent bytes that are not what they claim to be
    return errors.InvalidVaultDataError(detail, vault_error=type(exc).__name__)


#: Custom errors the service maps to specific problems (checked against the ABI by a test).
KNOWN_ERRORS = (
    "AssetNotFound(bytes32)",
    "AssetNotIssuer(bytes32,address)",
    "AssetNotOwner(bytes32,address)",
    "AssetAlreadyExists(bytes32)",
    "AssetInvalidStatus(bytes32,uint8)",
    "ConsentNotFound(bytes32)",
    "ConsentNotAuthorized(bytes32,address)",
    "ConsentNotGrantor(bytes32,address)",
    "ConsentGrantExists(bytes32)",
    "ConsentInvalidStatus(bytes32,uint8)",
    "ConsentInvalidWindow(uint64,uint64)",
    "ConsentAssetNotActive(bytes32,uint8)",
    "ConsentAccessRefused(bytes32,uint8)",
    "MembershipUnauthorized(address,uint16)",
    "SignatureInvalid()",
    "SignatureSignerMismatch(address,address)",
    "SignatureExpired(uint64)",
    "AccessNonceUsed(address,uint256)",
    "SchemaAlreadyRegistered(bytes32)",
    "SchemaNotOwner(bytes32,address)",
    "SchemaIssuerNotAuthorized(bytes32,address)",
    "MembershipNotActive(address)",
    "MembershipSuspensionAuthority(address,uint16,address)",
    "MembershipInvalidGovernor(address)",
)


def decode_revert_data(data: bytes) -> tuple[str, tuple[object, ...]] | None:
    """(error name, args) for ledger custom-error revert data (ledger's ABI registry), or None."""
    err = lerr.decode_revert(data)
    if isinstance(err, lerr.UnknownRevertError) or not err.error_name:
        return None
    return err.error_name, tuple(err.args)


#: Contract errors that mean a specific problem rather than a generic rejection.
_REVERT_SLUGS: dict[str, type[errors.ApiError]] = {
    "AssetNotFound": errors.AssetNotFoundError,
    "AssetNotIssuer": errors.NotIssuerError,
    "AssetNotOwner": errors.NotOwnerError,
    "ConsentNotFound": errors.GrantNotFoundError,
    "ConsentNotAuthorized": errors.NotOwnerError,
    "ConsentNotGrantor": errors.NotOwnerError,
    "ConsentGrantExists": errors.ConflictError,
    # Backstops of api.prechecks (the state changed between the pre-check and the call).
    "ConsentInvalidWindow": errors.GrantWindowInvalidError,
    "ConsentAssetNotActive": errors.AssetNotActiveError,
    "AssetAlreadyExists": errors.ConflictError,
    "SchemaAlreadyRegistered": errors.ConflictError,
    "MembershipUnauthorized": errors.RoleRequiredError,
    "MembershipNotActive": errors.MemberSuspendedError,
    "MembershipSuspensionAuthority": errors.SuspensionAuthorityError,
    "MembershipInvalidGovernor": errors.InvalidGovernorError,
    "SchemaNotOwner": errors.NotIssuerError,
    "SchemaIssuerNotAuthorized": errors.NotIssuerError,
    "SignatureInvalid": errors.BadSignatureError,
    "SignatureSignerMismatch": errors.BadSignatureError,
    "SignatureExpired": errors.RequestSignatureExpiredError,
    "AccessNonceUsed": errors.AccessNonceUsedError,
    # The sealed-access companion (ledger.sealed).
    "SealedNotDepartment": errors.NotIssuerError,
    "SealedNotAssetIssuer": errors.NotIssuerError,
    "SealedUnknownAsset": errors.AssetNotFoundError,
    "SealedInvalidUnsealDate": errors.SealInvalidError,
    "SealedZeroCommitment": errors.SealInvalidError,
    "SealedNotFound": errors.SealNotFoundError,
    "SealedAlreadyUnsealed": errors.SealClosedError,
    "SealedNotRegulator": errors.RoleRequiredError,
    "SealedSameAuthority": errors.SealExtensionRefusedError,
    "SealedExtensionTooLate": errors.SealExtensionRefusedError,
    "SealedZeroReason": errors.SealExtensionRefusedError,
    "SealedTooEarly": errors.SealTooEarlyError,
    "SealedOpeningMismatch": errors.SealOpeningMismatchError,
    # The claims companion (issue 17).
    "ClaimsSignerMismatch": errors.ClaimSignatureInvalidError,
    "ClaimsExpired": errors.ClaimExpiredError,
    "ClaimsInvalidNonce": errors.ClaimNonceError,
    "ClaimsNotFound": errors.ClaimNotFoundError,
    "ClaimsNotOpen": errors.ClaimClosedError,
    "ClaimsNotClaimDepartment": errors.ClaimNotDepartmentError,
    "ClaimsNotSubject": errors.ClaimRejectedError,
    "ClaimsNotDepartment": errors.ClaimRejectedError,
    "ClaimsSchemaNotIssued": errors.ClaimRejectedError,
    "ClaimsZeroReference": errors.ClaimRejectedError,
    "ClaimsAssetMismatch": errors.ClaimRejectedError,
    "ClaimsAssetAlreadyLinked": errors.ClaimRejectedError,
    "ClaimsZeroReasonCode": errors.ClaimRejectedError,
    "ClaimsRelayerNotMember": errors.NotReadyError,
}


def revert_error(exc: Any, tx_hash: str | None = None) -> errors.ApiError:
    """Problem for a JSON-RPC error answer to eth_call / eth_estimateGas (a revert, mostly)."""
    extra: dict[str, Any] = {"tx_hash": tx_hash} if tx_hash else {}
    if isinstance(exc, lerr.ContractRevertError):  # decoded by ledger's transport
        return _revert_problem(exc, extra)
    raw = getattr(exc, "data", None)
    if isinstance(raw, dict):
        raw = raw.get("data")
    message = str(getattr(exc, "rpc_message", exc))
    data = b""
    if isinstance(raw, str) and raw.startswith("0x"):
        try:
            data = bytes.fromhex(raw[2:])
        except ValueError:
            data = b""
    if not data and "revert" not in message.lower():
        return errors.ChainUnavailableError(f"chain node error: {message}")
    decoded = decode_revert_data(data) if data else None
    if decoded is None:
        selector = "0x" + data[:4].hex() if data else "none"
        return errors.ContractRejectedError(
            f"the ledger rejected the call ({message}; selector {selector})", **extra
        )
    return _named_revert(decoded[0], decoded[1], extra)


def _revert_problem(exc: lerr.ContractRevertError, extra: dict[str, Any]) -> errors.ApiError:
    if isinstance(exc, lerr.UnknownRevertError) and exc.data:
        # A companion's error (claims ...): the registry of the ledger and its companions.
        exc = lerr.decode_revert(bytes(exc.data))
    if not exc.error_name or isinstance(exc, lerr.UnknownRevertError):
        return errors.ContractRejectedError(f"the ledger rejected the call ({exc})", **extra)
    return _named_revert(exc.error_name, tuple(exc.args), extra)


def _named_revert(name: str, args: tuple[object, ...], extra: dict[str, Any]) -> errors.ApiError:
    if name == "ConsentAccessRefused" and len(args) >= 2:
        return errors.refusal(int(str(args[1])), **extra)
    cls = _REVERT_SLUGS.get(name, errors.ContractRejectedError)
    return cls(f"the ledger rejected the call: {name}{args!r}", contract_error=name, **extra)
