"""V9's rules hold against plain SQL, the way psql or a table editor would try to break them."""

from __future__ import annotations

import psycopg
import pytest

from conftest import catalog
from walltrack_config.migrate import plan as migrations

TABLES = [
    "trading_config",
    "scoring_config",
    "discovery_config",
    "cluster_config",
    "risk_config",
    "exit_config",
    "api_config",
]
V9 = next(m for m in migrations.discover() if m.version == 9)


def ids(conn, table: str) -> dict[str, str]:
    return {status: str(i) for i, status in conn.execute(f"SELECT id, status::text FROM walltrack.{table}")}


def state(conn, table: str) -> tuple:
    """Every row and the audit count: what a refused statement must leave as it was."""
    rows = conn.execute(f"SELECT to_jsonb(t) FROM walltrack.{table} t ORDER BY id").fetchall()
    return rows, conn.execute("SELECT count(*) FROM walltrack.config_audit_log").fetchone()[0]


def refused(conn, table: str, statement: str, sqlstate: str = "WT001", match: str = "") -> psycopg.Error:
    before = state(conn, table)
    with pytest.raises(psycopg.Error) as err, conn.transaction():
        conn.execute(statement)
    assert err.value.sqlstate == sqlstate, err.value
    assert match in str(err.value)
    assert state(conn, table) == before
    return err.value


def new_draft(conn, table: str, name: str = "d") -> str:
    return str(conn.execute(f"INSERT INTO walltrack.{table} (name) VALUES (%s) RETURNING id", [name]).fetchone()[0])


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("status", ["default", "active", "archived"])
def test_new_rows_must_be_drafts(conn, table, status):
    err = refused(
        conn, table, f"INSERT INTO walltrack.{table} (name, status) VALUES ('x', '{status}')", match="must be a draft"
    )
    assert "activate_config" in err.diag.message_hint


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize("status", ["default", "active"])
def test_default_and_active_rows_are_read_only_and_kept(conn, table, status):
    row = ids(conn, table)[status]
    refused(conn, table, f"UPDATE walltrack.{table} SET name = 'changed' WHERE id = '{row}'", match="read-only")
    refused(conn, table, f"UPDATE walltrack.{table} SET description = 'x' WHERE id = '{row}'", match="read-only")
    refused(conn, table, f"DELETE FROM walltrack.{table} WHERE id = '{row}'", match="cannot be deleted")


def test_every_setting_of_an_active_row_is_read_only(conn):
    row = ids(conn, "trading_config")["active"]
    for column, value in [
        ("base_position_pct", "3"),
        ("sizing_mode", "'fixed'"),
        ("daily_loss_limit_enabled", "false"),
        ("drawdown_reduction_tiers", '\'[{"threshold_pct": 1, "size_reduction_pct": 1}]\''),
    ]:
        refused(
            conn,
            "trading_config",
            f"UPDATE walltrack.trading_config SET {column} = {value} WHERE id = '{row}'",
            match="read-only",
        )


@pytest.mark.parametrize(
    "old, new, hint",
    [
        ("default", "active", "defaults never change"),
        ("default", "archived", "defaults never change"),
        ("draft", "archived", "Activate the draft"),
        ("draft", "default", "defaults never change"),
        ("active", "draft", "restore_config"),
        ("active", "default", "defaults never change"),
    ],
)
def test_status_changes_outside_the_lifecycle_are_refused(conn, old, new, hint):
    if old == "draft":
        new_draft(conn, "risk_config")
    row = ids(conn, "risk_config")[old]
    err = refused(
        conn,
        "risk_config",
        f"UPDATE walltrack.risk_config SET status = '{new}' WHERE id = '{row}'",
        match="cannot go from",
    )
    assert hint in err.diag.message_hint


