"""The runtime: CLI, settings, ledger, scheduler, one cycle (fetch -> plan -> execute)."""
