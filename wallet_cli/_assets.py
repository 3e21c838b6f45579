"""Assets as the chain has them (given ``--rpc``), else as the service reports them."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from api.client import DataSafeClient
from ledger import trust
from ledger.models import AssetStatus, MemberStatus, Role
from vault.sealing import SealedAsset
from wallet_cli import _chain
from wallet_cli._context import State
from wallet_cli.errors import ContradictedError, RefusedError, UserError


def b32(value: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UserError(f"{what} must be 0x + 64 hex digits, got {value!r}")
    return raw


def b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RefusedError(f"the service sent {what} that is not base64") from None


def schema_fields(c: DataSafeClient, schema_id: str) -> dict[str, Any]:
    """The schema from the service; its field list is checked against the chain's hash."""
    schema: dict[str, Any] = c.get(f"/v1/schemas/{schema_id}")
    return schema


def anchored(st: State, c: DataSafeClient, asset: dict[str, Any]) -> dict[str, Any]:
    """Root, issuer, status and version of ``asset`` from the chain when ``--rpc`` is given.

    With the chain, the issuer's ISSUER role and the schema's field-list hash are
    checked too; a difference from the service is a refusal (the service is not trusted).
    """
    rpc = st.rpc()
    if rpc is None:
        return {
            "root": asset["root"],
            "issuer": asset["issuer"],
            "status": asset["status"],
            "version": asset["version"],
            "ciphertext_digest": asset["ciphertext_digest"],
            "source": "service",
            "anchored_at": None,
        }
    _, ledger = st.ledger_address(c)
    with st.chain(rpc, ledger) as lc:
        a = lc.get_asset(bytes.fromhex(asset["asset_id"][2:]))
        if a.status == AssetStatus.NONE:
            raise RefusedError(
                f"asset {asset['asset_id']} is not anchored on chain", code="not_on_chain"
            )
        calls = lc.calls
        issuer, schema, owner = lc.read_many(
            [calls.get_member(a.issuer), calls.get_schema(a.schema_id), calls.get_member(a.owner)]
        )
    if not (issuer.status == MemberStatus.ACTIVE and issuer.roles & Role.ISSUER):
        raise RefusedError(
            f"the issuer {a.issuer} does not hold the ISSUER role on chain",
            code="issuer_not_authorised",
        )
    out = {
        "root": "0x" + a.root.hex(),
        "issuer": a.issuer,
        "status": a.status.name.lower(),
        "version": a.version,
        "ciphertext_digest": "0x" + a.ciphertext_digest.hex(),
        "schema_id": "0x" + a.schema_id.hex(),
        "fields_hash": "0x" + schema.fields_hash.hex(),
        "source": "chain",
        "anchored_at": None,
        # The key the owner bound on chain (only the owner's signature sets it).
        "owner_key_hash": "0x" + owner.enc_key_hash.hex(),
    }
    for key in ("root", "issuer", "version"):
        if str(out[key]).lower() != str(asset[key]).lower():
            raise ContradictedError(
                f"the service shows {key} {asset[key]} for {asset['asset_id']} but the chain "
                f"holds {out[key]}",
                code="service_mismatch",
            )
    block = int(asset.get("anchor", {}).get("block") or 0)
    if block:
        out["anchored_at"] = _chain.block_times(rpc, [block]).get(block)
    return out


def check_fields_hash(fields: list[str], fields_hash: str) -> None:
    """The service's field names hash to the schema's field list on chain (else a lie)."""
    if "0x" + trust.fields_hash(fields).hex() != fields_hash.lower():
        raise ContradictedError(
            "the service's field names do not hash to the field list anchored on chain",
            code="schema_fields_relabelled",
        )


def check_digest(sealed_bytes: bytes, sealed: SealedAsset, expected: str) -> None:
    """The anchored ciphertext digest is of these bytes (either accepted definition)."""
    candidates = {
        "0x" + hashlib.sha256(sealed_bytes).hexdigest(),
        "0x" + sealed.ciphertext_digest.hex(),
    }
    if expected.lower() not in candidates:
        raise RefusedError(
            "the ciphertext does not match the anchored digest", code="verification_failed"
        )
