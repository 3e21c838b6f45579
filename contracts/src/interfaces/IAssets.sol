// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice Lifecycle of one asset version.
enum AssetStatus {
    NONE,
    ACTIVE,
    DISPUTED,
    SUPERSEDED,
    RETIRED
}

/// @notice One version of a data asset. Every version is its own record under its own assetId.
/// @param owner The subject whose safe holds the asset.
/// @param status Lifecycle status.
/// @param version 1 for an anchored asset, previous + 1 for a superseding one.
/// @param issuer The issuer that anchored it.
/// @param schemaId The schema of its fields.
/// @param root Merkle root over the salted field commitments.
/// @param ciphertextDigest Digest of the ciphertext bundle in the vault.
/// @param previous The version it superseded (zero for version 1).
/// @param next The version that superseded it (zero unless SUPERSEDED).
struct Asset {
    address owner;
    AssetStatus status;
    uint32 version;
    address issuer;
    bytes32 schemaId;
    bytes32 root;
    bytes32 ciphertextDigest;
    bytes32 previous;
    bytes32 next;
}

/// @title IAssets
/// @notice Issuers anchor data assets into subjects' safes; owners dispute; issuers resolve, supersede, retire.
interface IAssets {
    /// @notice Emitted when an issuer anchors a new asset (version 1).
    event AssetAnchored(
        bytes32 indexed assetId,
        address indexed owner,
        address indexed issuer,
        bytes32 schemaId,
        bytes32 root,
        bytes32 ciphertextDigest,
        uint64 timestamp
    );
    /// @notice Emitted when an issuer publishes a new version; `oldAssetId` becomes SUPERSEDED.
    event AssetSuperseded(
        bytes32 indexed oldAssetId,
        bytes32 indexed newAssetId,
        address indexed owner,
        address issuer,
        uint32 version,
        bytes32 root,
        bytes32 ciphertextDigest,
        uint64 timestamp
    );
    /// @notice Emitted when the owner (or its agent) disputes an asset.
    event AssetDisputed(
        bytes32 indexed assetId, address indexed owner, address indexed by, bytes32 reasonHash, uint64 timestamp
    );
    /// @notice Emitted when the issuer resolves a dispute without a new version.
    event DisputeResolved(bytes32 indexed assetId, address indexed issuer, bytes32 resolutionHash, uint64 timestamp);
    /// @notice Emitted when the issuer retires an asset.
    event AssetRetired(bytes32 indexed assetId, address indexed issuer, bytes32 reasonHash, uint64 timestamp);

    /// @notice The zero asset id was given.
    error AssetZeroId();
    /// @notice The asset id is already used.
    error AssetAlreadyExists(bytes32 assetId);
    /// @notice The asset id is unknown.
    error AssetNotFound(bytes32 assetId);
    /// @notice The caller is not the asset's issuer.
    error AssetNotIssuer(bytes32 assetId, address caller);
    /// @notice The caller is neither the asset's owner nor a live agent of it.
    error AssetNotOwner(bytes32 assetId, address caller);
    /// @notice The asset's status does not allow the operation.
    error AssetInvalidStatus(bytes32 assetId, AssetStatus status);
    /// @notice The owner is not an active SUBJECT.
    error AssetOwnerNotSubject(address owner);

    /// @notice Anchors version 1 of an asset for `owner` (active ISSUER that registered the schema or was authorised
    ///         by its registrant, see `ISchemas.setSchemaIssuer`; owner an active SUBJECT).
    /// @param assetId Issuer-chosen id (e.g. keccak of issuer-side ids), not zero, unused.
    /// @param owner The subject.
    /// @param schemaId A registered schema.
    /// @param root Merkle root over the salted field commitments.
    /// @param ciphertextDigest Digest of the ciphertext bundle.
    function anchorAsset(bytes32 assetId, address owner, bytes32 schemaId, bytes32 root, bytes32 ciphertextDigest)
        external;

    /// @notice Publishes a new version of an ACTIVE or DISPUTED asset (its issuer, still an active ISSUER).
    ///         The old record becomes SUPERSEDED and stays queryable; a dispute is thereby resolved.
    /// @param oldAssetId The current version.
    /// @param newAssetId Id of the new version, not zero, unused.
    /// @param root New Merkle root.
    /// @param ciphertextDigest New ciphertext digest.
    function supersedeAsset(bytes32 oldAssetId, bytes32 newAssetId, bytes32 root, bytes32 ciphertextDigest) external;

    /// @notice Disputes an ACTIVE asset (its owner, or a live agent of the owner).
    /// @param assetId The asset.
    /// @param reasonHash Hash of the off-chain reason.
    function disputeAsset(bytes32 assetId, bytes32 reasonHash) external;

    /// @notice Resolves a dispute without changing the data: DISPUTED -> ACTIVE (the asset's issuer).
    /// @param assetId The asset.
    /// @param resolutionHash Hash of the off-chain resolution.
    function resolveDispute(bytes32 assetId, bytes32 resolutionHash) external;

    /// @notice Retires an ACTIVE or DISPUTED asset (the asset's issuer). Terminal.
    /// @param assetId The asset.
    /// @param reasonHash Hash of the off-chain reason.
    function retireAsset(bytes32 assetId, bytes32 reasonHash) external;

    /// @notice The asset record (all zero if unknown).
    /// @param assetId The asset.
    function getAsset(bytes32 assetId) external view returns (Asset memory);
}
