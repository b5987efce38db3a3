"""One exception family for everything walltrack-config refuses.

Errors carry data (paths, versions, tables); the command line turns them into a
message and an exit code, nowhere else. Each class also says which HTTP status a web
front door would answer with, so every door maps a refusal the same way:

* 400: the input itself is malformed (a file, a migration folder, a command line);
* 404: the domain or row asked for does not exist;
* 409: the request conflicts with the state it found (a lifecycle rule, a concurrent
  change, an ambiguous reference, nothing left to do, migrations that do not fit);
* 412: the caller's precondition failed: the row is no longer at the version it reviewed;
* 401: no valid credentials (a missing, unknown, expired or revoked token; a wrong password);
* 403: valid credentials whose role may not do this;
* 413: a request body over the limit;
* 422: well-formed input whose values the rules refuse, or a stored row they refuse;
* 428: a write that needs the version the caller reviewed (If-Match) came without it;
* 429: too many failed sign-ins or token checks from one address or for one name: retry after a while;
* 503: the database is unreachable, misconfigured, not migrated far enough, or busy
  (a lock held longer than we wait: the same request succeeds once it is released);
* 504: live clients did not report applying a change in the time given (the command line's
  --wait-applied; the API answers 200 with `applied.complete` false instead, the change being committed).

Never 500: an error walltrack-config raises on purpose is never "internal".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class ConfigError(Exception):
    """Base of every error walltrack-config raises on purpose."""

    #: 1 = refused (bad value, conflict, nothing to do); 2 = usage or connection.
    exit_code: int = 1
    #: the HTTP status a web front door answers with (see the module's docstring)
    http_status: int = 400


# -- where the data lives ---------------------------------------------------


class DatabaseError(ConfigError):
    """The database could not be reached or used."""

    exit_code = 2
    http_status = 503


class InvalidDatabaseUrl(DatabaseError):
    def __init__(self, url: str, reason: str):
        self.url, self.reason = url, reason
        super().__init__(f"invalid database URL {_without_password(url)!r}: {reason}")


def _without_password(url: str) -> str:
    """The URL as it may be shown: a password in it (user:secret@ or password=secret) replaced by ***."""
    import re

    url = re.sub(r"(://[^/@:?#]*:)[^@/?#]*@", r"\1***@", url)
    return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]+)", r"\1***", url, flags=re.IGNORECASE)


class DatabaseUnavailable(DatabaseError):
    def __init__(self, target: str, reason: str):
        self.target, self.reason = target, reason
        super().__init__(f"cannot connect to {target}: {reason}")


class LiveConfigUnavailable(DatabaseError):
    """No database at start, no saved settings, and the defaults were not asked for."""


class UnexpectedReply(DatabaseError):
    """The database answered a query in a way no schema of ours does (no row where one is always returned)."""

    def __init__(self, query: str, expected: str):
        self.query, self.expected = query, expected
        super().__init__(f"the database answered {query!r} without {expected}; is it a walltrack database?")


class EmbeddedServerError(DatabaseError):
    def __init__(self, pgdata: Path, reason: str):
        self.pgdata, self.reason = pgdata, reason
        super().__init__(f"embedded PostgreSQL in {pgdata} failed: {reason}")


# -- migrations --------------------------------------------------------------


class MigrationError(ConfigError):
    """A migration folder or run was refused: it does not fit what the database has (409)."""

    http_status = 409


@dataclass(frozen=True)
class Problem:
    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path.name}: {self.reason}"


class MalformedMigrations(MigrationError):
    """The migration files themselves are malformed: bad input, whatever the database holds."""

    http_status = 400

    def __init__(self, directory: Path, problems: list[Problem]):
        self.directory, self.problems = directory, problems
        listed = "; ".join(str(p) for p in problems)
        super().__init__(f"migrations in {directory} refused: {listed}")


class MigrationFailed(MigrationError):
    """A script failed and left nothing of itself.

    `done`: the versions this run applied (or undid) before it, in order; `current`: where the database stands.
    """

    def __init__(self, path: Path, line: int, message: str, sqlstate: str | None = None,
                 done: list[int] | None = None, current: int | None = None):
        self.path, self.line, self.message, self.sqlstate = path, line, message, sqlstate
        self.done, self.current = list(done or []), current
        text = f"{path.name}:{line}: {message} (nothing of {path.name} was applied)"
        if done:
            # An undo file is named U<n>: the scripts before it in the same run were undos too.
            verb = "undone" if path.name.startswith("U") else "applied"
            text += f"; {verb} before it: {', '.join(f'V{v}' for v in done)}"
        if current is not None:
            text += f"; database is {'now' if done else 'still'} at V{current}"
        super().__init__(text)

    def after(self, done: list[int], current: int) -> MigrationFailed:
        """The same failure, knowing what ran before it in this run and where the database now stands."""
        return MigrationFailed(self.path, self.line, self.message, self.sqlstate, done, current)


class MigrationLockTimeout(MigrationError):
    """Another runner held the migration lock for longer than --lock-timeout.

    503, as ConfigBusy: the request is fine and succeeds once the other runner is done.
    """

    http_status = 503

    def __init__(self, pid: int | None, seconds: float):
        self.pid, self.seconds = pid, seconds
        holder = f" (pid {pid})" if pid else ""
        waited = f"gave up after {seconds:g} s waiting for" if seconds > 0 else "--lock-timeout is 0 and there is"
        super().__init__(f"{waited} another walltrack-config migration{holder} to finish; nothing was changed")


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
    http_status = 404

    def __init__(self, table: str, id: object = None, message: str | None = None):
        self.table, self.id = table, id
        super().__init__(message or f"no row {id} in {table}")


class UnknownDomain(NotFound):
    def __init__(self, domain: str, domains: tuple[str, ...]):
        self.domain = domain
        super().__init__("walltrack", None, f"unknown domain {domain!r}; domains are {', '.join(domains)}")


class InvalidTransition(ConfigError):
    """A lifecycle rule was broken; `hint` says what to do instead."""

    http_status = 409

    def __init__(self, table: str, message: str, hint: str | None = None, id: object = None):
        self.table, self.hint, self.id = table, hint, id
        super().__init__(f"{message} ({hint})" if hint else message)


class ApprovalRequired(InvalidTransition):
    """A draft would go live without the approvals its domain's policy asks for (SQLSTATE WT005, V14).

    `required`: approvals the policy asks for; `given`: distinct approvals of the pending request (0 without
    one); `request_id`: the pending request, as the database named it (its full id, else its first 8
    characters), None when there is none. Each is None when the message does not say.
    """

    http_status = 409

    def __init__(self, table: str, message: str, hint: str | None = None, id: object = None):
        import re

        super().__init__(table, message, hint, id)
        said = re.search(r"needs (\d+) approvals? before draft \S+ v\d+ goes live: (?:(\d+) given \(request (\S+) "
                         r"pending\)|(no approved request))", message)
        self.required: int | None = int(said.group(1)) if said else None
        self.given: int | None = int(said.group(2)) if said and said.group(2) else (0 if said else None)
        full = re.search(r"approve ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", hint or "")
        self.request_id: str | None = full.group(1) if full else (said.group(3) if said else None)


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class InvalidValue(ConfigError):
    http_status = 422

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
    """Someone else changed the row first; reload and try again.

    409; a StaleVersion (the caller's reviewed version is no longer current) is 412.
    """

    http_status = 409

    def __init__(self, table: str, message: str, id: object = None, expected: int | None = None):
        self.table, self.id, self.expected = table, id, expected
        super().__init__(message if message.endswith("again") else f"{message}; reload and try again")


class StaleVersion(ConcurrentChange):
    """The row (or rollback target) is no longer the one the caller read and reviewed: a failed precondition."""

    http_status = 412


class InvalidFile(ConfigError):
    """A settings file that cannot be read as one."""

    http_status = 400

    def __init__(self, source: str, reason: str, line: int | None = None):
        self.source, self.reason, self.line = source, reason, line
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {reason}")


class NothingToDo(ConfigError):
    """The command would change nothing (or the operator said no): 409, the state already is as asked."""

    http_status = 409


class UsageError(ConfigError):
    """The command cannot run as asked (a missing editor, a bad environment)."""

    http_status = 400

    exit_code = 2


# -- hardening: schema versions, row choice, rows a reader cannot use ----------------------


class SchemaOutdated(DatabaseError):
    """The database is migrated below what a command needs."""

    def __init__(self, current: int, needed: int):
        self.current, self.needed = current, needed
        at = f"at V{current}" if current else "not migrated"
        super().__init__(f"database is {at}; this command needs V{needed}: run `walltrack-config db migrate`")


class AmbiguousRow(ConfigError):
    """A row reference (id prefix or name) that matches several rows."""

    http_status = 409

    def __init__(self, table: str, ref: str, candidates: list[str]):
        self.table, self.ref, self.candidates = table, ref, candidates
        super().__init__(f"{ref!r} matches {len(candidates)} rows of {table}: {'; '.join(candidates)}; "
                         "give a longer id prefix")


class UnreadableRow(ConfigError):
    """A stored row whose values the models refuse (for example a NaN written before V11)."""

    http_status = 422

    def __init__(self, table: str, id: object, name: str, errors: list[FieldError]):
        self.table, self.id, self.name, self.errors = table, id, name, errors
        listed = "; ".join(map(str, errors))
        super().__init__(f"row {id} ('{name}') of {table} cannot be read: {listed}")


# -- settings given as files and on the command line --------------------------


class InvalidImport(ConfigError):
    """Everything wrong with an import file at once, so one run finds all of it."""

    http_status = 400

    def __init__(self, source: str, problems: list[FieldError]):
        self.source, self.problems = source, problems
        if len(problems) == 1:
            super().__init__(f"{source}: {problems[0]}")
        else:
            listed = "".join(f"\n  {p}" for p in problems)
            super().__init__(f"{source}: {len(problems)} problems{listed}")

    @property
    def fields(self) -> list[str]:
        return [p.field for p in self.problems]


class RepeatedSetting(ConfigError):
    """A KEY=VALUE given twice: keeping either one would change a value the operator did not see."""

    http_status = 400

    def __init__(self, field: str):
        self.field = field
        super().__init__(f"{field} given twice; give each setting once")


class ConfigBusy(ConfigError):
    """Another session's change held the configuration's write lock for longer than we wait.

    503, not 409: nothing in the request conflicts with the configuration; the same request succeeds
    once the other change commits, which is what "unavailable for now, retry" says.
    """

    http_status = 503

    def __init__(self, table: str, waited: str | None = None):
        self.table, self.waited = table, waited
        how_long = f" for {waited}" if waited else ""
        super().__init__(f"another change to the configuration held its write lock{how_long}; nothing was written;"
                         " try again once it is committed")


# -- principals: who may do what (V12) ----------------------------------------------------------------


class AuthenticationFailed(ConfigError):
    """No valid credentials. The message never says which part was wrong (name, password, token)."""

    http_status = 401

    def __init__(self, message: str = "invalid credentials"):
        super().__init__(message)


class Forbidden(ConfigError):
    """Valid credentials whose role may not do this."""

    http_status = 403

    def __init__(self, principal: str, role: str, needed: str, action: str):
        self.principal, self.role, self.needed, self.action = principal, role, needed, action
        super().__init__(f"{principal} has role {role}; {action} needs role {needed} or above")


class RateLimited(ConfigError):
    """Too many failed attempts from one address or for one name; `retry_after` seconds until the next may try."""

    http_status = 429

    def __init__(self, retry_after: int, who: str):
        self.retry_after, self.who = retry_after, who
        super().__init__(f"too many failed attempts for {who}; try again in {retry_after} s")


class AlreadyExists(ConfigError):
    """A user or token of that name exists already."""

    http_status = 409

    def __init__(self, kind: str, name: str):
        self.kind, self.name = kind, name
        super().__init__(f"a {kind} named {name!r} exists already")


class PreconditionRequired(ConfigError):
    """A write that must name the version the caller reviewed (If-Match, or expected_version) did not."""

    http_status = 428

    def __init__(self, what: str):
        self.what = what
        super().__init__(f"{what} needs the version you reviewed: send If-Match: <version>")


class TooLarge(ConfigError):
    """A request body over the server's limit."""

    http_status = 413

    def __init__(self, size: int, limit: int):
        self.size, self.limit = size, limit
        super().__init__(f"request body of {size:,} bytes is over the limit of {limit:,} bytes")


class MigrationsPending(MigrationError):
    """A server refuses to start on a database with migrations it has not been told to apply."""

    http_status = 503

    def __init__(self, versions: list[int]):
        self.versions = versions
        listed = ", ".join(f"V{v}" for v in versions)
        super().__init__(f"the database has pending migrations ({listed}); run `walltrack-config db migrate` "
                         "first, or start with --migrate")


class UnsafeBind(ConfigError):
    """Serving beyond this machine before anyone can sign in would leave the API to whoever finds it first."""

    exit_code = 2

    def __init__(self, host: str):
        self.host = host
        super().__init__(f"refusing to listen on {host} while no user or API token exists; create one first "
                         "(walltrack-config user add NAME --role admin), or serve on 127.0.0.1")


# -- the fleet (V13) ---------------------------------------------------------------------------------------------


class NotApplied(ConfigError):
    """A change went live (it is committed), but some live clients did not report applying it in time.

    `missing`: each of them as a person tells it apart (name, host, pid).
    """

    http_status = 504

    def __init__(self, domain: str, activation: int, missing: list[str], total: int, timeout: float):
        self.domain, self.activation, self.missing = domain, activation, missing
        self.total, self.timeout = total, timeout
        super().__init__(f"{len(missing)} of {total} live clients did not apply {domain} activation {activation} "
                         f"within {timeout:g} s: {'; '.join(missing)} (the change is live all the same)")


class ServerBusy(ConfigError):
    """The server holds as many streams as it is set to: another server, or a moment later, will take it."""

    http_status = 503

    def __init__(self, message: str):
        super().__init__(message)
