// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice What kind of organisation or person a member is.
enum MemberKind {
    NONE,
    INDIVIDUAL,
    ENTERPRISE,
    BANK,
    NOTARY,
    INSURER,
    DEPARTMENT,
    REGULATOR,
    OPERATOR
}

/// @notice Whether a member may currently act.
enum MemberStatus {
    NONE,
    ACTIVE,
    SUSPENDED
}

// The purpose key of an enterprise's default grant threshold (`setApprovalThreshold`).
uint32 constant ANY_PURPOSE = type(uint32).max;

/// @notice A member of the consortium as stored on-chain.
/// @param roles Bitmap of roles (see `IMembership` role constants).
/// @param kind The member kind.
/// @param status ACTIVE or SUSPENDED (NONE: not a member).
/// @param keyVersion Version of the current encryption public key (0 until the member binds one, +1 per binding).
/// @param admittedAt Block timestamp of admission.
/// @param number Sequence number of the member (1 = first governor); grants reference their grantee by it.
/// @param encKeyHash Hash of the member's current encryption public key (the key itself is served off-chain); set
///        only by the member's own signature.
/// @param keyProofHash keccak256 of the proof of possession of that key's private half (checked off-chain).
struct Member {
    uint16 roles;
    MemberKind kind;
    MemberStatus status;
    uint32 keyVersion;
    uint64 admittedAt;
    uint32 number;
    bytes32 encKeyHash;
    bytes32 keyProofHash;
}

/// @title IMembership
/// @notice Who may transact with the ledger, with which roles, and under which encryption key.
/// @dev Roles are a bitmap: GOVERNOR=1, ISSUER=2, CONSUMER=4, REGULATOR=8, CUSTODIAN=16, SUBJECT=32,
///      REGISTRAR=64 (an issuer's right to admit subjects). There is exactly one governor, handed over in two steps.
interface IMembership {
    /// @notice Emitted when an account is admitted.
    event MemberAdmitted(
        address indexed account,
        address indexed admittedBy,
        uint16 roles,
        MemberKind kind,
        bytes32 evidenceHash,
        uint64 timestamp
    );
    /// @notice Emitted when a member's roles change.
    event MemberRolesChanged(address indexed account, address indexed changedBy, uint16 oldRoles, uint16 newRoles);
    /// @notice Emitted when a member is suspended; `authority` (GOVERNOR=1 or REGULATOR=8) is the role under which
    ///         `suspendedBy` acted, and only that authority may lift the suspension.
    event MemberSuspended(
        address indexed account, address indexed suspendedBy, uint16 authority, bytes32 reasonHash, uint64 timestamp
    );
    /// @notice Emitted when a suspended member is reinstated by the `authority` that suspended it.
    event MemberReinstated(
        address indexed account, address indexed reinstatedBy, uint16 authority, bytes32 reasonHash, uint64 timestamp
    );
    /// @notice Emitted when a member binds (or rotates to) an encryption key under its own signature.
    /// @param account The member whose key this is (the signer).
    /// @param submittedBy The sender: the member itself, or a relayer carrying the member's signature.
    /// @param keyProof The proof of possession (see docs/wire-format.md); its keccak256 is stored as keyProofHash.
    event EncryptionKeyBound(
        address indexed account,
        address indexed submittedBy,
        uint32 keyVersion,
        bytes32 encKeyHash,
        bytes32 keyProofHash,
        bytes keyProof,
        uint64 timestamp
    );
    /// @notice Emitted when an enterprise adds (or re-dates) an agent.
    event AgentAdded(address indexed enterprise, address indexed agent, uint64 expiry);
    /// @notice Emitted when an enterprise removes an agent.
    event AgentRemoved(address indexed enterprise, address indexed agent);
    /// @notice Emitted when an enterprise sets how many of its live agents must approve a grant (`purpose`
    ///         ANY_PURPOSE: every purpose; otherwise that purpose, never below the default).
    event ApprovalThresholdSet(address indexed enterprise, uint32 purpose, uint8 threshold);
    /// @notice Emitted when the governor proposes a successor.
    event GovernanceTransferStarted(address indexed governor, address indexed pendingGovernor);
    /// @notice Emitted when the successor accepts governance.
    event GovernanceTransferred(address indexed previousGovernor, address indexed newGovernor);

