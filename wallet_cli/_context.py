"""Per-invocation state, the service and chain clients, and error translation.

Every command is wrapped by :func:`command`: whatever fails below (httpx, the
service's problem answers, ledger, vault) is translated into one
:class:`~wallet_cli.errors.WalletError` here, printed as one line, and ends the
process with that error's exit code. Nothing secret is ever part of a message.
"""

from __future__ import annotations

import contextvars
import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import httpx
import typer
from rich.console import Console

from api.client import DataSafeClient, DataSafeProblemError
from ledger.client import LedgerClient
from ledger.errors import ContractRevertError, LedgerError, RpcUnavailableError
from ledger.manifest import Manifest
from vault.errors import FieldError, VaultError
from wallet_cli._home import Home, Profile
from wallet_cli.errors import (
    RefusedError,
    UnreachableError,
    UserError,
    WalletError,
)
from wallet_cli.settings import WalletSettings, get_settings

P = ParamSpec("P")
T = TypeVar("T")

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Machine-readable JSON on stdout instead of tables.")
]

#: Problem slugs that mean "you asked for something that does not exist / is malformed".
_USER_PROBLEMS = {"invalid_request", "not_found", "grant_not_found", "asset_not_found"}

_AUTHORITIES = {1: "governor", 8: "regulator"}

#: Ledger refusals of the authority rules (docs/contracts.md), in words a person can act on:
#: error name -> (stable code, message built from the error's decoded fields).
_CONTRACT_WORDS: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "MembershipSuspensionAuthority": (
        "suspension_authority",
        lambda f: (
            f"only the {_AUTHORITIES.get(int(f['authority']), 'authority')} that suspended "
            f"{f['account']} may reinstate it"
        ),
    ),
    "MembershipInvalidGovernor": (
        "invalid_governor",
        lambda f: f"governance cannot go to {f['account']}: it is the governor or a data subject",
    ),
    "MembershipNotActive": (
        "member_suspended",
        lambda f: f"{f['account']} is suspended: it may still revoke and pause its grants",
    ),
    "SchemaIssuerNotAuthorized": (
        "not_issuer",
        lambda f: (
            f"{f['issuer']} may not issue under schema 0x{bytes(f['schemaId']).hex()}: only the "
            "department that registered it, or one it authorised on chain"
        ),
    ),
    "SchemaNotOwner": (
        "not_issuer",
        lambda f: (
            f"only the department that registered schema 0x{bytes(f['schemaId']).hex()} decides "
            "who else issues under it"
        ),
    ),
    "ConsentNotAuthorized": (
        "not_owner",
        lambda f: (
            f"{f['account']} is neither the owner nor a live agent (an agent stops while its "
            "enterprise is suspended)"
        ),
    ),
    "ConsentNotGrantor": (
        "not_owner",
        lambda f: (
            f"{f['account']} is neither the owner nor a live agent (an agent stops while its "
            "enterprise is suspended)"
        ),
    ),
}


def contract_refusal(exc: ContractRevertError) -> RefusedError:
    """The wallet's words for a ledger revert (its decoded custom error)."""
    words = _CONTRACT_WORDS.get(exc.error_name)
    if words is None:
        return RefusedError(f"refused by the ledger: {exc}", code="contract_rejected")
    code, message = words
    return RefusedError(
        f"refused by the ledger ({exc.error_name}): {message(exc.fields)}", code=code
    )


