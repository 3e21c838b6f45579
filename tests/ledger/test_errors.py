"""Revert decoding by selector, from the generated ABI."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from ledger.abi import ledger_abi
from ledger.errors import (
    ContractRevertError,
    LedgerError,
    PanicError,
    RevertStringError,
    UnknownRevertError,
    contract_error,
    decode_revert,
)


def test_every_abi_error_has_a_named_class() -> None:
    abi = ledger_abi()
    names = [i["name"] for i in abi.abi if i["type"] == "error"]
    assert len(names) > 20
    for name in names:
        cls = contract_error(name)
        assert cls.__name__ == name
        assert issubclass(cls, ContractRevertError)
        assert issubclass(cls, LedgerError)
        # Selector derived from the ABI equals keccak(signature)[:4].
        assert abi.errors.selectors()[name] == keccak(text=cls.error_signature)[:4]


def test_decode_with_args() -> None:
    data = keccak(text="ConsentAccessRefused(bytes32,uint8)")[:4] + encode(
        ["bytes32", "uint8"], [b"\x11" * 32, 7]
    )
    err = decode_revert("0x" + data.hex())
    assert type(err) is contract_error("ConsentAccessRefused")
    assert err.args == (b"\x11" * 32, 7)
    assert err.fields == {"grantId": b"\x11" * 32, "reason": 7}
    assert err.data == data


def test_unknown_selector_and_malformed_args() -> None:
    assert type(decode_revert(b"\xde\xad\xbe\xef")) is UnknownRevertError
    assert type(decode_revert(b"")) is UnknownRevertError
    truncated = keccak(text="ConsentNotFound(bytes32)")[:4] + b"\x01"
    assert type(decode_revert(truncated)) is UnknownRevertError


def test_builtin_panic_and_string() -> None:
    panic = decode_revert(bytes.fromhex("4e487b71") + encode(["uint256"], [0x11]))
    assert isinstance(panic, PanicError)
    assert panic.fields == {"code": 0x11}
    msg = decode_revert(bytes.fromhex("08c379a0") + encode(["string"], ["nope"]))
    assert isinstance(msg, RevertStringError)
    assert msg.args == ("nope",)


def test_unknown_error_name_is_a_ledger_error() -> None:
    with pytest.raises(LedgerError, match="no error named"):
        contract_error("NoSuchError")
