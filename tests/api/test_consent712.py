"""The api signs and checks consents with ledger.eip712: its digests equal the contract's
``hash*`` views on the deployment the api serves (the world's domain)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _api_world import World

from api import chain
from ledger import eip712
from ledger.calls import grant_id_of
from ledger.models import AccessRequest, GrantTerms


def test_digests_equal_contract_views(world: World) -> None:
    f = world.ledger.functions
    terms = (b"\x01" * 32, world.bank.address, 7, 0b10110, 5, 2**40 - 1, 3, 0)
    ours = eip712.grant_digest(world.domain, GrantTerms(*terms), 99, 1234)
    assert ours == bytes(f.hashGrant(terms, 99, 1234).call())
    gid = b"\x02" * 32
    views = {
        "RevokeConsent": f.hashRevoke,
        "PauseConsent": f.hashPause,
        "ResumeConsent": f.hashResume,
    }
    for kind, view in views.items():
        assert eip712.status_digest(world.domain, kind, gid, 4, 77) == bytes(  # type: ignore[arg-type]
            view(gid, 4, 77).call()
        )
    request = AccessRequest(gid, 3, 2**200, 9)
    assert eip712.access_digest(world.domain, request) == bytes(
        f.hashAccessRequest((gid, 3, 2**200, 9)).call()
    )
    assert grant_id_of(world.citizen.address, 5) == bytes(
        f.grantIdOf(world.citizen.address, 5).call()
    )


def test_ledger_domain_is_memoised_per_deployment(world: World) -> None:
    again = eip712.ledger_domain(world.chain_id, world.ledger_address.lower())
    assert again is world.domain
    other = eip712.ledger_domain(world.chain_id + 1, world.ledger_address)
    assert other.separator != world.domain.separator


@pytest.mark.parametrize("address_case", [str.lower, str.upper])
def test_member_read_decodes_with_ledger_models(world: World, address_case: Any) -> None:
    import aiohttp

    async def read() -> tuple[chain.Member, tuple[bool, int, int], chain.GrantView]:
        async with aiohttp.ClientSession() as session:
            gateway = chain.ChainGateway(world.rpc_url, world.ledger_address, session)
            reads = chain.LedgerReads(gateway)
            addr = "0x" + address_case(world.bank.address[2:])
            member = await gateway.member(addr)
            # the hand-encoded check reaches the real contract and decodes its answer
            return member, await reads.check(b"\x42" * 32, addr, 1), await reads.grant(b"\x42" * 32)

    m, verdict, grant = asyncio.run(read())
    assert verdict[:2] == (False, 1)  # Reason.NOT_FOUND
    assert not grant.exists and grant.status == "none"
    assert m.address == world.bank.address
    assert m.role_names() == ["consumer"]
    assert m.kind.name == "BANK"
    assert m.has(chain.models.Role.CONSUMER)
    assert not m.has(chain.models.Role.ISSUER)
