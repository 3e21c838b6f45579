"""What a client believes, and only from the chain it reads itself.

The service (API, relayer, index) is an operator's machine; everything it says
about the chain is a hint. This module holds the one copy of every check a
client (the wallet, the bank-side SDK, the demo, the tests that play a bank)
makes against its own JSON-RPC endpoint:

* :class:`PinnedDeployment` — the trust anchor: chain id, ledger address,
  genesis block hash and the ledger's runtime code hash, obtained out of band
  (a manifest file, or a fingerprint the user confirms once) and checked by
  :func:`verify_deployment` before anything else is relied on.
* :func:`verify_access_record` — an ``Accessed`` record of *this* request,
  emitted by the pinned ledger, in a successful receipt the client fetched,
  in a block of the canonical chain, with a use number the grant can have.
* :func:`confirm` and the ``expect_*`` predicates — an action (grant, revoke,
  pause, resume, dispute, key change) is done only once the chain shows it.
* :func:`verified_field_names` / :func:`check_disclosed_indices` — mask bits
  name fields by the list whose hash the schema anchored, and disclosed Merkle
  leaves sit exactly at the grant's mask bits.
* :func:`audit_upper_bound` — the chain head, not the service's index, ends
  an audit; an index behind the head is drift.

Nothing here imports ``api`` or ``wallet_cli``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from eth_hash.auto import keccak

from ledger import chaintime
from ledger._pin import (
    PIN_FACTS,
    DeploymentMismatchError,
    NotConfirmedError,
    NotPinnedError,
    PinnedDeployment,
    ServiceContradictedError,
    TrustError,
    check_hint,
    fingerprint_of,
    genesis_hash,
    normalise_fingerprint,
    pin_from_fingerprint,
    read_deployment,
    verify_deployment,
)
from ledger.abi import LedgerAbi, ledger_abi
from ledger.address import to_checksum_address
from ledger.calls import LedgerCalls, Read
from ledger.eip712 import abi_encode
from ledger.errors import ContractRevertError, LedgerError, RpcResponseError
from ledger.models import Asset, AssetStatus, Event, Grant, GrantStatus, Member, Schema
from ledger.rpc import RpcClient
from ledger.uses import UseMemo, use_of

T = TypeVar("T")


# ---- reads of the pinned ledger ----------------------------------------------------------


def read(rpc: RpcClient, pin: PinnedDeployment, r: Read[T], block: str = "latest") -> T:
    raw = rpc.call("eth_call", [{"to": pin.ledger_address, "data": "0x" + r.data.hex()}, block])
    return r.decode(bytes.fromhex(str(raw)[2:]))


def read_at_next_block(
    rpc: RpcClient, ledger_address: str, r: Read[T], overrides: bool | None = None
) -> tuple[T, int, bool]:
    """``r`` on the latest state at the next block's time: (value, judged time, overrides).

    The one copy of the service's rule (``ledger.chaintime``, docs/api.md "Chain time"): on
    an idle chain the latest block's time stands still and the record would be made later,
    so a grant's window is judged at the next block. A node without ``eth_call`` block
    overrides is asked at the latest block (and its time is returned). Pass the returned
    ``overrides`` back in to skip the probe next time.
    """
    # latest, pending and (first time) the overrides probe in one round trip
    calls: list[tuple[str, list[Any]]] = [
        ("eth_getBlockByNumber", ["latest", False]),
        ("eth_getBlockByNumber", ["pending", False]),
    ]
    if overrides is None:
        calls.append(("eth_call", chaintime.probe_params()))
    latest, pending, *probe = rpc.batch(calls)
    if isinstance(latest, Exception):
        raise latest
    block, stamp = int(latest["number"], 16), int(latest["timestamp"], 16)
    if isinstance(pending, Exception) and not isinstance(pending, RpcResponseError):
        raise pending
    at, _ = chaintime.next_block_time(
        block,
        stamp,
        str(latest["hash"]),
        pending if isinstance(pending, dict) else None,
        time.time(),
    )
    if overrides is None:
        answer = probe[0]
        if isinstance(answer, Exception) and not isinstance(
            answer, RpcResponseError | ContractRevertError
        ):
            raise answer
        overrides = not isinstance(answer, Exception) and chaintime.probe_answered(answer)
    if not overrides:
        raw = rpc.call(
            "eth_call", [{"to": ledger_address, "data": "0x" + r.data.hex()}, hex(block)]
        )
        return r.decode(bytes.fromhex(str(raw)[2:])), stamp, False
    raw = rpc.call("eth_call", chaintime.call_at_params(ledger_address, r.data, block, at))
    return r.decode(bytes.fromhex(str(raw)[2:])), at, True


def _calls() -> LedgerCalls:
    return LedgerCalls(ledger_abi())


def get_grant(rpc: RpcClient, pin: PinnedDeployment, grant_id: bytes) -> Grant:
    return read(rpc, pin, _calls().get_grant(grant_id))


def get_asset(rpc: RpcClient, pin: PinnedDeployment, asset_id: bytes) -> Asset:
    return read(rpc, pin, _calls().get_asset(asset_id))


def get_member(rpc: RpcClient, pin: PinnedDeployment, account: str) -> Member:
    return read(rpc, pin, _calls().get_member(account))


def get_schema(rpc: RpcClient, pin: PinnedDeployment, schema_id: bytes) -> Schema:
    return read(rpc, pin, _calls().get_schema(schema_id))


def chain_head(rpc: RpcClient) -> int:
    return int(rpc.call("eth_blockNumber"), 16)


# ---- access records ---------------------------------------------------------------------


@dataclass(frozen=True)
class AccessRecord:
    """An ``Accessed`` event the client found and checked itself."""

    tx_hash: str
    block_number: int
    block_hash: str
    log_index: int
    use: int
    custodian: str


def _receipt(rpc: RpcClient, tx_hash: str) -> dict[str, Any]:
    receipt = rpc.call("eth_getTransactionReceipt", [tx_hash])
    if not receipt:
        raise ServiceContradictedError(
            f"the access transaction {tx_hash} the service named is not on the chain",
            code="access_not_recorded",
        )
    if int(receipt["status"], 16) != 1:
        raise ServiceContradictedError(
            f"the access transaction {tx_hash} failed on chain (status 0)",
            code="access_not_recorded",
        )
    block = rpc.call("eth_getBlockByNumber", [receipt["blockNumber"], False])
    if not block or str(block["hash"]).lower() != str(receipt["blockHash"]).lower():
        raise ServiceContradictedError(
            f"the access transaction {tx_hash} is not in a block of the chain you read",
            code="access_not_recorded",
        )
    out: dict[str, Any] = receipt
    return out


#: This process's counts of unlimited grants' records (:class:`ledger.uses.UseMemo`): a bank
#: checking its pulls one after another reads each grant's new blocks only.
_USE_MEMO = UseMemo()


def _checked_use(
    rpc: RpcClient,
    pin: PinnedDeployment,
    grant_id: bytes,
    grantee: str,
    event: Event,
    claimed_use: int | None,
) -> int:
    """The record's use number, counted (the event carries none: the grant's n-th Accessed
    event is its use n), checked against the grant on chain and the service's claim."""
    at = (event.block_number, event.log_index)
    grant = get_grant(rpc, pin, grant_id)
    # A limited grant's counter at the record's block spares reading its whole history.
    counted = None
    if grant.max_uses:
        counted = read(rpc, pin, _calls().get_grant(grant_id), hex(at[0])).uses
    use = use_of(
        rpc,
        pin.ledger_address,
        grant_id,
        pin.deploy_block,
        *at,
        counted=counted,
        block_hash=event.block_hash,
        memo=_USE_MEMO,
    )
    if grant.grantee.lower() != grantee.lower():
        raise ServiceContradictedError(
            "the grant on chain is made to someone else", code="not_grantee"
        )
    # The chain counts only limited grants (an unlimited grant's counter is 1 once it was used).
    limited_ok = use <= grant.uses <= grant.max_uses if grant.max_uses else grant.uses == 1
    if use < 1 or not limited_ok:
        raise ServiceContradictedError(
            f"the access record says use {use} but the grant on chain has {grant.uses} use(s) "
            f"of {grant.max_uses or 'unlimited'}",
            code="access_use_inconsistent",
        )
    if claimed_use is not None and int(claimed_use) != use:
        raise ServiceContradictedError(
            f"the service reports use {claimed_use}, the chain's record says use {use}",
            code="access_use_inconsistent",
        )
    return use


