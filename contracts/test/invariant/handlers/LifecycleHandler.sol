// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "../../utils/Test.sol";
import {DataSafeLedger} from "../../../src/DataSafeLedger.sol";
import "../../../src/interfaces/IConsents.sol";
import "../../../src/interfaces/ILifecycle.sol";
import {AssetStatus} from "../../../src/interfaces/IAssets.sol";

/// @notice Drives grants, accesses, supersessions, revocations, time and acknowledgements (by anyone, with any use
///         count); models from its own ghost state which recalls and deletions are owed.
contract LifecycleHandler is Test {
    uint64 internal constant MASK = 0x7;

    DataSafeLedger public immutable ledger;
    address public immutable custodian;
    address public immutable issuer;
    address public immutable subject;
    bytes32 internal immutable schemaId;
    uint256[] internal granteeKeys;
    uint256[] internal signerKeys;

    bytes32[] public assets;
    bytes32[] public grantIds;
    mapping(bytes32 grantId => bytes32 assetId) public ghostAsset;
    mapping(bytes32 grantId => uint256 key) public ghostGranteeKey;
    mapping(bytes32 grantId => uint256 uses) public ghostUses;
    mapping(bytes32 grantId => uint256 maxUses) public ghostMaxUses;
    mapping(bytes32 grantId => uint256 expiry) public ghostExpiry;
    mapping(bytes32 grantId => bool revoked) public ghostRevoked;
    /// Set when the handler supersedes an asset that the grant had pulled: its own record of who must be told.
    mapping(bytes32 grantId => bool owed) public ghostRecallOwed;
    mapping(bytes32 grantId => mapping(uint8 kind => bool done)) public ghostAcked;
    mapping(address grantee => uint256 nonce) internal nextNonce;
    uint256 internal nextGrantNonce = 1;

    // Violations observed at the moment of a recorded acknowledgement.
    uint256 public ghostAckByOther;
    uint256 public ghostAckTwice;
    uint256 public ghostDeletionWhileLive;
    uint256 public ghostRecallNotOwed;
    uint256 public ghostAckWrongUses;
    uint256 public ghostAcks;

    constructor(
        DataSafeLedger ledger_,
        address custodian_,
        address issuer_,
        address subject_,
        bytes32 schemaId_,
        bytes32 firstAsset,
        uint256[] memory granteeKeys_,
        uint256[] memory signerKeys_
    ) {
        ledger = ledger_;
        custodian = custodian_;
        issuer = issuer_;
        subject = subject_;
        schemaId = schemaId_;
        assets.push(firstAsset);
        granteeKeys = granteeKeys_;
        signerKeys = signerKeys_;
    }

    function grantCount() external view returns (uint256) {
        return grantIds.length;
    }

    function ended(bytes32 grantId) public view returns (bool) {
        uint256 limit = ghostMaxUses[grantId] == 0 ? type(uint16).max : ghostMaxUses[grantId];
        return ghostRevoked[grantId] || block.timestamp >= ghostExpiry[grantId] || ghostUses[grantId] >= limit;
    }

    function _pickGrant(uint256 seed) internal view returns (bytes32) {
        return grantIds[bound(seed, 0, grantIds.length - 1)];
    }

    function grant(uint256 assetSeed, uint256 granteeSeed, uint32 maxUses, uint32 life) external {
        bytes32 assetId = assets[bound(assetSeed, 0, assets.length - 1)];
        if (ledger.getAsset(assetId).status != AssetStatus.ACTIVE) return;
        uint256 key = granteeKeys[bound(granteeSeed, 0, granteeKeys.length - 1)];
        GrantTerms memory terms = GrantTerms({
            assetId: assetId,
            grantee: vm.addr(key),
            purpose: 1,
            fieldsMask: MASK,
            notBefore: 0,
            expiry: uint64(block.timestamp + bound(life, 1, 30 days)),
            maxUses: uint32(bound(maxUses, 0, 3)),
            retention: life % 3 == 0 ? 0 : uint32(bound(life, 1, 90 days))
        });
        vm.prank(subject);
        bytes32 grantId = ledger.grant(terms, nextGrantNonce++);
        grantIds.push(grantId);
        ghostAsset[grantId] = assetId;
        ghostGranteeKey[grantId] = key;
        ghostMaxUses[grantId] = terms.maxUses;
        ghostExpiry[grantId] = terms.expiry;
    }

    function access(uint256 grantSeed) external {
        if (grantIds.length == 0) return;
        bytes32 grantId = _pickGrant(grantSeed);
        uint256 key = ghostGranteeKey[grantId];
        address grantee = vm.addr(key);
        AccessRequest memory request =
            AccessRequest({grantId: grantId, fieldsMask: MASK, nonce: nextNonce[grantee]++, deadline: type(uint64).max});
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, ledger.hashAccessRequest(request));
        vm.prank(custodian);
        ledger.recordAccess(request, abi.encodePacked(r, s, v));
        // The chain counts a limited grant's uses; an unlimited grant's counter only marks its first use.
        ghostUses[grantId] = ghostMaxUses[grantId] == 0 ? 1 : ghostUses[grantId] + 1;
    }

    function supersede(uint256 assetSeed) external {
        bytes32 oldId = assets[bound(assetSeed, 0, assets.length - 1)];
        if (ledger.getAsset(oldId).status != AssetStatus.ACTIVE) return;
        bytes32 newId = keccak256(abi.encode("version", assets.length));
        vm.prank(issuer);
        ledger.supersedeAsset(oldId, newId, keccak256(abi.encode(newId)), keccak256(abi.encode(newId, 1)));
        assets.push(newId);
        for (uint256 i = 0; i < grantIds.length; ++i) {
            if (ghostAsset[grantIds[i]] == oldId && ghostUses[grantIds[i]] > 0) ghostRecallOwed[grantIds[i]] = true;
        }
    }

    function revoke(uint256 grantSeed) external {
        if (grantIds.length == 0) return;
        bytes32 grantId = _pickGrant(grantSeed);
        if (ghostRevoked[grantId]) return;
        vm.prank(subject);
        ledger.revoke(grantId);
        ghostRevoked[grantId] = true;
    }

    function warp(uint32 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 1, 20 days));
    }

    /// Any signer, either kind, the true use count or a wrong one.
    function acknowledge(uint256 grantSeed, uint256 signerSeed, bool recall, uint8 usesNoise) external {
        if (grantIds.length == 0) return;
        bytes32 grantId = _pickGrant(grantSeed);
        uint256 key = signerSeed % 2 == 0 ? ghostGranteeKey[grantId] : signerKeys[bound(signerSeed, 0, 3)];
        uint8 kind = recall ? ACK_RECALL : ACK_DELETION;
        uint32 uses = uint32(ghostUses[grantId] + (usesNoise % 4 == 0 ? 1 : 0));
        uint64 at = uint64(block.timestamp);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, ledger.hashAcknowledgement(kind, grantId, uses, at));
        bytes memory item = abi.encodePacked(kind, grantId, uses, at, r, bytes32(uint256(s) | (uint256(v - 27) << 255)));
        vm.prank(custodian);
        if (ledger.acknowledgeBatch(item)[0] != REASON_OK) return;
        ghostAcks += 1;
        if (key != ghostGranteeKey[grantId]) ghostAckByOther += 1;
        if (ghostAcked[grantId][kind]) ghostAckTwice += 1;
        if (kind == ACK_DELETION && !ended(grantId)) ghostDeletionWhileLive += 1;
        if (kind == ACK_RECALL && !ghostRecallOwed[grantId]) ghostRecallNotOwed += 1;
        if (uses != ghostUses[grantId]) ghostAckWrongUses += 1;
        ghostAcked[grantId][kind] = true;
    }
}
