"""One settings base: every part (ledger, node, indexer, api, wallet) agrees where things are.

Each part's settings class derives from ``ledger.settings.BaseDataSafeSettings`` and keeps
its own prefix; these tests set the environment as an operator would and read each part's
view of it, the node's included (it asks the service where its database and blobs are).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from api import settings as api_settings
from api.ops import child_env
from api.settings import ApiSettings
from ledger import settings as ledger_settings
from ledger.errors import LedgerError, SettingsError
from ledger.indexer import settings as indexer_settings
from ledger.indexer.settings import IndexerSettings
from ledger.settings import BaseDataSafeSettings, LedgerSettings
from node.datadir import blob_dir_for, database_url_for, settings_for
from wallet_cli import settings as wallet_settings
from wallet_cli.settings import WalletSettings

REPO = Path(__file__).resolve().parents[1]
PARTS: tuple[type[BaseDataSafeSettings], ...] = (
    LedgerSettings,
    IndexerSettings,
    ApiSettings,
    WalletSettings,
)
CACHED = (ledger_settings, indexer_settings, api_settings, wallet_settings)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No DATASAFE_* variable of the runner's shell leaks in; no cached settings either."""
    for name in list(os.environ):
        if name.startswith("DATASAFE_"):
            monkeypatch.delenv(name)
    for module in CACHED:
        module.get_settings.cache_clear()
    yield
    for module in CACHED:
        module.get_settings.cache_clear()


def node_view() -> tuple[Path, str, Path, Path]:
    """(data dir, database, blob dir, manifest) as ``datasafe-node`` resolves them."""
    s = settings_for(None)
    return s.data_dir, database_url_for(s.data_dir, None), blob_dir_for(s.data_dir), s.manifest_path


def views() -> dict[str, tuple[Path, str, Path, Path]]:
    out = {cls.__name__: _view(cls()) for cls in PARTS}
    out["node"] = node_view()
    return out


def _view(s: BaseDataSafeSettings) -> tuple[Path, str, Path, Path]:
    return s.data_dir, s.database_url, s.blob_dir, s.manifest_path


def test_defaults_agree_on_one_data_dir() -> None:
    data_dir = Path(".datasafe")
    expected = (
        data_dir,
        f"sqlite:///{(data_dir / 'datasafe.db').resolve()}",
        data_dir / "blobs",
        data_dir / "deployment.json",
    )
    assert set(views().values()) == {expected}