def verify_access_record(
    rpc: RpcClient,
    pin: PinnedDeployment,
    *,
    tx_hash: str,
    grant_id: bytes,
    grantee: str,
    nonce: int,
    fields_mask: int,
    claimed_use: int | None = None,
    abi: LedgerAbi | None = None,
) -> AccessRecord:
    """The one check of an access record; raises :class:`ServiceContradictedError`.

    The receipt is fetched here (status 1, its block canonical), the ``Accessed`` log must
    be emitted by the pinned ledger address and carry this request's grant id, nonce and
    fields mask, and the grant on chain must be made to ``grantee`` (the event names no
    grantee: the contract records an access only under the grant's own). Its use number is
    its position among the grant's ``Accessed`` events (:mod:`ledger.uses`); for a limited
    grant it must be within the grant's counted uses and max uses. ``claimed_use`` (what the
    service reported) must agree.
    """
    abi = abi or ledger_abi()
    receipt = _receipt(rpc, tx_hash)
    topic0 = "0x" + abi.events_by_name["Accessed"].topic0.hex()
    foreign = 0
    matches: list[Event] = []
    for log in receipt.get("logs", []):
        topics = log.get("topics") or []
        if not topics or str(topics[0]).lower() != topic0:
            continue
        if str(log.get("address", "")).lower() != pin.ledger_address.lower():
            foreign += 1
            continue
        event = abi.decode_log(log)
        if event is None:
            continue
        a = event.args
        # The event names no grantee: only the grant's own is recorded, and _checked_use
        # checks on chain that the grant is made to ``grantee``.
        if (
            a["grantId"] == grant_id
            and int(a["nonce"]) == int(nonce)
            and int(a["fieldsMask"]) == int(fields_mask)
        ):
            matches.append(event)
    if not matches:
        if foreign:
            raise ServiceContradictedError(
                f"the access record in {tx_hash} was emitted by another contract, not the "
                f"pinned ledger {pin.ledger_address}",
                code="access_record_forged",
            )
        raise ServiceContradictedError(
            f"transaction {tx_hash} holds no access record of this request (grant, nonce and "
            "fields)",
            code="access_not_recorded",
        )
    event = matches[0]
    use = _checked_use(rpc, pin, grant_id, grantee, event, claimed_use)
    return AccessRecord(
        tx_hash,
        event.block_number,
        event.block_hash,
        event.log_index,
        use,
        # The custodian is the access transaction's sender.
        to_checksum_address(str(receipt["from"])),
    )


