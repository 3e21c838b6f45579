// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ApprovalsFixture} from "../utils/ApprovalsFixture.sol";
import {IMembership, ANY_PURPOSE} from "../../src/interfaces/IMembership.sol";
import {IConsents, GrantTerms, GrantStatus, SignedGrant} from "../../src/interfaces/IConsents.sol";
import {IDataSafeForwarder, ForwardRequest} from "../../src/interfaces/IDataSafeForwarder.sol";
import {DataSafeForwarder} from "../../src/DataSafeForwarder.sol";

/// @notice Issue 18: an enterprise's M-of-N policy. A thresholded enterprise grants only with M distinct live
///         agents' approvals, checked against the live state when the grant runs; revoke and pause need one.
contract ApprovalsTest is ApprovalsFixture {
    function _missing(uint256 needed, uint256 given) internal {
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentApprovalsMissing.selector, needed, given));
    }

    function _invalid(address previous, address signer) internal {
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentApprovalInvalid.selector, acme, previous, signer));
    }

    function _twoOfThree() internal view returns (bytes memory) {
        return _approvals(_sorted(_pks(AGENT_PK, AGENT2_PK)), _acmeTerms(), 1);
    }

    // ---- the policy ------------------------------------------------------------------------------------------------

    function test_setApprovalThreshold_EmitsAndReads() public {
        vm.expectEmit(address(ledger));
        emit IMembership.ApprovalThresholdSet(acme, ANY_PURPOSE, 2);
        _threshold(2);
        _setThreshold(7, 3);
        (uint8 any,) = ledger.approvalPolicy(acme, ANY_PURPOSE);
        (uint8 seven,) = ledger.approvalPolicy(acme, 7);
        (uint8 one,) = ledger.approvalPolicy(acme, 1);
        assertEq(any, 2, "default");
        assertEq(seven, 3, "purpose 7 is stricter");
        assertEq(one, 2, "other purposes take the default");
    }

    function test_purposeThreshold_NeverLoosensTheDefault() public {
        _threshold(2);
        _setThreshold(1, 1);
        (uint8 one,) = ledger.approvalPolicy(acme, 1);
        assertEq(one, 2, "the default still applies");
        vm.prank(agent);
        _missing(2, 1);
        ledger.grant(_acmeTerms(), 1);
    }

    function test_RevertWhen_setApprovalThreshold_NotEnterprise() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotEnterprise.selector, alice));
        ledger.setApprovalThreshold(ANY_PURPOSE, 2);
    }

    function test_removeAgent_AdvancesTheEpoch() public {
        (, uint32 before) = ledger.approvalPolicy(acme, ANY_PURPOSE);
        vm.prank(acme);
        ledger.removeAgent(agent3);
        (, uint32 afterwards) = ledger.approvalPolicy(acme, ANY_PURPOSE);
        assertEq(afterwards, before + 1, "epoch advanced");
    }

    // ---- M approvals grant ---------------------------------------------------------------------------------------

    function test_grantWithApprovals_TwoOfThreeGrants() public {
        _threshold(2);
        bytes memory approvals = _twoOfThree();
        bytes32 id = ledger.grantIdOf(acme, 1);
        (address first, address second) = agent < agent2 ? (agent, agent2) : (agent2, agent);
        vm.expectEmit(address(ledger));
        emit IConsents.ConsentApproved(id, first);
        vm.expectEmit(address(ledger));
        emit IConsents.ConsentApproved(id, second);
        assertEq(_relay(_acmeTerms(), 1, approvals), id, "id of (owner, nonce)");
        assertTrue(ledger.getGrant(id).status == GrantStatus.ACTIVE, "granted");
    }

    function test_grantWithApprovals_StricterPurposeNeedsMore() public {
        _threshold(1);
        _setThreshold(1, 3);
        bytes memory two = _twoOfThree();
        vm.prank(custodian);
        _missing(3, 2);
        ledger.grantWithApprovals(_acmeTerms(), 1, DEADLINE, two);
        uint256[] memory all = new uint256[](3);
        (all[0], all[1], all[2]) = (AGENT_PK, AGENT2_PK, AGENT3_PK);
        _relay(_acmeTerms(), 1, _approvals(_sorted(all), _acmeTerms(), 1));
    }

    function test_RevertWhen_grantWithApprovals_TooFew() public {
        _threshold(2);
        bytes memory one = _approvals(_pks(AGENT_PK), _acmeTerms(), 1);
        vm.prank(custodian);
        _missing(2, 1);
        ledger.grantWithApprovals(_acmeTerms(), 1, DEADLINE, one);
    }

    function test_RevertWhen_grantWithApprovals_DuplicateSignature() public {
        _threshold(2);
        bytes memory twice = _approvals(_pks(AGENT_PK, AGENT_PK), _acmeTerms(), 1);
        vm.prank(custodian);
        _invalid(agent, agent);
        ledger.grantWithApprovals(_acmeTerms(), 1, DEADLINE, twice);
    }

    function test_RevertWhen_grantWithApprovals_Unsorted() public {
        _threshold(2);
        uint256[] memory pks = _sorted(_pks(AGENT_PK, AGENT2_PK));
        (pks[0], pks[1]) = (pks[1], pks[0]);
        bytes memory approvals = _approvals(pks, _acmeTerms(), 1);
        vm.prank(custodian);
        _invalid(vm.addr(pks[0]), vm.addr(pks[1]));
        ledger.grantWithApprovals(_acmeTerms(), 1, DEADLINE, approvals);
    }

    function test_RevertWhen_grantWithApprovals_RemovedAgentSignedBefore() public {
        _threshold(2);
        bytes memory approvals = _twoOfThree();
        bytes32 staleDigest = _approvalDigest(_acmeTerms(), 1);
        vm.prank(acme);
        ledger.removeAgent(agent2);
        // The epoch moved, so the old signatures recover to unrelated addresses: nobody live.
        bytes32 digest = _approvalDigest(_acmeTerms(), 1);
        assertTrue(digest != staleDigest, "the digest names the epoch");
        uint256 firstPk = vm.addr(AGENT_PK) < vm.addr(AGENT2_PK) ? AGENT_PK : AGENT2_PK;
        address firstRecovered = _recoverAs(firstPk, staleDigest, digest);
        vm.prank(custodian);
        _invalid(address(0), firstRecovered);
        ledger.grantWithApprovals(_acmeTerms(), 1, DEADLINE, approvals);
    }

    function test_RevertWhen_grantWithApprovals_RemovedAgentReAdded() public {
        _threshold(2);
        bytes memory approvals = _twoOfThree();
        bytes32 staleDigest = _approvalDigest(_acmeTerms(), 1);
        vm.startPrank(acme);
        ledger.removeAgent(agent2);
        ledger.addAgent(agent2, T0 + 365 days);
        vm.stopPrank();
        uint256 firstPk = vm.addr(AGENT_PK) < vm.addr(AGENT2_PK) ? AGENT_PK : AGENT2_PK;
        address firstRecovered = _recoverAs(firstPk, staleDigest, _approvalDigest(_acmeTerms(), 1));
        vm.prank(custodian);
        _invalid(address(0), firstRecovered);
        ledger.grantWithApprovals(_acmeTerms(), 1, DEADLINE, approvals);
    }

    function test_RevertWhen_grantWithApprovals_AgentSuspendedAfterSigning() public {
        _threshold(2);
        bytes memory approvals = _twoOfThree();
        vm.prank(regulator);
        ledger.suspendMember(agent2, keccak256("why"));
        (address first, address second) = agent < agent2 ? (agent, agent2) : (agent2, agent);
        vm.prank(custodian);
        // Whichever comes first: the suspended agent is refused where it stands.
        if (first == agent2) _invalid(address(0), agent2);
        else _invalid(first, second);
        ledger.grantWithApprovals(_acmeTerms(), 1, DEADLINE, approvals);
    }

    function test_RevertWhen_grantWithApprovals_EnterpriseSuspended() public {
        _threshold(2);
        bytes memory approvals = _twoOfThree();
        vm.prank(regulator);
        ledger.suspendMember(acme, keccak256("why"));
        (address first,) = agent < agent2 ? (agent, agent2) : (agent2, agent);
        vm.prank(custodian);
        _invalid(address(0), first);
        ledger.grantWithApprovals(_acmeTerms(), 1, DEADLINE, approvals);
    }

    function test_RevertWhen_grantWithApprovals_AgentExpired() public {
        _threshold(1);
        vm.prank(acme);
        ledger.addAgent(agent2, T0 + 30 minutes);
        bytes memory approvals = _approvals(_pks(AGENT2_PK), _acmeTerms(), 1);
        vm.warp(T0 + 30 minutes);
        vm.prank(custodian);
        _invalid(address(0), agent2);
        ledger.grantWithApprovals(_acmeTerms(), 1, DEADLINE, approvals);
    }

    function test_RevertWhen_grantWithApprovals_NotAnAgent() public {
        _threshold(1);
        bytes memory approvals = _approvals(_pks(MALLORY_PK), _acmeTerms(), 1);
        vm.prank(custodian);
        _invalid(address(0), mallory);
        ledger.grantWithApprovals(_acmeTerms(), 1, DEADLINE, approvals);
    }

    function test_RevertWhen_grantWithApprovals_OtherTerms() public {
        _threshold(1);
        bytes memory approvals = _approvals(_pks(AGENT_PK), _acmeTerms(), 1);
        GrantTerms memory wider = _acmeTerms();
        wider.fieldsMask = 7;
        address recovered = _recoverAs(AGENT_PK, _approvalDigest(_acmeTerms(), 1), _approvalDigest(wider, 1));
        vm.prank(custodian);
        _invalid(address(0), recovered);
        ledger.grantWithApprovals(wider, 1, DEADLINE, approvals);
    }

    function test_RevertWhen_grantWithApprovals_GrantSignatureIsNoApproval() public {
        _threshold(1);
        // The agent's own GrantConsent signature for the same terms is another type: it approves nothing.
        SignedGrant memory signed = _signedGrant(AGENT_PK, _acmeTerms(), 1, DEADLINE);
        address recovered =
            _recoverAs(AGENT_PK, ledger.hashGrant(_acmeTerms(), 1, DEADLINE), _approvalDigest(_acmeTerms(), 1));
        assertTrue(recovered != agent, "another digest");
        vm.prank(custodian);
        _invalid(address(0), recovered);
        ledger.grantWithApprovals(_acmeTerms(), 1, DEADLINE, signed.signature);
    }

    function test_RevertWhen_grantWithApprovals_Replayed() public {
        _threshold(2);
        bytes memory approvals = _twoOfThree();
        bytes32 id = _relay(_acmeTerms(), 1, approvals);
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentGrantExists.selector, id));
        ledger.grantWithApprovals(_acmeTerms(), 1, DEADLINE, approvals);
    }

    function test_RevertWhen_grantWithApprovals_Malformed() public {
        bytes memory one = _approvals(_pks(AGENT_PK), _acmeTerms(), 1);
        vm.startPrank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentMalformedBatch.selector, 0));
        ledger.grantWithApprovals(_acmeTerms(), 1, DEADLINE, "");
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentMalformedBatch.selector, 66));
        ledger.grantWithApprovals(_acmeTerms(), 1, DEADLINE, bytes.concat(one, hex"00"));
        vm.stopPrank();
    }

    function test_RevertWhen_grantWithApprovals_Expired() public {
        bytes memory one = _approvals(_pks(AGENT_PK), _acmeTerms(), 1);
        vm.warp(DEADLINE + 1);
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IConsents.SignatureExpired.selector, DEADLINE));
        ledger.grantWithApprovals(_acmeTerms(), 1, DEADLINE, one);
    }

    function test_RevertWhen_grantWithApprovals_RelayerNotMember() public {
        bytes memory one = _approvals(_pks(AGENT_PK), _acmeTerms(), 1);
        vm.prank(address(0xEE1A));
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotActive.selector, address(0xEE1A)));
        ledger.grantWithApprovals(_acmeTerms(), 1, DEADLINE, one);
    }

    // ---- every other grant path is refused below the threshold ----------------------------------------------------

    function test_RevertWhen_ownerGrants_Thresholded() public {
        _threshold(1);
        vm.prank(acme);
        _missing(1, 0);
        ledger.grant(_acmeTerms(), 1);
    }

    function test_agentGrantsAlone_ThresholdOne() public {
        _threshold(1);
        bytes32 id = _grantAs(agent, _acmeTerms(), 1);
        assertTrue(ledger.getGrant(id).status == GrantStatus.ACTIVE, "one agent meets one");
    }

    function test_RevertWhen_agentGrants_ThresholdTwo() public {
        _threshold(2);
        vm.prank(agent);
        _missing(2, 1);
        ledger.grant(_acmeTerms(), 1);
    }

    function test_RevertWhen_agentGrantsBySig_ThresholdTwo() public {
        _threshold(2);
        SignedGrant memory signed = _signedGrant(AGENT_PK, _acmeTerms(), 1, DEADLINE);
        vm.prank(custodian);
        _missing(2, 1);
        ledger.grantBySig(signed);
    }

    function test_RevertWhen_ownerGrantsBySigBatch_Thresholded() public {
        _threshold(1);
        SignedGrant[] memory signed = new SignedGrant[](1);
        signed[0] = _signedGrant(ACME_PK, _acmeTerms(), 1, DEADLINE);
        vm.prank(custodian);
        _missing(1, 0);
        ledger.grantBySigBatch(signed);
    }

    function test_RevertWhen_agentGrantBatch_ThresholdTwo() public {
        _threshold(2);
        GrantTerms[] memory terms = new GrantTerms[](1);
        terms[0] = _acmeTerms();
        uint256[] memory nonces = new uint256[](1);
        vm.prank(agent);
        _missing(2, 1);
        ledger.grantBatch(terms, nonces);
    }

    function test_RevertWhen_grantForwarded_Thresholded() public {
        _threshold(1);
        DataSafeForwarder forwarder = DataSafeForwarder(
            address(
                uint160(uint256(keccak256(abi.encodePacked(bytes1(0xd6), bytes1(0x94), address(ledger), bytes1(0x01)))))
            )
        );
        ForwardRequest memory request = ForwardRequest({
            from: acme,
            to: address(ledger),
            nonce: 0,
            deadline: DEADLINE,
            data: abi.encodeCall(IConsents.grant, (_acmeTerms(), 1))
        });
        bytes memory sig = _sig(ACME_PK, forwarder.hashRequest(request));
        // `grant` reads msg.sender (the forwarder, nobody's agent), never the appended signer.
        bytes memory inner = abi.encodeWithSelector(IConsents.ConsentNotAuthorized.selector, ACME_ASSET, forwarder);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeForwarder.ForwarderCallFailed.selector, inner));
        forwarder.execute(request, sig);
    }

    // ---- withdrawal needs one ---------------------------------------------------------------------------------------

    function test_revokeAndPause_OneAgentOrOwner() public {
        _threshold(2);
        bytes32 id = _relay(_acmeTerms(), 1, _twoOfThree());
        vm.prank(agent3);
        ledger.pause(id);
        assertTrue(ledger.getGrant(id).status == GrantStatus.PAUSED, "paused by one agent");
        vm.prank(acme);
        ledger.revoke(id);
        assertTrue(ledger.getGrant(id).status == GrantStatus.REVOKED, "revoked by the owner");
    }

    function test_RevertWhen_resume_ThresholdTwo() public {
        _threshold(2);
        bytes32 id = _relay(_acmeTerms(), 1, _twoOfThree());
        vm.prank(agent);
        ledger.pause(id);
        vm.prank(agent);
        _missing(2, 1);
        ledger.resume(id);
        vm.prank(acme);
        _missing(2, 0);
        ledger.resume(id);
    }

    /// @dev Whom `pk`'s signature of `signed` recovers to when checked against `checked`.
    function _recoverAs(uint256 pk, bytes32 signed, bytes32 checked) internal pure returns (address) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, signed);
        return ecrecover(checked, v, r, s);
    }
}
