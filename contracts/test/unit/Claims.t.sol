// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "../utils/LedgerFixture.sol";
import {DataSafeClaims} from "../../src/DataSafeClaims.sol";
import {
    IDataSafeClaims, ClaimRequest, ClaimStatus, Claim
} from "../../src/interfaces/IDataSafeClaims.sol";
import {MemberKind} from "../../src/interfaces/IMembership.sol";

/// @notice A subject claims a record; only the department asked answers, once, with the record it issued or a reason.
contract ClaimsTest is LedgerFixture {
    DataSafeClaims internal claims;
    address internal otherDept = address(0xD2);
    bytes32 internal constant REF = keccak256("salt|case-2025-0042");
    bytes32 internal constant ISSUED = keccak256("issued-for-claim");
    uint64 internal constant DEADLINE = T0 + 1 hours;

    function setUp() public override {
        super.setUp();
        // The first companion: CREATE from the ledger at nonce 2 (the forwarder is nonce 1).
        claims = DataSafeClaims(
            address(
                uint160(uint256(keccak256(abi.encodePacked(bytes1(0xd6), bytes1(0x94), address(ledger), bytes1(0x02)))))
            )
        );
        vm.prank(governor);
        ledger.admitMember(otherDept, ISSUER, MemberKind.DEPARTMENT, bytes32(0));
    }

    function _claimRequest(uint256 pk, address department, bytes32 schemaId)
        internal
        view
        returns (ClaimRequest memory request, bytes memory sig)
    {
        address subject = vm.addr(pk);
        request = ClaimRequest({
            subject: subject,
            department: department,
            schemaId: schemaId,
            referenceHash: REF,
            nonce: claims.nonces(subject),
            deadline: DEADLINE
        });
        sig = _sig(pk, claims.hashClaimRequest(request));
    }

    function _file() internal returns (bytes32 claimId) {
        (ClaimRequest memory request, bytes memory sig) = _claimRequest(ALICE_PK, issuer, SCHEMA);
        vm.prank(custodian);
        claimId = claims.fileClaim(request, sig);
    }

    function _issue(bytes32 assetId, address owner) internal {
        vm.prank(issuer);
        ledger.anchorAsset(assetId, owner, SCHEMA, keccak256("root"), keccak256("ct"));
    }

    function test_claims_IsTheLedgersCompanion() public view {
        assertEq(claims.ledger(), address(ledger), "its ledger");
        assertTrue(address(claims).code.length > 0, "created by the constructor");
    }

    function test_fileClaim_RelayedForTheSubject() public {
        (ClaimRequest memory request, bytes memory sig) = _claimRequest(ALICE_PK, issuer, SCHEMA);
        bytes32 expected = claims.hashClaimRequest(request);
        vm.expectEmit(address(claims));
        emit IDataSafeClaims.ClaimFiled(expected, alice, issuer, SCHEMA, REF, custodian, T0);
        vm.prank(custodian);
        bytes32 claimId = claims.fileClaim(request, sig);
        assertEq(claimId, expected, "id is the digest");
        Claim memory claim = claims.getClaim(claimId);
        assertEq(claim.subject, alice, "subject");
        assertEq(claim.department, issuer, "department");
        assertEq(claim.schemaId, SCHEMA, "schemaId");
        assertTrue(claim.status == ClaimStatus.OPEN, "open");
        assertEq(claim.filedAt, T0, "filedAt");
        assertEq(claims.nonces(alice), 1, "nonce used");
    }

    function test_fulfilClaim_LinksTheIssuedAsset() public {
        bytes32 claimId = _file();
        _issue(ISSUED, alice);
        vm.warp(T0 + 2 days);
        vm.expectEmit(address(claims));
        emit IDataSafeClaims.ClaimFulfilled(claimId, alice, issuer, ISSUED, T0 + 2 days);
        vm.prank(issuer);
        claims.fulfilClaim(claimId, ISSUED);
        Claim memory claim = claims.getClaim(claimId);
        assertTrue(claim.status == ClaimStatus.FULFILLED, "fulfilled");
        assertEq(claim.outcome, ISSUED, "outcome");
        assertEq(claim.closedAt, T0 + 2 days, "closedAt");
        assertEq(claims.claimOfAsset(ISSUED), claimId, "linked");
    }

    function test_refuseClaim_WithReason() public {
        bytes32 claimId = _file();
        vm.expectEmit(address(claims));
        emit IDataSafeClaims.ClaimRefused(claimId, alice, issuer, 3, keccak256("no such case"), T0);
        vm.prank(issuer);
        claims.refuseClaim(claimId, 3, keccak256("no such case"));
        Claim memory claim = claims.getClaim(claimId);
        assertTrue(claim.status == ClaimStatus.REFUSED, "refused");
        assertEq(claim.reasonCode, 3, "reasonCode");
        assertEq(claim.outcome, keccak256("no such case"), "outcome");
    }

    function test_RevertWhen_FulfilledTwice() public {
        bytes32 claimId = _file();
        _issue(ISSUED, alice);
        vm.startPrank(issuer);
        claims.fulfilClaim(claimId, ISSUED);
        vm.expectRevert(
            abi.encodeWithSelector(IDataSafeClaims.ClaimsNotOpen.selector, claimId, ClaimStatus.FULFILLED)
        );
        claims.fulfilClaim(claimId, ISSUED);
        vm.expectRevert(
            abi.encodeWithSelector(IDataSafeClaims.ClaimsNotOpen.selector, claimId, ClaimStatus.FULFILLED)
        );
        claims.refuseClaim(claimId, 1, bytes32(0));
        vm.stopPrank();
    }

    function test_RevertWhen_AnotherDepartmentAnswers() public {
        bytes32 claimId = _file();
        vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsNotClaimDepartment.selector, claimId, otherDept));
        vm.prank(otherDept);
        claims.refuseClaim(claimId, 1, bytes32(0));
    }

    function test_RevertWhen_SuspendedDepartmentAnswers() public {
        bytes32 claimId = _file();
        vm.prank(governor);
        ledger.suspendMember(issuer, bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsNotDepartment.selector, issuer));
        vm.prank(issuer);
        claims.refuseClaim(claimId, 1, bytes32(0));
    }

    function test_RevertWhen_AssetIsNotTheClaimedRecord() public {
        bytes32 claimId = _file();
        // Alice's record from before the claim is fine as a record, but an asset in another safe is not.
        vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsAssetMismatch.selector, claimId, ACME_ASSET));
        vm.prank(issuer);
        claims.fulfilClaim(claimId, ACME_ASSET);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsAssetMismatch.selector, claimId, ISSUED));
        vm.prank(issuer);
        claims.fulfilClaim(claimId, ISSUED); // not anchored
    }

    function test_RevertWhen_OneAssetAnswersTwoClaims() public {
        bytes32 first = _file();
        bytes32 second = _file();
        _issue(ISSUED, alice);
        vm.startPrank(issuer);
        claims.fulfilClaim(first, ISSUED);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsAssetAlreadyLinked.selector, ISSUED, first));
        claims.fulfilClaim(second, ISSUED);
        vm.stopPrank();
    }

    function test_RevertWhen_RefusedWithoutCode() public {
        bytes32 claimId = _file();
        vm.expectRevert(IDataSafeClaims.ClaimsZeroReasonCode.selector);
        vm.prank(issuer);
        claims.refuseClaim(claimId, 0, bytes32(0));
    }

    function test_RevertWhen_UnknownClaim() public {
        vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsNotFound.selector, bytes32(uint256(1))));
        vm.prank(issuer);
        claims.fulfilClaim(bytes32(uint256(1)), ISSUED);
    }

    function test_RevertWhen_ClaimantIsNotASubject() public {
        (ClaimRequest memory request, bytes memory sig) = _claimRequest(BANK_PK, issuer, SCHEMA);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsNotSubject.selector, bank));
        vm.prank(custodian);
        claims.fileClaim(request, sig);
        (request, sig) = _claimRequest(MALLORY_PK, issuer, SCHEMA); // not a member at all
        vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsNotSubject.selector, mallory));
        vm.prank(custodian);
        claims.fileClaim(request, sig);
    }

    function test_RevertWhen_ClaimantSuspended() public {
        vm.prank(regulator);
        ledger.suspendMember(alice, keccak256("fraud inquiry"));
        (ClaimRequest memory request, bytes memory sig) = _claimRequest(ALICE_PK, issuer, SCHEMA);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsNotSubject.selector, alice));
        vm.prank(custodian);
        claims.fileClaim(request, sig);
    }

    function test_RevertWhen_DepartmentDoesNotIssueTheSchema() public {
        (ClaimRequest memory request, bytes memory sig) = _claimRequest(ALICE_PK, otherDept, SCHEMA);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsSchemaNotIssued.selector, SCHEMA, otherDept));
        vm.prank(custodian);
        claims.fileClaim(request, sig);
        (request, sig) = _claimRequest(ALICE_PK, bank, SCHEMA);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsNotDepartment.selector, bank));
        vm.prank(custodian);
        claims.fileClaim(request, sig);
    }

    function test_RevertWhen_SignedBySomeoneElse() public {
        (ClaimRequest memory request,) = _claimRequest(ALICE_PK, issuer, SCHEMA);
        bytes memory forged = _sig(MALLORY_PK, claims.hashClaimRequest(request));
        vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsSignerMismatch.selector, alice, mallory));
        vm.prank(custodian);
        claims.fileClaim(request, forged);
    }

    function test_RevertWhen_Replayed() public {
        (ClaimRequest memory request, bytes memory sig) = _claimRequest(ALICE_PK, issuer, SCHEMA);
        vm.startPrank(custodian);
        claims.fileClaim(request, sig);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsInvalidNonce.selector, alice, 1, 0));
        claims.fileClaim(request, sig);
        vm.stopPrank();
    }

    function test_RevertWhen_Expired() public {
        (ClaimRequest memory request, bytes memory sig) = _claimRequest(ALICE_PK, issuer, SCHEMA);
        vm.warp(DEADLINE + 1);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsExpired.selector, DEADLINE));
        vm.prank(custodian);
        claims.fileClaim(request, sig);
    }

    function test_RevertWhen_RelayerNotMember() public {
        (ClaimRequest memory request, bytes memory sig) = _claimRequest(ALICE_PK, issuer, SCHEMA);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeClaims.ClaimsRelayerNotMember.selector, mallory));
        vm.prank(mallory);
        claims.fileClaim(request, sig);
    }

    function test_RevertWhen_ZeroReference() public {
        ClaimRequest memory request = ClaimRequest({
            subject: alice, department: issuer, schemaId: SCHEMA, referenceHash: bytes32(0), nonce: 0, deadline: DEADLINE
        });
        bytes memory sig = _sig(ALICE_PK, claims.hashClaimRequest(request));
        vm.expectRevert(IDataSafeClaims.ClaimsZeroReference.selector);
        vm.prank(custodian);
        claims.fileClaim(request, sig);
    }
}
