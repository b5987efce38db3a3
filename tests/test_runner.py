"""The runner against real PostgreSQL: order, atomicity, history, drift, undo."""

from __future__ import annotations

import psycopg
import pytest

from walltrack_config import migrations, runner
from walltrack_config.errors import (
    ChecksumMismatch,
    MigrationFailed,
    MissingUndo,
    NothingToUndo,
    UnknownAppliedMigrations,
)


def step(n: int) -> dict[str, str]:
    return {
        f"V{n}__step_{n}.sql": f"CREATE TABLE t{n} (x INT);\nINSERT INTO steps VALUES ({n});\n",
        f"U{n}__step_{n}.sql": f"DROP TABLE t{n};\nINSERT INTO steps VALUES (-{n});\n",
    }


@pytest.fixture
def db(empty_db):
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE steps (n INT, at SERIAL)")
        yield conn


def steps(conn) -> list[int]:
    return [r[0] for r in conn.execute("SELECT n FROM steps ORDER BY at")]


def tables(conn) -> set[str]:
    return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_migrate_applies_in_numeric_order_then_is_a_no_op(db, write_migrations):
    found = migrations.discover(write_migrations(step(10) | step(9) | step(2)))
    assert [m.version for m in runner.migrate(db, found, "alice")] == [2, 9, 10]
    assert steps(db) == [2, 9, 10]
    rows_before = len(runner.history(db))
    assert runner.migrate(db, found, "alice") == []
    assert len(runner.history(db)) == rows_before and steps(db) == [2, 9, 10]


def test_status_reports_version_description_checksum_when_and_who(db, write_migrations):
    found = migrations.discover(write_migrations(step(1) | step(2)))
    runner.migrate(db, found[:1], "alice")
    rows = runner.status(db, found)
    assert [(r.version, r.description, r.state, r.applied_by) for r in rows] == [
        (1, "step 1", "applied", "alice"), (2, "step 2", "pending", None)]
    assert rows[0].checksum == found[0].apply.checksum and rows[0].applied_at is not None


def test_a_failing_migration_leaves_nothing_and_names_file_line_and_message(db, write_migrations):
    folder = write_migrations(step(1) | {
        "V2__breaks.sql": "CREATE TABLE t2 (x INT);\n\n-- the next statement fails\nINSERT INTO t2\n  SELECT 1 / 0;\n",
    })
    found = migrations.discover(folder)
    with pytest.raises(MigrationFailed) as err:
        runner.migrate(db, found, "alice")
    assert (err.value.path.name, err.value.line, err.value.sqlstate) == ("V2__breaks.sql", 4, "22012")
    assert "division by zero" in str(err.value) and "V2__breaks.sql:4" in str(err.value)
    assert tables(db) == {"steps", "t1"}
    assert [(r.version, r.state) for r in runner.status(db, found)] == [(1, "applied"), (2, "pending")]
    failed = db.execute("SELECT version, success, error FROM walltrack_migrations.history WHERE NOT success").fetchall()
    assert failed == [(2, False, "line 4: division by zero")]


def test_a_syntax_error_points_at_its_own_line(db, write_migrations):
    found = migrations.discover(write_migrations({"V1__typo.sql": "SELECT 1;\nCREATE TABLE t (\n  x INT,\n  y INTT\n);\n"}))
    with pytest.raises(MigrationFailed) as err:
        runner.migrate(db, found, "alice")
    assert err.value.line == 4 and 'type "intt" does not exist' in err.value.message
    assert tables(db) == {"steps"}


def test_undo_latest_then_to_n_then_all(db, write_migrations):
    found = migrations.discover(write_migrations(step(1) | step(2) | step(3) | step(4)))
    runner.migrate(db, found, "alice")
    assert [m.version for m in runner.undo(db, found, "bob")] == [4]
    assert [m.version for m in runner.undo(db, found, "bob", to=1)] == [3, 2]
    assert tables(db) == {"steps", "t1"}
    assert [m.version for m in runner.undo(db, found, "bob", to=0)] == [1]
    assert steps(db) == [1, 2, 3, 4, -4, -3, -2, -1] and tables(db) == {"steps"}
    with pytest.raises(NothingToUndo):
        runner.undo(db, found, "bob")
    assert [m.version for m in runner.migrate(db, found, "alice")] == [1, 2, 3, 4]


def test_undo_without_undo_file_undoes_nothing(db, write_migrations):
    found = migrations.discover(write_migrations(step(1) | {"V2__one_way.sql": "CREATE TABLE t2 (x INT);"}))
    runner.migrate(db, found, "alice")
    with pytest.raises(MissingUndo, match="U2__one_way.sql"):
        runner.undo(db, found, "bob", to=0)
    assert tables(db) == {"steps", "t1", "t2"}


def test_a_changed_applied_file_is_refused_until_accepted(db, write_migrations):
    folder = write_migrations(step(1) | step(2))
    runner.migrate(db, migrations.discover(folder)[:1], "alice")
    (folder / "V1__step_1.sql").write_text("CREATE TABLE t1 (x BIGINT);\n")
    found = migrations.discover(folder)
    with pytest.raises(ChecksumMismatch) as err:
        runner.migrate(db, found, "alice")
    assert err.value.versions == [1] and tables(db) == {"steps", "t1"}
    with pytest.raises(ChecksumMismatch):
        runner.undo(db, found, "alice")
    assert [(r.version, r.state) for r in runner.validate(db, found, "alice")] == [(1, "changed")]
    runner.validate(db, found, "carol", accept=True)
    assert runner.validate(db, found, "alice") == []
    assert [m.version for m in runner.migrate(db, found, "alice")] == [2]


def test_a_version_applied_elsewhere_but_missing_here_is_refused(db, write_migrations):
    folder = write_migrations(step(1) | step(2))
    runner.migrate(db, migrations.discover(folder), "alice")
    (folder / "V2__step_2.sql").unlink()
    (folder / "U2__step_2.sql").unlink()
    found = migrations.discover(folder)
    with pytest.raises(UnknownAppliedMigrations) as err:
        runner.migrate(db, found, "alice")
    assert err.value.versions == [2]
    assert [(r.version, r.state) for r in runner.validate(db, found, "alice")] == [(2, "missing")]


def test_the_runners_bookkeeping_stays_out_of_walltrack(migrated_db):
    with psycopg.connect(migrated_db) as conn:
        kinds = conn.execute("SELECT version, kind, script, performed_by FROM walltrack_migrations.history").fetchall()
        assert kinds[0] == (8, "apply", "V8__config_centralization.sql", "tests")
        assert [k[:2] for k in kinds] == [(m.version, "apply") for m in migrations.discover()]
        assert conn.execute("SELECT to_regclass('walltrack.history')").fetchone()[0] is None
