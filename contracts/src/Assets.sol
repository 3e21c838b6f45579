// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAssets, Asset, AssetStatus} from "./interfaces/IAssets.sol";
import {MemberStatus} from "./interfaces/IMembership.sol";
import {Schemas} from "./Schemas.sol";

/// @title Assets
/// @notice One record per asset version. Records are stored under an internal sequence number so that a grant can
///         reference its asset inside one packed storage slot; `assetId -> number` is the public key.
abstract contract Assets is Schemas, IAssets {
    /// @dev Slot 0 holds everything an access check and a grant need (owner, status, field count).
    struct AssetRecord {
        address owner;
        AssetStatus status;
        uint32 version;
        uint16 fieldCount;
        address issuer;
        bytes32 assetId;
        bytes32 schemaId;
        bytes32 root;
        bytes32 ciphertextDigest;
        bytes32 previous;
        bytes32 next;
    }

    mapping(bytes32 assetId => uint40 assetNo) internal _assetNos;
    mapping(uint40 assetNo => AssetRecord record) internal _assets;
    uint40 private _assetCount;

    /// @inheritdoc IAssets
    function anchorAsset(bytes32 assetId, address owner, bytes32 schemaId, bytes32 root, bytes32 ciphertextDigest)
        external
    {
        _requireAnyRole(msg.sender, ROLE_ISSUER);
        // Schemas are owned: only their registrant, or departments it authorised, anchor under them.
        uint16 fieldCount = _schemaFieldsFor(schemaId, msg.sender);
        // Assets live in subjects' safes only.
        if (_members[owner].status != MemberStatus.ACTIVE || _members[owner].roles & ROLE_SUBJECT == 0) {
            revert AssetOwnerNotSubject(owner);
        }
        _store(assetId, owner, 1, fieldCount, schemaId, root, ciphertextDigest, bytes32(0));
        emit AssetAnchored(assetId, owner, msg.sender, schemaId, root, ciphertextDigest, uint64(block.timestamp));
    }

    /// @inheritdoc IAssets
    function supersedeAsset(bytes32 oldAssetId, bytes32 newAssetId, bytes32 root, bytes32 ciphertextDigest) external {
        AssetRecord storage old = _issuerRecord(oldAssetId);
        AssetStatus status = old.status;
        if (status != AssetStatus.ACTIVE && status != AssetStatus.DISPUTED) {
            revert AssetInvalidStatus(oldAssetId, status);
        }
        address owner = old.owner;
        uint32 version = old.version + 1;
        _store(newAssetId, owner, version, old.fieldCount, old.schemaId, root, ciphertextDigest, oldAssetId);
        old.status = AssetStatus.SUPERSEDED;
        old.next = newAssetId;
        emit AssetSuperseded(
            oldAssetId, newAssetId, owner, msg.sender, version, root, ciphertextDigest, uint64(block.timestamp)
        );
    }

    /// @inheritdoc IAssets
    function disputeAsset(bytes32 assetId, bytes32 reasonHash) external {
        AssetRecord storage record = _assets[_assetNoOf(assetId)];
        address owner = record.owner;
        // The owner or its agent, directly or through the trusted forwarder (ERC-2771).
        address sender = _msgSender();
        if (sender != owner && !_isLiveAgent(owner, sender)) revert AssetNotOwner(assetId, sender);
        if (record.status != AssetStatus.ACTIVE) revert AssetInvalidStatus(assetId, record.status);
        record.status = AssetStatus.DISPUTED;
        emit AssetDisputed(assetId, owner, sender, reasonHash, uint64(block.timestamp));
    }

    /// @inheritdoc IAssets
    function resolveDispute(bytes32 assetId, bytes32 resolutionHash) external {
        AssetRecord storage record = _issuerRecord(assetId);
        if (record.status != AssetStatus.DISPUTED) revert AssetInvalidStatus(assetId, record.status);
        record.status = AssetStatus.ACTIVE;
        emit DisputeResolved(assetId, msg.sender, resolutionHash, uint64(block.timestamp));
    }

    /// @inheritdoc IAssets
    function retireAsset(bytes32 assetId, bytes32 reasonHash) external {
        AssetRecord storage record = _issuerRecord(assetId);
        AssetStatus status = record.status;
        if (status != AssetStatus.ACTIVE && status != AssetStatus.DISPUTED) revert AssetInvalidStatus(assetId, status);
        record.status = AssetStatus.RETIRED;
        emit AssetRetired(assetId, msg.sender, reasonHash, uint64(block.timestamp));
    }

    /// @inheritdoc IAssets
    function getAsset(bytes32 assetId) external view returns (Asset memory asset) {
        uint40 assetNo = _assetNos[assetId];
        if (assetNo == 0) return asset;
        AssetRecord storage record = _assets[assetNo];
        asset = Asset({
            owner: record.owner,
            status: record.status,
            version: record.version,
            issuer: record.issuer,
            schemaId: record.schemaId,
            root: record.root,
            ciphertextDigest: record.ciphertextDigest,
            previous: record.previous,
            next: record.next
        });
    }

    function _assetNoOf(bytes32 assetId) internal view returns (uint40 assetNo) {
        assetNo = _assetNos[assetId];
        if (assetNo == 0) revert AssetNotFound(assetId);
    }

    /// @dev The record of `assetId` if the caller is its issuer and still an active ISSUER.
    function _issuerRecord(bytes32 assetId) private view returns (AssetRecord storage record) {
        record = _assets[_assetNoOf(assetId)];
        if (record.issuer != msg.sender) revert AssetNotIssuer(assetId, msg.sender);
        _requireAnyRole(msg.sender, ROLE_ISSUER);
    }

    function _store(
        bytes32 assetId,
        address owner,
        uint32 version,
        uint16 fieldCount,
        bytes32 schemaId,
        bytes32 root,
        bytes32 ciphertextDigest,
        bytes32 previous
    ) private {
        if (assetId == bytes32(0)) revert AssetZeroId();
        if (_assetNos[assetId] != 0) revert AssetAlreadyExists(assetId);
        uint40 assetNo = ++_assetCount;
        _assetNos[assetId] = assetNo;
        AssetRecord storage record = _assets[assetNo];
        record.owner = owner;
        record.status = AssetStatus.ACTIVE;
        record.version = version;
        record.fieldCount = fieldCount;
        record.issuer = msg.sender;
        record.assetId = assetId;
        record.schemaId = schemaId;
        record.root = root;
        record.ciphertextDigest = ciphertextDigest;
        record.previous = previous;
    }
}
