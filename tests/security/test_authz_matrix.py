"""Authorisation matrix: every operation of the live OpenAPI document × every wrong actor.

The operations are read from the OpenAPI document the live server serves; :data:`POLICY`
says, per operation id, who may call it (those are not called) and whether other active
members get their own, scoped view (a list that must not contain anyone else's objects).
Everyone else — other members, suspended members, the agent of a suspended enterprise,
a valid signature by a key that is no member, no signature at all — must get a 4xx, and a
wrong actor's write must leave the database and the chain exactly as they were.

A route added without a :data:`POLICY` entry fails :func:`test_policy_covers_every_operation`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from _api_seed import FIELDS, approval_signature, proposal_payload
from _api_world import Actor
from _scene import (
    ACTOR_NAMES,
    NOT_ACTIVE,
    Scene,
    ack_payload,
    build_scene,
    claim_answer,
    claim_payload,
    grant_payload,
    seal_action,
    seal_payload,
)

from api.app import create_app
from api.settings import ApiSettings
from ledger import sealed as sl
from ledger.models import AckKind

ACTIVE = frozenset(ACTOR_NAMES) - NOT_ACTIVE
EVERYONE = frozenset(ACTOR_NAMES)
SIGNED = EVERYONE - {"unsigned"}


@dataclass(frozen=True)
class Rule:
    """``allowed``: may call it (not called here). ``scoped``: other active members may get
    a 2xx with their own view, which must not name the scene's objects."""

    allowed: frozenset[str]
    scoped: bool = False
    #: A suspended member may call it (revoke, pause: a suspension never stops a member
    #: withdrawing consent), so its signed request spends a nonce like an active member's;
    #: it must still write nothing else when the object is not its own.
    suspended_calls: bool = False


def _only(*names: str) -> frozenset[str]:
    return frozenset(names)


POLICY: dict[str, Rule] = {
    "health_healthz": Rule(EVERYONE),
    "health_readyz": Rule(EVERYONE),
    "meta_info": Rule(EVERYONE),
    "meta_whoami": Rule(SIGNED),
    "members_directory": Rule(ACTIVE),
    "members_me": Rule(ACTIVE),
    "members_get_member": Rule(ACTIVE),
    "members_publish_key": Rule(_only("citizen")),  # the body is the citizen's own key
    "schemas_list_schemas": Rule(ACTIVE),
    "schemas_get_schema": Rule(ACTIVE),
    "schemas_register_schema": Rule(_only("issuer")),  # the schema is the issuer's
    "assets_list_assets": Rule(_only("citizen", "issuer", "regulator"), scoped=True),
    "assets_issue_asset": Rule(_only("issuer", "issuer2")),
    "assets_new_version": Rule(_only("issuer")),
    "assets_dispute": Rule(_only("citizen")),
    "assets_resolve": Rule(_only("issuer")),
    "assets_get_asset": Rule(_only("citizen", "issuer", "regulator")),
    "assets_get_sealed": Rule(_only("citizen")),
    "grants_list_grants": Rule(_only("citizen", "bank", "regulator"), scoped=True),
    "grants_create_grant": Rule(_only("citizen")),
    "grants_revoke_grant": Rule(_only("citizen"), suspended_calls=True),
    "grants_pause_grant": Rule(_only("citizen"), suspended_calls=True),
    "grants_resume_grant": Rule(_only("citizen")),
    "grants_get_grant": Rule(_only("citizen", "bank", "regulator")),
    "grants_verify_grant": Rule(_only("bank")),
    "access_list_accesses": Rule(_only("citizen", "bank", "regulator"), scoped=True),
    "access_pull": Rule(_only("bank")),
    # Any active member relays its own signed forward request (the flow checks the signer is
    # the caller); members who are not active are refused before a nonce is spent.
    "forward_forward": Rule(ACTIVE),
    "trace_trace_accesses": Rule(_only("regulator")),
    "trace_trace_consents": Rule(_only("regulator")),
    "audit_verify": Rule(_only("regulator")),
    "history_my_history": Rule(_only("citizen"), scoped=True),
    # An event stream: active members would hold it open; only the refused are called.
    "history_my_events": Rule(ACTIVE),
    "webhooks_list_webhooks": Rule(_only("bank"), scoped=True),
    "webhooks_create_webhook": Rule(_only("bank", "bank2")),
    "webhooks_delete_webhook": Rule(_only("bank")),
    "webhooks_deliveries": Rule(_only("bank")),
    # Claims (issue 17): a subject files its own signed claim; the department answers its own.
    "claims_file_claim": Rule(_only("citizen")),
    "claims_list_claims": Rule(_only("citizen", "issuer", "regulator"), scoped=True),
    "claims_claim_stats": Rule(_only("regulator")),
    "claims_get_claim": Rule(_only("citizen", "issuer", "regulator")),
    "claims_fulfil_claim": Rule(_only("issuer")),
    "claims_refuse_claim": Rule(_only("issuer")),
    # M-of-N proposals (issue 18): the firm's live agents propose and approve; the firm and its
    # live agents read. The agent of the suspended enterprise is refused for its own enterprise.
    "proposals_create_proposal": Rule(_only("firm_agent", "firm_agent2")),
    "proposals_list_proposals": Rule(_only("firm", "firm_agent", "firm_agent2")),
    "proposals_get_proposal": Rule(_only("firm", "firm_agent", "firm_agent2")),
    "proposals_approve_proposal": Rule(_only("firm_agent", "firm_agent2")),
    # Sealed accesses (issue 18): the asset's department seals; a regulator lists all, extends
    # and sees the overdue; a subject lists its own; the record is its subject's, its
    # department's and the regulators'. Before its date only the department may unseal (the
    # scene's seal is before its date: everyone else, opening in hand, is refused).
    "sealed_create_seal": Rule(_only("issuer")),
    "sealed_list_seals": Rule(_only("citizen", "regulator"), scoped=True),
    "sealed_list_overdue": Rule(_only("regulator")),
    "sealed_get_seal": Rule(_only("citizen", "issuer", "regulator")),
    "sealed_extend_seal": Rule(_only("regulator")),
    "sealed_unseal_seal": Rule(_only("issuer")),
    # Acknowledgements (issue 19): the grantee acknowledges; institutions, subjects and
    # regulators list what is owed, each its own.
    # (The scene's revoked grant owes its deletion: only the signer stands in the way.)
    "acknowledgements_acknowledge": Rule(_only("bank")),
    "acknowledgements_owed": Rule(_only("citizen", "bank", "regulator"), scoped=True),
}


