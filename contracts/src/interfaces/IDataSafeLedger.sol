// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IMembership} from "./IMembership.sol";
import {ISchemas} from "./ISchemas.sol";
import {IAssets} from "./IAssets.sol";
import {IConsents} from "./IConsents.sol";
import {ILifecycle} from "./ILifecycle.sol";

/// @title IDataSafeLedger
/// @notice The single deployed ledger: membership, schemas, assets, consents and their lifecycle behind one address
///         and one ABI.
interface IDataSafeLedger is IMembership, ISchemas, IAssets, IConsents, ILifecycle {
    /// @notice Contract version string ("1.0.0").
    // slither-disable-next-line naming-convention -- a constant's getter, named like one (as EAS does).
    function VERSION() external view returns (string memory);
}
