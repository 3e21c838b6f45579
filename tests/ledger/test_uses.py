"""Use numbers from Accessed logs (ledger.uses): incremental counting agrees with counting
the whole history, also when batches are numbered out of block order."""

from __future__ import annotations

import random
from typing import Any

import pytest

from ledger import eip712
from ledger._pin import read_deployment
from ledger.calls import grant_id_of
from ledger.models import AccessRequest
from ledger.rpc import RpcClient
from ledger.trust import verify_access_record
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
