// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "../utils/LedgerFixture.sol";
import {ConsentsHandler} from "./handlers/ConsentsHandler.sol";
import "../../src/interfaces/IConsents.sol";
import {MemberStatus} from "../../src/interfaces/IMembership.sol";

contract ConsentsInvariantTest is LedgerFixture {
    ConsentsHandler internal handler;

    function setUp() public override {
        super.setUp();
        uint256[] memory actors = new uint256[](5);
        actors[0] = ALICE_PK;
        actors[1] = ACME_PK;
        actors[2] = AGENT_PK;
        actors[3] = BANK_PK;
        actors[4] = MALLORY_PK;
        uint256[] memory grantees = new uint256[](3);
        grantees[0] = BANK_PK;
        grantees[1] = INSURER_PK;
        grantees[2] = AGENT_PK;
        handler = new ConsentsHandler(ledger, custodian, regulator, governor, [ASSET, ACME_ASSET], actors, grantees);
        targetContract(address(handler));
        // Only the actions: the handler's ghost getters would otherwise dilute the call sequences.
        bytes4[] memory actions = new bytes4[](8);
        actions[0] = ConsentsHandler.grant.selector;
        actions[1] = ConsentsHandler.revoke.selector;
        actions[2] = ConsentsHandler.pause.selector;
        actions[3] = ConsentsHandler.resume.selector;
        actions[4] = ConsentsHandler.toggleSuspension.selector;
        actions[5] = ConsentsHandler.toggleOwnerSuspension.selector;
        actions[6] = ConsentsHandler.recordAccess.selector;
        actions[7] = ConsentsHandler.warp.selector;
        targetSelector(address(handler), actions);
    }

    function invariant_RevokedOrPausedNeverPass() public view {
        uint256 n = handler.grantCount();
        for (uint256 i = 0; i < n; ++i) {
            bytes32 grantId = handler.grantIds(i);
            Grant memory g = ledger.getGrant(grantId);
            (bool allowed,) = ledger.check(grantId, g.grantee, g.fieldsMask);
            if (g.status != GrantStatus.ACTIVE) assertFalse(allowed, "revoked/paused grant passes check");
            if (ledger.getMember(g.grantee).status != MemberStatus.ACTIVE) {
                assertFalse(allowed, "suspended grantee passes check");
            }
        }
        assertEq(handler.ghostAccessWhileBlocked(), 0, "access recorded on a blocked grant");
    }

    function invariant_UsesNeverExceedMax() public view {
        uint256 n = handler.grantCount();
        for (uint256 i = 0; i < n; ++i) {
            Grant memory g = ledger.getGrant(handler.grantIds(i));
            if (g.maxUses != 0) assertLe(g.uses, g.maxUses, "uses > maxUses");
        }
    }

    function invariant_OnlyOwnerOrAgentChangesGrants() public view {
        assertEq(handler.ghostUnauthorizedGrant(), 0, "unauthorized grant");
        assertEq(handler.ghostUnauthorizedRevoke(), 0, "unauthorized status change");
    }

    function invariant_FieldsNeverBeyondGrant() public view {
        assertEq(handler.ghostInvalidMaskGranted(), 0, "grant with an empty mask or bits beyond the schema");
        assertEq(handler.ghostAccessOutsideMask(), 0, "access to fields outside the grant");
        uint256 n = handler.grantCount();
        for (uint256 i = 0; i < n; ++i) {
            bytes32 grantId = handler.grantIds(i);
            Grant memory g = ledger.getGrant(grantId);
            // Bit 12 is beyond the 12-field schema, so no grant covers it.
            (bool allowed,) = ledger.check(grantId, g.grantee, g.fieldsMask | (uint64(1) << 12));
            assertFalse(allowed, "check passes fields outside the grant");
        }
    }

    function invariant_SuspendedOwnersStillWithdraw() public view {
        assertEq(handler.ghostWithdrawalRefused(), 0, "an owner or live agent could not revoke or pause");
    }

    function invariant_SuspensionLiftedOnlyByItsAuthority() public view {
        assertEq(handler.ghostSuspensionLiftedByOther(), 0, "suspension lifted by the other authority");
        for (uint256 i = 0; i < 2; ++i) {
            address owner = handler.ownerAt(i);
            assertEq(
                uint256(ledger.suspensionAuthority(owner)),
                uint256(handler.ghostSuspensionAuthority(owner)),
                "recorded authority"
            );
            bool suspended = ledger.getMember(owner).status == MemberStatus.SUSPENDED;
            assertEq(suspended ? 1 : 0, ledger.suspensionAuthority(owner) == 0 ? 0 : 1, "authority iff suspended");
        }
    }

    function invariant_SignatureNeverAcceptedTwice() public view {
        assertEq(handler.ghostSignatureReplayed(), 0, "access signature replayed");
    }
}
