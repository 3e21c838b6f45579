"""``datasafe account``: identities, their keystores and encryption keys."""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from vault.keys import EncryptionKeyPair, Suite
from wallet_cli._context import JsonOpt, command, state
from wallet_cli._home import Profile, check_name, open_enc_key_with
from wallet_cli._keyagent import Secret
from wallet_cli._keystore import (
    KeystoreError,
    Opened,
    address_of,
    check_private_key,
    make_keystore,
    open_keystore,
)
from wallet_cli._render import kv, table, when
from wallet_cli.errors import ContradictedError, UserError, WrongPassphraseError

app = typer.Typer(help="Accounts and profiles: keystores, encryption keys.", no_args_is_help=True)

_SUITES = {
    "x25519": Suite.X25519_HKDF_SHA256_AES256GCM,
    "mlkem768-x25519": Suite.MLKEM768X25519_HKDF_SHA256_AES256GCM,
}
_KINDS = ("individual", "enterprise", "bank", "notary", "insurer", "department", "regulator")


def _public(p: Profile) -> dict[str, Any]:
    meta = p.meta()
    keys = p.enc_keys()
    current = next((k for k in keys if k.current), None)
    return {
        "profile": p.name,
        "address": meta.get("address"),
        "kind": meta.get("kind"),
        "api": meta.get("api"),
        "rpc": meta.get("rpc"),
        "created": meta.get("created"),
        "encryption_key": current.public_info() if current else None,
        "old_encryption_keys": [k.public_info() for k in keys if not k.current],
        "keystore": str(p.dir / "keystore.json"),
        "deployment": meta.get("pin"),
        "fingerprint": (meta.get("pin") or {}).get("fingerprint"),
    }


def _new_profile(
    name: str,
    key: bytes,
    passphrase: str,
    kind: str,
    suite: str,
    keystore: tuple[dict[str, Any], Opened] | None,
) -> Profile:
    """A new profile; the keystore's one derivation also seals the encryption key."""
    st = state()
    p = st.home.profile(check_name(name))
    if p.exists:
        raise UserError(f"profile {name!r} already exists in {st.home.path}")
    if kind not in _KINDS:
        raise UserError(f"unknown kind {kind!r}: one of {', '.join(_KINDS)}")
    if suite not in _SUITES:
        raise UserError(f"unknown suite {suite!r}: one of {', '.join(_SUITES)}")
    if keystore is not None:
        ks, opened = keystore
    else:
        ks, opened = make_keystore(key, passphrase, n=st.settings.scrypt_n)
    p.save_meta(
        {
            "name": name,
            "address": address_of(key),
            "kind": kind,
            "api": st.api_url or st.settings.api,
            "rpc": st.rpc_url or st.settings.rpc_url or None,
            "created": int(time.time()),
        }
    )
    p.save_keystore(dict(ks))
    p.add_enc_key(Secret(opened.key, opened.derived), _SUITES[suite])
    if st.home.default_name is None:
        st.home.set_default(name)
    return p


KindOpt = Annotated[str, typer.Option(help="individual | enterprise | bank | notary | insurer …")]
SuiteOpt = Annotated[str, typer.Option(help="HPKE suite: x25519 | mlkem768-x25519 (post-quantum)")]


@app.command()
@command
def create(
    name: Annotated[str, typer.Argument(help="Profile name, e.g. alice or acme")],
    kind: KindOpt = "individual",
    suite: SuiteOpt = "x25519",
    json_out: JsonOpt = False,
) -> None:
    """Create a new account: a V3 keystore (scrypt) and an HPKE encryption key.

    Example: datasafe account create alice --kind individual
    """
    st = state()
    if st.home.profile(check_name(name)).exists:
        raise UserError(f"profile {name!r} already exists in {st.home.path}")
    passphrase = st.passphrase("New passphrase", confirm=True)
    key = os.urandom(32)
    p = _new_profile(name, key, passphrase, kind, suite, None)
    data = _public(p)
    st.emit(
        data,
        lambda c: kv(
            c,
            f"Created profile {name}",
            {
                "address": data["address"],
                "encryption key": data["encryption_key"]["digest"],
                "keystore": data["keystore"],
                "next": "once admitted: datasafe account register-key",
            },
        ),
    )


