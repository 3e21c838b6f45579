// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "../utils/LedgerFixture.sol";
import "../../src/interfaces/IConsents.sol";
import "../../src/interfaces/ILifecycle.sol";
import {IMembership} from "../../src/interfaces/IMembership.sol";

contract LifecycleTest is LedgerFixture {
    uint64 internal constant MASK = 0x7;
    bytes32 internal constant NEW_ASSET = keccak256("asset-1-v2");
    bytes32 internal grantId;

    function setUp() public override {
        super.setUp();
        grantId = _grantAs(alice, _terms(bank, MASK), 1);
    }

    function _access(bytes32 id, uint256 nonce) internal {
        AccessRequest memory request = _request(id, MASK, nonce);
        bytes memory sig = _signAccess(BANK_PK, request);
        vm.prank(custodian);
        ledger.recordAccess(request, sig);
    }

    function _ack(bytes memory packed) internal returns (uint8[] memory) {
        vm.prank(custodian);
        return ledger.acknowledgeBatch(packed);
    }

    function _ackOne(bytes memory item) internal returns (uint8) {
        return _ack(item)[0];
    }

    function _supersede() internal {
        vm.prank(issuer);
        ledger.supersedeAsset(ASSET, NEW_ASSET, keccak256("root-2"), keccak256("ct-2"));
    }

    function test_grant_StoresRetention() public {
        GrantTerms memory terms = _terms(bank, MASK);
        terms.retention = 30 days;
        bytes32 id = _grantAs(alice, terms, 2);
        Grant memory g = ledger.getGrant(id);
        assertEq(g.retention, 30 days, "retention stored");
        assertEq(g.purpose, 1, "purpose beside it");
        assertEq(g.acks, 0, "nothing acknowledged");
        // The retention is part of what the grantor signs.
        GrantTerms memory other = _terms(bank, MASK);
        assertTrue(ledger.hashGrant(terms, 2, T0) != ledger.hashGrant(other, 2, T0), "retention signed");
    }

    function test_grant_StoresRetentionWithoutPurpose() public {
        GrantTerms memory terms = _terms(bank, MASK);
        terms.purpose = 0;
        terms.retention = 7;
        assertEq(ledger.getGrant(_grantAs(alice, terms, 2)).retention, 7, "retention stored alone");
    }

    function test_acknowledgeDeletion_AfterRevoke() public {
        _access(grantId, 0);
        vm.prank(alice);
        ledger.revoke(grantId);
        vm.expectEmit(address(ledger));
        emit ILifecycle.DeletionAcknowledged(grantId, T0);
        assertEq(_ackOne(_packAck(BANK_PK, ACK_DELETION, grantId, 1, T0)), REASON_OK, "recorded");
        assertEq(ledger.getGrant(grantId).acks, ACK_DELETION, "deletion bit");
        assertEq(ledger.getGrant(grantId).uses, 1, "uses untouched");
    }

    function test_acknowledgeDeletion_AfterExpiry() public {
        vm.warp(T0 + 30 days);
        assertEq(_ackOne(_packAck(BANK_PK, ACK_DELETION, grantId, 0, T0 + 30 days)), REASON_OK, "expired");
    }

    function test_acknowledgeDeletion_AfterUsesExhausted() public {
        for (uint256 i = 0; i < 3; ++i) {
            _access(grantId, i);
        }
        assertEq(_ackOne(_packAck(BANK_PK, ACK_DELETION, grantId, 3, T0)), REASON_OK, "exhausted");
    }

    function test_acknowledgeDeletion_RefusedWhileLive() public {
        _access(grantId, 0);
        vm.expectEmit(address(ledger));
        emit ILifecycle.AcknowledgementRefused(grantId, bank, ACK_DELETION, REASON_GRANT_LIVE);
        assertEq(_ackOne(_packAck(BANK_PK, ACK_DELETION, grantId, 1, T0)), REASON_GRANT_LIVE, "live");
        assertEq(ledger.getGrant(grantId).acks, 0, "nothing recorded");
    }

    function test_acknowledgeDeletion_RefusedWhilePaused() public {
        vm.prank(alice);
        ledger.pause(grantId);
        assertEq(_ackOne(_packAck(BANK_PK, ACK_DELETION, grantId, 0, T0)), REASON_GRANT_LIVE, "paused is not ended");
    }

    function test_acknowledge_RefusedForSomeoneElsesGrant() public {
        vm.prank(alice);
        ledger.revoke(grantId);
        // Another institution (a member) and an outsider.
        assertEq(_ackOne(_packAck(INSURER_PK, ACK_DELETION, grantId, 0, T0)), REASON_NOT_GRANTEE, "insurer");
        assertEq(_ackOne(_packAck(MALLORY_PK, ACK_DELETION, grantId, 0, T0)), REASON_NOT_GRANTEE, "outsider");
        assertEq(ledger.getGrant(grantId).acks, 0, "nothing recorded");
    }

    function test_acknowledge_RefusedReplay() public {
        vm.prank(alice);
        ledger.revoke(grantId);
        bytes memory item = _packAck(BANK_PK, ACK_DELETION, grantId, 0, T0);
        // Twice in one batch, then again later with a new time.
        uint8[] memory reasons = _ack(bytes.concat(item, item));
        assertEq(reasons[0], REASON_OK, "first");
        assertEq(reasons[1], REASON_ALREADY_ACKNOWLEDGED, "same batch");
        vm.warp(T0 + 1);
        assertEq(
            _ackOne(_packAck(BANK_PK, ACK_DELETION, grantId, 0, T0 + 1)), REASON_ALREADY_ACKNOWLEDGED, "re-signed"
        );
    }

    function test_acknowledge_RefusedUsesMismatch() public {
        _access(grantId, 0);
        vm.prank(alice);
        ledger.revoke(grantId);
        assertEq(_ackOne(_packAck(BANK_PK, ACK_DELETION, grantId, 0, T0)), REASON_USES_MISMATCH, "fewer uses");
        assertEq(_ackOne(_packAck(BANK_PK, ACK_DELETION, grantId, 2, T0)), REASON_USES_MISMATCH, "more uses");
    }

    function test_acknowledge_RefusedInFuture() public {
        vm.prank(alice);
        ledger.revoke(grantId);
        assertEq(_ackOne(_packAck(BANK_PK, ACK_DELETION, grantId, 0, T0 + 1)), REASON_ACK_IN_FUTURE, "future");
    }

    function test_acknowledge_RefusedUnknownKindAndBadSignature() public {
        bytes memory unknown = abi.encodePacked(uint8(3), grantId, uint32(0), uint64(T0), bytes32(0), bytes32(0));
        bytes memory unsigned = abi.encodePacked(ACK_DELETION, grantId, uint32(0), uint64(T0), bytes32(0), bytes32(0));
        uint8[] memory reasons = _ack(bytes.concat(unknown, unsigned));
        assertEq(reasons[0], REASON_ACK_KIND_UNKNOWN, "kind");
        assertEq(reasons[1], REASON_SIGNATURE_INVALID, "signature");
    }

    function test_acknowledge_RefusedUnknownGrant() public {
        bytes32 unknown = keccak256("no grant");
        assertEq(_ackOne(_packAck(BANK_PK, ACK_DELETION, unknown, 0, T0)), REASON_NOT_FOUND, "unknown grant");
    }

    function test_acknowledgeRecall_AfterSupersede() public {
        _access(grantId, 0);
        _access(grantId, 1);
        _supersede();
        vm.expectEmit(address(ledger));
        emit ILifecycle.RecallAcknowledged(grantId, T0);
        assertEq(_ackOne(_packAck(BANK_PK, ACK_RECALL, grantId, 2, T0)), REASON_OK, "recall");
        assertEq(ledger.getGrant(grantId).acks, ACK_RECALL, "recall bit");
        // The grant is still live (not expired, not revoked): no deletion yet; after revocation both bits.
        assertEq(_ackOne(_packAck(BANK_PK, ACK_DELETION, grantId, 2, T0)), REASON_GRANT_LIVE, "live");
        vm.prank(alice);
        ledger.revoke(grantId);
        assertEq(_ackOne(_packAck(BANK_PK, ACK_DELETION, grantId, 2, T0)), REASON_OK, "deletion");
        assertEq(ledger.getGrant(grantId).acks, ACK_RECALL | ACK_DELETION, "both bits");
        assertEq(_ackOne(_packAck(BANK_PK, ACK_RECALL, grantId, 2, T0)), REASON_ALREADY_ACKNOWLEDGED, "replay");
    }

    function test_acknowledgeRecall_RefusedWhenNothingToRecall() public {
        // Not superseded.
        _access(grantId, 0);
        assertEq(_ackOne(_packAck(BANK_PK, ACK_RECALL, grantId, 1, T0)), REASON_NOT_RECALLED, "current version");
        // Superseded, but a grant that never pulled owes nothing.
        bytes32 unused = _grantAs(alice, _terms(insurer, MASK), 2);
        _supersede();
        assertEq(_ackOne(_packAck(INSURER_PK, ACK_RECALL, unused, 0, T0)), REASON_NOT_RECALLED, "never pulled");
        assertEq(_ackOne(_packAck(BANK_PK, ACK_RECALL, grantId, 1, T0)), REASON_OK, "the puller owes it");
    }

    function test_acknowledgeBatch_SkipsRefusedItems() public {
        bytes32 other = _grantAs(alice, _terms(insurer, MASK), 2);
        vm.startPrank(alice);
        ledger.revoke(grantId);
        ledger.revoke(other);
        vm.stopPrank();
        bytes memory packed = bytes.concat(
            _packAck(INSURER_PK, ACK_DELETION, grantId, 0, T0),
            _packAck(BANK_PK, ACK_DELETION, grantId, 0, T0),
            _packAck(INSURER_PK, ACK_DELETION, other, 0, T0)
        );
        uint8[] memory reasons = _ack(packed);
        assertEq(reasons[0], REASON_NOT_GRANTEE, "refused");
        assertEq(reasons[1], REASON_OK, "bank");
        assertEq(reasons[2], REASON_OK, "insurer");
    }

    function test_acknowledgeBatch_Empty() public {
        assertEq(_ack("").length, 0, "nothing");
    }

    function test_RevertWhen_acknowledgeBatch_Truncated() public {
        bytes memory item = _packAck(BANK_PK, ACK_DELETION, grantId, 0, T0);
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(ILifecycle.LifecycleMalformedBatch.selector, item.length + 1));
        ledger.acknowledgeBatch(bytes.concat(item, hex"00"));
    }

    function test_RevertWhen_acknowledgeBatch_NotCustodian() public {
        bytes memory item = _packAck(BANK_PK, ACK_DELETION, grantId, 0, T0);
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipUnauthorized.selector, bank, CUSTODIAN));
        ledger.acknowledgeBatch(item);
    }

    function test_hashAcknowledgement_MatchesEip712() public view {
        bytes32 recall = keccak256(
            abi.encode(keccak256("RecallAcknowledgement(bytes32 grantId,uint32 uses,uint64 at)"), grantId, 2, T0)
        );
        bytes32 deletion = keccak256(
            abi.encode(keccak256("DeletionAcknowledgement(bytes32 grantId,uint32 uses,uint64 at)"), grantId, 2, T0)
        );
        bytes32 domain = ledger.domainSeparator();
        assertEq(
            ledger.hashAcknowledgement(ACK_RECALL, grantId, 2, T0),
            keccak256(abi.encodePacked("\x19\x01", domain, recall)),
            "recall digest"
        );
        assertEq(
            ledger.hashAcknowledgement(ACK_DELETION, grantId, 2, T0),
            keccak256(abi.encodePacked("\x19\x01", domain, deletion)),
            "deletion digest"
        );
    }

    function test_RevertWhen_hashAcknowledgement_UnknownKind() public {
        vm.expectRevert(abi.encodeWithSelector(ILifecycle.LifecycleUnknownKind.selector, 0));
        ledger.hashAcknowledgement(0, grantId, 0, T0);
    }
}
