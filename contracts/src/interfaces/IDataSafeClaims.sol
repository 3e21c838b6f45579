// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice A subject's signed request that a department issue a record into her safe.
/// @param subject The signer: an active SUBJECT member of the ledger.
/// @param department The ISSUER asked; it must issue under `schemaId`.
/// @param schemaId The record asked for, by the schema the department issues under.
/// @param referenceHash A hash commitment the department can match (e.g. keccak256 of a salt and a case number); no
///        personal data on chain.
/// @param nonce The subject's next claims nonce (`nonces(subject)`): a request lands once.
/// @param deadline Unix time after which the request is void.
struct ClaimRequest {
    address subject;
    address department;
    bytes32 schemaId;
    bytes32 referenceHash;
    uint256 nonce;
    uint64 deadline;
}

/// @notice Where a claim stands.
enum ClaimStatus {
    NONE,
    OPEN,
    FULFILLED,
    REFUSED
}

/// @notice One claim as stored. `outcome` is the issued asset (FULFILLED) or the reason hash (REFUSED).
struct Claim {
    address subject;
    ClaimStatus status;
    uint64 filedAt;
    address department;
    uint64 closedAt;
    uint16 reasonCode;
    bytes32 schemaId;
    bytes32 outcome;
}

/// @title IDataSafeClaims
/// @notice Claims (申领): a subject asks a department to issue a record into her safe; the department issues it and
///         links the asset, or refuses with a reason. A companion of the ledger, created by its constructor: no
///         immutables, so its runtime code hash is a build constant a client compares with its own build; it reads the
///         ledger (membership, schemas, assets) through view calls.
interface IDataSafeClaims {
    /// @notice Emitted when a subject's signed claim was filed (relayed by `relayer`).
    event ClaimFiled(
        bytes32 indexed claimId,
        address indexed subject,
        address indexed department,
        bytes32 schemaId,
        bytes32 referenceHash,
        address relayer,
        uint64 at
    );
    /// @notice Emitted when the department issued the claimed record (`assetId`) into the subject's safe.
    event ClaimFulfilled(
        bytes32 indexed claimId, address indexed subject, address indexed department, bytes32 assetId, uint64 at
    );
    /// @notice Emitted when the department refused the claim; the reason text stays off chain (`reasonHash`).
    event ClaimRefused(
        bytes32 indexed claimId,
        address indexed subject,
        address indexed department,
        uint16 reasonCode,
        bytes32 reasonHash,
        uint64 at
    );

    /// @notice The request's deadline has passed.
    error ClaimsExpired(uint64 deadline);
    /// @notice The request's nonce is not the subject's next one (replayed, or out of order).
    error ClaimsInvalidNonce(address subject, uint256 expected, uint256 given);
    /// @notice The signature is not by the subject (`recovered` is zero for a malformed signature).
    error ClaimsSignerMismatch(address subject, address recovered);
    /// @notice The relayer is not an active member of the ledger.
    error ClaimsRelayerNotMember(address relayer);
    /// @notice The claimant is not an active SUBJECT (not a member, suspended, or another role).
    error ClaimsNotSubject(address subject);
    /// @notice The department is not an active ISSUER.
    error ClaimsNotDepartment(address department);
    /// @notice The department does not issue under `schemaId`.
    error ClaimsSchemaNotIssued(bytes32 schemaId, address department);
    /// @notice A claim carries a non-zero reference.
    error ClaimsZeroReference();
    /// @notice No claim has this id.
    error ClaimsNotFound(bytes32 claimId);
    /// @notice Only the department asked answers a claim.
    error ClaimsNotClaimDepartment(bytes32 claimId, address caller);
    /// @notice The claim was already fulfilled or refused.
    error ClaimsNotOpen(bytes32 claimId, ClaimStatus status);
    /// @notice The asset is not the claimed record: another owner, issuer or schema, or not active.
    error ClaimsAssetMismatch(bytes32 claimId, bytes32 assetId);
    /// @notice The asset already fulfilled another claim.
    error ClaimsAssetAlreadyLinked(bytes32 assetId, bytes32 claimId);
    /// @notice A refusal carries a non-zero reason code.
    error ClaimsZeroReasonCode();

    /// @notice Files `request`, signed by its subject; the relayer (an active member, usually the custodian) pays
    ///         the gas.
    /// @param request The signed request.
    /// @param signature 65-byte ECDSA signature by `request.subject` over `hashClaimRequest(request)`.
    /// @return claimId The request's EIP-712 digest, the claim's id.
    function fileClaim(ClaimRequest calldata request, bytes calldata signature) external returns (bytes32 claimId);

    /// @notice The claim's department links the record it issued into the subject's safe: same owner, issuer and
    ///         schema, active, and linked to no other claim.
    /// @param claimId The claim.
    /// @param assetId The asset the department anchored for it.
    function fulfilClaim(bytes32 claimId, bytes32 assetId) external;

    /// @notice The claim's department refuses it.
    /// @param claimId The claim.
    /// @param reasonCode A non-zero code from the published list (docs/contracts.md, "Claims").
    /// @param reasonHash keccak256 of the reason text the subject is given off chain (zero for none).
    function refuseClaim(bytes32 claimId, uint16 reasonCode, bytes32 reasonHash) external;

    /// @notice The claim `claimId` (status NONE if there is none).
    function getClaim(bytes32 claimId) external view returns (Claim memory);

    /// @notice The claim an asset fulfilled (zero if none).
    function claimOfAsset(bytes32 assetId) external view returns (bytes32);

    /// @notice The next nonce `subject` signs.
    function nonces(address subject) external view returns (uint256);

    /// @notice The EIP-712 digest of `request` under this contract's domain ("DataSafeClaims", "1").
    function hashClaimRequest(ClaimRequest calldata request) external view returns (bytes32);

    /// @notice The ledger that created this contract, whose members, schemas and assets it reads.
    function ledger() external view returns (address);
}
