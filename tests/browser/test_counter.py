"""The counter code (亮码) in Chromium: the citizen makes the one-time code in her console and
sees its QR (an SVG the wallet drew) with the text and the expiry; the notary's desk is refused
the bank's code in the CLI's words; the bank's desk redeems the pasted text once, with every
field verified, and refuses it replayed; the notary's desk is refused the grant the code made
for the bank — and no request leaves 127.0.0.1. Screenshot:
docs/img/ui-counter.png (with DATASAFE_UI_SCREENSHOTS=1).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _api_world import CONSUMER, Actor
from _console import console_process
from _stack import Stack
from _wallet import Wallet

from ledger.models import MemberKind
from tests.browser._chromium import browser_page, open_console


def _notary(stack: Stack) -> Wallet:
    """The demo's second institution: a notary admitted now, its wallet bound to its own key."""
    world = stack.world
    notary = Actor("notary", "0x" + secrets.token_hex(32))
    world.w3.provider.make_request("anvil_setBalance", [notary.address, hex(10**20)])
    world.admit(notary, CONSUMER, int(MemberKind.NOTARY), bind_key=False)
    wallet = Wallet(stack.citizen.home.parent / "notary-wallet", env=dict(stack.citizen.env))
    wallet.env["DATASAFE_HOME"] = str(wallet.home)
    wallet.ok("account", "import", "notary", "--kind", "notary", DATASAFE_IMPORT_KEY=notary.key)
    wallet.ok("account", "register-key")
    return wallet


def test_counter_code_shown_and_redeemed_at_the_desk(
    console_stack: Stack, shots: Callable[[Any, str], None], tmp_path: Path
) -> None:
    stack = console_stack
    aid = stack.issue("console-counter")
    notary = _notary(stack)
    with (
        console_process(stack.citizen.env) as citizen,
        console_process(stack.bank.env) as bank,
        console_process(notary.env) as notary_console,
        browser_page() as (page, external),
    ):
        # ---- the citizen: record, fields, institution, purpose, how long -------------------
        open_console(page, citizen)
        page.click("nav button[data-page='counter']")
        page.wait_for_selector(f"#counter-asset option[value='{aid}']", state="attached")
        page.select_option("#counter-asset", aid)
        fields = page.locator("#counter-fields")
        fields.get_by_label("name", exact=True).check()
        fields.get_by_label("income", exact=True).check()
        page.select_option("#counter-to", stack.world.bank.address)
        page.select_option("#counter-purpose", label="loan underwriting")
        page.fill("#counter-valid", "5m")
        page.click("#counter-show")
        page.wait_for_selector("#counter-code:not([hidden]) .qr svg path", timeout=60_000)
        assert page.locator("#counter-code svg").count() == 1
        text = page.input_value("#counter-payload")
        assert text.startswith("DS1:")
        shown = page.inner_text("#counter-code")
        assert "may read name, income of your income statement" in shown
        assert "once, for loan underwriting" in shown and "valid until" in shown
        shots(page, "counter")

        # ---- the notary's desk: the code is the bank's, refused in the CLI's words ----------
        other = page.context.browser.new_page()
        other.route("**/*", external.route)
        open_console(other, notary_console)
        other.click("nav button[data-page='desk']")
        other.fill("#redeem-payload", text)
        other.click("#desk-redeem")
        other.wait_for_selector("#page-desk .error:not([hidden])", timeout=60_000)
        refused = other.inner_text("#page-desk .error")
        assert "this code is for" in refused and "(code_not_for_you)" in refused
        line = notary.fails(3, "redeem", text, "--out", str(tmp_path / "notary"))
        assert line == "error: " + refused.removesuffix(" (code_not_for_you)")

        # ---- the bank's desk: the pasted text redeems once, every field verified ------------
        desk = page.context.browser.new_page()
        desk.route("**/*", external.route)
        open_console(desk, bank)
        desk.click("nav button[data-page='desk']")
        desk.fill("#redeem-payload", text)
        desk.click("#desk-redeem")
        desk.wait_for_selector("#desk-result h3", timeout=90_000)
        pulled = desk.inner_text("#desk-result")
        assert "Code redeemed: pulled and verified" in pulled and "Li Wei" in pulled
        assert "182000" in pulled and "id_number" not in pulled
        assert desk.locator("#desk-result td .proven").count() == 2
        gid = desk.locator("#desk-result p code").nth(1).get_attribute("title")
        desk.click("#desk-redeem")
        desk.wait_for_selector("#page-desk .error:not([hidden])", timeout=60_000)
        again = desk.inner_text("#page-desk .error")
        assert "already redeemed" in again and "a code works once" in again

        # ---- the grant made to the bank: the notary's desk is refused it --------------------
        assert gid is not None and len(gid) == 66
        other.fill("#desk-grant", gid)
        other.click("#desk-verify")
        other.wait_for_selector("#page-desk .error:not([hidden])", timeout=60_000)
        refused = other.inner_text("#page-desk .error")
        assert "is not a party to grant" in refused
        assert refused in notary.fails(3, "verify", gid)

    assert external.urls == []
