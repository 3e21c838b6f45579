// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {ISchemas, Schema} from "./interfaces/ISchemas.sol";
import {Membership} from "./Membership.sol";

/// @title Schemas
/// @notice Issuer-registered schemas; the ordered field list defines the bits of a fields mask.
abstract contract Schemas is Membership, ISchemas {
    /// @dev Fields masks are uint64.
    uint16 internal constant MAX_FIELDS = 64;

    mapping(bytes32 schemaId => Schema schema) internal _schemas;
    mapping(bytes32 schemaId => mapping(address issuer => bool authorized)) private _schemaIssuers;

    /// @inheritdoc ISchemas
    function registerSchema(bytes32 schemaId, uint16 fieldCount, bytes32 fieldsHash) external {
        _requireAnyRole(msg.sender, ROLE_ISSUER);
        if (schemaId == bytes32(0)) revert SchemaZeroId();
        if (_schemas[schemaId].issuer != address(0)) revert SchemaAlreadyRegistered(schemaId);
        if (fieldCount == 0 || fieldCount > MAX_FIELDS) revert SchemaInvalidFieldCount(fieldCount);
        _schemas[schemaId] = Schema({
            issuer: msg.sender, fieldCount: fieldCount, registeredAt: uint64(block.timestamp), fieldsHash: fieldsHash
        });
        emit SchemaRegistered(schemaId, msg.sender, fieldCount, fieldsHash);
    }

    /// @inheritdoc ISchemas
    function setSchemaIssuer(bytes32 schemaId, address issuer, bool authorized) external {
        address owner = _schemas[schemaId].issuer;
        if (owner == address(0)) revert SchemaNotFound(schemaId);
        if (owner != msg.sender) revert SchemaNotOwner(schemaId, msg.sender);
        _requireAnyRole(msg.sender, ROLE_ISSUER);
        if (_schemaIssuers[schemaId][issuer] == authorized) return;
        _schemaIssuers[schemaId][issuer] = authorized;
        emit SchemaIssuerSet(schemaId, issuer, msg.sender, authorized);
    }

    /// @inheritdoc ISchemas
    function isSchemaIssuer(bytes32 schemaId, address issuer) external view returns (bool) {
        address owner = _schemas[schemaId].issuer;
        return owner != address(0) && (issuer == owner || _schemaIssuers[schemaId][issuer]);
    }

    /// @inheritdoc ISchemas
    function getSchema(bytes32 schemaId) external view returns (Schema memory) {
        return _schemas[schemaId];
    }

    /// @dev The field count of `schemaId` if `issuer` may anchor under it (its registrant or authorised by it).
    function _schemaFieldsFor(bytes32 schemaId, address issuer) internal view returns (uint16 fieldCount) {
        Schema storage schema = _schemas[schemaId];
        fieldCount = schema.fieldCount;
        if (fieldCount == 0) revert SchemaNotFound(schemaId);
        if (schema.issuer != issuer && !_schemaIssuers[schemaId][issuer]) {
            revert SchemaIssuerNotAuthorized(schemaId, issuer);
        }
    }
}
