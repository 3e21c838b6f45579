// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "../../utils/Test.sol";
import {DataSafeLedger} from "../../../src/DataSafeLedger.sol";
import {GrantTerms, SignedGrant} from "../../../src/interfaces/IConsents.sol";
import {ANY_PURPOSE} from "../../../src/interfaces/IMembership.sol";

/// @notice Drives an enterprise's policy, its agents (added, removed, suspended), approvals signed at any time and
///         grants submitted on every path, and models who counts from its own ghost state (not `isAgent`).
contract ApprovalsHandler is Test {
    bytes32 internal constant APPROVAL_TYPEHASH = keccak256("GrantApproval(address enterprise,uint32 epoch,bytes32 grant)");
    uint64 internal constant AGENT_EXPIRY = 4_000_000_000;

    struct Approval {
        uint256 pk;
        uint32 epoch;
        bytes signature;
    }

    DataSafeLedger public immutable ledger;
    address public immutable acme;
    uint256 internal immutable acmePk;
    address public immutable custodian;
    address public immutable regulator;
    GrantTerms internal terms;
    uint64 internal immutable deadline;
    uint256[4] internal candidates;

    mapping(uint256 nonce => Approval[] approvals) internal _pending;
    // The model.
    mapping(address account => bool appointed) public ghostAppointed;
    mapping(address account => bool suspended) public ghostSuspended;
    bool public ghostEnterpriseSuspended;
    uint8 public ghostThreshold;
    uint32 public ghostEpoch;
    // Violations observed at the moment of a successful grant.
    uint256 public ghostUnderApproved;
    uint256 public ghostDoubleCounted;
    uint256 public ghostStaleCounted;
    uint256 public ghostGrants;

    constructor(
        DataSafeLedger ledger_,
        uint256 acmePk_,
        address custodian_,
        address regulator_,
        GrantTerms memory terms_,
        uint64 deadline_,
        uint256[4] memory candidates_,
        uint256 appointed
    ) {
        ledger = ledger_;
        acmePk = acmePk_;
        acme = vm.addr(acmePk_);
        custodian = custodian_;
        regulator = regulator_;
        terms = terms_;
        deadline = deadline_;
        candidates = candidates_;
        for (uint256 i = 0; i < appointed; ++i) {
            ghostAppointed[vm.addr(candidates_[i])] = true;
        }
    }

    function _live(address account) internal view returns (bool) {
        return ghostAppointed[account] && !ghostSuspended[account] && !ghostEnterpriseSuspended;
    }

    // ---- the enterprise and its agents -----------------------------------------------------------------------------

    function setThreshold(uint8 threshold) external {
        threshold = uint8(bound(threshold, 0, 4));
        vm.prank(acme);
        try ledger.setApprovalThreshold(ANY_PURPOSE, threshold) {
            ghostThreshold = threshold;
        } catch {}
    }

    function addAgent(uint256 who) external {
        address agent = vm.addr(candidates[bound(who, 0, 3)]);
        vm.prank(acme);
        try ledger.addAgent(agent, AGENT_EXPIRY) {
            ghostAppointed[agent] = true;
        } catch {}
    }

    function removeAgent(uint256 who) external {
        address agent = vm.addr(candidates[bound(who, 0, 3)]);
        vm.prank(acme);
        try ledger.removeAgent(agent) {
            ghostAppointed[agent] = false;
            ++ghostEpoch;
        } catch {}
    }

    function toggleSuspension(uint256 who) external {
        address agent = vm.addr(candidates[bound(who, 0, 3)]);
        vm.startPrank(regulator);
        if (ghostSuspended[agent]) {
            try ledger.reinstateMember(agent, 0) {
                ghostSuspended[agent] = false;
            } catch {}
        } else {
            try ledger.suspendMember(agent, 0) {
                ghostSuspended[agent] = true;
            } catch {}
        }
        vm.stopPrank();
    }

    function toggleEnterpriseSuspension() external {
        vm.startPrank(regulator);
        if (ghostEnterpriseSuspended) {
            try ledger.reinstateMember(acme, 0) {
                ghostEnterpriseSuspended = false;
            } catch {}
        } else {
            try ledger.suspendMember(acme, 0) {
                ghostEnterpriseSuspended = true;
            } catch {}
        }
        vm.stopPrank();
    }

    // ---- approvals and grants --------------------------------------------------------------------------------------

    /// @dev Any candidate (appointed or not, live or not) signs an approval of nonce 1..4 in the current epoch.
    function approve(uint256 who, uint256 nonce) external {
        nonce = bound(nonce, 1, 4);
        uint256 pk = candidates[bound(who, 0, 3)];
        (, uint32 epoch) = ledger.approvalPolicy(acme, ANY_PURPOSE);
        bytes32 structHash = keccak256(abi.encode(APPROVAL_TYPEHASH, acme, epoch, ledger.hashGrant(terms, nonce, deadline)));
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", ledger.domainSeparator(), structHash));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        _pending[nonce].push(Approval(pk, epoch, abi.encodePacked(r, s, v)));
    }

    /// @dev Submits a subset of nonce's collected approvals (optionally one twice), sorted by signer.
    function submit(uint256 nonce, uint256 subset, bool duplicate) external {
        nonce = bound(nonce, 1, 4);
        Approval[] storage all = _pending[nonce];
        Approval[] memory picked = new Approval[](all.length + 1);
        uint256 n = 0;
        for (uint256 i = 0; i < all.length && i < 16; ++i) {
            if (subset & (1 << i) != 0) picked[n++] = all[i];
        }
        if (duplicate && n > 0) picked[n++] = picked[0];
        _sortBySigner(picked, n);
        bytes memory packed;
        for (uint256 i = 0; i < n; ++i) {
            packed = bytes.concat(packed, picked[i].signature);
        }
        vm.prank(custodian);
        try ledger.grantWithApprovals(terms, nonce, deadline, packed) {
            ++ghostGrants;
            _judge(picked, n);
        } catch {}
    }

    /// @dev The owner or a candidate grants alone (directly or by signature).
    function grantAlone(uint256 who, uint256 nonce, bool bySig) external {
        nonce = bound(nonce, 100, 200);
        uint256 index = bound(who, 0, 4);
        uint256 pk = index == 4 ? acmePk : candidates[index];
        address grantor = vm.addr(pk);
        bool ok;
        if (bySig) {
            (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, ledger.hashGrant(terms, nonce, deadline));
            SignedGrant memory signed = SignedGrant(terms, grantor, nonce, deadline, abi.encodePacked(r, s, v));
            vm.prank(custodian);
            try ledger.grantBySig(signed) {
                ok = true;
            } catch {}
        } else {
            vm.prank(grantor);
            try ledger.grant(terms, nonce) {
                ok = true;
            } catch {}
        }
        if (ok) {
            ++ghostGrants;
            uint256 counted = grantor != acme && _live(grantor) ? 1 : 0;
            if (counted < ghostThreshold) ++ghostUnderApproved;
        }
    }

    function _judge(Approval[] memory picked, uint256 n) internal {
        uint256 counted = 0;
        for (uint256 i = 0; i < n; ++i) {
            address signer = vm.addr(picked[i].pk);
            for (uint256 j = 0; j < i; ++j) {
                if (vm.addr(picked[j].pk) == signer) ++ghostDoubleCounted;
            }
            if (picked[i].epoch != ghostEpoch) ++ghostStaleCounted;
            else if (_live(signer)) ++counted;
        }
        if (counted < ghostThreshold || counted == 0) ++ghostUnderApproved;
    }

    function _sortBySigner(Approval[] memory items, uint256 n) internal pure {
        for (uint256 i = 1; i < n; ++i) {
            for (uint256 j = i; j > 0 && vm.addr(items[j].pk) < vm.addr(items[j - 1].pk); --j) {
                (items[j], items[j - 1]) = (items[j - 1], items[j]);
            }
        }
    }
}
