"""V14 in plain SQL: the approval gate on draft -> active that no path goes around (plain UPDATE, activate_config,
schedules), requests voided by an edit, approvals by others than the requester and counted once, rejections,
break glass (owner only, with a reason, recorded), the change tables written by nobody but their functions,
schedules run exactly once by concurrent runners, cancelled by an edit, missed after the grace, rollbacks not
gated, events for every action and webhook deliveries for their subscribers, retries up to 8 attempts, and
V14/U14 round-trip catalog-exact, with psql too."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql

import test_v11_security as security
from conftest import catalog, psql_file
from test_v11_security import TABLES, as_role, config_rows, grant, grant_editor
from walltrack_config import lifecycle, schema
from walltrack_config.errors import ApprovalRequired
from walltrack_config.migrate import plan as migrations

make_role = security.make_role  # the fixture, shared
V14 = next(m for m in migrations.discover() if m.version == 14)
SECRET = "s3cret-s3cret-s3cret"
CHANGE_TABLES = (
    "walltrack.approval_policies",
    "walltrack.change_requests",
    "walltrack.change_approvals",
    "walltrack.break_glass_grants",
    "walltrack.activation_schedules",
    "walltrack.change_events",
    "walltrack.webhook_deliveries",
)


# -- helpers ----------------------------------------------------------------------------------------------------------


def draft(conn: psycopg.Connection, domain: str = "risk", actor: str = "alice") -> tuple[UUID, int]:
    """A new draft of the domain's active row: (id, version)."""
    row_id = conn.execute(
        sql.SQL("SELECT walltrack.clone_config(%s, (SELECT id FROM {} WHERE status = 'active'), %s, %s)").format(
            sql.Identifier("walltrack", f"{domain}_config")
        ),
        [domain, f"d-{uuid.uuid4().hex[:8]}", actor],
    ).fetchone()[0]
    return row_id, version_of(conn, row_id, domain)


def version_of(conn: psycopg.Connection, row_id: UUID, domain: str = "risk") -> int:
    return conn.execute(
        sql.SQL("SELECT version FROM {} WHERE id = %s").format(sql.Identifier("walltrack", f"{domain}_config")),
        [row_id],
    ).fetchone()[0]


def status_of(conn: psycopg.Connection, row_id: UUID, domain: str = "risk") -> str:
    return conn.execute(
        sql.SQL("SELECT status::text FROM {} WHERE id = %s").format(sql.Identifier("walltrack", f"{domain}_config")),
        [row_id],
    ).fetchone()[0]


def edit(conn: psycopg.Connection, row_id: UUID, version: int, actor: str = "alice") -> int:
    return conn.execute(
        "SELECT walltrack.edit_config('risk', %s, %s, '{\"max_drawdown_pct\": 12}', %s)", [row_id, version, actor]
    ).fetchone()[0]


def set_policy(conn: psycopg.Connection, approvals: int, domain: str = "risk") -> None:
    conn.execute("SELECT walltrack.set_approval_policy(%s, %s, 'root', 'tests')", [domain, approvals])


def request(conn: psycopg.Connection, row_id: UUID, version: int, actor: str = "alice") -> UUID:
    return conn.execute(
        "SELECT walltrack.request_activation('risk', %s, %s, %s, 'please')", [row_id, version, actor]
    ).fetchone()[0]


def approve(conn: psycopg.Connection, request_id: UUID, actor: str) -> int:
    return conn.execute("SELECT walltrack.approve_request(%s, %s, 'ok')", [request_id, actor]).fetchone()[0]


def activate(conn: psycopg.Connection, row_id: UUID, version: int, actor: str = "alice") -> UUID:
    return conn.execute(
        "SELECT walltrack.activate_config('risk', %s, %s, %s, 'go')", [row_id, version, actor]
    ).fetchone()[0]


def request_status(conn: psycopg.Connection, request_id: UUID) -> str:
    return conn.execute("SELECT status FROM walltrack.change_requests WHERE id = %s", [request_id]).fetchone()[0]


def kinds(conn: psycopg.Connection, after: int = 0) -> list[str]:
    return [k for (k,) in conn.execute("SELECT kind FROM walltrack.change_events WHERE seq > %s ORDER BY seq", [after])]


