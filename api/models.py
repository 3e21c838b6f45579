"""Request and response bodies, in families per resource (``GrantCreate`` / ``GrantPublic``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

Address = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{40}$")]
Bytes32 = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{64}$")]
HexBytes = Annotated[str, StringConstraints(pattern=r"^0x([0-9a-fA-F]{2})*$")]
Signature = Annotated[str, StringConstraints(pattern=r"^0x[0-9a-fA-F]{130}$")]
Base64 = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+/=_-]*$")]
Uint64 = Annotated[int, Field(ge=0, le=2**64 - 1)]
Uint32 = Annotated[int, Field(ge=0, le=2**32 - 1)]
Uint256 = Annotated[int, Field(ge=0, le=2**256 - 1)]


def _uint256_decimal(value: str) -> str:
    # 78 digits reach past 2**256 - 1: such a nonce cannot be ABI-encoded (422, not 500).
    if int(value) > 2**256 - 1:
        raise ValueError("must be at most 2**256 - 1")
    return value


#: A uint256 as a decimal string (JSON numbers lose precision past 2**53).
Uint256Decimal = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{1,78}$"),
    AfterValidator(_uint256_decimal),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TxRef(BaseModel):
    tx_hash: Bytes32
    block: int


# ---- members -----------------------------------------------------------------------------


class MemberPublic(BaseModel):
    address: Address
    roles: list[str]
    kind: str
    status: str
    key_version: int
    enc_key_hash: Bytes32
    encryption_key: str | None = Field(
        None,
        description="Current encryption public key (base64), only if its hash matches the chain",
    )
    key_proof: str | None = Field(
        None,
        description="The member's proof of possession of that key (base64); clients verify it "
        "against the chain's keyProofHash (docs/wire-format.md)",
    )
    block: int


class KeyBindingSignature(_Model):
    """The member's EIP-712 ``KeyBinding`` signature (see docs/wire-format.md)."""

    key_version: int = Field(ge=1, lt=2**32, description="The chain's keyVersion + 1")
    deadline: int = Field(ge=0, lt=2**64)
    signature: HexBytes


class MemberKeyPublish(_Model):
    """Publish the encryption public key the signer bound on chain with its own signature.

    ``public_key`` is base64 of ``vault.keys.PublicEncryptionKey.to_bytes()``; the chain's
    ``encKeyHash`` must be its ``digest()`` (SHA-256 of those bytes). ``key_proof`` is the
    proof of possession (``vault.keyproof``); the chain's ``keyProofHash`` must be its
    keccak256, and it must verify for this chain, ledger and member.

    With ``binding`` (the member's signed ``KeyBinding``) the service relays
    ``bindEncryptionKeyBySig`` as the custodian first (the member pays no gas), then
    publishes the key once it is confirmed.
    """

    public_key: Base64
    key_proof: Base64
    binding: KeyBindingSignature | None = None


class ForwardRequestBody(_Model):
    """An EIP-712 ``ForwardRequest`` (domain "DataSafeForwarder") as the citizen signed it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    sender: Address = Field(alias="from")
    to: Address
    nonce: int = Field(ge=0, lt=2**256)
    deadline: int = Field(ge=0, lt=2**64)
    data: HexBytes


class ForwardCreate(_Model):
    """A citizen's own ledger call (dispute, agent add/remove), relayed through the forwarder.

    The service pays the gas; the citizen's wallet reads the result back from the chain.
    """

    request: ForwardRequestBody
    signature: Signature


class ForwardPublic(BaseModel):
    function: str
    sender: Address
    nonce: int
    forwarder: Address
    tx_hash: Bytes32
    block: int


# ---- schemas -----------------------------------------------------------------------------


class SchemaCreate(_Model):
    schema_id: Bytes32
    name: str = Field(min_length=1, max_length=200)
    fields: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(
        min_length=1, max_length=64
    )
    raw_transaction: HexBytes | None = Field(
        None, description="The issuer's signed registerSchema transaction, relayed as-is"
    )


class SchemaPublic(BaseModel):
    schema_id: Bytes32
    issuer: Address
    name: str
    fields: list[str]
    fields_hash: Bytes32
    block: int
    tx_hash: Bytes32 | None = None


# ---- assets ------------------------------------------------------------------------------


class AssetCreate(_Model):
    """A sealed asset and the issuer's signed anchor transaction.

    ``sealed`` is base64 of ``vault.sealing.SealedAsset.to_bytes()``; the anchor's ``root`` and
    ``ciphertextDigest`` must be the sealed asset's (recomputed by the service).
    """

    sealed: Base64
    raw_transaction: HexBytes


class AssetVersionCreate(AssetCreate):
    pass


class AssetAction(_Model):
    """A member's own signed ledger transaction (dispute, resolve, retire), relayed as-is."""

    raw_transaction: HexBytes


