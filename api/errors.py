"""RFC 9457 problem details: one exception root, one stable ``type`` per reason.

Every failure the service reports is an :class:`ApiError` subclass. The
``type`` member is ``urn:datasafe:problem:<slug>``; the slug is also sent as the
``code`` extension so clients can switch on it without parsing the URN. Library
exceptions (ledger, vault, SQLAlchemy) are translated here and only here.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from api._errors_workflows import *  # noqa: F403  (re-exported: callers write errors.ClaimNotFoundError)
from api._problem import PROBLEM_CONTENT_TYPE as PROBLEM_CONTENT_TYPE
from api._problem import PROBLEM_TYPE_PREFIX as PROBLEM_TYPE_PREFIX
from api._problem import ApiError as ApiError
from ledger.models import Reason

# The web framework is imported where responses are made: the node's commands and the
# operator tasks import this module too and serve nothing (that import is most of a second).
if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

log = logging.getLogger("api.errors")


# ---- input ---------------------------------------------------------------------------------


class InvalidRequestError(ApiError):
    slug, status, title = "invalid_request", 422, "The request is malformed"


class NotFoundError(ApiError):
    slug, status, title = "not_found", 404, "No such resource"


class MethodNotAllowedError(ApiError):
    slug, status, title = "method_not_allowed", 405, "Method not allowed"


class PayloadTooLargeError(ApiError):
    slug, status, title = "payload_too_large", 413, "Request body too large"


class BodyTooComplexError(ApiError):
    slug, status, title = (
        "body_too_complex",
        422,
        "The JSON body nests too deep or holds too many values",
    )


class TooManyStreamsError(ApiError):
    slug, status, title = "too_many_streams", 429, "Too many event streams are open"
    retry_after = 30


class ConflictError(ApiError):
    slug, status, title = "conflict", 409, "The request conflicts with the current state"


class EgressRefusedError(ApiError):
    """A webhook target outside the egress policy (``api.egress``); never says why."""

    slug, status, title = "egress_refused", 422, "The target is not reachable from this service"


# ---- authentication ------------------------------------------------------------------------


class _AuthError(ApiError):
    status = 401
    challenge = 'DataSafe-EIP712 realm="datasafe"'


class UnauthenticatedError(_AuthError):
    slug, title = "unauthenticated", "A signed request envelope is required"


class MetricsUnauthenticatedError(ApiError):
    """``/metrics`` without the operator's bearer token (``DATASAFE_API_METRICS_TOKEN``)."""

    slug, status, title = "metrics_unauthenticated", 401, "The metrics bearer token is required"
    challenge = 'Bearer realm="datasafe-metrics"'


class BadSignatureError(_AuthError):
    slug, title = "bad_signature", "The request signature does not match the signer"


class RequestExpiredError(_AuthError):
    slug, title = "request_expired", "The request timestamp is outside the accepted window"


class ReplayedRequestError(_AuthError):
    slug, title = "replayed_request", "This request nonce was already used"


# ---- authorisation (roles and objects) -----------------------------------------------------


class NotMemberError(ApiError):
    slug, status, title = "not_member", 403, "The signer is not a consortium member"


class MemberSuspendedError(ApiError):
    slug, status, title = "member_suspended", 403, "The signer is suspended"


class RoleRequiredError(ApiError):
    slug, status, title = "role_required", 403, "The signer lacks the role this call needs"


class NotOwnerError(ApiError):
    slug, status, title = "not_owner", 403, "Only the subject who owns this asset may do this"


class NotIssuerError(ApiError):
    slug, status, title = "not_issuer", 403, "Only the issuer of this asset or schema may do this"


class NotGranteeError(ApiError):
    slug, status, title = "not_grantee", 403, "This grant was not made to the signer"


class SuspensionAuthorityError(ApiError):
    slug, status, title = (
        "suspension_authority",
        403,
        "Only the authority that imposed the suspension (governor or regulator) may lift it",
    )


