"""Typed failures of the wallet, all under :class:`WalletError`.

Each class carries the process exit code the CLI ends with, so a script can tell
"you typed something wrong" from "the ledger said no" from "nobody answered"::

    WalletError                  exit 1  (unexpected)
    ├── UserError                exit 2  bad input, wrong passphrase, unknown name/field
    ├── RefusedError             exit 3  the service or the chain refused (with its reason)
    ├── UnreachableError         exit 4  the service or the RPC endpoint did not answer
    ├── DeploymentPinError       exit 5  the chain is not the pinned deployment (or none is pinned)
    ├── ContradictedError        exit 6  the chain contradicts what the service served (a lie)
    └── NotConfirmedError        exit 7  the service reported an action the chain does not show
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USER = 2
EXIT_REFUSED = 3
EXIT_UNREACHABLE = 4
EXIT_DEPLOYMENT = 5
EXIT_CONTRADICTED = 6
EXIT_NOT_CONFIRMED = 7


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


class DeploymentPinError(WalletError):
    """The RPC chain or the service's ledger is not the deployment this profile pinned."""

    exit_code = EXIT_DEPLOYMENT
    code = "deployment_mismatch"


class ContradictedError(WalletError):
    """What the service served is contradicted by the chain the wallet read itself."""

    exit_code = EXIT_CONTRADICTED
    code = "service_mismatch"


class NotConfirmedError(WalletError):
    """The service said it was done; the chain does not show it. Nothing is reported done."""

    exit_code = EXIT_NOT_CONFIRMED
    code = "not_confirmed"
