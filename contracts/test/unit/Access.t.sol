// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "../utils/LedgerFixture.sol";
import "../../src/interfaces/IConsents.sol";
import {IMembership} from "../../src/interfaces/IMembership.sol";

contract AccessTest is LedgerFixture {
    uint64 internal constant MASK = 0x7;
    uint256 internal constant SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141;
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
        emit IConsents.Accessed(grantId, 0x3, 0);
        vm.prank(custodian);
        assertEq(ledger.recordAccess(request, sig), 1, "use number");
        assertEq(ledger.getGrant(grantId).uses, 1, "uses stored");
        assertTrue(ledger.isAccessNonceUsed(bank, 0), "nonce used");
        assertFalse(ledger.isAccessNonceUsed(bank, 1), "next nonce free");
    }

    function test_recordAccess_UnlimitedGrantMarksFirstUseOnly() public {
        GrantTerms memory terms = _terms(bank, MASK);
        terms.maxUses = 0;
        bytes32 unlimited = _grantAs(alice, terms, 2);
        for (uint256 n = 0; n < 4; ++n) {
            AccessRequest memory request = _request(unlimited, MASK, n);
            bytes memory sig = _signAccess(BANK_PK, request);
            vm.expectEmit(address(ledger));
            emit IConsents.Accessed(unlimited, MASK, n);
            vm.prank(custodian);
            assertEq(ledger.recordAccess(request, sig), 0, "not counted");
        }
        assertEq(ledger.getGrant(unlimited).uses, 1, "counter marks the first use only");
        (bool allowed,) = ledger.check(unlimited, bank, MASK);
        assertTrue(allowed, "no limit");
        bytes memory packed = bytes.concat(
            _packAccess(BANK_PK, _request(unlimited, MASK, 10)), _packAccess(BANK_PK, _request(unlimited, MASK, 11))
        );
        vm.prank(custodian);
        uint8[] memory reasons = ledger.recordAccessBatch(packed);
        assertEq(reasons[0], REASON_OK, "batched first");
        assertEq(reasons[1], REASON_OK, "batched second");
        assertEq(ledger.getGrant(unlimited).uses, 1, "batch does not count either");
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
        bytes memory packed = bytes.concat(
            _packAccess(BANK_PK, _request(grantId, MASK, 0)),
            _packAccess(BANK_PK, _request(grantId, 0x8, 1)), // field not granted
            _packAccess(BANK_PK, _request(grantId, 0x1, 2))
        );
        vm.expectEmit(address(ledger));
        emit IConsents.AccessRefused(grantId, bank, custodian, REASON_FIELDS_NOT_GRANTED, 1);
        vm.prank(custodian);
        uint8[] memory reasons = ledger.recordAccessBatch(packed);
        assertEq(reasons.length, 3, "one reason per item");
        assertEq(reasons[0], REASON_OK, "first recorded");
        assertEq(reasons[1], REASON_FIELDS_NOT_GRANTED, "second refused");
        assertEq(reasons[2], REASON_OK, "third recorded");
        assertEq(ledger.getGrant(grantId).uses, 2, "two uses");
        assertFalse(ledger.isAccessNonceUsed(bank, 1), "refused nonce not consumed");
    }

    function test_recordAccessBatch_EmitsAccessed() public {
        bytes memory packed = _packAccess(BANK_PK, _request(grantId, 0x3, 7));
        vm.expectEmit(address(ledger));
        emit IConsents.Accessed(grantId, 0x3, 7);
        vm.prank(custodian);
        ledger.recordAccessBatch(packed);
        assertTrue(ledger.isAccessNonceUsed(bank, 7), "nonce used");
    }

    function test_recordAccessBatch_SignatureReasons() public {
        AccessRequest memory expired = _request(grantId, MASK, 0);
        expired.deadline = T0 - 1;
        AccessRequest memory replayed = _request(grantId, MASK, 2);
        _record(replayed);
        bytes memory packed = bytes.concat(
            _packAccess(BANK_PK, expired),
            _packItem(_request(grantId, MASK, 1), bytes32(0), bytes32(0)),
            _packAccess(BANK_PK, replayed)
        );
        vm.prank(custodian);
        uint8[] memory reasons = ledger.recordAccessBatch(packed);
        assertEq(reasons[0], REASON_SIGNATURE_EXPIRED, "expired");
        assertEq(reasons[1], REASON_SIGNATURE_INVALID, "invalid");
        assertEq(reasons[2], REASON_NONCE_USED, "replay");
    }

    function test_recordAccessBatch_Empty() public {
        vm.prank(custodian);
        assertEq(ledger.recordAccessBatch("").length, 0, "nothing recorded");
    }

    function test_RevertWhen_recordAccessBatch_Truncated() public {
        bytes memory item = _packAccess(BANK_PK, _request(grantId, MASK, 0));
        bytes memory cut = new bytes(item.length - 1);
        for (uint256 i = 0; i < cut.length; ++i) {
            cut[i] = item[i];
        }
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentMalformedBatch.selector, ACCESS_ITEM_SIZE - 1));
        ledger.recordAccessBatch(cut);
        assertFalse(ledger.isAccessNonceUsed(bank, 0), "nothing recorded");
    }

    function test_RevertWhen_recordAccessBatch_TrailingBytes() public {
        bytes memory packed = bytes.concat(_packAccess(BANK_PK, _request(grantId, MASK, 0)), hex"00");
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentMalformedBatch.selector, ACCESS_ITEM_SIZE + 1));
        ledger.recordAccessBatch(packed);
    }

    /// A 65-byte `r ‖ s ‖ v` signature where the compact 64-byte form belongs: the batch is malformed.
    function test_RevertWhen_recordAccessBatch_FullLengthSignature() public {
        AccessRequest memory request = _request(grantId, MASK, 0);
        bytes memory packed = abi.encodePacked(
            request.grantId, request.fieldsMask, request.nonce, request.deadline, _signAccess(BANK_PK, request)
        );
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentMalformedBatch.selector, ACCESS_ITEM_SIZE + 1));
        ledger.recordAccessBatch(packed);
    }

    /// The malleable twin (n - s, flipped v) of a valid 65-byte signature recovers the same key and is refused.
    function test_RevertWhen_recordAccess_HighS() public {
        AccessRequest memory request = _request(grantId, MASK, 0);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(BANK_PK, ledger.hashAccessRequest(request));
        bytes memory twin = abi.encodePacked(r, bytes32(SECP256K1_N - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        vm.prank(custodian);
        vm.expectRevert(IConsents.SignatureInvalid.selector);
        ledger.recordAccess(request, twin);
    }

    function test_RevertWhen_recordAccess_SignatureLength() public {
        AccessRequest memory request = _request(grantId, MASK, 0);
        bytes memory sig = _signAccess(BANK_PK, request);
        vm.prank(custodian);
        vm.expectRevert(IConsents.SignatureInvalid.selector);
        ledger.recordAccess(request, bytes.concat(sig, hex"00"));
    }

    /// A compact signature cannot carry a twin (its s has the top bit set), but an s between n/2 and 2^255 fits in
    /// `vs`: it is refused before recovery (SIGNATURE_INVALID, grantee 0), though ecrecover would name someone.
    function test_recordAccessBatch_RefusesHighS() public {
        AccessRequest memory request = _request(grantId, MASK, 0);
        bytes32 digest = ledger.hashAccessRequest(request);
        (, bytes32 r,) = vm.sign(BANK_PK, digest);
        bytes32 highS = bytes32(SECP256K1_N / 2 + 1);
        assertTrue(ecrecover(digest, 27, r, highS) != address(0), "recoverable without the low-s rule");
        vm.expectEmit(address(ledger));
        emit IConsents.AccessRefused(grantId, address(0), custodian, REASON_SIGNATURE_INVALID, 0);
        vm.prank(custodian);
        uint8[] memory reasons = ledger.recordAccessBatch(_packItem(request, r, highS));
        assertEq(reasons[0], REASON_SIGNATURE_INVALID, "high s refused");
        assertFalse(ledger.isAccessNonceUsed(bank, 0), "nonce not consumed");
        assertEq(ledger.getGrant(grantId).uses, 0, "no use");
    }

    /// The parity bit matters: flipped, the signature names another key, which is not the grantee.
    function test_recordAccessBatch_FlippedParity() public {
        AccessRequest memory request = _request(grantId, MASK, 0);
        bytes32 digest = ledger.hashAccessRequest(request);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(BANK_PK, digest);
        bytes32 vs = bytes32(uint256(s) | (uint256(28 - v) << 255));
        vm.expectEmit(address(ledger));
        emit IConsents.AccessRefused(grantId, ecrecover(digest, 55 - v, r, s), custodian, REASON_NOT_GRANTEE, 0);
        vm.prank(custodian);
        uint8[] memory reasons = ledger.recordAccessBatch(_packItem(request, r, vs));
        assertEq(reasons[0], REASON_NOT_GRANTEE, "other signer");
    }

    function test_RevertWhen_recordAccessBatch_NotCustodian() public {
        bytes memory packed = _packAccess(BANK_PK, _request(grantId, MASK, 0));
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipUnauthorized.selector, bank, uint16(16)));
        ledger.recordAccessBatch(packed);
    }

    function test_recordAccessBatch_TenAccesses() public {
        bytes memory packed;
        for (uint256 i = 0; i < 10; ++i) {
            bytes32 id = _grantAs(alice, _terms(bank, MASK), 100 + i);
            packed = bytes.concat(packed, _packAccess(BANK_PK, _request(id, MASK, i)));
        }
        vm.prank(custodian);
        uint8[] memory reasons = ledger.recordAccessBatch(packed);
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
