"""Artifacts are generated from the sources, cached by source hash, and checked for drift."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ledger import build
from ledger.artifacts import artifact_path, load_artifact, read_artifact
from ledger.errors import ArtifactDriftError, ArtifactError

ROOT = Path(__file__).resolve().parents[2]


def test_committed_artifact_matches_sources_hash() -> None:
    artifact = load_artifact()
    assert artifact.source_hash == build.read_sources(ROOT).source_hash
    assert artifact.compiler.startswith("0.8.")
    assert artifact.bytecode and artifact.deployed_bytecode


def test_compile_is_cached_and_equals_forge(tmp_path: Path) -> None:
    compiled, paths = build.ensure_artifacts(ROOT, tmp_path)
    assert compiled
    fresh = read_artifact(paths[0])
    assert fresh.bytecode == load_artifact().bytecode
    # Second start: same sources, nothing compiled.
    compiled_again, _ = build.ensure_artifacts(ROOT, tmp_path)
    assert not compiled_again
    forge = ROOT / "out" / "DataSafeLedger.sol" / "DataSafeLedger.json"
    if forge.is_file():
        forge_bytecode = json.loads(forge.read_text())["bytecode"]["object"]
        if build.read_sources(
            ROOT
        ).source_hash == fresh.source_hash and forge.stat().st_mtime > max(
            (ROOT / p).stat().st_mtime for p in build.read_sources(ROOT).files
        ):
            assert bytes.fromhex(forge_bytecode.removeprefix("0x")) == fresh.bytecode

    # A hand-edited artifact is drift even when its recorded hash is right.
    data = json.loads(paths[0].read_text())
    data["bytecode"] = data["bytecode"][:-2] + ("00" if data["bytecode"][-2:] != "00" else "01")
    paths[0].write_text(json.dumps(data))
    with pytest.raises(ArtifactDriftError, match="edited by hand"):
        build.check_artifacts(ROOT, tmp_path)


def test_source_change_is_drift(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "contracts" / "src", root / "contracts" / "src")
    (root / "foundry.toml").write_text("")
    target = root / "contracts" / "src" / "DataSafeLedger.sol"
    target.write_text(target.read_text() + "\n// changed\n")
    with pytest.raises(ArtifactDriftError, match="gen_artifacts"):
        build.check_artifacts(root, artifact_path().parent, recompile=False)


def test_missing_artifact_is_drift(tmp_path: Path) -> None:
    with pytest.raises(ArtifactDriftError):
        build.check_artifacts(ROOT, tmp_path, recompile=False)
    with pytest.raises(ArtifactError):
        read_artifact(tmp_path / "nope.json")


def test_check_script_exit_codes(tmp_path: Path) -> None:
    ok = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_artifacts.py"), "--check", "--quick"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    root = tmp_path / "repo"
    shutil.copytree(ROOT / "contracts" / "src", root / "contracts" / "src")
    (root / "foundry.toml").write_text("")
    (root / "contracts" / "src" / "Extra.sol").write_text("// SPDX-License-Identifier: MIT\n")
    bad = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_artifacts.py"), "--check", "--quick"],
        capture_output=True,
        text=True,
        check=False,
        env={"DATASAFE_ROOT": str(root), "PATH": "/usr/bin:/bin"},
    )
    assert bad.returncode == 1
    assert "gen_artifacts" in bad.stderr
