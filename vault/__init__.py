"""DataSafe Ledger vault: client-side sealing, key packages and ciphertext storage.

The vault never sees plaintext or private keys: issuers seal to the owner's
public key, owners build key packages for grantees, the custodian stores and
serves ciphertext only. Modules:

* :mod:`vault.keys` — :class:`~vault.keys.Suite`, :class:`~vault.keys.EncryptionKeyPair`,
  :class:`~vault.keys.PublicEncryptionKey` (``to_bytes``/``from_bytes``/``digest``),
  :class:`~vault.keys.Keyring` (rotation).
* :mod:`vault.sealing` — ``seal_asset``, ``open_asset``, ``rewrap_asset``,
  :class:`~vault.sealing.SealedAsset`.
* :mod:`vault.packages` — ``build_key_package``, ``build_disclosure``,
  ``open_disclosure``, ``open_key_package``, ``rewrap_key_package``,
  :class:`~vault.packages.KeyPackage`, :class:`~vault.packages.Disclosure`,
  :class:`~vault.packages.Anchor`.
* :mod:`vault.merkle` — commitments, root, proofs.
* :mod:`vault.wire` — canonical CBOR with version checks and size limits.
* :mod:`vault.store` — :class:`~vault.store.BlobStore` (content-addressed, crash-safe blobs).
* :mod:`vault.errors` — :class:`~vault.errors.VaultError` and its subclasses.
* :mod:`vault.settings` — ``VaultSettings`` (``DATASAFE_VAULT_*``), ``get_settings()``.

Byte layouts and the Merkle construction: docs/wire-format.md.
"""

from vault.errors import VaultError

__all__ = ["VaultError"]
