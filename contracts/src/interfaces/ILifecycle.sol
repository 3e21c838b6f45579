// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

// Acknowledgement kinds: one bit each in a grant's `acks`.
/// @dev The grant pulled a version its department has since superseded; the grantee says it was told.
uint8 constant ACK_RECALL = 1;
/// @dev The grant ended (revoked, expired, uses exhausted); the grantee says it deleted what it pulled.
uint8 constant ACK_DELETION = 2;

// Refusal reasons of `acknowledgeBatch`, after IConsents' codes (REASON_NOT_FOUND, REASON_NOT_GRANTEE and
// REASON_SIGNATURE_INVALID keep their meaning).
uint8 constant REASON_GRANT_LIVE = 16;
uint8 constant REASON_NOT_RECALLED = 17;
uint8 constant REASON_ALREADY_ACKNOWLEDGED = 18;
uint8 constant REASON_USES_MISMATCH = 19;
uint8 constant REASON_ACK_IN_FUTURE = 20;
uint8 constant REASON_ACK_KIND_UNKNOWN = 21;

// Bytes per item of `acknowledgeBatch`'s packed input: kind 1, grantId 32, uses 4, at 8, r 32, vs 32.
uint256 constant ACK_ITEM_SIZE = 109;

/// @title ILifecycle
/// @notice What happens to the copies a grantee holds: it acknowledges, by its own EIP-712 signature relayed by a
///         CUSTODIAN, each recall (a version it pulled was superseded) and each deletion (the grant ended).
/// @dev A recall is owed by exactly the grants with `uses > 0` whose asset is SUPERSEDED: accesses to a superseded
///      version are refused, so the set is fixed at the supersession and derivable from `Accessed` and
///      `AssetSuperseded` logs alone. A deletion is owed by every grant that has ended (REVOKED, `now >= expiry`,
///      or uses exhausted) and falls due `retention` seconds after the end. Each acknowledgement is recorded once.
///      Type strings: `RecallAcknowledgement(bytes32 grantId,uint32 uses,uint64 at)` and
///      `DeletionAcknowledgement(bytes32 grantId,uint32 uses,uint64 at)`; `uses` must equal the grant's count.
interface ILifecycle {
    /// @notice The grantee acknowledged the recall of the pulls it made under `grantId` (signed at `at`). The
    ///         signed `uses` equals the grant's use count, which no longer moves (see `getGrant`), so it is not logged.
    event RecallAcknowledged(bytes32 indexed grantId, uint64 at);
    /// @notice The grantee acknowledged deleting what it pulled under `grantId` (deleted at `at`); the signed `uses`
    ///         is the grant's final count (see `getGrant`).
    event DeletionAcknowledged(bytes32 indexed grantId, uint64 at);
    /// @notice `acknowledgeBatch` skipped an item; `signer` is address(0) if no signature was recovered.
    event AcknowledgementRefused(bytes32 indexed grantId, address indexed signer, uint8 kind, uint8 reason);

    /// @notice A packed acknowledgement batch is not a whole number of ACK_ITEM_SIZE-byte items.
    error LifecycleMalformedBatch(uint256 length);
    /// @notice `kind` is neither ACK_RECALL nor ACK_DELETION.
    error LifecycleUnknownKind(uint8 kind);

    /// @notice Records grantees' acknowledgements (active CUSTODIAN). A refused item is skipped with an
    ///         `AcknowledgementRefused` event and the rest proceed.
    /// @dev Packed like `recordAccessBatch`: items of ACK_ITEM_SIZE (109) bytes, each
    ///      `kind (1) ‖ grantId (32) ‖ uses (4) ‖ at (8) ‖ r (32) ‖ vs (32)`, integers big-endian, the grantee's
    ///      EIP-2098 compact signature of the acknowledgement. Refusals, first failing wins:
    ///      REASON_ACK_KIND_UNKNOWN, REASON_ACK_IN_FUTURE (`at` after the block), REASON_SIGNATURE_INVALID,
    ///      REASON_NOT_FOUND, REASON_NOT_GRANTEE (the signer is not the grant's grantee),
    ///      REASON_ALREADY_ACKNOWLEDGED, REASON_NOT_RECALLED (recall: asset not superseded or nothing pulled) or
    ///      REASON_GRANT_LIVE (deletion: the grant has not ended), REASON_USES_MISMATCH.
    /// @param packed The concatenated items (empty: nothing recorded).
    /// @return reasons Per item: REASON_OK if recorded, else the refusal reason.
    function acknowledgeBatch(bytes calldata packed) external returns (uint8[] memory reasons);

    /// @notice The EIP-712 digest of a Recall- (kind ACK_RECALL) or DeletionAcknowledgement (ACK_DELETION).
    /// @param kind ACK_RECALL or ACK_DELETION (anything else reverts).
    /// @param grantId The grant.
    /// @param uses The grant's use count the acknowledgement covers.
    /// @param at Unix time the grantee was told (recall) or deleted (deletion).
    function hashAcknowledgement(uint8 kind, bytes32 grantId, uint32 uses, uint64 at)
        external
        view
        returns (bytes32);
}
