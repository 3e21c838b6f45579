"""The problems of the ledger's companion contracts: claims (issue 17) and sealed accesses
(issue 18). Defined apart to keep :mod:`api.errors` readable; :mod:`api.errors` re-exports
them, and importing it registers them."""

from __future__ import annotations

from api.errors import ApiError

# ---- claims (DataSafeClaims) ----------------------------------------------------------------


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
