// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "../utils/LedgerFixture.sol";
import "../../src/interfaces/IConsents.sol";
import "../../src/interfaces/ILifecycle.sol";

contract LifecycleFuzzTest is LedgerFixture {
    uint64 internal constant MASK = 0x7;

    function _signer(uint256 seed) internal pure returns (uint256) {
        uint256[4] memory keys = [BANK_PK, INSURER_PK, MALLORY_PK, ALICE_PK];
        return keys[seed % 4];
    }

    function _setUpGrant(uint8 accesses, bool revoked, uint256 later) internal returns (bytes32 grantId, uint256 n) {
        grantId = _grantAs(alice, _terms(bank, MASK), 1);
        n = bound(accesses, 0, 3);
        for (uint256 i = 0; i < n; ++i) {
            AccessRequest memory request = _request(grantId, MASK, i);
            bytes memory sig = _signAccess(BANK_PK, request);
            vm.prank(custodian);
            ledger.recordAccess(request, sig);
        }
        if (revoked) {
            vm.prank(alice);
            ledger.revoke(grantId);
        }
        vm.warp(bound(later, T0, T0 + 60 days));
    }

    /// A deletion is recorded exactly when the grantee signs for an ended grant with its use count, once.
    function testFuzz_acknowledgeDeletion_OnlyGranteeOnlyEnded(
        uint8 accesses,
        bool revoked,
        uint256 later,
        uint256 signerSeed,
        uint32 usesClaimed
    ) public {
        (bytes32 grantId, uint256 n) = _setUpGrant(accesses, revoked, later);
        uint256 pk = _signer(signerSeed);
        uint32 uses = usesClaimed % 2 == 0 ? uint32(n) : uint32(bound(usesClaimed, 0, 5));
        bool ended = revoked || block.timestamp >= T0 + 30 days || n == 3;
        uint8 expected = REASON_OK;
        if (pk != BANK_PK) expected = REASON_NOT_GRANTEE;
        else if (!ended) expected = REASON_GRANT_LIVE;
        else if (uses != n) expected = REASON_USES_MISMATCH;
        bytes memory item = _packAck(pk, ACK_DELETION, grantId, uses, uint64(block.timestamp));
        vm.prank(custodian);
        assertEq(ledger.acknowledgeBatch(item)[0], expected, "reason");
        assertEq(ledger.getGrant(grantId).acks, expected == REASON_OK ? ACK_DELETION : 0, "bit iff recorded");
        vm.prank(custodian);
        uint8 again = ledger.acknowledgeBatch(item)[0];
        assertEq(again, expected == REASON_OK ? REASON_ALREADY_ACKNOWLEDGED : expected, "never twice");
    }

    /// A recall is recorded exactly for a grant that pulled the version its department superseded.
    function testFuzz_acknowledgeRecall_OnlyPulledSuperseded(
        uint8 accesses,
        bool superseded,
        uint256 later,
        uint256 signerSeed
    ) public {
        (bytes32 grantId, uint256 n) = _setUpGrant(accesses, false, later);
        if (superseded) {
            vm.prank(issuer);
            ledger.supersedeAsset(ASSET, keccak256("v2"), keccak256("root-2"), keccak256("ct-2"));
        }
        uint256 pk = _signer(signerSeed);
        uint8 expected = REASON_OK;
        if (pk != BANK_PK) expected = REASON_NOT_GRANTEE;
        else if (!superseded || n == 0) expected = REASON_NOT_RECALLED;
        bytes memory item = _packAck(pk, ACK_RECALL, grantId, uint32(n), uint64(block.timestamp));
        vm.prank(custodian);
        assertEq(ledger.acknowledgeBatch(item)[0], expected, "reason");
        assertEq(ledger.getGrant(grantId).acks, expected == REASON_OK ? ACK_RECALL : 0, "bit iff recorded");
    }
}
