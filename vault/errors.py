"""Typed failures of the vault, all under :class:`VaultError`.

Library exceptions (``cryptography.exceptions.InvalidTag``, ``ValueError`` from key
loaders, ``cbor2`` decode errors, SQLAlchemy errors) never leave this package
untranslated: callers catch ``VaultError`` (or a subclass) and nothing else.

Hierarchy::

    VaultError
    ├── MalformedInputError            bytes that do not parse as what they claim to be
    │   ├── UnsupportedVersionError    a known structure with a version we do not speak
    │   └── UnknownSuiteError          a suite identifier we do not know
    ├── InputTooLargeError             over an explicit size limit (checked before parsing)
    ├── DecryptionError                an AEAD or HPKE open failed
    │   ├── WrongKeyError              no key of ours is the recipient / grant id mismatch
    │   └── TamperedCiphertextError    recipient matches but authentication failed
    ├── TamperedProofError             commitment, Merkle proof, root or digest mismatch
    ├── FieldError                     unknown / duplicate / ungranted field name
    └── StoreError                     storage failures
        ├── NotFoundError
        ├── ConflictError              same id stored with different content
        └── BlobCorruptedError         a blob whose bytes do not match its digest
"""

from __future__ import annotations


class VaultError(Exception):
    """Root of every error raised by :mod:`vault`."""


class MalformedInputError(VaultError):
    """Input bytes or values that do not have the expected structure."""


class UnsupportedVersionError(MalformedInputError):
    """A wire structure or key encoding carries a version this code does not speak."""


class UnknownSuiteError(MalformedInputError):
    """A suite identifier that is not one of :class:`vault.keys.Suite`."""


class InputTooLargeError(VaultError):
    """Input exceeds an explicit size limit (see :class:`vault.limits.Limits`)."""


class DecryptionError(VaultError):
    """An HPKE or AES-GCM open failed."""


class WrongKeyError(DecryptionError):
    """None of the caller's keys is the recipient (or the context does not match)."""


class TamperedCiphertextError(DecryptionError):
    """The recipient key matches but the ciphertext does not authenticate."""


class TamperedProofError(VaultError):
    """A commitment, Merkle proof, root or ciphertext digest does not verify."""


class FieldError(VaultError):
    """A field name that is unknown, duplicated, invalid or not granted."""


class StoreError(VaultError):
    """The blob store or the metadata database failed."""


class NotFoundError(StoreError):
    """No such asset, package or blob."""


class ConflictError(StoreError):
    """An id that is already stored with different content."""


class BlobCorruptedError(StoreError):
    """A blob whose bytes do not hash to its name; it is never served."""


class KeyProofError(VaultError):
    """A proof of possession of an encryption key is missing, malformed or does not verify."""
