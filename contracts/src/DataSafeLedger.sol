// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IDataSafeLedger} from "./interfaces/IDataSafeLedger.sol";
import {Membership} from "./Membership.sol";
import {Consents} from "./Consents.sol";
import {DataSafeSealed} from "./DataSafeSealed.sol";

/// @title DataSafeLedger
/// @notice The single deployment: membership, schemas, assets and consents (see docs/contracts.md).
contract DataSafeLedger is IDataSafeLedger, Consents {
    /// @inheritdoc IDataSafeLedger
    string public constant VERSION = "1.0.0";

    /// @param governor_ The first governor, admitted as GOVERNOR|CUSTODIAN, kind OPERATOR.
    /// @dev Companions are created after the forwarder, in the order of `ledger/companions.py`: their addresses
    ///      follow from the ledger's (CREATE nonces), so the ledger keeps none of them.
    constructor(address governor_) Membership(governor_) {
        new DataSafeSealed();
    }
}
