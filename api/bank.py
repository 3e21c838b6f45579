"""The bank side of a pull, verified against the chain the bank reads (SDK, no server code).

:func:`pull_verified` is the one implementation of an institution's pull: the wallet's
``datasafe pull``, the demo and every test that plays a bank call it. The service is
asked for the data; everything the bank relies on is read from its own RPC endpoint
through :mod:`ledger.trust` under the pinned deployment:

* the grant (terms, grantee) and the asset (root, issuer, schema) on chain, and the
  service's grant row against them (a widened row is a lie);
* the schema's field names, accepted only when they hash to the list anchored on chain;
* the access record: emitted by the pinned ledger, in a successful receipt of a
  canonical block, carrying this request's grant, grantee, nonce, mask and a use the
  grant has had (:func:`ledger.trust.verify_access_record`);
* every disclosed leaf at a bit of the grant's mask on chain, under the schema's name,
  decrypting and proving against the anchored root and the issuer's role.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass, field
from typing import Any

from api.client import DataSafeClient
from api.envelope import address_of
from api.terms import Terms, describe_terms
from ledger import trust
from ledger.calls import LedgerCalls
from ledger.eip712 import Domain, sign_access_request
from ledger.models import AccessRequest, Asset, Grant, MemberStatus, Role
from ledger.nonces import next_access_nonce
from ledger.rpc import RpcClient
from ledger.trust import AccessRecord, PinnedDeployment, ServiceContradictedError
from vault.errors import VaultError
from vault.keys import KeySource
from vault.packages import Disclosure, KeyPackage, open_disclosure, open_key_package
from vault.sealing import SealedAsset


@dataclass(frozen=True)
class GrantView:
    """A grant as the chain has it, with the field names its mask stands for."""

    grant_id: bytes
    grant: Grant
    asset: Asset
    schema_fields: list[str]
    fields: list[str]
    row: dict[str, Any]


@dataclass
class VerifiedPull:
    grant_id: str
    asset_id: str
    issuer: str
    root: str
    version: int
    purpose: int
    fields: dict[str, bytes]
    access: AccessRecord
    checks: list[str] = field(default_factory=list)

    @property
    def use(self) -> int:
        return self.access.use


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise ServiceContradictedError(
            f"the service sent {what} that is not base64", code="verification_failed"
        ) from None


def pinned_client(
    base_url: str, key: bytes | str, rpc: RpcClient, pin: PinnedDeployment, **kwargs: Any
) -> DataSafeClient:
    """A client signing for the pinned ledger, once the chain and the service's hint agree.

    Raises :class:`ledger.trust.DeploymentMismatchError` when the RPC chain is not the
    pinned deployment or the service's ``/v1/info`` names another chain or ledger.
    """
    trust.verify_deployment(rpc, pin)
    c = DataSafeClient(
        base_url, key, chain_id=pin.chain_id, ledger_address=pin.ledger_address, **kwargs
    )
    try:
        info = c.info()
        trust.check_hint(pin, info.get("chain_id"), info.get("ledger_address"))
    except BaseException:
        c.close()
        raise
    return c


def grant_view(
    c: DataSafeClient,
    rpc: RpcClient,
    pin: PinnedDeployment,
    grant_id: str,
    grantee: str | None,
) -> GrantView:
    """The grant from the chain; the service's row and schema names checked against it.

    ``grantee``: the caller, when it must be the grantee (a bank); None for the grantor.
    """
    gid = bytes.fromhex(grant_id.removeprefix("0x"))
    row: dict[str, Any] = c.get(f"/v1/grants/0x{gid.hex()}")
    grant = trust.get_grant(rpc, pin, gid)
    trust.check_grant_row(grant, row, gid)
    if grantee is not None and grant.grantee.lower() != grantee.lower():
        raise ServiceContradictedError(
            f"grant 0x{gid.hex()} is made to {grant.grantee} on chain, not to {grantee}",
            code="not_grantee",
        )
    asset = trust.get_asset(rpc, pin, grant.asset_id)
    names = verified_fields(c, rpc, pin, asset)
    granted = trust.names_for_mask(names, grant.fields_mask)
    served = row.get("fields")
    if served is not None and list(served) != granted:
        raise ServiceContradictedError(
            f"the service labels the granted fields {', '.join(served)}; by the schema on chain "
            f"they are {', '.join(granted)}",
            code="schema_fields_relabelled",
        )
    return GrantView(gid, grant, asset, names, granted, row)


def verified_fields(
    c: DataSafeClient, rpc: RpcClient, pin: PinnedDeployment, asset: Asset
) -> list[str]:
    """The field names of ``asset``'s schema, served and accepted when they hash as on chain."""
    schema: dict[str, Any] = c.get(f"/v1/schemas/0x{asset.schema_id.hex()}")
    return trust.verified_field_names(rpc, pin, asset.schema_id, list(schema.get("fields") or []))


