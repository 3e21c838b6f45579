// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IDataSafeLedger} from "./interfaces/IDataSafeLedger.sol";
import {Membership} from "./Membership.sol";
import {Consents} from "./Consents.sol";
import {DataSafeClaims} from "./DataSafeClaims.sol";
import {DataSafeSealed} from "./DataSafeSealed.sol";
import {Lifecycle} from "./Lifecycle.sol";

/// @title DataSafeLedger
/// @notice The single deployment: membership, schemas, assets, consents and their lifecycle (see docs/contracts.md).
contract DataSafeLedger is IDataSafeLedger, Lifecycle {
    /// @inheritdoc IDataSafeLedger
    string public constant VERSION = "1.0.0";

    /// @param governor_ The first governor, admitted as GOVERNOR|CUSTODIAN, kind OPERATOR.
    /// @dev The forwarder is created first (CREATE nonce 1, in Membership's constructor), then the companions in a
    ///      fixed order (nonce 2, 3 ...): clients derive their addresses and check their code (ledger/companions.py).
    constructor(address governor_) Membership(governor_) {
        new DataSafeClaims();
        new DataSafeSealed();
    }
}
