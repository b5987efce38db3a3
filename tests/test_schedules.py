"""Scheduled activation (V14) through the Python core against real PostgreSQL: a draft goes live once its time
has come, exactly once, at the version scheduled; cancelled, missed past the grace, failed when the activation is
refused (approvals missing), cancelled by an edit of the draft."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from walltrack_config import changes, events, lifecycle, schedules
from walltrack_config.errors import InvalidTransition, InvalidValue, NotFound, StaleVersion


def draft(conn: psycopg.Connection, domain: str = "risk") -> lifecycle.ConfigRow:
    return lifecycle.clone(conn, domain, actor="alice", name=f"draft-{uuid.uuid4().hex[:8]}")


def soon(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def wait_until(at: datetime) -> None:
    time.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()) + 0.05)


def test_a_schedule_runs_once_its_time_has_come(conn):
    row = draft(conn)
    at = soon(0.5)
    made = schedules.schedule(conn, "risk", row.id, row.version, at, actor="alice", reason="night switch")
    assert (made.status, made.config_id, made.version, made.created_by, made.reason, made.draft_name) == (
        "pending", row.id, row.version, "alice", "night switch", row.name)
    assert made.run_at == at
    assert schedules.next_due(conn) == made.run_at
    assert schedules.run_due(conn) == []  # not yet
    wait_until(at)
    [ran] = schedules.run_due(conn, runner="cron")
    assert (ran.id, ran.domain, ran.status) == (made.id, "risk", "done")
    assert schedules.run_due(conn) == []  # once
    assert lifecycle.get(conn, "risk", row.id).status == "active"
    done = schedules.get(conn, made.id)
    assert done.status == "done" and done.finished_at is not None
    assert schedules.next_due(conn) is None
    assert {"schedule_created", "schedule_executed", "activated"} <= {e.kind for e in events.events(conn)}
    assert json.dumps(done.json()) and json.dumps(ran.json())


def test_a_cancelled_schedule_never_runs(conn):
    row = draft(conn)
    at = soon(0.3)
    made = schedules.schedule(conn, "risk", row.id, row.version, at, actor="alice", reason="r")
    cancelled = schedules.cancel(conn, str(made.id)[:8], actor="bob", reason="not tonight")
    assert cancelled.status == "cancelled" and cancelled.finished_at is not None
    with pytest.raises(InvalidTransition):
        schedules.cancel(conn, made.id, actor="bob")
    wait_until(at)
    assert schedules.run_due(conn) == []
    assert lifecycle.get(conn, "risk", row.id).status == "draft"
    assert "schedule_cancelled" in {e.kind for e in events.events(conn)}


def test_a_schedule_past_the_grace_is_missed_not_run_late(conn):
    row = draft(conn)
    at = soon(0.2)
    made = schedules.schedule(conn, "risk", row.id, row.version, at, actor="alice", reason="r")
    wait_until(at + timedelta(seconds=0.3))
    [ran] = schedules.run_due(conn, grace=timedelta(milliseconds=100))
    assert (ran.id, ran.status) == (made.id, "missed")
    assert schedules.get(conn, made.id).status == "missed"
    assert lifecycle.get(conn, "risk", row.id).status == "draft"
    assert "schedule_missed" in {e.kind for e in events.events(conn)}


def test_a_schedule_without_the_approvals_it_needs_fails_with_the_reason(conn):
    changes.set_policy(conn, "risk", 1, actor="root")
    row = draft(conn)
    at = soon(0.2)
    made = schedules.schedule(conn, "risk", row.id, row.version, at, actor="alice", reason="r")
    wait_until(at)
    [ran] = schedules.run_due(conn)
    assert ran.status == "failed" and "approval" in (ran.outcome or "")
    failed = schedules.get(conn, made.id)
    assert failed.status == "failed" and failed.outcome == ran.outcome
    assert lifecycle.get(conn, "risk", row.id).status == "draft"


def test_a_schedule_with_an_approved_request_runs(conn):
    changes.set_policy(conn, "risk", 1, actor="root")
    row = draft(conn)
    asked = changes.request(conn, "risk", row.id, row.version, actor="alice", reason="r")
    changes.approve(conn, asked.id, actor="bob")
    at = soon(0.2)
    schedules.schedule(conn, "risk", row.id, row.version, at, actor="alice", reason="r")
    wait_until(at)
    assert [r.status for r in schedules.run_due(conn)] == ["done"]
    assert changes.get(conn, asked.id).status == "applied"


def test_editing_the_draft_cancels_its_schedule(conn):
    row = draft(conn)
    made = schedules.schedule(conn, "risk", row.id, row.version, soon(60), actor="alice", reason="r")
    lifecycle.edit(conn, "risk", row.id, row.version, {"max_order_attempts": 5}, actor="alice")
    edited = schedules.get(conn, made.id)
    assert edited.status == "cancelled" and "edited" in (edited.outcome or "")
    assert schedules.schedules(conn) == []


def test_a_schedule_refuses_a_naive_or_past_time_and_a_stale_version(conn):
    row = draft(conn)
    with pytest.raises(InvalidValue):
        schedules.schedule(conn, "risk", row.id, row.version, datetime.now() + timedelta(hours=1),
                           actor="alice", reason="r")
    for at in (soon(-60), soon(400 * 86400)):
        with pytest.raises(InvalidValue):
            schedules.schedule(conn, "risk", row.id, row.version, at, actor="alice", reason="r")
    with pytest.raises(StaleVersion):
        schedules.schedule(conn, "risk", row.id, row.version + 1, soon(60), actor="alice", reason="r")
    with pytest.raises(InvalidValue):
        schedules.schedule(conn, "risk", row.id, row.version, soon(60), actor="alice", reason="")
    assert schedules.schedules(conn, status=None) == []


def test_schedules_are_listed_pending_soonest_first_then_the_rest(conn):
    a, b, c = draft(conn), draft(conn, "exit"), draft(conn)
    late = schedules.schedule(conn, "risk", a.id, a.version, soon(120), actor="alice", reason="r")
    early = schedules.schedule(conn, "exit", b.id, b.version, soon(60), actor="alice", reason="r")
    gone = schedules.schedule(conn, "risk", c.id, c.version, soon(90), actor="alice", reason="r")
    schedules.cancel(conn, gone.id, actor="bob")
    assert [s.id for s in schedules.schedules(conn)] == [early.id, late.id]
    assert [s.id for s in schedules.schedules(conn, status=None)] == [early.id, late.id, gone.id]
    assert [s.id for s in schedules.schedules(conn, domain="risk", status=None)] == [late.id, gone.id]
    assert [s.id for s in schedules.schedules(conn, status="cancelled")] == [gone.id]
    assert schedules.next_due(conn) == early.run_at
    with pytest.raises(NotFound):
        schedules.get(conn, "12345")
    with pytest.raises(InvalidValue):
        schedules.schedules(conn, status="running")


def test_runners_at_once_run_a_schedule_once(conn, migrated_db):
    rows = [draft(conn, domain) for domain in ("risk", "exit", "api")]
    at = soon(0.3)
    made = {schedules.schedule(conn, r.domain, r.id, r.version, at, actor="alice", reason="r").id for r in rows}
    wait_until(at)
    start, ran = threading.Barrier(4), []

    def run() -> None:
        with psycopg.connect(migrated_db, autocommit=True) as own:
            start.wait()
            ran.extend(schedules.run_due(own, runner="cron"))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(str(r.id) for r in ran) == sorted(str(i) for i in made)
    assert {r.status for r in ran} == {"done"}
