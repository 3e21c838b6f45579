// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title EIP712Base
/// @notice EIP-712 domain ("DataSafeLedger", "1", chainId, this) and a readable ECDSA recover: 65-byte signatures
///         (v in {27, 28}) or EIP-2098 compact ones (r, vs) in packed batches, s in the lower half of the curve order
///         (no malleable twins), no assembly.
abstract contract EIP712Base {
    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant _NAME_HASH = keccak256("DataSafeLedger");
    bytes32 private constant _VERSION_HASH = keccak256("1");
    // secp256k1n / 2: signatures with a larger s are the malleable twin of a valid one.
    uint256 private constant _HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;
    // Clears the parity bit of an EIP-2098 `vs` word.
    bytes32 private constant _S_MASK = bytes32(type(uint256).max >> 1);

    uint256 private immutable _cachedChainId;
    bytes32 private immutable _cachedDomainSeparator;

    constructor() {
        _cachedChainId = block.chainid;
        _cachedDomainSeparator = _buildDomainSeparator();
    }

    function _domainSeparator() internal view returns (bytes32) {
        // A fork with a new chain id gets a fresh separator, so signatures never cross chains.
        if (block.chainid == _cachedChainId) return _cachedDomainSeparator;
        return _buildDomainSeparator();
    }

    function _buildDomainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(_DOMAIN_TYPEHASH, _NAME_HASH, _VERSION_HASH, block.chainid, address(this)));
    }

    function _hashTypedData(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", _domainSeparator(), structHash));
    }

    /// @dev Returns address(0) for any malformed signature instead of reverting, so batches can skip it.
    function _tryRecover(bytes32 digest, bytes calldata signature) internal pure returns (address) {
        if (signature.length != 65) return address(0);
        uint8 v = uint8(signature[64]);
        if (v != 27 && v != 28) return address(0);
        return _recoverLowS(digest, v, bytes32(signature[0:32]), bytes32(signature[32:64]));
    }

    /// @dev EIP-2098 compact form: `vs` is s with the parity (v - 27) in its top bit. address(0) if malformed.
    function _tryRecoverCompact(bytes32 digest, bytes32 r, bytes32 vs) internal pure returns (address) {
        return _recoverLowS(digest, uint8(uint256(vs) >> 255) + 27, r, vs & _S_MASK);
    }

    function _recoverLowS(bytes32 digest, uint8 v, bytes32 r, bytes32 s) private pure returns (address) {
        if (uint256(s) > _HALF_ORDER) return address(0);
        return ecrecover(digest, v, r, s);
    }
}
