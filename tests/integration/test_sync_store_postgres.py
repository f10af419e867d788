"""The case store's scenarios (tests/unit/test_worker_sync.py) on real PostgreSQL, the
ledger database replicas share: the same tests, collected here with a PostgreSQL ledger."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.leases_support import postgres_schema_url
from tests.unit import test_worker_sync as on_sqlite
from worker.delivery.ledger import Ledger

pytestmark = pytest.mark.postgres


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    with postgres_schema_url() as url:
        opened = Ledger.open(url)
        yield opened
        opened.close()


test_reads_only_the_changes = (
    on_sqlite.test_a_second_cycle_right_after_the_first_reads_only_the_changes
)
test_reply_stops = on_sqlite.test_a_customer_reply_read_in_between_stops_a_pending_follow_up
test_due_index = on_sqlite.test_a_case_due_in_two_days_is_planned_only_when_due
test_expired_cursor = on_sqlite.test_an_expired_cursor_is_read_in_full_logged_and_counted
test_kill_before_cursor = on_sqlite.test_changes_whose_cursor_could_not_be_stored_are_read_again
test_gone = on_sqlite.test_a_case_gone_from_the_vendor_leaves_the_store
test_account_totals = (
    on_sqlite.test_a_change_among_an_accounts_cases_replans_the_kinds_reading_its_totals
)
test_changed_account = on_sqlite.test_a_changed_account_replans_its_cases