@app.command("import")
@command
def import_(
    name: Annotated[str, typer.Argument(help="Profile name")],
    keystore: Annotated[
        Path | None,
        typer.Option(
            help="A V3 keystore JSON written by any Ethereum tool (geth, MetaMask, eth-account…)"
        ),
    ] = None,
    kind: KindOpt = "individual",
    suite: SuiteOpt = "x25519",
    json_out: JsonOpt = False,
) -> None:
    """Import an existing account from a V3 keystore file or a private key.

    Without --keystore the private key is read from DATASAFE_IMPORT_KEY or a hidden prompt.
    The keystore's passphrase protects the wallet's copy too.

    Example: datasafe account import bob --keystore ~/.ethereum/keystore/UTC--2024...
    """
    st = state()
    check_name(name)
    if keystore is not None:
        try:
            ks = json.loads(keystore.read_text())
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read keystore {keystore}: {exc}") from None
        passphrase = st.passphrase(f"Passphrase of {keystore.name}")
        try:
            opened = open_keystore(ks, passphrase)
        except WrongPassphraseError:
            raise WrongPassphraseError(f"wrong passphrase for {keystore}") from None
        except KeystoreError as exc:
            raise UserError(f"{keystore} is not a V3 keystore: {exc}") from None
        p = _new_profile(name, opened.key, passphrase, kind, suite, (ks, opened))
    else:
        raw = os.environ.get("DATASAFE_IMPORT_KEY") or typer.prompt(
            "Private key (hex)", hide_input=True
        )
        try:
            key = bytes.fromhex(raw.strip().removeprefix("0x"))
            check_private_key(key)
        except (ValueError, UserError):
            raise UserError("that is not a 32-byte hex private key") from None
        passphrase = st.passphrase("New passphrase", confirm=True)
        p = _new_profile(name, key, passphrase, kind, suite, None)
    data = _public(p)
    st.emit(data, lambda c: kv(c, f"Imported profile {name}", {"address": data["address"]}))


@app.command("list")
@command
def list_(json_out: JsonOpt = False) -> None:
    """List the profiles in the wallet.

    Example: datasafe account list --json
    """
    st = state()
    default = st.home.default_name
    rows = [_public(p) | {"default": p.name == default} for p in st.home.profiles()]
    st.emit(
        rows,
        lambda c: table(
            c,
            "Profiles",
            ["", "name", "address", "kind", "key registered", "pinned deployment"],
            [
                (
                    "*" if r["default"] else "",
                    r["profile"],
                    r["address"],
                    r["kind"],
                    "yes"
                    if r["encryption_key"] and r["encryption_key"]["registered_block"] is not None
                    else "no",
                    r["fingerprint"] or "not pinned",
                )
                for r in rows
            ],
        ),
    )


