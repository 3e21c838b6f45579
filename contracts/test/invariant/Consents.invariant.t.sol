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
        handler = new ConsentsHandler(ledger, custodian, regulator, [ASSET, ACME_ASSET], actors, grantees);
        targetContract(address(handler));
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

    function invariant_SignatureNeverAcceptedTwice() public view {
        assertEq(handler.ghostSignatureReplayed(), 0, "access signature replayed");
    }
}
