// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IDataSafeClaims, ClaimRequest, ClaimStatus, Claim} from "./interfaces/IDataSafeClaims.sol";
import {IMembership, MemberStatus} from "./interfaces/IMembership.sol";
import {ISchemas} from "./interfaces/ISchemas.sol";
import {IAssets, Asset, AssetStatus} from "./interfaces/IAssets.sol";

/// @title DataSafeClaims
/// @notice A subject's signed claim to a record a department issues; the department fulfils it by linking the asset
///         it anchored, or refuses it (see docs/contracts.md, "Claims"). A companion of the ledger, outside its
///         EIP-170 budget.
/// @dev No immutables: the runtime code is the same in every deployment, so a client checks it against its build.
contract DataSafeClaims is IDataSafeClaims {
    uint16 private constant _ROLE_ISSUER = 2;
    uint16 private constant _ROLE_SUBJECT = 32;
    bytes32 private constant _DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 private constant _REQUEST_TYPEHASH = keccak256(
        "ClaimRequest(address subject,address department,bytes32 schemaId,bytes32 referenceHash,uint256 nonce,uint64 deadline)"
    );
    // secp256k1n / 2: signatures with a larger s are the malleable twin of a valid one.
    uint256 private constant _HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;

    /// @dev Storage, not an immutable: the runtime code stays the same in every deployment.
    // slither-disable-next-line immutable-states -- an immutable would make the code hash differ per deployment
    address private _ledger;
    mapping(address subject => uint256 nonce) private _nonces;
    mapping(bytes32 claimId => Claim claim) private _claims;
    mapping(bytes32 assetId => bytes32 claimId) private _claimOfAsset;

    /// @dev Created by the ledger's constructor, right after its forwarder.
    constructor() {
        _ledger = msg.sender;
    }

    /// @inheritdoc IDataSafeClaims
    function fileClaim(ClaimRequest calldata request, bytes calldata signature) external returns (bytes32 claimId) {
        IMembership membership = IMembership(_ledger);
        // The relayer pays gas only; it must still be a member in good standing.
        if (membership.getMember(msg.sender).status != MemberStatus.ACTIVE) revert ClaimsRelayerNotMember(msg.sender);
        if (block.timestamp > request.deadline) revert ClaimsExpired(request.deadline);
        address subject = request.subject;
        uint256 expected = _nonces[subject];
        if (request.nonce != expected) revert ClaimsInvalidNonce(subject, expected, request.nonce);
        claimId = hashClaimRequest(request);
        address recovered = _tryRecover(claimId, signature);
        // Only the subject's own signature files her claim: not the relayer's, not the department's.
        if (recovered == address(0) || recovered != subject) revert ClaimsSignerMismatch(subject, recovered);
        // Active SUBJECT members only: a suspended or departed member claims nothing.
        if (!membership.hasRoles(subject, _ROLE_SUBJECT)) revert ClaimsNotSubject(subject);
        if (!membership.hasRoles(request.department, _ROLE_ISSUER)) revert ClaimsNotDepartment(request.department);
        // A claim is for a record the department actually issues.
        if (!ISchemas(_ledger).isSchemaIssuer(request.schemaId, request.department)) {
            revert ClaimsSchemaNotIssued(request.schemaId, request.department);
        }
        if (request.referenceHash == bytes32(0)) revert ClaimsZeroReference();
        _nonces[subject] = expected + 1;
        uint64 at = uint64(block.timestamp);
        _claims[claimId] = Claim({
            subject: subject,
            status: ClaimStatus.OPEN,
            filedAt: at,
            department: request.department,
            closedAt: 0,
            reasonCode: 0,
            schemaId: request.schemaId,
            outcome: bytes32(0)
        });
        emit ClaimFiled(claimId, subject, request.department, request.schemaId, request.referenceHash, msg.sender, at);
    }

    /// @inheritdoc IDataSafeClaims
    function fulfilClaim(bytes32 claimId, bytes32 assetId) external {
        Claim storage claim = _openClaimOfCaller(claimId);
        Asset memory asset = IAssets(_ledger).getAsset(assetId);
        // The record the claim asked for: in the claimant's safe, from this department, under the claimed schema.
        if (
            asset.status != AssetStatus.ACTIVE || asset.owner != claim.subject || asset.issuer != msg.sender
                || asset.schemaId != claim.schemaId
        ) revert ClaimsAssetMismatch(claimId, assetId);
        // One issued record answers one claim: a department cannot close many claims with one old record.
        bytes32 linked = _claimOfAsset[assetId];
        if (linked != bytes32(0)) revert ClaimsAssetAlreadyLinked(assetId, linked);
        _claimOfAsset[assetId] = claimId;
        uint64 at = uint64(block.timestamp);
        claim.status = ClaimStatus.FULFILLED;
        claim.closedAt = at;
        claim.outcome = assetId;
        emit ClaimFulfilled(claimId, claim.subject, msg.sender, assetId, at);
    }

    /// @inheritdoc IDataSafeClaims
    function refuseClaim(bytes32 claimId, uint16 reasonCode, bytes32 reasonHash) external {
        Claim storage claim = _openClaimOfCaller(claimId);
        if (reasonCode == 0) revert ClaimsZeroReasonCode();
        uint64 at = uint64(block.timestamp);
        claim.status = ClaimStatus.REFUSED;
        claim.closedAt = at;
        claim.reasonCode = reasonCode;
        claim.outcome = reasonHash;
        emit ClaimRefused(claimId, claim.subject, msg.sender, reasonCode, reasonHash, at);
    }

    /// @inheritdoc IDataSafeClaims
    function getClaim(bytes32 claimId) external view returns (Claim memory) {
        return _claims[claimId];
    }

    /// @inheritdoc IDataSafeClaims
    function claimOfAsset(bytes32 assetId) external view returns (bytes32) {
        return _claimOfAsset[assetId];
    }

    /// @inheritdoc IDataSafeClaims
    function nonces(address subject) external view returns (uint256) {
        return _nonces[subject];
    }

    /// @inheritdoc IDataSafeClaims
    function ledger() external view returns (address) {
        return _ledger;
    }

    /// @inheritdoc IDataSafeClaims
    function hashClaimRequest(ClaimRequest calldata request) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                _REQUEST_TYPEHASH,
                request.subject,
                request.department,
                request.schemaId,
                request.referenceHash,
                request.nonce,
                request.deadline
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", _domainSeparator(), structHash));
    }

    /// @dev The open claim `claimId`, if the caller is its department and still an active ISSUER.
    function _openClaimOfCaller(bytes32 claimId) private view returns (Claim storage claim) {
        claim = _claims[claimId];
        ClaimStatus status = claim.status;
        if (status == ClaimStatus.NONE) revert ClaimsNotFound(claimId);
        // Only the department asked answers, never another one.
        if (claim.department != msg.sender) revert ClaimsNotClaimDepartment(claimId, msg.sender);
        if (!IMembership(_ledger).hasRoles(msg.sender, _ROLE_ISSUER)) revert ClaimsNotDepartment(msg.sender);
        if (status != ClaimStatus.OPEN) revert ClaimsNotOpen(claimId, status);
    }

    /// @dev Computed on each call rather than cached in an immutable, so the runtime code is the same everywhere.
    function _domainSeparator() private view returns (bytes32) {
        return keccak256(
            abi.encode(_DOMAIN_TYPEHASH, keccak256("DataSafeClaims"), keccak256("1"), block.chainid, address(this))
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
