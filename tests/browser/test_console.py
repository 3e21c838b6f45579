"""The console's story in Chromium: the citizen sees her safe proven against the chain,
shares two fields through the wizard (the CLI's confirmation words), the bank verifies and
pulls at its desk, the citizen sees the read and her refused claim in her timeline and
revokes, the bank's desk is refused in the CLI's words, the regulator traces, charts,
exports and audits — and no request ever leaves 127.0.0.1. Screenshots of each page go to
docs/img/ui-*.png.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _claims import department
from _console import console_process
from _stack import Stack, governor_wallet

from tests.browser._chromium import browser_page, open_console


def _name_members(stack: Stack) -> None:
    world = stack.world
    gov = governor_wallet(stack)
    gov.ok("directory", "name", world.bank.address, "City Commercial Bank")
    gov.ok("directory", "name", world.issuer.address, "Municipal Tax Bureau")


def _untimed(words: str) -> str:
    return re.sub(r"until \d{4}-\d\d-\d\d \d\d:\d\d \S+", "until …", words)


def _until(page: Any, nav: str, selector: str, timeout_s: float = 60) -> None:
    """Reload a page (its nav button) until ``selector`` shows: the index trails the chain."""
    for _ in range(int(timeout_s / 0.5)):
        page.click(f"nav button[data-page='{nav}']")
        page.wait_for_load_state("networkidle")
        if page.locator(selector).count():
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"{selector} never showed on {nav}")


def test_console_story(console_stack: Stack, shots: Callable[[Any, str], None]) -> None:
    stack = console_stack
    _name_members(stack)
    with (
        console_process(stack.citizen.env) as citizen,
        console_process(stack.bank.env) as bank,
        console_process(stack.regulator.env) as regulator,
        browser_page() as (page, external),
    ):
        # ---- a page opened without the token gets nothing, in words ------------------------
        page.goto(citizen.url)
        page.wait_for_selector("#fatal:not([hidden])")
        assert "token_required" in page.inner_text("#fatal")

        # ---- before any record: empty states in words ---------------------------------------
        open_console(page, citizen)
        page.wait_for_selector("#safe-list .empty")
        assert "Your safe is empty" in page.inner_text("#safe-list")
        page.click("nav button[data-page='grants']")
        page.wait_for_selector("#grants-list .empty")
        assert "no grants yet" in page.inner_text("#grants-list")
        page.click("nav button[data-page='history']")
        page.wait_for_selector("#history-list .empty")
        assert "Nobody has read your data" in page.inner_text("#history-list")

        # ---- my safe: every field proven against the chain ---------------------------------
        aid = stack.issue("console")
        page.click("nav button[data-page='safe']")
        card = page.locator(f"article[data-asset='{aid}']")
        card.wait_for(timeout=60_000)
        assert "proven against the chain" in card.inner_text()
        assert "Li Wei" in card.inner_text() and "182000" in card.inner_text()
        assert card.locator("td .proven").count() == 5
        shots(page, "safe")

        # ---- the grant wizard, by keyboard where a person would use it --------------------
        page.focus("nav button[data-page='share']")
        page.keyboard.press("Enter")
        page.wait_for_selector("#share-asset option[value='" + aid + "']", state="attached")
        page.select_option("#share-asset", aid)
        page.get_by_label("income", exact=True).check()
        page.get_by_label("name", exact=True).check()
        page.select_option("#share-to", label="City Commercial Bank (bank)")
        page.select_option("#share-purpose", label="loan underwriting")
        page.fill("#share-duration", "30d")
        page.fill("#share-uses", "3")
        page.click("#share-review")
        page.wait_for_selector("#share-confirm:not([hidden])")
        words = page.inner_text("#share-words")
        assert "may read name, income of your income statement" in words
        assert "loan underwriting" in words and "at most 3 time(s)" in words
        # the very words `datasafe grant create` asks the person to confirm (declined here)
        cli = stack.citizen.run(
            "grant",
            "create",
            "--asset",
            aid,
            "--to",
            stack.world.bank.address,
            "--fields",
            "name,income",
            "--purpose",
            "1",
            "--for",
            "30d",
            "--uses",
            "3",
            input="n\n",
        )
        assert cli.exit_code == 2 and "cancelled" in cli.stderr
        cli_words = cli.stdout.split("You are about to share:", 1)[1].split("\n")[1].strip()
        assert _untimed(words) == _untimed(cli_words)
        assert page.inner_text("#share-hidden") == "Not shared: id_number, address, employer."
        shots(page, "grant-confirm")
        page.click("#share-send")
        page.wait_for_selector("#share-receipt:not([hidden])", timeout=90_000)
        receipt = page.inner_text("#share-receipt")
        assert "Consent granted" in receipt and "confirmed on the chain" in receipt
        gid = page.locator("#share-receipt code").first.get_attribute("title")
        assert gid is not None and gid.startswith("0x")
        # the wallet's own list agrees (the CLI reads the same chain)
        listed = {g["grant_id"]: g for g in stack.citizen.json("grant", "list")}
        assert listed[gid]["status"] == "active" and listed[gid]["fields"] == ["name", "income"]

        # ---- the bank's desk: verify, then pull with every field verified ------------------
        desk = page.context.browser.new_page()
        desk.route("**/*", external.route)
        open_console(desk, bank)
        # an institution has no safe: refused in the CLI's words
        desk.wait_for_selector("#page-safe .error:not([hidden])")
        line = stack.bank.fails(3, "data", "list")
        assert line == "error: " + desk.inner_text("#page-safe .error").removesuffix(
            " (role_required)"
        )
        desk.click("nav button[data-page='desk']")
        desk.fill("#desk-grant", gid)
        desk.click("#desk-verify")
        desk.wait_for_selector("#desk-result .done")
        assert "Allowed: name, income" in desk.inner_text("#desk-result")
        desk.click("#desk-pull")
        desk.wait_for_selector("#desk-result h3", timeout=90_000)
        pulled = desk.inner_text("#desk-result")
        assert "Pulled and verified (use 1)" in pulled and "Li Wei" in pulled
        assert "id_number" not in pulled and "Acme" not in pulled
        shots(desk, "desk")

        # ---- her claim, refused by the department ------------------------------------------
        schema = "0x" + stack.schema_id.hex()
        filed = stack.citizen.json("claims", "file", "taxbureau", schema, "--reference", "UI-1")
        claim = filed["claim_id"]
        department(stack).ok("claims", "refuse", claim, "--code", "no_record", "--reason", "none")

        # ---- who read my data: the bank's read, with its proof; her claim, read from her node
        _until(page, "history", "#history-list li[data-event='accessed']")
        read = page.locator("#history-list li[data-event='accessed']").first.inner_text()
        assert "read name, income" in read and "loan underwriting" in read
        refused_item = f"#history-list li[data-event='claim_refused'][data-claim='{claim}']"
        _until(page, "history", refused_item)
        refused = page.locator(refused_item).inner_text()
        assert "taxbureau claim refused: no_record" in refused
        assert "proof (read from your node)" in refused
        opened = page.locator(f"#history-list li[data-event='claim_filed'][data-claim='{claim}']")
        assert "taxbureau claim filed" in opened.inner_text()
        # the rows `datasafe history list` shows, each naming the transaction on the page
        cli = [r for r in stack.citizen.json("history", "list")["claims"] if r["claim_id"] == claim]
        assert [r["event"] for r in cli] == ["claim_filed", "claim_refused"]
        for r in cli:
            item = f"#history-list li[data-event='{r['event']}'][data-claim='{claim}']"
            shown = page.locator(f"{item} code").last
            assert shown.get_attribute("title") == r["tx_hash"]
        shots(page, "history")

        # ---- my grants: pause, resume, then revoke, each confirmed on the chain -------------
        page.click("nav button[data-page='grants']")
        page.click(f"button[data-action='pause'][data-grant='{gid}']")
        page.click("button[data-confirm='pause']")
        page.wait_for_selector(f"tr:has(code[title='{gid}']) .status-paused", timeout=90_000)
        assert "paused: the chain shows it" in page.inner_text("#page-grants .done")
        page.click(f"button[data-action='resume'][data-grant='{gid}']")
        page.click("button[data-confirm='resume']")
        page.wait_for_selector(f"tr:has(code[title='{gid}']) .status-active", timeout=90_000)
        page.click(f"button[data-action='revoke'][data-grant='{gid}']")
        page.click("button[data-confirm='revoke']")
        page.wait_for_selector("#page-grants .done:has-text('revoked')", timeout=90_000)
        assert "revoked: the chain shows it" in page.inner_text("#page-grants .done")
        page.wait_for_selector(f"tr:has(code[title='{gid}']) .status-revoked")
        shots(page, "grants")

        # ---- a wrong record is disputed: its grants pause until the issuer resolves it ------
        page.click("nav button[data-page='safe']")
        # the page redraws its cards when the reload lands: fill the form drawn after it
        page.wait_for_load_state("networkidle")
        page.wait_for_selector("#safe-list[aria-busy='false']")
        page.fill(f"form[data-dispute='{aid}'] input", "income for 2025 is wrong")
        page.click(f"form[data-dispute='{aid}'] button")
        page.wait_for_selector(
            f"article[data-asset='{aid}'] h3:has-text('disputed')", timeout=90_000
        )
        assert stack.citizen.json("data", "status", aid)["status"] == "disputed"

        # ---- the desk is refused, in the CLI's words ----------------------------------------
        desk.click("#desk-verify")
        desk.wait_for_selector("#page-desk .error:not([hidden])")
        cli_line = stack.bank.fails(3, "verify", gid)
        assert desk.inner_text("#page-desk .error") in cli_line

        # ---- the regulator: trace, charts, export, audit ------------------------------------
        reg = page.context.browser.new_page(viewport={"width": 1280, "height": 900})
        reg.route("**/*", external.route)
        open_console(reg, regulator)
        reg.click("nav button[data-page='regulator']")
        for _ in range(120):
            reg.click("#trace-search")
            reg.wait_for_selector("#trace-summary[data-done='1']")
            if "revoked" in reg.inner_text("#trace-table"):
                break
            reg.wait_for_timeout(500)
        assert reg.locator("#chart-time svg rect.bar").count() >= 1
        assert "City Commercial Bank" in reg.inner_text("#chart-institution") or (
            "citybank" in reg.inner_text("#chart-institution")
            or stack.world.bank.address[:8] in reg.inner_text("#chart-institution")
        )
        assert "loan underwriting" in reg.inner_text("#chart-purpose")
        reg.fill("#trace-form input[name='grant']", gid)
        reg.click("#trace-search")
        reg.wait_for_selector("#trace-summary[data-done='1']:has-text('5 events')")
        shots(reg, "regulator")
        with reg.expect_download() as download:
            reg.click("#export-csv")
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        kinds = [r["kind"] for r in rows]
        assert kinds == ["granted", "access", "paused", "resumed", "revoked"], kinds
        assert {r["grant_id"].lower() for r in rows} == {gid.lower()}
        reg.click("#audit-rows")
        reg.wait_for_selector("#audit-report p", timeout=120_000)
        assert "everything matches" in reg.inner_text("#audit-report")

        # ---- members: suspend and reinstate the bank (the regulator's own transactions) -----
        reg.wait_for_selector("#member-pick option", state="attached")
        reg.select_option("#member-pick", stack.world.bank.address)
        reg.click("#member-suspend")  # no reason: refused in words, nothing sent
        reg.wait_for_selector("#member-form + .error:not([hidden])")
        assert "reason is required" in reg.inner_text("#member-form + .error")
        reg.fill("#member-reason", "case 2026-17")
        reg.click("#member-suspend")
        reg.wait_for_selector("#member-list tr:has-text('City Commercial Bank') .status-suspended")
        assert "suspended in block" in reg.inner_text("#member-form ~ .done")
        reg.click("#member-reinstate")
        reg.wait_for_selector("#member-list tr:has-text('City Commercial Bank') .status-active")

        # ---- nothing matches: empty charts and table say so ---------------------------------
        reg.fill("#trace-form input[name='grant']", "0x" + "ab" * 32)
        reg.click("#trace-search")
        reg.wait_for_selector("#trace-summary[data-done='1']:has-text('0 events')")
        assert "No accesses match these filters." in reg.inner_text("#chart-time")
        assert "No events match these filters." in reg.inner_text("#trace-table")

        # ---- a bad filter is refused in words -----------------------------------------------
        reg.fill("#trace-form input[name='from_block']", "soon")
        reg.click("#trace-search")
        reg.wait_for_selector("#page-regulator > .error:not([hidden])")
        assert "block number" in reg.inner_text("#page-regulator > .error")

    assert external.urls == []
