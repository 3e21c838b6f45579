"""``datasafe ui``: the wallet's browser console, served by the wallet process on loopback.

The pages are our own HTML, CSS and JS (``static/``, no CDN, no chart library). They call
the console's small JSON endpoints (:mod:`wallet_cli.ui.server`), which run the very
functions the CLI commands run (:mod:`wallet_cli.ui._calls`): keys stay in this process or
its unlock agent, every check is the command's check, every refusal the command's words.
"""
