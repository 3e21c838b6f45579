"""A command group whose sub-commands are imported only when one of them runs.

Each area's module pulls in the service client, the chain client, the vault's crypto: most
of a second together. ``datasafe --help`` lists the areas from the one-line summaries below
without importing any of them; ``datasafe grant create`` imports ``wallet_cli.grant`` only.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import typer
from typer import _click as click
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class Lazy:
    """``module:attribute`` is a Typer sub-app, or a function registered as one command."""

    target: str
    summary: str


#: The root's commands in the order ``--help`` shows them.
COMMANDS: dict[str, Lazy] = {
    "unlock": Lazy("wallet_cli.unlock:unlock", "Unlock a profile for a while (an agent holds it)."),
    "lock": Lazy("wallet_cli.unlock:lock", "Lock the wallet now: the agent forgets and exits."),
    "account": Lazy("wallet_cli.account:app", "Accounts and profiles: keystores, encryption keys."),
    "contacts": Lazy(
        "wallet_cli.contacts:app", "Names for institutions; the service's member directory."
    ),
    "data": Lazy("wallet_cli.data:app", "My data: list, open locally, dispute."),
    "grant": Lazy("wallet_cli.grant:app", "Grant, list, revoke, pause and resume consents."),
    "history": Lazy("wallet_cli.history:app", "Who accessed my data (data tracker)."),
    "agent": Lazy("wallet_cli.agent:app", "Enterprise agents: add, remove, list; M-of-N policy."),
    "proposal": Lazy(
        "wallet_cli.proposal:app", "Enterprise agents: review and approve proposed grants (M of N)."
    ),
    "claims": Lazy(
        "wallet_cli.claims:app", "Claim a record from a department; departments answer claims."
    ),
    "audit": Lazy(
        "wallet_cli.audit:app",
        "Regulator: trace grants and accesses; verify them against the chain.",
    ),
    "member": Lazy("wallet_cli.member:app", "Regulator: suspend and reinstate members."),
    "sealed": Lazy(
        "wallet_cli.sealed:app",
        "Sealed accesses: department records/reveals; regulator extends, lists overdue.",
    ),
    "verify": Lazy(
        "wallet_cli.institution:verify",
        "Institution: may I read these fields under this grant right now? (chain's answer)",
    ),
    "pull": Lazy(
        "wallet_cli.institution:pull",
        "Institution: pull granted fields, verify every one locally, save the verified data.",
    ),
    "institution": Lazy(
        "wallet_cli.lifecycle:app",
        "Institution: recalls and deletions owed (inbox); delete and acknowledge.",
    ),
    "redeem": Lazy(
        "wallet_cli.counter:redeem",
        "Institution: redeem a citizen's counter code (QR): submit the grant and pull in one step.",
    ),
    "purposes": Lazy("wallet_cli.grant:purposes", "The purposes a grant can name, described."),
    "directory": Lazy(
        "wallet_cli.directory:app", "Member directory: registered names, kinds and status."
    ),
    "ui": Lazy("wallet_cli.ui.command:ui", "Browser console on 127.0.0.1 (keys stay here)."),
}


def load(name: str, lazy: Lazy) -> click.Command:
    """Import the module and build its click command, named as the root lists it."""
    module_name, attr = lazy.target.split(":")
    obj = getattr(importlib.import_module(module_name), attr)
    # Mounted on a throw-away root exactly as `add_typer`/`command` would mount it, so a
    # one-command area stays a group (`datasafe history list`) and no completion is offered.
    holder = typer.Typer(add_completion=False)
    if isinstance(obj, typer.Typer):
        holder.add_typer(obj, name=name)
    else:
        holder.command(name)(obj)
    holder.command("_")(lambda: None)  # two entries: the holder is always a group
    group = typer.main.get_command(holder)
    assert isinstance(group, TyperGroup)
    cmd = group.commands[name]
    cmd.name = name
    return cmd


class LazyGroup(TyperGroup):
    """The root group: real commands on demand, summaries for the help screen."""

    _listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in COMMANDS if n not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        known = self.commands.get(cmd_name)
        if known is not None:
            return known
        lazy = COMMANDS.get(cmd_name)
        if lazy is None:
            return None
        if self._listing:
            return TyperCommand(cmd_name, help=lazy.summary, short_help=lazy.summary)
        cmd = load(cmd_name, lazy)
        self.commands[cmd_name] = cmd
        return cmd

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
