"""The counter code (亮码) in Chromium: the citizen makes the one-time code in her console and
sees its QR (an SVG the wallet drew) with the text and the expiry; another institution's desk
is refused in the CLI's words; the bank's desk redeems the pasted text once, with every field
verified, and refuses it replayed — and no request leaves 127.0.0.1. Screenshot:
docs/img/ui-counter.png (with DATASAFE_UI_SCREENSHOTS=1).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from _console import console_process
from _stack import Stack

from tests.browser._chromium import browser_page, open_console


def test_counter_code_shown_and_redeemed_at_the_desk(
    console_stack: Stack, shots: Callable[[Any, str], None], tmp_path: Path
) -> None:
    stack = console_stack
    aid = stack.issue("console-counter")
    with (
        console_process(stack.citizen.env) as citizen,
        console_process(stack.bank.env) as bank,
        console_process(stack.regulator.env) as regulator,
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

        # ---- another institution's desk: refused in the CLI's words, nothing sent -----------
        other = page.context.browser.new_page()
        other.route("**/*", external.route)
        open_console(other, regulator)
        other.click("nav button[data-page='desk']")
        other.fill("#redeem-payload", text)
        other.click("#desk-redeem")
        other.wait_for_selector("#page-desk .error:not([hidden])", timeout=60_000)
        refused = other.inner_text("#page-desk .error")
        assert "this code is for" in refused and "(code_not_for_you)" in refused
        line = stack.regulator.fails(3, "redeem", text, "--out", str(tmp_path / "reg"))
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
        desk.click("#desk-redeem")
        desk.wait_for_selector("#page-desk .error:not([hidden])", timeout=60_000)
        again = desk.inner_text("#page-desk .error")
        assert "already redeemed" in again and "a code works once" in again

    assert external.urls == []
