"""DataSafe Ledger: ledger package."""
