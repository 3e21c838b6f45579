"""The wallet reports a key registered only when the chain holds the member's own binding."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from _stack import Stack
from _wallet import FAST_SCRYPT, PASSPHRASE, Wallet
from cryptography.hazmat.primitives.asymmetric import x25519

from vault.keyproof import make_key_proof
from vault.keys import EncryptionKeyPair
from wallet_cli._home import Home, seal_enc_key


@contextmanager
def swallowing_proxy(
    upstream: str, served_keys: dict[str, dict[str, str]] | None = None
) -> Iterator[str]:
    """A lying service: forwards everything, but answers a key upload with a made-up success
    and relays nothing (what an operator that wants to keep a citizen keyless would do), and
    serves ``served_keys`` (address → key fields) in member answers in place of the truth."""
    lies = served_keys or {}

    class Handler(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if self.command == "PUT" and self.path == "/v1/members/me/key":
                sent = json.loads(body)
                fake = {
                    "status": "active",
                    "key_version": 99,
                    "encryption_key": sent["public_key"],
                    "key_proof": sent["key_proof"],
                    "block": 1,
                }
                self._reply(200, json.dumps(fake).encode(), "application/json")
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            r = httpx.request(self.command, upstream + self.path, headers=headers, content=body)
            content = r.content
            address = self.path.rsplit("/", 1)[-1]
            if self.command == "GET" and address in lies and r.status_code == 200:
                content = json.dumps(r.json() | lies[address]).encode()
            self._reply(r.status_code, content, r.headers.get("content-type", ""))

        def _reply(self, status: int, content: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def do_GET(self) -> None:
            self._forward()

        def do_PUT(self) -> None:
            self._forward()

        def do_POST(self) -> None:
            self._forward()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_swallowed_key_binding_is_caught_and_the_new_key_forgotten(stack: Stack) -> None:
    w, world = stack.citizen, stack.world
    before = w.json("account", "show")["encryption_key"]["digest"]
    version = world.ledger.functions.getMember(world.citizen.address).call()[3]
    with swallowing_proxy(stack.server.url) as liar:
        line = w.fails(7, "account", "rotate-key", DATASAFE_API=liar)
    assert "the chain does not show it" in line and "your old key stays in force" in line
    # nothing changed on chain, and the wallet kept its old key as the current one
    assert world.ledger.functions.getMember(world.citizen.address).call()[3] == version
    assert w.json("account", "show")["encryption_key"]["digest"] == before
    # through the honest service the same command works, and the chain says so
    rotated = w.json("account", "rotate-key")
    assert rotated["key_version"] == version + 1
    me = world.ledger.functions.getMember(world.citizen.address).call()
    assert "0x" + bytes(me[6]).hex() == rotated["digest"]


def test_governor_admission_alone_gives_no_key_to_grant_to(stack: Stack) -> None:
    """A member the governor admitted has no key until it binds one: a grant to it is refused."""
    world = stack.world
    world.admit(world.outsider, 4, 5, bind_key=False)  # CONSUMER, INSURER; no key of its own
    aid = stack.issue("no key grantee")
    line = stack.citizen.fails(
        3,
        "grant",
        "create",
        "--asset",
        aid,
        "--to",
        world.outsider.address,
        "--fields",
        "income",
        "--purpose",
        "1",
        "--days",
        "1",
        "--yes",
    )
    assert "encryption key" in line
    # a service that serves a key of the operator's own for it is caught by the chain check
    operator_key = EncryptionKeyPair.generate()
    forged = make_key_proof(
        operator_key,
        chain_id=world.chain_id,
        ledger=world.ledger_address,
        account=world.outsider.address,
    )
    lie = {
        "encryption_key": base64.b64encode(operator_key.public_key.to_bytes()).decode(),
        "key_proof": base64.b64encode(forged).decode(),
    }
    with swallowing_proxy(stack.server.url, {world.outsider.address: lie}) as liar:
        line = stack.citizen.fails(
            3,
            "grant",
            "create",
            "--asset",
            aid,
            "--to",
            world.outsider.address,
            "--fields",
            "income",
            "--purpose",
            "1",
            "--days",
            "1",
            "--yes",
            DATASAFE_API=liar,
        )
    assert "not" in line and "own binding" in line
    # once the insurer binds its own key, the same lie is still refused (key_mismatch)
    world.bind_key(world.outsider)
    with swallowing_proxy(stack.server.url, {world.outsider.address: lie}) as liar:
        line = stack.citizen.fails(
            6,  # the chain contradicts the service (exit 6)
            "grant",
            "create",
            "--asset",
            aid,
            "--to",
            world.outsider.address,
            "--fields",
            "income",
            "--purpose",
            "1",
            "--days",
            "1",
            "--yes",
            DATASAFE_API=liar,
        )
    assert "is not the one it bound on chain" in line


def test_legacy_key_cannot_be_registered_and_says_how_to_fix_it(
    stack: Stack, tmp_path: Path
) -> None:
    """A key from before proofs of possession opens old data but cannot be bound: rotate."""
    world = stack.world
    env = {"DATASAFE_API": stack.server.url, "DATASAFE_RPC": world.rpc_url}
    env["DATASAFE_PIN"] = stack.citizen.env["DATASAFE_PIN"]
    w = Wallet(tmp_path / "legacy-wallet", env=env)
    w.ok(
        "account", "import", "wang", "--kind", "individual", DATASAFE_IMPORT_KEY=world.citizen2.key
    )
    profile = Home(w.home).resolve("wang")
    raw = x25519.X25519PrivateKey.generate().private_bytes_raw()
    legacy = EncryptionKeyPair.from_private_bytes(b"DSSK\x01\x01" + raw)
    (stored,) = profile.enc_keys()
    stored.digest = legacy.digest().hex()
    stored.public_key = legacy.public_key.to_bytes().hex()
    stored.blob = seal_enc_key(legacy, PASSPHRASE, profile.address, int(FAST_SCRYPT))
    profile.save_enc_keys([stored])
    version = world.ledger.functions.getMember(world.citizen2.address).call()[3]
    line = w.fails(2, "account", "register-key")
    assert "rotate-key" in line
    assert world.ledger.functions.getMember(world.citizen2.address).call()[3] == version
    rotated = w.json("account", "rotate-key")
    assert rotated["key_version"] == version + 1
