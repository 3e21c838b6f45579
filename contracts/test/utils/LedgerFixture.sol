// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Test} from "./Test.sol";
import {DataSafeLedger} from "../../src/DataSafeLedger.sol";
import {MemberKind} from "../../src/interfaces/IMembership.sol";
import {GrantTerms, SignedGrant, AccessRequest} from "../../src/interfaces/IConsents.sol";

/// @notice A deployed ledger with one member of each kind, a schema and an asset owned by an individual.
abstract contract LedgerFixture is Test {
    uint16 internal constant GOVERNOR = 1;
    uint16 internal constant ISSUER = 2;
    uint16 internal constant CONSUMER = 4;
    uint16 internal constant REGULATOR = 8;
    uint16 internal constant CUSTODIAN = 16;
    uint16 internal constant SUBJECT = 32;
    uint16 internal constant REGISTRAR = 64;

    uint256 internal constant ALICE_PK = 0xA11CE;
    uint256 internal constant BANK_PK = 0xB0B;
    uint256 internal constant INSURER_PK = 0x1A5;
    uint256 internal constant ACME_PK = 0xAC3E;
    uint256 internal constant AGENT_PK = 0xA6E27;
    uint256 internal constant MALLORY_PK = 0xBAD;

    uint64 internal constant T0 = 1_750_000_000;
    bytes32 internal constant SCHEMA = keccak256("household-registration/v1");
    bytes32 internal constant ASSET = keccak256("asset-1");
    bytes32 internal constant ACME_ASSET = keccak256("acme-asset-1");
    uint16 internal constant FIELDS = 12;

    DataSafeLedger internal ledger;
    address internal governor = address(0x600);
    address internal issuer = address(0x155);
    address internal regulator = address(0x4E6);
    address internal custodian = address(0xC057);
    address internal alice;
    address internal bank;
    address internal insurer;
    address internal acme;
    address internal agent;
    address internal mallory;

    function setUp() public virtual {
        vm.warp(T0);
        alice = vm.addr(ALICE_PK);
        bank = vm.addr(BANK_PK);
        insurer = vm.addr(INSURER_PK);
        acme = vm.addr(ACME_PK);
        agent = vm.addr(AGENT_PK);
        mallory = vm.addr(MALLORY_PK);
        ledger = new DataSafeLedger(governor);
        vm.startPrank(governor);
        ledger.admitMember(issuer, ISSUER | REGISTRAR, MemberKind.DEPARTMENT, bytes32(0));
        ledger.admitMember(bank, CONSUMER, MemberKind.BANK, bytes32(0));
        ledger.admitMember(insurer, CONSUMER, MemberKind.INSURER, bytes32(0));
        ledger.admitMember(regulator, REGULATOR, MemberKind.REGULATOR, bytes32(0));
        ledger.admitMember(custodian, CUSTODIAN, MemberKind.OPERATOR, bytes32(0));
        ledger.admitMember(agent, CONSUMER, MemberKind.INDIVIDUAL, bytes32(0));
        ledger.admitSubject(alice, MemberKind.INDIVIDUAL, keccak256("alice-id"));
        ledger.admitSubject(acme, MemberKind.ENTERPRISE, keccak256("acme-id"));
        vm.stopPrank();
        vm.startPrank(issuer);
        ledger.registerSchema(SCHEMA, FIELDS, keccak256("name,id,address,..."));
        ledger.anchorAsset(ASSET, alice, SCHEMA, keccak256("root-1"), keccak256("ct-1"));
        ledger.anchorAsset(ACME_ASSET, acme, SCHEMA, keccak256("acme-root"), keccak256("acme-ct"));
        vm.stopPrank();
        vm.prank(acme);
        ledger.addAgent(agent, T0 + 365 days);
    }

    function _terms(address grantee, uint64 mask) internal pure returns (GrantTerms memory) {
        return GrantTerms({
            assetId: ASSET,
            grantee: grantee,
            purpose: 1,
            fieldsMask: mask,
            notBefore: 0,
            expiry: T0 + 30 days,
            maxUses: 3,
            retention: 0
        });
    }

    function _grantAs(address grantor, GrantTerms memory terms, uint256 nonce) internal returns (bytes32) {
        vm.prank(grantor);
        return ledger.grant(terms, nonce);
    }

    function _sig(uint256 pk, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, digest);
        return abi.encodePacked(r, s, v);
    }

    function _signedGrant(uint256 pk, GrantTerms memory terms, uint256 nonce, uint64 deadline)
        internal
        view
        returns (SignedGrant memory)
    {
        return SignedGrant({
            terms: terms,
            grantor: vm.addr(pk),
            nonce: nonce,
            deadline: deadline,
            signature: _sig(pk, ledger.hashGrant(terms, nonce, deadline))
        });
    }

    function _request(bytes32 grantId, uint64 mask, uint256 nonce) internal pure returns (AccessRequest memory) {
        return AccessRequest({grantId: grantId, fieldsMask: mask, nonce: nonce, deadline: T0 + 1 days});
    }

    function _signAccess(uint256 pk, AccessRequest memory request) internal view returns (bytes memory) {
        return _sig(pk, ledger.hashAccessRequest(request));
    }

    /// @dev One `recordAccessBatch` item: the request and `pk`'s signature of it in EIP-2098 compact form.
    function _packAccess(uint256 pk, AccessRequest memory request) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, ledger.hashAccessRequest(request));
        bytes32 vs = bytes32(uint256(s) | (uint256(v - 27) << 255));
        return _packItem(request, r, vs);
    }

    function _packItem(AccessRequest memory request, bytes32 r, bytes32 vs) internal pure returns (bytes memory) {
        return abi.encodePacked(request.grantId, request.fieldsMask, request.nonce, request.deadline, r, vs);
    }

    /// @dev One `acknowledgeBatch` item: `pk`'s compact signature of the acknowledgement, packed with its fields.
    function _packAck(uint256 pk, uint8 kind, bytes32 grantId_, uint32 uses, uint64 at)
        internal
        view
        returns (bytes memory)
    {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(pk, ledger.hashAcknowledgement(kind, grantId_, uses, at));
        return abi.encodePacked(kind, grantId_, uses, at, r, bytes32(uint256(s) | (uint256(v - 27) << 255)));
    }
}
