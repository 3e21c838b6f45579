"""Claims (申领): a subject asks a department to issue a record into her safe.

The subject signs an EIP-712 ``ClaimRequest`` (domain "DataSafeClaims", "1", the claims
companion's address) naming the department, the schema it issues and a reference hash the
department can match (:func:`reference_hash`; no personal data on chain). The custodian
relays it (``fileClaim``, gasless for her); the department answers with ``fulfilClaim``
(linking the asset it anchored in her safe) or ``refuseClaim`` (a reason code from
:data:`REASON_CODES` and the hash of a reason text). The contract is a companion of the
ledger (:mod:`ledger.companions`): every read here goes to the chain behind the caller's
RPC and :func:`verify_claims` holds a service's answer against it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_hash.auto import keccak

from ledger._pin import ServiceContradictedError
from ledger.abi import LedgerAbi
from ledger.address import is_address, to_checksum_address
from ledger.calls import Write
from ledger.companions import companion_abi, companion_address
from ledger.eip712 import TYPES as LEDGER_TYPES
from ledger.eip712 import Domain, abi_encode, recover, sign_digest
from ledger.errors import LedgerError
from ledger.rpc import RpcClient

CONTRACT = "DataSafeClaims"
NAME = "DataSafeClaims"
VERSION = "1"
_REQUEST_TYPE = (
    "ClaimRequest(address subject,address department,bytes32 schemaId,bytes32 referenceHash,"
    "uint256 nonce,uint64 deadline)"
)
TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": LEDGER_TYPES["EIP712Domain"],
    "ClaimRequest": [
        {"name": "subject", "type": "address"},
        {"name": "department", "type": "address"},
        {"name": "schemaId", "type": "bytes32"},
        {"name": "referenceHash", "type": "bytes32"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint64"},
    ],
}
#: The published refusal codes (docs/contracts.md, "Claims"); the contract takes any non-zero.
REASON_CODES: dict[int, str] = {
    1: "no_record",
    2: "reference_mismatch",
    3: "not_eligible",
    4: "already_issued",
    5: "needs_visit",
    99: "other",
}
REASON_BY_NAME = {v: k for k, v in REASON_CODES.items()}
_REF_LABEL = b"datasafe-claim-reference/v1"
_ZERO32 = b"\0" * 32


class ClaimsError(LedgerError):
    """A claim request that is malformed or badly signed."""

    def __init__(self, message: str, *, code: str = "claim_invalid") -> None:
        super().__init__(message)
        self.code = code


class ClaimStatus(IntEnum):
    NONE = 0
    OPEN = 1
    FULFILLED = 2
    REFUSED = 3

    @property
    def label(self) -> str:
        return self.name.lower()


def _b32(value: bytes | str, what: str) -> bytes:
    if isinstance(value, str):
        try:
            raw = bytes.fromhex(value.removeprefix("0x"))
        except ValueError:
            raise ClaimsError(f"{what} is not hex: {value!r}") from None
    else:
        raw = bytes(value)
    if len(raw) != 32:
        raise ClaimsError(f"{what} must be 32 bytes, got {len(raw)}")
    return raw


def _addr(value: str, what: str) -> str:
    if not is_address(value):
        raise ClaimsError(f"{what} is not an address: {value!r}")
    return to_checksum_address(value)


def reference_hash(department: str, schema_id: bytes, reference: str, salt: bytes = b"") -> bytes:
    """The commitment a claim carries: the department recomputes it from its own records.

    Bound to the department and schema, so the same case number gives unrelated hashes at
    two departments; ``salt`` (shared with the department off chain) keeps a short,
    guessable reference from being enumerated by anyone reading the chain.
    """
    text = reference.strip()
    if not text or len(text.encode()) > 256:
        raise ClaimsError("a claim reference is 1 to 256 bytes of text", code="claim_reference")
    return keccak(
        b"|".join(
            [
                _REF_LABEL,
                _addr(department, "department").lower().encode(),
                _b32(schema_id, "schema id"),
                salt,
                text.encode(),
            ]
        )
    )


@dataclass(frozen=True)
class ClaimRequest:
    subject: str
    department: str
    schema_id: bytes
    reference_hash: bytes
    nonce: int
    deadline: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject", _addr(self.subject, "subject"))
        object.__setattr__(self, "department", _addr(self.department, "department"))
        object.__setattr__(self, "schema_id", _b32(self.schema_id, "schema id"))
        object.__setattr__(self, "reference_hash", _b32(self.reference_hash, "reference hash"))
        if self.reference_hash == _ZERO32:
            raise ClaimsError("a claim carries a non-zero reference hash", code="claim_reference")
        if not 0 <= self.nonce < 1 << 256 or not 0 <= self.deadline < 1 << 64:
            raise ClaimsError("nonce or deadline out of range")

    def as_tuple(self) -> tuple[str, str, bytes, bytes, int, int]:
        return (
            self.subject,
            self.department,
            self.schema_id,
            self.reference_hash,
            self.nonce,
            self.deadline,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "department": self.department,
            "schema_id": "0x" + self.schema_id.hex(),
            "reference_hash": "0x" + self.reference_hash.hex(),
            "nonce": self.nonce,
            "deadline": self.deadline,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClaimRequest:
        try:
            return cls(
                str(data["subject"]),
                str(data["department"]),
                _b32(str(data["schema_id"]), "schema id"),
                _b32(str(data["reference_hash"]), "reference hash"),
                int(data["nonce"]),
                int(data["deadline"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ClaimsError(f"malformed claim request: {exc}") from exc

    @property
    def message(self) -> dict[str, Any]:
        """The EIP-712 message (for ``eth_signTypedData_v4``)."""
        return {
            "subject": self.subject,
            "department": self.department,
            "schemaId": self.schema_id,
            "referenceHash": self.reference_hash,
            "nonce": self.nonce,
            "deadline": self.deadline,
        }


@dataclass(frozen=True)
class Claim:
    """One claim as the contract stores it (``outcome``: the asset, or the reason hash)."""

    claim_id: bytes
    subject: str
    status: ClaimStatus
    filed_at: int
    department: str
    closed_at: int
    reason_code: int
    schema_id: bytes
    outcome: bytes

    @classmethod
    def from_tuple(cls, claim_id: bytes, t: Sequence[Any]) -> Claim:
        return cls(
            claim_id,
            to_checksum_address(t[0]),
            ClaimStatus(int(t[1])),
            int(t[2]),
            to_checksum_address(t[3]),
            int(t[4]),
            int(t[5]),
            bytes(t[6]),
            bytes(t[7]),
        )

    @property
    def asset_id(self) -> bytes | None:
        return self.outcome if self.status == ClaimStatus.FULFILLED else None

    def to_json(self) -> dict[str, Any]:
        fulfilled = self.status == ClaimStatus.FULFILLED
        refused = self.status == ClaimStatus.REFUSED
        return {
            "claim_id": "0x" + self.claim_id.hex(),
            "subject": self.subject,
            "department": self.department,
            "schema_id": "0x" + self.schema_id.hex(),
            "status": self.status.label,
            "filed_at": self.filed_at,
            "closed_at": self.closed_at or None,
            "asset_id": "0x" + self.outcome.hex() if fulfilled else None,
            "reason_code": self.reason_code if refused else None,
            "reason": REASON_CODES.get(self.reason_code) if refused else None,
            "reason_hash": "0x" + self.outcome.hex() if refused else None,
        }


def claims_address(ledger: str) -> str:
    return companion_address(ledger, CONTRACT)


def claims_abi() -> LedgerAbi:
    return companion_abi(CONTRACT)


def domain(chain_id: int, ledger: str) -> Domain:
    return Domain(chain_id, claims_address(ledger), NAME, VERSION)


def request_digest(chain_id: int, ledger: str, request: ClaimRequest) -> bytes:
    """The claim's EIP-712 digest under the ledger's claims companion: also its id."""
    struct = abi_encode(
        ["bytes32", "address", "address", "bytes32", "bytes32", "uint256", "uint64"],
        [keccak(_REQUEST_TYPE.encode()), *request.as_tuple()],
    )
    return domain(chain_id, ledger).digest(keccak(struct))


def typed_data(chain_id: int, ledger: str, request: ClaimRequest) -> dict[str, Any]:
    """The full EIP-712 document, as a hardware wallet would be asked to sign it."""
    return {
        "types": TYPES,
        "primaryType": "ClaimRequest",
        "domain": domain(chain_id, ledger).as_dict(),
        "message": request.message,
    }


def sign_request(private_key: bytes, chain_id: int, ledger: str, request: ClaimRequest) -> bytes:
    return sign_digest(private_key, request_digest(chain_id, ledger, request))


def request_signer(chain_id: int, ledger: str, request: ClaimRequest, signature: bytes) -> str:
    """The address that signed ``request``; :class:`ClaimsError` for a malformed signature."""
    try:
        return recover(request_digest(chain_id, ledger, request), signature)
    except Exception as exc:  # eth-keys' BadSignature family, LedgerError
        raise ClaimsError(f"unreadable claim signature: {exc}", code="claim_signature") from exc


# ---- calls -------------------------------------------------------------------------------


def file_claim(request: ClaimRequest, signature: bytes) -> Write:
    fn = claims_abi().fn("fileClaim")
    return Write(fn, fn.encode(request.as_tuple(), signature))


def fulfil_claim(claim_id: bytes, asset_id: bytes) -> Write:
    fn = claims_abi().fn("fulfilClaim")
    return Write(fn, fn.encode(_b32(claim_id, "claim id"), _b32(asset_id, "asset id")))


def refuse_claim(claim_id: bytes, reason_code: int, reason_hash: bytes = _ZERO32) -> Write:
    if not 0 < reason_code < 1 << 16:
        raise ClaimsError(f"a reason code is 1..65535, got {reason_code}", code="claim_reason")
    fn = claims_abi().fn("refuseClaim")
    return Write(fn, fn.encode(_b32(claim_id, "claim id"), reason_code, _b32(reason_hash, "hash")))


def _call(rpc: RpcClient, to: str, data: bytes, block: str) -> bytes:
    raw = rpc.call("eth_call", [{"to": to, "data": "0x" + data.hex()}, block])
    return bytes.fromhex(str(raw).removeprefix("0x"))


def read_claims(
    rpc: RpcClient, ledger: str, claim_ids: Iterable[bytes], block: str = "latest"
) -> list[Claim]:
    """The claims as the chain behind ``rpc`` has them (one JSON-RPC batch)."""
    ids = [_b32(c, "claim id") for c in claim_ids]
    if not ids:
        return []
    fn = claims_abi().fn("getClaim")
    to = claims_address(ledger)
    calls = [("eth_call", [{"to": to, "data": "0x" + fn.encode(c).hex()}, block]) for c in ids]
    out = []
    for claim_id, reply in zip(ids, rpc.batch(calls), strict=True):
        if isinstance(reply, Exception):
            raise reply
        (value,) = fn.decode_output(bytes.fromhex(str(reply).removeprefix("0x")))
        out.append(Claim.from_tuple(claim_id, value))
    return out


def read_claim(rpc: RpcClient, ledger: str, claim_id: bytes, block: str = "latest") -> Claim:
    return read_claims(rpc, ledger, [claim_id], block)[0]


def read_nonce(rpc: RpcClient, ledger: str, subject: str, block: str = "latest") -> int:
    fn = claims_abi().fn("nonces")
    data = fn.encode(_addr(subject, "subject"))
    (nonce,) = fn.decode_output(_call(rpc, claims_address(ledger), data, block))
    return int(nonce)


# ---- what the chain shows ------------------------------------------------------------------


def _logs(
    rpc: RpcClient, address: str, topics: list[Any], from_block: int, abi: LedgerAbi
) -> list[Any]:
    flt = {"address": address, "fromBlock": hex(from_block), "toBlock": "latest", "topics": topics}
    events = [abi.decode_log(lg) for lg in rpc.call("eth_getLogs", [flt]) or []]
    # A node that answers with other contracts' logs is ignored, not believed.
    kept = [e for e in events if e is not None and e.address.lower() == address.lower()]
    return sorted(kept, key=lambda e: (e.block_number, e.log_index))


def _topic_address(value: str) -> str:
    return "0x" + "00" * 12 + _addr(value, "address")[2:].lower()


def filed_claim_ids(
    rpc: RpcClient,
    ledger: str,
    *,
    subject: str | None = None,
    department: str | None = None,
    from_block: int = 0,
) -> list[bytes]:
    """The ids of the claims filed by ``subject`` / to ``department``, oldest first."""
    abi = claims_abi()
    spec = abi.events_by_name["ClaimFiled"]
    topics: list[Any] = [
        "0x" + spec.topic0.hex(),
        None,
        _topic_address(subject) if subject else None,
        _topic_address(department) if department else None,
    ]
    events = _logs(rpc, claims_address(ledger), topics, from_block, abi)
    return [bytes(e.args["claimId"]) for e in events]


@dataclass(frozen=True)
class Claimable:
    """A record a subject can claim: a schema and a department that issues under it."""

    schema_id: str
    department: str
    field_count: int

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_id": self.schema_id,
            "department": self.department,
            "field_count": self.field_count,
        }


def claimable(rpc: RpcClient, ledger: str, from_block: int = 0) -> list[Claimable]:
    """What can be claimed: every registered schema with each active department issuing it.

    Read from the ledger's ``SchemaRegistered`` / ``SchemaIssuerSet`` logs and checked with
    ``isSchemaIssuer`` and ``hasRoles(ISSUER)`` at the head, on the caller's own chain.
    """
    from ledger.abi import ledger_abi
    from ledger.calls import LedgerCalls
    from ledger.models import Role

    abi = ledger_abi()
    address = to_checksum_address(ledger)
    registered = abi.events_by_name["SchemaRegistered"]
    issuer_set = abi.events_by_name["SchemaIssuerSet"]
    topics = [["0x" + registered.topic0.hex(), "0x" + issuer_set.topic0.hex()]]
    pairs: dict[tuple[str, str], int] = {}
    counts: dict[str, int] = {}
    for e in _logs(rpc, address, topics, from_block, abi):
        schema = "0x" + bytes(e.args["schemaId"]).hex()
        if e.name == "SchemaRegistered":
            counts[schema] = int(e.args["fieldCount"])
            pairs[(schema, to_checksum_address(e.args["issuer"]))] = 1
        else:
            pairs[(schema, to_checksum_address(e.args["issuer"]))] = 1
    calls = LedgerCalls(abi)
    reads = []
    for schema, department in pairs:
        reads.append(calls.is_schema_issuer(bytes.fromhex(schema[2:]), department))
        reads.append(calls.has_roles(department, int(Role.ISSUER)))
    batch = [("eth_call", [{"to": address, "data": "0x" + r.data.hex()}, "latest"]) for r in reads]
    replies = rpc.batch(batch) if batch else []
    out = []
    for i, (schema, department) in enumerate(pairs):
        ok = []
        for read, reply in zip(reads[2 * i : 2 * i + 2], replies[2 * i : 2 * i + 2], strict=True):
            if isinstance(reply, Exception):
                raise reply
            ok.append(bool(read.decode(bytes.fromhex(str(reply).removeprefix("0x")))))
        if all(ok):
            out.append(Claimable(schema, department, counts.get(schema, 0)))
    return sorted(out, key=lambda c: (c.schema_id, c.department))


_COMPARED = ("subject", "department", "schema_id", "status", "asset_id", "reason_code")


def derive_claims(rpc: RpcClient, ledger: str, from_block: int = 0) -> dict[str, dict[str, Any]]:
    """Every claim as the companion's logs tell it (``audit``): claim id -> the compared fields.

    Re-derived from ``ClaimFiled`` / ``ClaimFulfilled`` / ``ClaimRefused`` with the reader's
    own node, never from an index.
    """
    abi = claims_abi()
    names = ("ClaimFiled", "ClaimFulfilled", "ClaimRefused")
    topics = [["0x" + abi.events_by_name[n].topic0.hex() for n in names]]
    out: dict[str, dict[str, Any]] = {}
    for e in _logs(rpc, claims_address(ledger), topics, from_block, abi):
        claim_id = "0x" + bytes(e.args["claimId"]).hex()
        if e.name == "ClaimFiled":
            out[claim_id] = {
                "subject": to_checksum_address(e.args["subject"]),
                "department": to_checksum_address(e.args["department"]),
                "schema_id": "0x" + bytes(e.args["schemaId"]).hex(),
                "status": "open",
                "asset_id": None,
                "reason_code": None,
            }
        elif claim_id in out and e.name == "ClaimFulfilled":
            out[claim_id] |= {
                "status": "fulfilled",
                "asset_id": "0x" + bytes(e.args["assetId"]).hex(),
            }
        elif claim_id in out:
            out[claim_id] |= {"status": "refused", "reason_code": int(e.args["reasonCode"])}
    return out


def diff_claims(
    truth: Mapping[str, Mapping[str, Any]], rows: Iterable[Mapping[str, Any]]
) -> list[str]:
    """One line per difference between the chain's claims and an answer's (all of them)."""
    given = {str(r.get("claim_id", "")).lower(): r for r in rows}
    out = [f"missing: {cid}" for cid in sorted(truth.keys() - given.keys())]
    out += [f"extra: {cid}" for cid in sorted(given.keys() - truth.keys())]
    for cid in sorted(truth.keys() & given.keys()):
        for name in _COMPARED:
            have, said = truth[cid][name], given[cid].get(name)
            if str(have).lower() != str(said).lower():
                out.append(f"altered: {cid} {name} (chain {have!r}, answer {said!r})")
    return out


def verify_claims(rpc: RpcClient, ledger: str, rows: Iterable[Mapping[str, Any]]) -> list[Claim]:
    """Hold a service's claim rows against the chain: each must be the claim the chain stores.

    Raises :class:`ServiceContradictedError` naming the first field that differs (a claim
    the chain does not have, another department, another status, another asset ...).
    """
    given = list(rows)
    try:
        ids = [_b32(str(r["claim_id"]), "claim id") for r in given]
    except (KeyError, ClaimsError) as exc:
        raise ServiceContradictedError(f"the service sent an unreadable claim: {exc}") from exc
    truth = read_claims(rpc, ledger, ids)
    for row, claim in zip(given, truth, strict=True):
        if claim.status == ClaimStatus.NONE:
            raise ServiceContradictedError(
                f"the service lists claim {row['claim_id']}, which the chain does not have"
            )
        chain = claim.to_json()
        for name in _COMPARED:
            have, said = chain[name], row.get(name)
            if str(have).lower() != str(said).lower():
                raise ServiceContradictedError(
                    f"claim {row['claim_id']}: the service says {name} {said!r}, the chain {have!r}"
                )
    return truth


__all__ = [
    "CONTRACT",
    "REASON_CODES",
    "Claim",
    "ClaimRequest",
    "ClaimStatus",
    "Claimable",
    "ClaimsError",
    "claimable",
    "claims_abi",
    "claims_address",
    "derive_claims",
    "diff_claims",
    "file_claim",
    "filed_claim_ids",
    "fulfil_claim",
    "read_claim",
    "read_claims",
    "read_nonce",
    "reference_hash",
    "refuse_claim",
    "request_digest",
    "request_signer",
    "sign_request",
    "typed_data",
]
