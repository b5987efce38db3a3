"""The migration runner's database side: history table, advisory lock, apply and undo.

Plans come from the pure core in `migrations`; this module only carries them out.
Each script runs in one transaction, statement by statement, so a failure names its line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..db import scalar
from ..errors import MigrationFailed, MigrationLockTimeout
from . import plan as core
from .plan import Applied, HistoryRow, Loss, Migration, Relation, Script, StatusRow, UndoPreview

if TYPE_CHECKING:
    import psycopg

#: Told the pid of the runner holding the lock (None if it could not be seen) before this one waits for it.
OnWait = Callable[[int | None], None]

# The runner's own bookkeeping lives apart from walltrack, so undoing V8 can drop that schema whole.
SCHEMA = "walltrack_migrations"
# One key for every walltrack-config runner on a database: 'WALLTRK' in ASCII.
LOCK_KEY = 0x57414C4C54524B
_MAX_LOCK_TIMEOUT_MS = 2**31 - 1  # PostgreSQL's ceiling for lock_timeout

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


def migrate(conn: psycopg.Connection, found: list[Migration], actor: str, *,
            on_wait: OnWait | None = None, lock_timeout: float | None = None) -> list[Migration]:
    """Apply every pending migration, lowest first; returns what was applied (empty: nothing to do).

    A failing file leaves nothing of itself; the MigrationFailed says which files this run applied
    before it and where the database now stands.
    """
    with lock(conn, on_wait, lock_timeout):
        applied = _applied(conn)
        pending = core.plan_migrate(found, applied)
        done: list[int] = []
        for migration in pending:
            try:
                _run(conn, migration, migration.apply, "apply", actor)
            except MigrationFailed as exc:
                # The same failure, told what this run did before it; its cause is the database's error.
                raise exc.after(done, max([*applied, *done], default=0)) from exc.__cause__
            done.append(migration.version)
        return pending


def undo(conn: psycopg.Connection, found: list[Migration], actor: str, to: int | None = None, *,
         on_wait: OnWait | None = None, lock_timeout: float | None = None) -> list[Migration]:
    """Undo the latest applied migration, or every one above `to`; returns them, highest first.

    As with migrate, a failure reports what this run undid before it and where the database stands.
    """
    with lock(conn, on_wait, lock_timeout):
        applied = _applied(conn)
        chosen = core.plan_undo(found, applied, to)
        done: list[int] = []
        for migration in chosen:
            assert migration.undo is not None  # plan_undo refuses a migration without one
            try:
                _run(conn, migration, migration.undo, "undo", actor)
            except MigrationFailed as exc:
                raise exc.after(done, max(set(applied) - set(done), default=0)) from exc.__cause__
            done.append(migration.version)
        return chosen


def undo_preview(conn: psycopg.Connection, found: list[Migration], to: int | None = None, *,
                 on_wait: OnWait | None = None, lock_timeout: float | None = None) -> UndoPreview:
    """What `undo` would drop: tables with their row counts, columns with their non-null values.

    Exact whatever the undo files say: it runs them inside a savepoint, compares the user tables and
    columns before and after, rolls back, counts what would go, and rolls everything back. It changes
    nothing and writes no history; an undo file that would fail is reported, not raised.
    """
    import psycopg

    with lock(conn, on_wait, lock_timeout):
        applied = _applied(conn)
        chosen = core.plan_undo(found, applied, to)
        with conn.transaction() as everything:
            before = _relations(conn)
            failure: MigrationFailed | None = None
            done: list[int] = []
            with conn.transaction() as trial:
                for migration in chosen:
                    assert migration.undo is not None
                    try:
                        with conn.transaction():  # its own savepoint, so a failure keeps the ones before it
                            _execute(conn, migration.undo)
                    except MigrationFailed as exc:
                        failure = exc.after(done, max(set(applied) - set(done), default=0))
                        break
                    done.append(migration.version)
                after = _relations(conn)
                raise psycopg.Rollback(trial)
            tables, columns = core.vanished(before, after)
            preview = UndoPreview(
                plan=chosen,
                tables=[Loss(s, t, None, _count(conn, s, t, None)) for s, t, _ in tables],
                columns=[Loss(s, t, c, _count(conn, s, t, c)) for s, t, c in columns],
                failure=failure,
                current=max(set(applied) - set(done), default=0),
            )
            raise psycopg.Rollback(everything)
        return preview


def status(conn: psycopg.Connection, found: list[Migration]) -> list[StatusRow]:
    """Applied, pending, changed and missing versions; reads only."""
    return core.status(found, _applied(conn))


def validate(conn: psycopg.Connection, found: list[Migration], actor: str, accept: bool = False, *,
             on_wait: OnWait | None = None, lock_timeout: float | None = None) -> list[StatusRow]:
    """Applied files whose content changed (or that are missing); with accept, record the new checksums."""
    if not accept:
        return [row for row in status(conn, found) if row.state in ("changed", "missing")]
    with lock(conn, on_wait, lock_timeout):
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
    return scalar(conn, "SELECT to_regclass('walltrack_migrations.history') IS NOT NULL", None, bool)


@contextmanager
def lock(conn: psycopg.Connection, on_wait: OnWait | None = None, timeout: float | None = None) -> Iterator[None]:
    """Serialise runners: one applies, the others wait, then find nothing left to do.

    Re-entrant within a session (PostgreSQL counts advisory locks), so a caller can hold it across
    several runner calls. When another session holds it, on_wait hears that session's pid before the
    wait begins; with a timeout (seconds) the wait ends in MigrationLockTimeout, having changed nothing.
    """
    _acquire(conn, on_wait, timeout)
    try:
        if not _has_history(conn):  # created under the lock, so two first runs cannot race on it
            for ddl in _HISTORY_DDL:
                conn.execute(ddl)
        yield
    finally:
        if not conn.closed and not conn.broken:
            conn.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])


def _acquire(conn: psycopg.Connection, on_wait: OnWait | None, timeout: float | None) -> None:
    import psycopg

    # Trying first is what lets the operator hear that (and for whom) this runner waits.
    if scalar(conn, "SELECT pg_try_advisory_lock(%s)", [LOCK_KEY], bool):
        return
    holder = _lock_holder(conn)
    if holder is None and scalar(conn, "SELECT pg_try_advisory_lock(%s)", [LOCK_KEY], bool):
        return  # released in between: no one to wait for, so nothing to say
    if on_wait is not None:
        on_wait(holder)
    if timeout is not None and timeout * 1000 >= _MAX_LOCK_TIMEOUT_MS:
        timeout = None  # more than lock_timeout can express (24 days): as good as forever
    if timeout is None:
        conn.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        return
    if timeout <= 0:  # lock_timeout 0 would mean "wait forever" to PostgreSQL
        raise MigrationLockTimeout(holder, timeout)
    previous = scalar(conn, "SELECT current_setting('lock_timeout')", None, str)
    conn.execute("SELECT set_config('lock_timeout', %s, false)", [f"{max(1, round(timeout * 1000))}ms"])
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
    except psycopg.errors.LockNotAvailable as exc:
        raise MigrationLockTimeout(_lock_holder(conn) or holder, timeout) from exc
    finally:
        conn.execute("SELECT set_config('lock_timeout', %s, false)", [previous])


def _lock_holder(conn: psycopg.Connection) -> int | None:
    """The pid of the session holding LOCK_KEY on this database; a bigint key is split over classid/objid."""
    row = conn.execute(
        "SELECT pid FROM pg_locks"
        " WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid()"
        "   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        "   AND classid::bigint = (%(key)s::bigint >> 32) AND objid::bigint = (%(key)s::bigint & 4294967295)"
        "   AND objsubid = 1",
        {"key": LOCK_KEY},
    ).fetchone()
    if row is None:
        return None
    pid: int = row[0]
    return pid


def _run(conn: psycopg.Connection, migration: Migration, script: Script, kind: str, actor: str) -> None:
    started = time.perf_counter()
    try:
        with conn.transaction():
            _execute(conn, script)
            _record(conn, migration, script, kind, actor, True, _ms(started))
    except MigrationFailed as exc:
        if not conn.closed and not conn.broken:
            _record(conn, migration, script, kind, actor, False, _ms(started), f"line {exc.line}: {exc.message}")
        raise


def _execute(conn: psycopg.Connection, script: Script) -> None:
    """Run a script's statements in the open transaction; a failure names the file and its line."""
    import psycopg

    statement = None
    try:
        with conn.cursor() as cur:
            for statement in script.statements:
                cur.execute(statement.sql)
    except psycopg.Error as exc:
        raise MigrationFailed(script.path, _line(statement, exc), _message(exc), exc.sqlstate) from exc


# User tables and their columns: the runner's own schema and PostgreSQL's are not the operator's data.
_RELATIONS = """
    SELECT n.nspname, c.relname, a.attname
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE c.relkind IN ('r', 'p')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'walltrack_migrations')
       AND n.nspname NOT LIKE 'pg\\_%'
"""


def _relations(conn: psycopg.Connection) -> set[Relation]:
    found: set[Relation] = set()
    for schema, table, column in conn.execute(_RELATIONS):
        found.add((schema, table, None))
        if column is not None:
            found.add((schema, table, column))
    return found


def _count(conn: psycopg.Connection, schema: str, table: str, column: str | None) -> int | None:
    import psycopg
    from psycopg import sql

    # ONLY: a partition's rows count once, under the partition, not again under its parent.
    what = sql.SQL("count(*)") if column is None else sql.SQL("count({})").format(sql.Identifier(column))
    query = sql.SQL("SELECT {} FROM ONLY {}").format(what, sql.Identifier(schema, table))
    try:
        with conn.transaction():
            return scalar(conn, query, None, int)
    except psycopg.Error:
        return None  # no privilege to read it: the loss is real, only its size is unknown


def _record(conn: psycopg.Connection, migration: Migration, script: Script, kind: str, actor: str, success: bool,
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
