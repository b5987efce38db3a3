"""The migration runner's database side: history table, advisory lock, apply and undo.

Plans come from the pure core in `migrations`; this module only carries them out.
Each script runs in one transaction, statement by statement, so a failure names its line.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from . import migrations as core
from .errors import MigrationFailed
from .migrations import Applied, HistoryRow, Migration, Script, StatusRow

if TYPE_CHECKING:
    import psycopg

# The runner's own bookkeeping lives apart from walltrack, so undoing V8 can drop that schema whole.
SCHEMA = "walltrack_migrations"
# One key for every walltrack-config runner on a database: 'WALLTRK' in ASCII.
LOCK_KEY = 0x57414C4C54524B

_HISTORY_DDL = (
    "CREATE SCHEMA IF NOT EXISTS walltrack_migrations",
    """CREATE TABLE IF NOT EXISTS walltrack_migrations.history (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        version INTEGER NOT NULL,
        description TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('apply', 'undo', 'accept')),
        script TEXT NOT NULL,
        checksum TEXT NOT NULL,
        success BOOLEAN NOT NULL,
        error TEXT,
        execution_ms INTEGER NOT NULL,
        performed_by TEXT NOT NULL,
        db_user TEXT NOT NULL DEFAULT current_user,
        performed_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )""",
)


def migrate(conn: psycopg.Connection, found: list[Migration], actor: str) -> list[Migration]:
    """Apply every pending migration, lowest first; returns what was applied (empty: nothing to do)."""
    with _locked(conn):
        pending = core.plan_migrate(found, _applied(conn))
        for migration in pending:
            _run(conn, migration, migration.apply, "apply", actor)
        return pending


def undo(conn: psycopg.Connection, found: list[Migration], actor: str, to: int | None = None) -> list[Migration]:
    """Undo the latest applied migration, or every one above `to`; returns them, highest first."""
    with _locked(conn):
        chosen = core.plan_undo(found, _applied(conn), to)
        for migration in chosen:
            assert migration.undo is not None  # plan_undo refuses a migration without one
            _run(conn, migration, migration.undo, "undo", actor)
        return chosen


def status(conn: psycopg.Connection, found: list[Migration]) -> list[StatusRow]:
    """Applied, pending, changed and missing versions; reads only."""
    return core.status(found, _applied(conn))


def validate(conn: psycopg.Connection, found: list[Migration], actor: str, accept: bool = False) -> list[StatusRow]:
    """Applied files whose content changed (or that are missing); with accept, record the new checksums."""
    if not accept:
        return [row for row in status(conn, found) if row.state in ("changed", "missing")]
    with _locked(conn):
        rows = [row for row in core.status(found, _applied(conn)) if row.state in ("changed", "missing")]
        by_version = {m.version: m for m in found}
        for row in rows:
            if row.state == "changed":
                _record(conn, by_version[row.version], by_version[row.version].apply, "accept", actor, True, 0)
        return rows


def history(conn: psycopg.Connection) -> list[HistoryRow]:
    if not _has_history(conn):
        return []
    cur = conn.execute(
        "SELECT version, kind, checksum, success, performed_by, performed_at"
        " FROM walltrack_migrations.history ORDER BY id"
    )
    return [HistoryRow(*row) for row in cur]


def _applied(conn: psycopg.Connection) -> dict[int, Applied]:
    return core.replay(history(conn))


def _has_history(conn: psycopg.Connection) -> bool:
    return conn.execute("SELECT to_regclass('walltrack_migrations.history') IS NOT NULL").fetchone()[0]


@contextmanager
def _locked(conn: psycopg.Connection) -> Iterator[None]:
    """Serialise runners: one applies, the others wait, then find nothing left to do."""
    conn.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
    try:
        if not _has_history(conn):  # created under the lock, so two first runs cannot race on it
            for ddl in _HISTORY_DDL:
                conn.execute(ddl)
        yield
    finally:
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])


def _run(conn: psycopg.Connection, migration: Migration, script: Script, kind: str, actor: str) -> None:
    import psycopg

    started = time.perf_counter()
    statement = None
    try:
        with conn.transaction(), conn.cursor() as cur:
            for statement in script.statements:
                cur.execute(statement.sql)
            _record(conn, migration, script, kind, actor, True, _ms(started))
    except psycopg.Error as exc:
        line = _line(statement, exc)
        message = _message(exc)
        if not conn.closed and not conn.broken:
            _record(conn, migration, script, kind, actor, False, _ms(started), f"line {line}: {message}")
        raise MigrationFailed(script.path, line, message, exc.sqlstate) from None


def _record(conn, migration: Migration, script: Script, kind: str, actor: str, success: bool,
            ms: int, error: str | None = None) -> None:
    conn.execute(
        "INSERT INTO walltrack_migrations.history"
        " (version, description, kind, script, checksum, success, error, execution_ms, performed_by)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        [migration.version, migration.description, kind, script.path.name, script.checksum,
         success, error, ms, actor],
    )


def _line(statement: core.Statement | None, exc: Exception) -> int:
    if statement is None:
        return 1
    position = getattr(getattr(exc, "diag", None), "statement_position", None)
    offset = statement.sql.count("\n", 0, int(position) - 1) if position else 0
    return statement.line + offset


def _message(exc: Exception) -> str:
    diag = getattr(exc, "diag", None)
    primary = (diag.message_primary if diag else None) or " ".join(str(exc).split())
    hint = diag.message_hint if diag else None
    return f"{primary} (hint: {hint})" if hint else primary


def _ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
