"""The pure core of the migration runner: files, checksums, history, plans.

Nothing here talks to a database: it takes data (file texts, history rows) and
returns data (migrations, plans, statements), so it is tested on its own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path

from ..errors import (
    ChecksumMismatch,
    MalformedMigrations,
    MigrationFailed,
    MissingUndo,
    NothingToUndo,
    OutOfOrderMigrations,
    Problem,
    UnknownAppliedMigrations,
)

# Flyway naming: V<n>__<description>.sql applies, U<n>__<description>.sql undoes.
FILENAME = re.compile(r"^(?P<kind>[VU])(?P<version>[0-9]+)__(?P<slug>[A-Za-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Statement:
    line: int
    sql: str


@dataclass(frozen=True)
class Script:
    path: Path
    sql: str
    checksum: str
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Script
    undo: Script | None

    @property
    def name(self) -> str:
        return self.apply.path.name


@dataclass(frozen=True)
class HistoryRow:
    version: int
    kind: str  # 'apply', 'undo' or 'accept'
    checksum: str
    success: bool = True
    performed_by: str = ""
    performed_at: datetime | None = None


@dataclass(frozen=True)
class Applied:
    version: int
    checksum: str
    applied_by: str
    applied_at: datetime | None


@dataclass(frozen=True)
class StatusRow:
    version: int
    description: str
    state: str  # 'applied', 'pending', 'changed' or 'missing'
    checksum: str
    applied_at: datetime | None = None
    applied_by: str | None = None


# A table is (schema, table, None); one of its columns is (schema, table, column).
Relation = tuple[str, str, str | None]


@dataclass(frozen=True)
class Loss:
    """A table (column None) or a column that an undo drops, with what it holds: rows, or non-null values.

    count is None when the rows could not be counted (no privilege to read the table).
    """

    schema: str
    table: str
    column: str | None
    count: int | None

    @property
    def name(self) -> str:
        return ".".join(p for p in (self.schema, self.table, self.column) if p)


@dataclass(frozen=True)
class UndoPreview:
    """What `undo` would do, found by running it and rolling it back."""

    plan: list[Migration]  # highest first, as undo runs them
    tables: list[Loss]
    columns: list[Loss]  # only of tables that stay
    failure: MigrationFailed | None  # the undo file that would fail; the ones before it would still be undone
    current: int  # where the database would stand

    @property
    def versions(self) -> list[int]:
        return [m.version for m in self.plan]


def vanished(before: Iterable[Relation], after: Iterable[Relation]) -> tuple[list[Relation], list[Relation]]:
    """Tables, then columns of surviving tables, present before and gone after (each sorted)."""
    gone = set(before) - set(after)
    tables = sorted(r for r in gone if r[2] is None)
    dropped = {r[:2] for r in tables}
    columns = sorted(r for r in gone if r[2] is not None and r[:2] not in dropped)
    return tables, columns


def checksum(sql: str) -> str:
    """SHA-256 of a script; line endings are folded so a CRLF checkout is not drift."""
    return hashlib.sha256(sql.replace("\r\n", "\n").encode()).hexdigest()


def default_directory() -> Path:
    """The migrations shipped in the package, or the checkout's in a source tree."""
    shipped = Path(str(resources.files("walltrack_config.migrate") / "sql"))
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parents[3] / "migrations"


def parse(directory: Path, texts: Mapping[str, str]) -> list[Migration]:
    """Turn {file name: text} into migrations in version order, or refuse them all."""
    problems: list[Problem] = []
    scripts: dict[tuple[str, int], tuple[str, Script]] = {}
    for name in sorted(texts):
        path = directory / name
        match = FILENAME.match(name)
        if match is None:
            problems.append(Problem(path, "not named V<n>__<description>.sql or U<n>__<description>.sql"))
            continue
        version = int(match["version"])
        if version == 0:
            problems.append(Problem(path, "version 0 is reserved (undo --to 0 means all)"))
            continue
        key = (match["kind"], version)
        if key in scripts:
            problems.append(Problem(path, f"duplicate version {version} (also {scripts[key][1].path.name})"))
            continue
        try:
            found = statements(texts[name])
        except ScriptSyntaxError as exc:
            problems.append(Problem(path, f"line {exc.line}: {exc.message}"))
            continue
        scripts[key] = (match["slug"], Script(path, texts[name], checksum(texts[name]), tuple(found)))

    migrations = []
    for (kind, version), (slug, script) in scripts.items():
        if kind == "U":
            applied = scripts.get(("V", version))
            if applied is None:
                problems.append(Problem(script.path, f"undo without V{version}"))
            elif applied[0] != slug:
                problems.append(Problem(script.path, f"description differs from {applied[1].path.name}"))
            continue
        undo = scripts.get(("U", version))
        migrations.append(Migration(version, slug.replace("_", " "), script, undo[1] if undo else None))
    if problems:
        raise MalformedMigrations(directory, problems)
    return sorted(migrations, key=lambda m: m.version)


