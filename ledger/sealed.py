"""Sealed accesses: a department's lawful access without consent, told to the subject at once
and opened after the unseal date (``DataSafeSealed``, a companion the ledger's constructor
creates; docs/contracts.md, "Sealed accesses").

The record names the *asset* in clear, so the chain itself derives the subject (the asset's
owner) and checks that the sealing department issued the data; what stays sealed is the
*opening*: which institution received which fields under which legal basis, and the salt
that keeps a guess from being confirmed against the commitment.

Everything a client relies on is read here from the chain behind the client's own RPC: the
companion's code and creator, each record, a subject's complete list, the overdue ones.
What a service said is compared with it (:func:`check_listing`, :func:`check_overdue`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_hash.auto import keccak

from ledger._pin import ServiceContradictedError, TrustError
from ledger.abi import LedgerAbi
from ledger.address import is_address, to_checksum_address
from ledger.artifacts import SEALED_CONTRACT
from ledger.calls import Read
from ledger.companions import (
    build_code_hashes,
    check_companions,
    companion_abi,
    companion_address,
    companion_code_hash,
)
from ledger.eip712 import abi_encode
from ledger.errors import LedgerError
from ledger.rpc import RpcClient

#: The longest a seal or an extension may reach ahead of the chain's time (the contract's).
MAX_SEAL_PERIOD = 366 * 86400
#: At most this many records are read per JSON-RPC batch.
READ_BATCH = 100
_OPENING_TYPE = (
    "SealedAccessOpening(address institution,bytes32 assetId,uint64 fieldsMask,"
    "bytes32 legalBasisRef,bytes32 salt)"
)


class SealStatus(IntEnum):
    NONE = 0
    SEALED = 1
    UNSEALED = 2


class SealedError(LedgerError):
    """A sealed record or opening that does not hold; ``code`` is a stable slug."""

    def __init__(self, message: str, *, code: str = "sealed_invalid") -> None:
        super().__init__(message)
        self.code = code


def _b32(value: bytes | str, what: str) -> bytes:
    raw = value
    if isinstance(raw, str):
        try:
            raw = bytes.fromhex(raw.removeprefix("0x"))
        except ValueError:
            raise SealedError(f"{what} is not hex: {value!r}") from None
    if len(raw) != 32:
        raise SealedError(f"{what} must be 32 bytes")
    return raw


def legal_basis_ref(reference: str) -> bytes:
    """The on-chain reference of a legal basis: keccak256 of its citation (UTF-8)."""
    if not reference.strip():
        raise SealedError("a legal basis reference is required")
    return keccak(reference.encode())


@dataclass(frozen=True)
class Opening:
    """What a seal hides: only its hash is on chain until the department reveals it."""

    institution: str
    asset_id: bytes
    fields_mask: int
    legal_basis_ref: bytes
    salt: bytes

    def __post_init__(self) -> None:
        if not is_address(self.institution):
            raise SealedError(f"institution is not an address: {self.institution!r}")
        object.__setattr__(self, "institution", to_checksum_address(self.institution))
        object.__setattr__(self, "asset_id", _b32(self.asset_id, "asset id"))
        object.__setattr__(self, "legal_basis_ref", _b32(self.legal_basis_ref, "legal basis"))
        object.__setattr__(self, "salt", _b32(self.salt, "salt"))
        if not 0 < self.fields_mask < 2**64:
            raise SealedError(f"fields mask must be 1..2^64-1, got {self.fields_mask}")

    @classmethod
    def new(cls, institution: str, asset_id: bytes, fields_mask: int, basis: str) -> Opening:
        """A fresh opening with a random salt (the salt keeps guesses from being confirmed)."""
        return cls(institution, asset_id, fields_mask, legal_basis_ref(basis), os.urandom(32))

    def commitment(self) -> bytes:
        """``DataSafeSealed.hashOpening``: keccak256 of the typed, ABI-encoded opening."""
        return keccak(
            abi_encode(
                ["bytes32", "address", "bytes32", "uint64", "bytes32", "bytes32"],
                [
                    keccak(_OPENING_TYPE.encode()),
                    self.institution,
                    self.asset_id,
                    self.fields_mask,
                    self.legal_basis_ref,
                    self.salt,
                ],
            )
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "institution": self.institution,
            "asset_id": "0x" + self.asset_id.hex(),
            "fields_mask": self.fields_mask,
            "legal_basis_ref": "0x" + self.legal_basis_ref.hex(),
            "salt": "0x" + self.salt.hex(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Opening:
        try:
            return cls(
                str(data["institution"]),
                _b32(str(data["asset_id"]), "asset id"),
                int(data["fields_mask"]),
                _b32(str(data["legal_basis_ref"]), "legal basis"),
                _b32(str(data["salt"]), "salt"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SealedError(f"an unreadable opening: {exc}") from exc


@dataclass(frozen=True)
class SealRecord:
    """``getSeal(sealId)`` as the chain holds it."""

    seal_id: int
    department: str
    unseal_at: int
    status: SealStatus
    extensions: int
    subject: str
    sealed_at: int
    unsealed_at: int
    asset_id: bytes
    commitment: bytes

    @classmethod
    def from_tuple(cls, seal_id: int, t: Sequence[Any]) -> SealRecord:
        return cls(
            seal_id,
            to_checksum_address(t[0]),
            int(t[1]),
            SealStatus(int(t[2])),
            int(t[3]),
            to_checksum_address(t[4]),
            int(t[5]),
            int(t[6]),
            bytes(t[7]),
            bytes(t[8]),
        )

    def overdue(self, now: int) -> bool:
        """Still sealed at or after its unseal date: only the reveal clears it."""
        return self.status == SealStatus.SEALED and now >= self.unseal_at

    def to_json(self) -> dict[str, Any]:
        return {
            "seal_id": self.seal_id,
            "department": self.department,
            "subject": self.subject,
            "asset_id": "0x" + self.asset_id.hex(),
            "commitment": "0x" + self.commitment.hex(),
            "status": self.status.name.lower(),
            "sealed_at": self.sealed_at,
            "unseal_at": self.unseal_at,
            "unsealed_at": self.unsealed_at,
            "extensions": self.extensions,
        }


#: The fields of a listing item that must equal the chain's record.
_COMPARED = (
    "department",
    "subject",
    "asset_id",
    "commitment",
    "status",
    "sealed_at",
    "unseal_at",
    "unsealed_at",
    "extensions",
)


# ---- the companion ---------------------------------------------------------------------


def sealed_address(ledger: str) -> str:
    """The companion: created by the ledger's constructor (``ledger.companions`` order)."""
    return companion_address(ledger, SEALED_CONTRACT)