def test_archived_rows_are_read_only_and_never_become_drafts(conn):
    conn.execute(
        "SELECT walltrack.activate_config('exit', walltrack.clone_config('exit', %s), 1)",
        [ids(conn, "exit_config")["default"]],
    )
    archived = ids(conn, "exit_config")["archived"]
    refused(
        conn,
        "exit_config",
        f"UPDATE walltrack.exit_config SET stagnation_hours = 1 WHERE id = '{archived}'",
        match="read-only",
    )
    refused(conn, "exit_config", f"UPDATE walltrack.exit_config SET status = 'draft' WHERE id = '{archived}'")
    refused(conn, "exit_config", f"DELETE FROM walltrack.exit_config WHERE id = '{archived}'")


def test_status_and_settings_do_not_change_in_one_step(conn):
    draft = new_draft(conn, "api_config")
    refused(
        conn,
        "api_config",
        "BEGIN; UPDATE walltrack.api_config SET status = 'archived' WHERE status = 'active';"
        f"UPDATE walltrack.api_config SET status = 'active', api_retry_count = 9 WHERE id = '{draft}'; COMMIT",
        match="at once",
    )


def test_a_commit_with_no_active_row_is_refused(conn):
    refused(
        conn,
        "cluster_config",
        "UPDATE walltrack.cluster_config SET status = 'archived' WHERE status = 'active'",
        match="would have 0 active configs at commit",
    )


def test_plain_sql_can_activate_in_one_transaction_and_is_audited(conn):
    draft = new_draft(conn, "cluster_config", "Wide")
    with conn.transaction():
        conn.execute(
            "SELECT set_config('walltrack.actor', 'psql-operator', true),"
            " set_config('walltrack.reason', 'by hand', true)"
        )
        conn.execute("UPDATE walltrack.cluster_config SET status = 'archived' WHERE status = 'active'")
        conn.execute(f"UPDATE walltrack.cluster_config SET status = 'active' WHERE id = '{draft}'")
    assert ids(conn, "cluster_config")["active"] == draft
    audit = conn.execute(
        "SELECT action, performed_by, reason FROM walltrack.config_audit_log"
        " WHERE config_table = 'cluster_config' ORDER BY id DESC LIMIT 2"
    ).fetchall()
    assert audit == [("activate", "psql-operator", "by hand"), ("archive", "psql-operator", "by hand")]


def test_ids_and_creation_never_change(conn):
    draft = new_draft(conn, "risk_config")
    refused(
        conn,
        "risk_config",
        f"UPDATE walltrack.risk_config SET created_by = 'mallory' WHERE id = '{draft}'",
        match="never change",
    )
    refused(
        conn,
        "risk_config",
        f"UPDATE walltrack.risk_config SET created_at = now() - interval '1 year' WHERE id = '{draft}'",
        match="never change",
    )


def test_a_stale_version_from_plain_sql_is_refused(conn):
    draft = new_draft(conn, "risk_config")
    conn.execute(f"UPDATE walltrack.risk_config SET max_order_attempts = 4, version = 1 WHERE id = '{draft}'")
    refused(
        conn,
        "risk_config",
        f"UPDATE walltrack.risk_config SET max_order_attempts = 5, version = 1 WHERE id = '{draft}'",
        sqlstate="WT002",
        match="at version 2, not 1",
    )


@pytest.mark.parametrize("table", TABLES)
def test_truncate_is_refused(conn, table):
    refused(conn, table, f"TRUNCATE walltrack.{table}", match="TRUNCATE")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE walltrack.config_audit_log SET reason = 'rewritten'",
        "DELETE FROM walltrack.config_audit_log",
        "TRUNCATE walltrack.config_audit_log",
    ],
)
def test_the_audit_log_is_append_only(conn, statement):
    new_draft(conn, "risk_config")
    refused(conn, "risk_config", statement, match="append-only")


