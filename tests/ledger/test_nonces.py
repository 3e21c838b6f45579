"""Access nonces share the ledger's bitmap words: distinct, 256 to a word, fresh after fork."""

from __future__ import annotations

import multiprocessing
import os
import secrets
import threading

from _ledger_world import FAR_FUTURE, World

from ledger import eip712
from ledger.calls import grant_id_of
from ledger.models import AccessRequest
from ledger.nonces import SLOTS_PER_WORD, AccessNonces, next_access_nonce


def test_a_sequence_fills_one_word_then_draws_another() -> None:
    seq = AccessNonces()
    first = [seq.next() for _ in range(SLOTS_PER_WORD)]
    assert len({n >> 8 for n in first}) == 1
    assert [n & 0xFF for n in first] == list(range(SLOTS_PER_WORD))
    following = seq.next()
    assert following >> 8 != first[0] >> 8
    assert following & 0xFF == 0


def test_threads_never_get_the_same_nonce() -> None:
    seq = AccessNonces()
    got: list[int] = []
    lock = threading.Lock()

    def draw() -> None:
        mine = [seq.next() for _ in range(300)]
        with lock:
            got.extend(mine)

    threads = [threading.Thread(target=draw) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == len(set(got)) == 8 * 300


def _child_nonce(out: multiprocessing.Queue[int]) -> None:
    out.put(next_access_nonce())


def test_a_forked_child_does_not_continue_its_parents_word() -> None:
    parent = next_access_nonce()
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue[int] = ctx.Queue()
    child = ctx.Process(target=_child_nonce, args=(out,))
    child.start()
    child_nonce = out.get(timeout=30)
    child.join(timeout=30)
    assert child.exitcode == 0
    assert child_nonce >> 8 != parent >> 8
    assert os.getpid() != child.pid


def _access_gas(world: World, grant_nonce: int, nonces: list[int]) -> list[int]:
    terms = world.terms(max_uses=0)
    signed = eip712.sign_grant(
        world.subject_key, world.domain, terms, nonce=grant_nonce, deadline=FAR_FUTURE
    )
    world.gov.send(world.gov.calls.grant_by_sig(signed))
    grant_id = grant_id_of(world.subject, grant_nonce)
    used = []
    for nonce in nonces:
        request = AccessRequest(grant_id, 0b001, nonce=nonce, deadline=FAR_FUTURE)
        sig = eip712.sign_access_request(world.bank_key, world.domain, request)
        used.append(world.gov.send(world.gov.calls.record_access(request, sig)).gas_used)
    return used


def test_sequenced_nonces_cost_less_gas_than_random_ones(world: World) -> None:
    seq = AccessNonces()
    sequenced = _access_gas(world, 21, [seq.next() for _ in range(3)])
    random_ = _access_gas(world, 22, [secrets.randbits(64) for _ in range(3)])
    # Same grant state, same use count: only the nonce word differs (opened vs already written).
    assert sequenced[1] < random_[1] - 15_000
    assert sequenced[2] < random_[2] - 15_000
