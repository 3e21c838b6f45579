// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IDataSafeSealed, SealedAccess, SealStatus} from "./interfaces/IDataSafeSealed.sol";
import {IMembership, Member, MemberKind, MemberStatus} from "./interfaces/IMembership.sol";
import {IAssets, Asset, AssetStatus} from "./interfaces/IAssets.sol";

/// @title DataSafeSealed
/// @notice Sealed accesses: a department's lawful access without consent, recorded as a commitment with an unseal
///         date; the subject learns at once that it exists, everyone reads the details after the date (see
///         docs/contracts.md, "Sealed accesses").
/// @dev A companion of the ledger, created by its constructor (CREATE nonce 3). No immutables: the runtime code hash
///      is the same in every deployment and clients compare it with their build.
contract DataSafeSealed is IDataSafeSealed {
    uint16 private constant _ROLE_ISSUER = 2;
    uint16 private constant _ROLE_REGULATOR = 8;
    bytes32 private constant _OPENING_TYPEHASH = keccak256(
        "SealedAccessOpening(address institution,bytes32 assetId,uint64 fieldsMask,bytes32 legalBasisRef,bytes32 salt)"
    );

    /// @inheritdoc IDataSafeSealed
    uint64 public constant MAX_SEAL_PERIOD = 366 days;

    /// @dev Storage, not an immutable: the runtime code stays the same in every deployment.
    // slither-disable-next-line immutable-states -- an immutable would make the code hash differ per deployment
    address private _ledger;
    uint256 private _sealCount;
    mapping(uint256 sealId => SealedAccess record) private _seals;
    mapping(address subject => uint256[] sealIds) private _sealsOf;

    /// @dev Created by the ledger's constructor: the creator is the ledger it reads.
    constructor() {
        _ledger = msg.sender;
    }

    /// @inheritdoc IDataSafeSealed
    function seal(bytes32 assetId, bytes32 commitment, uint64 unsealAt) external returns (uint256 sealId) {
        Member memory caller = IMembership(_ledger).getMember(msg.sender);
        // Only an active department with the issuer role records a sealed access.
        if (
            caller.status != MemberStatus.ACTIVE || caller.kind != MemberKind.DEPARTMENT
                || caller.roles & _ROLE_ISSUER == 0
        ) revert SealedNotDepartment(msg.sender);
        Asset memory asset = IAssets(_ledger).getAsset(assetId);
        if (asset.status == AssetStatus.NONE) revert SealedUnknownAsset(assetId);
        // A department seals only accesses to data it holds: the data it issued.
        if (asset.issuer != msg.sender) revert SealedNotAssetIssuer(assetId, msg.sender);
        if (commitment == bytes32(0)) revert SealedZeroCommitment();
        uint64 now_ = uint64(block.timestamp);
        _checkDate(unsealAt, now_ + 1, now_);
        sealId = ++_sealCount;
        _seals[sealId] = SealedAccess({
            department: msg.sender,
            unsealAt: unsealAt,
            status: SealStatus.SEALED,
            extensions: 0,
            subject: asset.owner,
            sealedAt: now_,
            unsealedAt: 0,
            assetId: assetId,
            commitment: commitment
        });
        _sealsOf[asset.owner].push(sealId);
        emit AccessSealed(sealId, asset.owner, msg.sender, assetId, commitment, unsealAt, now_);
    }

    /// @inheritdoc IDataSafeSealed
    function extend(uint256 sealId, uint64 unsealAt, bytes32 reasonHash) external {
        SealedAccess storage record = _sealed(sealId);
        Member memory caller = IMembership(_ledger).getMember(msg.sender);
        if (caller.status != MemberStatus.ACTIVE || caller.roles & _ROLE_REGULATOR == 0) {
            revert SealedNotRegulator(msg.sender);
        }
        // The second authority: the department cannot prolong its own secrecy.
        if (msg.sender == record.department) revert SealedSameAuthority(sealId, msg.sender);
        if (reasonHash == bytes32(0)) revert SealedZeroReason();
        uint64 now_ = uint64(block.timestamp);
        uint64 previous = record.unsealAt;
        // In time or not at all: an overdue seal is cleared only by its reveal.
        if (now_ >= previous) revert SealedExtensionTooLate(sealId, previous);
        _checkDate(unsealAt, previous + 1, now_);
        record.unsealAt = unsealAt;
        record.extensions += 1;
        emit SealExtended(sealId, record.subject, msg.sender, previous, unsealAt, reasonHash, now_);
    }

    /// @inheritdoc IDataSafeSealed
    function unseal(uint256 sealId, address institution, uint64 fieldsMask, bytes32 legalBasisRef, bytes32 salt)
        external
    {
        SealedAccess storage record = _sealed(sealId);
        uint64 now_ = uint64(block.timestamp);
        // Before the date only the department may lift its own seal; nobody else may tip anyone off early.
        if (now_ < record.unsealAt && msg.sender != record.department) {
            revert SealedTooEarly(sealId, record.unsealAt);
        }
        bytes32 assetId = record.assetId;
        bytes32 opened = hashOpening(institution, assetId, fieldsMask, legalBasisRef, salt);
        if (opened != record.commitment) revert SealedOpeningMismatch(sealId, record.commitment, opened);
        record.status = SealStatus.UNSEALED;
        record.unsealedAt = now_;
        emit AccessUnsealed(
            sealId,
            record.subject,
            institution,
            record.department,
            assetId,
            fieldsMask,
            legalBasisRef,
            salt,
            msg.sender,
            now_
        );
    }

    /// @inheritdoc IDataSafeSealed
    function hashOpening(address institution, bytes32 assetId, uint64 fieldsMask, bytes32 legalBasisRef, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(_OPENING_TYPEHASH, institution, assetId, fieldsMask, legalBasisRef, salt));
    }

    /// @inheritdoc IDataSafeSealed
    function getSeal(uint256 sealId) external view returns (SealedAccess memory) {
        return _seals[sealId];
    }

    /// @inheritdoc IDataSafeSealed
    function sealCount() external view returns (uint256) {
        return _sealCount;
    }

    /// @inheritdoc IDataSafeSealed
    function sealCountOf(address subject) external view returns (uint256) {
        return _sealsOf[subject].length;
    }

    /// @inheritdoc IDataSafeSealed
    function sealOfAt(address subject, uint256 index) external view returns (uint256) {
        return _sealsOf[subject][index];
    }

    /// @inheritdoc IDataSafeSealed
    function ledger() external view returns (address) {
        return _ledger;
    }

    /// @dev A record that exists and is still sealed.
    function _sealed(uint256 sealId) private view returns (SealedAccess storage record) {
        record = _seals[sealId];
        if (record.status == SealStatus.NONE) revert SealedNotFound(sealId);
        if (record.status == SealStatus.UNSEALED) revert SealedAlreadyUnsealed(sealId);
    }

    /// @dev An unseal date in [earliest, now + MAX_SEAL_PERIOD].
    function _checkDate(uint64 unsealAt, uint64 earliest, uint64 now_) private pure {
        uint64 latest = now_ + MAX_SEAL_PERIOD;
        if (unsealAt < earliest || unsealAt > latest) revert SealedInvalidUnsealDate(unsealAt, earliest, latest);
    }
}
