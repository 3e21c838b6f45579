// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "../utils/LedgerFixture.sol";
import {IAssets, Asset, AssetStatus} from "../../src/interfaces/IAssets.sol";
import {ISchemas, Schema} from "../../src/interfaces/ISchemas.sol";
import {IMembership} from "../../src/interfaces/IMembership.sol";

contract AssetsTest is LedgerFixture {
    bytes32 internal constant V2 = keccak256("asset-1-v2");

    function test_registerSchema_Stores() public {
        vm.expectEmit(address(ledger));
        emit ISchemas.SchemaRegistered(keccak256("s2"), issuer, 64, keccak256("f"));
        vm.prank(issuer);
        ledger.registerSchema(keccak256("s2"), 64, keccak256("f"));
        Schema memory s = ledger.getSchema(keccak256("s2"));
        assertEq(s.fieldCount, 64, "count");
        assertEq(s.issuer, issuer, "issuer");
    }

    function test_RevertWhen_registerSchema_Errors() public {
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipUnauthorized.selector, bank, ISSUER));
        ledger.registerSchema(keccak256("s2"), 3, 0);
        vm.startPrank(issuer);
        vm.expectRevert(ISchemas.SchemaZeroId.selector);
        ledger.registerSchema(bytes32(0), 3, 0);
        vm.expectRevert(abi.encodeWithSelector(ISchemas.SchemaAlreadyRegistered.selector, SCHEMA));
        ledger.registerSchema(SCHEMA, 3, 0);
        vm.expectRevert(abi.encodeWithSelector(ISchemas.SchemaInvalidFieldCount.selector, uint16(65)));
        ledger.registerSchema(keccak256("s2"), 65, 0);
        vm.expectRevert(abi.encodeWithSelector(ISchemas.SchemaInvalidFieldCount.selector, uint16(0)));
        ledger.registerSchema(keccak256("s2"), 0, 0);
        vm.stopPrank();
    }

    function test_anchorAsset_Stores() public view {
        Asset memory a = ledger.getAsset(ASSET);
        assertEq(a.owner, alice, "owner");
        assertEq(a.issuer, issuer, "issuer");
        assertEq(a.version, 1, "version");
        assertEq(uint256(a.status), uint256(AssetStatus.ACTIVE), "status");
        assertEq(a.root, keccak256("root-1"), "root");
        assertEq(ledger.getAsset(keccak256("none")).owner, address(0), "unknown is zero");
    }

    function test_RevertWhen_anchorAsset_Errors() public {
        vm.startPrank(issuer);
        vm.expectRevert(abi.encodeWithSelector(ISchemas.SchemaNotFound.selector, keccak256("nope")));
        ledger.anchorAsset(keccak256("a"), alice, keccak256("nope"), 0, 0);
        vm.expectRevert(abi.encodeWithSelector(IAssets.AssetOwnerNotSubject.selector, bank));
        ledger.anchorAsset(keccak256("a"), bank, SCHEMA, 0, 0);
        vm.expectRevert(IAssets.AssetZeroId.selector);
        ledger.anchorAsset(bytes32(0), alice, SCHEMA, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(IAssets.AssetAlreadyExists.selector, ASSET));
        ledger.anchorAsset(ASSET, alice, SCHEMA, 0, 0);
        vm.stopPrank();
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IMembership.MembershipUnauthorized.selector, bank, ISSUER));
        ledger.anchorAsset(keccak256("a"), alice, SCHEMA, 0, 0);
    }

    function test_supersedeAsset_LinksVersions() public {
        vm.expectEmit(address(ledger));
        emit IAssets.AssetSuperseded(ASSET, V2, alice, issuer, 2, keccak256("root-2"), keccak256("ct-2"), T0);
        vm.prank(issuer);
        ledger.supersedeAsset(ASSET, V2, keccak256("root-2"), keccak256("ct-2"));
        Asset memory old = ledger.getAsset(ASSET);
        Asset memory next = ledger.getAsset(V2);
        assertEq(uint256(old.status), uint256(AssetStatus.SUPERSEDED), "old superseded");
        assertEq(old.next, V2, "next link");
        assertEq(next.previous, ASSET, "previous link");
        assertEq(next.version, 2, "version");
        assertEq(next.owner, alice, "same owner");
        assertEq(old.root, keccak256("root-1"), "old stays queryable");
    }

    function test_RevertWhen_supersedeAsset_Errors() public {
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IAssets.AssetNotIssuer.selector, ASSET, bank));
        ledger.supersedeAsset(ASSET, V2, 0, 0);
        vm.startPrank(issuer);
        vm.expectRevert(abi.encodeWithSelector(IAssets.AssetNotFound.selector, keccak256("nope")));
        ledger.supersedeAsset(keccak256("nope"), V2, 0, 0);
        ledger.supersedeAsset(ASSET, V2, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(IAssets.AssetInvalidStatus.selector, ASSET, AssetStatus.SUPERSEDED));
        ledger.supersedeAsset(ASSET, keccak256("v3"), 0, 0);
        vm.stopPrank();
    }

    function test_dispute_resolve() public {
        vm.expectEmit(address(ledger));
        emit IAssets.AssetDisputed(ASSET, alice, alice, keccak256("wrong address"), T0);
        vm.prank(alice);
        ledger.disputeAsset(ASSET, keccak256("wrong address"));
        vm.prank(issuer);
        ledger.resolveDispute(ASSET, keccak256("checked"));
        assertEq(uint256(ledger.getAsset(ASSET).status), uint256(AssetStatus.ACTIVE), "active again");
    }

    function test_disputeAsset_ByAgent() public {
        vm.prank(agent);
        ledger.disputeAsset(ACME_ASSET, 0);
        assertEq(uint256(ledger.getAsset(ACME_ASSET).status), uint256(AssetStatus.DISPUTED), "disputed");
    }

    function test_supersedeAsset_ResolvesDispute() public {
        vm.prank(alice);
        ledger.disputeAsset(ASSET, 0);
        vm.prank(issuer);
        ledger.supersedeAsset(ASSET, V2, 0, 0);
        assertEq(uint256(ledger.getAsset(V2).status), uint256(AssetStatus.ACTIVE), "new version active");
    }

    function test_RevertWhen_disputeAsset_Errors() public {
        vm.prank(bank);
        vm.expectRevert(abi.encodeWithSelector(IAssets.AssetNotOwner.selector, ASSET, bank));
        ledger.disputeAsset(ASSET, 0);
        vm.startPrank(alice);
        ledger.disputeAsset(ASSET, 0);
        vm.expectRevert(abi.encodeWithSelector(IAssets.AssetInvalidStatus.selector, ASSET, AssetStatus.DISPUTED));
        ledger.disputeAsset(ASSET, 0);
        vm.stopPrank();
    }

    function test_RevertWhen_resolveDispute_NotDisputed() public {
        vm.prank(issuer);
        vm.expectRevert(abi.encodeWithSelector(IAssets.AssetInvalidStatus.selector, ASSET, AssetStatus.ACTIVE));
        ledger.resolveDispute(ASSET, 0);
    }

    function test_retireAsset_Terminal() public {
        vm.startPrank(issuer);
        ledger.retireAsset(ASSET, keccak256("deceased"));
        vm.expectRevert(abi.encodeWithSelector(IAssets.AssetInvalidStatus.selector, ASSET, AssetStatus.RETIRED));
        ledger.retireAsset(ASSET, 0);
        vm.stopPrank();
    }

    function test_RevertWhen_retireAsset_NotIssuer() public {
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IAssets.AssetNotIssuer.selector, ASSET, alice));
        ledger.retireAsset(ASSET, 0);
    }
}
