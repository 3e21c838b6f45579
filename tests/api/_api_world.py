"""A deployed ledger with one actor per role, driven with web3 for set-up and admin steps.

The API under test never uses this: it only sees the chain through JSON-RPC.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from web3 import Web3

from api.envelope import sign_digest
from ledger import eip712
from ledger.calls import grant_id_of
from ledger.models import AccessRequest, GrantTerms
from ledger.uses import accessed_filter
from vault.keyproof import make_key_proof
from vault.keys import EncryptionKeyPair

# anvil's well-known dev keys (mnemonic "test test ... junk")
DEV_KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a8eb0b0e8cf6b3d20fbd64a3b45c79f1b0c6a3e4",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
]

ISSUER, CONSUMER, REGULATOR, SUBJECT, REGISTRAR = 2, 4, 8, 32, 64
INDIVIDUAL, ENTERPRISE, BANK, DEPARTMENT, REGULATOR_KIND = 1, 2, 3, 6, 7


def load_artifact() -> dict[str, Any]:
    """ABI + bytecode of DataSafeLedger (ledger's generated artifact, else a forge build)."""
    repo = Path(__file__).resolve().parents[2]
    for candidate in (
        repo / "ledger" / "artifacts" / "DataSafeLedger.json",
        repo / "out" / "DataSafeLedger.sol" / "DataSafeLedger.json",
    ):
        if candidate.exists():
            data = json.loads(candidate.read_text())
            bytecode = data.get("bytecode")
            if isinstance(bytecode, dict):
                bytecode = bytecode["object"]
            return {"abi": data["abi"], "bytecode": bytecode}
    raise FileNotFoundError("no DataSafeLedger artifact; run forge build or gen_artifacts")


@dataclass
class Actor:
    name: str
    key: str
    address: str = field(init=False)

    def __post_init__(self) -> None:
        self.address = Account.from_key(self.key).address

    @property
    def key_bytes(self) -> bytes:
        return bytes.fromhex(self.key[2:])


class World:
    def __init__(self, rpc_url: str) -> None:
        self.rpc_url = rpc_url
        self.w3 = Web3(Web3.HTTPProvider(rpc_url))
        self.chain_id = self.w3.eth.chain_id
        art = load_artifact()
        self.abi = art["abi"]
        self.governor = Actor("governor", DEV_KEYS[0])
        self.issuer = Actor("department", DEV_KEYS[1])
        self.citizen = Actor("citizen", DEV_KEYS[2])
        self.bank = Actor("bank", DEV_KEYS[3])
        self.bank2 = Actor("other bank", DEV_KEYS[4])
        self.regulator = Actor("regulator", DEV_KEYS[5])
        self.citizen2 = Actor("other citizen", DEV_KEYS[6])
        self.outsider = Actor("outsider", DEV_KEYS[7])
        self.issuer2 = Actor("other department", DEV_KEYS[8])
        factory = self.w3.eth.contract(abi=self.abi, bytecode=art["bytecode"])
        receipt = self._send(self.governor, factory.constructor(self.governor.address))
        self.ledger_address: str = receipt["contractAddress"]
        self.deploy_block: int = receipt["blockNumber"]
        self.ledger = self.w3.eth.contract(address=self.ledger_address, abi=self.abi)
        self.domain = eip712.ledger_domain(self.chain_id, self.ledger_address)
        self.enc_keys: dict[str, EncryptionKeyPair] = {}
        self.admit(self.issuer, ISSUER | REGISTRAR, DEPARTMENT)
        self.admit(self.issuer2, ISSUER, DEPARTMENT)
        self.admit(self.citizen, SUBJECT, INDIVIDUAL)
        self.admit(self.citizen2, SUBJECT, INDIVIDUAL)
        self.admit(self.bank, CONSUMER, BANK)
        self.admit(self.bank2, CONSUMER, BANK)
        self.admit(self.regulator, REGULATOR, REGULATOR_KIND)

    # ---- transactions ------------------------------------------------------------------

    def _send(self, actor: Actor, call: Any) -> Any:
        tx = call.build_transaction(
            {
                "from": actor.address,
                "nonce": self.w3.eth.get_transaction_count(actor.address, "pending"),
                "chainId": self.chain_id,
            }
        )
        signed = Account.sign_transaction(tx, actor.key)
        h = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(h, timeout=30)
        assert receipt["status"] == 1, f"{actor.name}: transaction reverted"
        return receipt

    def raw_tx(self, actor: Actor, fn: str, *args: Any) -> str:
        """A signed (not sent) ledger transaction, for the API to relay."""
        call = getattr(self.ledger.functions, fn)(*args)
        tx = call.build_transaction(
            {
                "from": actor.address,
                "nonce": self.w3.eth.get_transaction_count(actor.address, "pending"),
                "chainId": self.chain_id,
                "gas": 500_000,
            }
        )
        return "0x" + bytes(Account.sign_transaction(tx, actor.key).raw_transaction).hex()

    def transact(self, actor: Actor, fn: str, *args: Any) -> Any:
        return self._send(actor, getattr(self.ledger.functions, fn)(*args))

    def enc_key(self, actor: Actor) -> EncryptionKeyPair:
        """The actor's vault encryption key pair (the actor binds it itself: :meth:`bind_key`)."""
        if actor.address not in self.enc_keys:
            self.enc_keys[actor.address] = EncryptionKeyPair.generate()
        return self.enc_keys[actor.address]

    def key_proof(self, actor: Actor, keypair: EncryptionKeyPair | None = None) -> bytes:
        """The actor's proof of possession of its key on this deployment."""
        return make_key_proof(
            keypair or self.enc_key(actor),
            chain_id=self.chain_id,
            ledger=self.ledger_address,
            account=actor.address,
        )

    def bind_key(self, actor: Actor, keypair: EncryptionKeyPair | None = None) -> None:
        """The actor signs a ``KeyBinding`` for its key; the governor relays it (and pays).

        Some actors hold no gas; the relayer only carries the actor's own signature.
        """
        kp = keypair or self.enc_key(actor)
        version = self.ledger.functions.getMember(actor.address).call()[3] + 1
        signed = eip712.sign_key_binding(
            actor.key, self.domain, kp.digest(), self.key_proof(actor, kp), version, 2**63
        )
        self.transact(
            self.governor,
            "bindEncryptionKeyBySig",
            actor.address,
            signed.key_hash,
            signed.key_proof,
            version,
            signed.deadline,
            signed.signature,
        )

    def key_body(self, actor: Actor) -> dict[str, str]:
        """The ``PUT /v1/members/me/key`` body publishing an already bound key."""
        return {
            "public_key": base64.b64encode(self.enc_key(actor).public_key.to_bytes()).decode(),
            "key_proof": base64.b64encode(self.key_proof(actor)).decode(),
        }

    def admit(self, actor: Actor, roles: int, kind: int, *, bind_key: bool = True) -> None:
        """The governor admits (no key); then, unless told not to, the actor binds its own."""
        self.transact(self.governor, "admitMember", actor.address, roles, kind, b"\0" * 32)
        if bind_key:
            self.bind_key(actor)

    def suspend(self, actor: Actor) -> None:
        self.transact(self.regulator, "suspendMember", actor.address, b"\x01" * 32)

    def reinstate(self, actor: Actor) -> None:
        self.transact(self.regulator, "reinstateMember", actor.address, b"\x02" * 32)

    def advance(self, seconds: int) -> None:
        self.w3.provider.make_request("evm_increaseTime", [seconds])
        self.w3.provider.make_request("evm_mine", [])

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def snapshot(self) -> str:
        return str(self.w3.provider.make_request("evm_snapshot", [])["result"])

    def revert(self, snap: str) -> None:
        self.w3.provider.make_request("evm_revert", [snap])

    # ---- signed consent messages -------------------------------------------------------

    def uses(self, grant_id: bytes | str) -> int:
        """A grant's uses: its Accessed events (the chain counts only limited grants; an unlimited
        grant's counter marks its first use)."""
        gid = bytes.fromhex(grant_id[2:]) if isinstance(grant_id, str) else grant_id
        span = accessed_filter(self.ledger_address, [gid], 0, self.w3.eth.block_number)
        uses = len(self.w3.eth.get_logs(span))
        counted = int(self.ledger.functions.getGrant(gid).call()[7])
        limited = int(self.ledger.functions.getGrant(gid).call()[6]) != 0
        assert counted == (uses if limited else min(uses, 1)), (counted, uses, limited)
        return uses

    def sign_grant(
        self,
        grantor: Actor,
        *,
        asset_id: bytes,
        grantee: str,
        fields_mask: int,
        purpose: int = 1,
        not_before: int = 0,
        expiry: int | None = None,
        max_uses: int = 0,
        nonce: int | None = None,
        deadline: int | None = None,
    ) -> dict[str, Any]:
        expiry = expiry if expiry is not None else self.now() + 86_400
        nonce = nonce if nonce is not None else secrets.randbits(64)
        deadline = deadline if deadline is not None else int(time.time()) + 3600
        terms = GrantTerms(asset_id, grantee, purpose, fields_mask, not_before, expiry, max_uses)
        digest = eip712.grant_digest(self.domain, terms, nonce, deadline)
        return {
            "terms": {
                "asset_id": "0x" + asset_id.hex(),
                "grantee": grantee,
                "purpose": purpose,
                "fields_mask": fields_mask,
                "not_before": not_before,
                "expiry": expiry,
                "max_uses": max_uses,
            },
            "grantor": grantor.address,
            "nonce": str(nonce),
            "deadline": deadline,
            "signature": "0x" + sign_digest(grantor.key_bytes, digest).hex(),
            "grant_id": "0x" + grant_id_of(grantor.address, nonce).hex(),
        }

    def sign_action(self, signer: Actor, action: str, grant_id: str) -> dict[str, Any]:
        nonce = self.ledger.functions.nonces(signer.address).call()
        deadline = int(time.time()) + 3600
        kind: eip712.StatusKind = {
            "revoke": "RevokeConsent",
            "pause": "PauseConsent",
            "resume": "ResumeConsent",
        }[action]  # type: ignore[assignment]
        digest = eip712.status_digest(
            self.domain, kind, bytes.fromhex(grant_id[2:]), nonce, deadline
        )
        return {
            "signer": signer.address,
            "deadline": deadline,
            "signature": "0x" + sign_digest(signer.key_bytes, digest).hex(),
        }

    def sign_access(
        self, grantee: Actor, grant_id: str, fields_mask: int, nonce: int | None = None
    ) -> dict[str, Any]:
        nonce = nonce if nonce is not None else secrets.randbits(32)
        deadline = int(time.time()) + 3600
        request = AccessRequest(bytes.fromhex(grant_id[2:]), fields_mask, nonce, deadline)
        digest = eip712.access_digest(self.domain, request)
        return {
            "grant_id": grant_id,
            "fields_mask": fields_mask,
            "nonce": str(nonce),
            "deadline": deadline,
            "signature": "0x" + sign_digest(grantee.key_bytes, digest).hex(),
        }
