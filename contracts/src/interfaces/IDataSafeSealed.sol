// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice Lifecycle of a sealed access record.
enum SealStatus {
    NONE,
    SEALED,
    UNSEALED
}

/// @notice A sealed access as stored on chain: who sealed it, about which asset (and so which subject), the
///         commitment to the details and when they are due.
/// @param department The department that disclosed the data (the asset's issuer).
/// @param unsealAt When the details are due (unix seconds); moved later only by a regulator's extension.
/// @param status SEALED until the opening is revealed, then UNSEALED.
/// @param extensions How many times a regulator extended the seal.
/// @param subject The asset's owner, read from the ledger when sealed (told at once).
/// @param sealedAt When the record was made.
/// @param unsealedAt When the opening was revealed (0 while sealed).
/// @param assetId The asset whose data was disclosed (in clear: see docs/contracts.md, "Sealed accesses").
/// @param commitment keccak256(abi.encode(SEALED_ACCESS_TYPEHASH, institution, assetId, fieldsMask,
///        legalBasisRef, salt)).
struct SealedAccess {
    address department;
    uint64 unsealAt;
    SealStatus status;
    uint16 extensions;
    address subject;
    uint64 sealedAt;
    uint64 unsealedAt;
    bytes32 assetId;
    bytes32 commitment;
}

/// @title IDataSafeSealed
/// @notice Lawful accesses without consent, recorded as commitments the subject learns of at once and reads after
///         the unseal date. A companion of the ledger (created by its constructor), reading the ledger for roles,
///         kinds, suspension and assets.
interface IDataSafeSealed {
    /// @notice A department recorded a sealed access to `subject`'s asset; the details are behind `commitment`.
    event AccessSealed(
        uint256 indexed sealId,
        address indexed subject,
        address indexed department,
        bytes32 assetId,
        bytes32 commitment,
        uint64 unsealAt,
        uint64 timestamp
    );
    /// @notice A regulator moved a seal's unseal date later, for the reason behind `reasonHash`.
    event SealExtended(
        uint256 indexed sealId,
        address indexed subject,
        address indexed regulator,
        uint64 previousUnsealAt,
        uint64 unsealAt,
        bytes32 reasonHash,
        uint64 timestamp
    );
    /// @notice The opening of a seal, checked against its commitment: who received which fields under which basis.
    event AccessUnsealed(
        uint256 indexed sealId,
        address indexed subject,
        address indexed institution,
        address department,
        bytes32 assetId,
        uint64 fieldsMask,
        bytes32 legalBasisRef,
        bytes32 salt,
        address unsealedBy,
        uint64 timestamp
    );

    /// @notice The caller is not an active ISSUER of kind DEPARTMENT.
    error SealedNotDepartment(address caller);
    /// @notice The asset does not exist on the ledger.
    error SealedUnknownAsset(bytes32 assetId);
    /// @notice The caller did not issue the asset (a department seals only accesses to data it holds).
    error SealedNotAssetIssuer(bytes32 assetId, address caller);
    /// @notice The unseal date is not after now, not after the current one, or beyond now + MAX_SEAL_PERIOD.
    error SealedInvalidUnsealDate(uint64 unsealAt, uint64 earliest, uint64 latest);
    /// @notice A seal needs a commitment.
    error SealedZeroCommitment();
    /// @notice No seal with this id.
    error SealedNotFound(uint256 sealId);
    /// @notice The seal was already opened.
    error SealedAlreadyUnsealed(uint256 sealId);
    /// @notice The caller is not an active REGULATOR.
    error SealedNotRegulator(address caller);
    /// @notice The department that sealed cannot also be the second authority that extends.
    error SealedSameAuthority(uint256 sealId, address caller);
    /// @notice An extension must be recorded before the unseal date; after it, only the reveal clears the seal.
    error SealedExtensionTooLate(uint256 sealId, uint64 unsealAt);
    /// @notice An extension needs a reason reference.
    error SealedZeroReason();
    /// @notice Before the unseal date only the sealing department may reveal.
    error SealedTooEarly(uint256 sealId, uint64 unsealAt);
    /// @notice The opening does not hash to the seal's commitment.
    error SealedOpeningMismatch(uint256 sealId, bytes32 commitment, bytes32 opened);

    /// @notice Record a sealed access to `assetId`'s data. Caller: the asset's issuer, an active ISSUER of kind
    ///         DEPARTMENT. The subject is the asset's owner, read from the ledger.
    /// @param assetId The asset whose data was disclosed.
    /// @param commitment `hashOpening(institution, assetId, fieldsMask, legalBasisRef, salt)`, salt secret.
    /// @param unsealAt When the details are due: after now, at most now + MAX_SEAL_PERIOD.
    /// @return sealId The new record's id (sequential from 1).
    function seal(bytes32 assetId, bytes32 commitment, uint64 unsealAt) external returns (uint256 sealId);

    /// @notice Move a seal's unseal date later. Caller: an active REGULATOR other than the sealing department,
    ///         before the current unseal date; the new date at most now + MAX_SEAL_PERIOD.
    /// @param reasonHash Reference to the reason (e.g. hash of the court order); not zero.
    function extend(uint256 sealId, uint64 unsealAt, bytes32 reasonHash) external;

    /// @notice Reveal a seal's details. Anyone holding the opening, from the unseal date on; the sealing
    ///         department also before it (it may lift its own seal). The opening must hash to the commitment.
    function unseal(uint256 sealId, address institution, uint64 fieldsMask, bytes32 legalBasisRef, bytes32 salt)
        external;

    /// @notice The commitment of an opening (what `seal` takes and `unseal` checks).
    function hashOpening(address institution, bytes32 assetId, uint64 fieldsMask, bytes32 legalBasisRef, bytes32 salt)
        external
        pure
        returns (bytes32);

    /// @notice A seal record (status NONE: no such seal).
    function getSeal(uint256 sealId) external view returns (SealedAccess memory);

    /// @notice How many seals exist; their ids are 1..sealCount().
    function sealCount() external view returns (uint256);

    /// @notice How many seals name `subject`.
    function sealCountOf(address subject) external view returns (uint256);

    /// @notice The `index`-th seal (0-based, in order of sealing) naming `subject`.
    function sealOfAt(address subject, uint256 index) external view returns (uint256);

    /// @notice The ledger that created this companion.
    function ledger() external view returns (address);

    /// @notice The longest a seal or an extension may reach ahead of now (seconds).
    // slither-disable-next-line naming-convention -- a constant's getter (DataSafeSealed's public constant)
    function MAX_SEAL_PERIOD() external view returns (uint64);
}
