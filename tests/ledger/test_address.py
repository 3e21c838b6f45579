"""ledger.address against eth-utils' own answers (still installed for the service)."""

from __future__ import annotations

import os
import random

import pytest
from eth_utils.address import is_address as eu_is_address
from eth_utils.address import to_checksum_address as eu_checksum

from ledger.address import is_address, to_checksum_address

KNOWN = [
    # EIP-55's own examples
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    "0x" + "0" * 40,
    "0x" + "f" * 40,
]


def _random_addresses(n: int) -> list[str]:
    rng = random.Random(int.from_bytes(os.urandom(8), "big"))
    return ["0x" + rng.randbytes(20).hex() for _ in range(n)]


@pytest.mark.parametrize("address", KNOWN)
def test_known_addresses_match_eth_utils(address: str) -> None:
    for spelling in (
        address,
        address.lower(),
        address.upper()[2:],
        "0X" + address[2:],
        address[2:],
    ):
        assert to_checksum_address(spelling) == eu_checksum(spelling)
        assert is_address(spelling) == eu_is_address(spelling)
    assert to_checksum_address(address.lower()) == address or address == address.lower()


def test_random_addresses_and_bytes_match_eth_utils() -> None:
    for address in _random_addresses(2000):
        assert to_checksum_address(address) == eu_checksum(address)
        raw = bytes.fromhex(address[2:])
        assert to_checksum_address(raw) == eu_checksum(raw)
        assert is_address(raw) and is_address(address)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "0x",
        "0x" + "1" * 39,
        "0x" + "1" * 41,
        "0x" + "g" * 40,
        "1" * 39,
        " 0x" + "1" * 40,
        "0x" + "1" * 40 + "\n",
        b"\x01" * 19,
        b"\x01" * 21,
        b"\x01" * 32,
        "0x" + "1" * 64,
    ],
)
def test_what_eth_utils_refuses_is_refused(bad: str | bytes) -> None:
    assert is_address(bad) is False and eu_is_address(bad) is False
    with pytest.raises(ValueError):
        eu_checksum(bad)
    with pytest.raises(ValueError):
        to_checksum_address(bad)


@pytest.mark.parametrize("bad", [None, 20, ["0x" + "1" * 40]])
def test_non_text_is_not_an_address(bad: object) -> None:
    assert is_address(bad) is False and eu_is_address(bad) is False
