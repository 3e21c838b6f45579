"""Every failure of the ``ledger`` package derives from :class:`LedgerError`.

Contract reverts carrying a custom error are decoded by their 4-byte selector
(taken from the generated ABI, never hand-written) into a subclass of
:class:`ContractRevertError` named after the Solidity error, e.g.
``ConsentNotFound``; its decoded arguments are in ``.args`` and, by name, in
``.fields``. ``contract_error("ConsentNotFound")`` returns the class, for
``except``/``pytest.raises``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

# eth-abi and eth-utils (with pydantic behind them) are imported where errors are built or
# decoded, not here: every settings class imports this module, the wallet's start-up too.


class LedgerError(Exception):
    """Root of every error raised by the ``ledger`` package."""


class ConfigurationError(LedgerError):
    """A setting is missing or invalid (no key, unknown sender, bad path)."""


class SettingsError(ConfigurationError, ValueError):
    """A settings class refused a value; the message names the environment variable."""


class ArtifactError(LedgerError):
    """A contract artifact is missing, unreadable or does not match the sources."""


class CompilationError(ArtifactError):
    """The Solidity compiler failed or reported errors."""


class ArtifactDriftError(ArtifactError):
    """Committed artifacts differ from what the current sources compile to."""


class RpcError(LedgerError):
    """Root of JSON-RPC transport and protocol failures."""


class RpcUnavailableError(RpcError):
    """The node could not be reached (connection refused, timeout, HTTP error)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"JSON-RPC endpoint {url} unreachable: {reason}")
        self.url = url
        self.reason = reason


class RpcResponseError(RpcError):
    """The node answered with a JSON-RPC error object that is not a contract revert."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method} failed: [{code}] {message}")
        self.method = method
        self.code = code
        self.rpc_message = message
        self.data = data


class RpcNonceError(RpcResponseError):
    """The node refused a transaction for its nonce (too low or high, already known, or a
    replacement that does not pay enough): resync the nonce from the chain."""


class RpcMethodNotFoundError(RpcResponseError):
    """The node does not offer the method (JSON-RPC code -32601)."""


class ManifestError(LedgerError):
    """Root of deployment-manifest failures."""


class ManifestNotFoundError(ManifestError):
    """No deployment manifest at the configured path."""


class ManifestInvalidError(ManifestError):
    """The manifest file is not a valid deployment manifest."""


class ChainMismatchError(ManifestError):
    """The manifest was written for another chain id than the node's."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"manifest is for chain id {expected} but the node reports {actual}")
        self.expected = expected
        self.actual = actual


class CodeMismatchError(ManifestError):
    """The code at the manifest's address is absent or differs from the recorded code hash."""

    def __init__(self, address: str, expected: str, actual: str) -> None:
        super().__init__(
            f"code at {address} has hash {actual}, manifest records {expected} "
            "(contract not deployed on this chain, or chain state lost)"
        )
        self.address = address
        self.expected = expected
        self.actual = actual


class TransactionError(LedgerError):
    """Root of transaction-sending failures."""


class TransactionRevertedError(TransactionError):
    """A mined transaction has status 0 and its revert reason could not be decoded."""

    def __init__(self, tx_hash: str, block_number: int) -> None:
        super().__init__(f"transaction {tx_hash} reverted in block {block_number}")
        self.tx_hash = tx_hash
        self.block_number = block_number


class ReceiptTimeoutError(TransactionError):
    """No receipt (or not enough confirmations) within the receipt timeout."""

    def __init__(self, tx_hash: str, timeout: float) -> None:
        super().__init__(f"transaction {tx_hash} not confirmed within {timeout:g}s")
        self.tx_hash = tx_hash
        self.timeout = timeout


class TransactionDroppedError(TransactionError):
    """A transaction disappeared from the node and could not be re-sent."""


class ChainProcessError(LedgerError):
    """The embedded chain (anvil) could not be started, reached or stopped."""


class ContractRevertError(LedgerError):
    """A call or transaction reverted. Subclasses are generated per custom error of the ABI."""

    #: Solidity error name ("" for a revert without decodable data).
    error_name: str = ""
    #: Canonical signature, e.g. ``ConsentNotFound(bytes32)``.
    error_signature: str = ""
    #: Argument names, in ABI order.
    arg_names: tuple[str, ...] = ()

    def __init__(self, *args: Any, data: bytes = b"") -> None:
        super().__init__(*args)
        self.data = data

    @property
    def fields(self) -> dict[str, Any]:
        return dict(zip(self.arg_names, self.args, strict=False))

    def __str__(self) -> str:
        if not self.error_name:
            return f"execution reverted (data 0x{self.data.hex()})"
        rendered = ", ".join(f"{k}={_render(v)}" for k, v in self.fields.items())
        return f"{self.error_name}({rendered})"


