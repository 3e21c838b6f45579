"""Compile the Solidity sources with py-solc-x through the project's solc wrapper.

Settings mirror ``foundry.toml`` (via-IR, optimizer 200 runs, cancun, no CBOR metadata)
so the bytecode is byte-for-byte forge's. The wasm compiler is slow, so the
artifacts record a hash of the sources and settings and are only rebuilt when it
changes (:func:`ensure_artifacts`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.artifacts import (
    ARTIFACTS_DIR,
    COMPANION_CONTRACTS,
    FORWARDER_CONTRACT,
    LEDGER_CONTRACT,
    Artifact,
    artifact_path,
    read_artifact,
)
from ledger.errors import ArtifactDriftError, ArtifactError, CompilationError

#: Contracts whose artifacts are generated (the deployable ones).
DEPLOYED_CONTRACTS: tuple[str, ...] = (LEDGER_CONTRACT, FORWARDER_CONTRACT, *COMPANION_CONTRACTS)

COMPILER_SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 200},
    "viaIR": True,
    "evmVersion": "cancun",
    "metadata": {"bytecodeHash": "none", "appendCBOR": False},
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


def repo_root() -> Path:
    """The source tree root: ``DATASAFE_ROOT``, else the nearest parent with foundry.toml."""
    env = os.environ.get("DATASAFE_ROOT")
    if env:
        return Path(env).resolve()
    for candidate in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for parent in (candidate, *candidate.parents):
            if (parent / "foundry.toml").is_file() and (parent / "contracts").is_dir():
                return parent
    raise ArtifactError("cannot find the repository root (no foundry.toml); set DATASAFE_ROOT")


@dataclass(frozen=True)
class Sources:
    root: Path
    files: dict[str, str]

    @property
    def source_hash(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps(COMPILER_SETTINGS, sort_keys=True).encode())
        for path in sorted(self.files):
            h.update(b"\0" + path.encode() + b"\0" + self.files[path].encode())
        return "sha256:" + h.hexdigest()


def read_sources(root: Path | None = None) -> Sources:
    root = root or repo_root()
    src = root / "contracts" / "src"
    files = {p.relative_to(root).as_posix(): p.read_text() for p in sorted(src.rglob("*.sol"))}
    if not files:
        raise ArtifactError(f"no Solidity sources under {src}")
    return Sources(root, files)


def solc_binary(root: Path) -> Path:
    wrapper = root / "scripts" / "solc.cjs"
    if not wrapper.is_file():
        raise CompilationError(f"solc wrapper {wrapper} missing")
    return wrapper


def compile_sources(sources: Sources) -> dict[str, Artifact]:
    """Compile ``sources`` and return the artifacts of :data:`DEPLOYED_CONTRACTS`."""
    import solcx
    from solcx.exceptions import SolcError
    from solcx.wrapper import get_solc_version

    binary = solc_binary(sources.root)
    standard_input = {
        "language": "Solidity",
        "sources": {path: {"content": text} for path, text in sources.files.items()},
        "settings": COMPILER_SETTINGS,
    }
    try:
        version = str(get_solc_version(binary, with_commit_hash=True))
        output = solcx.compile_standard(standard_input, solc_binary=binary)
    except (SolcError, OSError) as exc:
        raise CompilationError(f"solc failed: {exc}") from exc
    problems = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if problems:
        raise CompilationError(
            "\n".join(e.get("formattedMessage", e.get("message", "?")) for e in problems)
        )
    artifacts: dict[str, Artifact] = {}
    for name in DEPLOYED_CONTRACTS:
        found = [c[name] for c in output["contracts"].values() if name in c]
        if len(found) != 1:
            raise CompilationError(f"expected one contract {name}, compiler produced {len(found)}")
        entry = found[0]
        artifacts[name] = Artifact(
            contract_name=name,
            abi=entry["abi"],
            bytecode=bytes.fromhex(entry["evm"]["bytecode"]["object"]),
            deployed_bytecode=bytes.fromhex(entry["evm"]["deployedBytecode"]["object"]),
            compiler=version,
            source_hash=sources.source_hash,
        )
    return artifacts


def write_artifact(artifact: Artifact, directory: Path = ARTIFACTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = artifact_path(artifact.contract_name, directory)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(artifact.to_json(), indent=1, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def _current(sources: Sources, directory: Path) -> bool:
    for name in DEPLOYED_CONTRACTS:
        try:
            if read_artifact(artifact_path(name, directory)).source_hash != sources.source_hash:
                return False
        except ArtifactError:
            return False
    return True


def ensure_artifacts(
    root: Path | None = None, directory: Path = ARTIFACTS_DIR, *, force: bool = False
) -> tuple[bool, list[Path]]:
    """Compile and write artifacts unless they already match the sources' hash.

    Returns ``(compiled, paths)``; a second call with unchanged sources compiles nothing.
    """
    sources = read_sources(root)
    paths = [artifact_path(n, directory) for n in DEPLOYED_CONTRACTS]
    if not force and _current(sources, directory):
        return False, paths
    artifacts = compile_sources(sources)
    return True, [write_artifact(a, directory) for a in artifacts.values()]


def check_artifacts(
    root: Path | None = None, directory: Path = ARTIFACTS_DIR, *, recompile: bool = True
) -> None:
    """Raise :class:`ArtifactDriftError` if committed artifacts differ from the sources."""
    sources = read_sources(root)
    stale = []
    committed: dict[str, Artifact] = {}
    for name in DEPLOYED_CONTRACTS:
        path = artifact_path(name, directory)
        try:
            committed[name] = read_artifact(path)
        except ArtifactError as exc:
            raise ArtifactDriftError(str(exc)) from exc
        if committed[name].source_hash != sources.source_hash:
            stale.append(name)
    if stale:
        raise ArtifactDriftError(
            f"artifacts {', '.join(stale)} were built from other sources than contracts/src "
            f"(now {sources.source_hash}); run scripts/gen_artifacts.py and commit the result"
        )
    if not recompile:
        return
    for name, fresh in compile_sources(sources).items():
        old = committed[name]
        if (old.abi, old.bytecode, old.deployed_bytecode) != (
            fresh.abi,
            fresh.bytecode,
            fresh.deployed_bytecode,
        ):
            raise ArtifactDriftError(
                f"artifact {name} does not equal the compiler output for the same sources "
                "(edited by hand?); run scripts/gen_artifacts.py --force"
            )