def describe_view(view: GrantView) -> str:
    """The grant in words, written here from the chain's grant, asset and checked names."""
    return describe_terms(view.grant, view.schema_fields, _asset_words(view.asset))


def checked_terms_text(
    c: DataSafeClient, rpc: RpcClient, pin: PinnedDeployment, terms: Terms
) -> str:
    """Terms the client checked itself (signed, or verified by a signature) in words: the
    asset and its schema's field names read from the chain, never the service's text."""
    aid = terms.asset_id
    asset = trust.get_asset(rpc, pin, bytes.fromhex(aid[2:]) if isinstance(aid, str) else aid)
    return describe_terms(terms, verified_fields(c, rpc, pin, asset), _asset_words(asset))


def _asset_words(asset: Asset) -> dict[str, Any]:
    return {"version": asset.version, "issuer": asset.issuer}


def check_issuer(rpc: RpcClient, pin: PinnedDeployment, issuer: str) -> None:
    member = trust.get_member(rpc, pin, issuer)
    if not (member.status == MemberStatus.ACTIVE and member.roles & Role.ISSUER):
        raise ServiceContradictedError(
            f"the issuer {issuer} does not hold the ISSUER role on chain",
            code="issuer_not_authorised",
        )


def _open(
    view: GrantView, pulled: dict[str, Any], ring: KeySource, root: bytes, issuer: str
) -> dict[str, bytes]:
    raw = _b64(pulled.get("disclosure"), "a disclosure")
    try:
        disclosure: Disclosure | None = Disclosure.from_bytes(raw)
    except VaultError:
        disclosure = None
    mask = view.grant.fields_mask
    if disclosure is not None:
        leaf_count = disclosure.fields[0].proof.leaf_count if disclosure.fields else 0
        trust.check_disclosed_indices(
            view.schema_fields,
            mask,
            [(d.proof.index, d.field.name) for d in disclosure.fields],
            leaf_count,
        )
        return open_disclosure(
            disclosure,
            ring,
            grant_id=view.grant_id,
            expected_root=root,
            expected_issuer=bytes.fromhex(issuer[2:]),
        )
    # A service that serves the whole sealed bundle: the key package opens only granted fields.
    if "key_package" not in pulled:
        raise ServiceContradictedError(
            "the service's disclosure does not parse", code="verification_failed"
        )
    sealed = SealedAsset.from_bytes(raw)
    package = KeyPackage.from_bytes(_b64(pulled["key_package"], "a key package"))
    values = open_key_package(sealed, package, ring, grant_id=view.grant_id, expected_root=root)
    return {k: v for k, v in values.items() if k in set(view.fields)}


def _signed_pull(
    c: DataSafeClient, pin: PinnedDeployment, key: bytes, view: GrantView, ttl: int
) -> tuple[AccessRequest, dict[str, Any]]:
    """An access request for the whole grant, signed for the pinned ledger, and the answer."""
    mask = view.grant.fields_mask
    request = AccessRequest(view.grant_id, mask, next_access_nonce(), int(time.time()) + ttl)
    signature = sign_access_request(key, Domain(pin.chain_id, pin.ledger_address), request)
    pulled: dict[str, Any] = c.post(
        "/v1/access",
        {
            "grant_id": "0x" + view.grant_id.hex(),
            "fields_mask": mask,
            "nonce": str(request.nonce),
            "deadline": request.deadline,
            "signature": "0x" + signature.hex(),
        },
    )
    return request, pulled


