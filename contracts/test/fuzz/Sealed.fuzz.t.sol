// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {SealedFixture} from "../utils/SealedFixture.sol";
import {IDataSafeSealed, SealStatus} from "../../src/interfaces/IDataSafeSealed.sol";

/// @notice Bounded fuzz of the seal rules: dates, who may reveal when, and that only the exact opening reveals.
contract SealedFuzzTest is SealedFixture {
    function testFuzz_seal_DateWindow(uint256 offset) public {
        uint64 period = seals.MAX_SEAL_PERIOD();
        offset = bound(offset, 0, uint256(period) * 2);
        uint64 unsealAt = T0 + uint64(offset);
        bytes32 commitment = _commitment(psb, MASK, SALT);
        vm.prank(issuer);
        if (offset == 0 || offset > period) {
            vm.expectRevert(
                abi.encodeWithSelector(IDataSafeSealed.SealedInvalidUnsealDate.selector, unsealAt, T0 + 1, T0 + period)
            );
            seals.seal(ASSET, commitment, unsealAt);
            assertEq(seals.sealCount(), 0, "nothing");
        } else {
            uint256 sealId = seals.seal(ASSET, commitment, unsealAt);
            assertEq(seals.getSeal(sealId).unsealAt, unsealAt, "date kept");
        }
    }

    function testFuzz_unseal_OnlyAfterTheDateForOthers(uint256 waitFor, uint256 callerSeed) public {
        uint64 unsealAt = T0 + 30 days;
        uint256 sealId = _seal(unsealAt);
        waitFor = bound(waitFor, 0, 60 days);
        vm.warp(T0 + waitFor);
        address caller = address(uint160(bound(callerSeed, 1, type(uint160).max)));
        vm.prank(caller);
        if (T0 + waitFor < unsealAt && caller != issuer) {
            vm.expectRevert(abi.encodeWithSelector(IDataSafeSealed.SealedTooEarly.selector, sealId, unsealAt));
            seals.unseal(sealId, psb, MASK, BASIS, SALT);
            assertTrue(seals.getSeal(sealId).status == SealStatus.SEALED, "still sealed");
        } else {
            seals.unseal(sealId, psb, MASK, BASIS, SALT);
            assertTrue(seals.getSeal(sealId).status == SealStatus.UNSEALED, "opened");
        }
    }

    function testFuzz_unseal_OnlyTheExactOpening(address institution, uint64 mask, bytes32 basis, bytes32 salt) public {
        uint256 sealId = _seal(T0 + 1 days);
        vm.warp(T0 + 1 days);
        bytes32 opened = seals.hashOpening(institution, ASSET, mask, basis, salt);
        bool exact = institution == psb && mask == MASK && basis == BASIS && salt == SALT;
        if (!exact) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IDataSafeSealed.SealedOpeningMismatch.selector, sealId, _commitment(psb, MASK, SALT), opened
                )
            );
        }
        seals.unseal(sealId, institution, mask, basis, salt);
        assertTrue((seals.getSeal(sealId).status == SealStatus.UNSEALED) == exact, "opens iff exact");
    }

    function testFuzz_extend_OnlyInTimeAndLater(uint256 at, uint256 to) public {
        uint64 unsealAt = T0 + 30 days;
        uint256 sealId = _seal(unsealAt);
        uint64 period = seals.MAX_SEAL_PERIOD();
        at = bound(at, 0, 40 days);
        vm.warp(T0 + at);
        uint64 now_ = T0 + uint64(at);
        uint64 target = uint64(bound(to, T0, uint256(now_) + period + 1 days));
        vm.prank(regulator);
        if (now_ >= unsealAt) {
            vm.expectRevert(abi.encodeWithSelector(IDataSafeSealed.SealedExtensionTooLate.selector, sealId, unsealAt));
        } else if (target <= unsealAt || target > now_ + period) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    IDataSafeSealed.SealedInvalidUnsealDate.selector, target, unsealAt + 1, now_ + period
                )
            );
        }
        seals.extend(sealId, target, REASON);
        bool extended = now_ < unsealAt && target > unsealAt && target <= now_ + period;
        assertEq(seals.getSeal(sealId).unsealAt, extended ? target : unsealAt, "date");
        assertEq(seals.getSeal(sealId).extensions, extended ? 1 : 0, "count");
    }
}
