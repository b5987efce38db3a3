"""One exception family for everything walltrack-config refuses.

Errors carry data (paths, versions, tables); the command line turns them into a
message and an exit code, nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class ConfigError(Exception):
    """Base of every error walltrack-config raises on purpose."""

    #: 1 = refused (bad value, conflict, nothing to do); 2 = usage or connection.
    exit_code = 1


# -- where the data lives ---------------------------------------------------


class DatabaseError(ConfigError):
    """The database could not be reached or used."""

    exit_code = 2


class InvalidDatabaseUrl(DatabaseError):
    def __init__(self, url: str, reason: str):
        self.url, self.reason = url, reason
        super().__init__(f"invalid database URL {url!r}: {reason}")


class DatabaseUnavailable(DatabaseError):
    def __init__(self, target: str, reason: str):
        self.target, self.reason = target, reason
        super().__init__(f"cannot connect to {target}: {reason}")


class EmbeddedServerError(DatabaseError):
    def __init__(self, pgdata: Path, reason: str):
        self.pgdata, self.reason = pgdata, reason
        super().__init__(f"embedded PostgreSQL in {pgdata} failed: {reason}")


# -- migrations --------------------------------------------------------------


class MigrationError(ConfigError):
    """A migration folder or run was refused."""


@dataclass(frozen=True)
class Problem:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path.name}: {self.reason}"


class MalformedMigrations(MigrationError):
    def __init__(self, directory: Path, problems: list[Problem]):
        self.directory, self.problems = directory, problems
        listed = "; ".join(str(p) for p in problems)
        super().__init__(f"migrations in {directory} refused: {listed}")


class MigrationFailed(MigrationError):
    def __init__(self, path: Path, line: int, message: str, sqlstate: str | None = None):
        self.path, self.line, self.message, self.sqlstate = path, line, message, sqlstate
        super().__init__(f"{path.name}:{line}: {message} (nothing of {path.name} was applied)")


class ChecksumMismatch(MigrationError):
    def __init__(self, drifted: list[tuple[int, str]]):
        self.versions = [v for v, _ in drifted]
        names = ", ".join(name for _, name in drifted)
        super().__init__(
            f"applied migration files changed since they ran: {names}; "
            "restore them, or accept them with 'walltrack-config db validate --accept'"
        )


class UnknownAppliedMigrations(MigrationError):
    def __init__(self, versions: list[int]):
        self.versions = versions
        listed = ", ".join(f"V{v}" for v in versions)
        super().__init__(
            f"the database has {listed} applied but no such file is here; "
            "use the walltrack-config release that applied it"
        )


class OutOfOrderMigrations(MigrationError):
    def __init__(self, versions: list[int], latest: int):
        self.versions, self.latest = versions, latest
        listed = ", ".join(f"V{v}" for v in versions)
        super().__init__(
            f"{listed} would apply below V{latest}, which is already applied; "
            "give the new migration a version above it"
        )


class NothingToUndo(MigrationError):
    def __init__(self, target: int | None = None):
        self.target = target
        where = "" if target is None else f" above V{target}"
        super().__init__(f"nothing to undo: no migration is applied{where}")


class MissingUndo(MigrationError):
    def __init__(self, version: int, expected: str):
        self.version, self.expected = version, expected
        super().__init__(f"V{version} has no undo file ({expected}); nothing was undone")


# -- the configuration lifecycle ------------------------------------------------


class NotFound(ConfigError):
    def __init__(self, table: str, id: object = None, message: str | None = None):
        self.table, self.id = table, id
        super().__init__(message or f"no row {id} in {table}")


class UnknownDomain(NotFound):
    def __init__(self, domain: str, domains: tuple[str, ...]):
        self.domain = domain
        super().__init__("walltrack", None, f"unknown domain {domain!r}; domains are {', '.join(domains)}")


class InvalidTransition(ConfigError):
    """A lifecycle rule was broken; `hint` says what to do instead."""

    def __init__(self, table: str, message: str, hint: str | None = None, id: object = None):
        self.table, self.hint, self.id = table, hint, id
        super().__init__(f"{message} ({hint})" if hint else message)


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidValue(ConfigError):
    def __init__(self, table: str, errors: list[FieldError]):
        self.table, self.errors = table, errors
        super().__init__(f"invalid {table}: " + "; ".join(map(str, errors)))

    @property
    def fields(self) -> list[str]:
        return [e.field for e in self.errors]


class UnknownField(InvalidValue):
    def __init__(self, table: str, field: str, suggestion: str | None = None):
        self.field, self.suggestion = field, suggestion
        hint = f"did you mean {suggestion}?" if suggestion else "not a setting of this table"
        super().__init__(table, [FieldError(field, f"unknown field; {hint}")])


class ConcurrentChange(ConfigError):
    """Someone else changed the row first; reload and try again."""

    def __init__(self, table: str, message: str, id: object = None, expected: int | None = None):
        self.table, self.id, self.expected = table, id, expected
        super().__init__(f"{message}; reload and try again")


class InvalidFile(ConfigError):
    """A settings file that cannot be read as one."""

    def __init__(self, source: str, reason: str, line: int | None = None):
        self.source, self.reason, self.line = source, reason, line
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {reason}")


class NothingToDo(ConfigError):
    """The command would change nothing (or the operator said no)."""


class UsageError(ConfigError):
    """The command cannot run as asked (a missing editor, a bad environment)."""

    exit_code = 2
