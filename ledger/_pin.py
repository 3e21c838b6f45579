"""The trust anchor a client pins, and the errors of trust.

A :class:`PinnedDeployment` fixes chain id, ledger address, genesis block hash and the
ledger's runtime code hash, obtained out of band (a manifest file, or a fingerprint the user
confirms once); :func:`verify_deployment` checks it before anything else is relied on.
Public through :mod:`ledger.trust`, which holds the checks built on it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ledger.address import is_address, to_checksum_address
from ledger.companions import companion_addresses, hash_of_code, mismatches, read_code_hashes
from ledger.errors import LedgerError
from ledger.forwarder import forwarder_address
from ledger.manifest import Manifest, code_hash
from ledger.rpc import RpcClient

#: The four facts a pin fixes, in the order messages name them.
PIN_FACTS = ("chain id", "ledger address", "genesis block hash", "ledger runtime code hash")
_FINGERPRINT_LABEL = b"datasafe-deployment-pin/v1"


# ---- errors -----------------------------------------------------------------------------


class TrustError(LedgerError):
    """The chain the client reads contradicts what it was told; ``code`` is a stable slug."""

    code = "trust_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class DeploymentMismatchError(TrustError):
    """The chain behind the RPC endpoint is not the pinned deployment."""

    code = "deployment_mismatch"

    def __init__(self, differs: Sequence[str], detail: str) -> None:
        self.differs = tuple(differs)
        super().__init__(f"the deployment differs from the pin in its {detail}")


class NotPinnedError(TrustError):
    """No deployment is pinned yet, and nobody confirmed a fingerprint."""

    code = "deployment_not_pinned"


class ServiceContradictedError(TrustError):
    """What the service served is contradicted by the chain (it lied, or is broken)."""

    code = "service_mismatch"


class NotConfirmedError(TrustError):
    """The chain does not show an action the service reported as done."""

    code = "not_confirmed"


# ---- the trust anchor -------------------------------------------------------------------


def _hex32(value: str, what: str) -> str:
    raw = value.lower()
    if not raw.startswith("0x") or len(raw) != 66:
        raise TrustError(f"{what} must be 0x + 64 hex digits, got {value!r}", code="invalid_pin")
    try:
        bytes.fromhex(raw[2:])
    except ValueError:
        raise TrustError(f"{what} is not hex: {value!r}", code="invalid_pin") from None
    return raw


@dataclass(frozen=True)
class PinnedDeployment:
    """The deployment a client trusts; ``deploy_block`` is where event scans start."""

    chain_id: int
    ledger_address: str
    genesis_hash: str
    code_hash: str
    deploy_block: int = 0
    #: The runtime code hash of the ledger's ERC-2771 forwarder (None: a pin from before it).
    #: Not part of the fingerprint: the ledger's code holds the forwarder's address, and the
    #: forwarder has no immutables, so its hash is also checked against the wallet's own build.
    forwarder_code_hash: str | None = None
    #: (name, runtime code hash) of each companion the ledger's constructor created (empty:
    #: a pin from before them). Not part of the fingerprint either: companions have no
    #: immutables, so a pin read from the chain is first checked against this build.
    companion_code_hashes: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not is_address(self.ledger_address):
            raise TrustError(f"not an address: {self.ledger_address!r}", code="invalid_pin")
        object.__setattr__(self, "ledger_address", to_checksum_address(self.ledger_address))
        object.__setattr__(self, "genesis_hash", _hex32(self.genesis_hash, "genesis hash"))
        object.__setattr__(self, "code_hash", _hex32(self.code_hash, "code hash"))
        if self.forwarder_code_hash is not None:
            fch = _hex32(self.forwarder_code_hash, "forwarder code hash")
            object.__setattr__(self, "forwarder_code_hash", fch)
        companions = tuple(
            (str(name), _hex32(str(value), f"{name} code hash"))
            for name, value in self.companion_code_hashes
        )
        object.__setattr__(self, "companion_code_hashes", companions)

    @property
    def fingerprint(self) -> str:
        """Short, human-comparable: 128 bits of SHA-256 over the four facts, in 8 groups."""
        return fingerprint_of(self.chain_id, self.ledger_address, self.genesis_hash, self.code_hash)

    @property
    def companions(self) -> dict[str, str]:
        """name -> pinned runtime code hash."""
        return dict(self.companion_code_hashes)

    def to_json(self) -> dict[str, Any]:
        return (
            asdict(self)
            | {"companion_code_hashes": self.companions}
            | {"fingerprint": self.fingerprint}
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PinnedDeployment:
        try:
            pin = cls(
                int(data["chain_id"]),
                str(data["ledger_address"]),
                str(data["genesis_hash"]),
                str(data["code_hash"]),
                int(data.get("deploy_block") or 0),
                data.get("forwarder_code_hash") or None,
                tuple(dict(data.get("companion_code_hashes") or {}).items()),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TrustError(f"a stored pin is unreadable: {exc}", code="invalid_pin") from exc
        if "fingerprint" in data and data["fingerprint"] != pin.fingerprint:
            raise TrustError("a stored pin does not match its own fingerprint", code="invalid_pin")
        return pin

    @classmethod
    def from_manifest(cls, manifest: Manifest, rpc: RpcClient | None = None) -> PinnedDeployment:
        """The manifest's facts; a manifest without ``genesisHash`` takes it from ``rpc``."""
        genesis = manifest.genesis_hash
        if genesis is None:
            if rpc is None:
                raise NotPinnedError("the manifest has no genesis hash and no chain was given")
            genesis = genesis_hash(rpc)
        return cls(
            manifest.chain_id,
            manifest.ledger_address,
            genesis,
            manifest.code_hash,
            manifest.deploy_block,
            manifest.forwarder_code_hash,
            tuple((manifest.companion_code_hashes or {}).items()),
        )


