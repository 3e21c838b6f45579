// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AssetStatus} from "./IAssets.sol";

/// @notice Lifecycle of a grant. REVOKED is terminal; the record is kept so its id (the grantor's nonce) is never
///         reused.
enum GrantStatus {
    NONE,
    ACTIVE,
    PAUSED,
    REVOKED
}

/// @notice The terms a grantor signs or submits.
/// @param assetId The asset (one version) the grant is for.
/// @param grantee The institution allowed to read (an active CONSUMER).
/// @param purpose Purpose code (off-chain catalogue, e.g. 1 = loan underwriting).
/// @param fieldsMask Bit i = field i of the asset's schema.
/// @param notBefore Unix time from which the grant is valid (0: immediately).
/// @param expiry Unix time from which the grant is expired (> notBefore, > now, <= type(uint32).max).
/// @param maxUses Maximum number of recorded accesses, <= 65535 (0: no limit other than the 65535-use counter).
/// @param retention Seconds the grantee may keep what it pulled after the grant ends (0: delete at the end); see
///        ILifecycle for the deletion acknowledgement.
struct GrantTerms {
    bytes32 assetId;
    address grantee;
    uint32 purpose;
    uint64 fieldsMask;
    uint64 notBefore;
    uint64 expiry;
    uint32 maxUses;
    uint32 retention;
}

/// @notice A grant as returned by `getGrant`.
struct Grant {
    bytes32 assetId;
    address grantee;
    uint32 purpose;
    uint64 fieldsMask;
    uint64 notBefore;
    uint64 expiry;
    uint32 maxUses;
    uint32 uses;
    GrantStatus status;
    uint32 retention;
    /// Acknowledgements the grantee has recorded (ILifecycle: bit ACK_RECALL, bit ACK_DELETION).
    uint8 acks;
}

/// @notice A grant signed off-chain by `grantor` (the owner or a live agent), relayed by a member.
struct SignedGrant {
    GrantTerms terms;
    address grantor;
    uint256 nonce;
    uint64 deadline;
    bytes signature;
}

/// @notice An institution's signed request to read `fieldsMask` under `grantId`; relayed by a CUSTODIAN.
/// @param nonce Unordered per-grantee nonce (bitmap: word nonce >> 8, bit nonce & 255); consecutive nonces are
///        cheapest.
struct AccessRequest {
    bytes32 grantId;
    uint64 fieldsMask;
    uint256 nonce;
    uint64 deadline;
}

// Reason codes returned by `check` and `recordAccessBatch`, evaluated in this order.
uint8 constant REASON_OK = 0;
uint8 constant REASON_NOT_FOUND = 1;
uint8 constant REASON_NOT_GRANTEE = 2;
uint8 constant REASON_REVOKED = 3;
uint8 constant REASON_PAUSED = 4;
uint8 constant REASON_EXPIRED = 5;
uint8 constant REASON_NOT_YET_VALID = 6;
uint8 constant REASON_USES_EXHAUSTED = 7;
uint8 constant REASON_GRANTEE_SUSPENDED = 8;
uint8 constant REASON_ASSET_DISPUTED = 9;
uint8 constant REASON_ASSET_RETIRED = 10;
uint8 constant REASON_ASSET_SUPERSEDED = 11;
uint8 constant REASON_FIELDS_NOT_GRANTED = 12;
// Only reported by `recordAccessBatch` for a request that never reaches `check`.
uint8 constant REASON_SIGNATURE_EXPIRED = 13;
uint8 constant REASON_SIGNATURE_INVALID = 14;
uint8 constant REASON_NONCE_USED = 15;

// Bytes per item of `recordAccessBatch`'s packed input: grantId 32, fieldsMask 8, nonce 32, deadline 8, r 32, vs 32.
uint256 constant ACCESS_ITEM_SIZE = 144;

