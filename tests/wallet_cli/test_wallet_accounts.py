"""Accounts and profiles: V3 keystores that other Ethereum tools open, encrypted HPKE keys."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import eth_keyfile
import pytest
from _wallet import PASSPHRASE, Wallet
from eth_account import Account

from vault.keys import PublicEncryptionKey
from wallet_cli._home import Home

# The Web3 Secret Storage spec's scrypt test vector (github.com/ethereum/wiki, "Web3 Secret
# Storage Definition"): passphrase "testpassword", private key 7a28b5ba…9d (n=262144).
SPEC_VECTOR = {
    "crypto": {
        "cipher": "aes-128-ctr",
        "cipherparams": {"iv": "83dbcc02d8ccb40e466191a123791e0e"},
        "ciphertext": "d172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c",
        "kdf": "scrypt",
        "kdfparams": {
            "dklen": 32,
            "n": 262144,
            "p": 8,
            "r": 1,
            "salt": "ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19",
        },
        "mac": "2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097",
    },
    "id": "3198bc9c-6672-5ab3-d995-4942343ae5b6",
    "version": 3,
}
SPEC_KEY = "7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d"


@pytest.fixture
def wallet(tmp_path: Path) -> Wallet:
    return Wallet(tmp_path / "wallet")


def test_create_list_show_export(wallet: Wallet, tmp_path: Path) -> None:
    created = wallet.json("account", "create", "alice")
    assert created["address"].startswith("0x") and len(created["address"]) == 42
    wallet.ok("account", "create", "acme", "--kind", "enterprise")
    rows = wallet.json("account", "list")
    assert json.loads(wallet.ok("account", "list", "--json").stdout) == rows  # after the command
    assert [(r["profile"], r["default"]) for r in rows] == [("acme", False), ("alice", True)]
    shown = wallet.json("account", "show", "acme")
    assert shown["kind"] == "enterprise" and shown["encryption_key"]["registered_block"] is None
    # public export: the encryption key parses and hashes to its digest; no secret anywhere
    pub = wallet.json("account", "export-public", "alice")
    key = PublicEncryptionKey.from_bytes(__import__("base64").b64decode(pub["encryption_key"]))
    assert "0x" + key.digest().hex() == pub["encryption_key_digest"]
    home = Home(wallet.home)
    secret = home.profile("alice").unlock(PASSPHRASE).hex()
    everything = json.dumps([created, rows, shown, pub])
    assert secret not in everything and PASSPHRASE not in everything
    # files are the owner's only, and nothing on disk holds a secret in the clear
    for path in wallet.home.rglob("*.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert secret not in path.read_text()
    # human output also carries no secret
    out = wallet.ok("account", "show").stdout
    assert secret not in out and "alice" in out


def test_keystore_opens_in_eth_keyfile(wallet: Wallet, tmp_path: Path) -> None:
    """Ours opens in another library (eth-keyfile, the reference implementation)."""
    wallet.ok("account", "create", "alice")
    out = tmp_path / "alice.json"
    wallet.ok("account", "export-keystore", str(out))
    ks = json.loads(out.read_text())
    assert ks["version"] == 3 and ks["crypto"]["kdf"] == "scrypt"
    key = eth_keyfile.decode_keyfile_json(ks, PASSPHRASE.encode())
    assert Account.from_key(key).address == wallet.json("account", "show")["address"]
    # refusing to overwrite changes nothing
    assert "exists" in wallet.fails(2, "account", "export-keystore", str(out))


def test_import_keystore_from_another_tool(wallet: Wallet, tmp_path: Path) -> None:
    """A keystore written by eth-keyfile (pbkdf2 too) and the spec's scrypt vector open here."""
    key = os.urandom(32)
    other = eth_keyfile.create_keyfile_json(key, b"other pass", kdf="scrypt", iterations=1024)
    path = tmp_path / "UTC--other.json"
    path.write_text(json.dumps(other))
    imported = wallet.json(
        "account", "import", "bob", "--keystore", str(path), DATASAFE_PASSPHRASE="other pass"
    )
    assert imported["address"] == Account.from_key(key).address
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC_VECTOR))
    got = wallet.json(
        "account", "import", "spec", "--keystore", str(spec), DATASAFE_PASSPHRASE="testpassword"
    )
    assert got["address"] == Account.from_key(bytes.fromhex(SPEC_KEY)).address


