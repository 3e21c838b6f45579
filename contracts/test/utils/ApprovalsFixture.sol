// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "./LedgerFixture.sol";
import {MemberKind, ANY_PURPOSE} from "../../src/interfaces/IMembership.sol";
import {GrantTerms} from "../../src/interfaces/IConsents.sol";

/// @notice Acme with three agents (`agent`, `agent2`, `agent3`) and the helpers to sign `GrantApproval`s for it.
abstract contract ApprovalsFixture is LedgerFixture {
    uint256 internal constant AGENT2_PK = 0xA6E2;
    uint256 internal constant AGENT3_PK = 0xA6E3;
    bytes32 internal constant APPROVAL_TYPEHASH = keccak256("GrantApproval(address enterprise,uint32 epoch,bytes32 grant)");
    uint64 internal constant DEADLINE = T0 + 1 hours;

    address internal agent2;
    address internal agent3;

    function setUp() public virtual override {
        super.setUp();
        agent2 = vm.addr(AGENT2_PK);
        agent3 = vm.addr(AGENT3_PK);
        vm.startPrank(governor);
        ledger.admitMember(agent2, CONSUMER, MemberKind.INDIVIDUAL, bytes32(0));
        ledger.admitMember(agent3, CONSUMER, MemberKind.INDIVIDUAL, bytes32(0));
        vm.stopPrank();
        vm.startPrank(acme);
        ledger.addAgent(agent2, T0 + 365 days);
        ledger.addAgent(agent3, T0 + 365 days);
        vm.stopPrank();
    }

    function _acmeTerms() internal view returns (GrantTerms memory terms) {
        terms = _terms(bank, 3);
        terms.assetId = ACME_ASSET;
    }

    function _setThreshold(uint32 purpose, uint8 threshold) internal {
        vm.prank(acme);
        ledger.setApprovalThreshold(purpose, threshold);
    }

    function _threshold(uint8 threshold) internal {
        _setThreshold(ANY_PURPOSE, threshold);
    }

    /// @dev What an agent of acme signs now (the current epoch) to approve `terms` under `nonce`.
    function _approvalDigest(GrantTerms memory terms, uint256 nonce) internal view returns (bytes32) {
        (, uint32 epoch) = ledger.approvalPolicy(acme, ANY_PURPOSE);
        bytes32 structHash =
            keccak256(abi.encode(APPROVAL_TYPEHASH, acme, epoch, ledger.hashGrant(terms, nonce, DEADLINE)));
        return keccak256(abi.encodePacked("\x19\x01", ledger.domainSeparator(), structHash));
    }

    /// @dev The approvals of `pks`, concatenated in the order given.
    function _approvals(uint256[] memory pks, GrantTerms memory terms, uint256 nonce)
        internal
        view
        returns (bytes memory packed)
    {
        bytes32 digest = _approvalDigest(terms, nonce);
        for (uint256 i = 0; i < pks.length; ++i) {
            packed = bytes.concat(packed, _sig(pks[i], digest));
        }
    }

    /// @dev `pks` sorted by their addresses (what the contract requires).
    function _sorted(uint256[] memory pks) internal pure returns (uint256[] memory) {
        for (uint256 i = 1; i < pks.length; ++i) {
            for (uint256 j = i; j > 0 && vm.addr(pks[j]) < vm.addr(pks[j - 1]); --j) {
                (pks[j], pks[j - 1]) = (pks[j - 1], pks[j]);
            }
        }
        return pks;
    }

    function _pks(uint256 a, uint256 b) internal pure returns (uint256[] memory pks) {
        pks = new uint256[](2);
        pks[0] = a;
        pks[1] = b;
    }

    function _pks(uint256 a) internal pure returns (uint256[] memory pks) {
        pks = new uint256[](1);
        pks[0] = a;
    }

    function _relay(GrantTerms memory terms, uint256 nonce, bytes memory approvals) internal returns (bytes32) {
        vm.prank(custodian);
        return ledger.grantWithApprovals(terms, nonce, DEADLINE, approvals);
    }
}
