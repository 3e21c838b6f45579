"""Institution commands (bank, notary, insurer): ``datasafe verify`` and ``datasafe pull``.

A pull is verified here, not trusted: the grant is read from the chain, the
access record must be in the access transaction's receipt, each field must
decrypt and prove against the root the issuer anchored on chain, and the
issuer must hold the ISSUER role.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from api.client import DataSafeClient
from ledger.abi import ledger_abi
from ledger.eip712 import Domain, sign_access_request
from ledger.models import AccessRequest, GrantStatus
from vault.errors import VaultError
from vault.packages import Disclosure, KeyPackage, open_disclosure, open_key_package
from vault.sealing import SealedAsset
from wallet_cli import _assets
from wallet_cli._context import JsonOpt, State, command, state
from wallet_cli._render import kv, purpose_words, table, when
from wallet_cli.contacts import name_of
from wallet_cli.errors import RefusedError, UserError


def _mask_for(grant: dict[str, Any], fields: str | None) -> tuple[list[str], int]:
    granted: list[str] = list(grant["fields"] or [])
    if not fields:
        return granted, int(grant["terms"]["fields_mask"])
    wanted = [f.strip() for f in fields.split(",") if f.strip()]
    bits = [i for i in range(64) if int(grant["terms"]["fields_mask"]) >> i & 1]
    by_name = dict(zip(granted, bits, strict=False))
    unknown = [f for f in wanted if f not in by_name]
    if unknown:
        raise UserError(
            f"the grant does not cover {', '.join(map(repr, unknown))}; it covers: "
            f"{', '.join(granted)}",
            code="fields_not_granted",
        )
    mask = 0
    for f in wanted:
        mask |= 1 << by_name[f]
    return wanted, mask


def _verdict(st: State, c: DataSafeClient, gid: str, me: str, mask: int) -> dict[str, Any]:
    verdict: dict[str, Any] = c.get(f"/v1/grants/{gid}/verify", params={"fields_mask": mask})
    rpc = st.rpc()
    if rpc is not None:
        with st.chain(rpc, st.ledger_address(c)[1]) as lc:
            # judged as the service judges: at the time an access would be recorded
            res, _ = lc.check_at_next_block(bytes.fromhex(gid[2:]), me, mask)
        if res.allowed != verdict["allowed"]:
            raise RefusedError(
                "the service's verdict differs from the chain's check", code="service_mismatch"
            )
        verdict["checked_on_chain"] = True
    return verdict


FieldsOpt = Annotated[str | None, typer.Option(help="Field names (default: all granted)")]


@command
def verify(
    grant: Annotated[str, typer.Argument(help="Grant id (0x…)")],
    fields: FieldsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Institution: may I read these fields under this grant right now? (chain's answer)

    Example: datasafe -p citybank verify 0xab… --fields name,income
    """
    st = state()
    _assets.b32(grant, "grant id")
    p, key = st.unlock()
    with st.client(key, p) as c:
        g: dict[str, Any] = c.get(f"/v1/grants/{grant}")
        names, mask = _mask_for(g, fields)
        verdict = _verdict(st, c, grant, p.address, mask)
    verdict["fields"] = names
    if not verdict["allowed"]:
        raise RefusedError(
            f"not allowed: {verdict['reason']} ({verdict['code']})", code=verdict["code"]
        )
    st.emit(
        verdict,
        lambda con: con.print(
            f"Allowed: {', '.join(names)} under grant {grant} "
            f"(for {purpose_words(g['terms']['purpose'])}, until {when(g['terms']['expiry'])}, "
            f"block {verdict['block']})"
        ),
    )


def _open(
    pulled: dict[str, Any], ring: Any, gid: bytes, root: bytes, issuer: str
) -> dict[str, bytes]:
    raw = _assets.b64(pulled["disclosure"], "a disclosure")
    try:
        disclosure = Disclosure.from_bytes(raw)
    except VaultError:
        disclosure = None
    if disclosure is not None:
        return open_disclosure(
            disclosure,
            ring,
            grant_id=gid,
            expected_root=root,
            expected_issuer=bytes.fromhex(issuer[2:]),
        )
    # A service that serves the whole sealed bundle: the key package opens only granted fields.
    if "key_package" not in pulled:
        raise RefusedError("the service's disclosure does not parse", code="verification_failed")
    sealed = SealedAsset.from_bytes(raw)
    package = KeyPackage.from_bytes(_assets.b64(pulled["key_package"], "a key package"))
    values = open_key_package(sealed, package, ring, grant_id=gid, expected_root=root)
    return {k: v for k, v in values.items() if k in set(pulled["fields"] or [])}


