// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "../../utils/Test.sol";
import {DataSafeLedger} from "../../../src/DataSafeLedger.sol";
import "../../../src/interfaces/IConsents.sol";
import {Asset} from "../../../src/interfaces/IAssets.sol";
import {MemberStatus} from "../../../src/interfaces/IMembership.sol";

/// @notice Drives grants (with any fields mask), status changes, suspensions of grantees and of owners (by the
///         governor or the regulator), accesses and time; keeps ghost state of what happened.
contract ConsentsHandler is Test {
    uint16 internal constant GOVERNOR = 1;
    uint16 internal constant REGULATOR = 8;
    /// @dev The fixture's schema has 12 fields: bits 0..11.
    uint64 internal constant SCHEMA_MASK = 0xFFF;

    DataSafeLedger public immutable ledger;
    address public immutable custodian;
    address public immutable regulator;
    address public immutable governor;
    bytes32[2] internal assetIds;
    uint256[] internal actorKeys;
    uint256[] internal granteeKeys;

    bytes32[] public grantIds;
    mapping(bytes32 grantKey => bool used) public ghostAccessUsed;
    uint256 public ghostNextGrantNonce = 1;

    // Violations observed at the moment of a successful call.
    uint256 public ghostUnauthorizedGrant;
    uint256 public ghostUnauthorizedRevoke;
    uint256 public ghostAccessWhileBlocked;
    uint256 public ghostSignatureReplayed;
    uint256 public ghostAccesses;
    uint256 public ghostInvalidMaskGranted;
    uint256 public ghostAccessOutsideMask;
    uint256 public ghostWithdrawalRefused;
    uint256 public ghostSuspensionLiftedByOther;
    uint256 public ghostOwnerSuspensions;
    mapping(address owner => uint16 authority) public ghostSuspensionAuthority;

    constructor(
        DataSafeLedger ledger_,
        address custodian_,
        address regulator_,
        address governor_,
        bytes32[2] memory assetIds_,
        uint256[] memory actorKeys_,
        uint256[] memory granteeKeys_
    ) {
        ledger = ledger_;
        custodian = custodian_;
        regulator = regulator_;
        governor = governor_;
        assetIds = assetIds_;
        actorKeys = actorKeys_;
        granteeKeys = granteeKeys_;
    }

    function grantCount() external view returns (uint256) {
        return grantIds.length;
    }

    function _active(address account) internal view returns (bool) {
        return ledger.getMember(account).status == MemberStatus.ACTIVE;
    }

    /// @dev The rule, modelled from raw state rather than `isAgent`: the owner itself, or an unexpired agent while
    ///      both the agent and its enterprise are active.
    function _liveAgent(address owner, address account) internal view returns (bool) {
        return ledger.agentExpiry(owner, account) > block.timestamp && _active(account) && _active(owner);
    }

    /// @dev May `account` give consent (grant, resume) for `assetId`'s owner?
    function _mayGive(bytes32 assetId, address account) internal view returns (bool) {
        address owner = ledger.getAsset(assetId).owner;
        return (account == owner && _active(owner)) || _liveAgent(owner, account);
    }

    /// @dev May `account` withdraw consent (revoke, pause)? The owner may even while suspended.
    function _mayWithdraw(bytes32 assetId, address account) internal view returns (bool) {
        address owner = ledger.getAsset(assetId).owner;
        return account == owner || _liveAgent(owner, account);
    }

    /// @dev Half the time the asset's owner (so that sequences reach the rules), otherwise any actor.
    function _actor(uint256 actorSeed, bytes32 assetId) internal view returns (address) {
        if (actorSeed % 2 == 0) return ledger.getAsset(assetId).owner;
        return vm.addr(actorKeys[bound(actorSeed / 2, 0, actorKeys.length - 1)]);
    }

    function grant(uint256 actorSeed, uint256 assetSeed, uint256 granteeSeed, uint64 mask, uint32 maxUses, uint32 life)
        external
    {
        bytes32 assetId = assetIds[bound(assetSeed, 0, 1)];
        address actor = _actor(actorSeed, assetId);
        GrantTerms memory terms = GrantTerms({
            assetId: assetId,
            grantee: vm.addr(granteeKeys[bound(granteeSeed, 0, granteeKeys.length - 1)]),
            purpose: 1,
            // Any mask, including the empty one and bits beyond the schema.
            fieldsMask: uint64(bound(mask, 0, 0x1FFF)),
            notBefore: 0,
            expiry: uint64(block.timestamp + bound(life, 1, 30 days)),
            maxUses: uint32(bound(maxUses, 0, 4)),
            retention: 0
        });
        bool authorized = _mayGive(assetId, actor);
        uint256 nonce = ghostNextGrantNonce++;
        vm.prank(actor);
        try ledger.grant(terms, nonce) returns (bytes32 grantId) {
            if (!authorized) ++ghostUnauthorizedGrant;
            if (terms.fieldsMask == 0 || terms.fieldsMask & ~SCHEMA_MASK != 0) ++ghostInvalidMaskGranted;
            grantIds.push(grantId);
        } catch {}
    }

    function _grantId(uint256 seed) internal view returns (bytes32) {
        if (grantIds.length == 0) return bytes32(0);
        return grantIds[bound(seed, 0, grantIds.length - 1)];
    }

    function _changeStatus(uint256 actorSeed, uint256 grantSeed, uint256 op) internal {
        bytes32 grantId = _grantId(grantSeed);
        if (grantId == bytes32(0)) return;
        Grant memory g = ledger.getGrant(grantId);
        address actor = _actor(actorSeed, g.assetId);
        bool mayWithdraw = _mayWithdraw(g.assetId, actor);
        bool mayGive = _mayGive(g.assetId, actor);
        vm.prank(actor);
        if (op == 0) {
            try ledger.revoke(grantId) {
                if (!mayWithdraw) ++ghostUnauthorizedRevoke;
            } catch {
                // Withdrawing consent is always possible for whoever may withdraw it, suspended or not.
                if (mayWithdraw && g.status != GrantStatus.REVOKED) ++ghostWithdrawalRefused;
            }
        } else if (op == 1) {
            try ledger.pause(grantId) {
                if (!mayWithdraw) ++ghostUnauthorizedRevoke;
            } catch {
                if (mayWithdraw && g.status == GrantStatus.ACTIVE) ++ghostWithdrawalRefused;
            }
        } else {
            try ledger.resume(grantId) {
                if (!mayGive) ++ghostUnauthorizedRevoke;
            } catch {}
        }
    }

    function revoke(uint256 actorSeed, uint256 grantSeed) external {
        _changeStatus(actorSeed, grantSeed, 0);
    }

    function pause(uint256 actorSeed, uint256 grantSeed) external {
        _changeStatus(actorSeed, grantSeed, 1);
    }

    function resume(uint256 actorSeed, uint256 grantSeed) external {
        _changeStatus(actorSeed, grantSeed, 2);
    }

    function toggleSuspension(uint256 granteeSeed) external {
        address grantee = vm.addr(granteeKeys[bound(granteeSeed, 0, granteeKeys.length - 1)]);
        bool active = ledger.getMember(grantee).status == MemberStatus.ACTIVE;
        vm.prank(regulator);
        if (active) ledger.suspendMember(grantee, bytes32(0));
        else ledger.reinstateMember(grantee, bytes32(0));
    }

    /// @dev Suspends or reinstates a data owner (alice or acme) as the governor or the regulator. A reinstatement is
    ///      first attempted by the other authority, which must fail.
    function toggleOwnerSuspension(uint256 assetSeed, bool byGovernor) external {
        address owner = ledger.getAsset(assetIds[bound(assetSeed, 0, 1)]).owner;
        if (_active(owner)) {
            vm.prank(byGovernor ? governor : regulator);
            ledger.suspendMember(owner, bytes32(0));
            ghostSuspensionAuthority[owner] = byGovernor ? GOVERNOR : REGULATOR;
            ++ghostOwnerSuspensions;
            return;
        }
        uint16 authority = ghostSuspensionAuthority[owner];
        address other = authority == GOVERNOR ? regulator : governor;
        vm.prank(other);
        try ledger.reinstateMember(owner, bytes32(0)) {
            ++ghostSuspensionLiftedByOther;
        } catch {}
        if (_active(owner)) return;
        vm.prank(authority == GOVERNOR ? governor : regulator);
        ledger.reinstateMember(owner, bytes32(0));
        ghostSuspensionAuthority[owner] = 0;
    }

    function ownerAt(uint256 i) external view returns (address) {
        return ledger.getAsset(assetIds[i]).owner;
    }

    mapping(address signer => uint256 next) public ghostNextAccessNonce;

    function _signerKey(bytes32 grantId, uint256 signerSeed) internal view returns (uint256) {
        // Mostly the real grantee (so accesses succeed and limits are reached), sometimes anyone.
        address grantee = ledger.getGrant(grantId).grantee;
        if (signerSeed % 4 != 0) {
            for (uint256 i = 0; i < granteeKeys.length; ++i) {
                if (vm.addr(granteeKeys[i]) == grantee) return granteeKeys[i];
            }
        }
        return granteeKeys[bound(signerSeed, 0, granteeKeys.length - 1)];
    }

    function recordAccess(uint256 grantSeed, uint256 signerSeed, uint64 mask, uint256 nonceSeed) external {
        bytes32 grantId = _grantId(grantSeed);
        uint256 pk = _signerKey(grantId, signerSeed);
        address signer = vm.addr(pk);
        // Usually a fresh nonce; one time in four a replay of an earlier one.
        uint256 fresh = ghostNextAccessNonce[signer];
        uint256 nonce = (nonceSeed % 4 == 0 && fresh > 0) ? bound(nonceSeed, 0, fresh - 1) : fresh;
        AccessRequest memory request = AccessRequest({
            grantId: grantId,
            fieldsMask: uint64(bound(mask, 1, 0xFFF)),
            nonce: nonce,
            deadline: uint64(block.timestamp + 1 hours)
        });
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, ledger.hashAccessRequest(request));
        Grant memory before = ledger.getGrant(grantId);
        bool granteeSuspended = ledger.getMember(signer).status != MemberStatus.ACTIVE;
        vm.prank(custodian);
        try ledger.recordAccess(request, abi.encodePacked(r, s, v)) {
            ++ghostAccesses;
            if (nonce == fresh) ghostNextAccessNonce[signer] = fresh + 1;
            bytes32 key = keccak256(abi.encode(signer, request.nonce));
            if (ghostAccessUsed[key]) ++ghostSignatureReplayed;
            ghostAccessUsed[key] = true;
            if (before.status != GrantStatus.ACTIVE || granteeSuspended) ++ghostAccessWhileBlocked;
            if (before.maxUses != 0 && before.uses >= before.maxUses) ++ghostAccessWhileBlocked;
            if (request.fieldsMask & ~before.fieldsMask != 0) ++ghostAccessOutsideMask;
        } catch {}
    }

    function warp(uint32 seconds_) external {
        vm.warp(block.timestamp + bound(seconds_, 1, 3 days));
    }
}
