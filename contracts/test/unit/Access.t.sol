// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "../utils/LedgerFixture.sol";
import "../../src/interfaces/IConsents.sol";
import {IMembership} from "../../src/interfaces/IMembership.sol";

contract AccessTest is LedgerFixture {
    uint64 internal constant MASK = 0x7;
    bytes32 internal grantId;

    function setUp() public override {
        super.setUp();
        grantId = _grantAs(alice, _terms(bank, MASK), 1);
    }

    function _record(AccessRequest memory request) internal returns (uint32) {
        bytes memory sig = _signAccess(BANK_PK, request);
        vm.prank(custodian);
        return ledger.recordAccess(request, sig);
    }

    function test_recordAccess_CountsAndEmits() public {
        AccessRequest memory request = _request(grantId, 0x3, 0);
        bytes memory sig = _signAccess(BANK_PK, request);
        vm.expectEmit(address(ledger));
        emit IConsents.Accessed(grantId, bank, custodian, 0x3, 1, 0);
        vm.prank(custodian);
        assertEq(ledger.recordAccess(request, sig), 1, "use number");
        assertEq(ledger.getGrant(grantId).uses, 1, "uses stored");
        assertTrue(ledger.isAccessNonceUsed(bank, 0), "nonce used");
        assertFalse(ledger.isAccessNonceUsed(bank, 1), "next nonce free");
    }

    function test_RevertWhen_recordAccess_Replayed() public {
        AccessRequest memory request = _request(grantId, MASK, 0);
        bytes memory sig = _signAccess(BANK_PK, request);
        vm.prank(custodian);
        ledger.recordAccess(request, sig);
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IConsents.AccessNonceUsed.selector, bank, 0));
        ledger.recordAccess(request, sig);
    }

    function test_RevertWhen_recordAccess_UsesExhausted() public {
        _record(_request(grantId, MASK, 0));
        _record(_request(grantId, MASK, 1));
        _record(_request(grantId, MASK, 2));
        AccessRequest memory request = _request(grantId, MASK, 3);
        bytes memory sig = _signAccess(BANK_PK, request);
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentAccessRefused.selector, grantId, REASON_USES_EXHAUSTED));
        ledger.recordAccess(request, sig);
    }

    function test_RevertWhen_recordAccess_SignedByOther() public {
        AccessRequest memory request = _request(grantId, MASK, 0);
        bytes memory sig = _signAccess(INSURER_PK, request);
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentAccessRefused.selector, grantId, REASON_NOT_GRANTEE));
        ledger.recordAccess(request, sig);
    }

    function test_RevertWhen_recordAccess_Expired() public {
        AccessRequest memory request = _request(grantId, MASK, 0);
        request.deadline = T0 - 1;
        bytes memory sig = _signAccess(BANK_PK, request);
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IConsents.SignatureExpired.selector, T0 - 1));
        ledger.recordAccess(request, sig);
    }

    function test_RevertWhen_recordAccess_BadSignature() public {
        vm.prank(custodian);
        vm.expectRevert(IConsents.SignatureInvalid.selector);
        ledger.recordAccess(_request(grantId, MASK, 0), new bytes(65));
    }

    function test_RevertWhen_recordAccess_NotCustodian() public {
        AccessRequest memory request = _request(grantId, MASK, 0);
        bytes memory sig = _signAccess(BANK_PK, request);
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipUnauthorized.selector, bank, uint16(16)));
        ledger.recordAccess(request, sig);
    }

    function test_recordAccessBatch_SkipsRefused() public {
        AccessRequest[] memory requests = new AccessRequest[](3);
        bytes[] memory sigs = new bytes[](3);
        requests[0] = _request(grantId, MASK, 0);
        requests[1] = _request(grantId, 0x8, 1); // field not granted
        requests[2] = _request(grantId, 0x1, 2);
        for (uint256 i = 0; i < 3; ++i) {
            sigs[i] = _signAccess(BANK_PK, requests[i]);
        }
        vm.expectEmit(address(ledger));
        emit IConsents.AccessRefused(grantId, bank, custodian, REASON_FIELDS_NOT_GRANTED, 1);
        vm.prank(custodian);
        uint8[] memory reasons = ledger.recordAccessBatch(requests, sigs);
        assertEq(reasons[0], REASON_OK, "first recorded");
        assertEq(reasons[1], REASON_FIELDS_NOT_GRANTED, "second refused");
        assertEq(reasons[2], REASON_OK, "third recorded");
        assertEq(ledger.getGrant(grantId).uses, 2, "two uses");
        assertFalse(ledger.isAccessNonceUsed(bank, 1), "refused nonce not consumed");
    }

    function test_recordAccessBatch_SignatureReasons() public {
        AccessRequest[] memory requests = new AccessRequest[](3);
        bytes[] memory sigs = new bytes[](3);
        requests[0] = _request(grantId, MASK, 0);
        requests[0].deadline = T0 - 1;
        sigs[0] = _signAccess(BANK_PK, requests[0]);
        requests[1] = _request(grantId, MASK, 1);
        sigs[1] = hex"00";
        requests[2] = _request(grantId, MASK, 2);
        sigs[2] = _signAccess(BANK_PK, requests[2]);
        _record(requests[2]);
        vm.prank(custodian);
        uint8[] memory reasons = ledger.recordAccessBatch(requests, sigs);
        assertEq(reasons[0], REASON_SIGNATURE_EXPIRED, "expired");
        assertEq(reasons[1], REASON_SIGNATURE_INVALID, "invalid");
        assertEq(reasons[2], REASON_NONCE_USED, "replay");
    }

    function test_RevertWhen_recordAccessBatch_LengthMismatch() public {
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentLengthMismatch.selector, 1, 0));
        ledger.recordAccessBatch(new AccessRequest[](1), new bytes[](0));
    }

    function test_recordAccessBatch_TenAccesses() public {
        bytes32[] memory ids = new bytes32[](10);
        for (uint256 i = 0; i < 10; ++i) {
            ids[i] = _grantAs(alice, _terms(bank, MASK), 100 + i);
        }
        AccessRequest[] memory requests = new AccessRequest[](10);
        bytes[] memory sigs = new bytes[](10);
        for (uint256 i = 0; i < 10; ++i) {
            requests[i] = _request(ids[i], MASK, i);
            sigs[i] = _signAccess(BANK_PK, requests[i]);
        }
        vm.prank(custodian);
        uint8[] memory reasons = ledger.recordAccessBatch(requests, sigs);
        for (uint256 i = 0; i < 10; ++i) {
            assertEq(reasons[i], REASON_OK, "recorded");
        }
    }

    function test_check_UnlimitedGrant() public {
        GrantTerms memory terms = _terms(bank, MASK);
        terms.maxUses = 0;
        bytes32 id = _grantAs(alice, terms, 2);
        _record(_request(id, MASK, 0));
        _record(_request(id, MASK, 1));
        _record(_request(id, MASK, 2));
        _record(_request(id, MASK, 3));
        (bool allowed,) = ledger.check(id, bank, MASK);
        assertTrue(allowed, "unlimited");
    }

    function test_RevertWhen_grant_MaxUsesTooLarge() public {
        GrantTerms memory terms = _terms(bank, MASK);
        terms.maxUses = 70_000;
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentInvalidMaxUses.selector, uint32(70_000)));
        ledger.grant(terms, 2);
    }
}