@command
def pull(
    grant: Annotated[str, typer.Argument(help="Grant id (0x…)")],
    out: Annotated[Path, typer.Option(help="Directory for the verified data")],
    fields: FieldsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Institution: pull granted fields, verify every one locally, save the verified data.

    Needs --rpc: the grant, the access record, the anchored root and the issuer's role are
    read from the chain, not taken from the service.

    Example: datasafe -p citybank --rpc http://127.0.0.1:8545 pull 0xab… --out ./loan-123
    """
    st = state()
    gid_b = _assets.b32(grant, "grant id")
    p = st.profile()
    rpc = st.rpc(p, required="pull (every field is verified against the chain)")
    assert rpc is not None
    passphrase = st.passphrase(f"Passphrase for {p.name}")
    key = p.unlock(passphrase)
    ring = p.keyring(passphrase)
    checks: list[str] = []
    with st.client(key, p) as c:
        g: dict[str, Any] = c.get(f"/v1/grants/{grant}")
        names, mask = _mask_for(g, fields)
        if mask != int(g["terms"]["fields_mask"]):
            raise UserError(
                "a pull releases every granted field together (one access record for the "
                f"whole key package): omit --fields or name all of {', '.join(g['fields'])}",
                code="fields_mask_mismatch",
            )
        verdict = _verdict(st, c, grant, p.address, mask)
        if not verdict["allowed"]:
            raise RefusedError(
                f"not allowed: {verdict['reason']} ({verdict['code']})", code=verdict["code"]
            )
        checks.append(f"grant allowed on chain at block {verdict['block']}")
        chain_id, ledger = st.ledger_address(c)
        assert chain_id is not None
        request = AccessRequest(gid_b, mask, secrets.randbits(64), int(time.time()) + 600)
        signature = sign_access_request(key, Domain(chain_id, ledger), request)
        pulled: dict[str, Any] = c.post(
            "/v1/access",
            {
                "grant_id": grant,
                "fields_mask": mask,
                "nonce": str(request.nonce),
                "deadline": request.deadline,
                "signature": "0x" + signature.hex(),
            },
        )
        a = pulled["anchor"]
        asset = {
            "asset_id": a["asset_id"],
            "root": a["root"],
            "issuer": a["issuer"],
            "version": a["version"],
            "ciphertext_digest": a["ciphertext_digest"],
            "anchor": {"block": a["block"]},
        }
        anchor = _assets.anchored(st, c, asset)
    checks.append(f"issuer {anchor['issuer']} holds ISSUER; root {anchor['root']} anchored")
    with st.chain(rpc, ledger) as lc:
        on_chain = lc.get_grant(gid_b)
        receipt = lc.rpc.call("eth_getTransactionReceipt", [pulled["access"]["tx_hash"]])
    if on_chain.grantee.lower() != p.address.lower() or on_chain.status == GrantStatus.NONE:
        raise RefusedError("the grant on chain is not made to you", code="not_grantee")
    if "0x" + on_chain.asset_id.hex() != a["asset_id"].lower():
        raise RefusedError(
            "the data is from another asset than the grant's", code="service_mismatch"
        )
    abi = ledger_abi()
    recorded = [
        e
        for e in (abi.decode_log(log) for log in (receipt or {}).get("logs", []))
        if e is not None
        and e.name == "Accessed"
        and e.args["grantId"] == gid_b
        and e.args["nonce"] == request.nonce
        and e.args["grantee"].lower() == p.address.lower()
    ]
    if not recorded:
        raise RefusedError(
            "no on-chain access record for this pull; the data is not used",
            code="access_not_recorded",
        )
    checks.append(f"access recorded on chain in {pulled['access']['tx_hash']}")
    values = _open(pulled, ring, gid_b, bytes.fromhex(anchor["root"][2:]), anchor["issuer"])
    if sorted(values) != sorted(names):
        raise RefusedError(
            "the disclosure does not hold exactly the requested fields", code="verification_failed"
        )
    checks.append(f"{len(values)} field(s) decrypted and proven against the anchored root")
    out.mkdir(parents=True, exist_ok=True)
    data = {
        "grant_id": grant,
        "asset_id": a["asset_id"],
        "issuer": anchor["issuer"],
        "root": anchor["root"],
        "version": anchor["version"],
        "purpose": g["terms"]["purpose"],
        "use": pulled["use"],
        "access_tx": pulled["access"]["tx_hash"],
        "access_block": pulled["access"]["block"],
        "fields": {k: v.decode("utf-8", "replace") for k, v in values.items()},
        "checks": checks,
    }
    target = out / f"{grant}-use{pulled['use']}.json"
    target.write_text(json.dumps(data, indent=2) + "\n")
    target.chmod(0o600)
    data["saved_to"] = str(target)

    def human(con: Any) -> None:
        kv(
            con,
            f"Pulled and verified (use {pulled['use']})",
            {"issuer": name_of(st, anchor["issuer"]), "saved to": target},
        )
        for check in checks:
            con.print(f"  ✓ {check}")
        table(con, "Fields", ["field", "value"], list(data["fields"].items()))

    st.emit(data, human)