def test_one_audit_row_per_change_with_full_snapshots(conn):
    def audit_count() -> int:
        return conn.execute("SELECT count(*) FROM walltrack.config_audit_log").fetchone()[0]

    start = audit_count()
    draft = new_draft(conn, "discovery_config", "Picky")
    conn.execute(f"UPDATE walltrack.discovery_config SET min_trades = 20, min_win_rate = 0.6 WHERE id = '{draft}'")
    conn.execute(f"UPDATE walltrack.discovery_config SET min_trades = 20 WHERE id = '{draft}'")  # changes nothing
    conn.execute(f"DELETE FROM walltrack.discovery_config WHERE id = '{draft}'")
    assert audit_count() == start + 3
    entries = conn.execute(
        "SELECT action, changed_fields, old_values, new_values, performed_by, config_id::text, config_table"
        " FROM walltrack.config_audit_log WHERE config_id = %s ORDER BY id",
        [draft],
    ).fetchall()
    assert [e[0] for e in entries] == ["create", "update", "delete"]
    create, update, delete = entries
    assert create[2] is None and create[3]["name"] == "Picky" and create[3]["min_trades"] == 10
    assert update[1] == ["min_trades", "min_win_rate"]
    assert (update[2]["min_trades"], update[3]["min_trades"], update[3]["version"]) == (10, 20, 2)
    assert delete[3] is None and delete[2]["min_trades"] == 20
    user = conn.execute("SELECT session_user").fetchone()[0]
    assert {e[4] for e in entries} == {user}  # no actor given: the database user
    assert {e[6] for e in entries} == {"discovery_config"}


def test_u9_returns_the_database_to_v8(v8_db):
    before = catalog(v8_db)
    with psycopg.connect(v8_db) as conn:
        conn.execute(V9.apply.sql)
    assert catalog(v8_db) != before
    with psycopg.connect(v8_db) as conn:
        conn.execute(V9.undo.sql)
    assert catalog(v8_db) == before


def test_u9_keeps_the_rows_written_under_v9(db_at):
    with psycopg.connect(db_at(9), autocommit=True) as conn:
        conn.execute(
            "SELECT walltrack.clone_config('risk', (SELECT id FROM walltrack.risk_config WHERE status = 'active'))"
        )
        audit = conn.execute("SELECT count(*) FROM walltrack.config_audit_log").fetchone()[0]
        with conn.transaction():
            conn.execute(V9.undo.sql)
        assert conn.execute("SELECT count(*) FROM walltrack.risk_config WHERE status = 'draft'").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM walltrack.config_audit_log").fetchone()[0] == audit == 1


@pytest.mark.parametrize(
    "call, sqlstate, match",
    [
        (
            "SELECT walltrack.edit_config('risk', '{draft}', 1, '{{\"max_drawdwn_pct\": 5}}', 'psql', 'typo')",
            "WT004",
            "unknown field max_drawdwn_pct",
        ),
        (
            "SELECT walltrack.edit_config('risk', '{draft}', 1, '{{\"max_order_attempts\": \"many\"}}', 'psql', 'x')",
            "22P02",
            "invalid value for max_order_attempts",
        ),
        (
            "SELECT walltrack.edit_config('risk', '{draft}', 1, '{{\"max_drawdown_pct\": 150}}', 'psql', 'x')",
            "23514",
            "chk_max_drawdown_pct",
        ),
        (
            "SELECT walltrack.edit_config('risk', '{draft}', 7, '{{\"max_order_attempts\": 4}}', 'psql', 'x')",
            "WT002",
            "at version 1, not 7",
        ),
        ("SELECT walltrack.edit_config('risk', '{draft}', 1, '[1, 2]', 'psql', 'x')", "WT004", "JSON object"),
        ("SELECT walltrack.activate_config('riks', '{draft}', 1, 'psql', 'x')", "WT003", "unknown config domain"),
        ("SELECT walltrack.discard_config('risk', gen_random_uuid(), 'psql', 'x')", "WT003", "no row"),
        ("SELECT walltrack.restore_config('risk', '{draft}', NULL, 'psql', 'x')", "WT001", "only archived rows"),
    ],
)
def test_the_sql_functions_refuse_bad_input_by_name_and_write_nothing(conn, call, sqlstate, match):
    draft = new_draft(conn, "risk_config")
    err = refused(conn, "risk_config", call.format(draft=draft), sqlstate=sqlstate, match=match)
    if sqlstate in ("WT004", "22P02") and "JSON" not in match:
        assert err.diag.column_name in ("max_drawdwn_pct", "max_order_attempts")
