// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "../utils/LedgerFixture.sol";
import {IMembership, Member, MemberKind} from "../../src/interfaces/IMembership.sol";

/// @notice Encryption keys belong to their members: only the member's own signature binds or rotates one.
contract KeyBindingTest is LedgerFixture {
    bytes32 internal constant KEY = keccak256("alice-key-1");
    bytes internal constant PROOF = hex"0102030405";
    uint64 internal constant DEADLINE = T0 + 1 hours;

    function _bindingSig(uint256 pk, address account, bytes32 keyHash, bytes memory proof, uint32 version)
        internal
        view
        returns (bytes memory)
    {
        return _sig(pk, ledger.hashKeyBinding(account, keyHash, keccak256(proof), version, DEADLINE));
    }

    function test_admission_BindsNoKey() public view {
        Member memory m = ledger.getMember(alice);
        assertEq(m.keyVersion, 0, "no version");
        assertEq(m.encKeyHash, bytes32(0), "no key");
        assertEq(m.keyProofHash, bytes32(0), "no proof");
    }

    function test_bindEncryptionKey_Direct() public {
        vm.expectEmit(address(ledger));
        emit IMembership.EncryptionKeyBound(alice, alice, 1, KEY, keccak256(PROOF), PROOF, T0);
        vm.prank(alice);
        ledger.bindEncryptionKey(KEY, PROOF);
        Member memory m = ledger.getMember(alice);
        assertEq(m.keyVersion, 1, "version");
        assertEq(m.encKeyHash, KEY, "hash");
        assertEq(m.keyProofHash, keccak256(PROOF), "proof hash");
    }

    function test_bindEncryptionKeyBySig_RelayedThenRotated() public {
        bytes memory sig = _bindingSig(ALICE_PK, alice, KEY, PROOF, 1);
        vm.expectEmit(address(ledger));
        emit IMembership.EncryptionKeyBound(alice, custodian, 1, KEY, keccak256(PROOF), PROOF, T0);
        vm.prank(custodian);
        ledger.bindEncryptionKeyBySig(alice, KEY, PROOF, 1, DEADLINE, sig);
        // Rotation follows the same rule: version 2 needs a fresh signature by alice.
        bytes32 key2 = keccak256("alice-key-2");
        bytes memory sig2 = _bindingSig(ALICE_PK, alice, key2, hex"09", 2);
        vm.prank(custodian);
        ledger.bindEncryptionKeyBySig(alice, key2, hex"09", 2, DEADLINE, sig2);
        Member memory m = ledger.getMember(alice);
        assertEq(m.keyVersion, 2, "version");
        assertEq(m.encKeyHash, key2, "rotated");
        assertEq(m.keyProofHash, keccak256(hex"09"), "proof");
    }

    function test_RevertWhen_GovernorSetsKey() public {
        // The governor signs a binding for alice with a key of its own: refused.
        bytes memory forged = _bindingSig(MALLORY_PK, alice, KEY, PROOF, 1);
        vm.prank(governor);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipKeySignerMismatch.selector, alice, mallory));
        ledger.bindEncryptionKeyBySig(alice, KEY, PROOF, 1, DEADLINE, forged);
        // After alice has bound her key, the governor cannot replace it either.
        bytes memory own = _bindingSig(ALICE_PK, alice, KEY, PROOF, 1);
        vm.prank(custodian);
        ledger.bindEncryptionKeyBySig(alice, KEY, PROOF, 1, DEADLINE, own);
        bytes32 operatorKey = keccak256("operator-key");
        bytes memory replace = _bindingSig(MALLORY_PK, alice, operatorKey, PROOF, 2);
        vm.prank(governor);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipKeySignerMismatch.selector, alice, mallory));
        ledger.bindEncryptionKeyBySig(alice, operatorKey, PROOF, 2, DEADLINE, replace);
        // The direct form binds the caller's own key only.
        vm.prank(governor);
        ledger.bindEncryptionKey(operatorKey, PROOF);
        assertEq(ledger.getMember(alice).encKeyHash, KEY, "alice keeps her key");
        assertEq(ledger.getMember(governor).encKeyHash, operatorKey, "governor's own");
    }

    function test_RevertWhen_bindBySig_Replayed() public {
        bytes memory sig = _bindingSig(ALICE_PK, alice, KEY, PROOF, 1);
        vm.startPrank(custodian);
        ledger.bindEncryptionKeyBySig(alice, KEY, PROOF, 1, DEADLINE, sig);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipKeyVersionMismatch.selector, alice, 2, 1));
        ledger.bindEncryptionKeyBySig(alice, KEY, PROOF, 1, DEADLINE, sig);
        vm.stopPrank();
    }

    function test_RevertWhen_bindBySig_ProofSwapped() public {
        bytes memory sig = _bindingSig(ALICE_PK, alice, KEY, PROOF, 1);
        // A relayer that swaps the proof (or the key) breaks the signature.
        vm.prank(custodian);
        vm.expectRevert();
        ledger.bindEncryptionKeyBySig(alice, KEY, hex"ff", 1, DEADLINE, sig);
        vm.prank(custodian);
        vm.expectRevert();
        ledger.bindEncryptionKeyBySig(alice, keccak256("other"), PROOF, 1, DEADLINE, sig);
        assertEq(ledger.getMember(alice).keyVersion, 0, "nothing bound");
    }

    function test_RevertWhen_bindBySig_Errors() public {
        bytes memory sig = _bindingSig(ALICE_PK, alice, KEY, PROOF, 1);
        vm.warp(DEADLINE + 1);
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipKeySignatureExpired.selector, DEADLINE));
        ledger.bindEncryptionKeyBySig(alice, KEY, PROOF, 1, DEADLINE, sig);
        vm.warp(T0);
        // A relayer must be an active member.
        vm.prank(address(0xDEAD));
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotActive.selector, address(0xDEAD)));
        ledger.bindEncryptionKeyBySig(alice, KEY, PROOF, 1, DEADLINE, sig);
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipKeySignerMismatch.selector, alice, address(0)));
        ledger.bindEncryptionKeyBySig(alice, KEY, PROOF, 1, DEADLINE, hex"00");
        // A suspended member cannot bind.
        vm.prank(regulator);
        ledger.suspendMember(alice, 0);
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotActive.selector, alice));
        ledger.bindEncryptionKeyBySig(alice, KEY, PROOF, 1, DEADLINE, sig);
    }

    function test_RevertWhen_bindEncryptionKey_Errors() public {
        vm.prank(address(0x4E3));
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotActive.selector, address(0x4E3)));
        ledger.bindEncryptionKey(KEY, PROOF);
        vm.startPrank(alice);
        vm.expectRevert(IMembership.MembershipZeroKeyHash.selector);
        ledger.bindEncryptionKey(bytes32(0), PROOF);
        vm.expectRevert(IMembership.MembershipEmptyKeyProof.selector);
        ledger.bindEncryptionKey(KEY, "");
        vm.stopPrank();
    }
}