class UnknownRevertError(ContractRevertError):
    """A revert whose data matches no custom error of the ABI (or carries no data)."""


class PanicError(ContractRevertError):
    """A Solidity ``Panic(uint256)`` (assert, overflow, division by zero...)."""

    error_name = "Panic"
    error_signature = "Panic(uint256)"
    arg_names = ("code",)


class RevertStringError(ContractRevertError):
    """A Solidity ``Error(string)`` revert (the ledger itself never reverts with strings)."""

    error_name = "Error"
    error_signature = "Error(string)"
    arg_names = ("message",)


def _render(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return str(value)


_BUILTIN = {
    bytes.fromhex("4e487b71"): PanicError,
    bytes.fromhex("08c379a0"): RevertStringError,
}


class ErrorRegistry:
    """Maps 4-byte selectors of an ABI's custom errors to generated exception classes."""

    def __init__(self, abi: Sequence[Mapping[str, Any]]) -> None:
        from ledger.abi import canonical_type, signature_hash

        self._by_selector: dict[bytes, tuple[type[ContractRevertError], list[str]]] = {}
        self._by_name: dict[str, type[ContractRevertError]] = {}
        for item in abi:
            if item.get("type") != "error":
                continue
            inputs = list(item.get("inputs", []))
            types = [canonical_type(i) for i in inputs]
            signature = f"{item['name']}({','.join(types)})"
            selector = signature_hash(item)[:4]
            cls = _error_class(item["name"], signature, tuple(i.get("name", "") for i in inputs))
            self._by_selector[selector] = (cls, types)
            self._by_name[item["name"]] = cls

    def get(self, name: str) -> type[ContractRevertError]:
        try:
            return self._by_name[name]
        except KeyError:
            raise LedgerError(f"the ABI declares no error named {name!r}") from None

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def selectors(self) -> dict[str, bytes]:
        return {cls.error_name: sel for sel, (cls, _) in self._by_selector.items()}

    def decode(self, data: bytes) -> ContractRevertError:
        """The typed exception for revert ``data`` (never raises)."""
        from ledger.abi import abi_decode
        from ledger.address import to_checksum_address

        selector = data[:4]
        entry = self._by_selector.get(selector)
        if entry is not None:
            cls, types = entry
        elif selector in _BUILTIN:
            cls = _BUILTIN[selector]
            types = ["uint256"] if cls is PanicError else ["string"]
        else:
            return UnknownRevertError(data=data)
        try:
            values = abi_decode(types, data[4:]) if types else ()
        except Exception:  # eth-abi raises several unrelated exception types
            return UnknownRevertError(data=data)
        values = tuple(
            to_checksum_address(v) if t == "address" else v
            for t, v in zip(types, values, strict=True)
        )
        return cls(*values, data=data)


@lru_cache(maxsize=256)
def _error_class(
    name: str, signature: str, arg_names: tuple[str, ...]
) -> type[ContractRevertError]:
    # Cached by signature so every registry built from the same ABI shares classes.
    return type(
        name,
        (ContractRevertError,),
        {
            "error_name": name,
            "error_signature": signature,
            "arg_names": arg_names,
            "__doc__": f"Contract custom error ``{signature}``.",
            "__module__": __name__,
        },
    )


@lru_cache(maxsize=1)
def default_registry() -> ErrorRegistry:
    """The error registry of the packaged DataSafeLedger artifact and its companions'."""
    from ledger.artifacts import COMPANION_CONTRACTS, load_artifact

    abi = list(load_artifact().abi)
    for name in COMPANION_CONTRACTS:
        abi.extend(item for item in load_artifact(name).abi if item.get("type") == "error")
    return ErrorRegistry(abi)


def contract_error(name: str) -> type[ContractRevertError]:
    """The exception class of custom error ``name`` of the packaged ledger ABI."""
    return default_registry().get(name)


def decode_revert(data: bytes | str) -> ContractRevertError:
    """Decode revert data (bytes or 0x-hex) with the packaged ledger ABI."""
    raw = (
        bytes.fromhex(data[2:] if data.startswith("0x") else data)
        if isinstance(data, str)
        else data
    )
    return default_registry().decode(raw)