# ---- a grant row, a schema's field names, disclosed leaves -------------------------------


def fields_hash(names: Sequence[str]) -> bytes:
    return keccak(abi_encode(["string[]"], [list(names)]))


def verified_field_names(
    rpc: RpcClient, pin: PinnedDeployment, schema_id: bytes, served: Sequence[str]
) -> list[str]:
    """The served field list, accepted only when its hash is the schema's hash on chain."""
    schema = get_schema(rpc, pin, schema_id)
    if schema.field_count == 0 and schema.fields_hash == bytes(32):
        raise ServiceContradictedError(
            f"schema 0x{schema_id.hex()} is not registered on chain", code="schema_not_on_chain"
        )
    if fields_hash(served) != schema.fields_hash or len(served) != schema.field_count:
        raise ServiceContradictedError(
            "the service's field names for schema "
            f"0x{schema_id.hex()} do not hash to the field list anchored on chain",
            code="schema_fields_relabelled",
        )
    return list(served)


def names_for_mask(names: Sequence[str], mask: int) -> list[str]:
    if mask >> len(names):
        raise ServiceContradictedError(
            f"fields mask {mask:#x} has bits beyond the schema's {len(names)} fields",
            code="grant_row_mismatch",
        )
    return [n for i, n in enumerate(names) if mask >> i & 1]


def check_grant_row(grant: Grant, row: dict[str, Any], grant_id: bytes) -> None:
    """The service's grant row against the grant on chain (terms the client relies on)."""
    if not grant.exists:
        raise ServiceContradictedError(
            f"grant 0x{grant_id.hex()} is not on chain", code="grant_not_on_chain"
        )
    terms = row.get("terms") or {}
    served = {
        "asset": str(terms.get("asset_id", "")).lower(),
        "grantee": str(terms.get("grantee", "")).lower(),
        "fields mask": int(terms.get("fields_mask", -1)),
        "purpose": int(terms.get("purpose", -1)),
        "not before": int(terms.get("not_before", -1)),
        "expiry": int(terms.get("expiry", -1)),
        "max uses": int(terms.get("max_uses", -1)),
        "retention": int(terms.get("retention", -1)),
    }
    chain = {
        "asset": "0x" + grant.asset_id.hex(),
        "grantee": grant.grantee.lower(),
        "fields mask": grant.fields_mask,
        "purpose": grant.purpose,
        "not before": grant.not_before,
        "expiry": grant.expiry,
        "max uses": grant.max_uses,
        "retention": grant.retention,
    }
    wrong = [k for k in chain if served[k] != chain[k]]
    if wrong:
        raise ServiceContradictedError(
            "the service's grant row differs from the grant on chain in "
            + ", ".join(f"{k} (served {served[k]}, chain {chain[k]})" for k in wrong),
            code="grant_row_mismatch",
        )


