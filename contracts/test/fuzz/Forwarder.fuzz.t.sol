// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "../utils/LedgerFixture.sol";
import {DataSafeForwarder} from "../../src/DataSafeForwarder.sol";
import {IDataSafeForwarder, ForwardRequest} from "../../src/interfaces/IDataSafeForwarder.sol";
import {IAssets, AssetStatus} from "../../src/interfaces/IAssets.sol";

/// @notice Whatever key signs and whenever it lands, only the owner's own, fresh, in-order request disputes.
contract ForwarderFuzzTest is LedgerFixture {
    function _forwarder() internal view returns (DataSafeForwarder) {
        return DataSafeForwarder(
            address(
                uint160(uint256(keccak256(abi.encodePacked(bytes1(0xd6), bytes1(0x94), address(ledger), bytes1(0x01)))))
            )
        );
    }

    function testFuzz_OnlyOwnFreshRequestDisputes(uint256 signerPk, uint256 nonce, uint64 deadline, uint64 at) public {
        signerPk = bound(signerPk, 1, 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140);
        nonce = bound(nonce, 0, 2);
        deadline = uint64(bound(deadline, T0, T0 + 2 days));
        at = uint64(bound(at, T0, T0 + 2 days));
        DataSafeForwarder forwarder = _forwarder();
        ForwardRequest memory request = ForwardRequest({
            from: alice,
            to: address(ledger),
            nonce: nonce,
            deadline: deadline,
            data: abi.encodeCall(IAssets.disputeAsset, (ASSET, keccak256("wrong")))
        });
        bytes memory sig = _sig(signerPk, forwarder.hashRequest(request));
        address signer = vm.addr(signerPk);
        vm.warp(at);
        bool lands = at <= deadline && nonce == 0 && signer == alice;
        if (at > deadline) {
            vm.expectRevert(abi.encodeWithSelector(IDataSafeForwarder.ForwarderExpired.selector, deadline));
        } else if (nonce != 0) {
            vm.expectRevert(abi.encodeWithSelector(IDataSafeForwarder.ForwarderInvalidNonce.selector, alice, 0, nonce));
        } else if (signer != alice) {
            vm.expectRevert(abi.encodeWithSelector(IDataSafeForwarder.ForwarderSignerMismatch.selector, alice, signer));
        }
        forwarder.execute(request, sig);
        assertTrue((ledger.getAsset(ASSET).status == AssetStatus.DISPUTED) == lands, "disputed iff valid");
        assertEq(forwarder.nonces(alice), lands ? 1 : 0, "nonce");
    }
}