@app.command()
@command
def show(
    name: Annotated[str | None, typer.Argument(help="Profile (default: the current one)")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show a profile's public information (never any secret).

    Example: datasafe account show alice
    """
    st = state()
    p = st.home.resolve(name or st.profile_name)
    data = _public(p)
    st.emit(
        data,
        lambda c: kv(
            c,
            f"Profile {p.name}",
            {
                "address": data["address"],
                "kind": data["kind"],
                "encryption key": (data["encryption_key"] or {}).get("digest"),
                "registered at block": (data["encryption_key"] or {}).get("registered_block"),
                "older keys": len(data["old_encryption_keys"]),
                "created": when(data["created"]),
                "keystore": data["keystore"],
                "pinned deployment": data["fingerprint"] or "not pinned",
            },
        ),
    )


@app.command()
@command
def use(
    name: Annotated[str, typer.Argument(help="Profile to use by default")],
    json_out: JsonOpt = False,
) -> None:
    """Make a profile the default one.

    Example: datasafe account use acme
    """
    st = state()
    p = st.home.resolve(name)
    st.home.set_default(p.name)
    st.emit({"default": p.name}, lambda c: c.print(f"Default profile is now {p.name}"))


@app.command()
@command
def pin(
    json_out: JsonOpt = False,
) -> None:
    """Pin this profile to a deployment (once, like SSH's known_hosts), then show the pin.

    The pin comes from --manifest PATH, or from the fingerprint you were given out of band
    (--pin FINGERPRINT); it is checked against --rpc. Later commands refuse another chain,
    another ledger or other code (exit 5).

    Example: datasafe --rpc http://127.0.0.1:8545 --pin 3f2a-… account pin
    """
    st = state()
    p = st.profile()
    rpc = st.rpc(p, required="pinning (the fingerprint is checked against the chain)")
    assert rpc is not None
    if st.manifest_path is not None or p.meta().get("pin"):
        got = st.require_pin(None, p)
    else:
        with st.client(None, p) as c:
            got = st.require_pin(c, p)
    data = {"profile": p.name} | got.to_json()
    st.emit(
        data,
        lambda c: kv(
            c,
            f"Profile {p.name} is pinned to",
            {
                "fingerprint": got.fingerprint,
                "chain id": got.chain_id,
                "ledger": got.ledger_address,
                "genesis block": got.genesis_hash,
                "ledger code hash": got.code_hash,
            },
        ),
    )


@app.command("export-public")
@command
def export_public(
    name: Annotated[str | None, typer.Argument(help="Profile (default: current)")] = None,
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Export public info: address and current encryption public key (base64), no secret.

    Example: datasafe account export-public alice --out alice.pub.json
    """
    st = state()
    p = st.home.resolve(name or st.profile_name)
    k = p.current_enc_key()
    data = {
        "address": p.address,
        "kind": p.meta().get("kind"),
        "encryption_key": base64.b64encode(bytes.fromhex(k.public_key)).decode(),
        "encryption_key_digest": "0x" + k.digest,
        "suite": Suite(k.suite).name,
    }
    if out is not None:
        out.write_text(json.dumps(data, indent=2) + "\n")
    if st.json or out is None:
        typer.echo(json.dumps(data, indent=2))
    else:
        st.console.print(f"Wrote {out}")


@app.command("export-keystore")
@command
def export_keystore(
    out: Annotated[Path, typer.Argument(help="Where to write the V3 keystore JSON")],
    name: Annotated[str | None, typer.Option("--name", help="Profile (default: current)")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Copy the (still encrypted) V3 keystore out, to open it in another Ethereum tool.

    Example: datasafe account export-keystore ./alice.json
    """
    st = state()
    p = st.home.resolve(name or st.profile_name)
    if out.exists():
        raise UserError(f"{out} exists; not overwriting")
    shutil.copyfile(p.dir / "keystore.json", out)
    os.chmod(out, 0o600)
    st.emit({"path": str(out), "address": p.address}, lambda c: c.print(f"Wrote {out}"))


#: How long a signed key binding stays valid (the service relays it at once).
_BINDING_TTL = 3600


def _register(p: Profile, key: bytes, kp: EncryptionKeyPair) -> dict[str, Any]:
    """Bind ``kp`` on chain with the member's own signature (relayed: no gas), publish it,
    and report it done only once the wallet has read the binding back from the chain."""
    # The service client and the chain's trust checks only here: `account create`, `list`,
    # `show` start without them (about half their start-up).
    from api.client import key_binding_body
    from ledger import trust
    from ledger.keybinding import KeyBindingError, check_member_key
    from vault.errors import KeyProofError
    from vault.keyproof import key_proof_valid
    from wallet_cli import _confirm

    st = state()
    rpc = st.rpc(p, required="registering an encryption key")
    assert rpc is not None
    digest = kp.digest().hex()
    with st.client(key, p) as c:
        _, ledger = st.ledger_address(c)
        with st.chain(rpc, ledger) as lc:
            current = lc.get_member(p.address)
            head = lc.rpc.call("eth_getBlockByNumber", ["latest", False])
            try:
                body = key_binding_body(
                    key,
                    kp,
                    chain_id=lc.chain_id(),
                    ledger=lc.address,
                    key_version=current.key_version + 1,
                    deadline=int(head["timestamp"], 16) + _BINDING_TTL,
                )
            except KeyProofError as exc:
                raise UserError(
                    f"{exc} (datasafe account rotate-key makes one)", code="key_cannot_prove"
                ) from None
            if current.enc_key_hash == kp.digest():
                del body["binding"]  # already bound by an earlier run: publish only
            member = c.put("/v1/members/me/key", body)
            # Believe the chain, not the service's answer: the binding must show there (else
            # exit 7 with the offer), and be this key's own proof of possession.
            on_chain = _confirm.on_chain(
                st,
                rpc,
                lambda r, pin: trust.get_member(r, pin, p.address),
                lambda got: got.enc_key_hash == kp.digest(),
                what=f"encryption key 0x{digest} registered for {p.address}",
                claimed_tx=member.get("tx_hash"),
                offer="Register it through another service (--api URL); your old key stays "
                "in force.",
            )
            try:
                check_member_key(
                    lc,
                    p.address,
                    kp.public_key.to_bytes(),
                    base64.b64decode(body["key_proof"]),
                    key_proof_valid,
                )
            except KeyBindingError as exc:
                raise ContradictedError(
                    f"the service answered but the chain does not hold your key: {exc}",
                    code="service_mismatch",
                ) from None
    p.mark_registered(digest, int(member["block"]))
    return {
        "address": p.address,
        "digest": "0x" + digest,
        "key_version": on_chain.key_version,
        "block": member["block"],
    }


@app.command("register-key")
@command
def register_key(json_out: JsonOpt = False) -> None:
    """Register the current encryption key: bound on chain by your signature, served by the service.

    You sign an EIP-712 KeyBinding (with a proof that you hold the private key); the service
    relays it and pays the gas. Needs --api and --rpc: the wallet reads the binding back from
    the chain before it says "registered".

    Example: datasafe --api http://127.0.0.1:8700 --rpc http://127.0.0.1:8545 account register-key
    """
    st = state()
    p = st.profile()
    secret = st.secret(p)
    key = secret.key
    kp = open_enc_key_with(p.current_enc_key(), secret, p.address)
    data = _register(p, key, kp)
    st.emit(data, lambda c: kv(c, "Encryption key registered", data))


@app.command("rotate-key")
@command
def rotate_key(
    suite: SuiteOpt = "x25519",
    json_out: JsonOpt = False,
) -> None:
    """Generate a new encryption key and register it; old keys are kept to open old data.

    Example: datasafe account rotate-key --suite mlkem768-x25519
    """
    st = state()
    p = st.profile()
    if suite not in _SUITES:
        raise UserError(f"unknown suite {suite!r}: one of {', '.join(_SUITES)}")
    secret = st.secret(p)
    key = secret.key
    old = p.enc_keys()
    new = p.add_enc_key(secret, _SUITES[suite])
    try:
        data = _register(p, key, open_enc_key_with(new, secret, p.address))
    except Exception:
        p.save_enc_keys(old)  # nothing changed: the new key was never registered
        raise
    data["old_keys_kept"] = len(old)
    st.emit(data, lambda c: kv(c, "Encryption key rotated", data))
