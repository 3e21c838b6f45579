"""Progress at a real terminal (tmux): long operations draw a bar or a status line on stderr;
what a script reads (``--json``, ``--format csv`` to a file, a pipe) carries none of it."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

from _stack import Stack
from _wallet import PASSPHRASE
from test_wallet_terminal import Terminal, pytestmark, terminal_env  # noqa: F401  (skip without tmux)

#: What rich draws for a bar.
BAR = "━"


def _grant(stack: Stack, tag: str) -> str:
    aid = stack.issue(tag)
    out = stack.citizen.json(
        "grant", "create", "--asset", aid, "--to", "citybank", "--fields", "name,income",
        "--purpose", "loan", "--days", "1", "--yes",
    )  # fmt: skip
    return str(out["grant_id"])


def test_audit_over_the_chain_shows_a_bar_and_keeps_exports_clean(
    stack: Stack, tmp_path: Path
) -> None:
    gid = _grant(stack, "progress audit")
    manifest = str(stack.server.settings.manifest_path)
    term = Terminal(terminal_env(stack, stack.regulator.home))
    try:
        term.type(f"datasafe --manifest {manifest} audit trace --grant {gid}")
        screen = term.wait_for("from chain)")
        run = screen[screen.rindex("audit trace --grant") :]
        assert "Reading ledger events" in run and BAR in run and "blocks" in run
        # the bar's count is the blocks read: deployment .. head, all of them at the end
        line = next(x for x in run.splitlines() if "Reading ledger events" in x)
        done, total = line.split("/")[0].split()[-1], line.split("/")[1].split()[0]
        assert done == total and int(total) > 1, line

        # CSV to a file: the bar on the terminal, the file exactly CSV
        out_csv = tmp_path / "trace.csv"
        mark = len(term.screen())
        term.type(f"datasafe --manifest {manifest} audit trace --format csv > {out_csv}; echo $?")
        screen = term.wait_for("\n0\n", mark)
        assert "Reading ledger events" in screen[mark:]
        rows = list(csv.DictReader(out_csv.read_text().splitlines()))
        assert rows and {r["grant_id"] for r in rows} >= {gid}
        assert BAR not in out_csv.read_text() and "Reading" not in out_csv.read_text()

        # --json: no bar at all, not even on the terminal, and the file is JSON
        out_json = tmp_path / "trace.json"
        mark = len(term.screen())
        term.type(f"datasafe --json --manifest {manifest} audit trace > {out_json}; echo $?")
        screen = term.wait_for("\n0\n", mark)
        assert "Reading ledger events" not in screen[mark:] and BAR not in screen[mark:]
        assert gid in {r["grant_id"] for r in json.loads(out_json.read_text())}
    finally:
        term.close()


def test_history_follow_shows_its_status_and_the_new_access(stack: Stack, tmp_path: Path) -> None:
    gid = _grant(stack, "progress follow")
    term = Terminal(terminal_env(stack, stack.citizen.home))
    try:
        term.type("datasafe history list --follow --follow-for 20 --interval 0.5")
        term.wait_for("Passphrase for li:")
        term.type(PASSPHRASE)
        term.wait_for("Watching for new events (Ctrl-C to stop)")
        pulled = stack.bank.json("pull", gid, "--out", str(tmp_path / "pulled"))
        term.wait_for(pulled["access_tx"][:20])
        # the row is drawn above the status line, which counts it
        screen = term.wait_for("1/?")
        tail = screen[screen.rindex(pulled["access_tx"][:20]) :]
        assert "Watching for new events" in tail and "1/?" in tail, tail
        # when the follow ends its status line goes (transient); the rows stay
        deadline = time.monotonic() + 40
        while "Watching for new events" in term.screen() and time.monotonic() < deadline:
            time.sleep(0.2)
        screen = term.screen()
        assert "Watching for new events" not in screen and pulled["access_tx"][:20] in screen
        assert PASSPHRASE not in screen
    finally:
        term.close()
