"""A small httpx client that signs every request with a member key.

The wallet CLI, the SDK examples and the tests talk to the service through
this. It signs exactly the bytes it sends (method, request target, keccak of
the body) with the EIP-712 envelope of :mod:`api.envelope`; the signing domain
(chain id, ledger address) is fetched from ``/v1/info`` unless given.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import httpx

from api.envelope import Envelope, address_of, sign_request
from ledger.eip712 import ledger_domain, sign_key_binding
from ledger.keybinding import check_member_key
from vault.keyproof import key_proof_valid, make_key_proof
from vault.keys import EncryptionKeyPair, PublicEncryptionKey

if TYPE_CHECKING:
    from ledger.client import LedgerClient


class DataSafeProblemError(Exception):
    """An RFC 9457 problem answered by the service."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.code: str = str(problem.get("code") or str(problem.get("type", "")).rsplit(":", 1)[-1])
        self.detail: str = str(problem.get("detail", ""))
        super().__init__(f"{status} {self.code}: {self.detail}")


class DataSafePagingError(Exception):
    """A listing did not end within the pages the caller allowed."""


#: The list routes page with a keyset cursor in this response header (see docs/api.md).
NEXT_CURSOR_HEADER = "X-Next-Cursor"
#: Rows per page asked for when following cursors (the service's maximum), and a bound on
#: how many pages one listing may take.
PAGE_SIZE = 200
MAX_PAGES = 10_000


def _key_bytes(private_key: bytes | str) -> bytes:
    if isinstance(private_key, bytes):
        return private_key
    return bytes.fromhex(private_key.removeprefix("0x"))