class AssetPublic(BaseModel):
    asset_id: Bytes32
    owner: Address
    issuer: Address
    schema_id: Bytes32
    version: int
    status: str
    root: Bytes32
    ciphertext_digest: Bytes32
    previous: Bytes32 | None = None
    next: Bytes32 | None = None
    anchor: TxRef


class AssetSealed(AssetPublic):
    sealed: str = Field(description="base64")


# ---- grants ------------------------------------------------------------------------------


class GrantTerms(_Model):
    asset_id: Bytes32
    grantee: Address
    purpose: Uint32
    fields_mask: Uint64
    not_before: Uint64 = 0
    expiry: Uint64
    max_uses: Uint32 = 0
    retention: Uint32 = Field(
        default=0,
        description="seconds the grantee may keep what it read after the grant ends (0: delete "
        "at the end); signed, and acknowledged by the grantee's signed deletion",
    )


class GrantCreate(_Model):
    """A grant signed by its grantor (the owner or a live agent), plus the key package."""

    terms: GrantTerms
    grantor: Address
    nonce: Uint256Decimal = Field(description="uint256 grant nonce, decimal")
    deadline: Uint64
    signature: Signature
    key_package: Base64 = Field(
        description="base64 of vault.packages.KeyPackage.to_bytes(), bound to grant id "
        "grantIdOf(grantor, nonce), wrapped to the grantee's registered key"
    )


class AcknowledgementCreate(_Model):
    """The grantee's signed Recall- or DeletionAcknowledgement (EIP-712, docs/contracts.md)."""

    kind: Literal["recall", "deletion"]
    grant_id: Bytes32
    uses: Uint32 = Field(description="The grant's use count on chain (what the signer covers)")
    at: Uint64 = Field(description="Unix time the signer was told (recall) or deleted (deletion)")
    signature: Signature


class GrantAction(_Model):
    """A signed RevokeConsent / PauseConsent / ResumeConsent message."""

    signer: Address
    deadline: Uint64
    signature: Signature


class GrantPublic(BaseModel):
    grant_id: Bytes32
    asset_id: Bytes32
    owner: Address | None
    grantor: Address | None
    grantee: Address
    terms: GrantTerms
    terms_text: str
    fields: list[str] | None
    uses: int
    status: str
    block: int


class ConsentReceipt(BaseModel):
    grant_id: Bytes32
    action: str
    terms: GrantTerms
    terms_text: str
    grantor: Address
    owner: Address | None
    nonce: str | None = None
    deadline: int
    signature: Signature
    tx_hash: Bytes32
    block: int
    status: str


# ---- grant proposals (enterprises with an M-of-N policy) -----------------------------------


class ProposalCreate(_Model):
    """A grant a live agent of the asset's owner proposes, with its own approval."""

    terms: GrantTerms
    nonce: Uint256Decimal = Field(description="uint256 owner-side nonce, decimal")
    deadline: Uint64
    approval: Signature = Field(
        description="the proposer's EIP-712 GrantApproval(enterprise, epoch, grant) signature"
    )
    key_package: Base64 = Field(
        description="base64 key package bound to grant id grantIdOf(owner, nonce), wrapped to "
        "the grantee's registered key"
    )


class ApprovalCreate(_Model):
    """An agent's EIP-712 GrantApproval signature of a proposal."""

    signature: Signature


class ApprovalPublic(BaseModel):
    agent: Address
    signature: Signature
    counts: bool = Field(
        description="the service's reading: signed in the current epoch by a live agent (a "
        "hint; clients recover and check each signature themselves)"
    )