def sealed_abi() -> LedgerAbi:
    return companion_abi(SEALED_CONTRACT)


def sealed_code_hash() -> str:
    """keccak256 of the companion's runtime code in this build (no immutables: every deployment)."""
    return companion_code_hash(SEALED_CONTRACT)


# ---- calls -------------------------------------------------------------------------------


def _read(name: str, conv: Any, *args: Any) -> Read[Any]:
    fn = sealed_abi().fn(name)
    return Read(fn, fn.encode(*args), lambda data: conv(fn.decode_output(data)))


def read_seal_call(seal_id: int) -> Read[SealRecord]:
    return _read("getSeal", lambda t: SealRecord.from_tuple(seal_id, t[0]), seal_id)


def seal_count_call() -> Read[int]:
    return _read("sealCount", lambda t: int(t[0]))


def seal_count_of_call(subject: str) -> Read[int]:
    return _read("sealCountOf", lambda t: int(t[0]), to_checksum_address(subject))


def seal_of_at_call(subject: str, index: int) -> Read[int]:
    return _read("sealOfAt", lambda t: int(t[0]), to_checksum_address(subject), index)


def encode_seal(asset_id: bytes, commitment: bytes, unseal_at: int) -> bytes:
    return sealed_abi().fn("seal").encode(asset_id, commitment, unseal_at)


def encode_extend(seal_id: int, unseal_at: int, reason_hash: bytes) -> bytes:
    return sealed_abi().fn("extend").encode(seal_id, unseal_at, reason_hash)


def encode_unseal(seal_id: int, opening: Opening) -> bytes:
    return (
        sealed_abi()
        .fn("unseal")
        .encode(
            seal_id, opening.institution, opening.fields_mask, opening.legal_basis_ref, opening.salt
        )
    )


# ---- reads through the client's own RPC ---------------------------------------------------


