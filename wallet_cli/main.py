"""The ``datasafe`` command: the wallet of citizens and enterprises, and the tools of
institutions and regulators. Sub-apps per area, composed with ``add_typer``.

Exit codes: 0 ok, 2 user error (nothing changed), 3 refused by the service or the
ledger (with its reason), 4 service or chain unreachable, 1 anything unexpected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wallet_cli._lazy import LazyGroup

#: Sub-commands are listed in ``wallet_cli._lazy.COMMANDS`` and imported when they run.
app = typer.Typer(
    name="datasafe",
    cls=LazyGroup,
    help="DataSafe wallet: your data safe, your consents, and who used your data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(help="Wallet directory (env DATASAFE_HOME, default ~/.datasafe-wallet)"),
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="Profile to act as (env DATASAFE_PROFILE)")
    ] = None,
    api: Annotated[
        str | None, typer.Option(help="Service URL, e.g. http://127.0.0.1:8700 (env DATASAFE_API)")
    ] = None,
    rpc: Annotated[
        str | None,
        typer.Option(help="Chain JSON-RPC URL; verifies what the service shows (env DATASAFE_RPC)"),
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(help="Deployment manifest (chain id, ledger address) for chain-only commands"),
    ] = None,
    pin: Annotated[
        str | None,
        typer.Option(
            help="Deployment fingerprint you checked out of band; pinned to the profile on first "
            "use (env DATASAFE_PIN)"
        ),
    ] = None,
    no_chain: Annotated[
        bool,
        typer.Option("--no-chain", help="Do not read the chain; show the service's view (marked)"),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="JSON output for scripts")] = False,
) -> None:
    """DataSafe wallet. Example: datasafe --api http://127.0.0.1:8700 data list"""
    # Not at the top: `datasafe --help` never runs this and must not pay for pydantic.
    from wallet_cli._context import State, set_state
    from wallet_cli.settings import get_settings

    get_settings.cache_clear()  # one read of the environment per invocation
    settings = get_settings()
    if home is not None:
        settings = settings.model_copy(update={"home": home})
    set_state(
        State(
            settings=settings,
            json=json_out,
            profile_name=profile or settings.profile,
            api_url=api,
            rpc_url=rpc,
            manifest_path=manifest,
            no_chain=no_chain,
            pin_fingerprint=pin or settings.pin or None,
        )
    )


def main() -> None:
    try:
        app()
    except ValueError as exc:
        # A bad DATASAFE_* value: say which, no traceback (imported here: start-up stays light).
        from ledger.errors import SettingsError

        if not isinstance(exc, SettingsError):
            raise
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
