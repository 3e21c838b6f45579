"""The settings every part shares, so that every part agrees where things are.

A node's state lives in one data directory: the deployment manifest, the SQL database (the
service's tables and the indexer's) and the ciphertext blobs. Each package's settings class
(``LedgerSettings``, ``IndexerSettings``, ``ApiSettings``, ``WalletSettings``) derives from
:class:`BaseDataSafeSettings` and keeps its own environment prefix; the five shared settings
resolve the same way in all of them:

==============  ========================  ==================================
setting         shared variable           default
==============  ========================  ==================================
data_dir        DATASAFE_DATA_DIR         ``./.datasafe``
rpc_url         DATASAFE_RPC_URL          ``http://127.0.0.1:8545``
database_url    DATASAFE_DATABASE_URL     SQLite file ``<data_dir>/datasafe.db``
manifest_path   DATASAFE_MANIFEST_PATH    ``<data_dir>/deployment.json``
blob_dir        DATASAFE_BLOB_DIR         ``<data_dir>/blobs``
==============  ========================  ==================================

Precedence, highest first: an explicit value (argument, command-line option), the package's
own variable (``DATASAFE_API_DATABASE_URL``), a renamed variable it still accepts
(:attr:`BaseDataSafeSettings.legacy_env`), the shared variable, the default. A bad value is a
:class:`~ledger.errors.SettingsError` naming the variable to fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ledger.errors import SettingsError

SHARED_PREFIX = "DATASAFE_"
DEFAULT_DATA_DIR = Path(".datasafe")
DEFAULT_RPC_URL = "http://127.0.0.1:8545"
#: Names inside the data directory (see README "Data directory").
DB_FILE = "datasafe.db"
BLOB_DIR = "blobs"
MANIFEST_FILE = "deployment.json"
#: The settings whose default follows ``data_dir`` unless they are set themselves.
DERIVED = ("database_url", "manifest_path", "blob_dir")
SHARED = ("data_dir", "rpc_url", *DERIVED)


def default_database_url(data_dir: Path) -> str:
    """The SQLite file in the data directory (absolute: a child process may start elsewhere)."""
    return f"sqlite:///{(data_dir / DB_FILE).resolve()}"


def _derived(name: str, data_dir: Path) -> Any:
    if name == "database_url":
        return default_database_url(data_dir)
    return data_dir / (MANIFEST_FILE if name == "manifest_path" else BLOB_DIR)


def _data_dir(data: dict[str, Any]) -> Path:
    value = data.get("data_dir")
    return value if isinstance(value, Path) else DEFAULT_DATA_DIR


class _SharedEnv(PydanticBaseSettingsSource):
    """The un-prefixed ``DATASAFE_*`` variables, and the renamed ones a class still accepts."""

    def __init__(self, settings_cls: type[BaseSettings], names: dict[str, str]) -> None:
        super().__init__(settings_cls)
        self._names = names

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads its few names directly

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for env, field in self._names.items():
            value = os.environ.get(env)
            if value and field in self.settings_cls.model_fields and field not in out:
                out[field] = value
        return out


class BaseDataSafeSettings(BaseSettings):
    """Where the data directory, the chain, the database, the manifest and the blobs are."""

    #: An empty variable counts as unset (``DATASAFE_RPC_URL=`` leaves the next source to speak).
    model_config = SettingsConfigDict(env_file=None, extra="ignore", env_ignore_empty=True)

    #: Renamed variables still read, old name -> field (below the current name, above shared).
    legacy_env: ClassVar[dict[str, str]] = {}

    data_dir: Path = DEFAULT_DATA_DIR
    #: JSON-RPC endpoint of the chain node.
    rpc_url: str = DEFAULT_RPC_URL
    #: SQLAlchemy URL of the database (the service's tables and the indexer's).
    database_url: str = Field(default_factory=lambda data: default_database_url(_data_dir(data)))
    #: Deployment manifest (chain id, ledger address, deploy block).
    manifest_path: Path = Field(default_factory=lambda data: _data_dir(data) / MANIFEST_FILE)
    #: Directory of the content-addressed ciphertext blob store.
    blob_dir: Path = Field(default_factory=lambda data: _data_dir(data) / BLOB_DIR)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(_explain(type(self), exc)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        shared = {SHARED_PREFIX + name.upper(): name for name in SHARED}
        return (
            init_settings,
            env_settings,
            _SharedEnv(settings_cls, dict(cls.legacy_env)),
            _SharedEnv(settings_cls, shared),
            dotenv_settings,
            file_secret_settings,
        )

    @classmethod
    def env_name(cls, field: str) -> str:
        """The variable of this class that sets ``field`` (``DATASAFE_API_DATABASE_URL``)."""
        if field not in cls.model_fields:
            raise ValueError(f"{field!r} is not a setting of {cls.__name__}")
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; a new ``data_dir`` moves the derived places that were not set themselves."""
        if update and "data_dir" in update:
            moved = dict(update)
            for name in DERIVED:
                if name not in self.model_fields_set and name not in moved:
                    moved[name] = _derived(name, Path(moved["data_dir"]))
            update = moved
        return super().model_copy(update=update, deep=deep)


def _explain(cls: type[BaseDataSafeSettings], exc: ValidationError) -> str:
    """One line per bad value, naming the variables that could have set it."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        names = [cls.env_name(field)] if field in cls.model_fields else [field]
        names += [old for old, f in cls.legacy_env.items() if f == field]
        if field in SHARED and SHARED_PREFIX + field.upper() not in names:
            names.append(SHARED_PREFIX + field.upper())
        value = error.get("input")
        info = cls.model_fields.get(field)
        secret = info is not None and "SecretStr" in str(info.annotation)
        shown = "" if secret or isinstance(value, dict) else f" {value!r}"
        lines.append(f"{' or '.join(names)}:{shown} {error['msg']}")
    return f"invalid {cls.__name__}: " + "; ".join(lines)
