"""Store queries, one module per domain (runs, trials, history, transfer)."""
