"""The runner against real PostgreSQL: order, atomicity, history, drift, undo."""

from __future__ import annotations

import threading

import psycopg
import pytest
from psycopg import sql

from conftest import LATEST, catalog
from walltrack_config.errors import (
    ChecksumMismatch,
    MigrationFailed,
    MigrationLockTimeout,
    MissingUndo,
    NothingToUndo,
    UnknownAppliedMigrations,
)
from walltrack_config.migrate import plan as migrations
from walltrack_config.migrate import runner


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
        (1, "step 1", "applied", "alice"),
        (2, "step 2", "pending", None),
    ]
    assert rows[0].checksum == found[0].apply.checksum and rows[0].applied_at is not None


def test_a_failing_migration_leaves_nothing_and_names_file_line_and_message(db, write_migrations):
    folder = write_migrations(
        step(1)
        | {
            "V2__breaks.sql": (
                "CREATE TABLE t2 (x INT);\n\n-- the next statement fails\nINSERT INTO t2\n  SELECT 1 / 0;\n"
            ),
        }
    )
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
    found = migrations.discover(
        write_migrations({"V1__typo.sql": "SELECT 1;\nCREATE TABLE t (\n  x INT,\n  y INTT\n);\n"})
    )
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
    with pytest.raises(MissingUndo, match=r"U2__one_way\.sql"):
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


def test_a_failed_migrate_says_what_it_applied_before_and_where_the_database_stands(db, write_migrations):
    found = migrations.discover(write_migrations(step(1) | step(3) | {"V2__breaks.sql": "SELECT 1 / 0;\n"}))
    with pytest.raises(MigrationFailed) as err:
        runner.migrate(db, found, "alice")
    assert (err.value.path.name, err.value.done, err.value.current) == ("V2__breaks.sql", [1], 1)
    assert str(err.value).endswith(
        "(nothing of V2__breaks.sql was applied); applied before it: V1; database is now at V1"
    )
    assert [(r.version, r.state) for r in runner.status(db, found)] == [(1, "applied"), (2, "pending"), (3, "pending")]
    with pytest.raises(MigrationFailed) as again:  # nothing applied in this run: it says where the database still is
        runner.migrate(db, found, "alice")
    assert (again.value.done, again.value.current) == ([], 1) and str(again.value).endswith("; database is still at V1")


def test_a_failed_undo_says_what_it_undid_before_and_where_the_database_stands(db, write_migrations):
    found = migrations.discover(write_migrations(step(1) | step(2) | step(3)))
    runner.migrate(db, found, "alice")
    db.execute("CREATE VIEW v1 AS SELECT x FROM t1")  # U1's DROP TABLE t1 now fails
    with pytest.raises(MigrationFailed) as err:
        runner.undo(db, found, "bob", to=0)
    assert (err.value.path.name, err.value.line, err.value.done, err.value.current) == ("U1__step_1.sql", 1, [3, 2], 1)
    assert "undone before it: V3, V2; database is now at V1" in str(err.value)
    assert [(r.version, r.state) for r in runner.status(db, found)] == [(1, "applied"), (2, "pending"), (3, "pending")]
    assert tables(db) == {"steps", "t1"}


def preview_steps() -> dict[str, str]:
    return {
        "V1__base.sql": "CREATE TABLE t1 (x INT);",
        "U1__base.sql": "DROP TABLE t1;",
        "V2__more.sql": (
            'ALTER TABLE t1 ADD COLUMN y INT;\nCREATE TABLE t2 (z INT);\nCREATE TABLE "Odd Name" ("a b" INT);'
        ),
        "U2__more.sql": 'DROP TABLE "Odd Name";\nDROP TABLE t2;\nALTER TABLE t1 DROP COLUMN y;',
    }


def test_undo_preview_counts_what_would_be_dropped_and_changes_nothing(db, empty_db, write_migrations):
    found = migrations.discover(write_migrations(preview_steps()))
    runner.migrate(db, found, "alice")
    db.execute("INSERT INTO t1 VALUES (1, 10), (2, NULL), (3, 30)")
    db.execute("INSERT INTO t2 SELECT generate_series(1, 5)")
    before, history = catalog(empty_db), runner.history(db)

    latest = runner.undo_preview(db, found)
    assert (latest.versions, latest.current, latest.failure) == ([2], 1, None)
    assert [(t.name, t.count) for t in latest.tables] == [("public.Odd Name", 0), ("public.t2", 5)]
    assert [(c.name, c.count) for c in latest.columns] == [("public.t1.y", 2)]  # non-null values only

    everything = runner.undo_preview(db, found, to=0)
    assert (everything.versions, everything.current) == ([2, 1], 0)
    assert [(t.name, t.count) for t in everything.tables] == [
        ("public.Odd Name", 0),
        ("public.t1", 3),
        ("public.t2", 5),
    ]
    assert everything.columns == []  # t1.y goes with t1

    assert catalog(empty_db) == before and runner.history(db) == history
    assert db.execute("SELECT count(*) FROM t1").fetchone()[0] == 3
    assert [m.version for m in runner.undo(db, found, "bob", to=0)] == [2, 1]


