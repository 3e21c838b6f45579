"""The problems of the multi-party workflows: grant proposals (M of N, issue 18), claims and
sealed accesses. Kept apart from :mod:`api.errors` for size; that module re-exports every
name here, so callers keep writing ``errors.ClaimNotFoundError``.
"""

from __future__ import annotations

from api._problem import ApiError

__all__ = [
    "ApprovalExistsError",
    "ApprovalSignatureInvalidError",
    "ClaimClosedError",
    "ClaimExpiredError",
    "ClaimNonceError",
    "ClaimNotDepartmentError",
    "ClaimNotFoundError",
    "ClaimRejectedError",
    "ClaimSignatureInvalidError",
    "NotAgentError",
    "ProposalClosedError",
    "ProposalNotFoundError",
    "SealClosedError",
    "SealExtensionRefusedError",
    "SealInvalidError",
    "SealNotFoundError",
    "SealOpeningMismatchError",
    "SealTooEarlyError",
]

# ---- grant proposals (M of N) ----------------------------------------------------------------


class NotAgentError(ApiError):
    slug, status, title = "not_agent", 403, "Only a live agent of the enterprise may do this"


class ProposalNotFoundError(ApiError):
    slug, status, title = "proposal_not_found", 404, "No such grant proposal"


class ProposalClosedError(ApiError):
    slug, status, title = "proposal_closed", 409, "The proposal was granted or its deadline passed"


class ApprovalSignatureInvalidError(ApiError):
    slug, status, title = (
        "approval_signature_invalid",
        422,
        "Not the caller's approval of these terms",
    )


class ApprovalExistsError(ApiError):
    slug, status, title = "approval_exists", 409, "This agent has approved this proposal already"


# ---- claims (DataSafeClaims) -----------------------------------------------------------------


class ClaimSignatureInvalidError(ApiError):
    slug, status, title = "claim_signature_invalid", 403, "Not signed by the subject who calls"


class ClaimExpiredError(ApiError):
    slug, status, title = "claim_expired", 403, "The claim request's deadline has passed"


class ClaimNonceError(ApiError):
    slug, status, title = "claim_nonce_invalid", 409, "Not the subject's next claims nonce"


class ClaimNotFoundError(ApiError):
    slug, status, title = "claim_not_found", 404, "No such claim on the ledger"


class ClaimClosedError(ApiError):
    slug, status, title = "claim_closed", 409, "The claim was already fulfilled or refused"


class ClaimNotDepartmentError(ApiError):
    slug, status, title = "claim_not_department", 403, "Only the claim's department answers"


class ClaimRejectedError(ApiError):
    slug, status, title = "claim_rejected", 422, "The claims contract's rules refuse it"


# ---- sealed accesses (DataSafeSealed) ------------------------------------------------------


class SealNotFoundError(ApiError):
    slug, status, title = "seal_not_found", 404, "No such sealed access record"


class SealTooEarlyError(ApiError):
    slug, status, title = "seal_too_early", 409, "Only its department reveals a seal early"


class SealOpeningMismatchError(ApiError):
    slug, status, title = "seal_opening_mismatch", 422, "The opening does not match the seal"


class SealExtensionRefusedError(ApiError):
    slug, status, title = "seal_extension_refused", 409, "The seal extension is refused"


class SealClosedError(ApiError):
    slug, status, title = "seal_already_unsealed", 409, "The seal was already revealed"


class SealInvalidError(ApiError):
    slug, status, title = "seal_invalid", 422, "Unseal date out of range or no commitment"
