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
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer

from wallet_cli import _keyagent
from wallet_cli._home import Home, Profile
from wallet_cli.errors import (
    ContradictedError,
    DeploymentPinError,
    NotConfirmedError,
    RefusedError,
    UnreachableError,
    UserError,
    WalletError,
    WrongPassphraseError,
)
from wallet_cli.settings import WalletSettings, get_settings

# The service client, the chain client and rich cost most of a command's start-up: they are
# imported when a command first needs them, so `--help` and argument errors stay instant.
if TYPE_CHECKING:
    from rich.console import Console

    from api.client import DataSafeClient
    from ledger.client import LedgerClient
    from ledger.errors import ContractRevertError
    from ledger.rpc import RpcClient
    from ledger.trust import PinnedDeployment
    from vault.keys import Keyring

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
    pin_fingerprint: str | None = None
    _info: dict[str, Any] | None = field(default=None, repr=False)
    _pin: PinnedDeployment | None = field(default=None, repr=False)
    _pin_checked: set[str] = field(default_factory=set, repr=False)
    _secrets: dict[str, _keyagent.Secret] = field(default_factory=dict, repr=False)
    _typed: list[str] = field(default_factory=list, repr=False)

    @property
    def home(self) -> Home:
        return Home(self.settings.home)

    @property
    def console(self) -> Console:
        from rich.console import Console

        from wallet_cli._progress import stdout

        # Built per use so CliRunner's redirected stdout (and a live bar's) is honoured; wide
        # so ids never wrap.
        return Console(file=stdout(), width=200, highlight=False, soft_wrap=True, markup=False)

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
        return p, self.secret(p).key

    def secret(self, profile: Profile) -> _keyagent.Secret:
        """The profile unlocked: from the agent (no derivation) or the passphrase (one).

        Once per profile and invocation. An agent that vanished or timed out is said on
        stderr and the passphrase asked for instead; without a terminal or
        ``DATASAFE_PASSPHRASE`` that ends in a typed error.
        """
        cached = self._secrets.get(profile.name)
        if cached is not None:
            return cached
        secret, why = None, ""
        try:
            secret = _keyagent.fetch(self.settings.home, profile.name)
        except (_keyagent.AgentGoneError, _keyagent.AgentTimedOutError) as exc:
            if self.settings.passphrase is None and not sys.stdin.isatty():
                raise
            why = str(exc)
        if secret is None:
            if why:
                typer.echo(f"note: {why}; asking for the passphrase", err=True)
            elif self.settings.passphrase is None and not sys.stdin.isatty():
                raise _keyagent.WalletLockedError(
                    f"profile {profile.name!r} is locked: run `datasafe unlock` first, or set "
                    "DATASAFE_PASSPHRASE"
                )
            secret = self._open(profile)
        self._secrets[profile.name] = secret
        return secret

    def _open(self, profile: Profile) -> _keyagent.Secret:
        # A passphrase typed for another profile of this command (an agent acting for its
        # enterprise) is tried first, so one person types it once.
        for typed in list(self._typed):
            try:
                return profile.open(typed)
            except WrongPassphraseError:
                continue
        typed = self.passphrase(f"Passphrase for {profile.name}")
        secret = profile.open(typed)
        self._typed.append(typed)
        return secret

    def keys(self, signer: Profile, owner: Profile | None = None) -> tuple[bytes, Keyring]:
        """The signer's key and the owner's keyring (keys opened when a record needs them)."""
        owner = owner or signer
        return self.secret(signer).key, owner.ring(self.secret(owner))

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
            url = self.rpc_url or self.settings.rpc_url or meta.get("rpc") or None
        if not url and required:
            raise UserError(f"{required} needs the chain: pass --rpc URL or set DATASAFE_RPC")
        return str(url) if url else None

    @contextmanager
    def client(self, key: bytes | None, profile: Profile | None = None) -> Iterator[DataSafeClient]:
        """The service, signing for the pinned deployment (resolved and checked first)."""
        import httpx

        from api.client import DataSafeClient
        from ledger.rpc import tls_context

        base = self.api_base(profile)
        http = httpx.Client(base_url=base, timeout=30.0, verify=tls_context(base))
        with DataSafeClient(base, key, http=http) as c:
            pin = self.deployment(c, profile)
            if pin is not None:
                c.chain_id, c.ledger_address = pin.chain_id, pin.ledger_address
            yield c

    def info(self, c: DataSafeClient) -> dict[str, Any]:
        if self._info is None:
            self._info = c.info()
        return self._info

    # ---- the trust anchor --------------------------------------------------------------

    def _pin_profile(self, profile: Profile | None) -> Profile | None:
        if profile is not None:
            return profile
        try:
            p = self.profile()
        except UserError:
            return None
        return p if p.exists else None

    def deployment(
        self, c: DataSafeClient | None, profile: Profile | None = None
    ) -> PinnedDeployment | None:
        """The pinned deployment, checked against the chain this wallet reads.

        Sources, in order: ``--manifest`` (out of band), the profile's stored pin, a
        fingerprint the user confirmed (``--pin``/``DATASAFE_PIN``, or a prompt on a
        terminal) for the ledger the service names. A first pin is saved to the profile.
        None only without a chain and without a stored pin (the service's view, marked).
        """
        if self._pin is None:
            self._pin = self._resolve_pin(c, profile)
        pin = self._pin
        if pin is None:
            return None
        rpc = self.rpc(self._pin_profile(profile))
        if rpc is not None:
            self.verify_pin(rpc)
        if c is not None:
            from ledger.trust import DeploymentMismatchError, check_hint

            info = self.info(c)
            try:
                check_hint(pin, info.get("chain_id"), info.get("ledger_address"))
            except DeploymentMismatchError as exc:
                raise DeploymentPinError(
                    f"the service at {self.api_base(profile)} is not on your pinned deployment "
                    f"({pin.fingerprint}): {exc}",
                    code="service_deployment_mismatch",
                ) from None
        return pin

    def _resolve_pin(
        self, c: DataSafeClient | None, profile: Profile | None
    ) -> PinnedDeployment | None:
        from ledger.errors import LedgerError
        from ledger.manifest import Manifest
        from ledger.trust import NotPinnedError, PinnedDeployment, TrustError

        p = self._pin_profile(profile)
        stored_json = p.meta().get("pin") if p is not None else None
        stored = PinnedDeployment.from_json(stored_json) if stored_json else None
        rpc = self.rpc(p)
        pin: PinnedDeployment | None = None
        if self.manifest_path is not None:
            try:
                m = Manifest.load(self.manifest_path)
                if rpc is not None:
                    with _rpc(rpc) as r:
                        pin = PinnedDeployment.from_manifest(m, r)
                else:
                    pin = PinnedDeployment.from_manifest(m)
            except NotPinnedError:
                if stored is None:
                    raise
                pin = None
            except TrustError:
                raise
            except LedgerError as exc:
                raise UserError(f"manifest {self.manifest_path}: {exc}") from exc
            if pin is not None and stored is not None and pin.fingerprint != stored.fingerprint:
                raise DeploymentPinError(
                    f"the manifest {self.manifest_path} is deployment {pin.fingerprint}, but "
                    f"profile {p.name if p else '?'} pinned {stored.fingerprint}",
                )
        if pin is None and stored is not None:
            return stored
        if pin is None and rpc is not None and c is not None:
            pin = self._pin_by_fingerprint(c, rpc)
        if pin is not None and stored is None and p is not None:
            p.save_meta(p.meta() | {"pin": pin.to_json()})
        return pin

    def _pin_by_fingerprint(self, c: DataSafeClient, rpc: str) -> PinnedDeployment:
        from ledger.trust import pin_from_fingerprint, read_deployment

        info = self.info(c)
        hint, block = str(info["ledger_address"]), int(info.get("deploy_block") or 0)
        with _rpc(rpc) as r:
            if self.pin_fingerprint:
                return pin_from_fingerprint(r, hint, self.pin_fingerprint, block)
            seen = read_deployment(r, hint, block)
        words = (
            f"chain {seen.chain_id}, ledger {seen.ledger_address}, fingerprint {seen.fingerprint}"
        )
        if sys.stdin.isatty() and not self.json:
            typer.echo(f"This wallet has not pinned a deployment yet. The service names: {words}.")
            if typer.confirm("Is this the fingerprint you were given out of band?", default=False):
                return seen
        raise DeploymentPinError(
            f"no deployment pinned for this profile; the service names {words}: check the "
            "fingerprint out of band, then pass --pin FINGERPRINT (or --manifest PATH)",
            code="deployment_not_pinned",
        )

    def verify_pin(self, rpc_url: str) -> None:
        """Once per endpoint and invocation: the chain behind ``rpc_url`` is the pinned one."""
        if self._pin is None or rpc_url in self._pin_checked:
            return
        from ledger.trust import verify_deployment

        with _rpc(rpc_url) as r:
            verify_deployment(r, self._pin)
        self._pin_checked.add(rpc_url)

    def ledger_address(self, c: DataSafeClient | None) -> tuple[int | None, str]:
        pin = self.deployment(c)
        if pin is not None:
            return pin.chain_id, pin.ledger_address
        if c is None:
            raise UserError("no ledger address: pass --manifest PATH (or --api URL)")
        info = self.info(c)
        return int(info["chain_id"]), str(info["ledger_address"])

    def deploy_block(self, c: DataSafeClient | None) -> int:
        pin = self.deployment(c)
        if pin is not None:
            return pin.deploy_block
        if c is None:
            raise UserError("no deployment: pass --manifest PATH (or --api URL)")
        return int(self.info(c)["deploy_block"])

    def require_pin(
        self, c: DataSafeClient | None, profile: Profile | None = None
    ) -> PinnedDeployment:
        pin = self.deployment(c, profile)
        if pin is None:
            raise DeploymentPinError(
                "this needs the pinned deployment: pass --rpc URL and --pin FINGERPRINT "
                "(or --manifest PATH)",
                code="deployment_not_pinned",
            )
        return pin

    @contextmanager
    def chain(self, rpc_url: str, ledger: str) -> Iterator[LedgerClient]:
        pin = self._pin
        if pin is not None and ledger.lower() != pin.ledger_address.lower():
            raise DeploymentPinError(
                f"ledger {ledger} is not the pinned ledger {pin.ledger_address}",
            )
        from ledger.client import LedgerClient

        lc = LedgerClient(rpc_url, ledger)
        try:
            if pin is not None:
                self.verify_pin(rpc_url)
            else:
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


def _rpc(url: str) -> RpcClient:
    from ledger.rpc import RpcClient

    return RpcClient(url, timeout=15.0, retries=1)


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
    import httpx

    from api.client import DataSafeProblemError
    from ledger.errors import ContractRevertError, LedgerError, RpcUnavailableError
    from ledger.trust import (
        DeploymentMismatchError,
        NotPinnedError,
        ServiceContradictedError,
        TrustError,
    )
    from ledger.trust import NotConfirmedError as ChainNotConfirmedError
    from vault.errors import FieldError, VaultError

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
    if isinstance(exc, DeploymentMismatchError | NotPinnedError):
        return DeploymentPinError(f"pinned deployment: {exc}", code=exc.code)
    if isinstance(exc, ServiceContradictedError):
        return ContradictedError(f"the chain contradicts the service: {exc}", code=exc.code)
    if isinstance(exc, ChainNotConfirmedError):
        return NotConfirmedError(str(exc), code=exc.code)
    if isinstance(exc, TrustError):
        return RefusedError(str(exc), code=exc.code)
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