def test_data_dir_moves_everything_for_every_part(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATASAFE_DATA_DIR", str(tmp_path))
    expected = (
        tmp_path,
        f"sqlite:///{tmp_path / 'datasafe.db'}",
        tmp_path / "blobs",
        tmp_path / "deployment.json",
    )
    assert views() == dict.fromkeys(views(), expected)


def test_shared_variables_set_every_part(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATASAFE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATASAFE_DATABASE_URL", "postgresql+psycopg://db.example/datasafe")
    monkeypatch.setenv("DATASAFE_BLOB_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("DATASAFE_MANIFEST_PATH", str(tmp_path / "m.json"))
    monkeypatch.setenv("DATASAFE_RPC_URL", "http://chain.example:8545")
    expected = (
        tmp_path / "data",
        "postgresql+psycopg://db.example/datasafe",
        tmp_path / "elsewhere",
        tmp_path / "m.json",
    )
    assert set(views().values()) == {expected}
    assert {cls().rpc_url for cls in PARTS} == {"http://chain.example:8545"}


def test_node_gives_its_api_child_what_it_resolved(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The child gets the node's places explicitly, whatever else its environment says."""
    monkeypatch.setenv("DATASAFE_DATA_DIR", str(tmp_path))
    _, database_url, blob_dir, manifest = node_view()
    env = child_env(database_url=database_url, blob_dir=blob_dir, manifest_path=manifest)
    monkeypatch.setenv("DATASAFE_DATA_DIR", str(tmp_path / "not-this-one"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _view(ApiSettings())[1:] == (database_url, blob_dir, manifest)


def test_a_package_variable_wins_and_stays_in_its_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATASAFE_DATA_DIR", str(tmp_path / "shared"))
    monkeypatch.setenv("DATASAFE_API_DATABASE_URL", "sqlite:///api-only.db")
    monkeypatch.setenv("DATASAFE_INDEXER_DATA_DIR", str(tmp_path / "indexer-only"))
    monkeypatch.setenv("DATASAFE_LEDGER_RPC_URL", "http://ledger-only:8545")
    shared_db = f"sqlite:///{tmp_path / 'shared' / 'datasafe.db'}"

    assert ApiSettings().database_url == "sqlite:///api-only.db"
    assert LedgerSettings().database_url == shared_db
    assert WalletSettings().database_url == shared_db
    # The node runs the service: it takes the service's database.
    assert node_view()[1] == "sqlite:///api-only.db"

    indexer = IndexerSettings()
    assert indexer.data_dir == tmp_path / "indexer-only"
    assert indexer.database_url == f"sqlite:///{tmp_path / 'indexer-only' / 'datasafe.db'}"
    assert {ApiSettings().data_dir, LedgerSettings().data_dir} == {tmp_path / "shared"}

    assert LedgerSettings().rpc_url == "http://ledger-only:8545"
    assert ApiSettings().rpc_url == IndexerSettings().rpc_url == "http://127.0.0.1:8545"
    assert WalletSettings().rpc_url == ""  # the wallet has no default chain


def test_prefixes_do_not_cross(monkeypatch: pytest.MonkeyPatch) -> None:
    """A variable of one prefix sets nothing in another package (``DATASAFE_`` is shared)."""
    monkeypatch.setenv("DATASAFE_API_CONFIRMATIONS", "7")
    monkeypatch.setenv("DATASAFE_INDEXER_POLL_INTERVAL", "9")
    assert ApiSettings().confirmations == 7
    assert LedgerSettings().confirmations == 0
    assert IndexerSettings().confirmations == 0
    assert IndexerSettings().poll_interval == 9
    assert LedgerSettings().poll_interval == 0.05
    # The wallet's own prefix is the shared one; a package's variable is not the wallet's.
    monkeypatch.setenv("DATASAFE_API_RPC_URL", "http://api-only:8545")
    assert ApiSettings().rpc_url == "http://api-only:8545"
    assert WalletSettings().rpc_url == ""
    assert LedgerSettings().rpc_url == IndexerSettings().rpc_url == "http://127.0.0.1:8545"


def test_renamed_variables_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASAFE_INDEXER_DB_URL", "sqlite:///old-name.db")
    monkeypatch.setenv("DATASAFE_RPC", "http://old-name:8545")
    assert IndexerSettings().database_url == "sqlite:///old-name.db"
    assert WalletSettings().rpc_url == "http://old-name:8545"
    # The current name wins over the old one; the old one over the shared one.
    monkeypatch.setenv("DATASAFE_DATABASE_URL", "sqlite:///shared.db")
    assert IndexerSettings().database_url == "sqlite:///old-name.db"
    monkeypatch.setenv("DATASAFE_INDEXER_DATABASE_URL", "sqlite:///new-name.db")
    assert IndexerSettings().database_url == "sqlite:///new-name.db"
    monkeypatch.setenv("DATASAFE_RPC_URL", "http://new-name:8545")
    assert WalletSettings().rpc_url == "http://new-name:8545"


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """``DATASAFE_API_DATABASE_URL=`` leaves the shared variable, then the default, to speak."""
    monkeypatch.setenv("DATASAFE_API_DATABASE_URL", "")
    monkeypatch.setenv("DATASAFE_DATABASE_URL", "sqlite:///shared.db")
    assert ApiSettings().database_url == "sqlite:///shared.db"
    monkeypatch.setenv("DATASAFE_RPC_URL", "")
    monkeypatch.setenv("DATASAFE_RPC", "http://old-name:8545")
    assert WalletSettings().rpc_url == "http://old-name:8545"
    monkeypatch.setenv("DATASAFE_API_METRICS_TOKEN", "")
    assert ApiSettings().metrics_token is None  # not an empty bearer token


def test_an_explicit_value_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATASAFE_API_DATA_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("DATASAFE_API_BLOB_DIR", str(tmp_path / "env-blobs"))
    s = ApiSettings(data_dir=tmp_path / "arg")
    assert s.data_dir == tmp_path / "arg"
    assert s.database_url == f"sqlite:///{tmp_path / 'arg' / 'datasafe.db'}"
    assert s.blob_dir == tmp_path / "env-blobs"


def test_a_copy_with_another_data_dir_moves_what_was_not_set(tmp_path: Path) -> None:
    """``datasafe-node --data-dir`` copies the settings: derived places follow, set ones stay."""
    s = LedgerSettings(manifest_path=tmp_path / "pinned.json")
    moved = s.model_copy(update={"data_dir": tmp_path / "other"})
    assert moved.database_url == f"sqlite:///{tmp_path / 'other' / 'datasafe.db'}"
    assert moved.blob_dir == tmp_path / "other" / "blobs"
    assert moved.manifest_path == tmp_path / "pinned.json"
    assert settings_for(tmp_path / "other").manifest_path == tmp_path / "other" / "deployment.json"


@pytest.mark.parametrize(
    ("cls", "name", "value"),
    [
        (ApiSettings, "DATASAFE_API_PORT", "eighty"),
        (LedgerSettings, "DATASAFE_LEDGER_CONFIRMATIONS", "-1"),
        (IndexerSettings, "DATASAFE_INDEXER_ON_UNKNOWN_EVENT", "shrug"),
        (WalletSettings, "DATASAFE_SCRYPT_N", "12"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, cls: type[BaseDataSafeSettings], name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        cls()
    assert name in str(info.value) and repr(value) in str(info.value)
    assert isinstance(info.value, LedgerError) and isinstance(info.value, ValueError)


def test_a_bad_secret_is_named_but_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError) as info:
        ApiSettings(custodian_key=["0xsecret-key-material"])
    assert "DATASAFE_API_CUSTODIAN_KEY" in str(info.value)
    assert "secret-key-material" not in str(info.value)


def test_a_bad_value_stops_the_service_with_one_clear_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATASAFE_")}
    env["DATASAFE_API_MAX_BODY_BYTES"] = "lots"
    proc = subprocess.run(
        [sys.executable, "-m", "api", "migrate", "--sql"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "error: invalid ApiSettings: DATASAFE_API_MAX_BODY_BYTES: 'lots' "
        "Input should be a valid integer, unable to parse string as an integer"
    ]


def test_get_settings_is_cached_per_package() -> None:
    for module in CACHED:
        assert module.get_settings() is module.get_settings()


def test_every_settings_class_derives_from_the_base_and_none_is_built_at_import() -> None:
    """The house rule, read from the source: no ``BaseSettings`` outside the base (vault's
    limits and the webhooks' pacing aside), and no ``Settings()`` at module level."""
    allowed = {"ledger/_settings_base.py", "vault/settings.py", "api/webhooks.py"}
    for package in ("ledger", "vault", "api", "wallet_cli", "node"):
        for path in (REPO / package).rglob("*.py"):
            rel = path.relative_to(REPO).as_posix()
            tree = ast.parse(path.read_text())
            for node in tree.body:
                if isinstance(node, ast.ClassDef) and rel not in allowed:
                    bases = {ast.unparse(b) for b in node.bases}
                    assert "BaseSettings" not in bases, f"{rel}: {node.name} skips the base"
                if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                    calls = [n for n in ast.walk(node.value) if isinstance(n, ast.Call)]
                    names = {ast.unparse(c.func) for c in calls}
                    assert not {n for n in names if n.endswith("Settings")}, rel
