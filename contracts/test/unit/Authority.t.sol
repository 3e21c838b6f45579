// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "../utils/LedgerFixture.sol";
import {IMembership, Member, MemberKind} from "../../src/interfaces/IMembership.sol";
import {ISchemas} from "../../src/interfaces/ISchemas.sol";
import {IAssets} from "../../src/interfaces/IAssets.sol";
import {IConsents, GrantTerms, GrantStatus, SignedGrant, REASON_OK} from "../../src/interfaces/IConsents.sol";

/// @notice The authority rules of issue 12: agents stop with their enterprise, a suspended subject can still withdraw
///         consent but never give it, the governor handover keeps roles consistent, a suspension is lifted only by
///         the authority that imposed it, and schemas are owned.
contract AuthorityTest is LedgerFixture {
    address internal dept2 = address(0xD2);
    bytes32 internal constant SCHEMA2 = keccak256("vehicle-registration/v1");

    function setUp() public override {
        super.setUp();
        vm.prank(governor);
        ledger.admitMember(dept2, ISSUER, MemberKind.DEPARTMENT, bytes32(0));
    }

    function _acmeTerms() internal view returns (GrantTerms memory terms) {
        terms = _terms(bank, 3);
        terms.assetId = ACME_ASSET;
    }

    function _suspend(address who, address by) internal {
        vm.prank(by);
        ledger.suspendMember(who, keccak256("why"));
    }

    // ---- 8. suspending an enterprise stops its agents ------------------------------------------------------------

    function test_suspendedEnterprise_AgentIsNotLive() public {
        assertTrue(ledger.isAgent(acme, agent), "live before");
        _suspend(acme, regulator);
        assertFalse(ledger.isAgent(acme, agent), "not live while the enterprise is suspended");
        vm.prank(regulator);
        ledger.reinstateMember(acme, 0);
        assertTrue(ledger.isAgent(acme, agent), "live again after reinstatement");
    }

    function test_RevertWhen_agentGrants_EnterpriseSuspended() public {
        _suspend(acme, regulator);
        vm.prank(agent);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentNotAuthorized.selector, ACME_ASSET, agent));
        ledger.grant(_acmeTerms(), 1);
    }

    function test_RevertWhen_agentGrantsBySig_EnterpriseSuspended() public {
        _suspend(acme, regulator);
        SignedGrant memory signed = _signedGrant(AGENT_PK, _acmeTerms(), 1, T0 + 1 hours);
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentNotAuthorized.selector, ACME_ASSET, agent));
        ledger.grantBySig(signed);
    }

    function test_RevertWhen_agentChangesGrant_EnterpriseSuspended() public {
        bytes32 id = _grantAs(agent, _acmeTerms(), 1);
        _suspend(acme, governor);
        vm.startPrank(agent);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentNotGrantor.selector, id, agent));
        ledger.pause(id);
        vm.expectRevert(abi.encodeWithSelector(IConsents.ConsentNotGrantor.selector, id, agent));
        ledger.revoke(id);
        vm.expectRevert(abi.encodeWithSelector(IAssets.AssetNotOwner.selector, ACME_ASSET, agent));
        ledger.disputeAsset(ACME_ASSET, 0);
        vm.stopPrank();
    }

    // ---- 9. a suspended subject withdraws consent, never gives it -----------------------------------------------

    function test_suspendedOwner_RevokesAndPauses() public {
        bytes32 a = _grantAs(alice, _terms(bank, 3), 1);
        bytes32 b = _grantAs(alice, _terms(insurer, 3), 2);
        _suspend(alice, governor);
        vm.startPrank(alice);
        ledger.pause(a);
        ledger.revoke(b);
        vm.stopPrank();
        assertEq(uint256(ledger.getGrant(a).status), uint256(GrantStatus.PAUSED), "paused");
        assertEq(uint256(ledger.getGrant(b).status), uint256(GrantStatus.REVOKED), "revoked");
        (bool allowed,) = ledger.check(a, bank, 1);
        assertFalse(allowed, "the bank stops");
    }

    function test_suspendedOwner_RevokesBySig() public {
        bytes32 id = _grantAs(alice, _terms(bank, 3), 1);
        _suspend(alice, regulator);
        uint64 deadline = T0 + 1 hours;
        bytes memory sig = _sig(ALICE_PK, ledger.hashRevoke(id, ledger.nonces(alice), deadline));
        vm.expectEmit(address(ledger));
        emit IConsents.ConsentRevoked(id, alice, T0);
        vm.prank(custodian);
        ledger.revokeBySig(id, alice, deadline, sig);
    }

    function test_suspendedOwner_PausesBySig() public {
        bytes32 id = _grantAs(alice, _terms(bank, 3), 1);
        _suspend(alice, regulator);
        uint64 deadline = T0 + 1 hours;
        bytes memory sig = _sig(ALICE_PK, ledger.hashPause(id, ledger.nonces(alice), deadline));
        vm.prank(custodian);
        ledger.pauseBySig(id, alice, deadline, sig);
        assertEq(uint256(ledger.getGrant(id).status), uint256(GrantStatus.PAUSED), "paused");
    }

    function test_RevertWhen_suspendedOwner_Grants() public {
        _suspend(alice, regulator);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotActive.selector, alice));
        ledger.grant(_terms(bank, 3), 1);
        SignedGrant memory signed = _signedGrant(ALICE_PK, _terms(bank, 3), 2, T0 + 1 hours);
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotActive.selector, alice));
        ledger.grantBySig(signed);
    }

    function test_RevertWhen_suspendedOwner_Resumes() public {
        bytes32 id = _grantAs(alice, _terms(bank, 3), 1);
        vm.prank(alice);
        ledger.pause(id);
        _suspend(alice, regulator);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotActive.selector, alice));
        ledger.resume(id);
        uint64 deadline = T0 + 1 hours;
        bytes memory sig = _sig(ALICE_PK, ledger.hashResume(id, ledger.nonces(alice), deadline));
        vm.prank(custodian);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotActive.selector, alice));
        ledger.resumeBySig(id, alice, deadline, sig);
    }

    /// @dev Suspending the owner stops her acting, not the consents she gave: until she revokes or pauses them the
    ///      grantee may still read (docs/contracts.md, "Authority rules").
    function test_suspendedOwner_ExistingGrantStillChecks() public {
        bytes32 id = _grantAs(alice, _terms(bank, 3), 1);
        _suspend(alice, regulator);
        (bool allowed, uint8 reason) = ledger.check(id, bank, 1);
        assertTrue(allowed, "consent stands");
        assertEq(reason, REASON_OK, "ok");
    }

    // ---- 10. governor handover ---------------------------------------------------------------------------------

    function test_RevertWhen_transferGovernance_ToSelf() public {
        vm.prank(governor);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipInvalidGovernor.selector, governor));
        ledger.transferGovernance(governor);
        assertTrue(ledger.hasRoles(governor, GOVERNOR), "keeps GOVERNOR");
    }

    function test_RevertWhen_transferGovernance_ToSubject() public {
        vm.prank(governor);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipInvalidGovernor.selector, alice));
        ledger.transferGovernance(alice);
    }

    function test_RevertWhen_acceptGovernance_BecameSubject() public {
        address newcomer = address(0x4E3);
        vm.startPrank(governor);
        ledger.transferGovernance(newcomer);
        // Admitted as a subject while the handover is pending.
        ledger.admitSubject(newcomer, MemberKind.INDIVIDUAL, 0);
        vm.stopPrank();
        vm.prank(newcomer);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipInvalidGovernor.selector, newcomer));
        ledger.acceptGovernance();
        assertEq(ledger.governor(), governor, "unchanged");
    }

    function test_transferGovernance_CancelWithZero() public {
        vm.startPrank(governor);
        ledger.transferGovernance(regulator);
        ledger.transferGovernance(address(0));
        vm.stopPrank();
        assertEq(ledger.pendingGovernor(), address(0), "cancelled");
    }

    function testFuzz_governance_ExactlyOneGovernorBit(uint256 seed) public {
        address[4] memory candidates = [address(0x4E3), regulator, bank, issuer];
        address next = candidates[bound(seed, 0, 3)];
        vm.prank(governor);
        ledger.transferGovernance(next);
        vm.prank(next);
        ledger.acceptGovernance();
        assertEq(ledger.governor(), next, "handed over");
        assertTrue(ledger.hasRoles(next, GOVERNOR), "new holds GOVERNOR");
        assertFalse(ledger.hasRoles(governor, GOVERNOR), "old lost GOVERNOR");
        Member memory m = ledger.getMember(next);
        assertEq(m.roles & SUBJECT, 0, "no subject governor");
    }

    // ---- 11. who lifts a suspension -----------------------------------------------------------------------------

    function test_governorSuspension_OnlyGovernorLifts() public {
        vm.expectEmit(address(ledger));
        emit IMembership.MemberSuspended(bank, governor, GOVERNOR, keccak256("why"), T0);
        _suspend(bank, governor);
        assertEq(ledger.suspensionAuthority(bank), GOVERNOR, "recorded");
        vm.prank(regulator);
        vm.expectRevert(
            abi.encodeWithSelector(IMembership.MembershipSuspensionAuthority.selector, bank, GOVERNOR, regulator)
        );
        ledger.reinstateMember(bank, 0);
        vm.expectEmit(address(ledger));
        emit IMembership.MemberReinstated(bank, governor, GOVERNOR, keccak256("ok"), T0);
        vm.prank(governor);
        ledger.reinstateMember(bank, keccak256("ok"));
        assertTrue(ledger.hasRoles(bank, CONSUMER), "reinstated");
    }

    function test_RevertWhen_governorLiftsRegulatorSuspension() public {
        _suspend(bank, regulator);
        vm.prank(governor);
        vm.expectRevert(
            abi.encodeWithSelector(IMembership.MembershipSuspensionAuthority.selector, bank, REGULATOR, governor)
        );
        ledger.reinstateMember(bank, 0);
    }

    function test_regulatorSuspension_AnyActiveRegulatorLifts() public {
        address regulator2 = address(0x4E7);
        vm.prank(governor);
        ledger.admitMember(regulator2, REGULATOR, MemberKind.REGULATOR, 0);
        _suspend(bank, regulator);
        vm.prank(regulator2);
        ledger.reinstateMember(bank, 0);
        assertTrue(ledger.hasRoles(bank, CONSUMER), "reinstated");
    }

    function test_RevertWhen_suspendedRegulatorLifts() public {
        _suspend(bank, regulator);
        _suspend(regulator, governor);
        vm.prank(regulator);
        vm.expectRevert(
            abi.encodeWithSelector(IMembership.MembershipSuspensionAuthority.selector, bank, REGULATOR, regulator)
        );
        ledger.reinstateMember(bank, 0);
    }

    function test_governorAlsoRegulator_ActsAsGovernor() public {
        vm.prank(governor);
        ledger.setRoles(governor, GOVERNOR | REGULATOR);
        _suspend(bank, governor);
        assertEq(ledger.suspensionAuthority(bank), GOVERNOR, "governor authority");
    }

    function test_governorSuspension_SurvivesHandover() public {
        _suspend(bank, governor);
        vm.prank(governor);
        ledger.transferGovernance(regulator);
        vm.prank(regulator);
        ledger.acceptGovernance();
        // The authority is the office, not the person: the old governor no longer lifts it, the new one does.
        vm.prank(governor);
        vm.expectRevert(
            abi.encodeWithSelector(IMembership.MembershipSuspensionAuthority.selector, bank, GOVERNOR, governor)
        );
        ledger.reinstateMember(bank, 0);
        vm.prank(regulator);
        ledger.reinstateMember(bank, 0);
    }

    function testFuzz_suspension_LiftedOnlyByItsAuthority(bool byGovernor, bool liftByGovernor) public {
        _suspend(bank, byGovernor ? governor : regulator);
        address lifter = liftByGovernor ? governor : regulator;
        vm.prank(lifter);
        if (byGovernor != liftByGovernor) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IMembership.MembershipSuspensionAuthority.selector, bank, byGovernor ? GOVERNOR : REGULATOR, lifter
                )
            );
        }
        ledger.reinstateMember(bank, 0);
        assertTrue(ledger.hasRoles(bank, CONSUMER) == (byGovernor == liftByGovernor), "active iff same authority");
    }

    // ---- 12. schemas are owned ----------------------------------------------------------------------------------

    function test_RevertWhen_anchorAsset_SchemaOfAnotherIssuer() public {
        vm.prank(dept2);
        vm.expectRevert(abi.encodeWithSelector(ISchemas.SchemaIssuerNotAuthorized.selector, SCHEMA, dept2));
        ledger.anchorAsset(keccak256("x"), alice, SCHEMA, keccak256("r"), keccak256("c"));
    }

    function test_setSchemaIssuer_LetsAnotherIssuerAnchor() public {
        assertFalse(ledger.isSchemaIssuer(SCHEMA, dept2), "not yet");
        assertTrue(ledger.isSchemaIssuer(SCHEMA, issuer), "registrant");
        assertFalse(ledger.isSchemaIssuer(keccak256("nope"), address(0)), "unknown schema");
        vm.expectEmit(address(ledger));
        emit ISchemas.SchemaIssuerSet(SCHEMA, dept2, issuer, true);
        vm.prank(issuer);
        ledger.setSchemaIssuer(SCHEMA, dept2, true);
        assertTrue(ledger.isSchemaIssuer(SCHEMA, dept2), "authorised");
        vm.prank(dept2);
        ledger.anchorAsset(keccak256("x"), alice, SCHEMA, keccak256("r"), keccak256("c"));
        assertEq(ledger.getAsset(keccak256("x")).issuer, dept2, "anchored by dept2");

        vm.expectEmit(address(ledger));
        emit ISchemas.SchemaIssuerSet(SCHEMA, dept2, issuer, false);
        vm.prank(issuer);
        ledger.setSchemaIssuer(SCHEMA, dept2, false);
        assertFalse(ledger.isSchemaIssuer(SCHEMA, dept2), "withdrawn");
        vm.startPrank(dept2);
        vm.expectRevert(abi.encodeWithSelector(ISchemas.SchemaIssuerNotAuthorized.selector, SCHEMA, dept2));
        ledger.anchorAsset(keccak256("y"), alice, SCHEMA, keccak256("r"), keccak256("c"));
        // Its own asset stays its own: it may still publish a correction.
        ledger.supersedeAsset(keccak256("x"), keccak256("x2"), keccak256("r2"), keccak256("c2"));
        vm.stopPrank();
    }

    function test_setSchemaIssuer_Idempotent() public {
        vm.startPrank(issuer);
        ledger.setSchemaIssuer(SCHEMA, dept2, true);
        vm.recordLogs();
        ledger.setSchemaIssuer(SCHEMA, dept2, true);
        ledger.setSchemaIssuer(SCHEMA, bank, false);
        vm.stopPrank();
        assertEq(vm.getRecordedLogs().length, 0, "no event without a change");
    }

    function test_RevertWhen_setSchemaIssuer_NotOwner() public {
        vm.prank(issuer);
        ledger.registerSchema(SCHEMA2, 4, keccak256("f"));
        vm.startPrank(dept2);
        vm.expectRevert(abi.encodeWithSelector(ISchemas.SchemaNotOwner.selector, SCHEMA2, dept2));
        ledger.setSchemaIssuer(SCHEMA2, dept2, true);
        vm.expectRevert(abi.encodeWithSelector(ISchemas.SchemaNotOwner.selector, SCHEMA2, dept2));
        ledger.setSchemaIssuer(SCHEMA2, issuer, false);
        vm.expectRevert(abi.encodeWithSelector(ISchemas.SchemaNotFound.selector, keccak256("nope")));
        ledger.setSchemaIssuer(keccak256("nope"), dept2, true);
        vm.stopPrank();
    }

    function test_RevertWhen_setSchemaIssuer_OwnerSuspended() public {
        _suspend(issuer, regulator);
        vm.prank(issuer);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipUnauthorized.selector, issuer, ISSUER));
        ledger.setSchemaIssuer(SCHEMA, dept2, true);
    }

    function testFuzz_anchorAsset_OnlySchemaIssuers(uint256 who, bool authorise) public {
        address[4] memory callers = [issuer, dept2, bank, regulator];
        address caller = callers[bound(who, 0, 3)];
        if (authorise) {
            vm.prank(issuer);
            ledger.setSchemaIssuer(SCHEMA, caller, true);
        }
        // Only the registrant, or an issuer it authorised, and only while an active ISSUER.
        bool mayAnchor = ledger.hasRoles(caller, ISSUER) && (caller == issuer || authorise);
        vm.prank(caller);
        if (!mayAnchor) vm.expectRevert();
        ledger.anchorAsset(keccak256("fz"), alice, SCHEMA, keccak256("r"), keccak256("c"));
        assertEq(ledger.getAsset(keccak256("fz")).issuer, mayAnchor ? caller : address(0), "anchored iff allowed");
    }
}
