"""Citizens' gasless ledger calls: the rules for relaying a signed ``ForwardRequest``.

The service relays only a caller's own request (the authenticated member is the
signer), only to its own ledger and only for the calls the forwarder carries
(:data:`ledger.forwarder.FORWARDABLE`). It checks what it can before paying gas —
signature, then deadline, nonce and the ledger's own verdict in a simulation — and
then sends ``execute`` as the custodian. Wallets do not believe the answer: they
read the result back from the chain (``wallet_cli._chain.forward``).
"""

from __future__ import annotations

from typing import Any

from api import errors
from api._translate import revert_error
from api.auth import Member
from api.chain import RpcError
from api.models import ForwardCreate, ForwardPublic
from api.services import Services
from ledger import errors as lerr
from ledger import forwarder as fwd
from ledger.address import to_checksum_address
from ledger.errors import LedgerError, UnknownRevertError


def _request(body: ForwardCreate) -> fwd.ForwardRequest:
    r = body.request
    return fwd.ForwardRequest(
        sender=to_checksum_address(r.sender),
        to=to_checksum_address(r.to),
        nonce=r.nonce,
        deadline=r.deadline,
        data=bytes.fromhex(r.data.removeprefix("0x")),
    )


def _check(services: Services, member: Member, req: fwd.ForwardRequest, sig: bytes) -> str:
    """The ledger function ``req`` calls, once the request is the caller's own and well-formed."""
    ledger = services.chain.ledger_address
    if req.to.lower() != ledger.lower():
        raise errors.InvalidRequestError(f"the forward request targets {req.to}, not {ledger}")
    try:
        fn = fwd.forwardable_function(req.data)
    except LedgerError as exc:
        raise errors.InvalidRequestError(str(exc)) from None
    forwarder = fwd.forwarder_address(ledger)
    try:
        signer = fwd.request_signer(services.relayer.chain_id, forwarder, req, sig)
    except fwd.ForwarderError as exc:
        raise errors.ForwardSignatureInvalidError(str(exc)) from None
    # The service pays only for a caller's own request: nobody spends another's nonce.
    if signer.lower() != req.sender.lower() or signer.lower() != member.address.lower():
        raise errors.ForwardSignatureInvalidError(
            f"signed by {signer}, sent by {member.address}, for {req.sender}"
        )
    # The deadline is the chain's time, not this host's: the simulation checks it.
    return fn


_FORWARDER_PROBLEMS: dict[str, type[errors.ApiError]] = {
    "ForwarderExpired": errors.ForwardExpiredError,
    "ForwarderInvalidNonce": errors.ForwardNonceError,
    "ForwarderSignerMismatch": errors.ForwardSignatureInvalidError,
    "ForwarderUntrustedTarget": errors.InvalidRequestError,
}


class _Revert:
    """Revert data in the shape :func:`api._translate.revert_error` reads."""

    def __init__(self, data: bytes, message: str) -> None:
        self.data = "0x" + data.hex()
        self.rpc_message = message


def _revert_bytes(exc: Exception) -> bytes:
    """The revert data of a refused call, whichever shape the transport gave it."""
    if isinstance(exc, lerr.ContractRevertError):
        return bytes(exc.data)
    raw = getattr(exc, "data", None)
    raw = raw.get("data") if isinstance(raw, dict) else raw
    if isinstance(raw, str) and raw.startswith("0x"):
        try:
            return bytes.fromhex(raw[2:])
        except ValueError:
            return b""
    return b""


def _forward_problem(exc: Exception) -> errors.ApiError:
    """The forwarder's own refusal, or the ledger's refusal it wraps, as a problem."""
    data = _revert_bytes(exc)
    decoded = fwd.forwarder_abi().errors.decode(data) if data else None
    if isinstance(decoded, UnknownRevertError):
        decoded = None
    if decoded is not None and decoded.error_name == "ForwarderCallFailed":
        message = str(getattr(exc, "rpc_message", exc))
        return revert_error(_Revert(bytes(decoded.args[0]), message))
    if decoded is not None and decoded.error_name in _FORWARDER_PROBLEMS:
        cls = _FORWARDER_PROBLEMS[decoded.error_name]
        return cls(f"the forwarder refused: {decoded.error_name}{tuple(decoded.args)!r}")
    return revert_error(exc)


async def relay_forward(services: Services, member: Member, body: ForwardCreate) -> ForwardPublic:
    req = _request(body)
    sig = bytes.fromhex(body.signature.removeprefix("0x"))
    fn = _check(services, member, req, sig)
    forwarder = fwd.forwarder_address(services.chain.ledger_address)
    data = fwd.encode_execute(req, sig)
    call: dict[str, Any] = {"to": forwarder, "data": "0x" + data.hex()}
    if services.relayer.custodian:
        call["from"] = services.relayer.custodian
    try:
        await services.chain.rpc("eth_call", [call, "latest"])
    except RpcError as exc:
        raise _forward_problem(exc) from exc
    receipt = await services.relay_custodian(
        key=f"forward:{req.sender.lower()}:{req.nonce}",
        kind="forward",
        payload={"function": fn, "sender": req.sender, "nonce": req.nonce},
        data=data,
        on_confirmed=lambda _t, _b: None,
        to=forwarder,
    )
    return ForwardPublic(
        function=fn,
        sender=req.sender,
        nonce=req.nonce,
        forwarder=forwarder,
        tx_hash=receipt.tx_hash,
        block=receipt.block_number,
    )