    /// @notice The caller is not the governor.
    error MembershipNotGovernor(address caller);
    /// @notice The caller is not the pending governor.
    error MembershipNotPendingGovernor(address caller);
    /// @notice The caller is not an active member holding any of `requiredRoles`.
    error MembershipUnauthorized(address caller, uint16 requiredRoles);
    /// @notice The zero address was given where an account is needed.
    error MembershipZeroAddress();
    /// @notice The account is already a member.
    error MembershipAlreadyMember(address account);
    /// @notice The account is not a member.
    error MembershipNotMember(address account);
    /// @notice The roles/kind combination is not allowed (see docs/contracts.md).
    error MembershipInvalidRoles(uint16 roles, MemberKind kind);
    /// @notice The member is not active (already suspended).
    error MembershipNotActive(address account);
    /// @notice The member is not suspended.
    error MembershipNotSuspended(address account);
    /// @notice The governor cannot be suspended or lose the GOVERNOR role except by handover.
    error MembershipGovernorProtected(address account);
    /// @notice The caller is not an active ENTERPRISE subject.
    error MembershipNotEnterprise(address caller);
    /// @notice The agent expiry is not in the future.
    error MembershipInvalidAgentExpiry(uint64 expiry);
    /// @notice `agent` is not an agent of `enterprise`.
    error MembershipNotAgent(address enterprise, address agent);
    /// @notice A zero encryption key hash was given.
    error MembershipZeroKeyHash();
    /// @notice `caller` does not hold `authority`, the role (GOVERNOR=1 or REGULATOR=8) that suspended `account`.
    error MembershipSuspensionAuthority(address account, uint16 authority, address caller);
    /// @notice `account` cannot become governor: it is the governor already, or it holds SUBJECT.
    error MembershipInvalidGovernor(address account);
    /// @notice An empty proof of possession was given with a key.
    error MembershipEmptyKeyProof();
    /// @notice The key binding's deadline has passed.
    error MembershipKeySignatureExpired(uint64 deadline);
    /// @notice The key binding names another version than the member's next one (a replay or a stale signature).
    error MembershipKeyVersionMismatch(address account, uint32 expected, uint32 signed);
    /// @notice The key binding is not signed by the member (`recovered` is zero for a malformed signature).
    error MembershipKeySignerMismatch(address account, address recovered);

    /// @notice Admits `account` with `roles` and `kind` (GOVERNOR only).
    /// @dev The GOVERNOR role is only obtained through the two-step handover; SUBJECT needs kind INDIVIDUAL or
    ///      ENTERPRISE and no other role; REGISTRAR needs ISSUER.
    /// @param account The new member.
    /// @param roles The role bitmap.
    ///      Admission binds no encryption key: only the member's own signature does (`bindEncryptionKey*`).
    /// @param kind The member kind (not NONE).
    /// @param evidenceHash Hash of the off-chain identity evidence.
    function admitMember(address account, uint16 roles, MemberKind kind, bytes32 evidenceHash) external;

    /// @notice Admits a data subject (roles = SUBJECT) — by the governor or an active ISSUER holding REGISTRAR.
    /// @param account The subject's account.
    /// @param kind INDIVIDUAL or ENTERPRISE.
    /// @param evidenceHash Hash of the off-chain identity evidence.
    function admitSubject(address account, MemberKind kind, bytes32 evidenceHash) external;

    /// @notice Replaces a member's roles (GOVERNOR only; the GOVERNOR bit cannot be added or removed here).
    /// @param account The member.
    /// @param roles The new role bitmap.
    function setRoles(address account, uint16 roles) external;

    /// @notice Suspends an active member (REGULATOR or GOVERNOR). The governor cannot be suspended. The suspension
    ///         records the caller's authority: GOVERNOR if the caller is the governor, else REGULATOR.
    /// @dev A suspended member cannot grant, resume, anchor or relay, and its agents are no longer live; it can still
    ///      revoke and pause its own grants (directly or by signature).
    /// @param account The member.
    /// @param reasonHash Hash of the off-chain reason.
    function suspendMember(address account, bytes32 reasonHash) external;

    /// @notice Reinstates a suspended member. Only the authority that imposed the suspension lifts it: the governor
    ///         for a GOVERNOR suspension, an active REGULATOR for a REGULATOR suspension.
    /// @param account The member.
    /// @param reasonHash Hash of the off-chain reason.
    function reinstateMember(address account, bytes32 reasonHash) external;

    /// @notice Binds (first time) or rotates the caller's own encryption key (active member); the key version
    ///         increases by one.
    /// @param keyHash Hash of the encryption public key encoding.
    /// @param keyProof The proof of possession of the private key (verified off-chain by every relying client).
    function bindEncryptionKey(bytes32 keyHash, bytes calldata keyProof) external;

