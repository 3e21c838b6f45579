"""At a real terminal (tmux): a swallowed revocation, and the wallet's offer to send the
signed message itself, accepted by the person."""

from __future__ import annotations

import shutil

import pytest
from _liar import LyingProxy
from _stack import Stack
from _wallet import FAST_SCRYPT, PASSPHRASE
from test_lying_service import _chain_grant, _grant, _swallow
from test_wallet_terminal import REPO, Terminal

from ledger.models import GrantStatus

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


def test_swallowed_revocation_offer_at_a_terminal(stack: Stack, liar: LyingProxy) -> None:
    gid = _grant(stack, "terminal-offer")
    _swallow(liar, "revoke")
    env = {
        "DATASAFE_HOME": str(stack.citizen.home),
        "DATASAFE_SCRYPT_N": FAST_SCRYPT,
        "DATASAFE_API": liar.url,
        "DATASAFE_RPC": stack.rpc,
        "DATASAFE_CONFIRM_TIMEOUT": "1",
        "PATH": f"{REPO / '.venv' / 'bin'}:/usr/bin:/bin",
        "TERM": "xterm",
        "PS1": "$ ",
    }
    term = Terminal(env)
    try:
        term.type(f"datasafe grant revoke {gid}")
        term.wait_for("Passphrase for li:")
        term.type(PASSPHRASE)
        term.wait_for("Revoke this grant? [y/N]:")
        term.type("y")
        screen = term.wait_for("Send your signed revoke to the chain yourself now")
        assert "does not show it" in screen and "not on the chain you read" in screen
        assert _chain_grant(stack, gid).status == GrantStatus.ACTIVE
        assert "Grant revoked" not in screen
        term.type("y")
        screen = term.wait_for("Grant revoked (read back from the chain)")
        assert _chain_grant(stack, gid).status == GrantStatus.REVOKED
    finally:
        term.close()
