"""Our EIP-712 digests of consent messages equal the contract's ``hash*`` views."""

from __future__ import annotations

from _api_world import World

from api._consent712 import access_digest, action_digest, grant_digest, grant_id_of


def test_digests_equal_contract_views(world: World) -> None:
    f = world.ledger.functions
    terms = (b"\x01" * 32, world.bank.address, 7, 0b10110, 5, 2**40 - 1, 3)
    ours = grant_digest(
        world.domain,
        asset_id=terms[0],
        grantee=terms[1],
        purpose=7,
        fields_mask=0b10110,
        not_before=5,
        expiry=2**40 - 1,
        max_uses=3,
        nonce=99,
        deadline=1234,
    )
    assert ours == bytes(f.hashGrant(terms, 99, 1234).call())
    gid = b"\x02" * 32
    assert action_digest(world.domain, "revoke", gid, 4, 77) == bytes(
        f.hashRevoke(gid, 4, 77).call()
    )
    assert action_digest(world.domain, "pause", gid, 4, 77) == bytes(f.hashPause(gid, 4, 77).call())
    assert action_digest(world.domain, "resume", gid, 4, 77) == bytes(
        f.hashResume(gid, 4, 77).call()
    )
    assert access_digest(world.domain, gid, 3, 2**200, 9) == bytes(
        f.hashAccessRequest((gid, 3, 2**200, 9)).call()
    )
    assert grant_id_of(world.citizen.address, 5) == bytes(
        f.grantIdOf(world.citizen.address, 5).call()
    )
