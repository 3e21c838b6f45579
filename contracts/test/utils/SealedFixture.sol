// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "./LedgerFixture.sol";
import {DataSafeSealed} from "../../src/DataSafeSealed.sol";
import {MemberKind} from "../../src/interfaces/IMembership.sol";

/// @notice The ledger fixture with its sealed-access companion and a second department and regulator.
abstract contract SealedFixture is LedgerFixture {
    /// @dev The companion's CREATE nonce from the ledger (ledger/companions.py's order).
    bytes1 internal constant SEALED_NONCE = 0x03;
    bytes32 internal constant BASIS = keccak256("criminal-procedure-law art. 52 / case 2026-117");
    bytes32 internal constant SALT = keccak256("salt-1");
    bytes32 internal constant REASON = keccak256("court order 2026-9");
    uint64 internal constant MASK = 0x5;

    DataSafeSealed internal seals;
    address internal psb = address(0xB5B);
    address internal otherDept = address(0xD2);
    address internal regulator2 = address(0x4E7);

    function setUp() public virtual override {
        super.setUp();
        seals = DataSafeSealed(
            address(
                uint160(uint256(keccak256(abi.encodePacked(bytes1(0xd6), bytes1(0x94), address(ledger), SEALED_NONCE))))
            )
        );
        vm.startPrank(governor);
        // The institution that received the data: a department that is no issuer of this asset.
        ledger.admitMember(psb, ISSUER, MemberKind.DEPARTMENT, bytes32(0));
        ledger.admitMember(otherDept, ISSUER, MemberKind.DEPARTMENT, bytes32(0));
        ledger.admitMember(regulator2, REGULATOR, MemberKind.REGULATOR, bytes32(0));
        vm.stopPrank();
    }

    function _commitment(address institution, uint64 mask, bytes32 salt) internal view returns (bytes32) {
        return seals.hashOpening(institution, ASSET, mask, BASIS, salt);
    }

    function _seal(uint64 unsealAt) internal returns (uint256) {
        // Computed before the prank: the view call would consume it.
        bytes32 commitment = _commitment(psb, MASK, SALT);
        vm.prank(issuer);
        return seals.seal(ASSET, commitment, unsealAt);
    }
}