/// @title IConsents
/// @notice Field-level consents: grant, revoke, pause, resume (directly or by EIP-712 signature), check, and record
///         accesses carrying the grantee's signed request.
/// @dev EIP-712 domain: name "DataSafeLedger", version "1", chainId, verifyingContract. Type strings in
///      docs/contracts.md. grantId = keccak256(abi.encode(grantor, nonce)): the grant's existence is the record of
///      the used nonce. Revoke/Pause/Resume signatures use the signer's sequential `nonces(signer)`. Access requests
///      use the grantee's unordered nonce bitmap.
interface IConsents {
    /// @notice Emitted when a grant is created; carries all terms.
    event ConsentGranted(
        bytes32 indexed grantId,
        bytes32 indexed assetId,
        address indexed grantee,
        address owner,
        address grantor,
        GrantTerms terms,
        uint256 nonce,
        uint64 timestamp
    );
    /// @notice Emitted when a grant is revoked (terminal).
    event ConsentRevoked(bytes32 indexed grantId, address indexed by, uint64 timestamp);
    /// @notice Emitted when a grant is paused.
    event ConsentPaused(bytes32 indexed grantId, address indexed by, uint64 timestamp);
    /// @notice Emitted when a paused grant is resumed.
    event ConsentResumed(bytes32 indexed grantId, address indexed by, uint64 timestamp);
    /// @notice Emitted for every recorded access. Grantee, asset and purpose are the grant's (see ConsentGranted:
    ///         only the grant's grantee can sign an access to it); the time is the block's; the custodian is the
    ///         transaction's sender. It carries no use number: the n-th `Accessed` event of a grant (in chain order)
    ///         is its n-th use.
    event Accessed(bytes32 indexed grantId, uint64 fieldsMask, uint256 nonce);
    /// @notice Emitted by `recordAccessBatch` for a request it skipped.
    event AccessRefused(
        bytes32 indexed grantId, address indexed grantee, address indexed custodian, uint8 reason, uint256 nonce
    );

    /// @notice Emitted by `grantWithApprovals` for each live agent whose approval the grant carries.
    event ConsentApproved(bytes32 indexed grantId, address indexed agent);

    /// @notice The grantor already used this nonce (the grant exists).
    error ConsentGrantExists(bytes32 grantId);
    /// @notice The grant does not exist.
    error ConsentNotFound(bytes32 grantId);
    /// @notice The caller/signer is neither the asset's owner nor a live agent of the owner.
    error ConsentNotAuthorized(bytes32 assetId, address account);
    /// @notice The caller/signer may not change this grant (neither owner nor live agent of the owner).
    error ConsentNotGrantor(bytes32 grantId, address account);
    /// @notice notBefore/expiry are not a valid future window.
    error ConsentInvalidWindow(uint64 notBefore, uint64 expiry);
    /// @notice The mask is zero or addresses fields beyond the schema.
    error ConsentInvalidFieldsMask(uint64 fieldsMask, uint16 fieldCount);
    /// @notice maxUses exceeds 65535 (the use counter is 16 bits so that a grant's access state fits one slot).
    error ConsentInvalidMaxUses(uint32 maxUses);
    /// @notice The grantee is not an active CONSUMER.
    error ConsentInvalidGrantee(address grantee);
    /// @notice Grants can only be created for ACTIVE assets.
    error ConsentAssetNotActive(bytes32 assetId, AssetStatus status);
    /// @notice The grant's status does not allow the operation.
    error ConsentInvalidStatus(bytes32 grantId, GrantStatus status);
    /// @notice `recordAccess` refused the request (reason code as in `check`).
    error ConsentAccessRefused(bytes32 grantId, uint8 reason);
    /// @notice Two batch arrays differ in length.
    error ConsentLengthMismatch(uint256 expected, uint256 actual);
    /// @notice A packed access batch is not a whole number of ACCESS_ITEM_SIZE-byte items.
    error ConsentMalformedBatch(uint256 length);
    /// @notice The signature's deadline has passed.
    error SignatureExpired(uint64 deadline);
    /// @notice The signature is malformed (length, high s, bad v) or recovers to nobody.
    error SignatureInvalid();
    /// @notice The signature recovers to someone other than the claimed signer.
    error SignatureSignerMismatch(address expected, address recovered);
    /// @notice The grantee already used this access nonce.
    error AccessNonceUsed(address grantee, uint256 nonce);
    /// @notice The owner's approval policy needs `needed` distinct live agents; the call carries `given`.
    error ConsentApprovalsMissing(uint256 needed, uint256 given);
    /// @notice An approval is not signed by a live agent of `enterprise` in its current epoch, or its signer does
    ///         not come after `previous` (approvals are sorted by signer, so none counts twice).
    error ConsentApprovalInvalid(address enterprise, address previous, address signer);

