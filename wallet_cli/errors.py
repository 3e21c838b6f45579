"""Typed failures of the wallet, all under :class:`WalletError`.

Each class carries the process exit code the CLI ends with, so a script can tell
"you typed something wrong" from "the ledger said no" from "nobody answered"::

    WalletError                  exit 1  (unexpected)
    ├── UserError                exit 2  bad input, wrong passphrase, unknown name/field
    ├── RefusedError             exit 3  the service or the chain refused (with its reason)
    └── UnreachableError         exit 4  the service or the RPC endpoint did not answer
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USER = 2
EXIT_REFUSED = 3
EXIT_UNREACHABLE = 4


class WalletError(Exception):
    """Root of every error the wallet raises; ``code`` is a stable slug for ``--json``."""

    exit_code = EXIT_UNEXPECTED
    code = "wallet_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class UserError(WalletError):
    """The person asked for something that cannot be done as asked; nothing was changed."""

    exit_code = EXIT_USER
    code = "user_error"


class WrongPassphraseError(UserError):
    code = "wrong_passphrase"


class RefusedError(WalletError):
    """The service or the chain refused; ``code`` is the service's problem slug or reason."""

    exit_code = EXIT_REFUSED
    code = "refused"


class UnreachableError(WalletError):
    """The service or the chain could not be reached."""

    exit_code = EXIT_UNREACHABLE
    code = "unreachable"