def _batch(rpc: RpcClient, to: str, reads: Sequence[Read[Any]], block: str) -> list[Any]:
    out: list[Any] = []
    for start in range(0, len(reads), READ_BATCH):
        chunk = reads[start : start + READ_BATCH]
        calls = [("eth_call", [{"to": to, "data": "0x" + r.data.hex()}, block]) for r in chunk]
        for r, reply in zip(chunk, rpc.batch(calls), strict=True):
            if isinstance(reply, Exception):
                raise reply
            out.append(r.decode(bytes.fromhex(str(reply).removeprefix("0x"))))
    return out


def check_companion(rpc: RpcClient, ledger: str, pinned: Mapping[str, str] | None = None) -> str:
    """The ledger's sealed-access companion, checked on the chain behind ``rpc``.

    Every companion must run this build's code (or the code ``pinned`` recorded), and this
    one must name ``ledger`` as its creator: a service cannot point a client elsewhere.
    """
    check_companions(rpc, ledger, {**build_code_hashes(), **(pinned or {})})
    address = sealed_address(ledger)
    read = _read("ledger", lambda t: to_checksum_address(t[0]))
    (creator,) = _batch(rpc, address, [read], "latest")
    if creator.lower() != ledger.lower():
        raise TrustError(f"the companion at {address} serves {creator}", code="companion_mismatch")
    return address


def read_seals(
    rpc: RpcClient, ledger: str, seal_ids: Iterable[int], block: str = "latest"
) -> list[SealRecord]:
    records: list[SealRecord] = _batch(
        rpc, sealed_address(ledger), [read_seal_call(i) for i in seal_ids], block
    )
    return records


def subject_seal_ids(rpc: RpcClient, ledger: str, subject: str, block: str = "latest") -> list[int]:
    """Every seal naming ``subject``, in order of sealing, as the chain lists them."""
    address = sealed_address(ledger)
    (count,) = _batch(rpc, address, [seal_count_of_call(subject)], block)
    ids: list[int] = _batch(
        rpc, address, [seal_of_at_call(subject, i) for i in range(count)], block
    )
    return ids


def all_seals(rpc: RpcClient, ledger: str, block: str = "latest") -> list[SealRecord]:
    """Every seal on the chain (ids 1..sealCount), for the regulator's completeness check."""
    (count,) = _batch(rpc, sealed_address(ledger), [seal_count_call()], block)
    return read_seals(rpc, ledger, range(1, count + 1), block)


# ---- what a service said, against the chain -----------------------------------------------


def check_opening(record: SealRecord, opening: Opening) -> None:
    """The opening is this record's: same asset, and it hashes to the on-chain commitment."""
    if opening.asset_id != record.asset_id:
        raise SealedError(
            f"seal {record.seal_id} is about asset 0x{record.asset_id.hex()}, the opening "
            f"names 0x{opening.asset_id.hex()}",
            code="opening_mismatch",
        )
    if opening.commitment() != record.commitment:
        raise SealedError(
            f"the opening of seal {record.seal_id} does not match its commitment",
            code="opening_mismatch",
        )


def _compare(item: dict[str, Any], record: SealRecord) -> list[str]:
    chain = record.to_json()
    differs = []
    for key in _COMPARED:
        theirs, ours = item.get(key), chain[key]
        if isinstance(ours, str):
            same = isinstance(theirs, str) and theirs.lower() == ours.lower()
        else:
            same = theirs == ours
        if not same:
            differs.append(key)
    return differs


def _check_items(items: Sequence[dict[str, Any]], records: dict[int, SealRecord]) -> None:
    for item in items:
        record = records.get(int(item.get("seal_id", 0)))
        if record is None:
            raise ServiceContradictedError(
                f"the service listed seal {item.get('seal_id')}, which the chain does not hold here"
            )
        differs = _compare(item, record)
        if differs:
            raise ServiceContradictedError(
                f"the service altered seal {record.seal_id}: {', '.join(differs)} differ "
                "from the chain"
            )
        if item.get("opening") is not None:
            try:
                check_opening(record, Opening.from_json(item["opening"]))
            except SealedError as exc:
                raise ServiceContradictedError(f"the service's opening: {exc}") from exc


