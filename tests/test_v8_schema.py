"""V8 against story 11.1: its tables, columns, presets and acceptance criteria, on real PostgreSQL."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import psycopg
import pytest

DOMAINS = ["trading", "scoring", "discovery", "cluster", "risk", "exit", "api"]
TABLES = [f"{d}_config" for d in DOMAINS]
META = {"id", "name", "status", "version", "description", "created_at", "updated_at", "created_by", "updated_by"}
STORY_SQL = Path(__file__).with_name("data") / "story-11.1-V8.sql"


def story_sql_runnable(schema: str) -> str:
    """The story's SQL minus its one statement PostgreSQL rejects, in another schema."""
    text = STORY_SQL.read_text()
    text, removed = re.subn(r",\s*CONSTRAINT chk_trading_single_active CHECK \(.*?\n    \)", "", text, flags=re.S)
    assert removed == 1
    return f"CREATE SCHEMA {schema};\n" + text.replace("walltrack.", f"{schema}.")


def columns(conn: psycopg.Connection, schema: str) -> list[tuple]:
    rows = conn.execute(
        """SELECT table_name, ordinal_position, column_name, data_type, udt_name, character_maximum_length,
                  numeric_precision, numeric_scale, is_nullable, column_default
           FROM information_schema.columns WHERE table_schema = %s ORDER BY table_name, ordinal_position""",
        [schema],
    ).fetchall()
    return [(*r[:-1], (r[-1] or "").replace(f"{schema}.", "SCHEMA.")) for r in rows]


def settings(conn: psycopg.Connection, schema: str, table: str, status: str) -> dict:
    row = conn.execute(f"SELECT to_jsonb(t) FROM {schema}.{table} t WHERE status = %s", [status]).fetchone()[0]
    return {k: v for k, v in row.items() if k not in META}


def test_the_story_sql_as_written_is_rejected(empty_db):
    with psycopg.connect(empty_db) as conn, pytest.raises(psycopg.errors.FeatureNotSupported, match="subquery"):
        conn.execute("CREATE SCHEMA walltrack")
        conn.execute(STORY_SQL.read_text())


