"""Run Slither on the Foundry project; exit non-zero on any untriaged finding.

    .venv/bin/python scripts/slither.py                 # the ledger (contracts/src)
    .venv/bin/python scripts/slither.py --root DIR      # another Foundry project (tests use it)

Triage lives in two places only: ``slither.config.json`` (detectors excluded project-wide, each
with its reason in docs/contracts.md, "Static analysis") and ``// slither-disable-next-line``
comments that say why. Whatever Slither still reports is a finding: it is printed and the exit
status is 1. Slither failing to run at all (compilation, missing tool) is exit 2, never 0.

Slither needs web3<8 and the project web3>=8, so it lives in its own virtual environment,
``.venv-slither`` (``scripts/slither-requirements.txt``), created on first use with pip. The
contracts are compiled here with the platform forge binary (the npm wrapper swallows failures)
into a temporary directory with build info, so the working tree's out/ and cache/ are left alone
(Slither's own Foundry step would run ``forge clean``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
_OS = {"linux": "linux", "darwin": "darwin"}.get(sys.platform, sys.platform)
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
    platform.machine().lower(), platform.machine().lower()
)
# The platform binary, as scripts/foundry.sh finds it: the npm wrapper swallows forge's status.
FORGE = REPO / "node_modules" / "@foundry-rs" / f"forge-{_OS}-{_ARCH}" / "bin" / "forge"
SLITHER_VENV = REPO / ".venv-slither"
REQUIREMENTS = REPO / "scripts" / "slither-requirements.txt"
CONFIG = REPO / "slither.config.json"

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class SlitherRunError(Exception):
    """Slither could not be installed or run, or the contracts did not compile."""


def slither_executable(install: bool) -> Path:
    """``$SLITHER``, else ``.venv-slither/bin/slither`` (created with pip when ``install``)."""
    if os.environ.get("SLITHER"):
        return Path(os.environ["SLITHER"])
    exe = SLITHER_VENV / "bin" / "slither"
    if exe.exists():
        return exe
    if not install:
        raise SlitherRunError(f"{exe} is missing (run without --no-install to create it)")
    print(f"creating {SLITHER_VENV} from {REQUIREMENTS.name}", file=sys.stderr)
    venv.EnvBuilder(with_pip=True, clear=True).create(SLITHER_VENV)
    pip = [str(SLITHER_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    done = subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=False)
    if done.returncode != 0 or not exe.exists():
        raise SlitherRunError(f"pip could not install {REQUIREMENTS}")
    return exe


def build(root: Path, work: Path) -> Path:
    """Compile ``root``'s sources (not tests or scripts) with build info into ``work``."""
    if not FORGE.exists():
        raise SlitherRunError(f"{FORGE} is missing (run `make bootstrap`)")
    out = work / "out"
    cmd = [
        str(FORGE),
        "build",
        "--root",
        str(root),
        "--build-info",
        "--out",
        str(out),
        "--cache-path",
        str(work / "cache"),
        "--skip",
        "*/test/**",
        "*/script/**",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SlitherRunError(f"forge build failed:\n{done.stdout}\n{done.stderr}")
    return out


def run_slither(exe: Path, root: Path, out: Path, config: Path, work: Path) -> list[dict[str, Any]]:
    """Slither's detector results (after the config's and inline triage)."""
    report = work / "slither.json"
    cmd = [
        str(exe),
        str(root),
        "--compile-force-framework",
        "foundry",
        "--foundry-ignore-compile",
        "--foundry-out-directory",
        str(out),
        "--config-file",
        str(config),
        "--json",
        str(report),
        "--fail-none",
    ]
    env = dict(os.environ, PATH=f"{FORGE.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=root, env=env)
    if not report.exists():
        raise SlitherRunError(f"slither wrote no report:\n{done.stdout}\n{done.stderr}")
    data = json.loads(report.read_text())
    if not data.get("success"):
        raise SlitherRunError(f"slither failed: {data.get('error')}\n{done.stderr}")
    detectors: list[dict[str, Any]] = data.get("results", {}).get("detectors", [])
    return detectors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO, help="Foundry project root")
    parser.add_argument("--config", type=Path, default=CONFIG, help="slither config file")
    parser.add_argument(
        "--no-install", action="store_true", help="fail instead of creating .venv-slither"
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        exe = slither_executable(install=not args.no_install)
        with tempfile.TemporaryDirectory(prefix="slither-") as tmp:
            work = Path(tmp)
            findings = run_slither(exe, root, build(root, work), args.config.resolve(), work)
    except SlitherRunError as exc:
        print(f"slither: {exc}", file=sys.stderr)
        return EXIT_ERROR
    for item in findings:
        print(f"[{item.get('impact')}] {item.get('check')}: {str(item.get('description')).strip()}")
    if findings:
        print(
            f"slither: {len(findings)} untriaged finding(s): fix them, or triage each one "
            "(docs/contracts.md, 'Static analysis')",
            file=sys.stderr,
        )
        return EXIT_FINDINGS
    print("slither: no untriaged findings", file=sys.stderr)
    return EXIT_CLEAN


if __name__ == "__main__":
    sys.exit(main())