class InvalidGovernorError(ApiError):
    slug, status, title = (
        "invalid_governor",
        422,
        "Governance cannot be handed to the governor itself or to a subject",
    )


class ForbiddenError(ApiError):
    slug, status, title = "forbidden", 403, "The signer may not see or change this resource"


# ---- consent refusals (the chain's check reason codes) -------------------------------------


class GrantNotFoundError(ApiError):
    slug, status, title = "grant_not_found", 404, "No such grant"


class GrantRevokedError(ApiError):
    slug, status, title = "grant_revoked", 403, "The grant was revoked"


class GrantExpiredError(ApiError):
    slug, status, title = "grant_expired", 403, "The grant has expired"


class GrantNotYetValidError(ApiError):
    slug, status, title = "grant_not_yet_valid", 403, "The grant is not valid yet"


class GrantPausedError(ApiError):
    slug, status, title = "grant_paused", 403, "The grant is paused by the subject"


class UsesExhaustedError(ApiError):
    slug, status, title = "uses_exhausted", 403, "The grant has no uses left"


class FieldsNotGrantedError(ApiError):
    slug, status, title = "fields_not_granted", 403, "The grant does not cover these fields"


class GranteeSuspendedError(ApiError):
    slug, status, title = "grantee_suspended", 403, "The grantee is suspended"


class AssetDisputedError(ApiError):
    slug, status, title = "asset_disputed", 403, "The subject disputes the asset"


class AssetRetiredError(ApiError):
    slug, status, title = "asset_retired", 403, "The issuer retired the asset"


class AssetSupersededError(ApiError):
    slug, status, title = "asset_superseded", 403, "A newer version of the asset exists"


class RequestSignatureExpiredError(ApiError):
    slug, status, title = "request_signature_expired", 403, "The access request deadline has passed"


class RequestSignatureInvalidError(ApiError):
    slug, status, title = (
        "request_signature_invalid",
        403,
        "The access request is not signed by the grantee",
    )


class AccessNonceUsedError(ApiError):
    slug, status, title = "access_nonce_used", 409, "The access request nonce was already used"


class GrantLiveError(ApiError):
    slug, status, title = "grant_live", 409, "The grant has not ended: nothing to delete yet"


class NotRecalledError(ApiError):
    slug, status, title = "not_recalled", 409, "No recall is owed for this grant"


class AlreadyAcknowledgedError(ApiError):
    slug, status, title = "already_acknowledged", 409, "The grantee already acknowledged this"


class UsesMismatchError(ApiError):
    slug, status, title = "uses_mismatch", 409, "Not the chain's use count for this grant"


class AcknowledgementInFutureError(ApiError):
    slug, status, title = "acknowledgement_in_future", 422, "Dated after the chain's time"


class AssetNotActiveError(ApiError):
    slug, status, title = "asset_not_active", 409, "The asset is not active"


class AssetNotFoundError(ApiError):
    slug, status, title = "asset_not_found", 404, "No such asset"


class KeyPackageMissingError(ApiError):
    slug, status, title = "key_package_missing", 410, "The key package for this grant is gone"


class KeyNotCurrentError(ApiError):
    slug, status, title = (
        "key_not_current",
        409,
        "The stored encryption key does not match the digest on chain",
    )


# ---- a proposed grant's terms, refused before the chain (the contract would revert) ---------


class GrantExpiryPastError(ApiError):
    slug, status, title = (
        "grant_expiry_past",
        422,
        "The grant's expiry is not after the time it would be recorded",
    )


class GrantWindowInvalidError(ApiError):
    slug, status, title = (
        "grant_window_invalid",
        422,
        "The grant's not-before is not before its expiry (or the expiry is out of range)",
    )


class GrantGranteeNotMemberError(ApiError):
    slug, status, title = (
        "grant_grantee_not_member",
        422,
        "The grantee is not a consortium member",
    )


