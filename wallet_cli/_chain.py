"""What the wallet reads from and signs for the chain directly (given ``--rpc``).

Members' own ledger calls (dispute, agents) are signed here as ERC-2771 forward
requests the service relays without the citizen paying gas (:func:`forward`), or as
transactions sent to the RPC node by those who choose to pay.
History and audit trails are decoded from the ledger's events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ledger.abi import LedgerAbi, ledger_abi
from ledger.address import to_checksum_address
from ledger.errors import default_registry
from ledger.models import Event
from ledger.rpc import RpcClient
from ledger.rpc import tx_senders as rpc_tx_senders
from wallet_cli.errors import RefusedError


def rpc_client(url: str) -> RpcClient:
    # The ledger's errors and its companions' (claims ...): every revert decodes by name.
    return RpcClient(url, timeout=15.0, retries=1, errors=default_registry())


def sign_ledger_tx(rpc_url: str, key: bytes, ledger: str, fn: str, *args: Any) -> str:
    """A signed (not sent) ledger transaction; a call the contract would refuse fails here."""
    abi: LedgerAbi = ledger_abi()
    return sign_call(rpc_url, key, ledger, abi.fn(fn).encode(*args))


def sign_call(rpc_url: str, key: bytes, to: str, data: bytes) -> str:
    """A signed (not sent) transaction calling ``to`` (the ledger, or its forwarder)."""
    # eth-account (and py_ecc behind it) only for the rare command that pays its own gas.
    from eth_account import Account

    sender = Account.from_key(key).address
    with rpc_client(rpc_url) as rpc:
        call = {"from": sender, "to": to_checksum_address(to), "data": "0x" + data.hex()}
        gas = int(int(rpc.call("eth_estimateGas", [call]), 16) * 1.3)
        price = int(rpc.call("eth_gasPrice"), 16)
        tx = {
            "type": 2,
            "chainId": int(rpc.call("eth_chainId"), 16),
            "nonce": int(rpc.call("eth_getTransactionCount", [sender, "pending"]), 16),
            "to": to_checksum_address(to),
            "data": "0x" + data.hex(),
            "value": 0,
            "gas": gas,
            "maxFeePerGas": price * 2 + min(price, 10**9),
            "maxPriorityFeePerGas": min(price, 10**9),
        }
    return "0x" + bytes(Account.sign_transaction(tx, key).raw_transaction).hex()


def send_ledger_tx(
    rpc_url: str, key: bytes, ledger: str, fn: str, *args: Any, timeout: float = 60.0
) -> dict[str, Any]:
    """Sign, send and wait for the receipt; a revert is a :class:`RefusedError`."""
    return send_raw(rpc_url, sign_ledger_tx(rpc_url, key, ledger, fn, *args), fn, timeout)


def send_raw(rpc_url: str, raw: str, what: str, timeout: float = 60.0) -> dict[str, Any]:
    import time

    with rpc_client(rpc_url) as rpc:
        tx_hash = rpc.call("eth_sendRawTransaction", [raw])
        deadline = time.monotonic() + timeout
        while True:
            receipt = rpc.call("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                break
            if time.monotonic() > deadline:
                raise RefusedError(f"{what}: no receipt for {tx_hash} after {timeout:.0f}s")
            time.sleep(0.1)
    if int(receipt["status"], 16) != 1:
        raise RefusedError(f"{what} reverted in transaction {tx_hash}", code="contract_rejected")
    return {"tx_hash": tx_hash, "block": int(receipt["blockNumber"], 16)}


#: How long a signed forward request stays valid (the service relays it at once).
FORWARD_TTL = 600


def forward(c: Any, rpc_url: str, key: bytes, ledger: str, fn: str, *args: Any) -> dict[str, Any]:
    """Sign ``fn(*args)`` as a forward request and have the service relay it (no gas).

    The forwarder, its code and the signer's nonce are read from the wallet's own RPC;
    the caller still confirms the effect on chain: the service's answer proves nothing.
    """
    from ledger import forwarder as fwd
    from wallet_cli._keystore import address_of

    data = ledger_abi().fn(fn).encode(*args)
    sender = address_of(key)
    with rpc_client(rpc_url) as rpc:
        try:
            forwarder = fwd.read_forwarder(rpc, ledger)
        except fwd.ForwarderError as exc:
            raise RefusedError(str(exc), code=exc.code) from None
        nonce = fwd.read_nonce(rpc, forwarder, sender)
        chain_id = int(rpc.call("eth_chainId"), 16)
        head = rpc.call("eth_getBlockByNumber", ["latest", False])
    deadline = int(head["timestamp"], 16) + FORWARD_TTL
    request = fwd.ForwardRequest(sender, ledger, nonce, deadline, data)
    signature = fwd.sign_request(key, chain_id, forwarder, request)
    body = {"request": request.to_json(), "signature": "0x" + signature.hex()}
    out: dict[str, Any] = c.post("/v1/forward", body)
    return out


def _topic_addr(address: str) -> str:
    return "0x" + "00" * 12 + address.lower().removeprefix("0x")


#: Blocks per ``eth_getLogs`` request: public nodes cap the range, and a bar needs steps.
LOG_SPAN = 5000


def get_events(
    rpc_url: str,
    ledger: str,
    names: Iterable[str],
    *,
    from_block: int = 0,
    to_block: int | str = "latest",
    topics: list[Any] | None = None,
    on_blocks: Callable[[int, int], None] | None = None,
) -> list[Event]:
    """Decoded ledger events of the given names, in chain order.

    Read in spans of :data:`LOG_SPAN` blocks up to ``to_block`` ("latest" is the head when
    the read starts); ``on_blocks(done, total)`` hears of each span (a progress bar).
    """
    abi = ledger_abi()
    wanted = ["0x" + abi.events_by_name[n].topic0.hex() for n in names]
    base: dict[str, Any] = {
        "address": to_checksum_address(ledger),
        "topics": [wanted, *(topics or [])],
    }
    logs: list[dict[str, Any]] = []
    with rpc_client(rpc_url) as rpc:
        last = int(rpc.call("eth_blockNumber"), 16) if isinstance(to_block, str) else to_block
        total = max(0, last - from_block + 1)
        if on_blocks is not None:
            on_blocks(0, total)
        for lo in range(from_block, last + 1, LOG_SPAN):
            hi = min(last, lo + LOG_SPAN - 1)
            logs += rpc.call("eth_getLogs", [base | {"fromBlock": hex(lo), "toBlock": hex(hi)}])
            if on_blocks is not None:
                on_blocks(hi - from_block + 1, total)
    events = [e for e in (abi.decode_log(log) for log in logs) if e is not None]
    return sorted(events, key=lambda e: (e.block_number, e.log_index))


def block_times(rpc_url: str, blocks: Iterable[int]) -> dict[int, int]:
    wanted = sorted(set(blocks))
    if not wanted:
        return {}
    with rpc_client(rpc_url) as rpc:
        replies = rpc.batch([("eth_getBlockByNumber", [hex(b), False]) for b in wanted])
    out: dict[int, int] = {}
    for b, r in zip(wanted, replies, strict=True):
        if isinstance(r, Exception):
            raise r
        out[b] = int(r["timestamp"], 16)
    return out


def tx_senders(rpc_url: str, tx_hashes: Iterable[str]) -> dict[str, str]:
    """Senders of transactions by lowercase hash (``ledger.rpc.tx_senders``)."""
    with rpc_client(rpc_url) as rpc:
        return rpc_tx_senders(rpc, list(tx_hashes))


def block_number(rpc_url: str) -> int:
    with rpc_client(rpc_url) as rpc:
        return int(rpc.call("eth_blockNumber"), 16)


__all__ = [
    "block_number",
    "block_times",
    "forward",
    "get_events",
    "rpc_client",
    "send_ledger_tx",
    "send_raw",
    "sign_call",
    "sign_ledger_tx",
    "topic_addr",
    "tx_senders",
]

topic_addr = _topic_addr
