// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {LedgerFixture} from "../utils/LedgerFixture.sol";
import {DataSafeForwarder} from "../../src/DataSafeForwarder.sol";
import {IDataSafeForwarder, ForwardRequest} from "../../src/interfaces/IDataSafeForwarder.sol";
import {IMembership, MemberKind} from "../../src/interfaces/IMembership.sol";
import {IAssets, AssetStatus} from "../../src/interfaces/IAssets.sol";

/// @notice Citizens act without gas through the ledger's own ERC-2771 forwarder; nobody else can act for them.
contract ForwarderTest is LedgerFixture {
    DataSafeForwarder internal forwarder;
    address internal relayer = address(0xEE1A);
    uint64 internal constant DEADLINE = T0 + 1 hours;

    function setUp() public override {
        super.setUp();
        // The ledger's constructor creates the forwarder: CREATE from the ledger at nonce 1.
        forwarder = DataSafeForwarder(
            address(
                uint160(uint256(keccak256(abi.encodePacked(bytes1(0xd6), bytes1(0x94), address(ledger), bytes1(0x01)))))
            )
        );
    }

    function _forward(uint256 pk, bytes memory data) internal view returns (ForwardRequest memory, bytes memory) {
        address from = vm.addr(pk);
        ForwardRequest memory request = ForwardRequest({
            from: from, to: address(ledger), nonce: forwarder.nonces(from), deadline: DEADLINE, data: data
        });
        return (request, _sig(pk, forwarder.hashRequest(request)));
    }

    function test_forwarder_IsTheLedgersOwn() public view {
        assertTrue(ledger.isTrustedForwarder(address(forwarder)), "trusted");
        assertFalse(ledger.isTrustedForwarder(relayer), "only one");
        assertEq(forwarder.ledger(), address(ledger), "its ledger");
    }

    function test_disputeAsset_ForwardedForTheOwner() public {
        (ForwardRequest memory request, bytes memory sig) =
            _forward(ALICE_PK, abi.encodeCall(IAssets.disputeAsset, (ASSET, keccak256("wrong"))));
        vm.expectEmit(address(ledger));
        emit IAssets.AssetDisputed(ASSET, alice, alice, keccak256("wrong"), T0);
        vm.prank(relayer);
        forwarder.execute(request, sig);
        assertTrue(ledger.getAsset(ASSET).status == AssetStatus.DISPUTED, "disputed");
        assertEq(forwarder.nonces(alice), 1, "nonce used");
    }

    function test_agents_AddedAndRemovedByForward() public {
        address agent2 = bank;
        (ForwardRequest memory request, bytes memory sig) =
            _forward(ACME_PK, abi.encodeCall(IMembership.addAgent, (agent2, T0 + 30 days)));
        vm.expectEmit(address(ledger));
        emit IMembership.AgentAdded(acme, agent2, T0 + 30 days);
        vm.prank(relayer);
        forwarder.execute(request, sig);
        assertTrue(ledger.isAgent(acme, agent2), "added");
        (request, sig) = _forward(ACME_PK, abi.encodeCall(IMembership.removeAgent, (agent2)));
        vm.prank(relayer);
        forwarder.execute(request, sig);
        assertFalse(ledger.isAgent(acme, agent2), "removed");
    }

    function test_RevertWhen_WrongSigner() public {
        (ForwardRequest memory request,) =
            _forward(ALICE_PK, abi.encodeCall(IAssets.disputeAsset, (ASSET, keccak256("wrong"))));
        bytes memory forged = _sig(MALLORY_PK, forwarder.hashRequest(request));
        vm.expectRevert(abi.encodeWithSelector(IDataSafeForwarder.ForwarderSignerMismatch.selector, alice, mallory));
        forwarder.execute(request, forged);
    }

    function test_RevertWhen_MalformedSignature() public {
        (ForwardRequest memory request,) = _forward(ALICE_PK, abi.encodeCall(IMembership.removeAgent, (agent)));
        vm.expectRevert(abi.encodeWithSelector(IDataSafeForwarder.ForwarderSignerMismatch.selector, alice, address(0)));
        forwarder.execute(request, hex"00");
    }

    function test_RevertWhen_Replayed() public {
        (ForwardRequest memory request, bytes memory sig) =
            _forward(ALICE_PK, abi.encodeCall(IAssets.disputeAsset, (ASSET, keccak256("wrong"))));
        forwarder.execute(request, sig);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeForwarder.ForwarderInvalidNonce.selector, alice, 1, 0));
        forwarder.execute(request, sig);
    }

    function test_RevertWhen_Expired() public {
        (ForwardRequest memory request, bytes memory sig) =
            _forward(ALICE_PK, abi.encodeCall(IAssets.disputeAsset, (ASSET, keccak256("wrong"))));
        vm.warp(DEADLINE + 1);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeForwarder.ForwarderExpired.selector, DEADLINE));
        forwarder.execute(request, sig);
    }

    function test_RevertWhen_OtherTarget() public {
        (ForwardRequest memory request,) = _forward(ALICE_PK, hex"");
        request.to = relayer;
        bytes memory sig = _sig(ALICE_PK, forwarder.hashRequest(request));
        vm.expectRevert(abi.encodeWithSelector(IDataSafeForwarder.ForwarderUntrustedTarget.selector, relayer));
        forwarder.execute(request, sig);
    }

    function test_RevertWhen_LedgerRefuses_NonceKept() public {
        // Mallory owns nothing: the ledger's refusal comes back whole and the nonce is not spent.
        (ForwardRequest memory request, bytes memory sig) =
            _forward(MALLORY_PK, abi.encodeCall(IAssets.disputeAsset, (ASSET, keccak256("mine"))));
        bytes memory inner = abi.encodeWithSelector(IAssets.AssetNotOwner.selector, ASSET, mallory);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeForwarder.ForwarderCallFailed.selector, inner));
        forwarder.execute(request, sig);
        assertEq(forwarder.nonces(mallory), 0, "nonce kept");
    }

    function test_RevertWhen_SenderAppendedWithoutForwarder() public {
        // Only the trusted forwarder's appended sender counts: a direct call with alice's address appended is mallory.
        bytes memory data = abi.encodePacked(abi.encodeCall(IAssets.disputeAsset, (ASSET, bytes32(0))), alice);
        vm.prank(mallory);
        (bool ok, bytes memory reason) = address(ledger).call(data);
        assertFalse(ok, "refused");
        assertEq(
            keccak256(reason),
            keccak256(abi.encodeWithSelector(IAssets.AssetNotOwner.selector, ASSET, mallory)),
            "as mallory"
        );
    }

    function test_RevertWhen_ForwardedToOtherFunctions() public {
        // Everything but dispute and agents ignores the forwarder: a forwarded admission is the forwarder's own.
        (ForwardRequest memory request, bytes memory sig) =
            _forward(ALICE_PK, abi.encodeCall(IMembership.admitSubject, (mallory, MemberKind.INDIVIDUAL, bytes32(0))));
        bytes memory inner = abi.encodeWithSelector(IMembership.MembershipUnauthorized.selector, address(forwarder), 66);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeForwarder.ForwarderCallFailed.selector, inner));
        forwarder.execute(request, sig);
    }

    function test_nameMember_ByGovernor() public {
        vm.expectEmit(address(forwarder));
        emit IDataSafeForwarder.MemberNamed(bank, "City Commercial Bank");
        vm.prank(governor);
        forwarder.nameMember(bank, "City Commercial Bank");
    }

    function test_RevertWhen_NamedByOther() public {
        vm.prank(issuer);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeForwarder.ForwarderNotGovernor.selector, issuer));
        forwarder.nameMember(bank, "Fake Bank");
    }

    function test_RevertWhen_NamingNonMemberOrBadName() public {
        vm.startPrank(governor);
        vm.expectRevert(abi.encodeWithSelector(IDataSafeForwarder.ForwarderNotMember.selector, relayer));
        forwarder.nameMember(relayer, "Nobody");
        vm.expectRevert(abi.encodeWithSelector(IDataSafeForwarder.ForwarderInvalidName.selector, bank));
        forwarder.nameMember(bank, "");
        vm.stopPrank();
    }
}
