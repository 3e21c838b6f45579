// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IMembership, Member, MemberKind, MemberStatus, ANY_PURPOSE} from "./interfaces/IMembership.sol";
import {EIP712Base} from "./EIP712Base.sol";
import {DataSafeForwarder} from "./DataSafeForwarder.sol";

/// @title Membership
/// @notice Roles, kinds, suspension, member-signed encryption keys, enterprise agents and the two-step governor
///         handover.
abstract contract Membership is EIP712Base, IMembership {
    uint16 internal constant ROLE_GOVERNOR = 1;
    uint16 internal constant ROLE_ISSUER = 2;
    uint16 internal constant ROLE_CONSUMER = 4;
    uint16 internal constant ROLE_REGULATOR = 8;
    uint16 internal constant ROLE_CUSTODIAN = 16;
    uint16 internal constant ROLE_SUBJECT = 32;
    uint16 internal constant ROLE_REGISTRAR = 64;
    uint16 internal constant ALL_ROLES = 127;
    bytes32 private constant _KEY_BINDING_TYPEHASH =
        keccak256("KeyBinding(address account,bytes32 keyHash,bytes32 keyProofHash,uint32 keyVersion,uint64 deadline)");

    mapping(address account => Member member) internal _members;
    mapping(address enterprise => mapping(address agent => uint64 expiry)) internal _agentExpiry;
    mapping(uint32 number => address account) internal _memberByNumber;
    /// @dev Created by the constructor, so the ledger's runtime code (which holds this address) pins it.
    address private immutable _trustedForwarder;
    uint32 private _memberCount;
    address private _governor;
    address private _pendingGovernor;
    /// @dev Kept apart from `Member` so the member record's layout and ABI stay as they are.
    mapping(address account => uint16 authority) private _suspensionAuthority;
    /// @dev One slot per enterprise, so a grant of anyone without a per-purpose threshold reads one slot.
    struct ApprovalPolicy {
        uint8 threshold;
        bool perPurpose;
        uint32 epoch;
    }

    mapping(address enterprise => ApprovalPolicy policy) internal _approvalPolicy;
    mapping(address enterprise => mapping(uint32 purpose => uint8 threshold)) private _purposeThreshold;

    constructor(address governor_) {
        if (governor_ == address(0)) revert MembershipZeroAddress();
        _governor = governor_;
        _trustedForwarder = address(new DataSafeForwarder());
        _admit(governor_, ROLE_GOVERNOR | ROLE_CUSTODIAN, MemberKind.OPERATOR, bytes32(0));
    }

    modifier onlyGovernor() {
        if (msg.sender != _governor) revert MembershipNotGovernor(msg.sender);
        _;
    }

    /// @inheritdoc IMembership
    function admitMember(address account, uint16 roles, MemberKind kind, bytes32 evidenceHash) external onlyGovernor {
        _validateRoles(roles, kind);
        _admit(account, roles, kind, evidenceHash);
    }

    /// @inheritdoc IMembership
    function admitSubject(address account, MemberKind kind, bytes32 evidenceHash) external {
        // The governor, or an issuer that was given the registrar right.
        if (msg.sender != _governor) _requireAllRoles(msg.sender, ROLE_ISSUER | ROLE_REGISTRAR);
        _validateRoles(ROLE_SUBJECT, kind);
        _admit(account, ROLE_SUBJECT, kind, evidenceHash);
    }

    /// @inheritdoc IMembership
    function setRoles(address account, uint16 roles) external onlyGovernor {
        Member storage member = _members[account];
        if (member.status == MemberStatus.NONE) revert MembershipNotMember(account);
        if (account == _governor) {
            // The governor's GOVERNOR bit only moves through the handover.
            if (roles & ROLE_GOVERNOR == 0) revert MembershipGovernorProtected(account);
            uint16 rest = roles & ~ROLE_GOVERNOR;
            if (rest != 0) _validateRoles(rest, member.kind);
        } else {
            _validateRoles(roles, member.kind);
        }
        uint16 oldRoles = member.roles;
        member.roles = roles;
        emit MemberRolesChanged(account, msg.sender, oldRoles, roles);
    }

    /// @inheritdoc IMembership
    function suspendMember(address account, bytes32 reasonHash) external {
        _requireAnyRole(msg.sender, ROLE_REGULATOR | ROLE_GOVERNOR);
        if (account == _governor) revert MembershipGovernorProtected(account);
        Member storage member = _members[account];
        if (member.status == MemberStatus.NONE) revert MembershipNotMember(account);
        if (member.status != MemberStatus.ACTIVE) revert MembershipNotActive(account);
        // The governor acts as governor even if it also holds REGULATOR.
        uint16 authority = msg.sender == _governor ? ROLE_GOVERNOR : ROLE_REGULATOR;
        member.status = MemberStatus.SUSPENDED;
        _suspensionAuthority[account] = authority;
        emit MemberSuspended(account, msg.sender, authority, reasonHash, uint64(block.timestamp));
    }

    /// @inheritdoc IMembership
    function reinstateMember(address account, bytes32 reasonHash) external {
        Member storage member = _members[account];
        if (member.status == MemberStatus.NONE) revert MembershipNotMember(account);
        if (member.status != MemberStatus.SUSPENDED) revert MembershipNotSuspended(account);
        uint16 authority = _suspensionAuthority[account];
        // Only the authority that imposed the suspension lifts it: neither side silently undoes the other's.
        bool allowed = authority == ROLE_GOVERNOR ? msg.sender == _governor : _hasAnyRole(msg.sender, ROLE_REGULATOR);
        if (!allowed) revert MembershipSuspensionAuthority(account, authority, msg.sender);
        member.status = MemberStatus.ACTIVE;
        delete _suspensionAuthority[account];
        emit MemberReinstated(account, msg.sender, authority, reasonHash, uint64(block.timestamp));
    }

    /// @inheritdoc IMembership
    function bindEncryptionKey(bytes32 keyHash, bytes calldata keyProof) external {
        _bindKey(msg.sender, keyHash, keyProof, keccak256(keyProof));
    }

    /// @inheritdoc IMembership
    function bindEncryptionKeyBySig(
        address account,
        bytes32 keyHash,
        bytes calldata keyProof,
        uint32 keyVersion,
        uint64 deadline,
        bytes calldata signature
    ) external {
        // The relayer pays gas only; it must still be a member in good standing.
        _requireActive(msg.sender);
        if (block.timestamp > deadline) revert MembershipKeySignatureExpired(deadline);
        // The next version doubles as the nonce: a binding lands once and an older signature never replays.
        uint32 expected = _members[account].keyVersion + 1;
        if (keyVersion != expected) revert MembershipKeyVersionMismatch(account, expected, keyVersion);
        bytes32 proofHash = keccak256(keyProof);
        address recovered = _tryRecover(_hashKeyBinding(account, keyHash, proofHash, keyVersion, deadline), signature);
        // Only the member's own signature binds its key: not the governor's, not the relayer's.
        if (recovered == address(0) || recovered != account) revert MembershipKeySignerMismatch(account, recovered);
        _bindKey(account, keyHash, keyProof, proofHash);
    }

    /// @inheritdoc IMembership
    function hashKeyBinding(address account, bytes32 keyHash, bytes32 keyProofHash, uint32 keyVersion, uint64 deadline)
        external
        view
        returns (bytes32)
    {
        return _hashKeyBinding(account, keyHash, keyProofHash, keyVersion, deadline);
    }

    /// @inheritdoc IMembership
    function addAgent(address agent, uint64 expiry) external {
        address sender = _requireEnterprise();
        if (agent == address(0)) revert MembershipZeroAddress();
        // Agents transact with the ledger, so they must be active members themselves.
        MemberStatus agentStatus = _members[agent].status;
        if (agentStatus == MemberStatus.NONE) revert MembershipNotMember(agent);
        if (agentStatus != MemberStatus.ACTIVE) revert MembershipNotActive(agent);
        if (expiry <= block.timestamp) revert MembershipInvalidAgentExpiry(expiry);
        _agentExpiry[sender][agent] = expiry;
        emit AgentAdded(sender, agent, expiry);
    }

    /// @inheritdoc IMembership
    function removeAgent(address agent) external {
        address sender = _msgSender();
        if (_agentExpiry[sender][agent] == 0) revert MembershipNotAgent(sender, agent);
        delete _agentExpiry[sender][agent];
        // Approvals name the epoch they were signed in: none signed before a removal counts after it.
        ++_approvalPolicy[sender].epoch;
        emit AgentRemoved(sender, agent);
    }

    /// @inheritdoc IMembership
    function setApprovalThreshold(uint32 purpose, uint8 threshold) external {
        address sender = _requireEnterprise();
        ApprovalPolicy storage policy = _approvalPolicy[sender];
        if (purpose == ANY_PURPOSE) {
            policy.threshold = threshold;
        } else {
            _purposeThreshold[sender][purpose] = threshold;
            policy.perPurpose = true;
        }
        emit ApprovalThresholdSet(sender, purpose, threshold);
    }

    /// @inheritdoc IMembership
    function approvalPolicy(address enterprise, uint32 purpose) external view returns (uint8, uint32) {
        return (_approvalsNeeded(enterprise, purpose), _approvalPolicy[enterprise].epoch);
    }

    /// @inheritdoc IMembership
    function transferGovernance(address newGovernor) external onlyGovernor {
        // Handing over to oneself would strip the GOVERNOR bit on acceptance; a subject's role stands alone.
        if (newGovernor == msg.sender || _members[newGovernor].roles & ROLE_SUBJECT != 0) {
            revert MembershipInvalidGovernor(newGovernor);
        }
        _pendingGovernor = newGovernor;
        emit GovernanceTransferStarted(msg.sender, newGovernor);
    }

    /// @inheritdoc IMembership
    function acceptGovernance() external {
        address pending = _pendingGovernor;
        if (pending == address(0) || msg.sender != pending) revert MembershipNotPendingGovernor(msg.sender);
        address previous = _governor;
        Member storage member = _members[pending];
        if (member.status == MemberStatus.NONE) {
            _admit(pending, ROLE_GOVERNOR | ROLE_CUSTODIAN, MemberKind.OPERATOR, bytes32(0));
        } else {
            if (member.status != MemberStatus.ACTIVE) revert MembershipNotActive(pending);
            // It may have been admitted as a subject since the handover started.
            if (member.roles & ROLE_SUBJECT != 0) revert MembershipInvalidGovernor(pending);
            uint16 oldRoles = member.roles;
            member.roles = oldRoles | ROLE_GOVERNOR;
            emit MemberRolesChanged(pending, pending, oldRoles, oldRoles | ROLE_GOVERNOR);
        }
        Member storage old = _members[previous];
        uint16 previousRoles = old.roles;
        old.roles = previousRoles & ~ROLE_GOVERNOR;
        emit MemberRolesChanged(previous, pending, previousRoles, previousRoles & ~ROLE_GOVERNOR);
        _governor = pending;
        _pendingGovernor = address(0);
        emit GovernanceTransferred(previous, pending);
    }

    /// @inheritdoc IMembership
    function governor() external view returns (address) {
        return _governor;
    }

    /// @inheritdoc IMembership
    function pendingGovernor() external view returns (address) {
        return _pendingGovernor;
    }

    /// @inheritdoc IMembership
    function getMember(address account) external view returns (Member memory) {
        return _members[account];
    }

    /// @inheritdoc IMembership
    function hasRoles(address account, uint16 roles) external view returns (bool) {
        Member storage member = _members[account];
        return member.status == MemberStatus.ACTIVE && member.roles & roles == roles;
    }

    /// @inheritdoc IMembership
    function suspensionAuthority(address account) external view returns (uint16) {
        return _suspensionAuthority[account];
    }

    /// @inheritdoc IMembership
    function isAgent(address enterprise, address agent) external view returns (bool) {
        return _isLiveAgent(enterprise, agent);
    }

    /// @inheritdoc IMembership
    function isTrustedForwarder(address forwarder) external view returns (bool) {
        return forwarder == _trustedForwarder;
    }

    /// @inheritdoc IMembership
    function agentExpiry(address enterprise, address agent) external view returns (uint64) {
        return _agentExpiry[enterprise][agent];
    }

    function _admit(address account, uint16 roles, MemberKind kind, bytes32 evidenceHash) private {
        if (account == address(0)) revert MembershipZeroAddress();
        if (_members[account].status != MemberStatus.NONE) revert MembershipAlreadyMember(account);
        uint32 number = ++_memberCount;
        _memberByNumber[number] = account;
        _members[account] = Member({
            roles: roles,
            kind: kind,
            status: MemberStatus.ACTIVE,
            keyVersion: 0,
            admittedAt: uint64(block.timestamp),
            number: number,
            encKeyHash: bytes32(0),
            keyProofHash: bytes32(0)
        });
        emit MemberAdmitted(account, msg.sender, roles, kind, evidenceHash, uint64(block.timestamp));
    }

    function _bindKey(address account, bytes32 keyHash, bytes calldata keyProof, bytes32 proofHash) private {
        Member storage member = _members[account];
        if (member.status != MemberStatus.ACTIVE) revert MembershipNotActive(account);
        if (keyHash == bytes32(0)) revert MembershipZeroKeyHash();
        if (keyProof.length == 0) revert MembershipEmptyKeyProof();
        uint32 keyVersion = member.keyVersion + 1;
        member.keyVersion = keyVersion;
        member.encKeyHash = keyHash;
        member.keyProofHash = proofHash;
        emit EncryptionKeyBound(account, msg.sender, keyVersion, keyHash, proofHash, keyProof, uint64(block.timestamp));
    }

    function _hashKeyBinding(address account, bytes32 keyHash, bytes32 keyProofHash, uint32 keyVersion, uint64 deadline)
        private
        view
        returns (bytes32)
    {
        return _hashTypedData(
            keccak256(abi.encode(_KEY_BINDING_TYPEHASH, account, keyHash, keyProofHash, keyVersion, deadline))
        );
    }

    /// @dev GOVERNOR is never admitted directly; SUBJECT stands alone on an INDIVIDUAL or ENTERPRISE; REGISTRAR
    ///      needs ISSUER.
    function _validateRoles(uint16 roles, MemberKind kind) private pure {
        bool valid = roles != 0 && roles & ~ALL_ROLES == 0 && roles & ROLE_GOVERNOR == 0 && kind != MemberKind.NONE;
        if (valid && roles & ROLE_SUBJECT != 0) {
            valid = roles == ROLE_SUBJECT && (kind == MemberKind.INDIVIDUAL || kind == MemberKind.ENTERPRISE);
        }
        if (valid && roles & ROLE_REGISTRAR != 0) valid = roles & ROLE_ISSUER != 0;
        if (!valid) revert MembershipInvalidRoles(roles, kind);
    }

    /// @dev ERC-2771: a call through the trusted forwarder carries its signer in the last 20 bytes of calldata. Only
    ///      the citizen's own actions read it (dispute, agents); everything else keeps `msg.sender`.
    function _msgSender() internal view returns (address) {
        if (msg.sender == _trustedForwarder && msg.data.length >= 20) {
            return address(bytes20(msg.data[msg.data.length - 20:]));
        }
        return msg.sender;
    }

    function _requireAnyRole(address account, uint16 roles) internal view {
        if (!_hasAnyRole(account, roles)) revert MembershipUnauthorized(account, roles);
    }

    function _hasAnyRole(address account, uint16 roles) internal view returns (bool) {
        Member storage member = _members[account];
        return member.status == MemberStatus.ACTIVE && member.roles & roles != 0;
    }

    function _requireAllRoles(address account, uint16 roles) internal view {
        Member storage member = _members[account];
        if (member.status != MemberStatus.ACTIVE || member.roles & roles != roles) {
            revert MembershipUnauthorized(account, roles);
        }
    }

    function _requireActive(address account) internal view {
        if (_members[account].status != MemberStatus.ACTIVE) revert MembershipNotActive(account);
    }

    /// @dev The sender (ERC-2771) if it is an active ENTERPRISE subject.
    function _requireEnterprise() private view returns (address sender) {
        sender = _msgSender();
        Member storage enterprise = _members[sender];
        if (
            enterprise.status != MemberStatus.ACTIVE || enterprise.kind != MemberKind.ENTERPRISE
                || enterprise.roles & ROLE_SUBJECT == 0
        ) revert MembershipNotEnterprise(sender);
    }

    /// @dev The greater of the enterprise's default threshold and `purpose`'s own.
    function _approvalsNeeded(address enterprise, uint32 purpose) internal view returns (uint8 needed) {
        ApprovalPolicy storage policy = _approvalPolicy[enterprise];
        needed = policy.threshold;
        if (policy.perPurpose) {
            uint8 own = _purposeThreshold[enterprise][purpose];
            if (own > needed) needed = own;
        }
    }

    /// @dev An agent acts only while both it and its enterprise are active: suspending the enterprise stops them.
    function _isLiveAgent(address enterprise, address agent) internal view returns (bool) {
        return _agentExpiry[enterprise][agent] > block.timestamp && _members[agent].status == MemberStatus.ACTIVE
            && _members[enterprise].status == MemberStatus.ACTIVE;
    }
}
