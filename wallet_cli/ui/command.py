"""``datasafe ui``: start the browser console for the current profile (loopback only)."""

from __future__ import annotations

from typing import Annotated

import typer

from wallet_cli._context import command, state


@command
def ui(
    host: Annotated[
        str, typer.Option(help="Loopback address to listen on (127.0.0.1 or ::1; nothing else)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one)")] = 0,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the page in the default browser")
    ] = False,
) -> None:
    """A local web console: my safe, grants, history, the grant wizard, the regulator's trace.

    Served by this process on loopback; keys stay here (or in the unlock agent). Open the URL
    it prints: the part after # is this session's token, required on every call.

    Example: datasafe -p li ui --port 8790
    """
    from wallet_cli.ui.server import bind

    console = bind(state(), host, port)
    typer.echo(f"DataSafe console for this session: {console.url_with_token}")
    typer.echo("Keep this URL to yourself (it carries the session's token). Ctrl-C stops.")
    if open_browser:
        import webbrowser

        webbrowser.open(console.url_with_token)
    console.serve()
