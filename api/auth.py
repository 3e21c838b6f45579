"""Who is calling: signed-envelope verification, replay protection, on-chain roles."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from api import errors
from api.envelope import (
    Envelope,
    EnvelopeError,
    body_digest,
    domain_separator,
    recover,
    request_digest,
)
from api.nonces import NonceStore
from ledger import models as ledger_models
from ledger.models import MemberKind, MemberStatus, Role

__all__ = ["Authenticator", "Member", "MemberKind", "MemberStatus", "Role"]


@dataclass(frozen=True)
class Member(ledger_models.Member):
    """A member as :mod:`ledger.models` reads it, plus its address and the block read at."""

    address: str
    block: int


class Authenticator:
    """Checks an envelope: time window, signature over the exact request, fresh nonce."""

    def __init__(
        self,
        *,
        chain_id: int,
        ledger_address: str,
        nonces: NonceStore,
        window_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.chain_id = chain_id
        self.ledger_address = ledger_address
        self._domain = domain_separator(chain_id, ledger_address)
        self._nonces = nonces
        self._window = window_seconds
        self._clock = clock

    def verify_signature(
        self, method: str, target: str, body: bytes, headers: Mapping[str, str]
    ) -> Envelope:
        """Pure part (no I/O): returns the envelope whose signer is proven."""
        try:
            env = Envelope.from_headers(headers)
        except EnvelopeError as exc:
            raise errors.UnauthenticatedError(str(exc)) from exc
        if env is None:
            raise errors.UnauthenticatedError(
                "sign the request: X-DataSafe-Signer, -Timestamp, -Nonce, -Signature"
            )
        now = self._clock()
        if abs(env.timestamp - now) > self._window:
            raise errors.RequestExpiredError(
                f"timestamp {env.timestamp} is over {self._window}s from server time {int(now)}"
            )
        try:
            digest = request_digest(
                self._domain, method, target, body_digest(body), env.timestamp, env.nonce
            )
            signer = recover(digest, env.signature)
        except EnvelopeError as exc:
            raise errors.BadSignatureError(str(exc)) from exc
        if signer.lower() != env.signer.lower():
            raise errors.BadSignatureError(
                "signature does not recover to X-DataSafe-Signer for this request, "
                f"chain id {self.chain_id} and ledger {self.ledger_address}"
            )
        return Envelope(signer, env.timestamp, env.nonce, env.signature)

    async def consume(self, env: Envelope) -> None:
        """Record the envelope's nonce; a second use is a replay."""
        fresh = await self._nonces.consume_async(env.signer, env.nonce, env.timestamp)
        if not fresh:
            raise errors.ReplayedRequestError(
                f"nonce 0x{env.nonce.hex()} was already used by {env.signer}"
            )

    async def authenticate(
        self, method: str, target: str, body: bytes, headers: Mapping[str, str]
    ) -> str:
        env = self.verify_signature(method, target, body, headers)
        await self.consume(env)
        return env.signer