    /// @notice Grants `terms` as the caller (the asset's owner or a live agent of it, active member).
    /// @param terms The grant terms.
    /// @param nonce Grantor-chosen nonce; grantId = keccak256(abi.encode(msg.sender, nonce)).
    /// @return grantId The new grant's id.
    function grant(GrantTerms calldata terms, uint256 nonce) external returns (bytes32 grantId);

    /// @notice Grants on behalf of `signed.grantor` from its EIP-712 `GrantConsent` signature (caller: any active
    ///         member, typically the CUSTODIAN).
    /// @param signed Terms, grantor, nonce, deadline and the 65-byte signature.
    /// @return grantId keccak256(abi.encode(signed.grantor, signed.nonce)).
    function grantBySig(SignedGrant calldata signed) external returns (bytes32 grantId);

    /// @notice Grants `terms` for the asset's owner with the EIP-712 `GrantApproval` signatures of its live agents
    ///         (caller: any active member). Each signs (owner, the owner's approval epoch, `hashGrant(terms, nonce,
    ///         deadline)`). The only way to grant for an enterprise whose threshold (`approvalPolicy`) exceeds one.
    /// @param terms The grant terms.
    /// @param nonce Owner-side nonce; grantId = keccak256(abi.encode(owner, nonce)).
    /// @param deadline Unix time after which the approvals are void.
    /// @param approvals 65-byte signatures, concatenated, sorted by ascending signer address.
    /// @return grantId The new grant's id.
    function grantWithApprovals(GrantTerms calldata terms, uint256 nonce, uint64 deadline, bytes calldata approvals)
        external
        returns (bytes32 grantId);

    /// @notice `grant` for many terms in one transaction (all or nothing).
    /// @param terms The grants' terms.
    /// @param nonces One nonce per grant.
    /// @return grantIds The new ids, in order.
    // slither-disable-next-line shadowing-local -- `nonces` is the published ABI name; an interface has no body.
    function grantBatch(GrantTerms[] calldata terms, uint256[] calldata nonces)
        external
        returns (bytes32[] memory grantIds);

    /// @notice `grantBySig` for many signed grants in one transaction (all or nothing).
    /// @param signed The signed grants.
    /// @return grantIds The new ids, in order.
    function grantBySigBatch(SignedGrant[] calldata signed) external returns (bytes32[] memory grantIds);

    /// @notice Revokes an ACTIVE or PAUSED grant (the asset's owner or a live agent of it). Terminal. A suspended
    ///         owner may still revoke.
    /// @param grantId The grant.
    function revoke(bytes32 grantId) external;

    /// @notice Revokes from `signer`'s EIP-712 `RevokeConsent` signature over `nonces(signer)` (caller: any active
    ///         member).
    /// @param grantId The grant.
    /// @param signer The owner or a live agent.
    /// @param deadline Signature deadline.
    /// @param signature 65-byte signature.
    function revokeBySig(bytes32 grantId, address signer, uint64 deadline, bytes calldata signature) external;

    /// @notice Pauses an ACTIVE grant (owner or live agent). A suspended owner may still pause.
    /// @param grantId The grant.
    function pause(bytes32 grantId) external;

    /// @notice Pauses from `signer`'s EIP-712 `PauseConsent` signature over `nonces(signer)`.
    /// @param grantId The grant.
    /// @param signer The owner or a live agent.
    /// @param deadline Signature deadline.
    /// @param signature 65-byte signature.
    function pauseBySig(bytes32 grantId, address signer, uint64 deadline, bytes calldata signature) external;

    /// @notice Resumes a PAUSED grant (active owner or live agent).
    /// @param grantId The grant.
    function resume(bytes32 grantId) external;

    /// @notice Resumes from `signer`'s EIP-712 `ResumeConsent` signature over `nonces(signer)`.
    /// @param grantId The grant.
    /// @param signer The owner or a live agent.
    /// @param deadline Signature deadline.
    /// @param signature 65-byte signature.
    function resumeBySig(bytes32 grantId, address signer, uint64 deadline, bytes calldata signature) external;

