"""Who pays for and signs transactions: a local key, or an account the node holds.

Private to :mod:`ledger.tx`, which re-exports these names.
"""

from __future__ import annotations

from typing import Any, Protocol

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger.address import to_checksum_address
from ledger.errors import ConfigurationError
from ledger.rpc import AsyncRpcClient


class Sender(Protocol):
    """Who pays for and signs transactions."""

    @property
    def address(self) -> str: ...

    async def send(self, rpc: AsyncRpcClient, tx: dict[str, Any]) -> tuple[str, bytes | None]:
        """Hand ``tx`` (nonce set) to the node; returns (hash, raw signed bytes or None)."""
        ...

    def sign(self, tx: dict[str, Any]) -> tuple[str, bytes | None]:
        """Sign locally when possible: (hash, raw). Node accounts return ("", None)."""
        ...


class LocalKeySender:
    """Signs with a local private key (eth-account) and sends the raw transaction."""

    def __init__(self, account: LocalAccount) -> None:
        self._account = account

    @classmethod
    def from_key(cls, private_key: str | bytes) -> LocalKeySender:
        try:
            return cls(Account.from_key(private_key))
        except Exception as exc:
            raise ConfigurationError(f"invalid private key: {type(exc).__name__}") from exc

    @classmethod
    def from_keystore(cls, path: str, password: str) -> LocalKeySender:
        import json

        try:
            with open(path) as fh:
                key = Account.decrypt(json.load(fh), password)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot open keystore {path}: {exc}") from exc
        return cls(Account.from_key(key))

    @property
    def address(self) -> str:
        return str(self._account.address)

    @property
    def account(self) -> LocalAccount:
        return self._account

    def sign(self, tx: dict[str, Any]) -> tuple[str, bytes | None]:
        signed = self._account.sign_transaction(tx)
        return "0x" + bytes(signed.hash).hex(), bytes(signed.raw_transaction)

    async def send(self, rpc: AsyncRpcClient, tx: dict[str, Any]) -> tuple[str, bytes | None]:
        tx_hash, raw = self.sign(tx)
        assert raw is not None
        await rpc.call("eth_sendRawTransaction", ["0x" + raw.hex()])
        return tx_hash, raw


class NodeAccountSender:
    """An account unlocked in the node (``eth_sendTransaction``); nonces still managed here."""

    def __init__(self, address: str) -> None:
        self._address = to_checksum_address(address)

    @property
    def address(self) -> str:
        return self._address

    def sign(self, tx: dict[str, Any]) -> tuple[str, bytes | None]:
        return "", None

    async def send(self, rpc: AsyncRpcClient, tx: dict[str, Any]) -> tuple[str, bytes | None]:
        payload = {
            k: (hex(v) if isinstance(v, int) else v) for k, v in tx.items() if k != "chainId"
        }
        payload["from"] = self._address
        tx_hash = await rpc.call("eth_sendTransaction", [payload])
        return str(tx_hash), None
