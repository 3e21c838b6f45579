"""Deployment manifest: which chain, which address, which code, from which sources.

Written once by :func:`deploy_ledger`; every later start verifies it against the
node (:func:`verify_manifest`) and refuses to run on another chain or against
other code.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eth_hash.auto import keccak
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger.abi import LedgerAbi
from ledger.address import to_checksum_address
from ledger.artifacts import FORWARDER_CONTRACT, LEDGER_CONTRACT, Artifact, load_artifact
from ledger.companions import companion_addresses, read_code_hashes
from ledger.errors import (
    ChainMismatchError,
    CodeMismatchError,
    ManifestInvalidError,
    ManifestNotFoundError,
    TransactionError,
)
from ledger.forwarder import forwarder_address
from ledger.rpc import AsyncRpcClient, RpcClient

if TYPE_CHECKING:
    # Deploying signs transactions (eth-account); reading a manifest, as the wallet does,
    # must not pay for that import.
    from ledger.tx import AsyncTxManager, Sender


class Manifest(BaseModel):
    """JSON keys are camelCase (``chainId``, ``ledger``, ``deployBlock`` ...)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    chain_id: int = Field(alias="chainId")
    ledger_address: str = Field(alias="ledger")
    deploy_block: int = Field(alias="deployBlock")
    deploy_tx: str = Field(alias="deployTx")
    code_hash: str = Field(alias="codeHash")
    governor: str
    contract: str = LEDGER_CONTRACT
    compiler: str
    artifact_source_hash: str = Field(alias="artifactSourceHash")
    deployed_at: int = Field(alias="deployedAt")
    #: Block 0's hash: with chain id, address and code hash, what a client pins.
    genesis_hash: str | None = Field(default=None, alias="genesisHash")
    #: The ERC-2771 forwarder the ledger's constructor created, and its runtime code hash.
    forwarder_address: str | None = Field(default=None, alias="forwarder")
    forwarder_code_hash: str | None = Field(default=None, alias="forwarderCodeHash")
    #: The companions the constructor created (name -> address) and their runtime code hashes.
    companions: dict[str, str] | None = None
    companion_code_hashes: dict[str, str] | None = Field(default=None, alias="companionCodeHashes")

    @property
    def addresses(self) -> dict[str, str]:
        out = {self.contract: self.ledger_address}
        if self.forwarder_address:
            out[FORWARDER_CONTRACT] = self.forwarder_address
        out.update(self.companions or {})
        return out

    @classmethod
    def load(cls, path: Path) -> Manifest:
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            raise ManifestNotFoundError(f"no deployment manifest at {path}") from None
        except OSError as exc:
            raise ManifestInvalidError(f"cannot read manifest {path}: {exc}") from exc
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise ManifestInvalidError(f"manifest {path} is invalid: {exc}") from exc

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        data = self.model_dump(by_alias=True)
        data["addresses"] = self.addresses
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)


def code_hash(code_hex: str) -> str:
    return "0x" + keccak(bytes.fromhex(code_hex.removeprefix("0x"))).hex()


def _compare(manifest: Manifest, chain_id: int, code: str) -> None:
    if chain_id != manifest.chain_id:
        raise ChainMismatchError(manifest.chain_id, chain_id)
    actual = code_hash(code) if code not in ("0x", "") else "0x (no code)"
    if actual != manifest.code_hash:
        raise CodeMismatchError(manifest.ledger_address, manifest.code_hash, actual)


def _compare_forwarder(manifest: Manifest, code: str) -> None:
    if manifest.forwarder_address is None or manifest.forwarder_code_hash is None:
        return
    actual = code_hash(code) if code not in ("0x", "") else "0x (no code)"
    if actual != manifest.forwarder_code_hash:
        raise CodeMismatchError(manifest.forwarder_address, manifest.forwarder_code_hash, actual)


def _compare_companions(manifest: Manifest, actual: dict[str, str | None]) -> None:
    for name, expected in (manifest.companion_code_hashes or {}).items():
        have = actual.get(name)
        if have is None or have.lower() != expected.lower():
            address = (manifest.companions or {}).get(name, name)
            raise CodeMismatchError(address, expected, have or "0x (no code)")