@dataclass
class State:
    settings: WalletSettings
    json: bool = False
    profile_name: str | None = None
    api_url: str | None = None
    rpc_url: str | None = None
    manifest_path: Path | None = None
    no_chain: bool = False
    _info: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def home(self) -> Home:
        return Home(self.settings.home)

    @property
    def console(self) -> Console:
        # Built per use so CliRunner's redirected stdout is honoured; wide so ids never wrap.
        return Console(file=sys.stdout, width=200, highlight=False, soft_wrap=True, markup=False)

    # ---- identity ----------------------------------------------------------------------

    def profile(self) -> Profile:
        return self.home.resolve(self.profile_name)

    def passphrase(self, prompt: str = "Passphrase", *, confirm: bool = False) -> str:
        """From ``DATASAFE_PASSPHRASE`` or a hidden prompt (never echoed, never logged)."""
        if self.settings.passphrase is not None:
            return self.settings.passphrase.get_secret_value()
        value: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
        if not value:
            raise UserError("an empty passphrase is not allowed")
        return value

    def unlock(self, profile: Profile | None = None) -> tuple[Profile, bytes]:
        p = profile or self.profile()
        return p, p.unlock(self.passphrase(f"Passphrase for {p.name}"))

    # ---- endpoints ---------------------------------------------------------------------

    def api_base(self, profile: Profile | None = None) -> str:
        meta = profile.meta() if profile is not None else {}
        url = self.api_url or self.settings.api or meta.get("api")
        if not url:
            raise UserError("no service URL: pass --api URL or set DATASAFE_API")
        return str(url).rstrip("/")

    def rpc(self, profile: Profile | None = None, *, required: str | None = None) -> str | None:
        """--rpc, else DATASAFE_RPC, else the profile's saved URL; None with --no-chain."""
        url: str | None = None
        if not self.no_chain:
            meta: dict[str, Any] = {}
            try:
                meta = (profile or self.profile()).meta()
            except UserError:
                meta = {}
            url = self.rpc_url or self.settings.rpc or meta.get("rpc") or None
        if not url and required:
            raise UserError(f"{required} needs the chain: pass --rpc URL or set DATASAFE_RPC")
        return str(url) if url else None

    @contextmanager
    def client(self, key: bytes | None, profile: Profile | None = None) -> Iterator[DataSafeClient]:
        with DataSafeClient(self.api_base(profile), key, timeout=30.0) as c:
            yield c

    def info(self, c: DataSafeClient) -> dict[str, Any]:
        if self._info is None:
            self._info = c.info()
        return self._info

    def ledger_address(self, c: DataSafeClient | None) -> tuple[int | None, str]:
        if self.manifest_path is not None:
            try:
                m = Manifest.load(self.manifest_path)
            except LedgerError as exc:
                raise UserError(f"manifest {self.manifest_path}: {exc}") from exc
            return m.chain_id, m.ledger_address
        if c is None:
            raise UserError("no ledger address: pass --manifest PATH (or --api URL)")
        info = self.info(c)
        return int(info["chain_id"]), str(info["ledger_address"])

    @contextmanager
    def chain(self, rpc_url: str, ledger: str) -> Iterator[LedgerClient]:
        lc = LedgerClient(rpc_url, ledger)
        try:
            chain_id = lc.chain_id()
            if self._info is not None and int(self._info["chain_id"]) != chain_id:
                raise RefusedError(
                    f"the RPC endpoint is chain {chain_id} but the service is on chain "
                    f"{self._info['chain_id']}",
                    code="chain_mismatch",
                )
            yield lc
        finally:
            lc.close()

    # ---- output ------------------------------------------------------------------------

    def emit(self, data: Any, human: Callable[[Console], None]) -> None:
        if self.json:
            typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
        else:
            human(self.console)


_STATE: contextvars.ContextVar[State] = contextvars.ContextVar("datasafe_wallet_state")


def set_state(st: State) -> None:
    """Called by the root callback once per invocation."""
    _STATE.set(st)


def state() -> State:
    try:
        return _STATE.get()
    except LookupError:
        st = State(get_settings())
        _STATE.set(st)
        return st


def translate(exc: BaseException, st: State | None = None) -> WalletError | None:
    """The wallet error for a library failure (None: not ours to translate)."""
    if isinstance(exc, WalletError):
        return exc
    if isinstance(exc, DataSafeProblemError):
        code = exc.code or "http_error"
        detail = exc.detail or code
        if exc.status >= 500:
            return UnreachableError(f"service unavailable ({code}): {detail}", code=code)
        if code in _USER_PROBLEMS:
            return UserError(f"{detail} ({code})", code=code)
        return RefusedError(f"refused by the service ({code}): {detail}", code=code)
    if isinstance(exc, httpx.TransportError):
        where = ""
        try:
            url = exc.request.url
            where = f" at {url.scheme}://{url.host}:{url.port}"
        except RuntimeError:
            pass
        return UnreachableError(
            f"service unreachable{where}: {type(exc).__name__}", code="service_unreachable"
        )
    if isinstance(exc, RpcUnavailableError):
        return UnreachableError(f"chain RPC unreachable: {exc}", code="rpc_unreachable")
    if isinstance(exc, ContractRevertError):
        return contract_refusal(exc)
    if isinstance(exc, LedgerError):
        return WalletError(f"ledger: {exc}", code="ledger_error")
    if isinstance(exc, FieldError):
        return UserError(str(exc), code="unknown_field")
    if isinstance(exc, VaultError):
        return RefusedError(f"verification failed: {exc}", code="verification_failed")
    return None


def fail(err: WalletError, st: State | None) -> typer.Exit:
    line = str(err).splitlines()[0] if str(err) else err.code
    if st is not None and st.json:
        typer.echo(json.dumps({"error": {"code": err.code, "message": line}}))
    typer.echo(f"error: {line}", err=True)
    return typer.Exit(code=err.exit_code)


def command(fn: Callable[P, T]) -> Callable[P, T]:
    """Wrap a command: honour its ``--json`` flag and turn failures into one line + exit."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        st = state()
        if kwargs.get("json_out"):
            st.json = True
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            err = translate(exc, st)
            if err is None:
                raise
            raise fail(err, st) from None

    return wrapper
