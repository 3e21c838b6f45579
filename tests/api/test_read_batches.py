"""Reads issued in one event-loop turn share one JSON-RPC batch (``api.chain.ReadCoalescer``).

Against a real anvil: concurrent reads give the same answers as sequential ones in fewer
HTTP requests; a revert in a batch is raised to its own caller only; an outage fails every
caller with ``chain_unavailable``.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from _api_world import World

from api import errors
from api.chain import GET_MEMBER, ChainGateway
from ledger import errors as lerr


def _member_calls(world: World) -> list[bytes]:
    return [GET_MEMBER.encode(a.address) for a in (world.citizen, world.bank, world.issuer)]


async def test_concurrent_reads_share_one_batch(world: World) -> None:
    calls = _member_calls(world) * 3
    async with aiohttp.ClientSession() as session:
        chain = ChainGateway(world.rpc_url, world.ledger_address, session)
        block = await chain.block_number()
        sequential = [await chain.call(data, block) for data in calls]
        assert chain._reads.batches == 0  # one at a time: plain calls
        together = await asyncio.gather(*(chain.call(data, block) for data in calls))
        assert together == sequential
        assert chain._reads.batches == 1
        assert chain._reads.batched_calls == len(calls)


async def test_a_revert_in_a_batch_reaches_its_caller_only(world: World) -> None:
    good = _member_calls(world)
    async with aiohttp.ClientSession() as session:
        chain = ChainGateway(world.rpc_url, world.ledger_address, session)
        block = await chain.block_number()
        expected = [await chain.call(data, block) for data in good]
        # An unknown selector: the ledger reverts (no fallback).
        outcomes = await asyncio.gather(
            chain.call(good[0], block),
            chain.call(b"\xde\xad\xbe\xef", block),
            chain.call(good[1], block),
            chain.call(good[2], block),
            return_exceptions=True,
        )
        assert chain._reads.batches == 1
    assert outcomes[0] == expected[0]
    assert isinstance(outcomes[1], lerr.ContractRevertError)
    assert outcomes[2:] == expected[1:]


async def test_an_outage_fails_every_caller_of_the_batch(world: World) -> None:
    async with aiohttp.ClientSession() as session:
        chain = ChainGateway("http://127.0.0.1:9", world.ledger_address, session)
        chain.transport._retries = 0
        outcomes = await asyncio.gather(
            *(chain.call(data, 1) for data in _member_calls(world)), return_exceptions=True
        )
        assert chain._reads.batches == 1
    assert len(outcomes) == 3
    assert all(isinstance(o, errors.ChainUnavailableError) for o in outcomes), outcomes


async def test_a_lone_read_is_a_plain_call(world: World) -> None:
    async with aiohttp.ClientSession() as session:
        chain = ChainGateway(world.rpc_url, world.ledger_address, session)
        assert await chain.block_number() >= 1
        with pytest.raises(lerr.ContractRevertError):
            await chain.call(b"\xde\xad\xbe\xef")
        assert chain._reads.batches == 0
