"""Every command prints the same three ways, through the installed script: plain aligned text when piped
(what `| grep` and scripts want), a rich table on a terminal, and one JSON document with --json."""

from __future__ import annotations

import json
import os
import pty
import subprocess

import pytest

from conftest import CLI, run_cli
from walltrack_config.migrate import plan as migrations

pytestmark = pytest.mark.installed

SHIPPED = [m.version for m in migrations.discover()]
ESCAPES = ("\x1b", "─", "━", "│")  # terminal styling and rich's rules: never in piped output


def on_a_terminal(*args: str) -> subprocess.CompletedProcess:
    """The script with its stdout on a pseudo-terminal, as an operator's shell runs it."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("WALLTRACK_DATABASE_URL", "NO_COLOR")}
    try:
        proc = subprocess.Popen(
            [str(CLI), *args],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
            env=env | {"TERM": "xterm-256color", "COLUMNS": "200"},
        )
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal's other end closed: the command is done
                break
            if not chunk:
                break
            chunks.append(chunk)
        err = proc.stderr.read().decode()
        proc.wait(60)
    finally:
        os.close(master)
    return subprocess.CompletedProcess(args, proc.returncode, b"".join(chunks).decode().replace("\r\n", "\n"), err)


def test_db_status_piped_is_plain_aligned_text_that_grep_can_read(migrated_db):
    done = run_cli("--database-url", migrated_db, "db", "status")
    assert done.returncode == 0, done.stderr
    assert not any(mark in done.stdout for mark in ESCAPES)
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["version", "description", "state", "checksum", "applied", "at", "by"]
    assert [row.split()[0] for row in rows] == [f"V{v}" for v in SHIPPED]
    # One line per migration, each column starting where its header does: `db status | grep applied` works.
    state_at = header.index("state")
    assert all(row[state_at:].startswith("applied ") for row in rows)
    assert [row for row in rows if "applied" in row] == rows


def test_db_status_on_a_terminal_is_a_rich_table(migrated_db):
    done = on_a_terminal("--database-url", migrated_db, "db", "status")
    assert done.returncode == 0, done.stderr
    assert "─" in done.stdout and "\x1b[" in done.stdout  # rich's rule under the bold headers
    for version in SHIPPED:
        assert f"V{version}" in done.stdout


def test_db_status_with_json_is_one_document(migrated_db):
    done = run_cli("--database-url", migrated_db, "--json", "db", "status")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [(r["version"], r["state"]) for r in rows] == [(v, "applied") for v in SHIPPED]
    assert set(rows[0]) == {"version", "description", "state", "checksum", "applied_at", "applied_by"}


@pytest.mark.parametrize(
    "args, text",
    [
        (["db", "validate"], "all applied migrations match their files\n"),
        (["db", "migrate"], f"nothing to migrate: database is at V{SHIPPED[-1]}\n"),
    ],
)
def test_db_reports_are_plain_lines_when_piped(migrated_db, args, text):
    done = run_cli("--database-url", migrated_db, *args)
    assert (done.returncode, done.stdout) == (0, text), done.stderr


@pytest.mark.parametrize(
    "args, expected",
    [
        (["db", "validate"], []),
        (["db", "migrate"], {"applied": [], "current": SHIPPED[-1]}),
    ],
)
def test_db_reports_with_json_are_one_document(migrated_db, args, expected):
    done = run_cli("--database-url", migrated_db, "--json", *args)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected


@pytest.mark.parametrize(
    "args",
    [
        ["show", "risk"],
        ["list", "risk"],
        ["history", "risk"],
        ["db", "status"],
        ["db", "validate"],
        ["diff", "risk", "active", "default"],
    ],
)
def test_every_command_is_plain_when_piped_and_json_on_request(migrated_db, args):
    piped = run_cli("--database-url", migrated_db, *args)
    assert piped.returncode == 0 and piped.stdout, piped.stderr
    assert not any(mark in piped.stdout for mark in ESCAPES)
    as_json = run_cli("--database-url", migrated_db, "--json", *args)
    assert as_json.returncode == 0, as_json.stderr
    json.loads(as_json.stdout)  # one document, nothing around it


def test_embedded_status_is_a_plain_line_or_one_document(tmp_path):
    env = {"WALLTRACK_HOME": str(tmp_path)}
    done = run_cli("embedded", "status", env=env)
    assert (done.returncode, done.stdout) == (0, f"{tmp_path / 'pgdata'}: stopped\n")
    done = run_cli("--json", "embedded", "status", env=env)
    assert json.loads(done.stdout) == {"pgdata": str(tmp_path / "pgdata"), "running": False}
