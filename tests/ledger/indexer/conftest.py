"""The indexer tests' fixture: a freshly deployed ledger on the session's anvil."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _indexer_world import (
    CONSUMER,
    ISSUER,
    KIND_BANK,
    KIND_DEPARTMENT,
    KIND_INDIVIDUAL,
    SCHEMA_ID,
    SUBJECT,
    Ledger,
    _artifact,
)
from eth_account import Account
from eth_utils import keccak
from web3 import Web3


@pytest.fixture
def ledger(anvil_chain: Any) -> Iterator[Ledger]:
    """A freshly deployed ledger with members and a schema; chain state reverted afterwards."""
    w3 = Web3(Web3.HTTPProvider(anvil_chain.url))
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
    art = _artifact()
    accounts = w3.eth.accounts
    governor, issuer, subject = accounts[0], accounts[1], accounts[2]
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor(governor).transact({"from": governor})
    )
    contract = w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])
    bank_key = Account.from_key(keccak(text="bank"))
    led = Ledger(
        w3,
        receipt["contractAddress"],
        receipt["blockNumber"],
        contract,
        governor,
        issuer,
        subject,
        bank_key,
        anvil_chain.url,
    )
    key = keccak(text="evidence")
    led.tx(contract.functions.admitMember(issuer, ISSUER, KIND_DEPARTMENT, key), governor)
    led.tx(contract.functions.admitMember(subject, SUBJECT, KIND_INDIVIDUAL, key), governor)
    led.tx(contract.functions.admitMember(led.bank, CONSUMER, KIND_BANK, key), governor)
    led.tx(contract.functions.registerSchema(SCHEMA_ID, 4, keccak(text="fields")), issuer)
    yield led
    w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
