// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "../utils/LedgerFixture.sol";
import "../../src/interfaces/IConsents.sol";
import {IAssets, AssetStatus} from "../../src/interfaces/IAssets.sol";
import {IMembership} from "../../src/interfaces/IMembership.sol";

contract ConsentsTest is LedgerFixture {
    uint64 internal constant MASK = 0x7;

    // ---------------------------------------------------------------- grant

    function test_grant_StoresTermsAndEmits() public {
        GrantTerms memory terms = _terms(bank, MASK);
        bytes32 expectedId = ledger.grantIdOf(alice, 7);
        vm.expectEmit(address(ledger));
        emit IConsents.ConsentGranted(expectedId, ASSET, bank, alice, alice, terms, 7, T0);
        bytes32 grantId = _grantAs(alice, terms, 7);
        assertEq(grantId, keccak256(abi.encode(alice, uint256(7))), "grant id");
        Grant memory g = ledger.getGrant(grantId);
        assertEq(g.assetId, ASSET, "asset");
        assertEq(g.grantee, bank, "grantee");
        assertEq(g.fieldsMask, MASK, "mask");
        assertEq(g.expiry, T0 + 30 days, "expiry");
        assertEq(g.maxUses, 3, "maxUses");
        assertEq(uint256(g.status), uint256(GrantStatus.ACTIVE), "status");
    }

    function test_grant_ByLiveAgent() public {
        GrantTerms memory terms = _terms(bank, MASK);
        terms.assetId = ACME_ASSET;
        bytes32 grantId = _grantAs(agent, terms, 1);
        assertEq(ledger.getGrant(grantId).grantee, bank, "agent granted");
    }

    function test_RevertWhen_grant_NonceReused() public {
        bytes32 grantId = _grantAs(alice, _terms(bank, MASK), 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentGrantExists.selector, grantId));
        ledger.grant(_terms(insurer, MASK), 1);
    }

    function test_RevertWhen_grant_NotOwner() public {
        vm.prank(mallory);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentNotAuthorized.selector, ASSET, mallory));
        ledger.grant(_terms(bank, MASK), 1);
    }

    function test_RevertWhen_grant_AgentExpired() public {
        GrantTerms memory terms = _terms(bank, MASK);
        terms.assetId = ACME_ASSET;
        terms.expiry = T0 + 500 days;
        vm.warp(T0 + 366 days);
        vm.prank(agent);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentNotAuthorized.selector, ACME_ASSET, agent));
        ledger.grant(terms, 1);
    }

    function test_RevertWhen_grant_OwnerSuspended() public {
        vm.prank(regulator);
        ledger.suspendMember(alice, bytes32(0));
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotActive.selector, alice));
        ledger.grant(_terms(bank, MASK), 1);
    }

    function test_RevertWhen_grant_AssetUnknown() public {
        GrantTerms memory terms = _terms(bank, MASK);
        terms.assetId = keccak256("nope");
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IAssets.AssetNotFound.selector, terms.assetId));
        ledger.grant(terms, 1);
    }

    function test_RevertWhen_grant_AssetNotActive() public {
        vm.prank(alice);
        ledger.disputeAsset(ASSET, bytes32(0));
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentAssetNotActive.selector, ASSET, AssetStatus.DISPUTED));
        ledger.grant(_terms(bank, MASK), 1);
    }

    function test_RevertWhen_grant_MaskOutsideSchema() public {
        uint64 mask = uint64(1) << FIELDS;
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentInvalidFieldsMask.selector, mask, FIELDS));
        ledger.grant(_terms(bank, mask), 1);
    }

    function test_RevertWhen_grant_MaskZero() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentInvalidFieldsMask.selector, uint64(0), FIELDS));
        ledger.grant(_terms(bank, 0), 1);
    }

    function test_RevertWhen_grant_WindowInvalid() public {
        GrantTerms memory terms = _terms(bank, MASK);
        terms.notBefore = terms.expiry;
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentInvalidWindow.selector, terms.notBefore, terms.expiry));
        ledger.grant(terms, 1);
    }

    function test_RevertWhen_grant_ExpiryInPast() public {
        GrantTerms memory terms = _terms(bank, MASK);
        terms.expiry = T0;
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentInvalidWindow.selector, uint64(0), T0));
        ledger.grant(terms, 1);
    }

    function test_RevertWhen_grant_GranteeNotConsumer() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentInvalidGrantee.selector, issuer));
        ledger.grant(_terms(issuer, MASK), 1);
    }

    function test_grantBatch_CreatesAll() public {
        GrantTerms[] memory terms = new GrantTerms[](2);
        terms[0] = _terms(bank, MASK);
        terms[1] = _terms(insurer, 1);
        uint256[] memory nonces = new uint256[](2);
        nonces[0] = 10;
        nonces[1] = 11;
        vm.prank(alice);
        bytes32[] memory ids = ledger.grantBatch(terms, nonces);
        assertEq(ids[1], ledger.grantIdOf(alice, 11), "second id");
        assertEq(ledger.getGrant(ids[1]).grantee, insurer, "second grantee");
    }

    function test_RevertWhen_grantBatch_LengthMismatch() public {
        GrantTerms[] memory terms = new GrantTerms[](2);
        uint256[] memory nonces = new uint256[](1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentLengthMismatch.selector, 2, 1));
        ledger.grantBatch(terms, nonces);
    }

    // ---------------------------------------------------------------- grantBySig

    function test_grantBySig_RelayedByCustodian() public {
        SignedGrant memory signed = _signedGrant(ALICE_PK, _terms(bank, MASK), 5, T0 + 1 hours);
        vm.prank(custodian);
        bytes32 grantId = ledger.grantBySig(signed);
        assertEq(grantId, ledger.grantIdOf(alice, 5), "id");
        assertEq(ledger.getGrant(grantId).grantee, bank, "grantee");
    }

    function test_RevertWhen_grantBySig_Replayed() public {
        SignedGrant memory signed = _signedGrant(ALICE_PK, _terms(bank, MASK), 5, T0 + 1 hours);
        vm.prank(custodian);
        bytes32 grantId = ledger.grantBySig(signed);
        // Revoked or not, the id stays taken.
        vm.prank(alice);
        ledger.revoke(grantId);
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentGrantExists.selector, grantId));
        ledger.grantBySig(signed);
    }

    function test_RevertWhen_grantBySig_Expired() public {
        SignedGrant memory signed = _signedGrant(ALICE_PK, _terms(bank, MASK), 5, T0 - 1);
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IConsents.SignatureExpired.selector, T0 - 1));
        ledger.grantBySig(signed);
    }

    function test_RevertWhen_grantBySig_WrongSigner() public {
        SignedGrant memory signed = _signedGrant(MALLORY_PK, _terms(bank, MASK), 5, T0 + 1 hours);
        signed.grantor = alice;
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IConsents.SignatureSignerMismatch.selector, alice, mallory));
        ledger.grantBySig(signed);
    }

    function test_RevertWhen_grantBySig_TermsTampered() public {
        SignedGrant memory signed = _signedGrant(ALICE_PK, _terms(bank, MASK), 5, T0 + 1 hours);
        signed.terms.fieldsMask = 0xFFF;
        vm.prank(custodian);
        vm.expectRevert();
        ledger.grantBySig(signed);
        assertEq(uint256(ledger.getGrant(ledger.grantIdOf(alice, 5)).status), 0, "nothing stored");
    }

    function test_RevertWhen_grantBySig_MalformedSignature() public {
        SignedGrant memory signed = _signedGrant(ALICE_PK, _terms(bank, MASK), 5, T0 + 1 hours);
        signed.signature = hex"1234";
        vm.prank(custodian);
        vm.expectRevert(IConsents.SignatureInvalid.selector);
        ledger.grantBySig(signed);
    }

    function test_RevertWhen_grantBySig_HighS() public {
        SignedGrant memory signed = _signedGrant(ALICE_PK, _terms(bank, MASK), 5, T0 + 1 hours);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(ALICE_PK, ledger.hashGrant(signed.terms, 5, signed.deadline));
        // The malleable twin (n - s, flipped v) recovers to the same key and must be refused.
        uint256 n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141;
        signed.signature = abi.encodePacked(r, bytes32(n - uint256(s)), v == 27 ? uint8(28) : uint8(27));
        vm.prank(custodian);
        vm.expectRevert(IConsents.SignatureInvalid.selector);
        ledger.grantBySig(signed);
    }

    function test_RevertWhen_grantBySig_RelayerNotMember() public {
        SignedGrant memory signed = _signedGrant(ALICE_PK, _terms(bank, MASK), 5, T0 + 1 hours);
        vm.prank(address(0xdead));
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotActive.selector, address(0xdead)));
        ledger.grantBySig(signed);
    }

    function test_grantBySigBatch_CreatesAll() public {
        SignedGrant[] memory signed = new SignedGrant[](2);
        signed[0] = _signedGrant(ALICE_PK, _terms(bank, MASK), 1, T0 + 1 hours);
        signed[1] = _signedGrant(ALICE_PK, _terms(insurer, MASK), 2, T0 + 1 hours);
        vm.prank(custodian);
        bytes32[] memory ids = ledger.grantBySigBatch(signed);
        assertEq(ledger.getGrant(ids[1]).grantee, insurer, "second");
    }

    // ---------------------------------------------------------------- revoke / pause / resume

    function test_revoke_ByOwner() public {
        bytes32 grantId = _grantAs(alice, _terms(bank, MASK), 1);
        vm.expectEmit(address(ledger));
        emit IConsents.ConsentRevoked(grantId, alice, T0);
        vm.prank(alice);
        ledger.revoke(grantId);
        (bool allowed, uint8 reason) = ledger.check(grantId, bank, MASK);
        assertFalse(allowed, "revoked passes");
        assertEq(reason, REASON_REVOKED, "reason");
    }

    function test_revoke_ByAgentOfEnterprise() public {
        GrantTerms memory terms = _terms(bank, MASK);
        terms.assetId = ACME_ASSET;
        bytes32 grantId = _grantAs(acme, terms, 1);
        vm.prank(agent);
        ledger.revoke(grantId);
        assertEq(uint256(ledger.getGrant(grantId).status), uint256(GrantStatus.REVOKED), "status");
    }

    function test_RevertWhen_revoke_NotGrantor() public {
        bytes32 grantId = _grantAs(alice, _terms(bank, MASK), 1);
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentNotGrantor.selector, grantId, bank));
        ledger.revoke(grantId);
    }

    function test_RevertWhen_revoke_NotFound() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentNotFound.selector, bytes32(uint256(1))));
        ledger.revoke(bytes32(uint256(1)));
    }

    function test_RevertWhen_revoke_AlreadyRevoked() public {
        bytes32 grantId = _grantAs(alice, _terms(bank, MASK), 1);
        vm.startPrank(alice);
        ledger.revoke(grantId);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentInvalidStatus.selector, grantId, GrantStatus.REVOKED));
        ledger.revoke(grantId);
        vm.stopPrank();
    }

    function test_revokeBySig_ConsumesNonce() public {
        bytes32 grantId = _grantAs(alice, _terms(bank, MASK), 1);
        bytes memory sig = _sig(ALICE_PK, ledger.hashRevoke(grantId, 0, T0 + 1 hours));
        vm.prank(custodian);
        ledger.revokeBySig(grantId, alice, T0 + 1 hours, sig);
        assertEq(ledger.nonces(alice), 1, "nonce consumed");
        assertEq(uint256(ledger.getGrant(grantId).status), uint256(GrantStatus.REVOKED), "revoked");
    }

    function test_RevertWhen_revokeBySig_Replayed() public {
        bytes32 grantId = _grantAs(alice, _terms(bank, MASK), 1);
        bytes memory sig = _sig(ALICE_PK, ledger.hashPause(grantId, 0, T0 + 1 hours));
        vm.prank(custodian);
        ledger.pauseBySig(grantId, alice, T0 + 1 hours, sig);
        vm.prank(alice);
        ledger.resume(grantId);
        // The same pause signature now hashes with nonce 1 and recovers to someone else.
        vm.prank(custodian);
        vm.expectRevert();
        ledger.pauseBySig(grantId, alice, T0 + 1 hours, sig);
        assertEq(uint256(ledger.getGrant(grantId).status), uint256(GrantStatus.ACTIVE), "still active");
    }

    function test_RevertWhen_revokeBySig_Expired() public {
        bytes32 grantId = _grantAs(alice, _terms(bank, MASK), 1);
        bytes memory sig = _sig(ALICE_PK, ledger.hashRevoke(grantId, 0, T0 - 1));
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IConsents.SignatureExpired.selector, T0 - 1));
        ledger.revokeBySig(grantId, alice, T0 - 1, sig);
    }

    function test_RevertWhen_revokeBySig_SignerNotGrantor() public {
        bytes32 grantId = _grantAs(alice, _terms(bank, MASK), 1);
        bytes memory sig = _sig(MALLORY_PK, ledger.hashRevoke(grantId, 0, T0 + 1 hours));
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentNotGrantor.selector, grantId, mallory));
        ledger.revokeBySig(grantId, mallory, T0 + 1 hours, sig);
    }

    function test_pause_resume_RoundTrip() public {
        bytes32 grantId = _grantAs(alice, _terms(bank, MASK), 1);
        vm.prank(alice);
        ledger.pause(grantId);
        (, uint8 reason) = ledger.check(grantId, bank, MASK);
        assertEq(reason, REASON_PAUSED, "paused");
        vm.expectEmit(address(ledger));
        emit IConsents.ConsentResumed(grantId, alice, T0);
        vm.prank(alice);
        ledger.resume(grantId);
        (bool allowed,) = ledger.check(grantId, bank, MASK);
        assertTrue(allowed, "resumed");
    }

    function test_RevertWhen_pause_NotActive() public {
        bytes32 grantId = _grantAs(alice, _terms(bank, MASK), 1);
        vm.startPrank(alice);
        ledger.pause(grantId);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentInvalidStatus.selector, grantId, GrantStatus.PAUSED));
        ledger.pause(grantId);
        vm.stopPrank();
    }

    function test_RevertWhen_resume_NotPaused() public {
        bytes32 grantId = _grantAs(alice, _terms(bank, MASK), 1);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentInvalidStatus.selector, grantId, GrantStatus.ACTIVE));
        ledger.resume(grantId);
    }

    function test_pauseBySig_resumeBySig() public {
        bytes32 grantId = _grantAs(alice, _terms(bank, MASK), 1);
        vm.startPrank(custodian);
        ledger.pauseBySig(grantId, alice, T0 + 1 hours, _sig(ALICE_PK, ledger.hashPause(grantId, 0, T0 + 1 hours)));
        ledger.resumeBySig(grantId, alice, T0 + 1 hours, _sig(ALICE_PK, ledger.hashResume(grantId, 1, T0 + 1 hours)));
        vm.stopPrank();
        assertEq(ledger.nonces(alice), 2, "two nonces");
        assertEq(uint256(ledger.getGrant(grantId).status), uint256(GrantStatus.ACTIVE), "active");
    }

    // ---------------------------------------------------------------- check

    function test_check_ReasonCodes() public {
        bytes32 grantId = _grantAs(alice, _terms(bank, MASK), 1);
        (bool allowed, uint8 reason) = ledger.check(grantId, bank, MASK);
        assertTrue(allowed && reason == REASON_OK, "ok");
        (, reason) = ledger.check(bytes32(0), bank, MASK);
        assertEq(reason, REASON_NOT_FOUND, "not found");
        (, reason) = ledger.check(grantId, insurer, MASK);
        assertEq(reason, REASON_NOT_GRANTEE, "not grantee");
        (, reason) = ledger.check(grantId, bank, 0x8);
        assertEq(reason, REASON_FIELDS_NOT_GRANTED, "fields");
        (, reason) = ledger.check(grantId, bank, 0);
        assertEq(reason, REASON_FIELDS_NOT_GRANTED, "empty mask");
        vm.warp(T0 + 30 days);
        (, reason) = ledger.check(grantId, bank, MASK);
        assertEq(reason, REASON_EXPIRED, "expired");
    }

    function test_check_NotYetValid() public {
        GrantTerms memory terms = _terms(bank, MASK);
        terms.notBefore = T0 + 1 days;
        bytes32 grantId = _grantAs(alice, terms, 1);
        (, uint8 reason) = ledger.check(grantId, bank, MASK);
        assertEq(reason, REASON_NOT_YET_VALID, "not yet");
        vm.warp(T0 + 1 days);
        (bool allowed,) = ledger.check(grantId, bank, MASK);
        assertTrue(allowed, "valid from notBefore");
    }

    function test_check_GranteeSuspended() public {
        bytes32 grantId = _grantAs(alice, _terms(bank, MASK), 1);
        vm.prank(regulator);
        ledger.suspendMember(bank, bytes32(0));
        (, uint8 reason) = ledger.check(grantId, bank, MASK);
        assertEq(reason, REASON_GRANTEE_SUSPENDED, "suspended");
    }

    function test_check_AssetStatuses() public {
        bytes32 grantId = _grantAs(alice, _terms(bank, MASK), 1);
        vm.prank(alice);
        ledger.disputeAsset(ASSET, bytes32(0));
        (, uint8 reason) = ledger.check(grantId, bank, MASK);
        assertEq(reason, REASON_ASSET_DISPUTED, "disputed");
        vm.prank(issuer);
        ledger.supersedeAsset(ASSET, keccak256("asset-1-v2"), keccak256("root-2"), keccak256("ct-2"));
        (, reason) = ledger.check(grantId, bank, MASK);
        assertEq(reason, REASON_ASSET_SUPERSEDED, "superseded");
        bytes32 v2Grant = _grantAs(alice, _v2Terms(), 2);
        vm.prank(issuer);
        ledger.retireAsset(keccak256("asset-1-v2"), bytes32(0));
        (, reason) = ledger.check(v2Grant, bank, MASK);
        assertEq(reason, REASON_ASSET_RETIRED, "retired");
    }

    function _v2Terms() private view returns (GrantTerms memory terms) {
        terms = _terms(bank, MASK);
        terms.assetId = keccak256("asset-1-v2");
    }

    // ---------------------------------------------------------------- views

    function test_hashViews_MatchEip712() public view {
        bytes32 domain = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("DataSafeLedger"),
                keccak256("1"),
                block.chainid,
                address(ledger)
            )
        );
        assertEq(ledger.domainSeparator(), domain, "domain");
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("RevokeConsent(bytes32 grantId,uint256 nonce,uint64 deadline)"), bytes32(uint256(9)), 3, 4
            )
        );
        assertEq(
            ledger.hashRevoke(bytes32(uint256(9)), 3, 4),
            keccak256(abi.encodePacked("\x19\x01", domain, structHash)),
            "revoke digest"
        );
        GrantTerms memory t = _terms(bank, MASK);
        bytes32 grantStruct = keccak256(
            abi.encode(
                keccak256(
                    "GrantConsent(bytes32 assetId,address grantee,uint32 purpose,uint64 fieldsMask,uint64 notBefore,uint64 expiry,uint32 maxUses,uint32 retention,uint256 nonce,uint64 deadline)"
                ),
                t.assetId,
                t.grantee,
                t.purpose,
                t.fieldsMask,
                t.notBefore,
                t.expiry,
                t.maxUses,
                t.retention,
                uint256(5),
                uint64(6)
            )
        );
        assertEq(
            ledger.hashGrant(t, 5, 6), keccak256(abi.encodePacked("\x19\x01", domain, grantStruct)), "grant digest"
        );
    }

    function test_hashAccessRequest_MatchesEip712() public view {
        AccessRequest memory request = _request(bytes32(uint256(7)), 0x5, 300);
        bytes32 structHash = keccak256(
            abi.encode(
                keccak256("AccessRequest(bytes32 grantId,uint64 fieldsMask,uint256 nonce,uint64 deadline)"),
                request.grantId,
                request.fieldsMask,
                request.nonce,
                request.deadline
            )
        );
        assertEq(
            ledger.hashAccessRequest(request),
            keccak256(abi.encodePacked("\x19\x01", ledger.domainSeparator(), structHash)),
            "access digest"
        );
    }

    function test_domainSeparator_ChangesWithChainId() public {
        bytes32 before = ledger.domainSeparator();
        vm.chainId(999);
        assertTrue(ledger.domainSeparator() != before, "fresh separator after fork");
    }

    function test_getGrant_UnknownIsZero() public view {
        assertEq(ledger.getGrant(bytes32(uint256(42))).grantee, address(0), "zero");
    }
}
