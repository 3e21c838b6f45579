"""``datasafe ui`` refuses what is not its own page: no token, a wrong token, another site,
another host name, a non-loopback bind; it serves only its own assets under a strict CSP.

Real HTTP against the real command in its own process (an empty wallet: refusals need no
chain; the pages' story runs in tests/browser/test_console.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _console import RunningConsole, console_process
from _wallet import Wallet

from wallet_cli.ui.server import ASSETS, CONTENT_SECURITY_POLICY, NotLoopbackError, check_loopback


@pytest.fixture(scope="module")
def empty_wallet(tmp_path_factory: pytest.TempPathFactory) -> Wallet:
    return Wallet(tmp_path_factory.mktemp("ui-wallet"))


@pytest.fixture(scope="module")
def console(empty_wallet: Wallet) -> Iterator[RunningConsole]:
    with console_process(empty_wallet.env) as running:
        yield running


def test_prints_a_loopback_url_with_a_long_token(console: RunningConsole) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", console.url)
    assert len(console.token) >= 40


def test_refuses_a_missing_or_wrong_token(console: RunningConsole) -> None:
    missing = httpx.get(console.url + "api/session", timeout=10)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "token_required"
    wrong = httpx.get(
        console.url + "api/session", headers={"X-DataSafe-Token": console.token[:-2] + "xx"}
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "token_wrong"
    # the token in a cookie or the query string is not the token
    in_query = httpx.get(console.url + "api/session", params={"token": console.token})
    assert in_query.status_code == 401
    ok = console.get("api/session")
    assert ok.status_code != 401, ok.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://127.0.0.1:1"},  # another port is another origin
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_refuses_another_site_even_with_the_token(
    console: RunningConsole, headers: dict[str, str]
) -> None:
    for reply in (
        httpx.get(console.url + "api/grants", headers=console.headers(**headers)),
        httpx.post(
            console.url + "api/grants/revoke",
            json={"grant_id": "0x" + "11" * 32},
            headers=console.headers(**headers),
        ),
    ):
        assert reply.status_code == 403, reply.text
        assert reply.json()["error"]["code"] == "cross_site"


def test_same_origin_is_served(console: RunningConsole) -> None:
    reply = httpx.get(
        console.url + "api/contacts",
        headers=console.headers(Origin=console.origin, **{"Sec-Fetch-Site": "same-origin"}),
    )
    assert reply.status_code == 200 and reply.json() == {"data": []}


def test_refuses_another_host_name(console: RunningConsole) -> None:
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: the Host header shows it."""
    port = console.url.rsplit(":", 1)[1].strip("/")
    for path in ("", "api/session", "static/ui.js"):
        reply = httpx.get(
            console.url + path, headers=console.headers(Host=f"rebind.example:{port}")
        )
        assert reply.status_code == 421, path
        assert reply.json()["error"]["code"] == "wrong_host"
    assert httpx.get(console.url.replace("127.0.0.1", "localhost")).status_code == 200


def test_post_must_be_json(console: RunningConsole) -> None:
    reply = httpx.post(
        console.url + "api/grants/revoke",
        content="grant_id=0x11",
        headers=console.headers(**{"Content-Type": "application/x-www-form-urlencoded"}),
    )
    assert reply.status_code == 415
    bad = httpx.post(
        console.url + "api/grants/revoke",
        content="[1]",
        headers=console.headers(**{"Content-Type": "application/json"}),
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_json"


def test_page_and_assets_are_local_under_a_strict_csp(console: RunningConsole) -> None:
    page = httpx.get(console.url)
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert page.headers["x-frame-options"] == "DENY"
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert refs and all(r.startswith("/static/") for r in refs), refs
    assert "<script>" not in page.text and "style=" not in page.text
    for name in ASSETS:
        reply = httpx.get(console.url + "static/" + name)
        assert reply.status_code == 200, name
        assert reply.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert "http://" not in reply.text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in reply.text
    for other in ("static/server.py", "static/..%2fserver.py", "static/index.html"):
        assert httpx.get(console.url + other).status_code == 404, other


def test_errors_are_the_clis_words(console: RunningConsole, empty_wallet: Wallet) -> None:
    """No profile yet: the page shows exactly the line `datasafe grant list` prints."""
    line = empty_wallet.fails(2, "grant", "list")
    reply = console.get("api/grants")
    assert reply.status_code == 400
    assert "error: " + reply.json()["error"]["message"] == line


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "example.com", "10.0.0.1"])
def test_refuses_a_non_loopback_bind(empty_wallet: Wallet, host: str) -> None:
    line = empty_wallet.fails(2, "ui", "--host", host)
    assert "not a loopback address" in line
    with pytest.raises(NotLoopbackError) as err:
        check_loopback(host)
    assert err.value.code == "not_loopback"


def test_loopback_names_are_accepted() -> None:
    assert check_loopback("127.0.0.1") == "127.0.0.1"
    assert check_loopback("localhost") == "127.0.0.1"
    assert check_loopback("::1") == "::1"
    assert check_loopback("127.0.0.2") == "127.0.0.2"


def test_the_static_files_ship_in_the_package() -> None:
    import wallet_cli.ui

    static = Path(wallet_cli.ui.__file__).with_name("static")
    assert {p.name for p in static.iterdir()} == {*ASSETS, "index.html"}


def test_listed_in_help_and_lazy(empty_wallet: Wallet) -> None:
    listing = empty_wallet.ok("--help").stdout
    assert "ui " in listing and "Browser console on 127.0.0.1" in listing
    own = empty_wallet.ok("ui", "--help").stdout
    assert "--host" in own and "loopback" in own


def test_json_prints_one_line_with_the_url(empty_wallet: Wallet) -> None:
    with console_process(empty_wallet.env, json_line=True) as running:
        assert running.get("/").status_code == 200


def test_every_endpoint_wants_the_token_and_this_origin(console: RunningConsole) -> None:
    """Each route in the console's API list (the counter code and the desk's redeem too)."""
    from wallet_cli.ui._routes import API

    assert ("POST", "/api/counter/code") in {(m, p) for m, p, _ in API}
    assert ("POST", "/api/desk/redeem") in {(m, p) for m, p, _ in API}
    for method, path, _ in API:
        url = console.url + path.lstrip("/")
        body = {"payload": "DS1:AAAA"} if method == "POST" else None
        none = httpx.request(method, url, json=body, timeout=10)
        assert none.status_code == 401, (path, none.text)
        assert none.json()["error"]["code"] == "token_required"
        evil = httpx.request(
            method, url, json=body, headers=console.headers(Origin="http://evil.example")
        )
        assert evil.status_code == 403 and evil.json()["error"]["code"] == "cross_site", path