def verify_manifest(rpc: RpcClient, manifest: Manifest) -> None:
    """Raise unless the node's chain id and the code at the ledger (forwarder, companions) match."""
    chain_id = int(rpc.call("eth_chainId"), 16)
    if chain_id != manifest.chain_id:
        raise ChainMismatchError(manifest.chain_id, chain_id)
    _compare(manifest, chain_id, rpc.call("eth_getCode", [manifest.ledger_address, "latest"]))
    if manifest.forwarder_address:
        code = rpc.call("eth_getCode", [manifest.forwarder_address, "latest"])
        _compare_forwarder(manifest, code)
    if manifest.companion_code_hashes:
        _compare_companions(manifest, read_code_hashes(rpc, manifest.ledger_address))


async def averify_manifest(rpc: AsyncRpcClient, manifest: Manifest) -> None:
    chain_id = int(await rpc.call("eth_chainId"), 16)
    if chain_id != manifest.chain_id:
        raise ChainMismatchError(manifest.chain_id, chain_id)
    code = await rpc.call("eth_getCode", [manifest.ledger_address, "latest"])
    _compare(manifest, chain_id, code)
    if manifest.forwarder_address:
        code = await rpc.call("eth_getCode", [manifest.forwarder_address, "latest"])
        _compare_forwarder(manifest, code)
    if manifest.companion_code_hashes:
        actual: dict[str, str | None] = {}
        for name, address in companion_addresses(manifest.ledger_address).items():
            ccode = await rpc.call("eth_getCode", [address, "latest"])
            actual[name] = code_hash(ccode) if ccode not in ("0x", "") else None
        _compare_companions(manifest, actual)


def load_verified(path: Path, rpc: RpcClient) -> Manifest:
    manifest = Manifest.load(path)
    verify_manifest(rpc, manifest)
    return manifest


async def adeploy_ledger(
    tx: AsyncTxManager, *, governor: str | None = None, artifact: Artifact | None = None
) -> Manifest:
    """Deploy DataSafeLedger with ``governor`` (default: the sender) as first governor."""
    artifact = artifact or load_artifact()
    abi = LedgerAbi(artifact.abi)
    gov = to_checksum_address(governor or tx.address)
    data = artifact.bytecode + abi.encode_constructor(gov)
    receipt = await tx.send(None, data)
    if not receipt.contract_address:
        raise TransactionError(f"deployment {receipt.tx_hash} created no contract")
    address = to_checksum_address(receipt.contract_address)
    code = await tx.rpc.call("eth_getCode", [address, hex(receipt.block_number)])
    forwarder = forwarder_address(address)
    fcode = await tx.rpc.call("eth_getCode", [forwarder, hex(receipt.block_number)])
    companions = companion_addresses(address)
    ccodes = {
        name: code_hash(await tx.rpc.call("eth_getCode", [caddr, hex(receipt.block_number)]))
        for name, caddr in companions.items()
    }
    genesis = await tx.rpc.call("eth_getBlockByNumber", ["0x0", False])
    return Manifest(
        chain_id=await tx.chain_id(),
        ledger_address=address,
        deploy_block=receipt.block_number,
        deploy_tx=receipt.tx_hash,
        code_hash=code_hash(code),
        governor=gov,
        compiler=artifact.compiler,
        artifact_source_hash=artifact.source_hash,
        deployed_at=int(time.time()),
        genesis_hash=str(genesis["hash"]).lower(),
        forwarder_address=forwarder,
        forwarder_code_hash=code_hash(fcode),
        companions=companions,
        companion_code_hashes=ccodes,
    )


def deploy_ledger(
    rpc_url: str,
    sender: Sender,
    *,
    governor: str | None = None,
    manifest_path: Path | None = None,
    artifact: Artifact | None = None,
    **tx_options: Any,
) -> Manifest:
    """Blocking deploy; writes the manifest to ``manifest_path`` when given."""

    from ledger.tx import AsyncTxManager

    async def run() -> Manifest:
        async with AsyncRpcClient(rpc_url) as rpc:
            tx = AsyncTxManager(rpc, sender, **tx_options)
            return await adeploy_ledger(tx, governor=governor, artifact=artifact)

    manifest = asyncio.run(run())
    if manifest_path is not None:
        manifest.save(manifest_path)
    return manifest
