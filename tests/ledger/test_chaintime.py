"""The next block's time from what a node says (pure rules; the node tests are in
tests/api/test_chain_time.py)."""

from __future__ import annotations

from ledger import chaintime

HEAD = "0x" + "aa" * 32


def test_a_real_pending_block_gives_the_node_clock() -> None:
    pending = {"number": hex(11), "timestamp": hex(1_050), "parentHash": HEAD}
    assert chaintime.next_block_time(10, 1_000, HEAD, pending, wall=5_000) == (1_050, "pending")
    # anvil after evm_revert may repeat the parent's timestamp: never before the head
    same = pending | {"timestamp": hex(990)}
    assert chaintime.next_block_time(10, 1_000, HEAD, same, wall=5_000) == (1_000, "pending")
    # a pending block without a number (Besu's block object) counts by its parent
    unnumbered = {"number": None, "timestamp": hex(1_020), "parentHash": HEAD}
    assert chaintime.next_block_time(10, 1_000, HEAD, unnumbered, wall=0) == (1_020, "pending")


def test_without_a_pending_block_the_clock_at_least_a_second_on() -> None:
    latest_as_pending = {"number": hex(10), "timestamp": hex(1_000), "parentHash": "0x" + "bb" * 32}
    for pending in (None, latest_as_pending, {"number": None, "timestamp": hex(1_000)}):
        assert chaintime.next_block_time(10, 1_000, HEAD, pending, wall=1_200.7) == (1_200, "wall")
        assert chaintime.next_block_time(10, 1_000, HEAD, pending, wall=900.0) == (1_001, "wall")


def test_probe_and_call_parameters() -> None:
    assert chaintime.probe_answered(hex(chaintime.PROBE_TIME).replace("0x", "0x" + "0" * 56))
    for answer in ("0x", "0x01", None, "nonsense"):
        assert not chaintime.probe_answered(answer)
    params = chaintime.call_at_params("0x" + "11" * 20, b"\x01\x02", 7, 1_234)
    assert params == [{"to": "0x" + "11" * 20, "data": "0x0102"}, "0x7", None, {"time": "0x4d2"}]
