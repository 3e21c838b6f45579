// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "../utils/LedgerFixture.sol";
import {IMembership} from "../../src/interfaces/IMembership.sol";

/// @notice Whoever relays, and whatever key it signs with, only the member's own key binds the member's key.
contract KeyBindingFuzzTest is LedgerFixture {
    function testFuzz_OnlyOwnSignatureBinds(uint256 signerPk, bytes32 keyHash, bytes calldata proof, uint64 deadline)
        public
    {
        signerPk = bound(signerPk, 1, 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140);
        keyHash = keyHash == bytes32(0) ? bytes32(uint256(1)) : keyHash;
        bytes memory proofBytes = proof.length == 0 ? bytes(hex"01") : proof;
        deadline = uint64(bound(deadline, T0, type(uint64).max));
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(signerPk, ledger.hashKeyBinding(alice, keyHash, keccak256(proofBytes), 1, deadline));
        address signer = vm.addr(signerPk);
        vm.prank(governor);
        if (signer != alice) {
            vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipKeySignerMismatch.selector, alice, signer));
        }
        ledger.bindEncryptionKeyBySig(alice, keyHash, proofBytes, 1, deadline, abi.encodePacked(r, s, v));
        assertEq(ledger.getMember(alice).encKeyHash, signer == alice ? keyHash : bytes32(0), "key");
    }

    function testFuzz_AliceBindsAnyVersionOnlyInOrder(uint32 version) public {
        version = uint32(bound(version, 0, 50));
        bytes memory sig = _sig(ALICE_PK, ledger.hashKeyBinding(alice, keccak256("k"), keccak256(hex"01"), version, T0));
        vm.prank(custodian);
        if (version != 1) {
            vm.expectRevert(
                abi.encodeWithSelector(IMembership.MembershipKeyVersionMismatch.selector, alice, 1, version)
            );
        }
        ledger.bindEncryptionKeyBySig(alice, keccak256("k"), hex"01", version, T0, sig);
    }
}
