"""Approvals (V14) through the Python core against real PostgreSQL: policies, a request bound to the draft's version
and settings, approval by someone other than the requester, the gate on every activation, rejection, voiding by
an edit, break glass, and the events each step records."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

import test_v11_security as security
from walltrack_config import changes, events, lifecycle, schedules, webhooks
from walltrack_config.domains import DOMAINS
from walltrack_config.errors import (
    ApprovalRequired,
    InvalidTransition,
    InvalidValue,
    NotFound,
    StaleVersion,
    UnknownDomain,
)

make_role = security.make_role  # the fixture, shared


def draft(conn: psycopg.Connection, domain: str = "risk", **values: object) -> lifecycle.ConfigRow:
    made = lifecycle.clone(conn, domain, actor="alice", name=f"draft-{uuid.uuid4().hex[:8]}")
    return lifecycle.edit(conn, domain, made.id, made.version, values, actor="alice") if values else made


def kinds(conn: psycopg.Connection) -> list[str]:
    return [e.kind for e in events.events(conn)]


def test_policies_start_at_zero_and_an_admin_sets_them(conn):
    assert [(p.domain, p.approvals) for p in changes.policies(conn)] == [(d, 0) for d in DOMAINS]
    policy = changes.set_policy(conn, "risk", 2, actor="root", reason="four eyes")
    assert (policy.domain, policy.approvals, policy.updated_by) == ("risk", 2, "root")
    assert policy.updated_at is not None and json.dumps(policy.json())
    [event] = events.events(conn, kinds=["policy_changed"])
    assert (event.domain, event.actor, event.payload["domain"]) == ("risk", "root", "risk")
    for bad in (6, -1, True):
        with pytest.raises(InvalidValue):
            changes.set_policy(conn, "risk", bad, actor="root")
    with pytest.raises(UnknownDomain):
        changes.set_policy(conn, "nope", 1, actor="root")
    assert [p.approvals for p in changes.policies(conn) if p.domain == "risk"] == [2]


def test_a_draft_needs_an_approval_by_someone_else_before_it_goes_live(conn):
    changes.set_policy(conn, "risk", 1, actor="root")
    row = draft(conn, max_order_attempts=4)
    with pytest.raises(ApprovalRequired) as refused:
        lifecycle.activate(conn, "risk", row.id, expected_version=row.version, actor="alice")
    assert "risk needs 1 approval" in str(refused.value)
    assert (refused.value.required, refused.value.given, refused.value.request_id) == (1, 0, None)
    asked = changes.request(conn, "risk", row.id, row.version, actor="alice", reason="fewer retries")
    assert (asked.status, asked.required, asked.missing, asked.current, asked.draft_name) == (
        "pending", 1, 1, True, row.name)
    assert (asked.config_id, asked.version, asked.requested_by, asked.reason) == (row.id, row.version, "alice",
                                                                                   "fewer retries")
    approved = changes.approve(conn, asked.id, actor="bob", comment="looks right")
    assert (approved.approved_by, approved.missing, approved.status) == (("bob",), 0, "pending")
    assert [(d.approver, d.decision, d.comment) for d in approved.decisions] == [("bob", "approve", "looks right")]
    live = lifecycle.activate(conn, "risk", row.id, expected_version=row.version, actor="carol")
    assert live.status == "active"
    applied = changes.get(conn, asked.id)
    assert (applied.status, applied.current) == ("applied", False) and applied.decided_at is not None
    assert {"request_created", "request_approved", "request_applied", "activated"} <= set(kinds(conn))
    assert json.dumps(applied.json())


def test_the_requester_may_not_approve_and_a_second_approval_counts_once(conn):
    changes.set_policy(conn, "risk", 2, actor="root")
    row = draft(conn)
    asked = changes.request(conn, "risk", row.id, row.version, actor="alice", reason="r")
    with pytest.raises(InvalidTransition) as refused:
        changes.approve(conn, asked.id, actor="alice")
    assert "alice" in str(refused.value) or "requester" in str(refused.value)
    changes.approve(conn, asked.id, actor="bob")
    again = changes.approve(conn, asked.id, actor="bob")
    assert (again.approved_by, again.missing) == (("bob",), 1)
    with pytest.raises(ApprovalRequired) as short:
        lifecycle.activate(conn, "risk", row.id, expected_version=row.version, actor="bob")
    assert (short.value.required, short.value.given, short.value.request_id) == (2, 1, str(asked.id))
    assert changes.approve(conn, asked.id, actor="carol").missing == 0
    lifecycle.activate(conn, "risk", row.id, expected_version=row.version, actor="bob")


def test_a_rejection_needs_a_comment_and_closes_the_request(conn):
    changes.set_policy(conn, "risk", 1, actor="root")
    row = draft(conn)
    asked = changes.request(conn, "risk", row.id, row.version, actor="alice", reason="r")
    with pytest.raises(InvalidValue):
        changes.reject(conn, asked.id, actor="bob", comment=" ")
    rejected = changes.reject(conn, asked.id, actor="bob", comment="too risky")
    assert rejected.status == "rejected" and rejected.decisions[0].decision == "reject"
    with pytest.raises(InvalidTransition):
        changes.approve(conn, asked.id, actor="carol")
    with pytest.raises(ApprovalRequired):
        lifecycle.activate(conn, "risk", row.id, expected_version=row.version, actor="bob")
    assert "request_rejected" in kinds(conn)


def test_editing_the_draft_voids_its_request(conn):
    changes.set_policy(conn, "risk", 1, actor="root")
    row = draft(conn)
    asked = changes.request(conn, "risk", row.id, row.version, actor="alice", reason="r")
    changes.approve(conn, asked.id, actor="bob")
    edited = lifecycle.edit(conn, "risk", row.id, row.version, {"max_order_attempts": 5}, actor="alice")
    voided = changes.get(conn, asked.id)
    assert (voided.status, voided.current) == ("void", False)
    with pytest.raises(ApprovalRequired):
        lifecycle.activate(conn, "risk", row.id, expected_version=edited.version, actor="bob")
    assert "request_voided" in kinds(conn)
    with pytest.raises(StaleVersion):
        changes.request(conn, "risk", row.id, row.version, actor="alice", reason="the old version")
    fresh = changes.request(conn, "risk", row.id, edited.version, actor="alice", reason="again")
    with pytest.raises(InvalidTransition):  # one pending request per draft
        changes.request(conn, "risk", row.id, edited.version, actor="alice", reason="twice")
    assert [r.id for r in changes.requests(conn)] == [fresh.id]


def test_requests_are_found_by_prefix_and_listed_by_domain_and_status(conn):
    risk, exit_ = draft(conn, "risk"), draft(conn, "exit")
    first = changes.request(conn, "risk", risk.id, risk.version, actor="alice", reason="r")
    second = changes.request(conn, "exit", exit_.id, exit_.version, actor="alice", reason="e")
    assert changes.get(conn, str(first.id)[:8]) == first
    assert changes.get(conn, str(first.id).upper()) == first
    for ref in ("abc", str(uuid.uuid4()), "not-an-id!"):
        with pytest.raises(NotFound):
            changes.get(conn, ref)
    assert [r.id for r in changes.requests(conn)] == [second.id, first.id]
    assert [r.id for r in changes.requests(conn, domain="exit")] == [second.id]
    changes.reject(conn, second.id, actor="bob", comment="no")
    assert [r.id for r in changes.requests(conn)] == [first.id]
    assert [r.id for r in changes.requests(conn, status=None)] == [second.id, first.id]
    assert [r.id for r in changes.requests(conn, status="rejected", limit=1)] == [second.id]
    with pytest.raises(InvalidValue):
        changes.requests(conn, status="open")


def test_a_request_refuses_a_blank_reason_and_a_row_that_is_not_a_draft(conn):
    row = draft(conn)
    with pytest.raises(InvalidValue):
        changes.request(conn, "risk", row.id, row.version, actor="alice", reason="  ")
    active = lifecycle.active_row(conn, "risk")
    with pytest.raises(InvalidTransition):
        changes.request(conn, "risk", active.id, active.version, actor="alice", reason="r")
    with pytest.raises(NotFound):
        changes.request(conn, "risk", uuid.uuid4(), 1, actor="alice", reason="r")
    assert changes.requests(conn, status=None) == []


def test_break_glass_activates_without_approval_and_says_so(conn):
    changes.set_policy(conn, "risk", 3, actor="root")
    row = draft(conn)
    with pytest.raises(InvalidValue):
        changes.break_glass(conn, "risk", row.id, row.version, actor="root", reason=" ")
    assert changes.break_glass(conn, "risk", row.id, row.version, actor="root", reason="exchange down") == row.id
    assert lifecycle.get(conn, "risk", row.id).status == "active"
    [event] = events.events(conn, kinds=["break_glass"])
    assert event.actor == "root" and event.domain == "risk"
    done = lifecycle.last_activation(conn, "risk", row.id)
    assert done is not None and done.reason == "BREAK GLASS: exchange down"


def test_events_follow_in_order_after_a_seq(conn):
    for domain in ("risk", "exit", "api"):
        changes.set_policy(conn, domain, 1, actor="root")
    every = events.events(conn)
    assert [e.domain for e in every] == ["risk", "exit", "api"]
    assert [e.domain for e in events.events(conn, after=every[0].seq)] == ["exit", "api"]
    assert [e.domain for e in events.events(conn, limit=1)] == ["api"]
    assert [e.domain for e in events.events(conn, domain="exit")] == ["exit"]
    assert events.events(conn, kinds=["activated"]) == []
    assert json.dumps([e.json() for e in every])
    assert events.note_stale(conn) == 0


def test_a_role_that_reads_the_config_reads_requests_schedules_and_events_not_webhooks(conn, migrated_db, make_role):
    reader = make_role(migrated_db, prefix="wt_reader")
    tables = sql.SQL(", ").join(sql.Identifier("walltrack", f"{d}_config") for d in DOMAINS)
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA walltrack TO {}").format(sql.Identifier(reader)))
    conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(tables, sql.Identifier(reader)))
    row = draft(conn)
    asked = changes.request(conn, "risk", row.id, row.version, actor="alice", reason="r")
    schedules.schedule(conn, "risk", row.id, row.version, datetime.now(UTC) + timedelta(hours=1), actor="alice",
                       reason="r")
    with security.as_role(migrated_db, reader) as theirs:
        assert changes.requests(theirs) == [asked]  # `current` too: the settings hash is everyone's to compute
        assert [s.config_id for s in schedules.schedules(theirs)] == [row.id]
        assert {"request_created", "schedule_created"} <= {e.kind for e in events.events(theirs)}
        assert [p.approvals for p in changes.policies(theirs)] == [0] * len(DOMAINS)
        assert webhooks.deliveries(theirs) == []
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            webhooks.webhooks(theirs)  # they hold secrets
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            changes.set_policy(theirs, "risk", 0, actor="mallory")
