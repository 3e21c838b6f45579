"""Chain reads on the request path: raw JSON-RPC over one aiohttp session, cached per block.

Writes (relaying signed messages) go through ``ledger``'s transaction sender;
reads that every request makes (member roles and status, ``check``) are
issued here directly so that the per-block cache and request coalescing in
:mod:`api._blocks` keep the node out of the hot path.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import aiohttp
from eth_abi.abi import decode as abi_decode
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

from api import _ledger_abi as abi
from api import errors
from api._blocks import BlockClock, PerBlockCache
from api.auth import MEMBER_KINDS, Member, MemberStatus, Role


def selector(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


GET_MEMBER = selector("getMember(address)")
MEMBER_ABI = "(uint16,uint8,uint8,uint32,uint64,uint32,bytes32)"


class RpcError(Exception):
    """A JSON-RPC error answer (e.g. a revert): carries code, message and revert data."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data


class ChainGateway:
    def __init__(self, rpc_url: str, ledger_address: str, session: aiohttp.ClientSession) -> None:
        self.rpc_url = rpc_url
        self.ledger_address = to_checksum_address(ledger_address)
        self._session = session
        self._ids = itertools.count(1)
        self.clock = BlockClock(self.block_number)
        self._members: PerBlockCache[Member] = PerBlockCache()
        self.reads: PerBlockCache[bytes] = PerBlockCache()

    async def rpc(self, method: str, params: list[Any]) -> Any:
        payload = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            async with self._session.post(self.rpc_url, json=payload) as resp:
                if resp.status >= 500:
                    raise errors.ChainUnavailableError(f"chain node answered HTTP {resp.status}")
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise errors.ChainUnavailableError(
                f"chain node unreachable: {exc.__class__.__name__}"
            ) from exc
        if "error" in body:
            err = body["error"]
            raise RpcError(int(err.get("code", 0)), str(err.get("message", "")), err.get("data"))
        return body["result"]

    async def block_number(self) -> int:
        return int(await self.rpc("eth_blockNumber", []), 16)

    async def chain_id(self) -> int:
        return int(await self.rpc("eth_chainId", []), 16)

    async def code_at(self, address: str) -> bytes:
        return bytes.fromhex(str(await self.rpc("eth_getCode", [address, "latest"]))[2:])

    async def call(self, data: bytes, block: int | str = "latest") -> bytes:
        tag = hex(block) if isinstance(block, int) else block
        result = await self.rpc(
            "eth_call", [{"to": self.ledger_address, "data": "0x" + data.hex()}, tag]
        )
        return bytes.fromhex(str(result)[2:])

    async def cached_call(self, data: bytes) -> tuple[bytes, int]:
        """``eth_call`` at the latest block, memoised for that block; returns (result, block)."""
        block = await self.clock.latest()
        result = await self.reads.get(block, data, lambda: self.call(data, block))
        return result, block

    async def member(self, address: str) -> Member:
        block = await self.clock.latest()
        key = address.lower()
        return await self._members.get(block, key, lambda: self._read_member(address, block))

    async def _read_member(self, address: str, block: int) -> Member:
        raw = await self.call(GET_MEMBER + abi_encode(["address"], [address]), block)
        ((roles, kind, status, key_version, admitted_at, _number, key_hash),) = abi_decode(
            [MEMBER_ABI], raw
        )
        return Member(
            address=to_checksum_address(address),
            roles=Role(roles),
            kind=MEMBER_KINDS[kind] if kind < len(MEMBER_KINDS) else str(kind),
            status=MemberStatus(status),
            key_version=key_version,
            enc_key_hash=key_hash,
            admitted_at=admitted_at,
            block=block,
        )


@dataclass(frozen=True, slots=True)
class GrantView:
    grant_id: bytes
    asset_id: bytes
    grantee: str
    purpose: int
    fields_mask: int
    not_before: int
    expiry: int
    max_uses: int
    uses: int
    status: str
    block: int

    @property
    def exists(self) -> bool:
        return self.status != "none"


@dataclass(frozen=True, slots=True)
class AssetView:
    asset_id: bytes
    owner: str
    status: str
    version: int
    issuer: str
    schema_id: bytes
    root: bytes
    ciphertext_digest: bytes
    previous: bytes
    next: bytes
    block: int

    @property
    def exists(self) -> bool:
        return self.status != "none"


@dataclass(frozen=True, slots=True)
class SchemaView:
    schema_id: bytes
    issuer: str
    field_count: int
    registered_at: int
    fields_hash: bytes

    @property
    def exists(self) -> bool:
        return self.field_count != 0


class LedgerReads:
    """Typed views of the ledger at the latest block (memoised per block)."""

    def __init__(self, chain: ChainGateway) -> None:
        self.chain = chain

    async def check(self, grant_id: bytes, grantee: str, mask: int) -> tuple[bool, int, int]:
        # Hand-encoded (static types only): eth-abi's encoder costs more than the cached read.
        data = (
            abi.CHECK.selector
            + grant_id
            + bytes.fromhex(grantee[2:]).rjust(32, b"\0")
            + mask.to_bytes(32, "big")
        )
        raw, block = await self.chain.cached_call(data)
        allowed, reason = abi.CHECK.decode_output(raw)
        return bool(allowed), int(reason), block

    async def grant(self, grant_id: bytes) -> GrantView:
        raw, block = await self.chain.cached_call(abi.GET_GRANT.encode(grant_id))
        ((asset_id, grantee, purpose, mask, nb, exp, max_uses, uses, status),) = (
            abi.GET_GRANT.decode_output(raw)
        )
        return GrantView(
            grant_id,
            asset_id,
            to_checksum_address(grantee),
            purpose,
            mask,
            nb,
            exp,
            max_uses,
            uses,
            abi.GRANT_STATUS[status],
            block,
        )

    async def asset(self, asset_id: bytes) -> AssetView:
        raw, block = await self.chain.cached_call(abi.GET_ASSET.encode(asset_id))
        ((owner, status, version, issuer, schema_id, root, digest, prev, nxt),) = (
            abi.GET_ASSET.decode_output(raw)
        )
        return AssetView(
            asset_id,
            to_checksum_address(owner),
            abi.ASSET_STATUS[status],
            version,
            to_checksum_address(issuer),
            schema_id,
            root,
            digest,
            prev,
            nxt,
            block,
        )

    async def schema(self, schema_id: bytes) -> SchemaView:
        raw, _ = await self.chain.cached_call(abi.GET_SCHEMA.encode(schema_id))
        ((issuer, count, at, fields_hash),) = abi.GET_SCHEMA.decode_output(raw)
        return SchemaView(schema_id, to_checksum_address(issuer), count, at, fields_hash)

    async def consent_nonce(self, signer: str) -> int:
        raw, _ = await self.chain.cached_call(abi.NONCES.encode(signer))
        return int(abi.NONCES.decode_output(raw)[0])