def check_listing(
    rpc: RpcClient, ledger: str, subject: str | None, items: Sequence[dict[str, Any]]
) -> list[SealRecord]:
    """The service's list of ``subject``'s seals (None: everyone's), every one, each as on chain.

    A hidden seal (the chain counts more), an invented or altered one, or an opening that
    does not hash to the commitment: :class:`ServiceContradictedError`.
    """
    if subject is None:
        records = {r.seal_id: r for r in all_seals(rpc, ledger)}
        ids = sorted(records)
        whose = "anyone"
    else:
        ids = subject_seal_ids(rpc, ledger, subject)
        records = {r.seal_id: r for r in read_seals(rpc, ledger, ids)}
        whose = to_checksum_address(subject)
    listed = {int(item.get("seal_id", 0)) for item in items}
    hidden = [i for i in ids if i not in listed]
    if hidden:
        raise ServiceContradictedError(
            f"the service hid {len(hidden)} sealed access record(s) the chain holds for "
            f"{whose}: {', '.join(map(str, hidden))}"
        )
    _check_items(items, records)
    return [records[i] for i in ids]


def check_overdue(
    rpc: RpcClient, ledger: str, window: tuple[int, int], items: Sequence[dict[str, Any]]
) -> list[SealRecord]:
    """The service's overdue list against the chain's records.

    ``window`` is the chain time read before and after the service answered: a seal overdue
    at the first must be listed; one listed must be overdue by the second (a seal whose date
    passed in between may be either).
    """
    before, after = window
    records = {r.seal_id: r for r in all_seals(rpc, ledger)}
    listed = {int(item.get("seal_id", 0)) for item in items}
    hidden = sorted(i for i, r in records.items() if r.overdue(before) and i not in listed)
    if hidden:
        raise ServiceContradictedError(
            f"the service hid {len(hidden)} overdue seal(s): {', '.join(map(str, hidden))}"
        )
    extra = sorted(i for i in listed if i not in records or not records[i].overdue(after))
    if extra:
        raise ServiceContradictedError(
            "the service listed seal(s) that are not overdue on chain: "
            + ", ".join(map(str, extra))
        )
    _check_items(items, records)
    return [records[i] for i in sorted(listed)]


def openings_filter(ledger: str, seal_ids: Sequence[int]) -> dict[str, Any]:
    """``eth_getLogs`` filter of the companion's ``AccessUnsealed`` logs of ``seal_ids``."""
    spec = sealed_abi().events_by_name["AccessUnsealed"]
    ids = ["0x" + i.to_bytes(32, "big").hex() for i in seal_ids]
    return {
        "address": sealed_address(ledger),
        "fromBlock": "0x0",
        "toBlock": "latest",
        "topics": ["0x" + spec.topic0.hex(), ids],
    }


def openings_from_logs(ledger: str, logs: Iterable[dict[str, Any]]) -> dict[int, Opening]:
    """seal id -> the opening its ``AccessUnsealed`` log revealed (other logs ignored)."""
    abi = sealed_abi()
    address = sealed_address(ledger).lower()
    out: dict[int, Opening] = {}
    for log in logs:
        event = abi.decode_log(log)
        if event is None or event.name != "AccessUnsealed" or event.address.lower() != address:
            continue  # a node that answers with other contracts' logs is ignored, not believed
        a = event.args
        out[int(a["sealId"])] = Opening(
            a["institution"], a["assetId"], int(a["fieldsMask"]), a["legalBasisRef"], a["salt"]
        )
    return out


def unseal_openings(rpc: RpcClient, ledger: str, seal_ids: Sequence[int]) -> dict[int, Opening]:
    """The openings revealed on chain, read with the client's own RPC."""
    if not seal_ids:
        return {}
    logs = rpc.call("eth_getLogs", [openings_filter(ledger, seal_ids)])
    return openings_from_logs(ledger, logs or [])


def seal_id_of(ledger: str, logs: Iterable[dict[str, Any]]) -> int | None:
    """The id in a receipt's ``AccessSealed`` log of the companion (None: no such log)."""
    abi = sealed_abi()
    address = sealed_address(ledger).lower()
    for log in logs:
        event = abi.decode_log(log)
        if event is not None and event.name == "AccessSealed" and event.address.lower() == address:
            return int(event.args["sealId"])
    return None


__all__ = [
    "MAX_SEAL_PERIOD",
    "SEALED_CONTRACT",
    "Opening",
    "SealRecord",
    "SealStatus",
    "SealedError",
    "all_seals",
    "check_companion",
    "check_listing",
    "check_opening",
    "check_overdue",
    "encode_extend",
    "encode_seal",
    "encode_unseal",
    "legal_basis_ref",
    "openings_filter",
    "openings_from_logs",
    "read_seal_call",
    "read_seals",
    "seal_id_of",
    "sealed_abi",
    "sealed_address",
    "sealed_code_hash",
    "subject_seal_ids",
    "unseal_openings",
]
