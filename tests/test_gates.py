"""Every gate of the test command can fail.

``make test`` runs lint, types, import contracts, forge tests, the gas snapshot check and
pytest. A gate whose exit status is swallowed (the npm ``forge`` wrapper exits 0 when forge
fails) would let anything land, so each gate is run here through its real Makefile target,
pointed at a small broken tree, and must fail -- and at a clean one, and must pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = "contracts/test/unit/Probe.t.sol"


def make(target: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """``make -s TARGET VAR=value...`` in the repository, as the test command runs it."""
    args = ["make", "-s", "-C", str(ROOT), target, *(f"{k}={v}" for k, v in variables.items())]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)


def test_make_test_runs_every_gate() -> None:
    """The README's test command reaches each gate (nothing dropped from the recipe)."""
    plan = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "test"], capture_output=True, text=True, check=True
    ).stdout
    for gate in (
        "ruff check",
        "ruff format --check",
        "mypy",
        "lint-imports",
        "scripts/foundry.sh forge test",
        "scripts/foundry.sh forge snapshot --check",
        "scripts/slither.py",
        "gen_artifacts.py --check",
        "-m pytest",
    ):
        assert gate in plan, f"`make test` no longer runs {gate!r}"
    assert "node_modules/.bin/forge" not in plan


# ---- forge -------------------------------------------------------------------------------------


def _forge_project(root: Path, body: str) -> Path:
    (root / "contracts/src").mkdir(parents=True, exist_ok=True)
    (root / "contracts/test/unit").mkdir(parents=True, exist_ok=True)
    (root / "foundry.toml").write_text(
        textwrap.dedent(
            f"""\
            [profile.default]
            src = "contracts/src"
            test = "contracts/test"
            out = "out"
            cache_path = "cache"
            solc = "{ROOT / "scripts" / "solc.cjs"}"
            offline = true
            auto_detect_solc = false
            """
        )
    )
    (root / PROBE).write_text(
        "// SPDX-License-Identifier: Apache-2.0\npragma solidity ^0.8.20;\n\n"
        f"contract ProbeTest {{\n{body}\n}}\n"
    )
    return root


PASSING = """
    uint256 private _x;

    function test_Stores() public {
        _x = 7;
        require(_x == 7);
    }
"""


@pytest.fixture(scope="module")
def forge_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A passing one-test project with its correct gas snapshot."""
    root = _forge_project(tmp_path_factory.mktemp("forge"), PASSING)
    snap = subprocess.run(
        [str(ROOT / "scripts/foundry.sh"), "forge", "snapshot"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert snap.returncode == 0, snap.stdout + snap.stderr
    assert "ProbeTest:test_Stores()" in (root / ".gas-snapshot").read_text()
    return root


def test_forge_gate_passes_on_a_clean_project(forge_project: Path) -> None:
    result = make("test-contracts", FORGE_ROOT=str(forge_project))
    assert result.returncode == 0, result.stdout + result.stderr


def test_forge_gate_fails_on_a_failing_solidity_test(tmp_path: Path) -> None:
    failing = PASSING.replace("require(_x == 7)", "require(_x == 8)")
    root = _forge_project(tmp_path, failing)
    result = make("test-contracts", FORGE_ROOT=str(root))
    assert result.returncode != 0
    assert "[FAIL" in result.stdout + result.stderr


def test_forge_gate_fails_on_a_drifted_gas_snapshot(forge_project: Path, tmp_path: Path) -> None:
    root = _forge_project(tmp_path, PASSING)
    good = (forge_project / ".gas-snapshot").read_text()
    gas = good.split("(gas: ")[1].split(")")[0]
    (root / ".gas-snapshot").write_text(good.replace(f"(gas: {gas})", f"(gas: {int(gas) - 1})"))
    result = make("test-contracts", FORGE_ROOT=str(root))
    assert result.returncode != 0
    assert "ProbeTest" in result.stdout + result.stderr


# ---- python gates ------------------------------------------------------------------------------


def _module(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "probe_module.py"
    path.write_text(textwrap.dedent(source))
    return path


CLEAN = '''\
"""A clean module."""


def double(x: int) -> int:
    return x * 2
'''


@pytest.mark.parametrize("target", ["lint-ruff", "lint-format", "typecheck"])
def test_python_gate_passes_on_clean_code(target: str, tmp_path: Path) -> None:
    path = _module(tmp_path, CLEAN)
    variable = "MYPY_ARGS" if target == "typecheck" else "PY_PATHS"
    result = make(target, **{variable: str(path)})
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("target", "source"),
    [
        ("lint-ruff", "import os\n\n\ndef f() -> None:\n    return None\n"),
        ("lint-format", "def f( x :int)->int :\n  return x\n"),
        ("typecheck", "def f(x):\n    return x\n\n\ny: int = 'not an int'\n"),
    ],
)
def test_python_gate_fails(target: str, source: str, tmp_path: Path) -> None:
    path = _module(tmp_path, source)
    variable = "MYPY_ARGS" if target == "typecheck" else "PY_PATHS"
    result = make(target, **{variable: str(path)})
    assert result.returncode != 0, f"{target} passed on broken code"


def test_import_contracts_pass_on_the_tree() -> None:
    result = make("imports")
    assert result.returncode == 0, result.stdout + result.stderr


def _lint_imports_with(
    tmp_path: Path, module: str, source: str
) -> subprocess.CompletedProcess[str]:
    """lint-imports on a copy of the tree with one more module ``ledger/<module>.py``."""
    for package in ("ledger", "vault", "api", "wallet_cli", "node"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "ledger" / f"{module}.py").write_text(source)
    # lint-imports puts its working directory first on the import path: it reads the copy.
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "lint-imports"), "--no-cache"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_import_contracts_fail_on_an_upward_import(tmp_path: Path) -> None:
    """A copy of the tree with one upward import, inside a function (``ledger`` reaching the
    composition root ``node``), fails the contracts: imports inside functions count."""
    result = _lint_imports_with(
        tmp_path, "_upward", "def reach_up() -> None:\n    from node import cli  # noqa: F401\n"
    )
    assert result.returncode != 0, result.stdout
    assert "ledger is not allowed to import node:" in result.stdout
    assert "ledger._upward -> node.cli" in result.stdout
    assert " broken" in result.stdout


def test_import_contracts_fail_on_web3_at_runtime(tmp_path: Path) -> None:
    """The runtime talks JSON-RPC through ledger's transport: a web3 import (even a lazy
    one) in a product package fails the contracts."""
    result = _lint_imports_with(
        tmp_path, "_w3", "def provider() -> None:\n    import web3  # noqa: F401\n"
    )
    assert result.returncode != 0, result.stdout
    assert "ledger is not allowed to import web3:" in result.stdout
    assert "ledger._w3 -> web3" in result.stdout


def test_sdk_imports_without_server_frameworks() -> None:
    """The bank's SDK (api.client, api.bank) imports with FastAPI, uvicorn and SQLAlchemy absent."""
    probe = textwrap.dedent(
        """
        import sys
        from importlib.abc import MetaPathFinder

        BLOCKED = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg")

        class Block(MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, Block())
        import api.client
        import api.bank
        assert hasattr(api.client, "DataSafeClient") and hasattr(api.bank, "pull_verified")
        assert not any(m.split(".")[0] in BLOCKED for m in sys.modules)
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