def fingerprint_of(chain_id: int, ledger: str, genesis: str, code: str) -> str:
    canonical = b"|".join(
        [
            _FINGERPRINT_LABEL,
            str(int(chain_id)).encode(),
            ledger.lower().encode(),
            genesis.lower().encode(),
            code.lower().encode(),
        ]
    )
    digest = hashlib.sha256(canonical).hexdigest()[:32]
    return "-".join(digest[i : i + 4] for i in range(0, 32, 4))


def normalise_fingerprint(value: str) -> str:
    """Accept any case, with or without dashes or spaces."""
    raw = "".join(ch for ch in value.lower() if ch not in "-: ")
    if len(raw) != 32 or any(ch not in "0123456789abcdef" for ch in raw):
        raise TrustError(
            f"a deployment fingerprint is 32 hex digits (8 groups of 4), got {value!r}",
            code="invalid_pin",
        )
    return "-".join(raw[i : i + 4] for i in range(0, 32, 4))


def genesis_hash(rpc: RpcClient) -> str:
    return _genesis_of(rpc.call("eth_getBlockByNumber", ["0x0", False]))


def _genesis_of(block: Any) -> str:
    if not isinstance(block, dict) or not block or not block.get("hash"):
        raise TrustError("the RPC endpoint has no genesis block", code="deployment_mismatch")
    return str(block["hash"]).lower()


def read_deployment(rpc: RpcClient, ledger_address: str, deploy_block: int = 0) -> PinnedDeployment:
    """The four facts as the chain behind ``rpc`` has them for ``ledger_address``."""
    if not is_address(ledger_address):
        raise ServiceContradictedError(f"not a ledger address: {ledger_address!r}")
    address = to_checksum_address(ledger_address)
    code = str(rpc.call("eth_getCode", [address, "latest"]))
    if code in ("0x", ""):
        raise DeploymentMismatchError(
            ["ledger runtime code hash"], f"code: there is no contract at {address}"
        )
    fcode = str(rpc.call("eth_getCode", [forwarder_address(address), "latest"]))
    companions = read_code_hashes(rpc, address)
    # A pin taken from the chain accepts only companions that run this build's code.
    problems = mismatches(address, companions)
    if problems:
        raise DeploymentMismatchError(["companion runtime code hash"], "; ".join(problems))
    return PinnedDeployment(
        int(rpc.call("eth_chainId"), 16),
        address,
        genesis_hash(rpc),
        code_hash(code),
        deploy_block,
        code_hash(fcode) if fcode not in ("0x", "") else None,
        tuple((name, value) for name, value in companions.items() if value is not None),
    )


