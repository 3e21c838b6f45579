// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "../utils/LedgerFixture.sol";
import {LifecycleHandler} from "./handlers/LifecycleHandler.sol";
import "../../src/interfaces/IConsents.sol";
import "../../src/interfaces/ILifecycle.sol";
import {AssetStatus} from "../../src/interfaces/IAssets.sol";

contract LifecycleInvariantTest is LedgerFixture {
    LifecycleHandler internal handler;

    function setUp() public override {
        super.setUp();
        uint256[] memory grantees = new uint256[](2);
        grantees[0] = BANK_PK;
        grantees[1] = INSURER_PK;
        uint256[] memory signers = new uint256[](4);
        signers[0] = BANK_PK;
        signers[1] = INSURER_PK;
        signers[2] = MALLORY_PK;
        signers[3] = ALICE_PK;
        handler = new LifecycleHandler(ledger, custodian, issuer, alice, SCHEMA, ASSET, grantees, signers);
        targetContract(address(handler));
        bytes4[] memory actions = new bytes4[](6);
        actions[0] = LifecycleHandler.grant.selector;
        actions[1] = LifecycleHandler.access.selector;
        actions[2] = LifecycleHandler.supersede.selector;
        actions[3] = LifecycleHandler.revoke.selector;
        actions[4] = LifecycleHandler.warp.selector;
        actions[5] = LifecycleHandler.acknowledge.selector;
        targetSelector(address(handler), actions);
    }

    /// No acknowledgement for a live grant, none twice, none by anyone but the grantee, none for a wrong count.
    function invariant_AcknowledgementsOnlyWhenOwed() public view {
        assertEq(handler.ghostAckByOther(), 0, "acknowledged by someone else");
        assertEq(handler.ghostAckTwice(), 0, "acknowledged twice");
        assertEq(handler.ghostDeletionWhileLive(), 0, "deletion acknowledged for a live grant");
        assertEq(handler.ghostRecallNotOwed(), 0, "recall acknowledged where none was owed");
        assertEq(handler.ghostAckWrongUses(), 0, "acknowledgement for a wrong use count");
    }

    /// A recall exists for every access to a superseded version: the chain's rule (uses > 0 on a SUPERSEDED asset)
    /// names exactly the grants the handler saw pull a version before superseding it, and their counts are frozen.
    function invariant_RecallForEveryPulledSupersededVersion() public view {
        uint256 n = handler.grantCount();
        for (uint256 i = 0; i < n; ++i) {
            bytes32 grantId = handler.grantIds(i);
            Grant memory g = ledger.getGrant(grantId);
            assertEq(g.uses, handler.ghostUses(grantId), "uses");
            bool owedOnChain = g.uses > 0 && ledger.getAsset(g.assetId).status == AssetStatus.SUPERSEDED;
            assertTrue(owedOnChain == handler.ghostRecallOwed(grantId), "recall owed");
            assertTrue((g.acks & ACK_RECALL != 0) == handler.ghostAcked(grantId, ACK_RECALL), "recall bit");
            assertTrue((g.acks & ACK_DELETION != 0) == handler.ghostAcked(grantId, ACK_DELETION), "deletion bit");
            if (g.acks & ACK_DELETION != 0) assertTrue(handler.ended(grantId), "deleted but live");
        }
    }
}