class ProposalPublic(BaseModel):
    proposal_id: Bytes32 = Field(description="the grant id it will have: grantIdOf(owner, nonce)")
    enterprise: Address
    asset_id: Bytes32
    proposer: Address
    terms: GrantTerms
    terms_text: str
    nonce: str
    deadline: int
    needed: int
    epoch: int
    approvals: list[ApprovalPublic]
    status: str = Field(description="pending | granted | expired")
    tx_hash: Bytes32 | None


# ---- access ------------------------------------------------------------------------------


class Verdict(BaseModel):
    grant_id: Bytes32
    grantee: Address
    fields_mask: int
    allowed: bool
    reason_code: int
    code: str
    reason: str
    block: int
    #: The time the check was judged at: the next block's timestamp (docs/api.md, Chain time).
    at: int


class AccessCreate(_Model):
    """The grantee's signed EIP-712 ``AccessRequest`` (ledger domain).

    ``fields_mask`` must be exactly the grant's fields mask (``fields_mask_mismatch``).
    """

    grant_id: Bytes32
    fields_mask: Uint64
    nonce: Uint256Decimal
    deadline: Uint64
    signature: Signature


class Anchor(BaseModel):
    asset_id: Bytes32
    root: Bytes32
    issuer: Address
    version: int
    schema_id: Bytes32
    ciphertext_digest: Bytes32
    block: int
    tx_hash: Bytes32


class AccessPublic(BaseModel):
    grant_id: Bytes32
    fields_mask: int
    fields: list[str] | None
    # Plain str on output: validating a pattern over every 64 KB answer costs more than serving it.
    disclosure: str = Field(
        description="base64 of vault.packages.Disclosure.to_bytes(): the granted fields' "
        "ciphertexts, commitments and Merkle proofs, the key package and the anchor "
        "(root, issuer, block); open with vault.packages.open_disclosure against the root "
        "read from the chain"
    )
    anchor: Anchor
    access: TxRef
    use: int


# ---- sealed accesses ------------------------------------------------------------------------


class SealAction(_Model):
    """A member's own signed transaction to the ledger's sealed-access companion (``seal`` by
    the department, ``extend`` by a regulator, ``unseal`` by whoever holds the opening),
    relayed as-is."""

    raw_transaction: HexBytes


# ---- claims (issue 17) ----------------------------------------------------------------------


class ClaimRequestBody(_Model):
    """An EIP-712 ``ClaimRequest`` (domain "DataSafeClaims") as the subject signed it."""

    subject: Address
    department: Address
    schema_id: Bytes32
    reference_hash: Bytes32
    nonce: Uint256
    deadline: Uint64


class ClaimCreate(_Model):
    """A subject's own signed claim, relayed by the custodian (no gas for her)."""

    request: ClaimRequestBody
    signature: Signature


class ClaimAnswer(_Model):
    """The department's own signed ``fulfilClaim`` / ``refuseClaim`` transaction."""

    raw_transaction: HexBytes


class SealOpeningPublic(BaseModel):
    """What a seal hid, as the chain's ``AccessUnsealed`` log revealed it."""

    institution: Address
    asset_id: Bytes32
    fields_mask: Uint64
    legal_basis_ref: Bytes32
    salt: Bytes32


class SealPublic(BaseModel):
    """A sealed access record as the chain holds it; ``opening`` once unsealed."""

    seal_id: int
    department: Address
    subject: Address
    asset_id: Bytes32
    commitment: Bytes32
    status: str
    sealed_at: int
    unseal_at: int
    unsealed_at: int
    extensions: int
    overdue: bool
    opening: SealOpeningPublic | None = None


class ClaimPublic(BaseModel):
    claim_id: Bytes32
    subject: Address
    department: Address
    schema_id: Bytes32
    reference_hash: Bytes32 | None = None
    status: str
    filed_at: int
    closed_at: int | None = None
    asset_id: Bytes32 | None = None
    reason_code: int | None = None
    reason: str | None = None
    reason_hash: Bytes32 | None = None
    tx_hash: Bytes32 | None = None
    block: int | None = None


class ClaimStats(BaseModel):
    """One department's claims, for the regulator: how many are open and how long they took."""

    department: Address
    filed: int
    open: int
    fulfilled: int
    refused: int
    oldest_open_at: int | None = None
    mean_seconds_to_close: float | None = None
    max_seconds_to_close: int | None = None
