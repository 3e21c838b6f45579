"""ABI-driven encoding and decoding with eth-abi (no web3 contract objects on hot paths).

Function selectors, event topics and error selectors all come from the generated
artifact; nothing here is hand-written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eth_hash.auto import keccak

from ledger.artifacts import Artifact, load_artifact
from ledger.eip712 import abi_encode
from ledger.errors import ErrorRegistry, LedgerError
from ledger.models import Event


def abi_decode(types: list[str], data: bytes) -> tuple[Any, ...]:
    """eth-abi's ``decode``, imported on the first call (off the commands' start-up)."""
    from eth_abi.abi import decode

    return tuple(decode(types, data))


def canonical_type(param: Mapping[str, Any]) -> str:
    """``(address,uint256)[]`` for a tuple parameter: the spelling selectors hash."""
    typ = str(param["type"])
    if not typ.startswith("tuple"):
        return typ
    inner = ",".join(canonical_type(c) for c in param.get("components", []))
    return f"({inner}){typ[5:]}"


def signature_hash(item: Mapping[str, Any]) -> bytes:
    """keccak of ``name(type,...)``: its first 4 bytes select a function or an error, all 32
    are an event's topic 0 (what eth-utils computes, without importing it)."""
    types = ",".join(canonical_type(i) for i in item.get("inputs", []))
    return keccak(f"{item['name']}({types})".encode())


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    mutability: str

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.inputs)})"

    @property
    def is_view(self) -> bool:
        return self.mutability in ("view", "pure")

    def encode(self, *args: Any) -> bytes:
        if len(args) != len(self.inputs):
            raise LedgerError(f"{self.signature} takes {len(self.inputs)} args, got {len(args)}")
        try:
            return self.selector + abi_encode(list(self.inputs), list(args))
        except Exception as exc:  # eth-abi's EncodingError family and TypeErrors
            raise LedgerError(f"cannot encode {self.signature}: {exc}") from exc

    def decode_output(self, data: bytes) -> tuple[Any, ...]:
        try:
            return tuple(abi_decode(list(self.outputs), data))
        except Exception as exc:
            raise LedgerError(f"cannot decode output of {self.signature}: {exc}") from exc

    def decode_input(self, data: bytes) -> tuple[Any, ...]:
        if data[:4] != self.selector:
            raise LedgerError(f"calldata is not a {self.name} call")
        try:
            return tuple(abi_decode(list(self.inputs), data[4:]))
        except Exception as exc:  # eth-abi's DecodingError family
            raise LedgerError(f"cannot decode {self.signature} calldata: {exc}") from exc


@dataclass(frozen=True)
class EventSpec:
    name: str
    topic0: bytes
    indexed: tuple[tuple[str, str], ...]
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]

    def decode(self, topics: Sequence[bytes], data: bytes) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for (name, typ), topic in zip(self.indexed, topics[1:], strict=True):
            if typ in ("string", "bytes") or typ.endswith("]") or typ.startswith("("):
                args[name] = topic  # dynamic indexed values are hashed
            else:
                args[name] = abi_decode([typ], topic)[0]
        values = abi_decode(list(self.data_types), data) if self.data_types else ()
        args.update(zip(self.data_names, values, strict=True))
        return args


class LedgerAbi:
    """Functions, events and errors of one contract ABI."""

    def __init__(self, abi: Sequence[Mapping[str, Any]]) -> None:
        self.abi = [dict(i) for i in abi]
        self.functions: dict[str, FunctionSpec] = {}
        self.events: dict[bytes, EventSpec] = {}
        self.events_by_name: dict[str, EventSpec] = {}
        self.constructor_inputs: tuple[str, ...] = ()
        for item in self.abi:
            kind = item.get("type")
            inputs = tuple(canonical_type(i) for i in item.get("inputs", []))
            if kind == "function":
                if item["name"] in self.functions:
                    raise LedgerError(f"overloaded function {item['name']} is not supported")
                self.functions[item["name"]] = FunctionSpec(
                    item["name"],
                    signature_hash(item)[:4],
                    inputs,
                    tuple(canonical_type(o) for o in item.get("outputs", [])),
                    item.get("stateMutability", "nonpayable"),
                )
            elif kind == "event" and not item.get("anonymous"):
                raw = item.get("inputs", [])
                spec = EventSpec(
                    item["name"],
                    signature_hash(item),
                    tuple((i["name"], t) for i, t in zip(raw, inputs, strict=True) if i["indexed"]),
                    tuple(i["name"] for i in raw if not i["indexed"]),
                    tuple(t for i, t in zip(raw, inputs, strict=True) if not i["indexed"]),
                )
                self.events[spec.topic0] = spec
                self.events_by_name[spec.name] = spec
            elif kind == "constructor":
                self.constructor_inputs = inputs
        self.errors = ErrorRegistry(self.abi)

    def fn(self, name: str) -> FunctionSpec:
        try:
            return self.functions[name]
        except KeyError:
            raise LedgerError(f"the ABI has no function {name!r}") from None

    def encode_constructor(self, *args: Any) -> bytes:
        return abi_encode(list(self.constructor_inputs), list(args))

    def decode_log(self, log: Mapping[str, Any]) -> Event | None:
        """Decode a JSON-RPC log object; None for a topic that is not in the ABI."""
        topics = [_b(t) for t in log.get("topics", [])]
        if not topics:
            return None
        spec = self.events.get(topics[0])
        if spec is None:
            return None
        try:
            args = spec.decode(topics, _b(log.get("data", "0x")))
        except Exception as exc:
            raise LedgerError(f"cannot decode {spec.name} log: {exc}") from exc
        return Event(
            name=spec.name,
            args=args,
            address=str(log.get("address", "")),
            block_number=int(log.get("blockNumber", "0x0"), 16),
            block_hash=str(log.get("blockHash", "")),
            tx_hash=str(log.get("transactionHash", "")),
            log_index=int(log.get("logIndex", "0x0"), 16),
        )


def _b(value: str) -> bytes:
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)


@lru_cache(maxsize=4)
def _ledger_abi(name: str) -> LedgerAbi:
    return LedgerAbi(load_artifact(name).abi)


def ledger_abi(artifact: Artifact | None = None) -> LedgerAbi:
    """The (cached) ABI view of the packaged ledger artifact, or of ``artifact``."""
    if artifact is None:
        return _ledger_abi("DataSafeLedger")
    return LedgerAbi(artifact.abi)