def test_ac1_tables_and_indexes_exist(v8_conn):
    tables = {r[0] for r in v8_conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'walltrack'")}
    assert tables == set(TABLES) | {"config_audit_log"}
    indexes = {r[0] for r in v8_conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'walltrack'")}
    assert {"idx_config_audit_table", "idx_config_audit_config"} <= indexes


def test_columns_types_and_defaults_are_exactly_the_storys(v8_conn):
    v8_conn.execute(story_sql_runnable("story"))
    assert columns(v8_conn, "walltrack") == columns(v8_conn, "story")


@pytest.mark.parametrize("table", TABLES)
def test_presets_are_exactly_the_storys(v8_conn, table):
    v8_conn.execute(story_sql_runnable("story"))
    for status in ("default", "active"):
        assert settings(v8_conn, "walltrack", table, status) == settings(v8_conn, "story", table, status)


def test_ac2_lifecycle_columns(v8_conn):
    labels = v8_conn.execute(
        "SELECT array_agg(enumlabel::text ORDER BY enumsortorder) FROM pg_enum"
        " WHERE enumtypid = 'walltrack.config_status'::regtype"
    ).fetchone()[0]
    assert labels == ["default", "draft", "active", "archived"]
    expected = {
        "id": "uuid",
        "status": "config_status",
        "name": "varchar",
        "version": "int4",
        "created_at": "timestamptz",
        "updated_at": "timestamptz",
        "created_by": "varchar",
        "updated_by": "varchar",
    }
    for table in TABLES:
        got = dict(
            v8_conn.execute(
                "SELECT column_name, udt_name FROM information_schema.columns"
                " WHERE table_schema = 'walltrack' AND table_name = %s",
                [table],
            ).fetchall()
        )
        assert {k: got[k] for k in expected} == expected, table
        pk = v8_conn.execute(
            "SELECT a.attname FROM pg_index i"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = %s::regclass AND i.indisprimary",
            [f"walltrack.{table}"],
        ).fetchall()
        assert pk == [("id",)]


@pytest.mark.parametrize("table", TABLES)
def test_ac3_one_default_and_one_active_equal_to_the_defaults(v8_conn, table):
    counts = dict(v8_conn.execute(f"SELECT status::text, count(*) FROM walltrack.{table} GROUP BY status").fetchall())
    assert counts == {"default": 1, "active": 1}
    assert settings(v8_conn, "walltrack", table, "active") == settings(v8_conn, "walltrack", table, "default")


@pytest.mark.parametrize("table", TABLES)
def test_ac4_second_active_is_refused_by_name_and_nothing_written(v8_conn, table):
    with pytest.raises(psycopg.errors.UniqueViolation) as err:
        v8_conn.execute(f"INSERT INTO walltrack.{table} (name, status) VALUES ('second', 'active')")
    diag = err.value.diag
    assert f"walltrack.{table} already has an active config" in diag.message_primary
    assert "Archive the active row" in diag.message_hint
    assert diag.constraint_name == f"uq_{table}_single_active"
    draft = v8_conn.execute(f"INSERT INTO walltrack.{table} (name) VALUES ('d') RETURNING id").fetchone()[0]
    with pytest.raises(psycopg.errors.UniqueViolation):
        v8_conn.execute(f"UPDATE walltrack.{table} SET status = 'active' WHERE id = %s", [draft])
    assert v8_conn.execute(f"SELECT count(*) FROM walltrack.{table} WHERE status = 'active'").fetchone()[0] == 1
    assert (
        v8_conn.execute(f"SELECT status::text FROM walltrack.{table} WHERE id = %s", [draft]).fetchone()[0] == "draft"
    )


def _race(url: str, first_sql: str, second_sql: str) -> list[str]:
    """Run two transactions that overlap: the first holds its write while the second tries; report outcomes."""
    outcomes: list[str] = []
    with psycopg.connect(url) as a, psycopg.connect(url) as b:
        a.execute(first_sql)  # uncommitted: a holds its row lock / index entry

        def second() -> None:
            try:
                b.execute(second_sql)
                b.commit()
                outcomes.append("committed")
            except psycopg.errors.UniqueViolation:
                b.rollback()
                outcomes.append("refused")

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive(), "the second session should wait for the first"
        a.commit()
        outcomes.append("committed")
        thread.join(10)
    return sorted(outcomes)


def test_ac4_race_two_sessions_switching_the_active_row(v8_db):
    switch = (
        "UPDATE walltrack.risk_config SET status = 'archived' WHERE status = 'active';"
        "INSERT INTO walltrack.risk_config (name, status) VALUES ('{}', 'active')"
    )
    assert _race(v8_db, switch.format("a"), switch.format("b")) == ["committed", "refused"]
    with psycopg.connect(v8_db) as conn:
        assert conn.execute("SELECT name FROM walltrack.risk_config WHERE status = 'active'").fetchall() == [("a",)]


def test_ac4_race_two_inserts_with_no_active_row(v8_db):
    with psycopg.connect(v8_db, autocommit=True) as conn:
        conn.execute("DELETE FROM walltrack.api_config WHERE status = 'active'")
    insert = "INSERT INTO walltrack.api_config (name, status) VALUES ('{}', 'active')"
    assert _race(v8_db, insert.format("a"), insert.format("b")) == ["committed", "refused"]
    with psycopg.connect(v8_db) as conn:
        assert conn.execute("SELECT count(*) FROM walltrack.api_config WHERE status = 'active'").fetchone()[0] == 1


def test_ac5_version_bumps_by_one_per_change_and_not_on_a_no_op(v8_conn):
    row_id, stamp = v8_conn.execute(
        "INSERT INTO walltrack.trading_config (name) VALUES ('d') RETURNING id, updated_at"
    ).fetchone()

    def version() -> tuple[int, object]:
        return v8_conn.execute(
            "SELECT version, updated_at FROM walltrack.trading_config WHERE id = %s", [row_id]
        ).fetchone()

    v8_conn.execute("UPDATE walltrack.trading_config SET base_position_pct = 3 WHERE id = %s", [row_id])
    assert version()[0] == 2 and version()[1] > stamp
    v8_conn.execute(
        "UPDATE walltrack.trading_config SET max_position_sol = 2, min_position_sol = 0.1 WHERE id = %s", [row_id]
    )
    assert version()[0] == 3
    v8_conn.execute("UPDATE walltrack.trading_config SET base_position_pct = 3 WHERE id = %s", [row_id])
    assert version()[0] == 3
    v8_conn.execute("UPDATE walltrack.trading_config SET version = 42 WHERE id = %s", [row_id])
    assert version()[0] == 4  # a hand-set version is still just the next one


def test_a_name_can_be_drafted_activated_and_archived_many_times(v8_conn):
    for _ in range(5):
        with v8_conn.transaction():
            v8_conn.execute("INSERT INTO walltrack.cluster_config (name) VALUES ('Aggressive')")
            v8_conn.execute("UPDATE walltrack.cluster_config SET status = 'archived' WHERE status = 'active'")
            v8_conn.execute(
                "UPDATE walltrack.cluster_config SET status = 'active' WHERE status = 'draft' AND name = 'Aggressive'"
            )
    counts = dict(
        v8_conn.execute(
            "SELECT status::text, count(*) FROM walltrack.cluster_config WHERE name = 'Aggressive' GROUP BY status"
        ).fetchall()
    )
    assert counts == {"active": 1, "archived": 4}


def test_names_stay_unique_per_status_among_live_rows(v8_conn):
    v8_conn.execute("INSERT INTO walltrack.exit_config (name) VALUES ('Tight')")
    with pytest.raises(psycopg.errors.UniqueViolation, match="uq_exit_config_name_status"):
        v8_conn.execute("INSERT INTO walltrack.exit_config (name) VALUES ('Tight')")
    assert v8_conn.execute("SELECT count(*) FROM walltrack.exit_config WHERE name = 'Tight'").fetchone()[0] == 1