class GrantGranteeNotConsumerError(ApiError):
    slug, status, title = (
        "grant_grantee_not_consumer",
        422,
        "The grantee does not hold the consumer (institution) role",
    )


class GrantGranteeSuspendedError(ApiError):
    slug, status, title = (
        "grant_grantee_suspended",
        422,
        "The grantee is suspended and cannot receive grants",
    )


class ForwardSignatureInvalidError(ApiError):
    slug, status, title = (
        "forward_signature_invalid",
        403,
        "The forward request is not signed by its sender, or not by the caller",
    )


class ForwardExpiredError(ApiError):
    slug, status, title = "forward_expired", 403, "The forward request's deadline has passed"


class ForwardNonceError(ApiError):
    slug, status, title = (
        "forward_nonce_invalid",
        409,
        "The forward request's nonce is not the sender's next one (replayed?)",
    )


class ContractRejectedError(ApiError):
    slug, status, title = "contract_rejected", 409, "The ledger contract rejected the message"


# ---- infrastructure ------------------------------------------------------------------------


class _UnavailableError(ApiError):
    """A dependency failed for now: 503, retry in a moment."""

    status, retry_after = 503, 2


class ChainUnavailableError(_UnavailableError):
    slug, title = "chain_unavailable", "The chain node is unreachable"


class DatabaseUnavailableError(_UnavailableError):
    slug, title = "database_unavailable", "The database is unreachable"


class RelayFailedError(_UnavailableError):
    slug, title = "relay_failed", "The transaction was not confirmed; nothing was stored"


class NotReadyError(ApiError):
    slug, status, title = "not_ready", 503, "The service is not ready"


#: ``check`` / ``recordAccessBatch`` reason codes -> problem slug (the words are ledger's).
REASON_SLUGS: dict[Reason, str] = {
    Reason.OK: "ok",
    Reason.NOT_FOUND: "grant_not_found",
    Reason.NOT_GRANTEE: "not_grantee",
    Reason.REVOKED: "grant_revoked",
    Reason.PAUSED: "grant_paused",
    Reason.EXPIRED: "grant_expired",
    Reason.NOT_YET_VALID: "grant_not_yet_valid",
    Reason.USES_EXHAUSTED: "uses_exhausted",
    Reason.GRANTEE_SUSPENDED: "grantee_suspended",
    Reason.ASSET_DISPUTED: "asset_disputed",
    Reason.ASSET_RETIRED: "asset_retired",
    Reason.ASSET_SUPERSEDED: "asset_superseded",
    Reason.FIELDS_NOT_GRANTED: "fields_not_granted",
    Reason.SIGNATURE_EXPIRED: "request_signature_expired",
    Reason.SIGNATURE_INVALID: "request_signature_invalid",
    Reason.NONCE_USED: "access_nonce_used",
}


def reason_problem(reason_code: int) -> tuple[str, str]:
    """(problem slug, words) of a reason code; unknown codes are a generic rejection."""
    try:
        reason = Reason(reason_code)
    except ValueError:
        return "contract_rejected", f"reason code {reason_code}"
    return REASON_SLUGS[reason], reason.text


def refusal(reason_code: int, detail: str | None = None, **extensions: Any) -> ApiError:
    """The problem for a ``check`` / ``recordAccessBatch`` reason code."""
    slug, words = reason_problem(reason_code)
    cls = ApiError.registry.get(slug, ContractRejectedError)
    return cls(detail or words, reason_code=reason_code, reason=words, **extensions)


# ---- rendering ------------------------------------------------------------------------------


def problem_body(error: ApiError, instance: str, request_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": error.type_uri,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "instance": instance,
        "code": error.slug,
    }
    if request_id:
        body["request_id"] = request_id
    for key, value in error.extensions.items():
        body.setdefault(key, value)
    return body


