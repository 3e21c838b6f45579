"""DataSafe Ledger: api package."""
