"""Issue 18 on a real anvil: an enterprise's 2-of-3 grant, and the client's own judgement of
the approvals a service hands it (``ledger.approvals``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from _ledger_world import FAR_FUTURE, SCHEMA_ID, World
from eth_account import Account

from ledger import db, eip712
from ledger.approvals import judge_approvals
from ledger.calls import grant_id_of
from ledger.chain import DEV_PRIVATE_KEYS
from ledger.client import LedgerClient
from ledger.errors import ContractRevertError
from ledger.indexer import Indexer
from ledger.models import ANY_PURPOSE, GrantStatus, GrantTerms, MemberKind, Role
from ledger.rpc import RpcClient
from ledger.trust import ServiceContradictedError, read_deployment
from ledger.tx import LocalKeySender

ACME_ASSET = b"\xac" * 32
NONCE = 7
DEADLINE = FAR_FUTURE


@dataclass
class Acme:
    world: World
    enterprise: LedgerClient
    address: str
    agent_keys: list[str]
    agents: list[str]

    def terms(self) -> GrantTerms:
        return self.world.terms(asset_id=ACME_ASSET)

    def approval(self, i: int, epoch: int = 0) -> tuple[str, bytes]:
        digest = eip712.approval_digest(
            self.world.domain, self.address, epoch, self.terms(), NONCE, DEADLINE
        )
        return self.agents[i], eip712.sign_digest(self.agent_keys[i], digest)


@pytest.fixture
def acme(world: World) -> Iterator[Acme]:
    key = DEV_PRIVATE_KEYS[4]
    agent_keys = [DEV_PRIVATE_KEYS[i] for i in (5, 6, 7)]
    address = Account.from_key(key).address
    agents = [Account.from_key(k).address for k in agent_keys]
    gov, issuer = world.gov, world.issuer
    gov.send(gov.calls.admit_subject(address, MemberKind.ENTERPRISE))
    for a in agents:
        gov.send(gov.calls.admit_member(a, Role.CONSUMER, MemberKind.INDIVIDUAL))
    issuer.send(issuer.calls.anchor_asset(ACME_ASSET, address, SCHEMA_ID, b"\7" * 32, b"\x08" * 32))
    client = LedgerClient(
        world.url, world.manifest.ledger_address, sender=LocalKeySender.from_key(key)
    )
    try:
        for a in agents:
            client.send(client.calls.add_agent(a, FAR_FUTURE))
        client.send(client.calls.set_approval_threshold(ANY_PURPOSE, 2))
        yield Acme(world, client, address, agent_keys, agents)
    finally:
        client.close()


def _judge(acme: Acme, approvals: list[tuple[str, bytes]]) -> object:
    with RpcClient(acme.world.url) as rpc:
        pin = read_deployment(rpc, acme.world.manifest.ledger_address)
        return judge_approvals(rpc, pin, acme.address, acme.terms(), NONCE, DEADLINE, approvals)


def test_two_of_three_grant_lands(acme: Acme) -> None:
    approvals = [acme.approval(1), acme.approval(0)]
    verdict = _judge(acme, approvals)
    assert verdict.complete and verdict.needed == 2  # type: ignore[attr-defined]
    gov = acme.world.gov
    gov.send(
        gov.calls.grant_with_approvals(
            acme.terms(), NONCE, DEADLINE, eip712.pack_approvals(approvals)
        )
    )
    grant_id = grant_id_of(acme.address, NONCE)
    assert gov.get_grant(grant_id).status == GrantStatus.ACTIVE


def test_one_approval_is_refused_by_the_contract(acme: Acme) -> None:
    gov = acme.world.gov
    with pytest.raises(ContractRevertError, match="ConsentApprovalsMissing"):
        gov.send(
            gov.calls.grant_with_approvals(
                acme.terms(), NONCE, DEADLINE, eip712.pack_approvals([acme.approval(0)])
            )
        )


def test_a_removed_agents_approval_no_longer_counts(acme: Acme) -> None:
    approvals = [acme.approval(0), acme.approval(1)]
    acme.enterprise.send(acme.enterprise.calls.remove_agent(acme.agents[1]))
    verdict = _judge(acme, approvals)
    assert not verdict.complete  # type: ignore[attr-defined]
    assert verdict.counted == ()  # type: ignore[attr-defined]
    assert len(verdict.stale) == 2  # type: ignore[attr-defined]
    gov = acme.world.gov
    with pytest.raises(ContractRevertError, match="ConsentApprovalInvalid"):
        gov.send(
            gov.calls.grant_with_approvals(
                acme.terms(), NONCE, DEADLINE, eip712.pack_approvals(approvals)
            )
        )


def test_a_suspended_agent_stops_counting(acme: Acme) -> None:
    acme.world.gov.send(acme.world.gov.calls.suspend_member(acme.agents[0]))
    verdict = _judge(acme, [acme.approval(0), acme.approval(1)])
    assert verdict.counted == (acme.agents[1],)  # type: ignore[attr-defined]
    assert verdict.stale[0][0] == acme.agents[0]  # type: ignore[attr-defined]


def test_a_service_that_lies_about_approvals_is_caught(acme: Acme) -> None:
    signer, signature = acme.approval(0)
    # attributed to another agent
    with pytest.raises(ServiceContradictedError, match=r"not .* approval"):
        _judge(acme, [(acme.agents[2], signature), acme.approval(1)])
    # one approval counted twice
    with pytest.raises(ServiceContradictedError, match="twice"):
        _judge(acme, [(signer, signature), (signer, signature)])
    # an approval of other terms
    other = eip712.approval_digest(
        acme.world.domain,
        acme.address,
        0,
        acme.world.terms(asset_id=ACME_ASSET, fields_mask=7),
        NONCE,
        DEADLINE,
    )
    with pytest.raises(ServiceContradictedError):
        _judge(acme, [(signer, eip712.sign_digest(acme.agent_keys[0], other))])
    # garbage
    with pytest.raises(ServiceContradictedError):
        _judge(acme, [(signer, b"\1" * 65)])


def test_the_indexer_keeps_the_threshold_and_each_approval(acme: Acme, db_url: str) -> None:
    """The M-of-N events are indexed, not fatal: an indexer that did not know them stopped
    at the first thresholded enterprise (an unknown event is an error by default)."""
    approvals = [acme.approval(0), acme.approval(2)]
    gov = acme.world.gov
    gov.send(
        gov.calls.grant_with_approvals(
            acme.terms(), NONCE, DEADLINE, eip712.pack_approvals(approvals)
        )
    )
    grant_id = "0x" + grant_id_of(acme.address, NONCE).hex()
    engine = db.make_engine(db_url)
    indexer = Indexer(
        rpc_url=acme.world.url,
        ledger_address=acme.world.manifest.ledger_address,
        engine=engine,
        start_block=acme.world.manifest.deploy_block,
    )
    try:
        indexer.sync_once()
        with engine.connect() as conn:
            approved = conn.execute(
                sa.select(db.grant_events.c.actor).where(
                    db.grant_events.c.event == "ConsentApproved",
                    db.grant_events.c.grant_id == grant_id,
                )
            ).scalars()
            thresholds = conn.execute(
                sa.select(db.member_events.c.args).where(
                    db.member_events.c.event == "ApprovalThresholdSet",
                    sa.func.lower(db.member_events.c.account) == acme.address.lower(),
                )
            ).scalars()
            assert sorted(a.lower() for a in approved) == sorted(
                acme.agents[i].lower() for i in (0, 2)
            )
            assert [int(t["threshold"]) for t in thresholds] == [2]
    finally:
        indexer.close()
        engine.dispose()
