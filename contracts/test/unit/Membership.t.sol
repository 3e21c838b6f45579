// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "../utils/LedgerFixture.sol";
import {IMembership, Member, MemberKind, MemberStatus} from "../../src/interfaces/IMembership.sol";
import {DataSafeLedger} from "../../src/DataSafeLedger.sol";

contract MembershipTest is LedgerFixture {
    address internal newcomer = address(0x4E3);

    function test_constructor_AdmitsGovernor() public view {
        Member memory m = ledger.getMember(governor);
        assertEq(m.roles, GOVERNOR | CUSTODIAN, "roles");
        assertEq(uint256(m.kind), uint256(MemberKind.OPERATOR), "kind");
        assertEq(m.number, 1, "first member");
        assertEq(ledger.governor(), governor, "governor");
        assertEq(keccak256(bytes(ledger.VERSION())), keccak256("1.0.0"), "version");
    }

    function test_RevertWhen_constructor_ZeroGovernor() public {
        vm.expectRevert(IMembership.MembershipZeroAddress.selector);
        new DataSafeLedger(address(0));
    }

    function test_admitMember_StoresAndEmits() public {
        vm.expectEmit(address(ledger));
        emit IMembership.MemberAdmitted(newcomer, governor, CONSUMER, MemberKind.NOTARY, keccak256("e"), T0);
        vm.prank(governor);
        ledger.admitMember(newcomer, CONSUMER, MemberKind.NOTARY, keccak256("e"));
        Member memory m = ledger.getMember(newcomer);
        assertEq(uint256(m.status), uint256(MemberStatus.ACTIVE), "active");
        // Admission binds no key: only the member's own signature does.
        assertEq(m.keyVersion, 0, "key version");
        assertEq(m.encKeyHash, bytes32(0), "no key");
        assertTrue(ledger.hasRoles(newcomer, CONSUMER), "has role");
        assertFalse(ledger.hasRoles(newcomer, CONSUMER | ISSUER), "not issuer");
    }

    function test_RevertWhen_admitMember_NotGovernor() public {
        vm.prank(issuer);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotGovernor.selector, issuer));
        ledger.admitMember(newcomer, CONSUMER, MemberKind.BANK, 0);
    }

    function test_RevertWhen_admitMember_AlreadyMember() public {
        vm.prank(governor);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipAlreadyMember.selector, bank));
        ledger.admitMember(bank, CONSUMER, MemberKind.BANK, 0);
    }

    function test_RevertWhen_admitMember_ZeroAddress() public {
        vm.prank(governor);
        vm.expectRevert(IMembership.MembershipZeroAddress.selector);
        ledger.admitMember(address(0), CONSUMER, MemberKind.BANK, 0);
    }

    function test_RevertWhen_admitMember_InvalidRoles() public {
        vm.startPrank(governor);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipInvalidRoles.selector, GOVERNOR, MemberKind.BANK));
        ledger.admitMember(newcomer, GOVERNOR, MemberKind.BANK, 0);
        vm.expectRevert(
            abi.encodeWithSelector(
                IMembership.MembershipInvalidRoles.selector, SUBJECT | CONSUMER, MemberKind.INDIVIDUAL
            )
        );
        ledger.admitMember(newcomer, SUBJECT | CONSUMER, MemberKind.INDIVIDUAL, 0);
        vm.expectRevert(
            abi.encodeWithSelector(IMembership.MembershipInvalidRoles.selector, REGISTRAR, MemberKind.DEPARTMENT)
        );
        ledger.admitMember(newcomer, REGISTRAR, MemberKind.DEPARTMENT, 0);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipInvalidRoles.selector, CONSUMER, MemberKind.NONE));
        ledger.admitMember(newcomer, CONSUMER, MemberKind.NONE, 0);
        vm.stopPrank();
    }

    function test_admitSubject_ByRegistrarIssuer() public {
        vm.prank(issuer);
        ledger.admitSubject(newcomer, MemberKind.INDIVIDUAL, keccak256("id"));
        assertTrue(ledger.hasRoles(newcomer, SUBJECT), "subject");
    }

    function test_RevertWhen_admitSubject_NotRegistrar() public {
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipUnauthorized.selector, bank, ISSUER | REGISTRAR));
        ledger.admitSubject(newcomer, MemberKind.INDIVIDUAL, 0);
    }

    function test_RevertWhen_admitSubject_WrongKind() public {
        vm.prank(governor);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipInvalidRoles.selector, SUBJECT, MemberKind.BANK));
        ledger.admitSubject(newcomer, MemberKind.BANK, 0);
    }

    function test_setRoles_Changes() public {
        vm.prank(governor);
        ledger.setRoles(bank, CONSUMER | CUSTODIAN);
        assertTrue(ledger.hasRoles(bank, CONSUMER | CUSTODIAN), "both");
    }

    function test_RevertWhen_setRoles_GovernorBit() public {
        vm.startPrank(governor);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipGovernorProtected.selector, governor));
        ledger.setRoles(governor, CUSTODIAN);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipInvalidRoles.selector, GOVERNOR, MemberKind.BANK));
        ledger.setRoles(bank, GOVERNOR);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotMember.selector, newcomer));
        ledger.setRoles(newcomer, CONSUMER);
        ledger.setRoles(governor, GOVERNOR | REGULATOR);
        vm.stopPrank();
        assertTrue(ledger.hasRoles(governor, GOVERNOR | REGULATOR), "governor roles");
    }

    function test_suspend_reinstate() public {
        vm.expectEmit(address(ledger));
        emit IMembership.MemberSuspended(bank, regulator, REGULATOR, keccak256("r"), T0);
        vm.prank(regulator);
        ledger.suspendMember(bank, keccak256("r"));
        assertFalse(ledger.hasRoles(bank, CONSUMER), "suspended");
        assertEq(ledger.suspensionAuthority(bank), REGULATOR, "authority recorded");
        vm.expectEmit(address(ledger));
        emit IMembership.MemberReinstated(bank, regulator, REGULATOR, keccak256("ok"), T0);
        vm.prank(regulator);
        ledger.reinstateMember(bank, keccak256("ok"));
        assertTrue(ledger.hasRoles(bank, CONSUMER), "reinstated");
        assertEq(ledger.suspensionAuthority(bank), 0, "authority cleared");
    }

    function test_RevertWhen_suspend_Errors() public {
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipUnauthorized.selector, bank, REGULATOR | GOVERNOR));
        ledger.suspendMember(insurer, 0);
        vm.startPrank(regulator);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipGovernorProtected.selector, governor));
        ledger.suspendMember(governor, 0);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotMember.selector, newcomer));
        ledger.suspendMember(newcomer, 0);
        ledger.suspendMember(bank, 0);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotActive.selector, bank));
        ledger.suspendMember(bank, 0);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotSuspended.selector, insurer));
        ledger.reinstateMember(insurer, 0);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotMember.selector, newcomer));
        ledger.reinstateMember(newcomer, 0);
        vm.stopPrank();
    }

    function test_agents_AddRemove() public {
        assertTrue(ledger.isAgent(acme, agent), "agent live");
        assertEq(ledger.agentExpiry(acme, agent), T0 + 365 days, "expiry");
        vm.expectEmit(address(ledger));
        emit IMembership.AgentRemoved(acme, agent);
        vm.prank(acme);
        ledger.removeAgent(agent);
        assertFalse(ledger.isAgent(acme, agent), "removed");
    }

    function test_RevertWhen_addAgent_Errors() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotEnterprise.selector, alice));
        ledger.addAgent(agent, T0 + 1);
        vm.startPrank(acme);
        vm.expectRevert(IMembership.MembershipZeroAddress.selector);
        ledger.addAgent(address(0), T0 + 1);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotMember.selector, newcomer));
        ledger.addAgent(newcomer, T0 + 1);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipInvalidAgentExpiry.selector, T0));
        ledger.addAgent(bank, T0);
        vm.stopPrank();
        vm.prank(regulator);
        ledger.suspendMember(bank, 0);
        vm.prank(acme);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotActive.selector, bank));
        ledger.addAgent(bank, T0 + 1);
    }

    function test_RevertWhen_removeAgent_NotAgent() public {
        vm.prank(acme);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotAgent.selector, acme, bank));
        ledger.removeAgent(bank);
    }

    function test_governance_TwoStepHandover() public {
        vm.expectEmit(address(ledger));
        emit IMembership.GovernanceTransferStarted(governor, newcomer);
        vm.prank(governor);
        ledger.transferGovernance(newcomer);
        assertEq(ledger.pendingGovernor(), newcomer, "pending");
        vm.prank(newcomer);
        ledger.acceptGovernance();
        assertEq(ledger.governor(), newcomer, "new governor");
        assertEq(ledger.pendingGovernor(), address(0), "cleared");
        assertTrue(ledger.hasRoles(newcomer, GOVERNOR | CUSTODIAN), "admitted");
        assertFalse(ledger.hasRoles(governor, GOVERNOR), "old lost GOVERNOR");
        assertTrue(ledger.hasRoles(governor, CUSTODIAN), "old keeps CUSTODIAN");
    }

    function test_governance_HandoverToMember() public {
        vm.prank(governor);
        ledger.transferGovernance(regulator);
        vm.prank(regulator);
        ledger.acceptGovernance();
        assertTrue(ledger.hasRoles(regulator, GOVERNOR | REGULATOR), "merged roles");
    }

    function test_RevertWhen_acceptGovernance_NotPending() public {
        vm.prank(governor);
        ledger.transferGovernance(newcomer);
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotPendingGovernor.selector, bank));
        ledger.acceptGovernance();
    }

    function test_RevertWhen_acceptGovernance_PendingSuspended() public {
        vm.prank(governor);
        ledger.transferGovernance(bank);
        vm.prank(regulator);
        ledger.suspendMember(bank, 0);
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotActive.selector, bank));
        ledger.acceptGovernance();
    }

    function test_RevertWhen_transferGovernance_NotGovernor() public {
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipNotGovernor.selector, bank));
        ledger.transferGovernance(bank);
    }
}
