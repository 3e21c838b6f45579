"""``datasafe ui``: start the browser console for the current profile (loopback only)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from wallet_cli._context import JsonOpt, command, state


@command
def ui(
    host: Annotated[
        str, typer.Option(help="Loopback address to listen on (127.0.0.1 or ::1; nothing else)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one)")] = 0,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the page in the default browser")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """A local web console: my safe, grants, history, the grant wizard, the regulator's trace.

    Served by this process on loopback; keys stay here (or in the unlock agent). Open the URL
    it prints: the part after # is this session's token, required on every call.

    Example: datasafe -p li ui --port 8790

    With --json: one line {"url", "host", "port"} before it serves.
    """
    from wallet_cli.ui.server import bind

    st = state()
    console = bind(st, host, port)
    if st.json:
        # One line a script can read before the console serves (the token is in the URL).
        shown = {"url": console.url_with_token, "host": host, "port": console.guard.port}
        typer.echo(json.dumps(shown))
    else:
        typer.echo(f"DataSafe console for this session: {console.url_with_token}")
        typer.echo("Keep this URL to yourself (it carries the session's token). Ctrl-C stops.")
    if open_browser:
        import webbrowser

        webbrowser.open(console.url_with_token)
    console.serve()
