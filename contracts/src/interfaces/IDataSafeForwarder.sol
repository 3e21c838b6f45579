// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice A call signed by `from` for `to`, relayed by anyone (ERC-2771).
/// @param from The signer; the target sees it as the sender.
/// @param to The target: the ledger that created this forwarder.
/// @param nonce The signer's next forwarder nonce (`nonces(from)`): a request lands once.
/// @param deadline Unix time after which the request is void.
/// @param data The calldata for `to` (the forwarder appends `from`).
struct ForwardRequest {
    address from;
    address to;
    uint256 nonce;
    uint64 deadline;
    bytes data;
}

/// @title IDataSafeForwarder
/// @notice The ERC-2771 forwarder the ledger trusts: a citizen signs an EIP-712 `ForwardRequest`, the service pays the
///         gas. The forwarder has no owner, no storage besides nonces and no immutables, so its runtime code hash is the
///         same in every deployment and a client compares it with its own build.
interface IDataSafeForwarder {
    /// @notice Emitted when a request was executed.
    event RequestForwarded(address indexed from, address indexed to, uint256 nonce);
    /// @notice Emitted when the ledger's governor gives a member its directory name (the latest name stands).
    event MemberNamed(address indexed account, string name);

    /// @notice The request's deadline has passed.
    error ForwarderExpired(uint64 deadline);
    /// @notice The request's nonce is not the signer's next one (replayed, or out of order).
    error ForwarderInvalidNonce(address from, uint256 expected, uint256 given);
    /// @notice The signature is not by `from` (`recovered` is zero for a malformed signature).
    error ForwarderSignerMismatch(address from, address recovered);
    /// @notice The target is not the ledger that created this forwarder.
    error ForwarderUntrustedTarget(address to);
    /// @notice Only the ledger's governor names members.
    error ForwarderNotGovernor(address caller);
    /// @notice Only members are named.
    error ForwarderNotMember(address account);
    /// @notice A directory name is 1 to 96 bytes of UTF-8.
    error ForwarderInvalidName(address account);
    /// @notice The target reverted; `reason` is its revert data (decode it against the target's errors).
    error ForwarderCallFailed(bytes reason);

    /// @notice Verifies `request` and calls `request.to` with `request.data` followed by `request.from`. The whole
    ///         transaction reverts if the call does, so a failed call consumes no nonce.
    /// @param request The signed request.
    /// @param signature 65-byte ECDSA signature by `request.from` over `hashRequest(request)`.
    /// @return result The target's return data.
    function execute(ForwardRequest calldata request, bytes calldata signature) external returns (bytes memory result);

    /// @notice Gives a ledger member its directory name (the ledger's governor only), shown by wallets with the
    ///         member's kind and status. The name lives only in the `MemberNamed` event: the directory is re-derived
    ///         from this contract's logs.
    /// @param account A ledger member.
    /// @param name 1 to 96 bytes of UTF-8.
    function nameMember(address account, string calldata name) external;

    /// @notice The ledger that created this forwarder, its only target.
    function ledger() external view returns (address);

    /// @notice The EIP-712 digest of `request` under this forwarder's domain ("DataSafeForwarder", "1").
    /// @param request The request.
    function hashRequest(ForwardRequest calldata request) external view returns (bytes32);

    /// @notice The next nonce `from` signs.
    /// @param from The signer.
    function nonces(address from) external view returns (uint256);
}
