"""A stand-alone replica for the takeover test: keeps its share of the leases until killed.

    python tests/integration/leases_replica.py URL SCHEMA REPLICA_ID TENANTS TTL_SECONDS

SIGTERM hands its tenants back (graceful); SIGKILL leaves them to expire, which is the point.
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import timedelta

import sqlalchemy as sa

from tests.integration.leases_support import in_schema
from worker.runtime.leases import LeaseKeeper, PostgresLeases


def main(url: str, schema: str, replica_id: str, tenants: int, ttl_seconds: float) -> None:
    engine = in_schema(sa.create_engine(url, pool_size=1), schema)
    keeper = LeaseKeeper(PostgresLeases(engine), replica_id, timedelta(seconds=ttl_seconds))
    tenant_ids = [f"tenant-{n:02d}" for n in range(tenants)]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set():
        keeper.refresh(tenant_ids)
        stop.wait(keeper.next_refresh_in().total_seconds())
    keeper.shutdown()


if __name__ == "__main__":
    url, schema, replica_id, tenants, ttl = sys.argv[1:]
    main(url, schema, replica_id, int(tenants), float(ttl))
