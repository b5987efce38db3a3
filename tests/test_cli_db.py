"""`walltrack-config db …` and the entry point, through the installed script on real PostgreSQL:
partial failures, undo's question, the migration lock, closed pipes, empty URLs, options after the command."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
from importlib import metadata

import psycopg
import pytest
from psycopg import sql

from conftest import CLI, run_cli
from test_cli import assert_one_line_error, history_rows
from walltrack_config import db
from walltrack_config.errors import InvalidDatabaseUrl
from walltrack_config.migrate import plan as migrations
from walltrack_config.migrate import runner

SHIPPED = [m.version for m in migrations.discover()]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "WALLTRACK_DATABASE_URL"}
    return env | (extra or {})


def states(url: str, folder=None) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return [(r.version, r.state) for r in runner.status(conn, migrations.discover(folder))]


def count(url: str, schema: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))).fetchone()[0]


# -- A: a run that fails part way says what it did and where the database stands -----------------


def test_an_undo_that_fails_part_way_says_what_it_undid_and_where_the_database_is(migrated_db):
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("CREATE VIEW public.v AS SELECT id, name FROM walltrack.risk_config")  # U8's DROP TABLE fails
    done = run_cli("--database-url", migrated_db, "db", "undo", "--to", "0", "--yes")
    assert done.returncode == 1 and "Traceback" not in done.stderr and done.stdout == ""
    undone = ", ".join(f"V{v}" for v in sorted(SHIPPED, reverse=True) if v > 8)
    assert re.fullmatch(
        r"error: U8__config_centralization\.sql:\d+: cannot drop table walltrack\.risk_config because other objects "
        r"depend on it .*\(nothing of U8__config_centralization\.sql was applied\); "
        rf"undone before it: {undone}; database is now at V8",
        done.stderr.strip().splitlines()[-1],
    )
    assert states(migrated_db) == [(v, "applied" if v == 8 else "pending") for v in SHIPPED]


def test_a_migrate_that_fails_part_way_says_what_it_applied_and_where_the_database_is(empty_db, write_migrations):
    folder = write_migrations(
        {
            "V1__ok.sql": "CREATE TABLE a (x INT);",
            "V2__breaks.sql": "SELECT 1 / 0;",
            "V3__later.sql": "CREATE TABLE c (x INT);",
        }
    )
    done = run_cli("--database-url", empty_db, "db", "--migrations-dir", str(folder), "migrate")
    assert_one_line_error(
        done,
        1,
        "error: V2__breaks.sql:1: division by zero (nothing of V2__breaks.sql was applied); "
        "applied before it: V1; database is now at V1",
    )
    assert states(empty_db, folder) == [(1, "applied"), (2, "pending"), (3, "pending")]


# -- B: undo shows what it drops and asks ---------------------------------------------------------

TWO_STEPS = {
    "V1__base.sql": "CREATE TABLE t1 (x INT);\nINSERT INTO t1 SELECT generate_series(1, 4);",
    "U1__base.sql": "DROP TABLE t1;",
    "V2__more.sql": "ALTER TABLE t1 ADD COLUMN y INT;\nUPDATE t1 SET y = x WHERE x > 1;\nCREATE TABLE t2 (z INT);",
    "U2__more.sql": "DROP TABLE t2;\nALTER TABLE t1 DROP COLUMN y;",
}


@pytest.fixture
def two_steps(empty_db, write_migrations):
    """Run walltrack-config on a database where TWO_STEPS are applied."""
    folder = write_migrations(TWO_STEPS)

    def run(*args: str, input: str = ""):
        return run_cli("--database-url", empty_db, "db", "--migrations-dir", str(folder), *args, input=input)

    assert run("migrate").returncode == 0
    run.url, run.folder = empty_db, folder
    return run


@pytest.mark.installed
def test_undo_shows_what_it_drops_then_refuses_without_a_terminal_unless_yes(two_steps):
    for piped in ("", "y\n"):  # an answer on a pipe is not an operator's answer
        done = two_steps("undo", input=piped)
        assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
        assert done.stderr.splitlines() == [
            "undo V2 more: the database would be at V1",
            "tables it drops, with their rows:",
            "  public.t2: 0 rows",
            "columns it drops, with their values:",
            "  public.t1.y: 3 values",
            "error: not undone: undo drops what is listed above and asks first, but stdin is not a terminal; "
            "pass --yes to undo without the question",
        ]
        assert states(two_steps.url, two_steps.folder) == [(1, "applied"), (2, "applied")]
    done = two_steps("undo", "--to", "0", "-y")
    assert done.returncode == 0 and "undone V2 more\nundone V1 base\ndatabase is at V0" in done.stdout
    assert "  public.t1: 4 rows" in done.stderr.splitlines()


def on_terminal(*args: str, answer: str) -> subprocess.CompletedProcess:
    """Run the CLI with a pseudo-terminal as stdin, typing `answer`."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [str(CLI), *args], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env()
        )
        os.close(slave)
        os.write(master, answer.encode())
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