def problem_response(error: ApiError, request: Request) -> JSONResponse:
    from fastapi.responses import JSONResponse

    request_id = getattr(request.state, "request_id", None)
    return JSONResponse(
        problem_body(error, request.url.path, request_id),
        status_code=error.status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=error.headers(),
    )


def translate(exc: BaseException) -> ApiError | None:
    """Map a library exception to the problem it means, or None if unknown."""
    from api import _translate

    return _translate.translate(exc)


def install_error_handlers(app: FastAPI) -> None:
    """The one place where exceptions become HTTP responses."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        if exc.status >= 500:
            log.warning("problem %s: %s", exc.slug, exc.detail)
        return problem_response(exc, request)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # A hostile body can hold thousands of wrong values: answer the first few and a count.
        found = exc.errors()
        shown = getattr(request.app.state, "max_validation_errors", 10)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in found[:shown]
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid"}
        where = ".".join(str(p) for p in first["loc"])
        err = InvalidRequestError(f"{where}: {first['msg']}", errors=errors, error_count=len(found))
        return problem_response(err, request)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        err: ApiError
        if exc.status_code == 404:
            err = NotFoundError(str(exc.detail) if exc.detail != "Not Found" else None)
        elif exc.status_code == 405:
            err = MethodNotAllowedError()
        elif exc.status_code == 413:
            err = PayloadTooLargeError()
        elif 400 <= exc.status_code < 500:
            err = InvalidRequestError(str(exc.detail))
        else:
            err = ApiError(str(exc.detail))
        return problem_response(err, request)

    async def on_other(request: Request, exc: Exception) -> JSONResponse:
        mapped = translate(exc)
        if mapped is None:
            log.exception("unhandled error", exc_info=exc)
            mapped = ApiError()
        elif mapped.status >= 500:
            log.warning("problem %s: %s", mapped.slug, exc)
        return problem_response(mapped, request)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    # Library roots are registered one by one so that they are answered by the
    # exception middleware (the catch-all ``Exception`` handler re-raises).
    from api import _translate

    for root in _translate.library_roots():
        if issubclass(root, Exception):
            app.add_exception_handler(root, on_other)
    app.add_exception_handler(Exception, on_other)


def problem_responses(*errors: type[ApiError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entry listing the problems a route can answer."""
    out: dict[int | str, dict[str, Any]] = {}
    by_status: dict[int, list[str]] = {}
    for err in errors:
        by_status.setdefault(err.status, []).append(err.slug)
    for status, slugs in sorted(by_status.items()):
        out[status] = {
            "description": "Problem: " + ", ".join(f"`{s}`" for s in slugs),
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return out


# ---- vault formats (appended with the vault integration) ------------------------------------


class InvalidVaultDataError(ApiError):
    slug, status, title = (
        "invalid_vault_data",
        400,
        "The bytes are not a valid vault encoding (key, sealed asset or key package)",
    )


class SealedAssetMismatchError(ApiError):
    slug, status, title = (
        "sealed_asset_mismatch",
        400,
        "The sealed asset does not match its anchor",
    )


class KeyPackageMismatchError(ApiError):
    slug, status, title = (
        "key_package_mismatch",
        400,
        "The key package is not bound to this grant",
    )


class FieldsMaskMismatchError(ApiError):
    slug, status, title = (
        "fields_mask_mismatch",
        400,
        "A pull must request exactly the grant's fields",
    )


class VaultStoreError(ApiError):
    slug, status, title, retry_after = "vault_unavailable", 503, "The ciphertext store failed", 5


# ---- trace and audit (issue 7) ----------------------------------------------------------------


class InvalidCursorError(ApiError):
    slug, status, title = (
        "invalid_cursor",
        422,
        "The cursor is malformed or belongs to another query",
    )


class AuditRangeTooLargeError(ApiError):
    slug, status, title = "audit_range_too_large", 422, "The audit block range is too large"
