"""Use numbers from Accessed logs (ledger.uses): incremental counting agrees with counting
the whole history, also when batches are numbered out of block order."""

from __future__ import annotations

import random
from typing import Any

import pytest

from ledger import eip712
from ledger._pin import read_deployment
from ledger.calls import grant_id_of
from ledger.client import LedgerClient
from ledger.models import AccessRequest
from ledger.rpc import RpcClient
from ledger.trust import verify_access_record
from ledger.tx import LocalKeySender
from ledger.uses import UseCounter, use_numbers

A, B = b"\xaa" * 32, b"\xbb" * 32


def _log(grant: bytes, block: int, index: int) -> dict[str, Any]:
    return {
        "blockNumber": hex(block),
        "logIndex": hex(index),
        "topics": ["0x" + "11" * 32, "0x" + grant.hex(), "0x" + "22" * 32],
    }


def _history(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    logs = []
    for block in range(10, 60):
        for index in range(rng.randrange(0, 4)):
            logs.append(_log(rng.choice((A, B)), block, index))
    return logs


def _read(history: list[dict[str, Any]], grants: set[bytes], lo: int, hi: int) -> list[Any]:
    wanted = {"0x" + g.hex() for g in grants}
    return [
        lg for lg in history if lo <= int(lg["blockNumber"], 16) <= hi and lg["topics"][1] in wanted
    ]


def test_incremental_counts_match_the_whole_history_in_any_order() -> None:
    for seed in range(20):
        history = _history(seed)
        truth = use_numbers(history)
        counter = UseCounter(deploy_block=5)
        blocks = sorted({int(lg["blockNumber"], 16) for lg in history})
        rng = random.Random(seed)
        # Mostly in order, sometimes a batch that finished late (an earlier block).
        order = blocks[:]
        for i in range(0, len(order) - 1, 3):
            if rng.random() < 0.5:
                order[i], order[i + 1] = order[i + 1], order[i]
        for block in order:
            grants = {
                bytes.fromhex(lg["topics"][1][2:]) for lg in _read(history, {A, B}, block, block)
            }
            start, known = counter.span(grants, block)
            got = counter.number(_read(history, grants, start, block), grants, block, known)
            for lg in _read(history, grants, block, block):
                at = (block, int(lg["logIndex"], 16))
                assert got[at] == truth[at], (seed, block, at)


def test_a_counted_grant_reads_only_the_blocks_since() -> None:
    counter = UseCounter(deploy_block=0)
    history = [_log(A, 3, 0), _log(A, 3, 1), _log(A, 7, 0)]
    start, known = counter.span({A}, 3)
    assert start == 0 and known == {}
    assert counter.number(history[:2], {A}, 3, known) == {(3, 0): 1, (3, 1): 2}
    start, known = counter.span({A}, 7)
    assert start == 4 and known == {"0x" + A.hex(): (3, 2)}
    assert counter.number(history[2:], {A}, 7, known) == {(7, 0): 3}
    # A record mined before the counted block reads the whole history again.
    assert counter.span({A}, 5) == (0, {})


# The ``world`` fixture (tests/ledger/conftest.py): real anvil, the deployed ledger.
World = Any
FAR_FUTURE = 4_000_000_000


@pytest.mark.parametrize("max_uses", [5, 0], ids=["limited", "unlimited"])
def test_the_client_numbers_records_as_the_whole_history_does(world: World, max_uses: int) -> None:
    """A limited grant is numbered from its counter at the record's block (that block's logs
    only), an unlimited one from its whole history: both give the events' positions."""
    gid_nonce = 30 + max_uses
    signed = eip712.sign_grant(
        world.subject_key, world.domain, world.terms(max_uses=max_uses), gid_nonce, FAR_FUTURE
    )
    world.gov.send(world.gov.calls.grant_by_sig(signed))
    grant_id = grant_id_of(world.subject, gid_nonce)
    requests = [AccessRequest(grant_id, 0b001, nonce=n, deadline=FAR_FUTURE) for n in range(4)]
    sigs = [eip712.sign_access_request(world.bank_key, world.domain, r) for r in requests]
    receipts = [world.gov.send(world.gov.calls.record_access(requests[0], sigs[0]))]
    receipts.append(world.gov.send(world.gov.calls.record_access_batch(requests[1:], sigs[1:])))
    with RpcClient(world.url) as rpc:
        pin = read_deployment(rpc, world.manifest.ledger_address, world.manifest.deploy_block)
        uses = [
            verify_access_record(
                rpc, pin, tx_hash=rc.tx_hash, grant_id=grant_id, grantee=world.bank,
                nonce=r.nonce, fields_mask=r.fields_mask,
            ).use
            for r, rc in zip(requests, [receipts[0]] + [receipts[1]] * 3, strict=True)
        ]  # fmt: skip
    assert uses == [1, 2, 3, 4]
    # an unlimited grant's counter only marks its first use (0 -> 1), which the recall rule needs
    assert world.gov.get_grant(grant_id).uses == (4 if max_uses else 1)


class _Recording(RpcClient):
    """A real client that notes the block ranges of its ``eth_getLogs`` calls."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.ranges: list[tuple[int, int]] = []

    def call(self, method: str, params: Any = ()) -> Any:
        if method == "eth_getLogs":
            self.ranges.append((int(params[0]["fromBlock"], 16), int(params[0]["toBlock"], 16)))
        return super().call(method, params)


def _unlimited_grant(world: World, gid_nonce: int) -> bytes:
    signed = eip712.sign_grant(
        world.subject_key, world.domain, world.terms(max_uses=0), gid_nonce, FAR_FUTURE
    )
    world.gov.send(world.gov.calls.grant_by_sig(signed))
    return grant_id_of(world.subject, gid_nonce)


def _access(
    world: World, grant_id: bytes, nonce: int, via: LedgerClient | None = None
) -> tuple[AccessRequest, Any]:
    request = AccessRequest(grant_id, 0b001, nonce=nonce, deadline=FAR_FUTURE)
    sig = eip712.sign_access_request(world.bank_key, world.domain, request)
    client = via or world.gov
    return request, client.send(client.calls.record_access(request, sig))


def _use(rpc: RpcClient, world: World, grant_id: bytes, request: AccessRequest, rc: Any) -> int:
    pin = read_deployment(rpc, world.manifest.ledger_address, world.manifest.deploy_block)
    record = verify_access_record(
        rpc, pin, tx_hash=rc.tx_hash, grant_id=grant_id, grantee=world.bank,
        nonce=request.nonce, fields_mask=request.fields_mask,
    )  # fmt: skip
    return record.use


def test_a_later_record_of_an_unlimited_grant_reads_only_the_blocks_since(world: World) -> None:
    """The client remembers its count (ledger.uses.UseMemo): checking the next pull reads the
    blocks after the last record it checked, not the grant's whole history."""
    grant_id = _unlimited_grant(world, 60)
    done = [_access(world, grant_id, n) for n in range(100, 103)]
    with _Recording(world.url) as rpc:
        assert [_use(rpc, world, grant_id, r, rc) for r, rc in done] == [1, 2, 3]
        rpc.ranges.clear()
        request, rc = _access(world, grant_id, 103)
        assert _use(rpc, world, grant_id, request, rc) == 4
        assert rpc.ranges == [(done[-1][1].block_number + 1, rc.block_number)]
        # The same record again: its own block only.
        rpc.ranges.clear()
        assert _use(rpc, world, grant_id, request, rc) == 4
        assert rpc.ranges == [(rc.block_number, rc.block_number)]


def test_a_reorganised_chain_is_counted_again(world: World) -> None:
    """A count is used only while the chain still holds the block it was made at: after the
    chain went back and other records took those heights, the numbers are the new chain's."""
    grant_id = _unlimited_grant(world, 61)
    with RpcClient(world.url) as rpc:
        snap = rpc.call("evm_snapshot")
        first = [_access(world, grant_id, n) for n in range(200, 203)]
        assert [_use(rpc, world, grant_id, r, rc) for r, rc in first] == [1, 2, 3]
        assert rpc.call("evm_revert", [snap])
        # On the other branch the heights the memo counted hold no record, and the next record
        # comes after them: its number is 1, not the memo's 3 + 1. (A new sender: the first
        # one's nonces went back with the chain.)
        for _ in first:
            rpc.call("evm_mine")
        sender = LocalKeySender.from_key(world.governor_key)
        with LedgerClient(world.url, world.manifest.ledger_address, sender=sender) as other:
            request, rc = _access(world, grant_id, 300, other)
        assert rc.block_number == first[-1][1].block_number + 1
        assert _use(rpc, world, grant_id, request, rc) == 1
