"""Shared by the lease tests: a PostgreSQL engine confined to a schema of its own.

Each test gets a fresh schema (``schema_translate_map``), so lease tests can run alongside other
suites - or other copies of themselves - on the shared ``test`` database without clashing.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from worker.runtime.leases import PostgresLeases

POSTGRES_URL = os.environ.get(
    "FOLLOWUP_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def in_schema(engine: sa.Engine, schema: str) -> sa.Engine:
    """The same engine, with every unqualified table living in ``schema``."""
    return engine.execution_options(schema_translate_map={None: schema})


def reachable_postgres(**engine_options: Any) -> sa.Engine:
    """An engine on the test database; the test is skipped when PostgreSQL is unreachable."""
    engine = sa.create_engine(POSTGRES_URL, **engine_options)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as exc:
        engine.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc.orig}")
    return engine


@contextmanager
def lease_schema() -> Iterator[tuple[sa.Engine, str]]:
    """A schema with empty lease tables, dropped afterwards; skips if PostgreSQL is unreachable."""
    engine = reachable_postgres(pool_size=8)
    schema = f"leases_{secrets.token_hex(4)}"
    with engine.begin() as conn:
        conn.execute(sa.schema.CreateSchema(schema))
    scoped = in_schema(engine, schema)
    PostgresLeases(scoped).create_tables()
    try:
        yield scoped, schema
    finally:
        with engine.begin() as conn:
            conn.execute(sa.schema.DropSchema(schema, cascade=True))
        engine.dispose()


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """A fresh schema and a URL whose connections live in it (``search_path``), so a ledger,
    leases and child processes can share it by URL alone; dropped afterwards."""
    admin = reachable_postgres()
    schema = f"once_{secrets.token_hex(4)}"
    with admin.begin() as conn:
        conn.execute(sa.schema.CreateSchema(schema))
    url = sa.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.schema.DropSchema(schema, cascade=True))
        admin.dispose()
