"""The walltrack-config entry point, as an operator runs it: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from conftest import CLI, LATEST, run_cli


def assert_one_line_error(done: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for needle in needles:
        assert needle in lines[0]


def history_rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass('walltrack_migrations.history')").fetchone()[0] is None:
            return []
        return conn.execute("SELECT version, kind, success FROM walltrack_migrations.history ORDER BY id").fetchall()


@pytest.mark.installed
def test_migrate_status_undo_round_trip(empty_db):
    done = run_cli("--database-url", empty_db, "db", "migrate")
    assert done.returncode == 0 and "applied V8 config centralization" in done.stdout
    again = run_cli("--database-url", empty_db, "db", "migrate")
    assert again.returncode == 0 and f"nothing to migrate: database is at V{LATEST}" in again.stdout
    status = json.loads(run_cli("--database-url", empty_db, "--json", "--actor", "ops", "db", "status").stdout)
    assert [(r["version"], r["state"], r["applied_by"]) for r in status][:1] == [(8, "applied", os_user())]
    undone = run_cli("--database-url", empty_db, "--actor", "ops", "db", "undo", "--to", "0", "--yes")
    assert undone.returncode == 0 and "undone V8" in undone.stdout
    assert history_rows(empty_db)[-1] == (8, "undo", True)


def os_user() -> str:
    import getpass

    return getpass.getuser()


@pytest.mark.installed
def test_url_comes_from_the_environment_too(empty_db):
    done = run_cli("db", "migrate", env={"WALLTRACK_DATABASE_URL": empty_db})
    assert done.returncode == 0 and history_rows(empty_db)[0] == (8, "apply", True)


def test_undo_with_nothing_applied_is_refused(empty_db):
    assert_one_line_error(run_cli("--database-url", empty_db, "db", "undo"), 1, "nothing to undo")


@pytest.mark.parametrize(
    "url, needle",
    [
        ("postgresql://localhost:notaport/db", "invalid database URL"),
        ("mysql://root@localhost/walltrack", "scheme 'mysql'"),
        ("host=localhost dbname", 'missing "=" after "dbname"'),
        ("postgresql://127.0.0.1:1/walltrack", "cannot connect to 127.0.0.1:1/walltrack"),
    ],
)
def test_bad_urls_get_one_line_and_exit_2(url, needle):
    assert_one_line_error(run_cli("--database-url", url, "db", "status"), 2, needle)


def test_wrong_credentials_get_one_line_and_exit_2(server, empty_db):
    url = make_conninfo(empty_db, user="no_such_operator", password="secret")
    done = run_cli("--database-url", url, "db", "migrate")
    assert_one_line_error(done, 2, "no_such_operator", "cannot connect")
    assert "secret" not in done.stderr


def test_unknown_command_is_a_usage_error():
    done = run_cli("db", "fly")
    assert done.returncode == 2 and "No such command 'fly'" in done.stderr and "Traceback" not in done.stderr


def test_malformed_folder_is_refused_before_the_database_is_touched(empty_db, write_migrations):
    folder = write_migrations({"V1__a.sql": "SELECT 1;", "V1__b.sql": "SELECT 2;", "V2_bad.sql": "SELECT 3;"})
    done = run_cli("--database-url", empty_db, "db", "--migrations-dir", str(folder), "migrate")
    assert_one_line_error(done, 1, "duplicate version 1", "V2_bad.sql")
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT to_regnamespace('walltrack_migrations')").fetchone()[0] is None


def test_a_failing_migration_names_file_and_line(empty_db, write_migrations):
    folder = write_migrations({"V1__ok.sql": "CREATE TABLE a (x INT);", "V2__breaks.sql": "\nSELECT 1 / 0;\n"})
    done = run_cli("--database-url", empty_db, "db", "--migrations-dir", str(folder), "migrate")
    assert_one_line_error(done, 1, "V2__breaks.sql:2: division by zero")
    assert history_rows(empty_db) == [(1, "apply", True), (2, "apply", False)]


def test_validate_reports_drift_with_exit_1_and_accept_clears_it(empty_db, write_migrations):
    folder = write_migrations({"V1__a.sql": "CREATE TABLE a (x INT);"})
    args = ["--database-url", empty_db, "db", "--migrations-dir", str(folder)]
    assert run_cli(*args, "migrate").returncode == 0
    (folder / "V1__a.sql").write_text("CREATE TABLE a (x BIGINT);")
    assert_one_line_error(run_cli(*args, "migrate"), 1, "V1__a.sql", "db validate --accept")
    report = run_cli(*args, "validate")
    assert report.returncode == 1 and "V1 a: changed" in report.stdout
    assert run_cli(*args, "validate", "--accept").returncode == 0
    assert run_cli(*args, "validate").returncode == 0
    assert run_cli(*args, "migrate").returncode == 0


def test_concurrent_runners_apply_once_and_all_exit_0(empty_db, write_migrations):
    folder = write_migrations(
        {
            "V1__slow.sql": "SELECT pg_sleep(0.5);\nCREATE TABLE a (x INT);",
            "V2__next.sql": "CREATE TABLE b (x INT);",
        }
    )
    args = [str(CLI), "--database-url", empty_db, "db", "--migrations-dir", str(folder), "migrate"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [(p.wait(60), p.stdout.read(), p.stderr.read()) for p in procs]
    assert [code for code, _, _ in results] == [0, 0, 0, 0], results
    assert sum("applied V1" in out for _, out, _ in results) == 1
    assert sum("nothing to migrate" in out for _, out, _ in results) == 3
    assert history_rows(empty_db) == [(1, "apply", True), (2, "apply", True)]


@pytest.mark.installed
def test_embedded_default_needs_nothing_but_python(tmp_path):
    env = {"WALLTRACK_HOME": str(tmp_path / "home")}
    try:
        done = run_cli("db", "migrate", env=env)
        assert done.returncode == 0, done.stderr
        assert "applied V8" in done.stdout
        status = json.loads(run_cli("--json", "db", "status", env=env).stdout)
        assert status[0]["state"] == "applied"
        assert json.loads(run_cli("--json", "embedded", "status", env=env).stdout)["running"] is True
    finally:
        stop = run_cli("embedded", "stop", env=env)
    assert stop.returncode == 0 and "stopped" in stop.stdout
    assert (tmp_path / "home" / "pgdata" / "PG_VERSION").exists()


def test_help_does_not_import_the_database_stack():
    probe = (
        "import sys, walltrack_config.cli; print(sorted(m for m in ('psycopg', 'rich', 'pglast') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.stdout.strip() == "[]"
    assert "db" in run_cli("--help").stdout


def test_an_embedded_server_that_cannot_start_is_one_line_and_exit_2(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where WALLTRACK_HOME should be a folder")
    done = run_cli("db", "migrate", env={"WALLTRACK_HOME": str(blocker)})
    assert_one_line_error(done, 2, "embedded PostgreSQL", "not-a-folder")
    assert run_cli("embedded", "stop", env={"WALLTRACK_HOME": str(tmp_path / "empty")}).stdout.strip() == "not running"
