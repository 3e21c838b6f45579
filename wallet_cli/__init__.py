"""DataSafe Ledger: wallet_cli package."""