def test_import_private_key(wallet: Wallet) -> None:
    key = "0x" + os.urandom(32).hex()
    got = wallet.json("account", "import", "carol", DATASAFE_IMPORT_KEY=key)
    assert got["address"] == Account.from_key(key).address
    assert "not a 32-byte hex" in wallet.fails(
        2, "account", "import", "dave", DATASAFE_IMPORT_KEY="0x1234zz"
    )
    assert not (wallet.home / "profiles" / "dave").exists()


def test_wrong_passphrase_is_one_line_and_changes_nothing(wallet: Wallet, tmp_path: Path) -> None:
    wallet.ok("account", "create", "alice")
    before = {p: p.read_bytes() for p in wallet.home.rglob("*") if p.is_file()}
    line = wallet.fails(
        2, "--api", "http://127.0.0.1:9", "data", "list", DATASAFE_PASSPHRASE="wrong"
    )
    assert "wrong passphrase" in line
    line = wallet.fails(2, "account", "rotate-key", DATASAFE_PASSPHRASE="wrong")
    assert "wrong passphrase" in line
    after = {p: p.read_bytes() for p in wallet.home.rglob("*") if p.is_file()}
    assert before == after
    # a keystore from elsewhere with the wrong passphrase: no profile is created
    other = eth_keyfile.create_keyfile_json(os.urandom(32), b"right", kdf="scrypt", iterations=1024)
    (tmp_path / "k.json").write_text(json.dumps(other))
    assert "wrong passphrase" in wallet.fails(
        2,
        "account",
        "import",
        "eve",
        "--keystore",
        str(tmp_path / "k.json"),
        DATASAFE_PASSPHRASE="wrong",
    )
    assert not (wallet.home / "profiles" / "eve").exists()


def test_profile_choice_and_bad_names(wallet: Wallet) -> None:
    assert "no profile" in wallet.fails(2, "account", "show")
    wallet.ok("account", "create", "alice")
    wallet.ok("account", "create", "acme")
    assert wallet.json("account", "use", "acme") == {"default": "acme"}
    assert wallet.json("account", "show")["profile"] == "acme"
    assert wallet.json("-p", "alice", "account", "show")["profile"] == "alice"
    assert "already exists" in wallet.fails(2, "account", "create", "alice")
    assert "invalid profile name" in wallet.fails(2, "account", "create", "../evil")
    assert "no profile named" in wallet.fails(2, "-p", "nobody", "account", "show")


def test_passphrase_prompt_is_hidden(wallet: Wallet) -> None:
    r = wallet.run(
        "account", "create", "alice", input="s3cret pass\ns3cret pass\n", DATASAFE_PASSPHRASE=None
    )
    assert r.exit_code == 0, r.stderr
    assert "s3cret" not in r.stdout and "s3cret" not in r.stderr
    Home(wallet.home).profile("alice").unlock("s3cret pass")
    # a mismatched confirmation is asked again; end of input aborts without a profile
    r = wallet.run("account", "create", "bob", input="one\ntwo\n", DATASAFE_PASSPHRASE=None)
    assert r.exit_code != 0 and not (wallet.home / "profiles" / "bob").exists()


def test_every_command_has_help_with_an_example(wallet: Wallet) -> None:
    import typer
    import typer.main

    from wallet_cli.main import app

    group = typer.main.get_command(app)
    seen = 0

    def walk(cmd: Any, path: list[str]) -> None:
        nonlocal seen
        if hasattr(cmd, "list_commands"):  # a group (the root loads its areas lazily)
            ctx = typer._click.Context(cmd)
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), [*path, name])
            return
        r = wallet.ok(*path, "--help")
        assert "Example:" in r.stdout, path
        assert "--json" in r.stdout, path
        seen += 1

    walk(group, [])
    assert seen >= 25