def _access_record(
    rpc: RpcClient,
    pin: PinnedDeployment,
    pulled: dict[str, Any],
    view: GrantView,
    me: str,
    request: AccessRequest,
) -> AccessRecord:
    """The access record the service names, checked on the chain this client reads."""
    access = (pulled.get("access") or {}).get("tx_hash")
    if not access:
        raise ServiceContradictedError(
            "the service released data without naming its access record",
            code="access_not_recorded",
        )
    return trust.verify_access_record(
        rpc,
        pin,
        tx_hash=str(access),
        grant_id=view.grant_id,
        grantee=me,
        nonce=request.nonce,
        fields_mask=request.fields_mask,
        claimed_use=pulled.get("use"),
    )


def pull_verified(
    c: DataSafeClient,
    rpc: RpcClient,
    pin: PinnedDeployment,
    *,
    grant_id: str,
    key: bytes,
    ring: KeySource,
    view: GrantView | None = None,
    ttl: int = 600,
) -> VerifiedPull:
    """Sign an access request for the pinned ledger, pull, and verify everything on chain.

    Raises :class:`ledger.trust.TrustError` subclasses (the chain contradicts the service,
    the deployment is not the pinned one), :class:`vault.errors.VaultError` (a field does
    not decrypt or prove), :class:`api.client.DataSafeProblemError` (the service refused).
    """
    trust.verify_deployment(rpc, pin)
    me = address_of(key)
    view = view or grant_view(c, rpc, pin, grant_id, me)
    checks = [
        f"deployment {pin.fingerprint} (chain {pin.chain_id}, ledger {pin.ledger_address})",
        f"grant terms and field names ({', '.join(view.fields)}) read from the chain",
    ]
    # judged at the next block's time, as the service's pull and the wallet's verify judge it
    verdict, _, _ = trust.read_at_next_block(
        rpc, pin.ledger_address, LedgerCalls().check(view.grant_id, me, view.grant.fields_mask)
    )
    if not verdict.allowed:
        raise trust.TrustError(
            f"the chain does not allow this pull: {verdict.reason.name.lower()}",
            code=verdict.reason.name.lower(),
        )
    request, pulled = _signed_pull(c, pin, key, view, ttl)
    record = _access_record(rpc, pin, pulled, view, me, request)
    checks.append(
        f"access recorded by the pinned ledger in {record.tx_hash} (block {record.block_number}, "
        f"use {record.use})"
    )
    asset = view.asset
    served_asset = str((pulled.get("anchor") or {}).get("asset_id", "")).lower()
    if served_asset and served_asset != "0x" + view.grant.asset_id.hex():
        raise ServiceContradictedError(
            "the data is from another asset than the grant's", code="service_mismatch"
        )
    check_issuer(rpc, pin, asset.issuer)
    root = "0x" + asset.root.hex()
    checks.append(f"issuer {asset.issuer} holds ISSUER; root {root} anchored")
    values = _open(view, pulled, ring, asset.root, asset.issuer)
    if sorted(values) != sorted(view.fields):
        raise ServiceContradictedError(
            "the disclosure does not hold exactly the granted fields", code="disclosure_mismatch"
        )
    checks.append(
        f"{len(values)} field(s) at the grant's leaves, decrypted and proven against the root"
    )
    return VerifiedPull(
        grant_id="0x" + view.grant_id.hex(),
        asset_id="0x" + view.grant.asset_id.hex(),
        issuer=asset.issuer,
        root=root,
        version=asset.version,
        purpose=view.grant.purpose,
        fields=values,
        access=record,
        checks=checks,
    )


__all__ = [
    "GrantView",
    "VerifiedPull",
    "check_issuer",
    "checked_terms_text",
    "describe_view",
    "grant_view",
    "pinned_client",
    "pull_verified",
    "verified_fields",
]
