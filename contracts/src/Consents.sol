// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import "./interfaces/IConsents.sol";
import {AssetStatus} from "./interfaces/IAssets.sol";
import {Member, MemberStatus} from "./interfaces/IMembership.sol";
import {Assets} from "./Assets.sol";

/// @title Consents
/// @notice Field-level grants and the access records made under them.
abstract contract Consents is Assets, IConsents {
    bytes32 private constant _GRANT_TYPEHASH = keccak256(
        "GrantConsent(bytes32 assetId,address grantee,uint32 purpose,uint64 fieldsMask,uint64 notBefore,uint64 expiry,uint32 maxUses,uint32 retention,uint256 nonce,uint64 deadline)"
    );
    bytes32 private constant _REVOKE_TYPEHASH =
        keccak256("RevokeConsent(bytes32 grantId,uint256 nonce,uint64 deadline)");
    bytes32 private constant _PAUSE_TYPEHASH = keccak256("PauseConsent(bytes32 grantId,uint256 nonce,uint64 deadline)");
    bytes32 private constant _RESUME_TYPEHASH =
        keccak256("ResumeConsent(bytes32 grantId,uint256 nonce,uint64 deadline)");
    bytes32 private constant _APPROVAL_TYPEHASH =
        keccak256("GrantApproval(address enterprise,uint32 epoch,bytes32 grant)");
    bytes32 private constant _ACCESS_TYPEHASH =
        keccak256("AccessRequest(bytes32 grantId,uint64 fieldsMask,uint256 nonce,uint64 deadline)");

    /// @dev Everything an access check reads or writes, in one storage slot (31 bytes), and the grantee's
    ///      acknowledgements (ILifecycle), so that recording one rewrites a slot the grant already holds. The grantee is referenced
    ///      by its member number, whose record the check reads anyway for the suspension test.
    struct GrantRecord {
        uint32 granteeNumber;
        uint64 fieldsMask;
        GrantStatus status;
        uint32 notBefore;
        uint32 expiry;
        uint16 uses;
        uint16 maxUses;
        uint40 assetNo;
        uint8 acks;
    }

    /// @dev The terms no check reads: kept apart so accesses never load them, written only when non-zero.
    struct GrantExtra {
        uint32 purpose;
        uint32 retention;
    }

    mapping(bytes32 grantId => GrantRecord grant) internal _grants;
    mapping(bytes32 grantId => GrantExtra extra) private _extras;
    mapping(address signer => uint256 nonce) private _nonces;

    /// @dev A bitmap word of access nonces, as a struct so that one storage reference serves its read and its write.
    struct NonceWord {
        uint256 bits;
    }

    mapping(address grantee => mapping(uint256 word => NonceWord bits)) private _accessNonces;

    /// @inheritdoc IConsents
    function grant(GrantTerms calldata terms, uint256 nonce) external returns (bytes32 grantId) {
        return _grantAs(terms, msg.sender, nonce);
    }

    /// @inheritdoc IConsents
    function grantBySig(SignedGrant calldata signed) external returns (bytes32 grantId) {
        _requireActive(msg.sender);
        return _grantBySig(signed);
    }

    /// @inheritdoc IConsents
    function grantBatch(GrantTerms[] calldata terms, uint256[] calldata nonces_)
        external
        returns (bytes32[] memory grantIds)
    {
        if (terms.length != nonces_.length) revert ConsentLengthMismatch(terms.length, nonces_.length);
        grantIds = new bytes32[](terms.length);
        for (uint256 i = 0; i < terms.length; ++i) {
            grantIds[i] = _grantAs(terms[i], msg.sender, nonces_[i]);
        }
    }

    /// @inheritdoc IConsents
    function grantBySigBatch(SignedGrant[] calldata signed) external returns (bytes32[] memory grantIds) {
        _requireActive(msg.sender);
        grantIds = new bytes32[](signed.length);
        for (uint256 i = 0; i < signed.length; ++i) {
            grantIds[i] = _grantBySig(signed[i]);
        }
    }

    /// @inheritdoc IConsents
    function grantWithApprovals(GrantTerms calldata terms, uint256 nonce, uint64 deadline, bytes calldata approvals)
        external
        returns (bytes32 grantId)
    {
        _requireActive(msg.sender);
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
        if (approvals.length == 0 || approvals.length % 65 != 0) revert ConsentMalformedBatch(approvals.length);
        address owner = _assets[_assetNoOf(terms.assetId)].owner;
        bytes32 digest = _hashTypedData(
            keccak256(
                abi.encode(_APPROVAL_TYPEHASH, owner, _approvalPolicy[owner].epoch, hashGrant(terms, nonce, deadline))
            )
        );
        grantId = grantIdOf(owner, nonce);
        address previous = address(0);
        for (uint256 i = 0; i < approvals.length; i += 65) {
            address signer = _tryRecover(digest, approvals[i:i + 65]);
            // Live now, not when it signed; strictly ascending, so no signer counts twice (and address(0) never).
            if (signer <= previous || !_isLiveAgent(owner, signer)) {
                revert ConsentApprovalInvalid(owner, previous, signer);
            }
            previous = signer;
            emit ConsentApproved(grantId, signer);
        }
        uint256 given = approvals.length / 65;
        _grant(terms, owner, nonce);
        _requireApprovals(owner, terms.purpose, given);
    }

    /// @inheritdoc IConsents
    function revoke(bytes32 grantId) external {
        _revoke(grantId, msg.sender);
    }

    /// @inheritdoc IConsents
    function revokeBySig(bytes32 grantId, address signer, uint64 deadline, bytes calldata signature) external {
        _useStatusSignature(_REVOKE_TYPEHASH, grantId, signer, deadline, signature);
        _revoke(grantId, signer);
    }

    /// @inheritdoc IConsents
    function pause(bytes32 grantId) external {
        _pause(grantId, msg.sender);
    }

    /// @inheritdoc IConsents
    function pauseBySig(bytes32 grantId, address signer, uint64 deadline, bytes calldata signature) external {
        _useStatusSignature(_PAUSE_TYPEHASH, grantId, signer, deadline, signature);
        _pause(grantId, signer);
    }

    /// @inheritdoc IConsents
    function resume(bytes32 grantId) external {
        _resume(grantId, msg.sender);
    }

    /// @inheritdoc IConsents
    function resumeBySig(bytes32 grantId, address signer, uint64 deadline, bytes calldata signature) external {
        _useStatusSignature(_RESUME_TYPEHASH, grantId, signer, deadline, signature);
        _resume(grantId, signer);
    }

    /// @inheritdoc IConsents
    function recordAccess(AccessRequest calldata request, bytes calldata signature) external returns (uint32 use) {
        _requireAnyRole(msg.sender, ROLE_CUSTODIAN);
        if (block.timestamp > request.deadline) revert SignatureExpired(request.deadline);
        address grantee = _tryRecover(hashAccessRequest(request), signature);
        if (grantee == address(0)) revert SignatureInvalid();
        uint8 reason;
        (reason, use) = _recordAccess(request.grantId, request.fieldsMask, request.nonce, grantee);
        if (reason == REASON_NONCE_USED) revert AccessNonceUsed(grantee, request.nonce);
        if (reason != REASON_OK) revert ConsentAccessRefused(request.grantId, reason);
    }

    /// @inheritdoc IConsents
    function recordAccessBatch(bytes calldata packed) external returns (uint8[] memory reasons) {
        _requireAnyRole(msg.sender, ROLE_CUSTODIAN);
        // Whole items only: a cut or padded batch is an encoding bug, never a partial record.
        if (packed.length % ACCESS_ITEM_SIZE != 0) revert ConsentMalformedBatch(packed.length);
        reasons = new uint8[](packed.length / ACCESS_ITEM_SIZE);
        uint256 start = 0;
        for (uint256 i = 0; i < reasons.length; ++i) {
            uint256 end;
            // end <= packed.length (whole items), so the sum cannot overflow.
            unchecked {
                end = start + ACCESS_ITEM_SIZE;
            }
            reasons[i] = _recordPacked(packed[start:end]);
            start = end;
        }
    }

    /// @inheritdoc IConsents
    function check(bytes32 grantId, address grantee, uint64 fieldsMask)
        external
        view
        returns (bool allowed, uint8 reason)
    {
        GrantRecord memory record = _grants[grantId];
        reason = _check(record, grantee, fieldsMask);
        allowed = reason == REASON_OK;
    }

    /// @inheritdoc IConsents
    function getGrant(bytes32 grantId) external view returns (Grant memory result) {
        GrantRecord memory record = _grants[grantId];
        if (record.status == GrantStatus.NONE) return result;
        GrantExtra memory extra = _extras[grantId];
        result = Grant({
            assetId: _assets[record.assetNo].assetId,
            grantee: _memberByNumber[record.granteeNumber],
            purpose: extra.purpose,
            fieldsMask: record.fieldsMask,
            notBefore: record.notBefore,
            expiry: record.expiry,
            maxUses: record.maxUses,
            uses: record.uses,
            status: record.status,
            retention: extra.retention,
            acks: record.acks
        });
    }

    /// @inheritdoc IConsents
    function grantIdOf(address grantor, uint256 nonce) public pure returns (bytes32) {
        return keccak256(abi.encode(grantor, nonce));
    }

    /// @inheritdoc IConsents
    function nonces(address signer) external view returns (uint256) {
        return _nonces[signer];
    }

    /// @inheritdoc IConsents
    function isAccessNonceUsed(address grantee, uint256 nonce) external view returns (bool) {
        return _isAccessNonceUsed(grantee, nonce);
    }

    /// @inheritdoc IConsents
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparator();
    }

    /// @inheritdoc IConsents
    function hashGrant(GrantTerms calldata terms, uint256 nonce, uint64 deadline) public view returns (bytes32) {
        // GrantTerms is a static struct, so abi.encode lays its fields out inline, as EIP-712 encodeData wants.
        return _hashTypedData(keccak256(abi.encode(_GRANT_TYPEHASH, terms, nonce, deadline)));
    }

    /// @inheritdoc IConsents
    function hashRevoke(bytes32 grantId, uint256 nonce, uint64 deadline) external view returns (bytes32) {
        return _hashStatusChange(_REVOKE_TYPEHASH, grantId, nonce, deadline);
    }

    /// @inheritdoc IConsents
    function hashPause(bytes32 grantId, uint256 nonce, uint64 deadline) external view returns (bytes32) {
        return _hashStatusChange(_PAUSE_TYPEHASH, grantId, nonce, deadline);
    }

    /// @inheritdoc IConsents
    function hashResume(bytes32 grantId, uint256 nonce, uint64 deadline) external view returns (bytes32) {
        return _hashStatusChange(_RESUME_TYPEHASH, grantId, nonce, deadline);
    }

    /// @inheritdoc IConsents
    function hashAccessRequest(AccessRequest calldata request) public view returns (bytes32) {
        return _hashAccess(request.grantId, request.fieldsMask, request.nonce, request.deadline);
    }

    function _grantBySig(SignedGrant calldata signed) private returns (bytes32) {
        if (block.timestamp > signed.deadline) revert SignatureExpired(signed.deadline);
        bytes32 digest = hashGrant(signed.terms, signed.nonce, signed.deadline);
        _requireSigner(digest, signed.signature, signed.grantor);
        // Replay is impossible: the grant id is the (grantor, nonce) pair and an existing id reverts.
        return _grantAs(signed.terms, signed.grantor, signed.nonce);
    }

    /// @dev A grant by one signer (the owner or a live agent), every path but `grantWithApprovals`: the owner's own
    ///      key approves nothing (a thresholded owner grants through its agents' signatures), an agent's counts once.
    function _grantAs(GrantTerms calldata terms, address grantor, uint256 nonce) private returns (bytes32 grantId) {
        address owner;
        (grantId, owner) = _grant(terms, grantor, nonce);
        _requireApprovals(owner, terms.purpose, grantor == owner ? 0 : 1);
    }

    /// @dev The grant body, shared by every path; the caller checks the owner's approval threshold (a revert undoes
    ///      the write). No literal argument, so the optimizer keeps one copy of this body.
    function _grant(GrantTerms calldata terms, address grantor, uint256 nonce)
        private
        returns (bytes32 grantId, address owner)
    {
        uint40 assetNo = _assetNoOf(terms.assetId);
        AssetRecord storage asset = _assets[assetNo];
        owner = asset.owner;
        if (grantor == owner) {
            _requireActive(owner);
        } else if (!_isLiveAgent(owner, grantor)) {
            revert ConsentNotAuthorized(terms.assetId, grantor);
        }
        if (asset.status != AssetStatus.ACTIVE) revert ConsentAssetNotActive(terms.assetId, asset.status);
        uint16 fieldCount = asset.fieldCount;
        // A mask must name at least one field and no bit beyond the schema.
        if (terms.fieldsMask == 0 || (fieldCount < 64 && terms.fieldsMask >> fieldCount != 0)) {
            revert ConsentInvalidFieldsMask(terms.fieldsMask, fieldCount);
        }
        if (terms.expiry <= block.timestamp || terms.expiry <= terms.notBefore || terms.expiry > type(uint32).max) {
            revert ConsentInvalidWindow(terms.notBefore, terms.expiry);
        }
        if (terms.maxUses > type(uint16).max) revert ConsentInvalidMaxUses(terms.maxUses);
        Member storage grantee = _members[terms.grantee];
        if (grantee.status != MemberStatus.ACTIVE || grantee.roles & ROLE_CONSUMER == 0) {
            revert ConsentInvalidGrantee(terms.grantee);
        }
        grantId = grantIdOf(grantor, nonce);
        if (_grants[grantId].status != GrantStatus.NONE) revert ConsentGrantExists(grantId);
        // expiry > notBefore, expiry fits 32 bits and maxUses 16 bits, so every cast is exact.
        _grants[grantId] = GrantRecord({
            granteeNumber: grantee.number,
            fieldsMask: terms.fieldsMask,
            status: GrantStatus.ACTIVE,
            notBefore: uint32(terms.notBefore),
            expiry: uint32(terms.expiry),
            uses: 0,
            maxUses: uint16(terms.maxUses),
            assetNo: assetNo,
            acks: 0
        });
        if (terms.purpose != 0 || terms.retention != 0) {
            _extras[grantId] = GrantExtra({purpose: terms.purpose, retention: terms.retention});
        }
        emit ConsentGranted(
            grantId, terms.assetId, terms.grantee, owner, grantor, terms, nonce, uint64(block.timestamp)
        );
    }

    function _revoke(bytes32 grantId, address account) private {
        GrantRecord storage record = _authorizedRecord(grantId, account);
        GrantStatus status = record.status;
        if (status == GrantStatus.REVOKED) revert ConsentInvalidStatus(grantId, status);
        record.status = GrantStatus.REVOKED;
        emit ConsentRevoked(grantId, account, uint64(block.timestamp));
    }

    function _pause(bytes32 grantId, address account) private {
        GrantRecord storage record = _authorizedRecord(grantId, account);
        if (record.status != GrantStatus.ACTIVE) revert ConsentInvalidStatus(grantId, record.status);
        record.status = GrantStatus.PAUSED;
        emit ConsentPaused(grantId, account, uint64(block.timestamp));
    }

    function _resume(bytes32 grantId, address account) private {
        GrantRecord storage record = _authorizedRecord(grantId, account);
        // Resuming re-enables a grant, so, like granting, it needs an active grantor and (one signer being all it
        // carries) an owner whose threshold one agent meets; revoke and pause need neither.
        _requireActive(account);
        address owner = _assets[record.assetNo].owner;
        _requireApprovals(owner, _extras[grantId].purpose, account == owner ? 0 : 1);
        if (record.status != GrantStatus.PAUSED) revert ConsentInvalidStatus(grantId, record.status);
        record.status = GrantStatus.ACTIVE;
        emit ConsentResumed(grantId, account, uint64(block.timestamp));
    }

    function _requireApprovals(address owner, uint32 purpose, uint256 approvals) private view {
        uint256 needed = _approvalsNeeded(owner, purpose);
        if (approvals < needed) revert ConsentApprovalsMissing(needed, approvals);
    }

    /// @dev The grant if `account` is the asset's owner or a live agent of the owner (checked now, not at grant time).
    function _authorizedRecord(bytes32 grantId, address account) private view returns (GrantRecord storage record) {
        record = _grants[grantId];
        if (record.status == GrantStatus.NONE) revert ConsentNotFound(grantId);
        address owner = _assets[record.assetNo].owner;
        if (account != owner && !_isLiveAgent(owner, account)) revert ConsentNotGrantor(grantId, account);
    }

    /// @dev Verifies a Revoke/Pause/Resume signature over the signer's current sequential nonce and consumes it.
    function _useStatusSignature(
        bytes32 typehash,
        bytes32 grantId,
        address signer,
        uint64 deadline,
        bytes calldata signature
    ) private {
        _requireActive(msg.sender);
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
        uint256 nonce = _nonces[signer];
        _requireSigner(_hashStatusChange(typehash, grantId, nonce, deadline), signature, signer);
        _nonces[signer] = nonce + 1;
    }

    function _hashStatusChange(bytes32 typehash, bytes32 grantId, uint256 nonce, uint64 deadline)
        private
        view
        returns (bytes32)
    {
        return _hashTypedData(keccak256(abi.encode(typehash, grantId, nonce, deadline)));
    }

    function _requireSigner(bytes32 digest, bytes calldata signature, address expected) private pure {
        address recovered = _tryRecover(digest, signature);
        if (recovered == address(0)) revert SignatureInvalid();
        if (recovered != expected) revert SignatureSignerMismatch(expected, recovered);
    }

    function _hashAccess(bytes32 grantId, uint64 fieldsMask, uint256 nonce, uint64 deadline)
        private
        view
        returns (bytes32)
    {
        return _hashTypedData(keccak256(abi.encode(_ACCESS_TYPEHASH, grantId, fieldsMask, nonce, deadline)));
    }

    /// @dev One packed item (layout in IConsents.recordAccessBatch): recorded, or skipped with `AccessRefused`.
    function _recordPacked(bytes calldata item) private returns (uint8 reason) {
        bytes32 grantId = bytes32(item[0:32]);
        uint64 fieldsMask = uint64(bytes8(item[32:40]));
        uint256 nonce = uint256(bytes32(item[40:72]));
        uint64 deadline = uint64(bytes8(item[72:80]));
        // An expired request is refused before recovery, so its refusal names nobody.
        address grantee = address(0);
        if (block.timestamp > deadline) {
            reason = REASON_SIGNATURE_EXPIRED;
        } else {
            bytes32 digest = _hashAccess(grantId, fieldsMask, nonce, deadline);
            grantee = _tryRecoverCompact(digest, bytes32(item[80:112]), bytes32(item[112:144]));
            if (grantee == address(0)) reason = REASON_SIGNATURE_INVALID;
            else (reason,) = _recordAccess(grantId, fieldsMask, nonce, grantee);
        }
        if (reason != REASON_OK) emit AccessRefused(grantId, grantee, msg.sender, reason, nonce);
    }

    /// @dev Consumes `grantee`'s nonce, applies `check`, counts the use (where maxUses sets a limit; an unlimited
    ///      grant's counter goes to 1 on its first use and stays there) and emits `Accessed`; returns the reason
    ///      (REASON_OK if recorded) and the new use count (0 for an unlimited grant).
    ///      Nothing is written unless the access is recorded.
    function _recordAccess(bytes32 grantId, uint64 fieldsMask, uint256 nonce, address grantee)
        private
        returns (uint8 reason, uint32 uses)
    {
        // The same signed request (same grantee, same nonce) is never recorded twice.
        // Storage references, so each slot's location is hashed once for its read and its write.
        NonceWord storage word = _accessNonces[grantee][nonce >> 8];
        uint256 bits = word.bits;
        // forge-lint: disable-next-line(incorrect-shift)
        uint256 bit = 1 << (nonce & 0xff);
        if (bits & bit != 0) return (REASON_NONCE_USED, 0);
        GrantRecord storage stored = _grants[grantId];
        GrantRecord memory record = stored;
        reason = _check(record, grantee, fieldsMask);
        if (reason != REASON_OK) return (reason, 0);
        word.bits = bits | bit;
        if (record.maxUses != 0) {
            // _check refused uses >= maxUses, so this stays within 16 bits.
            uses = record.uses + 1;
            // forge-lint: disable-next-line(unsafe-typecast)
            stored.uses = uint16(uses);
        } else if (record.uses == 0) {
            // An unlimited grant's counter carries no limit: it only marks the first use (the recall rule of
            // Lifecycle reads `uses > 0`), so later accesses write nothing. Its use numbers are its Accessed events.
            stored.uses = 1;
        }
        // The grantee is the grant's (`_check` matched the signer's member number), so the event leaves it out.
        emit Accessed(grantId, fieldsMask, nonce);
    }

    function _isAccessNonceUsed(address grantee, uint256 nonce) private view returns (bool) {
        // forge-lint: disable-next-line(incorrect-shift)
        return _accessNonces[grantee][nonce >> 8].bits & (1 << (nonce & 0xff)) != 0;
    }

    /// @dev Reason codes in their documented order; the first failing one wins.
    function _check(GrantRecord memory record, address grantee, uint64 fieldsMask) private view returns (uint8) {
        GrantStatus status = record.status;
        if (status == GrantStatus.NONE) return REASON_NOT_FOUND;
        Member storage member = _members[grantee];
        // Member numbers start at 1, so a non-member (number 0) never matches.
        if (member.number != record.granteeNumber) return REASON_NOT_GRANTEE;
        if (status == GrantStatus.REVOKED) return REASON_REVOKED;
        if (status == GrantStatus.PAUSED) return REASON_PAUSED;
        if (block.timestamp >= record.expiry) return REASON_EXPIRED;
        if (block.timestamp < record.notBefore) return REASON_NOT_YET_VALID;
        // maxUses 0 means no limit (such a grant's counter only marks that it was used).
        if (record.maxUses != 0 && record.uses >= record.maxUses) return REASON_USES_EXHAUSTED;
        if (member.status != MemberStatus.ACTIVE || member.roles & ROLE_CONSUMER == 0) {
            return REASON_GRANTEE_SUSPENDED;
        }
        AssetStatus assetStatus = _assets[record.assetNo].status;
        if (assetStatus == AssetStatus.DISPUTED) return REASON_ASSET_DISPUTED;
        if (assetStatus == AssetStatus.RETIRED) return REASON_ASSET_RETIRED;
        if (assetStatus == AssetStatus.SUPERSEDED) return REASON_ASSET_SUPERSEDED;
        if (fieldsMask == 0 || fieldsMask & ~record.fieldsMask != 0) return REASON_FIELDS_NOT_GRANTED;
        return REASON_OK;
    }
}