def last_seq(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT coalesce(max(seq), 0) FROM walltrack.change_events").fetchone()[0]


def state(conn: psycopg.Connection) -> tuple:
    """Every config row, the activations, and every change table: what a refusal must leave as it was."""
    rows = {t: conn.execute(f"SELECT to_jsonb(t) FROM {t} t ORDER BY id").fetchall() for t in TABLES}
    activations = conn.execute("SELECT to_jsonb(a) FROM walltrack.config_activations a ORDER BY seq").fetchall()
    changes = {t: conn.execute(f"SELECT to_jsonb(t)::text FROM {t} t ORDER BY 1").fetchall() for t in CHANGE_TABLES}
    return rows, activations, changes


def refused(conn: psycopg.Connection, statement: str, params: Any = None, *, sqlstate: str, match: str = "",
            column: str | None = None) -> psycopg.Error:
    before = state(conn)
    with pytest.raises(psycopg.Error) as err, conn.transaction():
        conn.execute(statement, params)
    assert err.value.sqlstate == sqlstate, err.value
    assert match in str(err.value), err.value
    if column is not None:
        assert err.value.diag.column_name == column
    assert state(conn) == before
    return err.value


def schedule(conn: psycopg.Connection, row_id: UUID, version: int, run_at: str = "now()") -> UUID:
    return conn.execute(
        f"SELECT walltrack.schedule_activation('risk', %s, %s, {run_at}, 'alice', 'at night')", [row_id, version]
    ).fetchone()[0]


def schedule_row(conn: psycopg.Connection, schedule_id: UUID) -> tuple[str, str | None]:
    return conn.execute(
        "SELECT status, outcome FROM walltrack.activation_schedules WHERE id = %s", [schedule_id]
    ).fetchone()


def add_webhook(conn: psycopg.Connection, name: str, events: list[str]) -> UUID:
    return conn.execute(
        "SELECT walltrack.add_webhook(%s, 'https://hooks.example/x', %s, %s, 'json', 'root')", [name, events, SECRET]
    ).fetchone()[0]


def events_of(conn: psycopg.Connection, after: int = 0) -> list[tuple[str, UUID | None]]:
    """(kind, subject) of the events after a seq."""
    return conn.execute("SELECT kind, subject FROM walltrack.change_events WHERE seq > %s ORDER BY seq",
                        [after]).fetchall()


def reader_role(conn: psycopg.Connection, url: str, make_role) -> str:
    """A role that may read the config tables (as bots do) and nothing else."""
    role = make_role(url, prefix="wt_bot")
    grant(conn, role, "GRANT USAGE ON SCHEMA walltrack TO {role}")
    grant(conn, role, f"GRANT SELECT ON {', '.join(TABLES)} TO {{role}}")
    return role


def wait_for_lock(conn: psycopg.Connection, pid: int, timeout: float = 10.0) -> None:
    """Until the backend `pid` waits for a lock."""
    deadline = time.monotonic() + timeout
    while conn.execute("SELECT wait_event_type IS DISTINCT FROM 'Lock' FROM pg_stat_activity WHERE pid = %s",
                       [pid]).fetchone()[0]:
        assert time.monotonic() < deadline, f"backend {pid} never waited for a lock"
        time.sleep(0.02)


def in_thread(target) -> tuple[threading.Thread, list[Any]]:
    """`target()` started in a thread; the list gets what it returned or raised."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(target())
        except BaseException as exc:  # reported by the caller
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


# -- the gate ---------------------------------------------------------------------------------------------------------


def test_plain_sql_and_activate_config_are_refused_without_an_approved_request(conn):
    set_policy(conn, 1)
    row_id, version = draft(conn)
    err = refused(conn, "SELECT walltrack.activate_config('risk', %s, %s, 'alice')", [row_id, version],
                  sqlstate="WT005", match="risk needs 1 approval before draft")
    assert f"no approved request for v{version}" in str(err)
    assert "walltrack-config request risk" in (err.diag.message_hint or "")
    for statements in (
        ["UPDATE walltrack.risk_config SET status = 'archived' WHERE status = 'active'",
         "UPDATE walltrack.risk_config SET status = 'active' WHERE id = %s"],
        ["UPDATE walltrack.risk_config SET status = 'active' WHERE id = %s"],
    ):
        before = state(conn)
        with pytest.raises(psycopg.Error) as caught, conn.transaction():
            for statement in statements:
                conn.execute(statement, [row_id] if "%s" in statement else None)
        assert caught.value.sqlstate == "WT005"
        assert state(conn) == before
    # A pending request without enough approvals: the message says how many are given, and which request.
    request_id = request(conn, row_id, version)
    err = refused(conn, "SELECT walltrack.activate_config('risk', %s, %s, 'alice')", [row_id, version],
                  sqlstate="WT005", match=f"0 given (request {str(request_id)[:8]} pending)")
    assert str(request_id) in (err.diag.message_hint or "")
    assert status_of(conn, row_id) == "draft"


def test_the_library_raises_approval_required_with_what_is_missing(conn):
    set_policy(conn, 2)
    row_id, version = draft(conn)
    request_id = request(conn, row_id, version)
    approve(conn, request_id, "bob")
    with pytest.raises(ApprovalRequired) as err:
        lifecycle.activate(conn, "risk", row_id, expected_version=version, actor="alice")
    assert (err.value.required, err.value.given, err.value.request_id) == (2, 1, str(request_id))
    assert err.value.http_status == 409 and err.value.exit_code == 1


def test_an_approved_request_lets_the_draft_go_live_and_is_applied(conn):
    set_policy(conn, 1)
    row_id, version = draft(conn)
    request_id = request(conn, row_id, version)
    assert approve(conn, request_id, "bob") == 1
    before = last_seq(conn)
    assert activate(conn, row_id, version) == row_id
    assert status_of(conn, row_id) == "active"
    status, decided = conn.execute(
        "SELECT status, decided_at FROM walltrack.change_requests WHERE id = %s", [request_id]
    ).fetchone()
    assert status == "applied" and decided is not None
    assert kinds(conn, before) == ["activated", "request_applied"]


def test_with_no_policy_nothing_is_gated(conn):
    row_id, version = draft(conn)
    activate(conn, row_id, version)
    assert status_of(conn, row_id) == "active"
    none = conn.execute("SELECT count(*) FROM walltrack.approval_policies WHERE approvals_required = 0").fetchone()
    assert none == (7,)


def test_an_edit_after_approval_voids_the_request_and_a_new_one_is_needed(conn):
    set_policy(conn, 1)
    row_id, version = draft(conn)
    request_id = request(conn, row_id, version)
    approve(conn, request_id, "bob")
    before = last_seq(conn)
    new_version = edit(conn, row_id, version)
    assert request_status(conn, request_id) == "void"
    assert kinds(conn, before) == ["request_voided"]
    why = conn.execute("SELECT payload ->> 'why' FROM walltrack.change_events WHERE seq > %s", [before]).fetchone()[0]
    assert why == f"the draft was edited (v{version} → v{new_version})"
    refused(conn, "SELECT walltrack.activate_config('risk', %s, %s, 'alice')", [row_id, new_version],
            sqlstate="WT005", match=f"no approved request for v{new_version}")
    refused(conn, "SELECT walltrack.approve_request(%s, 'carol')", [request_id], sqlstate="WT001", match="is void")
    again = request(conn, row_id, new_version)
    approve(conn, again, "bob")
    activate(conn, row_id, new_version)
    assert request_status(conn, again) == "applied"


def test_discarding_a_draft_voids_its_request(conn):
    set_policy(conn, 1)
    row_id, version = draft(conn)
    request_id = request(conn, row_id, version)
    conn.execute("SELECT walltrack.discard_config('risk', %s, 'alice')", [row_id])
    assert request_status(conn, request_id) == "void"


def test_the_requester_cannot_approve_their_own_request(conn):
    set_policy(conn, 1)
    row_id, version = draft(conn)
    request_id = request(conn, row_id, version, actor="alice")
    refused(conn, "SELECT walltrack.approve_request(%s, 'alice')", [request_id], sqlstate="WT001",
            match="cannot approve their own request")
    # The declared actor counts, as in the audit trail.
    with conn.transaction():
        conn.execute("SELECT set_config('walltrack.actor', 'alice', true)")
        with pytest.raises(psycopg.Error) as err, conn.transaction():
            conn.execute("SELECT walltrack.approve_request(%s, NULL)", [request_id])
    assert err.value.sqlstate == "WT001"


def test_two_approvals_by_the_same_actor_count_once(conn):
    set_policy(conn, 2)
    row_id, version = draft(conn)
    request_id = request(conn, row_id, version)
    assert approve(conn, request_id, "bob") == 1
    before = last_seq(conn)
    assert approve(conn, request_id, "bob") == 1
    assert kinds(conn, before) == []  # a no-op
    refused(conn, "SELECT walltrack.activate_config('risk', %s, %s, 'alice')", [row_id, version],
            sqlstate="WT005", match="risk needs 2 approvals before draft")
    assert approve(conn, request_id, "carol") == 2
    activate(conn, row_id, version)
    assert status_of(conn, row_id) == "active"


def test_the_requester_is_the_requester_whatever_the_case_and_blanks(conn):
    set_policy(conn, 1)
    row_id, version = draft(conn)
    request_id = request(conn, row_id, version, actor="Alice")
    for approver in ("alice", "ALICE", " alice "):
        refused(conn, "SELECT walltrack.approve_request(%s, %s)", [request_id, approver], sqlstate="WT001",
                match="cannot approve their own request")
    refused(conn, "SELECT walltrack.activate_config('risk', %s, %s, 'alice')", [row_id, version],
            sqlstate="WT005", match="0 given")
    assert approve(conn, request_id, "bob") == 1
    activate(conn, row_id, version)
    assert request_status(conn, request_id) == "applied"


def test_approvers_differing_only_by_case_count_once(conn):
    set_policy(conn, 2)
    row_id, version = draft(conn)
    request_id = request(conn, row_id, version)
    assert approve(conn, request_id, "Bob") == 1
    before = last_seq(conn)
    assert approve(conn, request_id, "bob") == 1
    assert approve(conn, request_id, " BOB ") == 1
    assert kinds(conn, before) == []  # the same person: nothing new
    assert conn.execute(
        "SELECT approver FROM walltrack.change_approvals WHERE request_id = %s", [request_id]
    ).fetchall() == [("Bob",)]
    refused(conn, "SELECT walltrack.activate_config('risk', %s, %s, 'alice')", [row_id, version],
            sqlstate="WT005", match="1 given")
    assert approve(conn, request_id, "carol") == 2
    activate(conn, row_id, version)
    assert status_of(conn, row_id) == "active"


def test_a_rejection_by_an_approver_in_another_case_replaces_their_approval(conn):
    set_policy(conn, 1)
    row_id, version = draft(conn)
    request_id = request(conn, row_id, version)
    approve(conn, request_id, "Bob")
    conn.execute("SELECT walltrack.reject_request(%s, 'bob', 'changed my mind')", [request_id])
    assert conn.execute(
        "SELECT approver, decision, comment FROM walltrack.change_approvals WHERE request_id = %s", [request_id]
    ).fetchall() == [("Bob", "reject", "changed my mind")]


def test_a_role_that_may_only_read_cannot_request_approve_reject_or_cancel(conn, migrated_db, make_role):
    set_policy(conn, 1)
    row_id, version = draft(conn)
    request_id = request(conn, row_id, version)
    other, other_version = draft(conn)
    schedule_id = schedule(conn, other, other_version, "now() + interval '1 hour'")
    bot = reader_role(conn, migrated_db, make_role)
    grant(conn, bot, "GRANT UPDATE ON walltrack.exit_config TO {role}")  # another domain's: no help for risk
    attempts = (
        ("SELECT walltrack.request_activation('risk', %s, %s, 'mallory', 'let me')", [other, other_version],
         "request its activation"),
        ("SELECT walltrack.approve_request(%s, 'bob')", [request_id], "approve its change requests"),
        ("SELECT walltrack.approve_request(%s, 'carol', 'ok')", [request_id], "approve its change requests"),
        ("SELECT walltrack.reject_request(%s, 'bob', 'no')", [request_id], "reject its change requests"),
        ("SELECT walltrack.cancel_schedule(%s, 'bob', 'no')", [schedule_id], "cancel its schedules"),
        ("SELECT walltrack.schedule_activation('risk', %s, %s, now(), 'bob', 'x')", [other, other_version],
         "schedule its activation"),
    )
    before = state(conn)
    with as_role(migrated_db, bot) as theirs:
        for statement, args, doing in attempts:
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as err:
                theirs.execute(statement, args)
            assert f"database user {bot} may not activate walltrack.risk_config" in str(err.value), err.value
            assert f"so cannot {doing}" in str(err.value), err.value
        # Refused before any lock was taken: nothing of theirs holds the request or the schedule.
        assert theirs.execute("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'tuple'"
                              ).fetchone()[0] == 0
    assert state(conn) == before
    assert request_status(conn, request_id) == "pending"
    assert schedule_row(conn, schedule_id) == ("pending", None)
    # With what activating takes, the same role may.
    grant(conn, bot, "GRANT UPDATE ON walltrack.risk_config TO {role}")
    with as_role(migrated_db, bot) as theirs:
        assert theirs.execute("SELECT walltrack.approve_request(%s, 'bob')", [request_id]).fetchone()[0] == 1
        theirs.execute("SELECT walltrack.cancel_schedule(%s, 'bob')", [schedule_id])
    assert conn.execute(
        "SELECT approver, db_user FROM walltrack.change_approvals WHERE request_id = %s", [request_id]
    ).fetchall() == [("bob", bot)]
    assert schedule_row(conn, schedule_id)[0] == "cancelled"


def test_a_rejection_in_progress_holds_the_activation_which_is_then_refused(conn, migrated_db):
    set_policy(conn, 1)
    row_id, version = draft(conn)
    request_id = request(conn, row_id, version)
    approve(conn, request_id, "bob")
    with psycopg.connect(migrated_db) as rejecter, psycopg.connect(migrated_db, autocommit=True) as activator:
        rejecter.execute("SELECT walltrack.reject_request(%s, 'carol', 'wait, no')", [request_id])  # not committed
        pid = activator.execute("SELECT pg_backend_pid()").fetchone()[0]
        thread, outcome = in_thread(lambda: activate(activator, row_id, version))
        wait_for_lock(conn, pid)  # in the gate, on the request
        assert status_of(conn, row_id) == "draft"
        rejecter.commit()
        thread.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], psycopg.Error), outcome
    assert outcome[0].sqlstate == "WT005" and f"no approved request for v{version}" in str(outcome[0])
    assert status_of(conn, row_id) == "draft"
    assert request_status(conn, request_id) == "rejected"
    assert "activated" not in kinds(conn)


def test_an_activation_in_progress_holds_a_rejection_which_then_finds_it_applied(conn, migrated_db):
    set_policy(conn, 1)
    row_id, version = draft(conn)
    request_id = request(conn, row_id, version)
    approve(conn, request_id, "bob")
    with psycopg.connect(migrated_db) as activator, psycopg.connect(migrated_db, autocommit=True) as rejecter:
        activate(activator, row_id, version)  # not committed: the gate holds the request FOR SHARE
        pid = rejecter.execute("SELECT pg_backend_pid()").fetchone()[0]
        thread, outcome = in_thread(lambda: rejecter.execute(
            "SELECT walltrack.reject_request(%s, 'carol', 'too late')", [request_id]))
        wait_for_lock(conn, pid)
        activator.commit()
        thread.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], psycopg.Error), outcome
    assert outcome[0].sqlstate == "WT001" and "is applied, not pending" in str(outcome[0])
    assert status_of(conn, row_id) == "active" and request_status(conn, request_id) == "applied"


def test_a_second_request_while_one_is_pending_is_refused(conn):
    row_id, version = draft(conn)
    first = request(conn, row_id, version)
    refused(conn, "SELECT walltrack.request_activation('risk', %s, %s, 'bob', 'me too')", [row_id, version],
            sqlstate="WT001", match=f"pending request already (request {first})")


def test_a_rejection_closes_the_request(conn):
    set_policy(conn, 1)
    row_id, version = draft(conn)
    request_id = request(conn, row_id, version)
    approve(conn, request_id, "bob")
    refused(conn, "SELECT walltrack.reject_request(%s, 'carol', '  ')", [request_id], sqlstate="22023",
            column="comment")
    conn.execute("SELECT walltrack.reject_request(%s, 'carol', 'too risky')", [request_id])
    assert request_status(conn, request_id) == "rejected"
    assert conn.execute(
        "SELECT approver, decision, comment FROM walltrack.change_approvals WHERE request_id = %s ORDER BY approver",
        [request_id],
    ).fetchall() == [("bob", "approve", "ok"), ("carol", "reject", "too risky")]
    refused(conn, "SELECT walltrack.approve_request(%s, 'dave')", [request_id], sqlstate="WT001", match="is rejected")
    refused(conn, "SELECT walltrack.activate_config('risk', %s, %s, 'alice')", [row_id, version], sqlstate="WT005")
    # A new request may follow.
    assert request_status(conn, request(conn, row_id, version)) == "pending"


def test_rollback_is_not_gated(conn):
    row_id, version = draft(conn)
    activate(conn, row_id, version)
    set_policy(conn, 3)
    before = last_seq(conn)
    target = conn.execute("SELECT walltrack.rollback_config('risk', 'alice', 'undo')").fetchone()[0]
    assert status_of(conn, target) == "active" and status_of(conn, row_id) == "archived"
    assert kinds(conn, before) == ["rolled_back"]
    payload = conn.execute("SELECT payload FROM walltrack.change_events WHERE seq > %s", [before]).fetchone()[0]
    assert payload["id"] == str(target) and payload["domain"] == "risk" and payload["reason"] == "undo"
    assert payload["activation"] is not None


def test_arguments_are_checked_with_the_column_named(conn):
    row_id, version = draft(conn)
    cases = [
        ("SELECT walltrack.set_approval_policy('risk', 6)", "approvals"),
        ("SELECT walltrack.set_approval_policy('risk', NULL)", "approvals"),
        (f"SELECT walltrack.request_activation('risk', '{row_id}', {version}, 'alice', '')", "reason"),
        (f"SELECT walltrack.request_activation('risk', '{row_id}', NULL, 'alice', 'x')", "expected_version"),
        ("SELECT walltrack.request_activation('risk', NULL, 1, 'alice', 'x')", "draft_id"),
        (f"SELECT walltrack.schedule_activation('risk', '{row_id}', {version}, now() - interval '1 hour', 'a', 'x')",
         "run_at"),
        (f"SELECT walltrack.schedule_activation('risk', '{row_id}', {version}, now() + interval '400 days', 'a', 'x')",
         "run_at"),
        ("SELECT walltrack.run_due_schedules(interval '-1 second')", "grace"),
        ("SELECT walltrack.claim_deliveries(0)", "max_count"),
        ("SELECT walltrack.add_webhook('bad name', 'https://x.example', '{*}', repeat('s', 16), 'json', 'r')", "name"),
        ("SELECT walltrack.add_webhook('ok', 'ftp://x.example', '{*}', repeat('s', 16), 'json', 'r')", "url"),
        ("SELECT walltrack.add_webhook('ok', 'https://x.example', '{nope}', repeat('s', 16), 'json', 'r')", "events"),
        ("SELECT walltrack.add_webhook('ok', 'https://x.example', '{}', repeat('s', 16), 'json', 'r')", "events"),
        ("SELECT walltrack.add_webhook('ok', 'https://x.example', '{*}', 'short', 'json', 'r')", "secret"),
        ("SELECT walltrack.add_webhook('ok', 'https://x.example', '{*}', repeat('s', 16), 'xml', 'r')", "format"),
    ]
    for statement, column in cases:
        refused(conn, statement, sqlstate="22023", column=column)
    refused(conn, f"SELECT walltrack.request_activation('risk', '{row_id}', {version + 1}, 'alice', 'x')",
            sqlstate="WT002")
    refused(conn, f"SELECT walltrack.request_activation('risk', '{uuid.uuid4()}', 1, 'alice', 'x')", sqlstate="WT003")
    refused(conn, f"SELECT walltrack.approve_request('{uuid.uuid4()}', 'bob')", sqlstate="WT003")
    refused(conn, f"SELECT walltrack.cancel_schedule('{uuid.uuid4()}', 'bob')", sqlstate="WT003")
    refused(conn, "SELECT walltrack.remove_webhook('nobody', 'root')", sqlstate="WT003")
    active = conn.execute("SELECT id, version FROM walltrack.risk_config WHERE status = 'active'").fetchone()
    refused(conn, "SELECT walltrack.request_activation('risk', %s, %s, 'alice', 'x')", list(active), sqlstate="WT001")


def test_the_settings_hash_covers_what_bots_read_only(conn):
    row_id, version = draft(conn)
    first = conn.execute("SELECT walltrack.config_settings_hash('walltrack.risk_config', %s)", [row_id]).fetchone()[0]
    assert len(first) == 64
    conn.execute("SELECT walltrack.edit_config('risk', %s, %s, '{\"description\": \"words\"}', 'a')", [row_id, version])
    same = conn.execute("SELECT walltrack.config_settings_hash('walltrack.risk_config', %s)", [row_id]).fetchone()[0]
    assert same == first
    edit(conn, row_id, version_of(conn, row_id))
    other = conn.execute("SELECT walltrack.config_settings_hash('walltrack.risk_config', %s)", [row_id]).fetchone()[0]
    assert other != first
    assert conn.execute(
        "SELECT walltrack.config_settings_hash('walltrack.risk_config', %s)", [uuid.uuid4()]
    ).fetchone()[0] is None


# -- break glass ------------------------------------------------------------------------------------------------------


def test_break_glass_goes_live_without_approvals_with_a_reason_and_is_recorded(conn):
    set_policy(conn, 2)
    row_id, version = draft(conn)
    refused(conn, "SELECT walltrack.break_glass_activate('risk', %s, %s, 'root', ' ')", [row_id, version],
            sqlstate="22023", column="reason")
    before = last_seq(conn)
    assert conn.execute(
        "SELECT walltrack.break_glass_activate('risk', %s, %s, 'root', 'exchange on fire')", [row_id, version]
    ).fetchone()[0] == row_id
    assert status_of(conn, row_id) == "active"
    grants = conn.execute(
        "SELECT config_table, config_id, actor, reason, db_user = session_user FROM walltrack.break_glass_grants"
    ).fetchall()
    assert grants == [("risk_config", row_id, "root", "exchange on fire", True)]
    assert kinds(conn, before) == ["activated", "break_glass"]
    activated, glass = conn.execute(
        "SELECT payload FROM walltrack.change_events WHERE seq > %s ORDER BY seq", [before]
    ).fetchall()
    assert activated[0]["reason"] == "BREAK GLASS: exchange on fire"
    assert glass[0]["reason"] == "exchange on fire" and glass[0]["id"] == str(row_id)
    audit = conn.execute(
        "SELECT reason, performed_by FROM walltrack.config_audit_log WHERE config_id = %s AND action = 'activate'",
        [row_id],
    ).fetchone()
    assert audit == ("BREAK GLASS: exchange on fire", "root")
    # The grant holds for its own transaction only: the next draft is gated again.
    other, other_version = draft(conn)
    refused(conn, "SELECT walltrack.activate_config('risk', %s, %s, 'alice')", [other, other_version], sqlstate="WT005")


def test_the_break_glass_log_is_append_only_even_for_the_owner(conn):
    row_id, version = draft(conn)
    conn.execute("SELECT walltrack.break_glass_activate('risk', %s, %s, 'root', 'why not')", [row_id, version])
    for statement in ("UPDATE walltrack.break_glass_grants SET reason = 'nothing'",
                      "DELETE FROM walltrack.break_glass_grants",
                      "TRUNCATE walltrack.break_glass_grants",
                      "UPDATE walltrack.change_events SET actor = 'nobody'",
                      "DELETE FROM walltrack.change_events",
                      "TRUNCATE walltrack.change_events CASCADE"):
        refused(conn, statement, sqlstate="WT001", match="append-only")


def test_break_glass_is_not_for_other_roles(conn, migrated_db, make_role):
    role = make_role(migrated_db, prefix="wt_operator")
    grant_editor(conn, role)
    row_id, version = draft(conn)
    with conn.transaction():
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        for statement, args in (
            ("SELECT walltrack.break_glass_activate('risk', %s, %s, 'mallory', 'because')", [row_id, version]),
            ("SELECT walltrack.set_approval_policy('risk', 0)", None),
            ("SELECT walltrack.add_webhook('x', 'https://x.example', '{*}', repeat('s', 16), 'json', 'm')", None),
            ("SELECT walltrack.remove_webhook('x', 'm')", None),
            ("SELECT * FROM walltrack.claim_deliveries(10)", None),
            ("SELECT walltrack.finish_delivery(1, true, 200, NULL, NULL)", None),
            ("SELECT * FROM walltrack_auth.webhooks", None),
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(statement, args)
        # What everyone may: read the change tables, ask, approve, schedule (the front doors check roles).
        for table in CHANGE_TABLES:
            conn.execute(f"SELECT count(*) FROM {table}")
        conn.execute("SELECT walltrack.request_activation('risk', %s, %s, 'mallory', 'please')", [row_id, version])
    assert status_of(conn, row_id) == "draft"


def test_no_other_role_writes_the_change_tables_whatever_it_was_granted(conn, migrated_db, make_role):
    role = make_role(migrated_db, prefix="wt_forger")
    grant_editor(conn, role)
    add_webhook(conn, "hook", ["*"])
    row_id, version = draft(conn)
    request_id = request(conn, row_id, version)
    approve(conn, request_id, "carol")
    for table in (*CHANGE_TABLES, "walltrack_auth.webhooks"):
        grant(conn, role, f"GRANT INSERT, UPDATE, DELETE, TRUNCATE ON {table} TO {{role}}")
    grant(conn, role, "GRANT USAGE ON SCHEMA walltrack_auth TO {role}")
    grant(conn, role, "GRANT USAGE ON SEQUENCE walltrack.change_events_seq_seq TO {role}")
    before = state(conn)
    with as_role(migrated_db, role) as forger:
        for statement, args in (
            ("INSERT INTO walltrack.change_approvals (request_id, approver, db_user, decision) "
             "VALUES (%s, 'bob', 'x', 'approve')", [request_id]),
            ("INSERT INTO walltrack.break_glass_grants (txid, config_table, config_id, actor, reason, db_user) "
             "VALUES (txid_current(), 'risk_config', %s, 'x', 'x', 'x')", [row_id]),
            ("UPDATE walltrack.change_requests SET requested_by = 'nobody'", None),
            ("UPDATE walltrack.approval_policies SET approvals_required = 0", None),
            ("INSERT INTO walltrack.change_events (kind, actor, db_user) VALUES ('activated', 'x', 'x')", None),
            ("DELETE FROM walltrack.change_approvals", None),
            ("UPDATE walltrack.webhook_deliveries SET status = 'succeeded'", None),
            ("UPDATE walltrack_auth.webhooks SET url = 'https://evil.example'", None),
            ("TRUNCATE walltrack.activation_schedules", None),
            ("TRUNCATE walltrack.webhook_deliveries", None),
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                forger.execute(statement, args)
    assert state(conn) == before
    # Without the grants, the privileges refuse it already; and nobody else reads the webhooks.
    other = make_role(migrated_db, prefix="wt_reader")
    grant(conn, other, "GRANT USAGE ON SCHEMA walltrack TO {role}")
    with as_role(migrated_db, other) as reader:
        for table in CHANGE_TABLES:
            reader.execute(f"SELECT count(*) FROM {table}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("DELETE FROM walltrack.change_requests")


def test_the_writers_are_the_owners_with_a_fixed_search_path(conn):
    found = conn.execute("""
        SELECT p.proname, p.prosecdef, p.proconfig, p.proowner = c.relowner, p.proacl::text[]
        FROM pg_proc p, pg_class c
        WHERE c.oid = 'walltrack.change_events'::regclass AND p.pronamespace = 'walltrack'::regnamespace
          AND p.proname IN ('request_activation', 'approve_request', 'reject_request', 'break_glass_activate',
                            'set_approval_policy', 'schedule_activation', 'cancel_schedule', 'run_due_schedules',
                            'fleet_note_stale', 'add_webhook', 'remove_webhook', 'claim_deliveries', 'finish_delivery',
                            'gate_config_activation', 'record_config_live_event', 'void_changes_of_draft',
                            'fan_out_change_event')""").fetchall()
    assert len(found) == 17
    owner_only = {"break_glass_activate", "set_approval_policy", "add_webhook", "remove_webhook", "claim_deliveries",
                  "finish_delivery", "gate_config_activation", "record_config_live_event", "void_changes_of_draft",
                  "fan_out_change_event"}
    for name, definer, config, owned, acl in found:
        assert definer and owned and config == ["search_path=pg_catalog, pg_temp"], name
        assert any(entry.startswith("=X/") for entry in acl) == (name not in owner_only), name


# -- schedules --------------------------------------------------------------------------------------------------------


def test_one_due_schedule_fires_exactly_once_under_three_concurrent_runners(conn, migrated_db):
    row_id, version = draft(conn)
    schedule_id = schedule(conn, row_id, version)
    barrier = threading.Barrier(3)
    results: list[list[tuple]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with psycopg.connect(migrated_db, autocommit=True) as runner:
                barrier.wait(timeout=30)
                results.append(runner.execute("SELECT * FROM walltrack.run_due_schedules()").fetchall())
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    ran = [row for rows in results for row in rows]
    assert len(ran) == 1 and ran[0][:3] == (schedule_id, "risk", "done"), ran
    assert status_of(conn, row_id) == "active"
    assert schedule_row(conn, schedule_id)[0] == "done"
    assert conn.execute(
        "SELECT count(*) FROM walltrack.config_activations WHERE config_id = %s", [row_id]
    ).fetchone()[0] == 1
    assert kinds(conn).count("schedule_executed") == 1
    assert conn.execute("SELECT * FROM walltrack.run_due_schedules()").fetchall() == []


def test_a_schedule_whose_draft_was_edited_is_cancelled_and_does_not_fire(conn):
    row_id, version = draft(conn)
    schedule_id = schedule(conn, row_id, version, "now() + interval '1 hour'")
    new_version = edit(conn, row_id, version)
    status, outcome = schedule_row(conn, schedule_id)
    assert (status, outcome) == ("cancelled", f"the draft was edited (v{version} → v{new_version})")
    assert "schedule_cancelled" in kinds(conn)
    conn.execute("SELECT pg_sleep(0.01)")
    assert conn.execute("SELECT * FROM walltrack.run_due_schedules()").fetchall() == []
    assert status_of(conn, row_id) == "draft"
    refused(conn, "SELECT walltrack.cancel_schedule(%s, 'bob')", [schedule_id], sqlstate="WT001", match="cancelled")


def test_a_schedule_older_than_the_grace_is_missed(conn):
    row_id, version = draft(conn)
    schedule_id = schedule(conn, row_id, version)
    conn.execute("SELECT pg_sleep(0.05)")
    ran = conn.execute("SELECT * FROM walltrack.run_due_schedules(interval '10 milliseconds', 'cron')").fetchall()
    assert [r[:3] for r in ran] == [(schedule_id, "risk", "missed")]
    assert status_of(conn, row_id) == "draft"
    assert conn.execute(
        "SELECT status, finished_by FROM walltrack.activation_schedules WHERE id = %s", [schedule_id]
    ).fetchone() == ("missed", "cron")
    assert kinds(conn)[-1] == "schedule_missed"


def test_a_schedule_is_gated_at_run_time_and_fails_with_the_message(conn):
    set_policy(conn, 1)
    row_id, version = draft(conn)
    failing = schedule(conn, row_id, version)
    (ran,) = conn.execute("SELECT * FROM walltrack.run_due_schedules()").fetchall()
    assert ran[2] == "failed" and "needs 1 approval" in ran[3]
    assert schedule_row(conn, failing) == ("failed", ran[3])
    assert kinds(conn)[-1] == "schedule_failed"
    assert status_of(conn, row_id) == "draft"
    # Approved first, it goes live; the runner's declared actor is not left behind.
    approve(conn, request(conn, row_id, version), "bob")
    passing = schedule(conn, row_id, version)
    (ran,) = conn.execute("SELECT * FROM walltrack.run_due_schedules(runner => 'cron')").fetchall()
    assert ran[:3] == (passing, "risk", "done")
    assert status_of(conn, row_id) == "active"
    assert conn.execute("SELECT current_setting('walltrack.actor', true)").fetchone()[0] in (None, "")
    applied = conn.execute("SELECT actor FROM walltrack.change_events WHERE kind = 'activated'").fetchone()[0]
    assert applied == "alice"  # who scheduled it


def test_activating_a_draft_cancels_its_other_schedules(conn):
    row_id, version = draft(conn)
    later = schedule(conn, row_id, version, "now() + interval '1 day'")
    activate(conn, row_id, version)
    status, outcome = schedule_row(conn, later)
    assert status == "cancelled" and outcome.startswith("the draft went live otherwise")


def test_cancel_a_pending_schedule(conn):
    row_id, version = draft(conn)
    schedule_id = schedule(conn, row_id, version, "now() + interval '1 day'")
    conn.execute("SELECT walltrack.cancel_schedule(%s, 'bob', 'not tonight')", [schedule_id])
    assert schedule_row(conn, schedule_id) == ("cancelled", "cancelled by bob: not tonight")


def test_only_a_role_that_may_activate_may_schedule(conn, migrated_db, make_role):
    row_id, version = draft(conn)
    role = make_role(migrated_db, prefix="wt_bot")
    grant(conn, role, "GRANT USAGE ON SCHEMA walltrack TO {role}")
    grant(conn, role, f"GRANT SELECT ON {', '.join(TABLES)} TO {{role}}")
    with as_role(migrated_db, role) as bot, pytest.raises(psycopg.errors.InsufficientPrivilege):
        bot.execute("SELECT walltrack.schedule_activation('risk', %s, %s, now(), 'bot', 'x')", [row_id, version])
    assert conn.execute("SELECT count(*) FROM walltrack.activation_schedules").fetchone()[0] == 0


def test_two_due_schedules_of_one_draft_one_runs_the_other_is_cancelled(conn):
    row_id, version = draft(conn)
    first = schedule(conn, row_id, version)
    second = schedule(conn, row_id, version)
    before = last_seq(conn)
    ran = conn.execute("SELECT * FROM walltrack.run_due_schedules(runner => 'cron')").fetchall()
    assert [r[:3] for r in ran] == [(first, "risk", "done")]  # the second is no longer due: not returned
    assert status_of(conn, row_id) == "active"
    assert schedule_row(conn, first)[0] == "done"
    status, outcome = schedule_row(conn, second)
    assert status == "cancelled" and outcome.startswith("the draft went live otherwise"), outcome
    happened = events_of(conn, before)
    assert happened.count(("schedule_executed", first)) == 1 and happened.count(("schedule_cancelled", second)) == 1
    assert [s for k, s in happened if k.startswith("schedule_")] == [second, first]
    assert "schedule_failed" not in {k for k, _ in happened}
    assert conn.execute("SELECT * FROM walltrack.run_due_schedules()").fetchall() == []


def test_a_schedule_whose_draft_is_locked_stays_pending_and_runs_next_time(conn, migrated_db):
    row_id, version = draft(conn)
    schedule_id = schedule(conn, row_id, version)
    before = last_seq(conn)
    with psycopg.connect(migrated_db) as holder, psycopg.connect(migrated_db, autocommit=True) as runner:
        holder.execute("SELECT FROM walltrack.risk_config WHERE id = %s FOR UPDATE", [row_id])
        runner.execute("SET lock_timeout = '200ms'")
        (ran,) = runner.execute("SELECT * FROM walltrack.run_due_schedules()").fetchall()
        assert ran[:3] == (schedule_id, "risk", "pending")
        assert "55P03" in ran[3] and "to be run again" in ran[3], ran
        holder.rollback()
        assert conn.execute(
            "SELECT status, outcome, finished_at FROM walltrack.activation_schedules WHERE id = %s", [schedule_id]
        ).fetchone() == ("pending", None, None)
        assert kinds(conn, before) == []  # nothing failed, nothing activated
        assert status_of(conn, row_id) == "draft"
        (ran,) = runner.execute("SELECT * FROM walltrack.run_due_schedules()").fetchall()
    assert ran[:3] == (schedule_id, "risk", "done")
    assert status_of(conn, row_id) == "active"
    assert kinds(conn, before).count("schedule_executed") == 1


def test_a_runner_cancelled_mid_run_leaves_that_schedule_and_the_rest_pending(conn, migrated_db):
    locked, locked_version = draft(conn)
    stuck = schedule(conn, locked, locked_version)
    free, free_version = draft(conn, domain="exit")
    later = conn.execute(
        "SELECT walltrack.schedule_activation('exit', %s, %s, now(), 'alice', 'x')", [free, free_version]
    ).fetchone()[0]
    with psycopg.connect(migrated_db) as holder, psycopg.connect(migrated_db, autocommit=True) as runner:
        holder.execute("SELECT FROM walltrack.risk_config WHERE id = %s FOR UPDATE", [locked])
        runner.execute("SET statement_timeout = '300ms'")
        ran = runner.execute("SELECT * FROM walltrack.run_due_schedules()").fetchall()
        holder.rollback()
    assert [r[:3] for r in ran] == [(stuck, "risk", "pending")] and "57014" in ran[0][3], ran
    assert schedule_row(conn, stuck) == ("pending", None)
    assert schedule_row(conn, later) == ("pending", None)  # the run ended there
    assert (status_of(conn, locked), status_of(conn, free, "exit")) == ("draft", "draft")
    ran = conn.execute("SELECT * FROM walltrack.run_due_schedules()").fetchall()
    assert sorted(r[2] for r in ran) == ["done", "done"]


# -- events and webhooks --------------------------------------------------------------------------------------------


def test_every_action_makes_an_event(conn):
    set_policy(conn, 1)
    row_id, version = draft(conn)
    request_id = request(conn, row_id, version)
    approve(conn, request_id, "bob")
    schedule_id = schedule(conn, row_id, version, "now() + interval '1 hour'")
    conn.execute("SELECT walltrack.cancel_schedule(%s, 'bob')", [schedule_id])
    activate(conn, row_id, version)
    assert kinds(conn) == ["policy_changed", "request_created", "request_approved", "schedule_created",
                           "schedule_cancelled", "activated", "request_applied"]
    for kind, domain, actor, payload in conn.execute(
        "SELECT kind, domain, actor, payload FROM walltrack.change_events ORDER BY seq"
    ):
        assert domain == "risk" and payload["domain"] == "risk", kind
        assert actor in ("root", "alice", "bob"), kind
    assert conn.execute(
        "SELECT subject FROM walltrack.change_events WHERE kind = 'request_created'"
    ).fetchone()[0] == request_id


def test_an_event_notifies_walltrack_changes(conn, migrated_db):
    with psycopg.connect(migrated_db, autocommit=True) as listener:
        listener.execute("LISTEN walltrack_changes")
        set_policy(conn, 1)
        seq = last_seq(conn)
        got = next(listener.notifies(timeout=5, stop_after=1))
    assert got.channel == "walltrack_changes" and got.payload == str(seq)


def test_a_delivery_is_made_for_each_subscribed_webhook_only(conn):
    everything = add_webhook(conn, "everything", ["*"])
    live = add_webhook(conn, "live-only", ["activated", "rolled_back"])
    add_webhook(conn, "requests", ["request_created"])
    row_id, version = draft(conn)
    before = last_seq(conn)
    activate(conn, row_id, version)
    (seq,) = conn.execute("SELECT seq FROM walltrack.change_events WHERE seq > %s", [before]).fetchone()
    deliveries = conn.execute(
        "SELECT webhook_id, webhook_name, kind, status, attempts FROM walltrack.webhook_deliveries "
        "WHERE event_seq = %s ORDER BY webhook_name", [seq]
    ).fetchall()
    assert deliveries == [(everything, "everything", "activated", "pending", 0),
                          (live, "live-only", "activated", "pending", 0)]
    refused(conn, "SELECT walltrack.add_webhook('Everything', 'https://x.example', '{*}', repeat('s', 16), 'json', '')",
            sqlstate="23505", match="exists already")


def test_claimed_deliveries_carry_what_to_send_and_are_leased(conn):
    hook = add_webhook(conn, "ops", ["policy_changed"])
    set_policy(conn, 1)
    claimed = conn.execute("SELECT * FROM walltrack.claim_deliveries(10)").fetchall()
    assert len(claimed) == 1
    delivery, webhook_id, url, secret, fmt, kind, seq, payload, at, attempts = claimed[0]
    assert (webhook_id, url, secret, fmt, kind, attempts) == (hook, "https://hooks.example/x", SECRET, "json",
                                                               "policy_changed", 0)
    assert payload == {"domain": "risk", "approvals": 1, "previous": 0, "reason": "tests"} and at is not None
    assert seq == last_seq(conn)
    assert conn.execute("SELECT * FROM walltrack.claim_deliveries(10)").fetchall() == []  # leased
    assert conn.execute("SELECT walltrack.finish_delivery(%s, true, 204, NULL, NULL)", [delivery]).fetchone()[0] == (
        "succeeded")
    assert conn.execute(
        "SELECT status, attempts, last_status, delivered_at IS NOT NULL FROM walltrack.webhook_deliveries"
    ).fetchone() == ("succeeded", 1, 204, True)
    # Finished already: it stays as it is.
    assert conn.execute("SELECT walltrack.finish_delivery(%s, false, 500, 'x', '0')", [delivery]).fetchone()[0] == (
        "succeeded")


def test_a_failing_delivery_is_retried_then_failed_after_8_attempts(conn):
    add_webhook(conn, "flaky", ["*"])
    set_policy(conn, 1)
    (delivery,) = conn.execute("SELECT id FROM walltrack.webhook_deliveries").fetchone()
    statuses = []
    for _ in range(8):
        (claimed,) = conn.execute("SELECT id FROM walltrack.claim_deliveries(5)").fetchall()
        assert claimed == (delivery,)
        statuses.append(conn.execute(
            "SELECT walltrack.finish_delivery(%s, false, 503, 'unavailable', interval '0')", [delivery]
        ).fetchone()[0])
    assert statuses == ["pending"] * 7 + ["failed"]
    assert conn.execute(
        "SELECT status, attempts, last_status, last_error FROM walltrack.webhook_deliveries"
    ).fetchone() == ("failed", 8, 503, "unavailable")
    assert conn.execute("SELECT * FROM walltrack.claim_deliveries(5)").fetchall() == []
    # A retry waits retry_after.
    set_policy(conn, 2)
    (later,) = conn.execute("SELECT id FROM walltrack.claim_deliveries(5)").fetchone()
    conn.execute("SELECT walltrack.finish_delivery(%s, false, NULL, 'timeout', interval '1 hour')", [later])
    assert conn.execute("SELECT * FROM walltrack.claim_deliveries(5)").fetchall() == []


def test_removing_a_webhook_keeps_its_deliveries_and_fails_the_pending_ones(conn):
    add_webhook(conn, "gone", ["*"])
    set_policy(conn, 1)
    conn.execute("SELECT walltrack.remove_webhook('GONE', 'root')")
    assert conn.execute("SELECT webhook_name, status FROM walltrack.webhook_deliveries").fetchall() == [
        ("gone", "failed")]
    set_policy(conn, 2)
    assert conn.execute("SELECT count(*) FROM walltrack.webhook_deliveries").fetchone()[0] == 1


def test_adding_and_removing_a_webhook_are_events_without_its_secret_or_url(conn):
    watcher = add_webhook(conn, "watcher", ["webhook_added", "webhook_removed"])
    (kind, subject, actor, payload), = conn.execute(
        "SELECT kind, subject, actor, payload FROM walltrack.change_events").fetchall()
    assert (kind, subject, actor) == ("webhook_added", watcher, "root")
    assert payload == {"domain": None, "webhook": str(watcher), "name": "watcher", "host": "hooks.example",
                       "events": ["webhook_added", "webhook_removed"], "format": "json"}
    assert conn.execute("SELECT count(*) FROM walltrack.webhook_deliveries").fetchone()[0] == 0  # not its own
    secret = "an0ther-s3cret-s3cret"
    url = "https://ops:pa55word@Chat.Example.COM:8443/services/T0KEN-IN-PATH?key=qu3ry-t0ken#frag"
    before = last_seq(conn)
    chat = conn.execute("SELECT walltrack.add_webhook('chat', %s, '{*,*,activated}', %s, 'slack', 'Root')",
                        [url, secret]).fetchone()[0]
    conn.execute("SELECT walltrack.remove_webhook('CHAT', 'root2')")
    added, removed = conn.execute(
        "SELECT kind, subject, actor, domain, payload FROM walltrack.change_events WHERE seq > %s ORDER BY seq",
        [before]).fetchall()
    said = {"domain": None, "webhook": str(chat), "name": "chat", "host": "chat.example.com",
            "events": ["*", "activated"], "format": "slack"}
    assert added == ("webhook_added", chat, "Root", None, said)
    assert removed == ("webhook_removed", chat, "root2", None, said)
    # Neither the events nor the payloads the watcher is sent hold a secret or any of the URL but its host.
    logged = conn.execute("SELECT string_agg(to_jsonb(e)::text, ' ') FROM walltrack.change_events e").fetchone()[0]
    sent = conn.execute("SELECT array_agg(d.payload ORDER BY d.event_seq) FROM walltrack.claim_deliveries(10) d "
                        "WHERE d.webhook_id = %s", [watcher]).fetchone()[0]
    assert sent == [said, said]
    for hidden in (secret, SECRET, "pa55word", "T0KEN-IN-PATH", "qu3ry-t0ken", "services", "8443", "frag"):
        assert hidden not in logged, hidden
    # The watcher got both; the one added got nothing of its own, before its removal failed it.
    assert conn.execute(
        "SELECT webhook_name, kind FROM walltrack.webhook_deliveries ORDER BY id").fetchall() == [
        ("watcher", "webhook_added"), ("watcher", "webhook_removed")]


def test_the_host_of_a_webhook_url(conn):
    for url, host in (("https://hooks.example/x", "hooks.example"),
                      ("http://User:Token@Host.Example:8080/a/b?c=d", "host.example"),
                      ("https://a@b@c.example", "c.example"),
                      ("http://[::1]:9000/x", "[::1]"),
                      ("https://only.example?token=x", "only.example"),
                      ("https://frag.example#x@y", "frag.example")):
        assert conn.execute("SELECT walltrack.webhook_url_host(%s)", [url]).fetchone()[0] == host, url


def test_webhook_kinds_are_subscribable_and_listed(conn):
    hook = add_webhook(conn, "meta", ["webhook_removed"])
    assert conn.execute("SELECT events FROM walltrack_auth.webhooks WHERE id = %s", [hook]).fetchone()[0] == [
        "webhook_removed"]
    err = refused(conn, "SELECT walltrack.add_webhook('x', 'https://x.example', '{nope}', repeat('s', 16), 'json', '')",
                  sqlstate="22023", column="events")
    assert "client_stale, webhook_added, webhook_removed" in str(err)


def test_stale_fleet_clients_are_noted_once(conn):
    client = uuid.uuid4()
    conn.execute("SELECT walltrack.fleet_report(%s, 'bot', 'h', 1, 'v', 'http', '{risk}', 0.02::real, '{}')", [client])
    time.sleep(0.1)
    assert conn.execute("SELECT walltrack.fleet_note_stale()").fetchone()[0] == 1
    assert conn.execute("SELECT walltrack.fleet_note_stale()").fetchone()[0] == 0
    payload = conn.execute("SELECT payload FROM walltrack.change_events WHERE kind = 'client_stale'").fetchone()[0]
    assert payload["client"] == str(client) and payload["domain"] is None
    # Heard from again, then stale again: noted again.
    conn.execute("SELECT walltrack.fleet_report(%s, 'bot', 'h', 1, 'v', 'http', '{risk}', 0.02::real, '{}')", [client])
    time.sleep(0.1)
    assert conn.execute("SELECT walltrack.fleet_note_stale()").fetchone()[0] == 1


# -- the migration ------------------------------------------------------------------------------------------------


def test_u14_returns_the_database_to_v13_exactly_and_keeps_its_rows(db_at):
    url = db_at(13)
    before, rows = catalog(url), config_rows(url)
    with psycopg.connect(url) as conn:
        conn.execute(V14.apply.sql)
    with psycopg.connect(url, autocommit=True) as conn:
        assert schema.version(conn) == schema.CHANGES == 14
        add_webhook(conn, "hook", ["*"])
        set_policy(conn, 1)
        row_id, version = draft(conn)
        approve(conn, request(conn, row_id, version), "bob")
        schedule(conn, row_id, version, "now() + interval '1 day'")
        activate(conn, row_id, version)
        conn.execute("SELECT walltrack.rollback_config('risk', 'alice')")
    assert catalog(url) != before
    rows_after = config_rows(url)
    with psycopg.connect(url) as conn:
        conn.execute(V14.undo.sql)
    assert catalog(url) == before
    assert config_rows(url) == rows_after
    with psycopg.connect(url) as conn:
        assert schema.version(conn) == 13
    assert rows != rows_after  # the config changes made under V14 stay


def test_v14_and_u14_run_as_is_with_psql(db_at):
    url = db_at(13)
    before = catalog(url)
    for script in (V14.apply, V14.undo, V14.apply, V14.undo):
        psql_file(url, script.path)
    assert catalog(url) == before


def test_default_privileges_grant_nothing_but_select_on_the_change_tables(db_at, make_role):
    url = db_at(13)
    role = make_role(url, prefix="wt_bot")
    with psycopg.connect(url, autocommit=True) as owner:
        owner.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO {}, PUBLIC").format(sql.Identifier(role))
        )
        owner.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES GRANT ALL ON SEQUENCES TO {}, PUBLIC").format(sql.Identifier(role))
        )
    before = catalog(url)
    with psycopg.connect(url) as conn:
        conn.execute(V14.apply.sql)
    with psycopg.connect(url, autocommit=True) as owner:
        granted = owner.execute("""
            SELECT c.oid::regclass::text, a.privilege_type FROM pg_class c, aclexplode(c.relacl) a
            WHERE c.relnamespace IN ('walltrack'::regnamespace, 'walltrack_auth'::regnamespace)
              AND c.relname IN ('approval_policies', 'change_requests', 'change_approvals', 'break_glass_grants',
                                'activation_schedules', 'change_events', 'change_events_seq_seq', 'webhooks',
                                'webhook_deliveries', 'webhook_deliveries_id_seq')
              AND a.grantee <> c.relowner ORDER BY 1""").fetchall()
    assert sorted(granted) == sorted((t, "SELECT") for t in CHANGE_TABLES)
    with psycopg.connect(url) as conn:
        conn.execute(V14.undo.sql)
    assert catalog(url) == before
