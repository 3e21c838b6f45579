"""Start-up: the CLI's import graph, checked in a fresh interpreter (not by timing).

`datasafe --help` imports none of the areas; no command imports web3, eth-account or py_ecc
(eth-account's keystore code pulls py_ecc's pairing code, ~0.5 s, and raises the recursion
limit): the wallet reads and writes V3 keystores itself (``wallet_cli._keystore``). Nor
aiohttp (the service's async transport, ~0.1 s): the wallet's chain reads are blocking.
The whole grant → verified pull path is run too, so a heavy import that only a chain read
or a signature brings in (``ledger.client`` → ``ledger.tx`` → eth-account) shows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _stack import Stack

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("web3", "py_ecc", "eth_account", "eth_keyfile", "aiohttp")

_PROBE = """
import json, sys
from typer.testing import CliRunner
from wallet_cli.main import app
results = []
for item in json.loads(sys.argv[1]):
    args, env = (item, {}) if isinstance(item[0], str) else item
    r = CliRunner().invoke(app, args, env=env, catch_exceptions=False)
    results.append(r.exit_code)
    if r.exit_code:
        print(r.output, file=sys.stderr)
top = sorted({m.split(".")[0] for m in sys.modules})
areas = sorted(m for m in sys.modules if m.startswith(("wallet_cli.", "api.", "ledger.")))
print(json.dumps({"codes": results, "top": top, "areas": areas, "limit": sys.getrecursionlimit()}))
"""


def _probe(tmp_path: Path, *commands: list[Any]) -> dict[str, object]:
    """Run ``commands`` (argv, or [argv, env]) in one fresh interpreter; what it imported."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DATASAFE_HOME": str(tmp_path / "wallet"),
        "DATASAFE_PASSPHRASE": "start-up passphrase",
        "DATASAFE_SCRYPT_N": "1024",
    }
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(list(commands))],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def test_help_imports_no_area_and_nothing_heavy(tmp_path: Path) -> None:
    got = _probe(tmp_path, ["--help"])
    assert got["codes"] == [0]
    top = set(got["top"])  # type: ignore[arg-type]
    assert not top & set(HEAVY), sorted(top & set(HEAVY))
    # Lazy areas: the help screen lists them from their summaries.
    assert not {"api", "ledger", "vault", "pydantic", "httpx"} & top, sorted(top)
    assert "wallet_cli.grant" not in got["areas"]  # type: ignore[operator]


@pytest.mark.parametrize(
    "command",
    [
        ["grant", "create", "--help"],
        ["pull", "--help"],
        ["audit", "--help"],
        ["data", "open", "--help"],
        ["history", "--help"],
        ["account", "register-key", "--help"],
    ],
)
def test_command_paths_import_no_web3_nor_py_ecc(tmp_path: Path, command: list[str]) -> None:
    got = _probe(tmp_path, command)
    assert got["codes"] == [0]
    top = set(got["top"])  # type: ignore[arg-type]
    assert not top & set(HEAVY), sorted(top & set(HEAVY))
    assert got["limit"] == 1000


def test_account_lifecycle_without_eth_account(tmp_path: Path) -> None:
    """Create (writes a keystore), show and list: real commands, still no eth-account."""
    got = _probe(
        tmp_path,
        ["account", "create", "alice"],
        ["--json", "account", "list"],
        ["--api", "http://127.0.0.1:9", "data", "open", "0x" + "11" * 32],
    )
    # `data open` got past the unlock (one derivation, no eth-account) to the network: exit 4.
    assert got["codes"] == [0, 0, 4], got["codes"]
    top = set(got["top"])  # type: ignore[arg-type]
    assert not top & set(HEAVY), sorted(top & set(HEAVY))


def test_py_ecc_imported_later_is_tamed() -> None:
    """`ledger` no longer imports py_ecc; its import hook undoes py_ecc's limit whenever."""
    code = (
        "import sys, ledger\n"
        "assert 'py_ecc' not in sys.modules\n"
        "import eth_account\n"
        "assert 'py_ecc' in sys.modules\n"
        "print(sys.getrecursionlimit())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1000"


def test_grant_and_verified_pull_import_nothing_heavy(stack: Stack, tmp_path: Path) -> None:
    """The real path, against the stack: a grant, then the bank's pull, in one interpreter."""
    asset = stack.issue("start-up")
    grant = ["--json", "grant", "create", "--asset", asset, "--to", "citybank"]
    grant += ["--fields", "name,income", "--purpose", "loan", "--days", "1", "--yes"]
    # The bank pulls a grant of the citizen's made before (its id is not known in advance).
    earlier = stack.citizen.json(*grant[1:])["grant_id"]
    pull = ["--json", "pull", earlier, "--out", str(tmp_path / "pulled")]
    got = _probe(tmp_path, [grant, stack.citizen.env], [pull, stack.bank.env])
    assert got["codes"] == [0, 0], got["codes"]
    top = set(got["top"])  # type: ignore[arg-type]
    assert not top & set(HEAVY), sorted(top & set(HEAVY))
    assert "wallet_cli.institution" in got["areas"]  # type: ignore[operator]
    # the service's own pydantic models (api.models) and the transaction manager stay out
    assert not {"api.models", "ledger.tx"} & set(got["areas"]), got["areas"]  # type: ignore[arg-type]
    assert list((tmp_path / "pulled").iterdir())  # the pull did verify and save


def test_account_commands_need_neither_the_service_client_nor_eth_abi(tmp_path: Path) -> None:
    """Local account commands: no service client, no ABI codec (ledger.errors loads eth-abi
    only to decode a revert), so they start in about half the time of a networked one."""
    got = _probe(
        tmp_path,
        ["account", "create", "alice"],
        ["--json", "account", "list"],
        ["account", "show"],
    )
    assert got["codes"] == [0, 0, 0], got["codes"]
    top = set(got["top"])  # type: ignore[arg-type]
    assert not top & {"api", "eth_abi", "eth_utils", "httpx", *HEAVY}, sorted(top)


#: eth-utils (and eth-abi, which imports it) cost ~0.1 s of a command's start: addresses are
#: checksummed by ledger.address, selectors hashed by ledger.abi, and eth-abi is imported on
#: the first encode or decode, after the first network call. (pydantic stays: typer and the
#: settings import it.)
ABI_CODECS = ("eth_utils", "eth_abi", "eth_keys", "parsimonious")


def test_common_commands_start_without_eth_utils_nor_eth_abi(tmp_path: Path) -> None:
    """Up to their first network call (the service on a closed port: exit 4)."""
    closed = ["--api", "http://127.0.0.1:9"]
    got = _probe(
        tmp_path,
        ["history", "--help"],
        ["account", "create", "alice"],
        [*closed, "contacts", "list"],
        [*closed, "data", "list"],
        [*closed, "history", "list"],
        [*closed, "grant", "list"],
    )
    assert got["codes"] == [0, 0, 0, 4, 4, 4], got["codes"]
    top = set(got["top"])  # type: ignore[arg-type]
    assert not top & {*ABI_CODECS, *HEAVY}, sorted(top & {*ABI_CODECS, *HEAVY})
    assert "httpx" in top  # they did get as far as the network
