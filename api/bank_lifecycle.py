"""The bank side of the lifecycle (SDK, no server code): delete what was saved for a grant,
then acknowledge; acknowledge a recall. Checked against the chain the bank reads.

:func:`delete_and_acknowledge` is the one implementation: ``datasafe institution delete``
and integrators call it. The files are those :func:`wallet_cli.institution.pull_into` saves
(``<grant id>-use<n>.json`` under the pull's directory). The acknowledgement covers the use
count the chain holds, is signed here and relayed by the service; the answer is believed
only once the grant's acknowledgement bit is set on chain (:func:`ledger.trust.get_grant`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from api.client import DataSafeClient
from ledger import eip712, trust
from ledger.lifecycle import Acknowledgement, LifecycleError, ack_digest, has_ended
from ledger.models import AckKind
from ledger.rpc import RpcClient
from ledger.trust import PinnedDeployment, ServiceContradictedError


@dataclass(frozen=True)
class Acknowledged:
    grant_id: str
    kind: AckKind
    uses: int
    at: int
    tx_hash: str
    deleted: tuple[Path, ...] = ()


def _chain_time(rpc: RpcClient) -> int:
    return int(rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)


def saved_files(out: Path, grant_id: str) -> list[Path]:
    """What a pull saved for ``grant_id`` under ``out`` (one file per use)."""
    return sorted(out.glob(f"{grant_id.lower()}-use*.json")) if out.is_dir() else []


def acknowledge(
    c: DataSafeClient,
    rpc: RpcClient,
    pin: PinnedDeployment,
    key: bytes,
    grant_id: str,
    kind: AckKind,
) -> Acknowledged:
    """Sign ``kind`` for the grant's use count on chain, relay it, and see it on chain."""
    gid = bytes.fromhex(grant_id.removeprefix("0x"))
    grant = trust.get_grant(rpc, pin, gid)
    at = _chain_time(rpc)
    ack = Acknowledgement(kind, gid, grant.uses, at)
    digest = ack_digest(eip712.ledger_domain(pin.chain_id, pin.ledger_address), ack)
    body = {
        "kind": kind.name.lower(),
        "grant_id": "0x" + gid.hex(),
        "uses": grant.uses,
        "at": at,
        "signature": "0x" + eip712.sign_digest(key, digest).hex(),
    }
    answer = c.post("/v1/acknowledgements", body)
    if not trust.get_grant(rpc, pin, gid).acknowledged(kind):
        raise ServiceContradictedError(
            f"the service says it recorded the {kind.name.lower()} acknowledgement of "
            f"0x{gid.hex()}, but the grant on chain does not carry it",
            code="acknowledgement_not_on_chain",
        )
    return Acknowledged("0x" + gid.hex(), kind, grant.uses, at, str(answer["tx_hash"]))


def delete_and_acknowledge(
    c: DataSafeClient,
    rpc: RpcClient,
    pin: PinnedDeployment,
    key: bytes,
    grant_id: str,
    out: Path,
) -> Acknowledged:
    """Delete every file saved for the grant under ``out``, then acknowledge the deletion.

    The files go first: a deletion is never acknowledged for data still on disk. Nothing
    is deleted while the grant is live on chain (:class:`LifecycleError` ``grant_live``).
    """
    gid = bytes.fromhex(grant_id.removeprefix("0x"))
    grant = trust.get_grant(rpc, pin, gid)
    if not has_ended(grant.status, grant.expiry, grant.uses, grant.max_uses, _chain_time(rpc)):
        raise LifecycleError(
            f"grant {grant_id} has not ended (not revoked, expired or out of uses): "
            "nothing was deleted",
            code="grant_live",
        )
    files = saved_files(out, grant_id)
    for path in files:
        path.unlink()
    done = acknowledge(c, rpc, pin, key, grant_id, AckKind.DELETION)
    return Acknowledged(done.grant_id, done.kind, done.uses, done.at, done.tx_hash, tuple(files))
