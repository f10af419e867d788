"""Idempotency keys: the marker every write carries (DESIGN.md, "Exactly once")."""

from policies.model import idempotency_key, marker_tag


def test_same_step_of_same_sequence_gives_the_same_key() -> None:
    first = idempotency_key("general-inquiry", "zendesk:42", 2, "2026-11-02T09:00:00+00:00")
    again = idempotency_key("general-inquiry", "zendesk:42", 2, "2026-11-02T09:00:00+00:00")
    assert first == again


def test_a_restarted_sequence_gets_new_keys() -> None:
    before_reply = idempotency_key("general-inquiry", "zendesk:42", 2, "2026-11-02T09:00:00+00:00")
    after_reply = idempotency_key("general-inquiry", "zendesk:42", 2, "2026-11-05T14:30:00+00:00")
    assert before_reply != after_reply


def test_key_differs_by_policy_case_and_step() -> None:
    base = ("general-inquiry", "zendesk:42", 2, "c")
    variants = [
        ("refund-request", "zendesk:42", 2, "c"),
        ("general-inquiry", "zendesk:43", 2, "c"),
        ("general-inquiry", "zendesk:42", 3, "c"),
    ]
    keys = {idempotency_key(*v) for v in variants}
    assert idempotency_key(*base) not in keys
    assert len(keys) == 3


def test_marker_is_a_searchable_token() -> None:
    key = idempotency_key("p", "zendesk:1", 1, "c")
    assert marker_tag(key) == f"fw-{key}"
    assert " " not in marker_tag(key)
