"""Event topics and decoders derived from the ledger ABI (never hand-written).

Decoding uses eth-abi directly on the raw ``data`` and a fast path for the
static indexed topics, because web3's per-log processing is an order of
magnitude slower and the indexer decodes tens of thousands of logs per second.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi.abi import decode as abi_decode

from ledger.abi import canonical_type, signature_hash
from ledger.indexer.errors import AbiNotFoundError

ARTIFACT_NAME = "DataSafeLedger"


@dataclass(frozen=True)
class EventSpec:
    """One event of the ABI: its topic and how to turn a log into named, normalised args."""

    name: str
    signature: str
    topic0: str
    indexed: tuple[tuple[str, str], ...]
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]
    data_components: tuple[Any, ...]

    def decode(self, topics: Sequence[str], data: str) -> dict[str, Any]:
        """Named args; addresses lowercase hex, bytes 0x-hex, integers int. Raises ValueError."""
        if len(topics) != len(self.indexed) + 1:
            raise ValueError(f"expected {len(self.indexed) + 1} topics, got {len(topics)}")
        args: dict[str, Any] = {}
        for (name, abi_type), topic in zip(self.indexed, topics[1:], strict=True):
            args[name] = _decode_topic(abi_type, topic)
        if self.data_types:
            raw = bytes.fromhex(data[2:] if data.startswith("0x") else data)
            try:
                values = abi_decode(self.data_types, raw)
            except Exception as exc:  # eth-abi raises a family of unrelated exceptions
                raise ValueError(f"data does not decode as {self.data_types}: {exc}") from exc
            for name, abi_type, components, value in zip(
                self.data_names, self.data_types, self.data_components, values, strict=True
            ):
                args[name] = _normalise(abi_type, components, value)
        return args


def _decode_topic(abi_type: str, topic: str) -> Any:
    if len(topic) != 66:
        raise ValueError(f"malformed topic {topic!r}")
    hex_part = topic[2:].lower()
    if abi_type == "address":
        if hex_part[:24] != "0" * 24:
            raise ValueError(f"topic {topic} is not an address")
        return "0x" + hex_part[24:]
    if abi_type.startswith("uint"):
        return int(hex_part, 16)
    if abi_type == "bool":
        return int(hex_part, 16) != 0
    if abi_type.startswith("int"):
        return abi_decode([abi_type], bytes.fromhex(hex_part))[0]
    # bytes32 and every dynamic type (whose topic is a keccak hash) stay 0x-hex.
    return "0x" + hex_part


def _normalise(abi_type: str, components: Any, value: Any) -> Any:
    if abi_type.endswith("]"):
        inner = abi_type[: abi_type.rindex("[")]
        return [_normalise(inner, components, v) for v in value]
    if abi_type.startswith("("):
        return {
            c["name"]: _normalise(canonical_type(c), c.get("components"), v)
            for c, v in zip(components, value, strict=True)
        }
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if abi_type == "address":
        return str(value).lower()
    return value


def event_specs(abi: Sequence[Mapping[str, Any]]) -> dict[str, EventSpec]:
    """Event specs of an ABI, keyed by topic0 (0x-hex lowercase)."""
    specs: dict[str, EventSpec] = {}
    for item in abi:
        if item.get("type") != "event" or item.get("anonymous"):
            continue
        inputs = item.get("inputs", [])
        topic0 = "0x" + signature_hash(item).hex()
        types = [canonical_type(i) for i in inputs]
        signature = f"{item['name']}({','.join(types)})"
        data = [(i, t) for i, t in zip(inputs, types, strict=True) if not i.get("indexed")]
        specs[topic0] = EventSpec(
            name=item["name"],
            signature=signature,
            topic0=topic0,
            indexed=tuple(
                (i["name"], t) for i, t in zip(inputs, types, strict=True) if i.get("indexed")
            ),
            data_names=tuple(i["name"] for i, _ in data),
            data_types=tuple(t for _, t in data),
            data_components=tuple(i.get("components") for i, _ in data),
        )
    return specs


def default_artifact_paths() -> list[Path]:
    root = Path(__file__).resolve().parents[2]
    return [
        Path(__file__).resolve().parents[1] / "artifacts" / f"{ARTIFACT_NAME}.json",
        root / "out" / f"{ARTIFACT_NAME}.sol" / f"{ARTIFACT_NAME}.json",
    ]


def companion_abis() -> list[dict[str, Any]]:
    """The events of the ledger's companions (their logs are indexed with the ledger's)."""
    from ledger.artifacts import load_artifact
    from ledger.companions import COMPANIONS

    return [item for name in COMPANIONS for item in load_artifact(name).abi]


def load_abi(path: Path | None = None) -> list[dict[str, Any]]:
    """The ledger ABI from an artifact (``{"abi": [...]}``) or a bare ABI list."""
    candidates = [path] if path is not None else default_artifact_paths()
    for candidate in candidates:
        if candidate.is_file():
            loaded = json.loads(candidate.read_text())
            abi = loaded["abi"] if isinstance(loaded, dict) else loaded
            if not isinstance(abi, list):
                raise AbiNotFoundError(f"{candidate} holds no ABI list")
            return abi
    raise AbiNotFoundError("ledger ABI not found in " + ", ".join(str(c) for c in candidates))
