"""Translate exceptions of the libraries we compose into :class:`ApiError` problems."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import sqlalchemy.exc
from eth_abi import decode as abi_decode
from eth_hash.auto import keccak

from api import errors

log = logging.getLogger("api.translate")


def library_roots() -> list[type[BaseException]]:
    roots: list[type[BaseException]] = [
        sqlalchemy.exc.SQLAlchemyError,
        aiohttp.ClientError,
        ConnectionError,
        TimeoutError,
        asyncio.TimeoutError,
    ]
    try:
        from ledger.errors import LedgerError  # type: ignore[import-not-found,unused-ignore]

        roots.append(LedgerError)
    except ImportError:  # pragma: no cover - ledger not built yet
        pass
    try:
        from vault.errors import VaultError  # type: ignore[import-not-found,unused-ignore]

        roots.append(VaultError)
    except ImportError:  # pragma: no cover
        pass
    return roots


def translate(exc: BaseException) -> errors.ApiError | None:
    if isinstance(exc, errors.ApiError):
        return exc
    mapped = _translate_ledger(exc) or _translate_vault(exc)
    if mapped is not None:
        return mapped
    if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        return errors.DatabaseUnavailableError()
    if isinstance(exc, sqlalchemy.exc.IntegrityError):
        return errors.ConflictError("the record already exists")
    if isinstance(exc, aiohttp.ClientError | ConnectionError | TimeoutError):
        return errors.ChainUnavailableError()
    return None


def _translate_ledger(exc: BaseException) -> errors.ApiError | None:
    return None


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
    "ConsentAccessRefused(bytes32,uint8)",
    "MembershipUnauthorized(address,uint16)",
    "SignatureInvalid()",
    "SignatureSignerMismatch(address,address)",
    "SignatureExpired(uint64)",
    "AccessNonceUsed(address,uint256)",
    "SchemaAlreadyRegistered(bytes32)",
)


def _error_table() -> dict[bytes, tuple[str, list[str]]]:
    table: dict[bytes, tuple[str, list[str]]] = {}
    for sig in KNOWN_ERRORS:
        name, rest = sig.split("(", 1)
        types = [t for t in rest.rstrip(")").split(",") if t]
        table[keccak(sig.encode())[:4]] = (name, types)
    return table


_ERRORS = _error_table()


def decode_revert_data(data: bytes) -> tuple[str, tuple[object, ...]] | None:
    """(error name, args) for ledger custom-error revert data, or None."""
    try:
        from ledger.errors import decode_revert  # type: ignore[import-not-found,unused-ignore]

        err = decode_revert(data)
        if err is not None:
            return type(err).__name__, tuple(getattr(err, "args", ()))
    except Exception as exc:  # the ledger decoder is optional here; fall back to our table
        log.debug("ledger revert decoder unavailable: %s", exc)
    entry = _ERRORS.get(data[:4])
    if entry is None:
        return None
    name, types = entry
    try:
        args = tuple(abi_decode(types, data[4:])) if types else ()
    except Exception:
        args = ()
    return name, args


#: Contract errors that mean a specific problem rather than a generic rejection.
_REVERT_SLUGS: dict[str, type[errors.ApiError]] = {
    "AssetNotFound": errors.AssetNotFoundError,
    "AssetNotIssuer": errors.NotIssuerError,
    "AssetNotOwner": errors.NotOwnerError,
    "ConsentNotFound": errors.GrantNotFoundError,
    "ConsentNotAuthorized": errors.NotOwnerError,
    "ConsentNotGrantor": errors.NotOwnerError,
    "ConsentGrantExists": errors.ConflictError,
    "AssetAlreadyExists": errors.ConflictError,
    "SchemaAlreadyRegistered": errors.ConflictError,
    "MembershipUnauthorized": errors.RoleRequiredError,
    "SignatureInvalid": errors.BadSignatureError,
    "SignatureSignerMismatch": errors.BadSignatureError,
    "SignatureExpired": errors.RequestSignatureExpiredError,
    "AccessNonceUsed": errors.AccessNonceUsedError,
}


def revert_error(exc: Any, tx_hash: str | None = None) -> errors.ApiError:
    """Problem for a JSON-RPC error carrying revert data (eth_call / eth_estimateGas)."""
    raw = getattr(exc, "data", None)
    if isinstance(raw, dict):
        raw = raw.get("data")
    message = str(getattr(exc, "message", exc))
    extra: dict[str, Any] = {"tx_hash": tx_hash} if tx_hash else {}
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
    name, args = decoded
    if name == "ConsentAccessRefused" and len(args) >= 2:
        return errors.refusal(int(args[1]), **extra)  # type: ignore[call-overload]
    cls = _REVERT_SLUGS.get(name, errors.ContractRejectedError)
    return cls(f"the ledger rejected the call: {name}{args!r}", contract_error=name, **extra)


def _translate_vault(exc: BaseException) -> errors.ApiError | None:
    return None