@pytest.mark.parametrize("answer, undone", [("y\n", True), ("yes\n", True), ("n\n", False), ("\n", False)])
def test_undo_on_a_terminal_asks_and_undoes_only_on_yes(two_steps, answer, undone):
    done = on_terminal(
        "--database-url", two_steps.url, "db", "--migrations-dir", str(two_steps.folder), "undo", answer=answer
    )
    assert "  public.t1.y: 3 values\nundo V2? [y/N] " in done.stderr and "Traceback" not in done.stderr
    if undone:
        assert done.returncode == 0 and "undone V2 more" in done.stdout
        assert states(two_steps.url, two_steps.folder) == [(1, "applied"), (2, "pending")]
    else:
        assert done.returncode == 1 and done.stderr.endswith("error: not undone: the database is as it was\n")
        assert states(two_steps.url, two_steps.folder) == [(1, "applied"), (2, "applied")]


def test_undo_with_json_previews_on_stderr_and_prints_only_json(migrated_db):
    audit, risk = count(migrated_db, "walltrack", "config_audit_log"), count(migrated_db, "walltrack", "risk_config")
    done = run_cli("--database-url", migrated_db, "--json", "db", "undo", "--to", "7", "--yes")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert [m["version"] for m in document["undone"]] == sorted(SHIPPED, reverse=True) and document["current"] == 0
    lines = done.stderr.splitlines()
    assert f"  walltrack.config_audit_log: {audit} {'row' if audit == 1 else 'rows'}" in lines
    assert f"  walltrack.risk_config: {risk} rows" in lines


# -- C: a runner waiting for another says so, and can give up --------------------------------------


@pytest.fixture
def holder(empty_db):
    """Another session holding the runners' lock, as a migration in another process would."""
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [runner.LOCK_KEY])
        conn.pid = conn.info.backend_pid
        yield conn


def untouched(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT to_regnamespace('walltrack_migrations') IS NULL").fetchone()[0]


@pytest.mark.parametrize(
    "args",
    [
        ["db", "migrate", "--lock-timeout", "0.5"],
        ["db", "--lock-timeout", "0.2", "validate", "--accept"],
        ["db", "--lock-timeout", "30", "undo", "--yes", "--lock-timeout", "0"],  # after the command, it wins
    ],
)
def test_a_runner_waiting_for_the_lock_names_the_holder_and_gives_up_after_lock_timeout(empty_db, holder, args):
    done = run_cli("--database-url", empty_db, *args, timeout=20)
    waiting = f"waiting for another walltrack-config migration (pid {holder.pid}) to finish…"
    assert done.returncode == 1 and done.stdout == "" and "Traceback" not in done.stderr
    first, last = done.stderr.strip().splitlines()
    assert first == waiting
    assert last.startswith("error: ") and f"migration (pid {holder.pid}) to finish; nothing was changed" in last
    assert untouched(empty_db)


def test_a_waiting_runner_goes_on_once_the_lock_is_free_and_ctrl_c_stops_it_with_130(
    empty_db, holder, write_migrations
):
    folder = write_migrations({"V1__a.sql": "CREATE TABLE a (x INT);"})
    args = [str(CLI), "--database-url", empty_db, "db", "--migrations-dir", str(folder), "migrate"]
    waiting = f"waiting for another walltrack-config migration (pid {holder.pid}) to finish…\n"

    stopped = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    assert stopped.stderr.readline() == waiting
    stopped.send_signal(signal.SIGINT)
    assert stopped.wait(30) == 130 and "Traceback" not in stopped.stderr.read()
    assert untouched(empty_db)

    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    assert proc.stderr.readline() == waiting
    holder.execute("SELECT pg_advisory_unlock(%s)", [runner.LOCK_KEY])
    assert proc.wait(30) == 0 and "applied V1 a" in proc.stdout.read() and proc.stderr.read() == ""
    assert history_rows(empty_db) == [(1, "apply", True)]


# -- D: a closed output pipe ends the command quietly -----------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["show", "trading"],
        ["list", "risk"],
        ["export"],
        ["db", "status"],
        ["--json", "db", "status"],
        ["--version"],
    ],
)
def test_a_closed_output_pipe_ends_the_command_quietly_with_0(migrated_db, args):
    full = [str(CLI), "--database-url", migrated_db, *args]
    # Closed before the command writes (EPIPE on its first write, every time), then closed after one line (a race).
    for closed_at_once in (True, False, False, False):
        read_end, write_end = os.pipe()
        if closed_at_once:
            os.close(read_end)
        proc = subprocess.Popen(full, stdout=write_end, stderr=subprocess.PIPE, env=cli_env())
        os.close(write_end)
        if not closed_at_once:
            with os.fdopen(read_end, "rb") as reader:
                assert reader.readline()
        err = proc.stderr.read()
        assert (proc.wait(60), err) == (0, b""), (args, closed_at_once)