def check_disclosed_indices(
    names: Sequence[str], mask: int, disclosed: Sequence[tuple[int, str]], leaf_count: int
) -> None:
    """Each disclosed (leaf index, name) sits at a bit of the on-chain mask, under its name."""
    if leaf_count != len(names):
        raise ServiceContradictedError(
            f"the disclosure's tree has {leaf_count} leaves, the schema {len(names)} fields",
            code="disclosure_mismatch",
        )
    indices = sorted(i for i, _ in disclosed)
    wanted = [i for i in range(len(names)) if mask >> i & 1]
    if indices != wanted:
        raise ServiceContradictedError(
            f"the disclosure holds leaves {indices}, the grant on chain allows {wanted}",
            code="disclosure_mismatch",
        )
    for index, name in disclosed:
        if names[index] != name:
            raise ServiceContradictedError(
                f"leaf {index} is named {name!r}, the schema on chain names it {names[index]!r}",
                code="disclosure_mismatch",
            )


# ---- actions reported as done -----------------------------------------------------------


def confirm(
    probe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    what: str,
    timeout: float = 30.0,
    interval: float = 0.25,
) -> T:
    """Poll the chain until ``done(probe())``; :class:`NotConfirmedError` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() >= deadline:
            raise NotConfirmedError(f"the chain does not show {what}")
        time.sleep(interval)


def confirm_grant(
    rpc: RpcClient,
    pin: PinnedDeployment,
    grant_id: bytes,
    status: GrantStatus,
    *,
    what: str,
    timeout: float = 30.0,
) -> Grant:
    return confirm(
        lambda: get_grant(rpc, pin, grant_id),
        lambda g: g.status == status,
        what=what,
        timeout=timeout,
    )


def confirm_asset_status(
    rpc: RpcClient,
    pin: PinnedDeployment,
    asset_id: bytes,
    status: AssetStatus,
    *,
    what: str,
    timeout: float = 30.0,
) -> Asset:
    return confirm(
        lambda: get_asset(rpc, pin, asset_id),
        lambda a: a.status == status,
        what=what,
        timeout=timeout,
    )


def confirm_key(
    rpc: RpcClient,
    pin: PinnedDeployment,
    member: str,
    key_hash: bytes,
    *,
    what: str,
    timeout: float = 30.0,
) -> Member:
    return confirm(
        lambda: get_member(rpc, pin, member),
        lambda m: m.enc_key_hash == key_hash,
        what=what,
        timeout=timeout,
    )


def check_receipt(rpc: RpcClient, pin: PinnedDeployment, tx_hash: str) -> dict[str, Any] | None:
    """The client's own copy of a receipt the service reported; None when it is unknown."""
    try:
        receipt = rpc.call("eth_getTransactionReceipt", [tx_hash])
    except LedgerError:
        return None
    if not receipt:
        return None
    ok = int(receipt["status"], 16) == 1 and str(receipt.get("to") or "").lower() == (
        pin.ledger_address.lower()
    )
    out: dict[str, Any] = dict(receipt) | {"ok": ok}
    return out


# ---- audit range ------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRange:
    first: int
    last: int
    head: int
    indexed_to: int | None

    @property
    def index_behind(self) -> int:
        """How many blocks the service's index lags the head the client read (0: none)."""
        if self.indexed_to is None:
            return self.head - self.first + 1
        return max(0, self.head - self.indexed_to)


def audit_upper_bound(
    rpc: RpcClient, first: int, to_block: int | None, indexed_to: int | None
) -> AuditRange:
    """``to_block`` if given, else the chain head this client reads (never the index)."""
    head = chain_head(rpc)
    return AuditRange(first, head if to_block is None else to_block, head, indexed_to)


def dumps(pin: PinnedDeployment) -> str:
    return json.dumps(pin.to_json(), indent=2, sort_keys=True)


__all__ = [
    "PIN_FACTS",
    "AccessRecord",
    "AuditRange",
    "DeploymentMismatchError",
    "NotConfirmedError",
    "NotPinnedError",
    "PinnedDeployment",
    "ServiceContradictedError",
    "TrustError",
    "audit_upper_bound",
    "chain_head",
    "check_disclosed_indices",
    "check_grant_row",
    "check_hint",
    "check_receipt",
    "confirm",
    "confirm_asset_status",
    "confirm_grant",
    "confirm_key",
    "fields_hash",
    "fingerprint_of",
    "genesis_hash",
    "get_asset",
    "get_grant",
    "get_member",
    "get_schema",
    "names_for_mask",
    "normalise_fingerprint",
    "pin_from_fingerprint",
    "read_deployment",
    "verified_field_names",
    "verify_access_record",
    "verify_deployment",
]
