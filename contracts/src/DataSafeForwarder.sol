// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IDataSafeForwarder, ForwardRequest} from "./interfaces/IDataSafeForwarder.sol";
import {IMembership, MemberStatus} from "./interfaces/IMembership.sol";

/// @title DataSafeForwarder
/// @notice ERC-2771 forwarder for citizens' gasless calls, and the member directory's names, both kept outside the
///         ledger's EIP-170 budget (see docs/contracts.md, "Gasless calls" and "Member directory").
/// @dev Written after OpenZeppelin's ERC2771Forwarder, without its gas and value fields: the call must succeed or the
///      transaction reverts, so a relayer cannot burn a request by starving it of gas.
contract DataSafeForwarder is IDataSafeForwarder {
    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant _REQUEST_TYPEHASH =
        keccak256("ForwardRequest(address from,address to,uint256 nonce,uint64 deadline,bytes data)");
    // secp256k1n / 2: signatures with a larger s are the malleable twin of a valid one.
    uint256 private constant _HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// @dev Storage, not an immutable: the runtime code stays the same in every deployment.
    // slither-disable-next-line immutable-states -- an immutable would make the code hash differ per deployment
    address private _ledger;
    mapping(address from => uint256 nonce) private _nonces;

    /// @dev Created by the ledger's constructor: the creator is the only target.
    constructor() {
        _ledger = msg.sender;
    }

    /// @inheritdoc IDataSafeForwarder
    function execute(ForwardRequest calldata request, bytes calldata signature) external returns (bytes memory) {
        if (block.timestamp > request.deadline) revert ForwarderExpired(request.deadline);
        uint256 expected = _nonces[request.from];
        if (request.nonce != expected) revert ForwarderInvalidNonce(request.from, expected, request.nonce);
        address recovered = _tryRecover(hashRequest(request), signature);
        if (recovered == address(0) || recovered != request.from) {
            revert ForwarderSignerMismatch(request.from, recovered);
        }
        // Only the ledger that created this forwarder reads the appended sender; any other target would not.
        if (request.to != _ledger) revert ForwarderUntrustedTarget(request.to);
        _nonces[request.from] = expected + 1;
        // Emitted before the call: if the call reverts, so does everything, the event included.
        emit RequestForwarded(request.from, request.to, expected);
        // slither-disable-next-line low-level-calls -- ERC-2771: the call with the sender appended; `ok` is checked
        (bool ok, bytes memory result) = request.to.call(abi.encodePacked(request.data, request.from));
        if (!ok) revert ForwarderCallFailed(result);
        return result;
    }

    /// @inheritdoc IDataSafeForwarder
    function nameMember(address account, string calldata name) external {
        IMembership membership = IMembership(_ledger);
        if (msg.sender != membership.governor()) revert ForwarderNotGovernor(msg.sender);
        if (membership.getMember(account).status == MemberStatus.NONE) revert ForwarderNotMember(account);
        // A directory entry is a name people read: not empty, not a page.
        if (bytes(name).length == 0 || bytes(name).length > 96) revert ForwarderInvalidName(account);
        emit MemberNamed(account, name);
    }

    /// @inheritdoc IDataSafeForwarder
    function ledger() external view returns (address) {
        return _ledger;
    }

    /// @inheritdoc IDataSafeForwarder
    function hashRequest(ForwardRequest calldata request) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                _REQUEST_TYPEHASH, request.from, request.to, request.nonce, request.deadline, keccak256(request.data)
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", _domainSeparator(), structHash));
    }

    /// @inheritdoc IDataSafeForwarder
    function nonces(address from) external view returns (uint256) {
        return _nonces[from];
    }

    /// @dev Computed on each call rather than cached in an immutable, so the runtime code is the same everywhere.
    function _domainSeparator() private view returns (bytes32) {
        return keccak256(
            abi.encode(_DOMAIN_TYPEHASH, keccak256("DataSafeForwarder"), keccak256("1"), block.chainid, address(this))
        );
    }

    /// @dev Same rules as the ledger's: 65 bytes, v in {27, 28}, low s; address(0) for anything malformed.
    function _tryRecover(bytes32 digest, bytes calldata signature) private pure returns (address) {
        if (signature.length != 65) return address(0);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > _HALF_ORDER) return address(0);
        if (v != 27 && v != 28) return address(0);
        return ecrecover(digest, v, r, s);
    }
}
