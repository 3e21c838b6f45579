// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {SealedFixture} from "../utils/SealedFixture.sol";
import {IDataSafeSealed, SealedAccess, SealStatus} from "../../src/interfaces/IDataSafeSealed.sol";
import {MemberKind} from "../../src/interfaces/IMembership.sol";

/// @notice Sealed accesses: only the asset's department seals, only a second authority (a regulator) extends, in
///         time; only the matching opening reveals, and before the date only the department.
contract SealedTest is SealedFixture {
    function test_companion_ServesItsLedger() public view {
        assertEq(seals.ledger(), address(ledger), "creator");
        assertEq(seals.sealCount(), 0, "empty");
    }

    function test_seal_RecordsAndTellsTheSubject() public {
        bytes32 commitment = _commitment(psb, MASK, SALT);
        vm.expectEmit(address(seals));
        emit IDataSafeSealed.AccessSealed(1, alice, issuer, ASSET, commitment, T0 + 30 days, T0);
        uint256 sealId = _seal(T0 + 30 days);
        assertEq(sealId, 1, "first id");
        SealedAccess memory record = seals.getSeal(sealId);
        assertEq(record.subject, alice, "subject = asset owner");
        assertEq(record.department, issuer, "department");
        assertEq(record.commitment, commitment, "commitment");
        assertEq(record.unsealAt, T0 + 30 days, "date");
        assertEq(record.sealedAt, T0, "sealed at");
        assertTrue(record.status == SealStatus.SEALED, "sealed");
        assertEq(seals.sealCountOf(alice), 1, "alice count");
        assertEq(seals.sealOfAt(alice, 0), 1, "alice index");
        assertEq(seals.sealCountOf(acme), 0, "nobody else");
    }

    function test_RevertWhen_SealByNonDepartment() public {
        // A regulator, a bank and the subject itself are no department.
        address[3] memory callers = [regulator, bank, alice];
        for (uint256 i; i < callers.length; ++i) {
            vm.prank(callers[i]);
            vm.expectRevert(abi.encodeWithSelector(IDataSafeSealed.SealedNotDepartment.selector, callers[i]));
            seals.seal(ASSET, SALT, T0 + 1 days);
        }
    }

    function test_RevertWhen_SealBySuspendedDepartment() public {
        vm.prank(regulator);
        ledger.suspendMember(issuer, REASON);
        vm.prank(issuer);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeSealed.SealedNotDepartment.selector, issuer));
        seals.seal(ASSET, SALT, T0 + 1 days);
    }

    function test_RevertWhen_SealByIssuerOfAnotherKind() public {
        address registry = address(0xE6);
        vm.prank(governor);
        ledger.admitMember(registry, ISSUER, MemberKind.NOTARY, bytes32(0));
        vm.prank(registry);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeSealed.SealedNotDepartment.selector, registry));
        seals.seal(ASSET, SALT, T0 + 1 days);
    }

    function test_RevertWhen_SealOfDataTheDepartmentDidNotIssue() public {
        vm.prank(otherDept);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeSealed.SealedNotAssetIssuer.selector, ASSET, otherDept));
        seals.seal(ASSET, SALT, T0 + 1 days);
        bytes32 unknown = keccak256("no-such-asset");
        vm.prank(issuer);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeSealed.SealedUnknownAsset.selector, unknown));
        seals.seal(unknown, SALT, T0 + 1 days);
    }

    function test_RevertWhen_SealWithBadDateOrCommitment() public {
        uint64 latest = T0 + seals.MAX_SEAL_PERIOD();
        vm.startPrank(issuer);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeSealed.SealedInvalidUnsealDate.selector, T0, T0 + 1, latest));
        seals.seal(ASSET, SALT, T0);
        vm.expectRevert(
            abi.encodeWithSelector(IDataSafeSealed.SealedInvalidUnsealDate.selector, latest + 1, T0 + 1, latest)
        );
        seals.seal(ASSET, SALT, latest + 1);
        vm.expectRevert(IDataSafeSealed.SealedZeroCommitment.selector);
        seals.seal(ASSET, bytes32(0), T0 + 1 days);
        vm.stopPrank();
        assertEq(seals.sealCount(), 0, "nothing recorded");
    }

    function test_unseal_AfterTheDateByAnyone() public {
        uint256 sealId = _seal(T0 + 30 days);
        vm.warp(T0 + 30 days);
        vm.expectEmit(address(seals));
        emit IDataSafeSealed.AccessUnsealed(
            sealId, alice, psb, issuer, ASSET, MASK, BASIS, SALT, mallory, T0 + 30 days
        );
        vm.prank(mallory);
        seals.unseal(sealId, psb, MASK, BASIS, SALT);
        SealedAccess memory record = seals.getSeal(sealId);
        assertTrue(record.status == SealStatus.UNSEALED, "unsealed");
        assertEq(record.unsealedAt, T0 + 30 days, "when");
    }

    function test_unseal_EarlyByTheDepartment() public {
        uint256 sealId = _seal(T0 + 30 days);
        vm.prank(issuer);
        seals.unseal(sealId, psb, MASK, BASIS, SALT);
        assertTrue(seals.getSeal(sealId).status == SealStatus.UNSEALED, "lifted early");
    }

    function test_RevertWhen_UnsealEarlyByOthers() public {
        uint256 sealId = _seal(T0 + 30 days);
        vm.warp(T0 + 30 days - 1);
        address[3] memory callers = [alice, regulator, psb];
        for (uint256 i; i < callers.length; ++i) {
            vm.prank(callers[i]);
            vm.expectRevert(abi.encodeWithSelector(IDataSafeSealed.SealedTooEarly.selector, sealId, T0 + 30 days));
            seals.unseal(sealId, psb, MASK, BASIS, SALT);
        }
    }

    function test_RevertWhen_UnsealWithForgedOpening() public {
        uint256 sealId = _seal(T0 + 30 days);
        vm.warp(T0 + 31 days);
        bytes32 commitment = _commitment(psb, MASK, SALT);
        // Another institution, other fields, another basis, another salt: each refused.
        _expectMismatch(sealId, commitment, bank, MASK, BASIS, SALT);
        _expectMismatch(sealId, commitment, psb, MASK | 2, BASIS, SALT);
        _expectMismatch(sealId, commitment, psb, MASK, keccak256("other law"), SALT);
        _expectMismatch(sealId, commitment, psb, MASK, BASIS, keccak256("salt-2"));
        assertTrue(seals.getSeal(sealId).status == SealStatus.SEALED, "still sealed");
    }

    function _expectMismatch(
        uint256 sealId,
        bytes32 commitment,
        address institution,
        uint64 mask,
        bytes32 basis,
        bytes32 salt
    ) internal {
        bytes32 opened = seals.hashOpening(institution, ASSET, mask, basis, salt);
        vm.expectRevert(
            abi.encodeWithSelector(IDataSafeSealed.SealedOpeningMismatch.selector, sealId, commitment, opened)
        );
        seals.unseal(sealId, institution, mask, basis, salt);
    }

    function test_RevertWhen_UnsealTwiceOrUnknown() public {
        uint256 sealId = _seal(T0 + 1 days);
        vm.prank(issuer);
        seals.unseal(sealId, psb, MASK, BASIS, SALT);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeSealed.SealedAlreadyUnsealed.selector, sealId));
        seals.unseal(sealId, psb, MASK, BASIS, SALT);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeSealed.SealedNotFound.selector, 7));
        seals.unseal(7, psb, MASK, BASIS, SALT);
    }

    function test_extend_ByARegulatorWithAReason() public {
        uint256 sealId = _seal(T0 + 30 days);
        vm.warp(T0 + 29 days);
        vm.expectEmit(address(seals));
        emit IDataSafeSealed.SealExtended(sealId, alice, regulator, T0 + 30 days, T0 + 90 days, REASON, T0 + 29 days);
        vm.prank(regulator);
        seals.extend(sealId, T0 + 90 days, REASON);
        SealedAccess memory record = seals.getSeal(sealId);
        assertEq(record.unsealAt, T0 + 90 days, "moved");
        assertEq(record.extensions, 1, "counted");
        // The old date no longer opens it for others.
        vm.warp(T0 + 31 days);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeSealed.SealedTooEarly.selector, sealId, T0 + 90 days));
        seals.unseal(sealId, psb, MASK, BASIS, SALT);
    }

    function test_RevertWhen_ExtendByNonRegulator() public {
        uint256 sealId = _seal(T0 + 30 days);
        address[3] memory callers = [issuer, governor, alice];
        for (uint256 i; i < callers.length; ++i) {
            vm.prank(callers[i]);
            vm.expectRevert(abi.encodeWithSelector(IDataSafeSealed.SealedNotRegulator.selector, callers[i]));
            seals.extend(sealId, T0 + 60 days, REASON);
        }
        vm.prank(regulator2);
        ledger.suspendMember(regulator, REASON);
        vm.prank(regulator);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeSealed.SealedNotRegulator.selector, regulator));
        seals.extend(sealId, T0 + 60 days, REASON);
    }

    function test_RevertWhen_DepartmentExtendsItsOwnSeal() public {
        // A department that also holds the regulator role is still not a second authority.
        vm.prank(governor);
        ledger.setRoles(issuer, ISSUER | REGISTRAR | REGULATOR);
        uint256 sealId = _seal(T0 + 30 days);
        vm.prank(issuer);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeSealed.SealedSameAuthority.selector, sealId, issuer));
        seals.extend(sealId, T0 + 60 days, REASON);
    }

    function test_RevertWhen_ExtendLateOrBadly() public {
        uint256 sealId = _seal(T0 + 30 days);
        vm.startPrank(regulator);
        vm.expectRevert(IDataSafeSealed.SealedZeroReason.selector);
        seals.extend(sealId, T0 + 60 days, bytes32(0));
        uint64 latest = T0 + seals.MAX_SEAL_PERIOD();
        vm.expectRevert(
            abi.encodeWithSelector(
                IDataSafeSealed.SealedInvalidUnsealDate.selector, T0 + 30 days, T0 + 30 days + 1, latest
            )
        );
        seals.extend(sealId, T0 + 30 days, REASON);
        vm.expectRevert(
            abi.encodeWithSelector(IDataSafeSealed.SealedInvalidUnsealDate.selector, latest + 1, T0 + 30 days + 1, latest)
        );
        seals.extend(sealId, latest + 1, REASON);
        vm.warp(T0 + 30 days);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeSealed.SealedExtensionTooLate.selector, sealId, T0 + 30 days));
        seals.extend(sealId, T0 + 60 days, REASON);
        vm.stopPrank();
        vm.prank(issuer);
        seals.unseal(sealId, psb, MASK, BASIS, SALT);
        vm.prank(regulator);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeSealed.SealedAlreadyUnsealed.selector, sealId));
        seals.extend(sealId, T0 + 60 days, REASON);
    }

    function test_unseal_BySuspendedDepartmentStillOpens() public {
        // Transparency is the safe direction: a suspended department may still reveal.
        uint256 sealId = _seal(T0 + 30 days);
        vm.prank(regulator);
        ledger.suspendMember(issuer, REASON);
        vm.prank(issuer);
        seals.unseal(sealId, psb, MASK, BASIS, SALT);
        assertTrue(seals.getSeal(sealId).status == SealStatus.UNSEALED, "opened");
    }
}