def discover(directory: Path | None = None) -> list[Migration]:
    """Read a migrations folder; every .sql file in it must be well named."""
    directory = directory or default_directory()
    if not directory.is_dir():
        raise MalformedMigrations(directory, [Problem(directory, "no such folder")])
    texts = {p.name: p.read_text(encoding="utf-8") for p in directory.iterdir() if p.suffix == ".sql"}
    return parse(directory, texts)


class ScriptSyntaxError(ValueError):
    def __init__(self, line: int, message: str):
        self.line, self.message = line, message
        super().__init__(f"line {line}: {message}")


def statements(sql: str) -> list[Statement]:
    """Split a script as PostgreSQL's own lexer reads it; each statement starts at its first code line.

    Comments between statements are dropped; a ';' inside a BEGIN ATOMIC body does not end it.
    """
    from pglast.parser import ParseError, scan  # only the runner needs it; keep --help light

    try:
        tokens = scan(sql)
    except ParseError as exc:
        raise ScriptSyntaxError(sql.count("\n", 0, exc.args[1]) + 1, exc.args[0]) from exc
    found: list[Statement] = []
    start, depth, previous = None, 0, ""
    for token in tokens:  # offsets count characters; `end` is inclusive
        if token.name in ("SQL_COMMENT", "C_COMMENT"):
            continue
        if token.name == "ASCII_59" and depth == 0:
            if start is not None:
                found.append(Statement(sql.count("\n", 0, start) + 1, sql[start : token.end + 1]))
            start = None
            continue
        if start is None:
            start = token.start
        # BEGIN ATOMIC opens a body; inside one, CASE opens a level that END closes, as the body's own END does.
        if (token.name == "ATOMIC" and previous == "BEGIN_P") or (depth and token.name == "CASE"):
            depth += 1
        elif depth and token.name == "END_P":
            depth -= 1
        previous = token.name
    if start is not None:
        found.append(Statement(sql.count("\n", 0, start) + 1, sql[start:]))
    return found


def replay(rows: Iterable[HistoryRow]) -> dict[int, Applied]:
    """What is applied now, from the history rows in the order they were written."""
    applied: dict[int, Applied] = {}
    for row in rows:
        if not row.success:
            continue
        if row.kind == "apply":
            applied[row.version] = Applied(row.version, row.checksum, row.performed_by, row.performed_at)
        elif row.kind == "undo":
            applied.pop(row.version, None)
        elif row.kind == "accept" and row.version in applied:
            old = applied[row.version]
            applied[row.version] = Applied(row.version, row.checksum, old.applied_by, old.applied_at)
    return applied


def drifted(migrations: list[Migration], applied: Mapping[int, Applied]) -> list[Migration]:
    return [m for m in migrations if m.version in applied and applied[m.version].checksum != m.apply.checksum]


def _check_applied(migrations: list[Migration], applied: Mapping[int, Applied]) -> None:
    known = {m.version for m in migrations}
    unknown = sorted(set(applied) - known)
    if unknown:
        raise UnknownAppliedMigrations(unknown)
    changed = drifted(migrations, applied)
    if changed:
        raise ChecksumMismatch([(m.version, m.name) for m in changed])


def plan_migrate(migrations: list[Migration], applied: Mapping[int, Applied]) -> list[Migration]:
    """The pending migrations, lowest first; refuses drift, unknown and out-of-order versions."""
    _check_applied(migrations, applied)
    pending = [m for m in migrations if m.version not in applied]
    latest = max(applied, default=0)
    below = [m.version for m in pending if m.version < latest]
    if below:
        raise OutOfOrderMigrations(below, latest)
    return pending


def plan_undo(migrations: list[Migration], applied: Mapping[int, Applied], to: int | None = None) -> list[Migration]:
    """The migrations to undo, highest first: the latest, or every one above `to`."""
    _check_applied(migrations, applied)
    if not applied:
        raise NothingToUndo(to)
    versions = sorted(applied, reverse=True)
    chosen = versions[:1] if to is None else [v for v in versions if v > to]
    if not chosen:
        raise NothingToUndo(to)
    by_version = {m.version: m for m in migrations}
    for version in chosen:
        if by_version[version].undo is None:
            raise MissingUndo(version, "U" + by_version[version].name[1:])
    return [by_version[v] for v in chosen]


def status(migrations: list[Migration], applied: Mapping[int, Applied]) -> list[StatusRow]:
    """One row a version: applied, pending, changed since applied, or applied but missing here."""
    rows = []
    for m in migrations:
        done = applied.get(m.version)
        if done is None:
            rows.append(StatusRow(m.version, m.description, "pending", m.apply.checksum))
        else:
            state = "applied" if done.checksum == m.apply.checksum else "changed"
            rows.append(StatusRow(m.version, m.description, state, m.apply.checksum, done.applied_at, done.applied_by))
    known = {m.version for m in migrations}
    for version in sorted(set(applied) - known):
        done = applied[version]
        rows.append(StatusRow(version, "", "missing", done.checksum, done.applied_at, done.applied_by))
    return sorted(rows, key=lambda r: r.version)