def _document() -> dict[str, Any]:
    # The same document the live server serves (checked in test_live_document_is_the_one_used).
    doc: dict[str, Any] = create_app(ApiSettings()).openapi()
    return doc


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        (op["operationId"], method.upper(), path, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
    ]


OPERATIONS = _operations(_document())


@pytest.fixture(scope="module")
def scene(world_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    with build_scene(world_session, tmp_path_factory.mktemp("authz")) as built:
        yield built


def test_policy_covers_every_operation(scene: Scene) -> None:
    live = httpx.get(scene.server.url + "/openapi.json").json()
    assert _operations(live) == OPERATIONS
    assert {op_id for op_id, *_ in OPERATIONS} == set(POLICY), "a route without a rule"


# ---- requests a wrong actor would send ------------------------------------------------------


def _signer_or_outsider(scene: Scene, name: str) -> Actor:
    """Whose key signs the messages inside a body (the unsigned caller borrows a stranger's)."""
    return scene.actors[name] or scene.actors["outsider"]  # type: ignore[return-value]


def _b32(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def _asset_for(scene: Scene, name: str) -> str:
    # The agent of the suspended enterprise goes after the enterprise's asset.
    return scene.enterprise_asset.hex if name == "agent_of_suspended" else scene.asset.hex


def _body(scene: Scene, op_id: str, name: str) -> Any:
    w = scene.world
    me = _signer_or_outsider(scene, name)
    asset = scene.enterprise_asset if name == "agent_of_suspended" else scene.asset
    aid = asset.asset_id
    builders: dict[str, Callable[[], Any]] = {
        "members_publish_key": lambda: {
            "public_key": base64.b64encode(w.enc_key(w.citizen).public_key.to_bytes()).decode()
        },
        "schemas_register_schema": lambda: {
            "schema_id": "0x" + scene.asset.schema_id.hex(),
            "name": "taken over",
            "fields": FIELDS,
        },
        "assets_issue_asset": lambda: {"sealed": "AA==", "raw_transaction": "0x02"},
        "assets_new_version": lambda: {"sealed": "AA==", "raw_transaction": "0x02"},
        "assets_dispute": lambda: {
            "raw_transaction": w.raw_tx(me, "disputeAsset", aid, b"\x01" * 32)
        },
        "assets_resolve": lambda: {
            "raw_transaction": w.raw_tx(me, "resolveDispute", aid, b"\x03" * 32)
        },
        "grants_create_grant": lambda: grant_payload(w, me, asset, w.bank)[0],
        "grants_revoke_grant": lambda: w.sign_action(me, "revoke", scene.grant_id),
        "grants_pause_grant": lambda: w.sign_action(me, "pause", scene.grant_id),
        "grants_resume_grant": lambda: w.sign_action(me, "resume", scene.grant_id),
        "access_pull": lambda: w.sign_access(me, scene.grant_id, 0b00011),
        "webhooks_create_webhook": lambda: {"url": "http://127.0.0.1:9/h"},
        # The citizen's own claim, sent by someone else; answers signed by the caller.
        "claims_file_claim": lambda: claim_payload(w, w.citizen, scene.asset.schema_id),
        "claims_fulfil_claim": lambda: claim_answer(
            w, me, "fulfilClaim", _b32(scene.claim_id), aid
        ),
        "claims_refuse_claim": lambda: claim_answer(
            w, me, "refuseClaim", _b32(scene.claim_id), 1, b"\0" * 32
        ),
    }
    seal_id, opening = scene.seal_id, scene.opening
    assert opening is not None
    builders |= {
        "sealed_create_seal": lambda: seal_payload(w, me, aid)[0],
        "sealed_extend_seal": lambda: seal_action(
            w, me, sl.encode_extend(seal_id, w.now() + 60 * 86_400, b"\x05" * 32)
        ),
        # The real opening: only the date and the caller stand in the way.
        "sealed_unseal_seal": lambda: seal_action(w, me, sl.encode_unseal(seal_id, opening)),
        "acknowledgements_acknowledge": lambda: ack_payload(
            w, me, AckKind.DELETION, scene.ended_grant_id
        ),
    }
    builders |= {
        # A real proposal and a real approval, signed by the caller: only who it is stands in
        # the way (the agent of the suspended enterprise proposes its own enterprise's asset).
        "proposals_create_proposal": lambda: _proposal_body(scene, name, me),
        "proposals_approve_proposal": lambda: {
            "signature": approval_signature(w, me, _firm(scene), scene.proposal)
        },
    }
    build = builders.get(op_id)
    return None if build is None else build()


def _firm(scene: Scene) -> Actor:
    assert scene.firm is not None
    return scene.firm


def _proposal_body(scene: Scene, name: str, me: Actor) -> dict[str, Any]:
    if name == "agent_of_suspended":
        return proposal_payload(scene.world, me, scene.enterprise, scene.enterprise_asset)
    assert scene.firm_asset is not None
    return proposal_payload(scene.world, me, _firm(scene), scene.firm_asset)


def _target(scene: Scene, path: str, name: str, op: dict[str, Any]) -> str:
    values = {
        "asset_id": _asset_for(scene, name),
        "grant_id": scene.grant_id,
        "webhook_id": scene.webhook_id,
        "schema_id": "0x" + scene.asset.schema_id.hex(),
        "address": scene.world.citizen.address,
        "claim_id": scene.claim_id,
        "seal_id": str(scene.seal_id),
        "proposal_id": scene.proposal["proposal_id"],
    }
    for key, value in values.items():
        path = path.replace("{" + key + "}", value)
    assert "{" not in path, f"no value for a path parameter of {path}"
    # The agent of the suspended enterprise asks for its own enterprise's proposals.
    owner = scene.enterprise if name == "agent_of_suspended" else _firm(scene)
    query = {"fields_mask": "3", "enterprise": owner.address}
    required = [
        p["name"] for p in op.get("parameters", []) if p["in"] == "query" and p.get("required")
    ]
    if required:
        path += "?" + "&".join(f"{q}={query[q]}" for q in required)
    return path


def _secrets(scene: Scene) -> list[str]:
    return [
        scene.asset.hex.lower(),
        scene.enterprise_asset.hex.lower(),
        scene.grant_id.lower(),
        scene.webhook_id.lower(),
        scene.claim_id.lower(),
        scene.ended_grant_id.lower(),
        str(scene.proposal["proposal_id"]).lower(),
        "0x" + scene.opening.commitment().hex() if scene.opening else "<no seal>",
    ]


# ---- the matrix -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op_id", "method", "path"),
    [(op_id, method, path) for op_id, method, path, _ in OPERATIONS],
    ids=[op_id for op_id, *_ in OPERATIONS],
)
def test_no_wrong_actor_is_allowed(scene: Scene, op_id: str, method: str, path: str) -> None:
    rule = POLICY[op_id]
    op = next(o for i, _, _, o in OPERATIONS if i == op_id)
    wrong = [n for n in ACTOR_NAMES if n not in rule.allowed]
    violations: list[str] = []
    for name in wrong:
        body = _body(scene, op_id, name) if method != "GET" else None
        target = _target(scene, path, name, op)
        # Requests of those who may not call the route at all must not even spend a nonce.
        strict = name in NOT_ACTIVE and not (rule.suspended_calls and name == "suspended")
        before = scene.fingerprint(nonces=strict) if method != "GET" else None
        with scene.client(name) as c:
            resp = c.request(method, target, json_body=body)
        text = resp.text.lower()
        if 200 <= resp.status_code < 300:
            leaked = [s for s in _secrets(scene) if s in text]
            if not (rule.scoped and name in ACTIVE) or leaked:
                violations.append(f"{name}: {resp.status_code} {resp.text[:200]}")
        elif not 400 <= resp.status_code < 500:
            violations.append(f"{name}: {resp.status_code} (not a refusal) {resp.text[:200]}")
        if before is not None:
            after = scene.fingerprint(nonces=strict)
            moved = {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}
            if moved:
                violations.append(f"{name}: {resp.status_code}, wrote {moved}")
        if name in NOT_ACTIVE and resp.status_code < 300:
            violations.append(f"{name}: not an active member, yet {resp.status_code}")
    assert not violations, f"{method} {path}:\n" + "\n".join(violations)


def test_refusals_name_the_reason(scene: Scene) -> None:
    """Spot checks that the refusals are the right ones, not incidental 4xx."""
    expect = {
        "unsigned": (401, "unauthenticated"),
        "outsider": (403, "not_member"),
        "suspended": (403, "member_suspended"),
    }
    for name, (status, code) in expect.items():
        with scene.client(name) as c:
            resp = c.request("POST", "/v1/access", json_body=_body(scene, "access_pull", name))
        assert resp.status_code == status and resp.json()["code"] == code, resp.text
    with scene.client("bank2") as c:
        resp = c.request("GET", f"/v1/grants/{scene.grant_id}/verify?fields_mask=3")
        assert resp.json()["code"] == "not_grantee"
        resp = c.request("DELETE", f"/v1/webhooks/{scene.webhook_id}")
        assert resp.json()["code"] == "not_found"


def test_sealed_and_acknowledgement_refusals_name_the_reason(scene: Scene) -> None:
    """The new writes are refused for the reason that matters, not for a malformed body: the
    same builders, signed by the rightful actor, are accepted (last: they change the scene)."""
    unseal, extend = (f"/v1/sealed/{scene.seal_id}/{verb}" for verb in ("unseal", "extend"))
    expect = [
        ("/v1/sealed", "sealed_create_seal", "issuer2", 403, "not_issuer"),
        (unseal, "sealed_unseal_seal", "citizen", 409, "seal_too_early"),
        (unseal, "sealed_unseal_seal", "regulator", 409, "seal_too_early"),
        (extend, "sealed_extend_seal", "issuer", 403, "role_required"),
        ("/v1/acknowledgements", "acknowledgements_acknowledge", "bank2", 403, "not_grantee"),
        ("/v1/acknowledgements", "acknowledgements_acknowledge", "citizen", 403, "role_required"),
        ("/v1/sealed", "sealed_create_seal", "issuer", 201, None),
        ("/v1/acknowledgements", "acknowledgements_acknowledge", "bank", 200, None),
        (unseal, "sealed_unseal_seal", "issuer", 200, None),
    ]
    for path, op_id, name, status, code in expect:
        with scene.client(name) as c:
            resp = c.request("POST", path, json_body=_body(scene, op_id, name))
        assert resp.status_code == status, (name, op_id, resp.text)
        assert code is None or resp.json()["code"] == code, (name, op_id, resp.text)


def test_proposal_refusals_name_the_reason(scene: Scene) -> None:
    """Proposals are refused for who asks, not for a malformed body: the same builders, signed
    by the firm's second agent, are accepted and its approval relays the grant (last: this
    changes the scene)."""
    pid = scene.proposal["proposal_id"]
    approvals = f"/v1/proposals/{pid}/approvals"
    expect = [
        ("POST", "/v1/proposals", "proposals_create_proposal", "firm", 403, "not_agent"),
        ("POST", "/v1/proposals", "proposals_create_proposal", "citizen2", 403, "not_agent"),
        ("POST", approvals, "proposals_approve_proposal", "firm", 403, "not_agent"),
        ("POST", approvals, "proposals_approve_proposal", "agent_of_suspended", 403, "not_agent"),
        ("GET", f"/v1/proposals/{pid}", None, "bank", 403, "forbidden"),
        ("GET", f"/v1/proposals/{pid}", None, "firm", 200, None),
        ("POST", "/v1/proposals", "proposals_create_proposal", "firm_agent2", 201, None),
        ("POST", approvals, "proposals_approve_proposal", "firm_agent2", 200, None),
    ]
    for method, path, op_id, name, status, code in expect:
        body = _body(scene, op_id, name) if op_id else None
        with scene.client(name) as c:
            resp = c.request(method, path, json_body=body)
        assert resp.status_code == status, (name, path, resp.text)
        assert code is None or resp.json()["code"] == code, (name, path, resp.text)
    with scene.client("firm") as c:
        shown = c.get(f"/v1/proposals/{pid}")
    assert shown["status"] == "granted", shown
    grant = scene.world.ledger.functions.getGrant(bytes.fromhex(pid[2:])).call()
    assert grant[1] == scene.world.bank.address
