"""The exactly-once delivery path: what may be written (decisions), the writing (executor) and
the record that makes a write happen once (ledger)."""
