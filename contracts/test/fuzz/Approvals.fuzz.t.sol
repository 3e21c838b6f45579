// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ApprovalsFixture} from "../utils/ApprovalsFixture.sol";
import {GrantStatus, GrantTerms} from "../../src/interfaces/IConsents.sol";

/// @notice Any set of approvals: the grant lands exactly when the signers are distinct live agents, sorted, and at
///         least the threshold; otherwise nothing is written.
contract ApprovalsFuzzTest is ApprovalsFixture {
    /// @dev Candidates: the three agents and mallory (a member, nobody's agent).
    function _candidate(uint256 i) internal pure returns (uint256) {
        uint256[4] memory pks = [AGENT_PK, AGENT2_PK, AGENT3_PK, MALLORY_PK];
        return pks[i];
    }

    function testFuzz_grantWithApprovals_ExactlyWhenEnoughLiveDistinct(
        uint8 threshold,
        uint8[6] memory picks,
        uint8 count,
        uint8 removed,
        bool sortThem
    ) public {
        threshold = uint8(bound(threshold, 0, 4));
        count = uint8(bound(count, 0, 6));
        removed = uint8(bound(removed, 0, 3)); // 3: nobody removed
        _threshold(threshold);
        GrantTerms memory terms = _acmeTerms();
        uint256[] memory pks = new uint256[](count);
        for (uint256 i = 0; i < count; ++i) {
            pks[i] = _candidate(bound(picks[i], 0, 3));
        }
        if (sortThem) pks = _sorted(pks);
        bytes memory approvals = _approvals(pks, terms, 1);
        if (removed < 3) {
            vm.prank(acme);
            ledger.removeAgent(vm.addr(_candidate(removed)));
        }
        bool expected = _expectOk(pks, threshold, removed);
        vm.prank(custodian);
        (bool ok,) = address(ledger).call(
            abi.encodeCall(ledger.grantWithApprovals, (terms, 1, DEADLINE, approvals))
        );
        assertTrue(ok == expected, "lands exactly when enough distinct live agents approve");
        bytes32 id = ledger.grantIdOf(acme, 1);
        assertTrue((ledger.getGrant(id).status == GrantStatus.ACTIVE) == expected, "written only when it lands");
    }

    /// @dev The rule, written out: a removal voids every approval signed before it (the epoch moved).
    function _expectOk(uint256[] memory pks, uint8 threshold, uint8 removed) internal pure returns (bool) {
        if (pks.length == 0 || pks.length < threshold || removed < 3) return false;
        address previous = address(0);
        for (uint256 i = 0; i < pks.length; ++i) {
            address signer = vm.addr(pks[i]);
            if (signer <= previous || pks[i] == MALLORY_PK) return false;
            previous = signer;
        }
        return true;
    }

    function testFuzz_RevertWhen_fewerThanThreshold_AnyPath(uint8 threshold, uint256 nonce) public {
        threshold = uint8(bound(threshold, 2, 255));
        _threshold(threshold);
        GrantTerms memory terms = _acmeTerms();
        vm.prank(acme);
        (bool ownerOk,) = address(ledger).call(abi.encodeCall(ledger.grant, (terms, nonce)));
        vm.prank(agent);
        (bool agentOk,) = address(ledger).call(abi.encodeCall(ledger.grant, (terms, nonce)));
        vm.prank(custodian);
        (bool sigOk,) =
            address(ledger).call(abi.encodeCall(ledger.grantBySig, (_signedGrant(AGENT_PK, terms, nonce, DEADLINE))));
        assertFalse(ownerOk || agentOk || sigOk, "no single key grants for a thresholded enterprise");
    }
}
