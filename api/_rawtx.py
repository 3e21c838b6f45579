"""Decode a signed raw transaction that a member asks the service to relay.

Issuers (and members rotating keys) sign their own ledger transactions; the
service only broadcasts them, after checking that the transaction is the one
the request describes: sent by the request's signer, to the ledger, calling
the expected function with the expected arguments, on this chain.
"""

from __future__ import annotations

from dataclasses import dataclass

import rlp
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_hash.auto import keccak
from hexbytes import HexBytes

from api import errors
from ledger.address import to_checksum_address


@dataclass(frozen=True, slots=True)
class RawTx:
    raw: bytes
    tx_hash: str
    sender: str
    to: str | None
    data: bytes
    nonce: int
    chain_id: int | None

    @property
    def selector(self) -> bytes:
        return self.data[:4]


def decode_raw_tx(raw_hex: str) -> RawTx:
    try:
        raw = bytes.fromhex(raw_hex.removeprefix("0x"))
        sender = Account.recover_transaction(HexBytes(raw))
        if raw and raw[0] <= 0x7F:
            fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
            to_raw = fields.get("to")
            data = bytes(fields.get("data", b""))
            nonce = int(fields["nonce"])
            chain_id: int | None = int(fields["chainId"])
        else:
            items = rlp.decode(raw)
            nonce = int.from_bytes(items[0], "big")
            to_raw = items[3]
            data = bytes(items[5])
            v = int.from_bytes(items[6], "big")
            chain_id = (v - 35) // 2 if v >= 35 else None
    except Exception as exc:  # eth-account/rlp raise a zoo of types for bad input
        raise errors.InvalidRequestError(
            f"raw_transaction is not a signed transaction: {exc}"
        ) from exc
    to = to_checksum_address(bytes(to_raw)) if to_raw else None
    return RawTx(
        raw=raw,
        tx_hash="0x" + keccak(raw).hex(),
        sender=to_checksum_address(sender),
        to=to,
        data=data,
        nonce=nonce,
        chain_id=chain_id,
    )


def expect_call(
    tx: RawTx, *, signer: str, ledger: str, chain_id: int, selector: bytes, what: str
) -> None:
    """Refuse a relay whose transaction is not exactly the described call by the signer."""
    if tx.sender.lower() != signer.lower():
        raise errors.InvalidRequestError(
            f"raw_transaction is signed by {tx.sender}, not by the request signer {signer}"
        )
    if tx.chain_id is not None and tx.chain_id != chain_id:
        raise errors.InvalidRequestError(
            f"raw_transaction is for chain {tx.chain_id}, not {chain_id}"
        )
    if tx.chain_id is None:
        raise errors.InvalidRequestError("raw_transaction must be replay-protected (EIP-155)")
    if tx.to is None or tx.to.lower() != ledger.lower():
        raise errors.InvalidRequestError(f"raw_transaction is not addressed to the ledger {ledger}")
    if tx.selector != selector:
        raise errors.InvalidRequestError(f"raw_transaction does not call {what}")
