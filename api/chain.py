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
from eth_utils.address import to_checksum_address

from api import errors
from api._blocks import BlockClock, PerBlockCache
from api.auth import Member
from ledger import models
from ledger.abi import ledger_abi

# Encoders/decoders come from the generated ABI (ledger.abi); only the transport is ours.
_ABI = ledger_abi()
GET_MEMBER = _ABI.fn("getMember")
CHECK = _ABI.fn("check")
GET_GRANT = _ABI.fn("getGrant")
GET_ASSET = _ABI.fn("getAsset")
GET_SCHEMA = _ABI.fn("getSchema")
NONCES = _ABI.fn("nonces")
IS_AGENT = _ABI.fn("isAgent")
IS_SCHEMA_ISSUER = _ABI.fn("isSchemaIssuer")


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
        raw = await self.call(GET_MEMBER.encode(address), block)
        (member,) = GET_MEMBER.decode_output(raw)
        m = models.Member.from_tuple(member)
        return Member(**vars(m), address=to_checksum_address(address), block=block)


@dataclass(frozen=True, slots=True)
class GrantView:
    """A grant as the chain had it at ``block``.

    ``status`` is the lower-case name (``"revoked"``) that the HTTP contract and the relay
    journal use; the decoded ledger model, with its enum, is ``grant``.
    """

    grant_id: bytes
    grant: models.Grant
    block: int

    @property
    def status(self) -> str:
        return self.grant.status.name.lower()

    @property
    def exists(self) -> bool:
        return self.grant.exists


@dataclass(frozen=True)
class AssetView(models.Asset):
    """An asset as the chain had it at ``block``."""

    asset_id: bytes
    block: int


@dataclass(frozen=True)
class SchemaView(models.Schema):
    schema_id: bytes


class LedgerReads:
    """Typed views of the ledger at the latest block (memoised per block)."""

    def __init__(self, chain: ChainGateway) -> None:
        self.chain = chain

    @staticmethod
    def check_calldata(grant_id: bytes, grantee: str, mask: int) -> bytes:
        """``CHECK.encode`` by hand (static types only): eth-abi costs more than the cached read."""
        return (
            CHECK.selector
            + grant_id
            + bytes.fromhex(grantee[2:]).rjust(32, b"\0")
            + mask.to_bytes(32, "big")
        )

    async def check(self, grant_id: bytes, grantee: str, mask: int) -> tuple[bool, int, int]:
        raw, block = await self.chain.cached_call(self.check_calldata(grant_id, grantee, mask))
        allowed, reason = CHECK.decode_output(raw)
        return bool(allowed), int(reason), block

    async def grant(self, grant_id: bytes) -> GrantView:
        raw, block = await self.chain.cached_call(GET_GRANT.encode(grant_id))
        grant = models.Grant.from_tuple(GET_GRANT.decode_output(raw)[0])
        return GrantView(grant_id, grant, block)

    async def asset(self, asset_id: bytes) -> AssetView:
        raw, block = await self.chain.cached_call(GET_ASSET.encode(asset_id))
        asset = models.Asset.from_tuple(GET_ASSET.decode_output(raw)[0])
        return AssetView(**vars(asset), asset_id=asset_id, block=block)

    async def schema(self, schema_id: bytes) -> SchemaView:
        raw, _ = await self.chain.cached_call(GET_SCHEMA.encode(schema_id))
        schema = models.Schema.from_tuple(GET_SCHEMA.decode_output(raw)[0])
        return SchemaView(**vars(schema), schema_id=schema_id)

    async def consent_nonce(self, signer: str) -> int:
        raw, _ = await self.chain.cached_call(NONCES.encode(signer))
        return int(NONCES.decode_output(raw)[0])

    async def is_agent(self, owner: str, agent: str) -> bool:
        raw, _ = await self.chain.cached_call(IS_AGENT.encode(owner, agent))
        return bool(IS_AGENT.decode_output(raw)[0])

    async def is_schema_issuer(self, schema_id: bytes, issuer: str) -> bool:
        """Whether ``issuer`` registered the schema or was authorised on chain by its registrant."""
        raw, _ = await self.chain.cached_call(IS_SCHEMA_ISSUER.encode(schema_id, issuer))
        return bool(IS_SCHEMA_ISSUER.decode_output(raw)[0])
