// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice A registered data schema: the ordered field list defines the bits of a fields mask
///         (bit i = field i, i < fieldCount).
struct Schema {
    address issuer;
    uint16 fieldCount;
    uint64 registeredAt;
    bytes32 fieldsHash;
}

/// @title ISchemas
/// @notice Data schemas registered by issuers.
interface ISchemas {
    /// @notice Emitted when a schema is registered.
    event SchemaRegistered(bytes32 indexed schemaId, address indexed issuer, uint16 fieldCount, bytes32 fieldsHash);
    /// @notice Emitted when the schema's registrant (`setBy`) lets another issuer anchor assets under it
    ///         (`authorized`) or withdraws that permission.
    event SchemaIssuerSet(bytes32 indexed schemaId, address indexed issuer, address indexed setBy, bool authorized);

    /// @notice The schema id is already registered.
    error SchemaAlreadyRegistered(bytes32 schemaId);
    /// @notice The schema id is not registered.
    error SchemaNotFound(bytes32 schemaId);
    /// @notice The field count is outside 1..MAX_FIELDS.
    error SchemaInvalidFieldCount(uint16 fieldCount);
    /// @notice The zero schema id was given.
    error SchemaZeroId();
    /// @notice The caller is not the issuer that registered the schema.
    error SchemaNotOwner(bytes32 schemaId, address caller);
    /// @notice `issuer` neither registered the schema nor was authorised by its registrant.
    error SchemaIssuerNotAuthorized(bytes32 schemaId, address issuer);

    /// @notice Registers a schema (active ISSUER).
    /// @param schemaId The schema id (e.g. keccak of the schema name and version), not zero.
    /// @param fieldCount Number of fields, 1..64.
    /// @param fieldsHash Hash of the ordered field list.
    function registerSchema(bytes32 schemaId, uint16 fieldCount, bytes32 fieldsHash) external;

    /// @notice Lets `issuer` anchor assets under `schemaId`, or withdraws that permission (the schema's registrant,
    ///         still an active ISSUER). Withdrawing does not affect assets already anchored or their new versions.
    ///         Idempotent: the event is emitted only when the permission changes.
    /// @param schemaId A registered schema.
    /// @param issuer The department.
    /// @param authorized True to authorise, false to withdraw.
    function setSchemaIssuer(bytes32 schemaId, address issuer, bool authorized) external;

    /// @notice Whether `issuer` may anchor under `schemaId`: it registered the schema or was authorised by its
    ///         registrant (roles are checked separately, at anchoring).
    /// @param schemaId The schema id.
    /// @param issuer The department.
    function isSchemaIssuer(bytes32 schemaId, address issuer) external view returns (bool);

    /// @notice The registered schema (all zero if unknown).
    /// @param schemaId The schema id.
    function getSchema(bytes32 schemaId) external view returns (Schema memory);
}
