"""Start-up checks: the ledger deployed and verified, the custodian admitted and funded, the
chain not behind the database, and the restore of journaled transactions a lost chain dropped."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from api.errors import ApiError
from api.journal import ResubmitError
from api.ops import recorded_state, restore_journaled
from ledger.abi import ledger_abi
from ledger.address import to_checksum_address
from ledger.calls import LedgerCalls
from ledger.chain import DEV_PRIVATE_KEYS
from ledger.client import sender_from_settings
from ledger.errors import (
    CodeMismatchError,
    ConfigurationError,
    LedgerError,
    ManifestNotFoundError,
)
from ledger.manifest import Manifest, deploy_ledger, verify_manifest
from ledger.models import MemberKind, MemberStatus, Role
from ledger.rpc import AsyncRpcClient, RpcClient
from ledger.settings import LedgerSettings
from ledger.tx import AsyncTxManager, LocalKeySender, Sender
from node.datadir import CHAIN_DIR
from node.errors import ChainBehindDatabaseError, NodeError

#: Embedded chain only: the custodian pays gas, so the governor tops it up to this.
CUSTODIAN_FUNDING_WEI = 100 * 10**18
CUSTODIAN_MIN_WEI = 10 * 10**18


def embedded_sender(s: LedgerSettings) -> Sender:
    try:
        return sender_from_settings(s)
    except LedgerError:
        # Dev chain only: anvil's first funded account is the governor.
        return LocalKeySender.from_key(DEV_PRIVATE_KEYS[0])


def external_rpc(s: LedgerSettings, rpc_url: str | None) -> str | None:
    """The external chain's URL: ``--rpc-url``, else an explicitly set DATASAFE_LEDGER_RPC_URL."""
    if rpc_url:
        return rpc_url
    return s.rpc_url if "rpc_url" in s.model_fields_set else None


# ---- chain set-up ----------------------------------------------------------------------


def ensure_deployed(rpc_url: str, s: LedgerSettings, sender: Sender) -> tuple[Manifest, bool]:
    """The verified manifest, deploying first if there is none. Returns (manifest, deployed)."""
    path = s.resolved_manifest_path
    with RpcClient(rpc_url, timeout=s.rpc_timeout, retries=s.rpc_retries) as rpc:
        try:
            manifest = Manifest.load(path)
        except ManifestNotFoundError:
            manifest = deploy_ledger(
                rpc_url,
                sender,
                manifest_path=path,
                confirmations=s.confirmations,
                receipt_timeout=s.receipt_timeout,
            )
            verify_manifest(rpc, manifest)
            return manifest, True
        verify_manifest(rpc, manifest)
        return manifest, False


@dataclass
class CustodianSetup:
    address: str
    admitted_now: bool = False
    funded_wei: int = 0
    warnings: list[str] = field(default_factory=list)


def ensure_custodian(
    rpc_url: str,
    manifest: Manifest,
    custodian: str,
    s: LedgerSettings,
    governor: Sender | None,
    *,
    fund: bool,
) -> CustodianSetup:
    """Admit ``custodian`` as CUSTODIAN (OPERATOR) and, on the dev chain, give it gas money.

    Idempotent: checked on every start, so a crash between deploy and admission heals.
    """
    address = to_checksum_address(custodian)
    out = CustodianSetup(address)
    calls = LedgerCalls(ledger_abi())

    async def run() -> None:
        async with AsyncRpcClient(
            rpc_url, timeout=s.rpc_timeout, retries=s.rpc_retries, errors=ledger_abi().errors
        ) as rpc:
            read = calls.get_member(address)
            raw = await rpc.call(
                "eth_call",
                [{"to": manifest.ledger_address, "data": "0x" + read.data.hex()}, "latest"],
            )
            member = read.decode(bytes.fromhex(str(raw)[2:]))
            tx: AsyncTxManager | None = None
            if governor is not None:
                tx = AsyncTxManager(
                    rpc,
                    governor,
                    confirmations=s.confirmations,
                    receipt_timeout=s.receipt_timeout,
                    gas_multiplier=s.gas_multiplier,
                )
            if not member.is_member:
                if tx is None:
                    raise ConfigurationError(
                        f"custodian {address} is not a member of the ledger and no governor key "
                        "is configured to admit it (DATASAFE_LEDGER_PRIVATE_KEY / _KEYSTORE_PATH)"
                    )
                # The custodian has no encryption key: admission binds none.
                write = calls.admit_member(address, Role.CUSTODIAN, MemberKind.OPERATOR)
                await tx.send(manifest.ledger_address, write.data)
                out.admitted_now = True
            elif not member.roles & Role.CUSTODIAN or member.status != MemberStatus.ACTIVE:
                raise NodeError(
                    f"custodian {address} is a member without an active CUSTODIAN role "
                    f"(roles {int(member.roles)}, status {member.status.name}); "
                    "the governor must fix it (setRoles), and the authority that suspended it "
                    "lift the suspension (reinstateMember)"
                )
            balance = int(await rpc.call("eth_getBalance", [address, "latest"]), 16)
            if fund and tx is not None and balance < CUSTODIAN_MIN_WEI:
                await tx.send(address, b"", value=CUSTODIAN_FUNDING_WEI - balance)
                out.funded_wei = CUSTODIAN_FUNDING_WEI - balance
            elif not fund and balance == 0:
                price = int(await rpc.call("eth_gasPrice"), 16)
                if price > 0:
                    out.warnings.append(
                        f"custodian {address} has no balance and gas costs {price} wei: "
                        "fund it, or relayed calls will fail"
                    )

    asyncio.run(run())
    return out


