// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import "./interfaces/ILifecycle.sol";
import {GrantStatus, REASON_OK, REASON_NOT_FOUND, REASON_NOT_GRANTEE, REASON_SIGNATURE_INVALID} from
    "./interfaces/IConsents.sol";
import {AssetStatus} from "./interfaces/IAssets.sol";
import {Consents} from "./Consents.sol";

/// @title Lifecycle
/// @notice Recall and deletion acknowledgements, kept in the grant's own storage slot (no new slot per item).
abstract contract Lifecycle is Consents, ILifecycle {
    bytes32 private constant _RECALL_TYPEHASH =
        keccak256("RecallAcknowledgement(bytes32 grantId,uint32 uses,uint64 at)");
    bytes32 private constant _DELETION_TYPEHASH =
        keccak256("DeletionAcknowledgement(bytes32 grantId,uint32 uses,uint64 at)");

    /// @inheritdoc ILifecycle
    function acknowledgeBatch(bytes calldata packed) external returns (uint8[] memory reasons) {
        _requireAnyRole(msg.sender, ROLE_CUSTODIAN);
        // Whole items only, as in recordAccessBatch.
        if (packed.length % ACK_ITEM_SIZE != 0) revert LifecycleMalformedBatch(packed.length);
        reasons = new uint8[](packed.length / ACK_ITEM_SIZE);
        uint256 start = 0;
        for (uint256 i = 0; i < reasons.length; ++i) {
            uint256 end;
            // end <= packed.length (whole items), so the sum cannot overflow.
            unchecked {
                end = start + ACK_ITEM_SIZE;
            }
            reasons[i] = _acknowledgePacked(packed[start:end]);
            start = end;
        }
    }

    /// @inheritdoc ILifecycle
    function hashAcknowledgement(uint8 kind, bytes32 grantId, uint32 uses, uint64 at) public view returns (bytes32) {
        // slither-disable-next-line uninitialized-local -- every branch below assigns it or reverts
        bytes32 typehash;
        if (kind == ACK_RECALL) typehash = _RECALL_TYPEHASH;
        else if (kind == ACK_DELETION) typehash = _DELETION_TYPEHASH;
        else revert LifecycleUnknownKind(kind);
        return _hashTypedData(keccak256(abi.encode(typehash, grantId, uses, at)));
    }

    /// @dev One packed item (layout in ILifecycle.acknowledgeBatch): recorded, or skipped with a refusal event.
    function _acknowledgePacked(bytes calldata item) private returns (uint8 reason) {
        uint8 kind = uint8(item[0]);
        bytes32 grantId = bytes32(item[1:33]);
        uint32 uses = uint32(bytes4(item[33:37]));
        uint64 at = uint64(bytes8(item[37:45]));
        address signer = address(0);
        if (kind != ACK_RECALL && kind != ACK_DELETION) {
            reason = REASON_ACK_KIND_UNKNOWN;
        } else if (at > block.timestamp) {
            // Nobody acknowledges in advance: the time is when it was done.
            reason = REASON_ACK_IN_FUTURE;
        } else {
            bytes32 digest = hashAcknowledgement(kind, grantId, uses, at);
            signer = _tryRecoverCompact(digest, bytes32(item[45:77]), bytes32(item[77:109]));
            if (signer == address(0)) reason = REASON_SIGNATURE_INVALID;
            else reason = _acknowledge(kind, grantId, uses, at, signer);
        }
        if (reason != REASON_OK) emit AcknowledgementRefused(grantId, signer, kind, reason);
    }

    function _acknowledge(uint8 kind, bytes32 grantId, uint32 uses, uint64 at, address signer)
        private
        returns (uint8)
    {
        // One slot computation for the read and the write of the `acks` bit.
        GrantRecord storage stored = _grants[grantId];
        GrantRecord memory record = stored;
        if (record.status == GrantStatus.NONE) return REASON_NOT_FOUND;
        // Member numbers start at 1, so a non-member (number 0) never matches.
        if (_members[signer].number != record.granteeNumber) return REASON_NOT_GRANTEE;
        // The bit is the replay guard: an acknowledgement is recorded once per grant and kind.
        if (record.acks & kind != 0) return REASON_ALREADY_ACKNOWLEDGED;
        if (kind == ACK_RECALL) {
            // Accesses to a superseded version are refused, so `uses` counts pulls of the old version only.
            if (record.uses == 0 || _assets[record.assetNo].status != AssetStatus.SUPERSEDED) {
                return REASON_NOT_RECALLED;
            }
        } else if (!_hasEnded(record)) {
            return REASON_GRANT_LIVE;
        }
        // An ended or recalled grant's count no longer moves, so the signer covers exactly what it pulled.
        if (uses != record.uses) return REASON_USES_MISMATCH;
        stored.acks = record.acks | kind;
        if (kind == ACK_RECALL) emit RecallAcknowledged(grantId, at);
        else emit DeletionAcknowledged(grantId, at);
        return REASON_OK;
    }

    /// @dev Revoked, expired or out of uses (maxUses 0: the 16-bit counter is the limit, as in `check`).
    function _hasEnded(GrantRecord memory record) private view returns (bool) {
        uint16 limit = record.maxUses == 0 ? type(uint16).max : record.maxUses;
        return record.status == GrantStatus.REVOKED || block.timestamp >= record.expiry || record.uses >= limit;
    }
}