def verify_deployment(rpc: RpcClient, pin: PinnedDeployment) -> None:
    """Raise :class:`DeploymentMismatchError` naming each of the four facts that differs."""
    differs: list[str] = []
    details: list[str] = []
    forwarder = forwarder_address(pin.ledger_address)
    calls: list[tuple[str, list[Any]]] = [
        ("eth_chainId", []),
        ("eth_getBlockByNumber", ["0x0", False]),
        ("eth_getCode", [pin.ledger_address, "latest"]),
    ]
    if pin.forwarder_code_hash is not None:
        calls.append(("eth_getCode", [forwarder, "latest"]))
    pinned = pin.companions
    addresses = companion_addresses(pin.ledger_address) if pinned else {}
    named = [name for name in addresses if name in pinned]
    calls.extend(("eth_getCode", [addresses[name], "latest"]) for name in named)
    # One round trip for the four facts (every command checks them before it trusts a read).
    replies: list[Any] = []
    for reply in rpc.batch(calls):
        if isinstance(reply, Exception):
            raise reply
        replies.append(reply)
    chain_id = int(replies[0], 16)
    if chain_id != pin.chain_id:
        differs.append(PIN_FACTS[0])
        details.append(f"chain id ({chain_id}, pinned {pin.chain_id})")
    genesis = _genesis_of(replies[1])
    if genesis != pin.genesis_hash:
        differs.append(PIN_FACTS[2])
        details.append(f"genesis block hash ({genesis}, pinned {pin.genesis_hash})")
    code = str(replies[2])
    actual = code_hash(code) if code not in ("0x", "") else "no code"
    if actual != pin.code_hash:
        differs.append(PIN_FACTS[3])
        details.append(
            f"ledger runtime code hash at {pin.ledger_address} ({actual}, pinned {pin.code_hash})"
        )
    if pin.forwarder_code_hash is not None:
        fcode = str(replies[3])
        factual = code_hash(fcode) if fcode not in ("0x", "") else "no code"
        if factual != pin.forwarder_code_hash:
            differs.append("forwarder runtime code hash")
            details.append(
                f"forwarder runtime code hash at {forwarder} ({factual}, "
                f"pinned {pin.forwarder_code_hash})"
            )
    tail = replies[len(replies) - len(named) :] if named else []
    actual_companions = {name: hash_of_code(str(r)) for name, r in zip(named, tail, strict=True)}
    problems = mismatches(pin.ledger_address, actual_companions, pinned)
    if problems:
        differs.append("companion runtime code hash")
        details.extend(problems)
    if differs:
        raise DeploymentMismatchError(differs, "; ".join(details))


def check_hint(pin: PinnedDeployment, chain_id: Any, ledger_address: Any) -> None:
    """The service's ``/v1/info`` against the pin: a different ledger is a lie, not a hint."""
    differs: list[str] = []
    details: list[str] = []
    if chain_id is not None and int(chain_id) != pin.chain_id:
        differs.append(PIN_FACTS[0])
        details.append(f"chain id (service says {chain_id}, pinned {pin.chain_id})")
    if ledger_address is not None and str(ledger_address).lower() != pin.ledger_address.lower():
        differs.append(PIN_FACTS[1])
        details.append(
            f"ledger address (service says {ledger_address}, pinned {pin.ledger_address})"
        )
    if differs:
        raise DeploymentMismatchError(differs, "; ".join(details))


def pin_from_fingerprint(
    rpc: RpcClient, ledger_address: str, fingerprint: str, deploy_block: int = 0
) -> PinnedDeployment:
    """The deployment at ``ledger_address`` (a hint), accepted only if it has ``fingerprint``."""
    wanted = normalise_fingerprint(fingerprint)
    pin = read_deployment(rpc, ledger_address, deploy_block)
    if pin.fingerprint != wanted:
        raise DeploymentMismatchError(
            ["fingerprint"],
            f"fingerprint: the chain and the ledger the service names give {pin.fingerprint}, "
            f"you confirmed {wanted}",
        )
    return pin


# ---- reading the pinned ledger ----------------------------------------------------------
