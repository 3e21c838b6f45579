// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "../utils/LedgerFixture.sol";
import {DataSafeClaims} from "../../src/DataSafeClaims.sol";
import {
    IDataSafeClaims, ClaimRequest, ClaimStatus
} from "../../src/interfaces/IDataSafeClaims.sol";

/// @notice Whatever key signs, whoever relays and whoever answers: a claim is the subject's own, fresh request, and
///         only its department closes it, once.
contract ClaimsFuzzTest is LedgerFixture {
    bytes32 internal constant REF = keccak256("ref");

    function _claims() internal view returns (DataSafeClaims) {
        return DataSafeClaims(
            address(
                uint160(uint256(keccak256(abi.encodePacked(bytes1(0xd6), bytes1(0x94), address(ledger), bytes1(0x02)))))
            )
        );
    }

    function testFuzz_OnlyTheSubjectsFreshRequestFiles(uint256 signerPk, uint256 nonce, uint64 deadline, uint64 at)
        public
    {
        signerPk = bound(signerPk, 1, 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140);
        nonce = bound(nonce, 0, 2);
        deadline = uint64(bound(deadline, T0, T0 + 2 days));
        at = uint64(bound(at, T0, T0 + 2 days));
        DataSafeClaims claims = _claims();
        ClaimRequest memory request = ClaimRequest({
            subject: alice, department: issuer, schemaId: SCHEMA, referenceHash: REF, nonce: nonce, deadline: deadline
        });
        bytes memory sig = _sig(signerPk, claims.hashClaimRequest(request));
        address signer = vm.addr(signerPk);
        vm.warp(at);
        bool lands = at <= deadline && nonce == 0 && signer == alice;
        if (at > deadline) {
            vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsExpired.selector, deadline));
        } else if (nonce != 0) {
            vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsInvalidNonce.selector, alice, 0, nonce));
        } else if (signer != alice) {
            vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsSignerMismatch.selector, alice, signer));
        }
        vm.prank(custodian);
        claims.fileClaim(request, sig);
        assertEq(claims.nonces(alice), lands ? 1 : 0, "nonce moves only when the claim lands");
    }

    function testFuzz_OnlyItsDepartmentClosesItOnce(address caller, uint16 code, bool fulfil) public {
        if (caller == issuer) caller = mallory; // any address but the department's
        DataSafeClaims claims = _claims();
        ClaimRequest memory request = ClaimRequest({
            subject: alice, department: issuer, schemaId: SCHEMA, referenceHash: REF, nonce: 0, deadline: T0 + 1 hours
        });
        bytes memory sig = _sig(ALICE_PK, claims.hashClaimRequest(request));
        vm.prank(custodian);
        bytes32 claimId = claims.fileClaim(request, sig);
        code = uint16(bound(code, 1, type(uint16).max));
        vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsNotClaimDepartment.selector, claimId, caller));
        vm.prank(caller);
        claims.refuseClaim(claimId, code, bytes32(0));
        vm.prank(issuer);
        if (fulfil) {
            claims.fulfilClaim(claimId, ASSET);
        } else {
            claims.refuseClaim(claimId, code, bytes32(0));
        }
        ClaimStatus closed = claims.getClaim(claimId).status;
        assertTrue(closed == (fulfil ? ClaimStatus.FULFILLED : ClaimStatus.REFUSED), "closed as answered");
        vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsNotOpen.selector, claimId, closed));
        vm.prank(issuer);
        claims.refuseClaim(claimId, code, bytes32(0));
    }
}
