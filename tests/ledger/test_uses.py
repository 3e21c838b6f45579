"""Use numbers from Accessed logs (ledger.uses): incremental counting agrees with counting
the whole history, also when batches are numbered out of block order."""

from __future__ import annotations

import random
from typing import Any

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
