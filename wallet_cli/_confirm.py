"""An action is reported done only when the chain the wallet reads shows it.

The service relays signed messages and raw transactions; its receipt is a claim.
Each command names what the chain must show, waits up to ``DATASAFE_CONFIRM_TIMEOUT``
seconds for it and otherwise ends with :class:`~wallet_cli.errors.NotConfirmedError`
(exit 7) and the way to send the signed message without that service.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from ledger import trust
from ledger.trust import PinnedDeployment
from wallet_cli._chain import rpc_client
from wallet_cli._context import State
from wallet_cli.errors import NotConfirmedError, RefusedError

T = TypeVar("T")


def on_chain(
    st: State,
    rpc: str,
    probe: Callable[[Any, PinnedDeployment], T],
    done: Callable[[T], bool],
    *,
    what: str,
    claimed_tx: str | None,
    offer: str,
) -> T:
    """``probe`` read through the wallet's own RPC until ``done``; else exit 7 with ``offer``."""
    pin = st._pin
    if pin is None:
        raise RefusedError("no pinned deployment to confirm against", code="deployment_not_pinned")
    with rpc_client(rpc) as r:
        try:
            return trust.confirm(
                lambda: probe(r, pin),
                done,
                what=what,
                timeout=st.settings.confirm_timeout,
            )
        except trust.NotConfirmedError:
            seen = trust.check_receipt(r, pin, claimed_tx) if claimed_tx else None
        tx_words = (
            f"its transaction {claimed_tx} is not on the chain you read"
            if claimed_tx and seen is None
            else f"its transaction {claimed_tx} did not apply it"
            if claimed_tx
            else "it named no transaction"
        )
    raise NotConfirmedError(
        f"the service reported {what}, but the chain does not show it ({tx_words}): nothing is "
        f"done. {offer}",
        code="not_confirmed",
    )


def despite_index_lag(timeout: float, attempt: Callable[[], T]) -> T:
    """``attempt()``, again while it finds a difference with the chain
    (:class:`~ledger.trust.ServiceContradictedError`), for up to ``timeout`` seconds.

    A service answers listings from its index, which follows the chain a few blocks behind:
    a difference is asked again until the timeout; one that stays is a lie (exit 6).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except trust.ServiceContradictedError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.3)


def send_raw(rpc: str, raw: str, timeout: float = 60.0) -> dict[str, Any]:
    """Broadcast a transaction the wallet signed, through its own RPC; wait for the receipt."""
    with rpc_client(rpc) as r:
        tx_hash = str(r.call("eth_sendRawTransaction", [raw]))
        deadline = time.monotonic() + timeout
        while True:
            receipt = r.call("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                break
            if time.monotonic() > deadline:
                raise RefusedError(f"no receipt for {tx_hash} after {timeout:.0f}s")
            time.sleep(0.1)
    if int(receipt["status"], 16) != 1:
        raise RefusedError(f"transaction {tx_hash} reverted", code="contract_rejected")
    return {"tx_hash": tx_hash, "block": int(receipt["blockNumber"], 16)}
