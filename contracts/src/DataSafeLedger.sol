// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IDataSafeLedger} from "./interfaces/IDataSafeLedger.sol";
import {Membership} from "./Membership.sol";
import {Lifecycle} from "./Lifecycle.sol";

/// @title DataSafeLedger
/// @notice The single deployment: membership, schemas, assets, consents and their lifecycle (see docs/contracts.md).
contract DataSafeLedger is IDataSafeLedger, Lifecycle {
    /// @inheritdoc IDataSafeLedger
    string public constant VERSION = "1.0.0";

    /// @param governor_ The first governor, admitted as GOVERNOR|CUSTODIAN, kind OPERATOR.
    constructor(address governor_) Membership(governor_) {}
}
