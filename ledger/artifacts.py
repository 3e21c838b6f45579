"""Generated contract artifacts (ABI, bytecode, compiler version, source hash).

The JSON files under ``ledger/artifacts/`` are written by
``scripts/gen_artifacts.py`` (see :mod:`ledger.build`) and never edited by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_hash.auto import keccak

from ledger.errors import ArtifactError

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
LEDGER_CONTRACT = "DataSafeLedger"
FORWARDER_CONTRACT = "DataSafeForwarder"
#: The ledger's companion contracts, in the order its constructor creates them (after the
#: forwarder): see :mod:`ledger.companions`. Append only: the order fixes their addresses.
COMPANION_CONTRACTS: tuple[str, ...] = ("DataSafeClaims", "DataSafeSealed")
SEALED_CONTRACT = "DataSafeSealed"


@dataclass(frozen=True)
class Artifact:
    """One compiled contract."""

    contract_name: str
    abi: list[dict[str, Any]]
    bytecode: bytes
    deployed_bytecode: bytes
    compiler: str
    source_hash: str

    @property
    def deployed_code_hash(self) -> str:
        """keccak256 of the runtime code (what ``eth_getCode`` returns, before immutables)."""
        return "0x" + keccak(self.deployed_bytecode).hex()

    def to_json(self) -> dict[str, Any]:
        return {
            "contractName": self.contract_name,
            "compiler": self.compiler,
            "sourceHash": self.source_hash,
            "abi": self.abi,
            "bytecode": "0x" + self.bytecode.hex(),
            "deployedBytecode": "0x" + self.deployed_bytecode.hex(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Artifact:
        try:
            return cls(
                contract_name=str(data["contractName"]),
                abi=list(data["abi"]),
                bytecode=_hex(data["bytecode"]),
                deployed_bytecode=_hex(data["deployedBytecode"]),
                compiler=str(data["compiler"]),
                source_hash=str(data["sourceHash"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"malformed artifact: {exc}") from exc


def _hex(value: str) -> bytes:
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)


def artifact_path(name: str = LEDGER_CONTRACT, directory: Path | None = None) -> Path:
    return (directory or ARTIFACTS_DIR) / f"{name}.json"


def read_artifact(path: Path) -> Artifact:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"artifact {path} missing; run scripts/gen_artifacts.py") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read artifact {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ArtifactError(f"artifact {path} is not a JSON object")
    return Artifact.from_json(data)


@lru_cache(maxsize=8)
def load_artifact(name: str = LEDGER_CONTRACT) -> Artifact:
    """The packaged artifact of contract ``name`` (cached)."""
    return read_artifact(artifact_path(name))


def load_abi(name: str = LEDGER_CONTRACT) -> list[dict[str, Any]]:
    return load_artifact(name).abi
