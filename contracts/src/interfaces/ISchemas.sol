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

    /// @notice The schema id is already registered.
    error SchemaAlreadyRegistered(bytes32 schemaId);
    /// @notice The schema id is not registered.
    error SchemaNotFound(bytes32 schemaId);
    /// @notice The field count is outside 1..MAX_FIELDS.
    error SchemaInvalidFieldCount(uint16 fieldCount);
    /// @notice The zero schema id was given.
    error SchemaZeroId();

    /// @notice Registers a schema (active ISSUER).
    /// @param schemaId The schema id (e.g. keccak of the schema name and version), not zero.
    /// @param fieldCount Number of fields, 1..64.
    /// @param fieldsHash Hash of the ordered field list.
    function registerSchema(bytes32 schemaId, uint16 fieldCount, bytes32 fieldsHash) external;

    /// @notice The registered schema (all zero if unknown).
    /// @param schemaId The schema id.
    function getSchema(bytes32 schemaId) external view returns (Schema memory);
}