# ---- database vs chain -----------------------------------------------------------------


def chain_vs_database(rpc: RpcClient, database_url: str, *, newest: int = 3) -> dict[str, Any]:
    """Compare what the database recorded as confirmed with what the chain holds now.

    Checks the indexer cursor (last indexed block at or below the head, same block hash)
    and, for the service's tables, the highest recorded block and the receipts of the
    newest recorded transactions. ``problems`` is empty when they agree.
    """
    head = int(rpc.call("eth_blockNumber"), 16)
    problems: list[str] = []
    try:
        recorded = recorded_state(database_url, newest=newest)
    except ApiError as exc:
        raise NodeError(str(exc)) from exc
    last = recorded.last_indexed
    if last is not None:
        if last > head:
            problems.append(f"the index reached block {last}, the chain's head is {head}")
        else:
            block = rpc.call("eth_getBlockByNumber", [hex(last), False])
            if block is None or block.get("hash") != recorded.last_indexed_hash:
                problems.append(f"block {last} on chain is not the block the index recorded")
    for table, tx_hash in recorded.newest_txs:
        if rpc.call("eth_getTransactionReceipt", [tx_hash]) is None:
            problems.append(f"{table} records transaction {tx_hash}, the chain has none")
    if recorded.last_recorded > head:
        problems.append(
            f"the database recorded block {recorded.last_recorded}, the chain's head is {head}"
        )
    return {
        "head": head,
        "last_indexed": last,
        "last_recorded": recorded.last_recorded or None,
        "problems": problems,
        "ok": not problems,
    }


def check_chain_not_behind(rpc_url: str, database_url: str, s: LedgerSettings) -> dict[str, Any]:
    with RpcClient(rpc_url, timeout=s.rpc_timeout, retries=s.rpc_retries) as rpc:
        report = chain_vs_database(rpc, database_url)
    if report["problems"]:
        raise ChainBehindDatabaseError(report["problems"])
    return report


def restore_lost_chain(
    chain_url: str, database_url: str, manifest: Manifest, s: LedgerSettings
) -> dict[str, Any]:
    """Have the service re-submit what it journaled and the chain lost, and re-index the tail
    (:func:`api.ops.restore_journaled`). What cannot be restored is a
    :class:`ChainBehindDatabaseError` (refuse)."""
    try:
        return restore_journaled(
            chain_url,
            database_url,
            ledger_address=manifest.ledger_address,
            deploy_block=manifest.deploy_block,
            confirmations=s.confirmations,
            rpc_timeout=s.rpc_timeout,
        )
    except ResubmitError as exc:
        raise ChainBehindDatabaseError([str(exc)]) from exc


def explain_missing_code(exc: CodeMismatchError, embedded: bool, data_dir: Path) -> NodeError:
    if embedded and "no code" in str(exc):
        return ChainBehindDatabaseError(
            [
                f"the embedded chain has no ledger code at the manifest's address ({exc}); "
                f"its state file {data_dir / CHAIN_DIR / 'anvil-state.json'} predates the "
                "deployment"
            ]
        )
    return NodeError(str(exc))
