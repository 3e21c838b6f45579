// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ApprovalsFixture} from "../utils/ApprovalsFixture.sol";
import {ApprovalsHandler} from "./handlers/ApprovalsHandler.sol";

/// @notice Issue 18's invariants: a thresholded enterprise's grant never exists with fewer than M distinct live
///         agents' approvals; no signature counts twice; removing an agent voids the approvals signed before.
contract ApprovalsInvariantTest is ApprovalsFixture {
    ApprovalsHandler internal handler;

    function setUp() public override {
        super.setUp();
        handler = new ApprovalsHandler(
            ledger,
            ACME_PK,
            custodian,
            regulator,
            _acmeTerms(),
            T0 + 3650 days,
            [AGENT_PK, AGENT2_PK, AGENT3_PK, MALLORY_PK],
            3
        );
        targetContract(address(handler));
        bytes4[] memory actions = new bytes4[](8);
        actions[0] = ApprovalsHandler.setThreshold.selector;
        actions[1] = ApprovalsHandler.addAgent.selector;
        actions[2] = ApprovalsHandler.removeAgent.selector;
        actions[3] = ApprovalsHandler.toggleSuspension.selector;
        actions[4] = ApprovalsHandler.toggleEnterpriseSuspension.selector;
        actions[5] = ApprovalsHandler.approve.selector;
        actions[6] = ApprovalsHandler.submit.selector;
        actions[7] = ApprovalsHandler.grantAlone.selector;
        targetSelector(address(handler), actions);
    }

    function invariant_NoGrantBelowThreshold() public view {
        assertEq(handler.ghostUnderApproved(), 0, "a grant with fewer than M distinct live agents' approvals");
    }

    function invariant_NoSignatureCountsTwice() public view {
        assertEq(handler.ghostDoubleCounted(), 0, "one approval counted twice");
    }

    function invariant_RemovalVoidsPendingApprovals() public view {
        assertEq(handler.ghostStaleCounted(), 0, "an approval signed before a removal counted after it");
    }
}