    /// @notice Records one access (active CUSTODIAN): recovers the grantee from its EIP-712 `AccessRequest`
    ///         signature, consumes the nonce, applies `check`, counts the use if the grant limits uses, emits
    ///         `Accessed`.
    /// @param request The grantee's request.
    /// @param signature The grantee's 65-byte signature.
    /// @return use The grant's use count after this access; 0 for a grant without a use limit (maxUses 0), whose
    ///         uses are not counted on chain.
    function recordAccess(AccessRequest calldata request, bytes calldata signature) external returns (uint32 use);

    /// @notice Records many accesses (active CUSTODIAN). A refused item is skipped — its nonce is not consumed, an
    ///         `AccessRefused` event is emitted — and the rest proceed.
    /// @dev Packed, not ABI-encoded, to save calldata and decoding gas: items of ACCESS_ITEM_SIZE (144) bytes, each
    ///      `grantId (32) ‖ fieldsMask (8) ‖ nonce (32) ‖ deadline (8) ‖ r (32) ‖ vs (32)`, integers big-endian,
    ///      the grantee's signature of the same `AccessRequest` in EIP-2098 compact form (vs = s with the parity
    ///      v - 27 in its top bit; s in the lower half of the curve order). An item with an invalid signature is
    ///      refused (REASON_SIGNATURE_INVALID); a length that is not a multiple of 144 reverts.
    /// @param packed The concatenated items (empty: nothing recorded).
    /// @return reasons Per item: REASON_OK if recorded, else the refusal reason.
    function recordAccessBatch(bytes calldata packed) external returns (uint8[] memory reasons);

    /// @notice Whether `grantee` may now read `fieldsMask` under `grantId`, and why not.
    /// @param grantId The grant.
    /// @param grantee The institution.
    /// @param fieldsMask Fields requested.
    /// @return allowed True iff reason == REASON_OK.
    /// @return reason The first failing reason in code order.
    function check(bytes32 grantId, address grantee, uint64 fieldsMask)
        external
        view
        returns (bool allowed, uint8 reason);

    /// @notice The grant (all zero if unknown).
    /// @param grantId The grant.
    function getGrant(bytes32 grantId) external view returns (Grant memory);

    /// @notice keccak256(abi.encode(grantor, nonce)).
    /// @param grantor The grantor.
    /// @param nonce Its nonce.
    function grantIdOf(address grantor, uint256 nonce) external pure returns (bytes32);

    /// @notice The next nonce `signer` must use for Revoke/Pause/ResumeConsent signatures.
    /// @param signer The signer.
    function nonces(address signer) external view returns (uint256);

    /// @notice Whether `grantee` already used access nonce `nonce`.
    /// @param grantee The institution.
    /// @param nonce The access nonce.
    function isAccessNonceUsed(address grantee, uint256 nonce) external view returns (bool);

    /// @notice The EIP-712 domain separator.
    function domainSeparator() external view returns (bytes32);

    /// @notice The EIP-712 digest of a `GrantConsent` message.
    /// @param terms The grant terms.
    /// @param nonce The grantor's nonce.
    /// @param deadline The signature deadline.
    function hashGrant(GrantTerms calldata terms, uint256 nonce, uint64 deadline) external view returns (bytes32);

    /// @notice The EIP-712 digest of a `RevokeConsent` message.
    /// @param grantId The grant.
    /// @param nonce The signer's sequential nonce (`nonces(signer)`).
    /// @param deadline The signature deadline.
    function hashRevoke(bytes32 grantId, uint256 nonce, uint64 deadline) external view returns (bytes32);

    /// @notice The EIP-712 digest of a `PauseConsent` message.
    /// @param grantId The grant.
    /// @param nonce The signer's sequential nonce (`nonces(signer)`).
    /// @param deadline The signature deadline.
    function hashPause(bytes32 grantId, uint256 nonce, uint64 deadline) external view returns (bytes32);

    /// @notice The EIP-712 digest of a `ResumeConsent` message.
    /// @param grantId The grant.
    /// @param nonce The signer's sequential nonce (`nonces(signer)`).
    /// @param deadline The signature deadline.
    function hashResume(bytes32 grantId, uint256 nonce, uint64 deadline) external view returns (bytes32);

    /// @notice The EIP-712 digest of an `AccessRequest` message.
    /// @param request The access request.
    function hashAccessRequest(AccessRequest calldata request) external view returns (bytes32);
}