def _encode_body(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    return json.dumps(body, separators=(",", ":")).encode()


def _check(resp: httpx.Response) -> Any:
    if resp.status_code >= 400:
        try:
            problem = resp.json()
        except ValueError:
            problem = {"code": "http_error", "detail": resp.text}
        raise DataSafeProblemError(resp.status_code, problem)
    if not resp.content:
        return None
    return resp.json()


class _Base:
    def __init__(
        self,
        private_key: bytes | str | None,
        chain_id: int | None,
        ledger_address: str | None,
    ) -> None:
        self._key = _key_bytes(private_key) if private_key is not None else None
        self.address = address_of(self._key) if self._key is not None else None
        self.chain_id = chain_id
        self.ledger_address = ledger_address

    def _sign(self, request: httpx.Request, body: bytes, **overrides: Any) -> None:
        assert self._key is not None and self.chain_id is not None and self.ledger_address
        env: Envelope = sign_request(
            self._key,
            chain_id=overrides.pop("chain_id", self.chain_id),
            ledger_address=overrides.pop("ledger_address", self.ledger_address),
            method=request.method,
            path=request.url.raw_path.decode("ascii"),
            body=body,
            **overrides,
        )
        request.headers.update(env.to_headers())


class DataSafeClient(_Base):
    """Synchronous client. ``request`` returns the raw response; verbs return decoded JSON."""

    def __init__(
        self,
        base_url: str,
        private_key: bytes | str | None = None,
        *,
        chain_id: int | None = None,
        ledger_address: str | None = None,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        super().__init__(private_key, chain_id, ledger_address)
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout)

    def __enter__(self) -> DataSafeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def info(self) -> dict[str, Any]:
        data: dict[str, Any] = _check(self.http.get("/v1/info"))
        return data

    def _ensure_domain(self) -> None:
        if self.chain_id is None or self.ledger_address is None:
            info = self.info()
            self.chain_id = self.chain_id or int(info["chain_id"])
            self.ledger_address = self.ledger_address or str(info["ledger_address"])

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        signed: bool = True,
        sign_overrides: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body = _encode_body(json_body)
        hdrs = {"content-type": "application/json"} if body else {}
        hdrs.update(headers or {})
        req = self.http.build_request(
            method, path, content=body or None, params=params, headers=hdrs
        )
        if signed and self._key is not None:
            self._ensure_domain()
            self._sign(req, body, **(sign_overrides or {}))
        return self.http.send(req)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return _check(self.request(method, path, **kwargs))

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.call("POST", path, json_body=body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.call("PUT", path, json_body=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.call("DELETE", path, **kwargs)

    def get_all(
        self,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        page_size: int = PAGE_SIZE,
        max_pages: int = MAX_PAGES,
    ) -> list[Any]:
        """Every row of a paginated list, following ``X-Next-Cursor`` (at most ``max_pages``)."""
        rows: list[Any] = []
        query = {**(params or {}), "limit": page_size}
        for _ in range(max_pages):
            resp = self.request("GET", path, params=query)
            rows.extend(_check(resp))
            cursor = resp.headers.get(NEXT_CURSOR_HEADER)
            if not cursor:
                return rows
            query["cursor"] = cursor
        raise DataSafePagingError(f"{path} has more than {max_pages} pages of {page_size}")


class AsyncDataSafeClient(_Base):
    """Asynchronous twin of :class:`DataSafeClient` (benchmarks, async SDK users)."""

    def __init__(
        self,
        base_url: str,
        private_key: bytes | str | None = None,
        *,
        chain_id: int | None = None,
        ledger_address: str | None = None,
        timeout: float = 30.0,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(private_key, chain_id, ledger_address)
        self.http = http or httpx.AsyncClient(base_url=base_url, timeout=timeout)

    async def __aenter__(self) -> AsyncDataSafeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _ensure_domain(self) -> None:
        if self.chain_id is None or self.ledger_address is None:
            info = _check(await self.http.get("/v1/info"))
            self.chain_id = self.chain_id or int(info["chain_id"])
            self.ledger_address = self.ledger_address or str(info["ledger_address"])

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        signed: bool = True,
        sign_overrides: dict[str, Any] | None = None,
    ) -> httpx.Response:
        body = _encode_body(json_body)
        hdrs = {"content-type": "application/json"} if body else {}
        req = self.http.build_request(
            method, path, content=body or None, params=params, headers=hdrs
        )
        if signed and self._key is not None:
            await self._ensure_domain()
            self._sign(req, body, **(sign_overrides or {}))
        return await self.http.send(req)

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return _check(await self.request(method, path, **kwargs))

    async def get(self, path: str, **kwargs: Any) -> Any:
        return await self.call("GET", path, **kwargs)

    async def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return await self.call("POST", path, json_body=body, **kwargs)

    async def get_all(
        self,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        page_size: int = PAGE_SIZE,
        max_pages: int = MAX_PAGES,
    ) -> list[Any]:
        """Every row of a paginated list, following ``X-Next-Cursor`` (at most ``max_pages``)."""
        rows: list[Any] = []
        query = {**(params or {}), "limit": page_size}
        for _ in range(max_pages):
            resp = await self.request("GET", path, params=query)
            rows.extend(_check(resp))
            cursor = resp.headers.get(NEXT_CURSOR_HEADER)
            if not cursor:
                return rows
            query["cursor"] = cursor
        raise DataSafePagingError(f"{path} has more than {max_pages} pages of {page_size}")


# ---- member encryption keys: bound by the member, checked by whoever uses them ----------


def key_binding_body(
    account_key: bytes | str,
    keypair: EncryptionKeyPair,
    *,
    chain_id: int,
    ledger: str,
    key_version: int,
    deadline: int,
) -> dict[str, Any]:
    """The body of ``PUT /v1/members/me/key`` that binds ``keypair`` as the signer's key.

    The member signs the EIP-712 ``KeyBinding`` (``key_version`` = the chain's version + 1)
    over the key hash and the proof of possession; the service relays it and pays the gas.
    """
    account = address_of(_key_bytes(account_key))
    proof = make_key_proof(keypair, chain_id=chain_id, ledger=ledger, account=account)
    signed = sign_key_binding(
        _key_bytes(account_key),
        ledger_domain(chain_id, ledger),
        keypair.digest(),
        proof,
        key_version,
        deadline,
    )
    return {
        "public_key": base64.b64encode(keypair.public_key.to_bytes()).decode(),
        "key_proof": base64.b64encode(proof).decode(),
        "binding": {
            "key_version": key_version,
            "deadline": deadline,
            "signature": "0x" + signed.signature.hex(),
        },
    }


def verified_member_key(chain: LedgerClient, served: dict[str, Any]) -> PublicEncryptionKey:
    """The encryption key a service serves for a member, accepted only as the member's own.

    ``served`` is a ``/v1/members/{address}`` answer. The check (:mod:`ledger.keybinding`)
    reads the member's binding from the chain the caller reads and verifies the proof of
    possession locally; a :class:`ledger.keybinding.KeyBindingError` says what is wrong.
    """
    public_key = base64.b64decode(served.get("encryption_key") or "")
    proof = base64.b64decode(served.get("key_proof") or "")
    check_member_key(chain, served["address"], public_key, proof, key_proof_valid)
    return PublicEncryptionKey.from_bytes(public_key)
