// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "../utils/LedgerFixture.sol";
import "../../src/interfaces/IConsents.sol";
import {Vm} from "../utils/Vm.sol";

contract ConsentsFuzzTest is LedgerFixture {
    function _boundedTerms(uint64 mask, uint64 notBefore, uint64 expiry, uint32 maxUses)
        internal
        view
        returns (GrantTerms memory terms)
    {
        terms = _terms(bank, uint64(bound(mask, 1, (uint256(1) << FIELDS) - 1)));
        terms.notBefore = uint64(bound(notBefore, 0, T0 + 365 days));
        terms.expiry = uint64(bound(expiry, (terms.notBefore > T0 ? terms.notBefore : T0) + 1, type(uint32).max));
        terms.maxUses = uint32(bound(maxUses, 0, 20));
    }

    /// A grant answers exactly by its window and mask.
    function testFuzz_grant_check(uint64 mask, uint64 notBefore, uint64 expiry, uint64 asked, uint256 when) public {
        GrantTerms memory terms = _boundedTerms(mask, notBefore, expiry, 5);
        bytes32 grantId = _grantAs(alice, terms, 1);
        uint256 at = bound(when, T0, uint256(terms.expiry) + 10 days);
        vm.warp(at);
        (bool allowed, uint8 reason) = ledger.check(grantId, bank, asked);
        uint8 expected = REASON_OK;
        if (at >= terms.expiry) expected = REASON_EXPIRED;
        else if (at < terms.notBefore) expected = REASON_NOT_YET_VALID;
        else if (asked == 0 || asked & ~terms.fieldsMask != 0) expected = REASON_FIELDS_NOT_GRANTED;
        assertEq(reason, expected, "reason");
        assertEq(allowed ? 1 : 0, expected == REASON_OK ? 1 : 0, "allowed iff OK");
    }

    /// Recorded accesses never exceed maxUses, whatever the number of attempts.
    function testFuzz_recordAccess_UsesCapped(uint32 maxUses, uint8 attempts, uint64 asked) public {
        GrantTerms memory terms = _boundedTerms(0xFFF, 0, T0 + 30 days, maxUses);
        bytes32 grantId = _grantAs(alice, terms, 1);
        uint256 n = bound(attempts, 0, 25);
        uint64 mask = uint64(bound(asked, 1, 0xFFF));
        uint256 recorded;
        for (uint256 i = 0; i < n; ++i) {
            AccessRequest memory request = _request(grantId, mask, i);
            bytes memory sig = _signAccess(BANK_PK, request);
            vm.prank(custodian);
            try ledger.recordAccess(request, sig) {
                ++recorded;
            } catch {}
        }
        uint256 expected = terms.maxUses == 0 ? n : (n < terms.maxUses ? n : terms.maxUses);
        assertEq(recorded, expected, "recorded");
        // An unlimited grant's counter only marks its first use (its uses are its Accessed events).
        uint256 marked = recorded == 0 ? 0 : 1;
        assertEq(ledger.getGrant(grantId).uses, terms.maxUses == 0 ? marked : expected, "uses");
    }

    /// A signed access request is recorded at most once, in any batch arrangement.
    function testFuzz_recordAccessBatch_NoReplay(uint256 nonce, uint8 copies) public {
        bytes32 grantId = _grantAs(alice, _boundedTerms(0xFFF, 0, T0 + 30 days, 0), 1);
        uint256 n = bound(copies, 1, 6);
        bytes memory item = _packAccess(BANK_PK, _request(grantId, 0x1, nonce));
        bytes memory packed;
        for (uint256 i = 0; i < n; ++i) {
            packed = bytes.concat(packed, item);
        }
        vm.recordLogs();
        vm.prank(custodian);
        uint8[] memory reasons = ledger.recordAccessBatch(packed);
        assertEq(reasons[0], REASON_OK, "first recorded");
        for (uint256 i = 1; i < n; ++i) {
            assertEq(reasons[i], REASON_NONCE_USED, "copies refused");
        }
        // The grant is unlimited, so no counter: count its Accessed events instead.
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 accessed;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].topics[0] == IConsents.Accessed.selector) ++accessed;
        }
        assertEq(accessed, 1, "one use");
    }

    /// A signed grant works once, for its signer only.
    function testFuzz_grantBySig_Once(uint256 nonce, uint64 mask, uint64 expiry) public {
        GrantTerms memory terms = _boundedTerms(mask, 0, expiry, 3);
        SignedGrant memory signed = _signedGrant(ALICE_PK, terms, nonce, T0 + 1 hours);
        vm.prank(custodian);
        bytes32 grantId = ledger.grantBySig(signed);
        assertEq(grantId, ledger.grantIdOf(alice, nonce), "id");
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentGrantExists.selector, grantId));
        ledger.grantBySig(signed);
    }

    /// Only the owner or a live agent creates a grant.
    function testFuzz_grant_OnlyOwnerOrAgent(uint256 who) public {
        address[5] memory actors = [alice, acme, agent, bank, mallory];
        address actor = actors[bound(who, 0, 4)];
        vm.prank(actor);
        try ledger.grant(_terms(bank, 1), 1) {
            assertEq(actor, alice, "only the owner of ASSET");
        } catch {
            assertTrue(actor != alice, "owner must succeed");
        }
    }
}
