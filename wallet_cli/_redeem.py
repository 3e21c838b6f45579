"""The clerk's side of a counter code: every check the chain allows before it is submitted.

In order: the signer recovered from the code is the owner of the asset on chain (else the
terms were altered or someone else signed), the grant is not on chain yet (else the code
was used), the wrapped field keys open with the clerk's own key for this grant and the
anchored root (else they were altered). Only then is the grant submitted, through the
service's relay, and reported once the chain the clerk reads shows it with these terms.
"""

from __future__ import annotations

import base64
from typing import Any

from api.client import DataSafeClient
from api.envelope import EnvelopeError, recover
from ledger import trust
from ledger.calls import grant_id_of
from ledger.eip712 import Domain, grant_digest
from ledger.models import Asset, GrantStatus, GrantTerms
from ledger.rpc import RpcClient
from ledger.trust import PinnedDeployment
from vault.errors import VaultError
from vault.keys import Keyring, Suite
from vault.packages import KeyPackage
from vault.sealing import WrappedKey
from wallet_cli import _confirm
from wallet_cli._chain import rpc_client
from wallet_cli._context import State
from wallet_cli._counter import CodeError, CounterCode
from wallet_cli._home import Profile


def terms_of(code: CounterCode) -> GrantTerms:
    return GrantTerms(
        code.asset_id, code.grantee, code.purpose, code.fields_mask, 0, code.expiry, 1
    )


def _grantor(pin: PinnedDeployment, code: CounterCode, asset: Asset) -> str:
    """The signer recovered from the code, accepted only when it owns the asset on chain."""
    try:
        grantor = recover(
            grant_digest(
                Domain(pin.chain_id, pin.ledger_address), terms_of(code), code.nonce, code.deadline
            ),
            code.signature,
        )
    except EnvelopeError:
        raise CodeError(
            "the code's signature is malformed (altered)", code="code_altered"
        ) from None
    if not asset.exists or grantor.lower() != asset.owner.lower():
        raise CodeError(
            "the code is not signed by the owner of the data it names: it was altered or "
            "mis-scanned (ask the citizen to show it again)",
            code="code_altered",
        )
    return grantor


def _check_unused(r: RpcClient, pin: PinnedDeployment, gid: bytes) -> None:
    """A code works once: its grant must not be on chain yet."""
    existing = trust.get_grant(r, pin, gid)
    if existing.status != GrantStatus.NONE:
        raise CodeError(
            f"this code was already redeemed (grant 0x{gid.hex()} is "
            f"{existing.status.name.lower()}, used {existing.uses} of 1): a code works once",
            code="code_used",
        )


def _opened_package(
    code: CounterCode, ring: Keyring, gid: bytes, asset: Asset, names: list[str]
) -> KeyPackage:
    """The code's wrapped field keys as a key package, refused unless they open with our key."""
    package = KeyPackage(
        grant_id=gid,
        asset_id=code.asset_id,
        version=asset.version,
        root=asset.root,
        field_names=tuple(trust.names_for_mask(names, code.fields_mask)),
        wrapped=WrappedKey(Suite.X25519_HKDF_SHA256_AES256GCM, ring.current.digest(), code.wrapped),
    )
    try:
        package.open(ring, grant_id=gid, root=asset.root)
    except VaultError:
        raise CodeError(
            "the field keys in the code do not open with your key for this grant: the code was "
            "altered, or made for a key you no longer hold",
            code="code_altered",
        ) from None
    return package


def _grant_body(code: CounterCode, grantor: str, package: KeyPackage) -> dict[str, Any]:
    """The ``POST /v1/grants`` body of the code's grant, as the citizen signed it."""
    return {
        "terms": {
            "asset_id": "0x" + code.asset_id.hex(),
            "grantee": code.grantee,
            "purpose": code.purpose,
            "fields_mask": code.fields_mask,
            "not_before": 0,
            "expiry": code.expiry,
            "max_uses": 1,
        },
        "grantor": grantor,
        "nonce": str(code.nonce),
        "deadline": code.deadline,
        "signature": "0x" + code.signature.hex(),
        "key_package": base64.b64encode(package.to_bytes()).decode(),
    }


def submit(
    st: State, c: DataSafeClient, p: Profile, rpc: str, code: CounterCode, ring: Keyring
) -> dict[str, Any]:
    """Check the code against the chain, submit its grant, wait until the chain shows it."""
    pin = st.require_pin(c, p)
    with rpc_client(rpc) as r:
        asset = trust.get_asset(r, pin, code.asset_id)
        grantor = _grantor(pin, code, asset)
        gid = grant_id_of(grantor, code.nonce)
        _check_unused(r, pin, gid)
        schema: dict[str, Any] = c.get(f"/v1/schemas/0x{asset.schema_id.hex()}")
        names = trust.verified_field_names(
            r, pin, asset.schema_id, list(schema.get("fields") or [])
        )
    package = _opened_package(code, ring, gid, asset, names)
    receipt: dict[str, Any] = c.post("/v1/grants", _grant_body(code, grantor, package))
    _confirm.on_chain(
        st,
        rpc,
        lambda rr, pinned: trust.get_grant(rr, pinned, gid),
        lambda got: (
            got.status == GrantStatus.ACTIVE
            and got.fields_mask == code.fields_mask
            and got.grantee.lower() == code.grantee.lower()
            and got.max_uses == 1
        ),
        what=f"grant 0x{gid.hex()} from the code",
        claimed_tx=receipt.get("tx_hash"),
        offer="The code is unused: redeem it again (through another service: --api URL).",
    )
    return {"grant_id": "0x" + gid.hex(), "grantor": grantor, "tx_hash": receipt.get("tx_hash")}