@pytest.mark.parametrize(
    "args, code, needle",
    [
        (["db", "undo", "--to", "-1"], 2, "Error: Invalid value for '--to'"),
        (["db", "migrate", "--lock-timeout", "soon"], 2, "Error: Invalid value for '--lock-timeout'"),
        (["db", "migrate", "--lock-timeout", "nan"], 2, "Error: Invalid value for '--lock-timeout'"),
        (["--bogus", "db", "status"], 2, "Error: No such option: --bogus"),
        (["show", "risk", "--actor"], 2, "Error: No such option: --actor"),
        ([], 2, "Usage: walltrack-config"),
    ],
)
def test_usage_errors_still_exit_2_with_clicks_message(args, code, needle):
    done = run_cli(*args)
    assert done.returncode == code and needle in done.stderr and "Traceback" not in done.stderr


# -- E: empty URLs, options after the command, --version ---------------------------------------------


@pytest.mark.parametrize(
    "args, env, needle",
    [
        (["--database-url", ""], {}, "the URL given (--database-url) is empty"),
        (["--database-url=   "], {}, "the URL given (--database-url) is empty"),
        (
            [],
            {"WALLTRACK_DATABASE_URL": ""},
            "WALLTRACK_DATABASE_URL is set but empty; unset it to use the embedded server",
        ),
        ([], {"WALLTRACK_DATABASE_URL": " \t"}, "WALLTRACK_DATABASE_URL is set but empty"),
    ],
)
def test_an_empty_database_url_is_an_error_not_the_embedded_server(tmp_path, args, env, needle):
    home = tmp_path / "home"
    done = run_cli(*args, "db", "status", env={"WALLTRACK_HOME": str(home), **env})
    assert_one_line_error(done, 2, "invalid database URL", needle, "embedded server")
    assert not home.exists()  # no embedded server was started in its place


def test_resolve_url_refuses_an_empty_url_and_only_an_unset_one_means_embedded(monkeypatch):
    monkeypatch.setattr(db, "embedded_url", lambda: pytest.fail("the embedded server was started"))
    monkeypatch.setenv("WALLTRACK_DATABASE_URL", "postgresql://elsewhere/db")
    with pytest.raises(InvalidDatabaseUrl, match=r"the URL given \(--database-url\) is empty"):
        db.resolve_url("")
    monkeypatch.setenv("WALLTRACK_DATABASE_URL", "\n")
    with pytest.raises(InvalidDatabaseUrl, match="WALLTRACK_DATABASE_URL is set but empty") as err:
        db.resolve_url()
    assert err.value.exit_code == 2
    monkeypatch.delenv("WALLTRACK_DATABASE_URL")
    monkeypatch.setattr(db, "embedded_url", lambda: "the embedded one")
    assert db.resolve_url() == "the embedded one"


def test_global_options_work_after_the_command_too(migrated_db, empty_db, write_migrations):
    before = run_cli("--database-url", migrated_db, "--json", "show", "risk")
    after = run_cli("show", "risk", "--json", "--database-url", migrated_db)
    assert after.returncode == 0 and json.loads(after.stdout) == json.loads(before.stdout)
    status = run_cli("db", "status", "--json", f"--database-url={migrated_db}")
    assert [(r["version"], r["state"]) for r in json.loads(status.stdout)] == [(v, "applied") for v in SHIPPED]
    # A value that looks like a global option stays the value it is.
    named = run_cli("--database-url", migrated_db, "draft", "risk", "--name", "--json", "--json")
    assert named.returncode == 0 and json.loads(named.stdout)["name"] == "--json"

    folder = write_migrations({"V1__a.sql": "SELECT 1;"})
    done = run_cli(
        "db", "--migrations-dir", str(folder), "migrate", "--actor=ops", "--database-url", empty_db, "--json"
    )
    assert json.loads(done.stdout)["current"] == 1
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT performed_by FROM walltrack_migrations.history").fetchall() == [("ops",)]


@pytest.mark.installed
def test_version_prints_the_installed_version_and_stays_light():
    done = run_cli("--version")
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"walltrack-config {metadata.version('walltrack-config')}\n",
        "",
    )
    for flag in ("--version", "--help"):
        probe = (
            f"import sys\nsys.argv = ['walltrack-config', {flag!r}]\nfrom walltrack_config.cli import main\n"
            "try:\n    main()\nexcept SystemExit as exc:\n"
            "    print(exc.code, sorted(m for m in ('psycopg', 'rich', 'pglast') if m in sys.modules), file=sys.stderr)"
        )
        ran = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
        assert ran.stderr.strip() == "0 []", ran.stderr
