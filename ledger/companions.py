"""The ledger's companion contracts: found from the ledger's address, recognised by their code.

The ledger's constructor creates its forwarder (CREATE nonce 1) and then each companion in
the order of :data:`COMPANIONS` (nonce 2, 3 ...), so a companion's address follows from the
ledger's alone. A companion has no immutables and stores its creator (the ledger), so its
runtime code hash is a build constant: :func:`check_companions` compares the code on the
chain the client reads itself with this build's artifacts (or with hashes a pin recorded),
trusting no service. Code at the derived address that matches proves the ledger created it
(the address is the ledger's CREATE output) and that it reads only that ledger.

Companions hold what does not fit in the ledger's EIP-170 budget (claims, ...): each one
reads the ledger through view calls for its rules. Their events are read from their own
addresses (:func:`log_addresses`) by the indexer and the audit.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from eth_hash.auto import keccak

from ledger.abi import LedgerAbi, ledger_abi
from ledger.address import to_checksum_address
from ledger.artifacts import COMPANION_CONTRACTS, load_artifact
from ledger.errors import LedgerError
from ledger.rpc import RpcClient

#: Companion contract names in creation order. Append only: the position fixes the address.
COMPANIONS: tuple[str, ...] = COMPANION_CONTRACTS
#: The ledger's CREATE nonce of the first companion (nonce 1 is the forwarder).
FIRST_COMPANION_NONCE = 2


class CompanionError(LedgerError):
    """A companion that is missing, runs other code, or is not one of this build's."""

    def __init__(self, message: str, *, code: str = "companion_mismatch") -> None:
        super().__init__(message)
        self.code = code


def _index(name: str) -> int:
    try:
        return COMPANIONS.index(name)
    except ValueError:
        raise CompanionError(
            f"{name!r} is not a companion of this build ({', '.join(COMPANIONS)})",
            code="companion_unknown",
        ) from None


def created_address(creator: str, nonce: int) -> str:
    """The CREATE address of ``creator`` at ``nonce`` (1..127: one-byte RLP)."""
    if not 1 <= nonce <= 0x7F:
        raise CompanionError(f"nonce {nonce} out of the one-byte range", code="companion_unknown")
    raw = bytes.fromhex(to_checksum_address(creator)[2:])
    return to_checksum_address(keccak(b"\xd6\x94" + raw + bytes([nonce]))[12:])


def companion_address(ledger: str, name: str) -> str:
    """Where the ledger's constructor created companion ``name``."""
    return created_address(ledger, FIRST_COMPANION_NONCE + _index(name))


def companion_addresses(ledger: str) -> dict[str, str]:
    """Every companion's address, in creation order."""
    return {name: companion_address(ledger, name) for name in COMPANIONS}


def log_addresses(ledger: str) -> list[str]:
    """The ledger and its companions: every address whose logs the index and audit read."""
    return [to_checksum_address(ledger), *companion_addresses(ledger).values()]


@lru_cache(maxsize=8)
def companion_abi(name: str) -> LedgerAbi:
    _index(name)
    return ledger_abi(load_artifact(name))


@lru_cache(maxsize=8)
def companion_code_hash(name: str) -> str:
    """keccak256 of companion ``name``'s runtime code in this build (every deployment)."""
    _index(name)
    return load_artifact(name).deployed_code_hash


def build_code_hashes() -> dict[str, str]:
    """name -> this build's runtime code hash, for every companion."""
    return {name: companion_code_hash(name) for name in COMPANIONS}


def hash_of_code(code: str) -> str | None:
    """keccak256 of ``eth_getCode``'s answer, None for an empty account."""
    if code in ("", "0x"):
        return None
    return "0x" + keccak(bytes.fromhex(code.removeprefix("0x"))).hex()


def read_code_hashes(rpc: RpcClient, ledger: str, block: str = "latest") -> dict[str, str | None]:
    """name -> the code hash at each companion's address on the chain behind ``rpc``."""
    addresses = companion_addresses(ledger)
    calls = [("eth_getCode", [address, block]) for address in addresses.values()]
    out: dict[str, str | None] = {}
    for name, reply in zip(addresses, rpc.batch(calls), strict=True):
        if isinstance(reply, Exception):
            raise reply
        out[name] = hash_of_code(str(reply))
    return out


def mismatches(
    ledger: str, actual: Mapping[str, str | None], expected: Mapping[str, str] | None = None
) -> list[str]:
    """One line per companion whose code differs from ``expected`` (default: this build)."""
    wanted = dict(expected) if expected is not None else build_code_hashes()
    out = []
    for name in COMPANIONS:
        want = wanted.get(name)
        if want is None:
            continue  # a pin from before this companion existed
        have = actual.get(name)
        if have is None or have.lower() != want.lower():
            out.append(
                f"{name} runtime code hash at {companion_address(ledger, name)} "
                f"({have or 'no code'}, expected {want.lower()})"
            )
    return out


def check_companions(
    rpc: RpcClient, ledger: str, expected: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Refuse a ledger whose companions do not run this build's (or the pinned) code.

    Returns name -> address of the checked companions.
    """
    problems = mismatches(ledger, read_code_hashes(rpc, ledger), expected)
    if problems:
        raise CompanionError("the ledger's companion differs: " + "; ".join(problems))
    return companion_addresses(ledger)


__all__ = [
    "COMPANIONS",
    "FIRST_COMPANION_NONCE",
    "CompanionError",
    "build_code_hashes",
    "check_companions",
    "companion_abi",
    "companion_address",
    "companion_addresses",
    "companion_code_hash",
    "created_address",
    "hash_of_code",
    "log_addresses",
    "mismatches",
    "read_code_hashes",
]
