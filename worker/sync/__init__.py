"""Incremental sync (issue 13): cursors kept between cycles and a case store, in the ledger
database, so a cycle reads and plans what changed or is due rather than everything.

- :mod:`worker.sync.schema`: the tables (created by the ledger's migrations).
- :mod:`worker.sync.store`: reading and writing them, one short transaction each.
- :mod:`worker.sync.step`: one vendor's changes since its cursor, into the store.
"""
