"""Hostile bodies against the API process: it answers a problem, stays alive, stays small.

Each class of request an attacker can send for free (deep nesting, huge arrays, many
fields, a 50 MB body declared or streamed chunked) is refused at the edge with a
problem+json, the process is still serving afterwards, and its peak memory (VmHWM from
``/proc``) stays within a generous bound that buffering the body would break.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _api_world import World
from _edge import REPO, ApiProcess, api_for, envelope_headers, raw_post, reset_peak, rss_kib

from api.client import DataSafeClient

MAX_BODY = 4 * 1024 * 1024
FIFTY_MB = 50 * 1024 * 1024


@pytest.fixture(scope="module")
def api(
    edge_world: World, edge_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiProcess]:
    yield from api_for(
        edge_world, edge_db, tmp_path_factory.mktemp("hostile"), max_body_bytes=MAX_BODY
    )


def still_serving(api: ApiProcess) -> None:
    assert api.alive(), api.tail()
    assert httpx.get(api.url + "/v1/info", timeout=10).status_code == 200


def problem_of(resp: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = resp.json()
    assert body["code"] == code, body
    assert body["request_id"] == resp.headers["x-request-id"]
    return body


def signed_post(api: ApiProcess, world: World, path: str, body: bytes) -> httpx.Response:
    with DataSafeClient(api.url, world.citizen.key, timeout=30) as c:
        return c.request("POST", path, json_body=body)


# ---- nesting ----------------------------------------------------------------------------


def test_deep_nesting_unauthenticated_is_refused_before_parsing(api: ApiProcess) -> None:
    body = b"[" * 100_000 + b"]" * 100_000  # ~200 KB: crashed the API before
    resp = httpx.post(
        api.url + "/v1/grants", content=body, headers={"content-type": "application/json"}
    )
    problem_of(resp, 401, "unauthenticated")
    still_serving(api)


def test_deep_nesting_with_a_bad_signature_is_refused_before_parsing(
    api: ApiProcess,
    edge_world,
) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    headers = envelope_headers(edge_world, api, "/v1/grants")  # signed over b"", not this body
    resp = httpx.post(api.url + "/v1/grants", content=body, headers=headers)
    problem_of(resp, 401, "bad_signature")
    still_serving(api)


@pytest.mark.parametrize("depth", [33, 1_000, 100_000])
def test_deep_nesting_from_a_member_is_refused_by_shape(
    api: ApiProcess,
    edge_world: World,
    depth: int,
) -> None:
    body = b'{"terms":' + b"[" * depth + b"]" * depth + b"}"
    problem = problem_of(signed_post(api, edge_world, "/v1/grants", body), 422, "body_too_complex")
    # Deep enough bodies also hold too many containers: either reason refuses them.
    assert "levels deep" in str(problem["detail"]) or "JSON values" in str(problem["detail"])
    still_serving(api)


def test_nesting_at_the_limit_reaches_the_validator(api: ApiProcess, edge_world: World) -> None:
    body = b'{"terms":' + b"[" * 31 + b"]" * 31 + b"}"  # 32 levels with the outer object
    problem_of(signed_post(api, edge_world, "/v1/grants", body), 422, "invalid_request")


# ---- many values ----------------------------------------------------------------------------


def test_huge_array_is_refused_by_shape(api: ApiProcess, edge_world: World) -> None:
    body = json.dumps({"terms": list(range(500_000))}).encode()  # ~3.4 MB, under the size limit
    assert len(body) < MAX_BODY
    problem = problem_of(signed_post(api, edge_world, "/v1/grants", body), 422, "body_too_complex")
    assert "JSON values" in str(problem["detail"])
    still_serving(api)


def test_many_fields_are_refused_by_shape(api: ApiProcess, edge_world: World) -> None:
    body = json.dumps({f"f{i}": i for i in range(100_000)}).encode()
    problem_of(signed_post(api, edge_world, "/v1/grants", body), 422, "body_too_complex")
    still_serving(api)


def test_many_strings_are_refused_without_allocating_per_string(
    api: ApiProcess, edge_world: World
) -> None:
    body = b'{"terms":[' + b'"a",' * 900_000 + b'"a"]}'  # 3.6 MB of tiny strings
    assert len(body) < MAX_BODY
    problem = problem_of(signed_post(api, edge_world, "/v1/grants", body), 422, "body_too_complex")
    assert "strings" in str(problem["detail"])
    still_serving(api)


def test_validation_errors_list_the_first_few_and_count_all(
    api: ApiProcess, edge_world: World
) -> None:
    body = json.dumps({f"f{i}": i for i in range(400)}).encode()  # under the value limit
    problem = problem_of(signed_post(api, edge_world, "/v1/grants", body), 422, "invalid_request")
    assert isinstance(problem["errors"], list) and len(problem["errors"]) == 10
    assert isinstance(problem["error_count"], int) and problem["error_count"] >= 400


# ---- size ------------------------------------------------------------------------------


def test_declared_50mb_is_refused_before_reading(api: ApiProcess, edge_world: World) -> None:
    headers = envelope_headers(edge_world, api, "/v1/grants")
    # No byte of the body is sent: the answer can only come from the declared length.
    status, body, _ = raw_post(
        api, "/v1/grants", headers, total=FIFTY_MB, chunked=False, send_body=False
    )
    assert status == 413, body
    assert json.loads(body)["code"] == "payload_too_large"
    still_serving(api)


def test_unsigned_declared_body_is_refused_before_reading(api: ApiProcess) -> None:
    status, body, _ = raw_post(
        api,
        "/v1/grants",
        {"Content-Type": "application/json"},
        total=MAX_BODY // 2,
        chunked=False,
        send_body=False,
    )
    assert status == 401, body
    assert json.loads(body)["code"] == "unauthenticated"
    still_serving(api)


def test_streamed_50mb_chunked_is_cut_off_at_the_limit(api: ApiProcess, edge_world: World) -> None:
    headers = envelope_headers(edge_world, api, "/v1/grants")
    status, body, sent = raw_post(api, "/v1/grants", headers, total=FIFTY_MB, chunked=True)
    assert status == 413, body
    assert json.loads(body)["code"] == "payload_too_large"
    assert sent < FIFTY_MB  # the server stopped reading: we stopped sending
    still_serving(api)


def test_memory_stays_bounded_under_every_hostile_class(api: ApiProcess, edge_world: World) -> None:
    still_serving(api)
    before = rss_kib(api.pid)
    if not reset_peak(api.pid):
        pytest.skip("the kernel does not let us reset VmHWM")
    headers = envelope_headers(edge_world, api, "/v1/grants")
    for _ in range(3):
        raw_post(api, "/v1/grants", headers, total=FIFTY_MB, chunked=True)
        signed_post(api, edge_world, "/v1/grants", b"[" * 100_000 + b"]" * 100_000)
        signed_post(api, edge_world, "/v1/grants", json.dumps(list(range(500_000))).encode())
        signed_post(
            api, edge_world, "/v1/grants", json.dumps({f"f{i}": i for i in range(100_000)}).encode()
        )
        signed_post(api, edge_world, "/v1/grants", b'{"terms":[' + b'"a",' * 900_000 + b'"a"]}')
    peak = rss_kib(api.pid, "VmHWM")
    still_serving(api)
    # Generous: one body at the limit, its copies and the refusal; far below 50 MB buffered.
    assert peak - before < 48 * 1024, (before, peak)


def test_recursion_limit_is_sane_after_importing_the_entry_points() -> None:
    code = (
        "import sys, json\n"
        "import api.app, api.cli, node.cli, wallet_cli.main, eth_account\n"
        "assert sys.getrecursionlimit() <= 1000, sys.getrecursionlimit()\n"
        "try:\n"
        "    json.loads('[' * 200000 + ']' * 200000)\n"
        "except RecursionError:\n"
        "    print('RecursionError')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(REPO), capture_output=True, text=True, timeout=120
    )
    # Before the fix the interpreter died with SIGSEGV (return code -11) here.
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "RecursionError"