    /// @notice Binds or rotates `account`'s encryption key with `account`'s EIP-712 `KeyBinding` signature, relayed
    ///         by any active member (citizens need no gas). The signed `keyVersion` must be the member's next one,
    ///         so a signature binds once and never replays.
    /// @param account The member whose key is bound (the signer; must be active).
    /// @param keyHash Hash of the encryption public key encoding.
    /// @param keyProof The proof of possession; the signature covers its keccak256.
    /// @param keyVersion The version this binding creates (current + 1).
    /// @param deadline Unix time after which the signature is void.
    /// @param signature 65-byte ECDSA signature by `account`.
    function bindEncryptionKeyBySig(
        address account,
        bytes32 keyHash,
        bytes calldata keyProof,
        uint32 keyVersion,
        uint64 deadline,
        bytes calldata signature
    ) external;

    /// @notice The EIP-712 digest an account signs to bind `keyHash` as its key version `keyVersion`.
    /// @param account The member.
    /// @param keyHash Hash of the encryption public key encoding.
    /// @param keyProofHash keccak256 of the proof of possession.
    /// @param keyVersion The version the binding creates.
    /// @param deadline Unix time after which the signature is void.
    function hashKeyBinding(address account, bytes32 keyHash, bytes32 keyProofHash, uint32 keyVersion, uint64 deadline)
        external
        view
        returns (bytes32);

    /// @notice Adds or re-dates an agent who may grant, revoke, pause, resume and dispute for the calling
    ///         enterprise until `expiry` (active ENTERPRISE subject; the agent must be an active member).
    /// @param agent The agent's account.
    /// @param expiry Unix time after which the agent is no longer live.
    function addAgent(address agent, uint64 expiry) external;

    /// @notice Removes an agent of the calling enterprise. It also advances the enterprise's approval epoch, so
    ///         every grant approval signed before (`IConsents.grantWithApprovals`) stops counting.
    /// @param agent The agent's account.
    function removeAgent(address agent) external;

    /// @notice Sets how many distinct live agents of the calling enterprise (active ENTERPRISE subject) must approve
    ///         a grant of its assets (0: none; `IConsents.grantWithApprovals`). `purpose` ANY_PURPOSE sets the
    ///         default; another purpose sets that purpose's own threshold, which only ever raises the default.
    /// @param purpose ANY_PURPOSE, or a purpose code.
    /// @param threshold The number of approvals.
    function setApprovalThreshold(uint32 purpose, uint8 threshold) external;

    /// @notice The approvals `enterprise` needs to grant for `purpose` (the greater of the default and that
    ///         purpose's own), and its approval epoch (advanced by every `removeAgent`).
    /// @param enterprise The enterprise subject.
    /// @param purpose A purpose code (ANY_PURPOSE: the default alone).
    function approvalPolicy(address enterprise, uint32 purpose) external view returns (uint8 threshold, uint32 epoch);

    /// @notice Starts the governance handover to `newGovernor` (GOVERNOR only). Refused for the governor itself
    ///         and for a SUBJECT (a subject's role stands alone).
    /// @param newGovernor The proposed governor; address(0) cancels a pending handover.
    function transferGovernance(address newGovernor) external;

    /// @notice Completes the handover (pending governor only). A non-member is admitted as GOVERNOR|CUSTODIAN
    ///         OPERATOR; a member must be active and not a SUBJECT; the previous governor keeps its other roles.
    function acceptGovernance() external;

    /// @notice The current governor.
    function governor() external view returns (address);

    /// @notice The proposed governor, or address(0).
    function pendingGovernor() external view returns (address);

    /// @notice The stored member record (all zero for a non-member).
    /// @param account The account.
    function getMember(address account) external view returns (Member memory);

    /// @notice Whether `account` is an active member holding every role in `roles`.
    /// @param account The account.
    /// @param roles A role bitmap.
    function hasRoles(address account, uint16 roles) external view returns (bool);

    /// @notice The authority (GOVERNOR=1 or REGULATOR=8) that suspended `account`; 0 if it is not suspended.
    /// @param account The account.
    function suspensionAuthority(address account) external view returns (uint16);

    /// @notice Whether `agent` is a live agent of `enterprise` (expiry in the future, agent and enterprise active).
    /// @param enterprise The enterprise subject.
    /// @param agent The agent.
    function isAgent(address enterprise, address agent) external view returns (bool);

    /// @notice ERC-2771: whether `forwarder` is the ledger's trusted forwarder. Through it, `addAgent`,
    ///         `removeAgent`, `setApprovalThreshold` and `disputeAsset` act for the request's signer; every other function ignores it. The
    ///         forwarder is the first contract the ledger's constructor creates (CREATE from the ledger, nonce 1).
    /// @param forwarder The address asked about.
    function isTrustedForwarder(address forwarder) external view returns (bool);

    /// @notice The expiry of `agent` for `enterprise` (0: none).
    /// @param enterprise The enterprise subject.
    /// @param agent The agent.
    function agentExpiry(address enterprise, address agent) external view returns (uint64);
}