def test_undo_preview_reports_an_undo_that_would_fail_without_raising(db, empty_db, write_migrations):
    found = migrations.discover(write_migrations(preview_steps()))
    runner.migrate(db, found, "alice")
    db.execute("CREATE VIEW v AS SELECT x FROM t1")
    before = catalog(empty_db)
    preview = runner.undo_preview(db, found, to=0)
    assert (preview.failure.path.name, preview.failure.done, preview.current) == ("U1__base.sql", [2], 1)
    assert "cannot drop table t1" in preview.failure.message
    assert [t.name for t in preview.tables] == ["public.Odd Name", "public.t2"]  # what U2 alone would drop
    assert catalog(empty_db) == before


def test_undo_preview_of_the_shipped_migrations_counts_every_config_table_and_the_audit_log(migrated_db):
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        found = migrations.discover()
        preview = runner.undo_preview(conn, found, to=0)
        counted = {t.name: t.count for t in preview.tables}
        for table in ("config_audit_log", "trading_config", "risk_config", "api_config"):
            rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("walltrack", table)))
            assert counted[f"walltrack.{table}"] == rows.fetchone()[0]
        assert preview.versions == sorted((m.version for m in found), reverse=True) and preview.current == 0
        assert [r.state for r in runner.status(conn, found)] == ["applied"] * len(found)
        assert max(m.version for m in found) == LATEST


@pytest.fixture
def holder(empty_db):
    """A second session holding the runners' lock on the same database, as a runner in another process would."""
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [runner.LOCK_KEY])
        yield conn


def test_a_runner_waiting_for_the_lock_names_the_holder_and_gives_up_after_the_timeout(db, holder, write_migrations):
    found = migrations.discover(write_migrations(step(1)))
    heard: list[int | None] = []
    lock_timeout = db.execute("SHOW lock_timeout").fetchone()[0]
    with pytest.raises(MigrationLockTimeout) as err:
        runner.migrate(db, found, "alice", on_wait=heard.append, lock_timeout=0.2)
    assert heard == [holder.info.backend_pid] and err.value.pid == holder.info.backend_pid
    assert f"(pid {holder.info.backend_pid})" in str(err.value) and "nothing was changed" in str(err.value)
    with pytest.raises(MigrationLockTimeout):
        runner.undo_preview(db, found, on_wait=heard.append, lock_timeout=0)
    assert tables(db) == {"steps"} and runner.history(db) == []
    assert db.execute("SHOW lock_timeout").fetchone()[0] == lock_timeout  # the session's own setting is back

    holder.execute("SELECT pg_advisory_unlock(%s)", [runner.LOCK_KEY])
    assert [m.version for m in runner.migrate(db, found, "alice", on_wait=heard.append, lock_timeout=0.2)] == [1]
    assert len(heard) == 2  # a free lock is taken without a word


def test_the_lock_can_be_held_across_calls_and_keeps_others_out_until_released(db, empty_db, write_migrations):
    found = migrations.discover(write_migrations(step(1)))
    with psycopg.connect(empty_db, autocommit=True) as other:
        with runner.lock(db):
            runner.migrate(db, found, "alice", on_wait=pytest.fail)  # its own lock again: no wait
            with pytest.raises(MigrationLockTimeout):
                runner.undo(other, found, "bob", lock_timeout=0.1)
        assert [m.version for m in runner.undo(other, found, "bob", lock_timeout=0.1)] == [1]


def test_a_timeout_beyond_what_postgresql_can_express_waits_as_long_as_it_takes(db, holder, write_migrations):
    found = migrations.discover(write_migrations(step(1)))
    release = threading.Timer(0.3, holder.execute, ["SELECT pg_advisory_unlock(%s)", [runner.LOCK_KEY]])
    release.start()
    try:
        assert [m.version for m in runner.migrate(db, found, "alice", lock_timeout=1e12)] == [1]
    finally:
        release.join()
