"""The configuration lifecycle, as a typed Python door to the rules V9 keeps in PostgreSQL.

Every change goes through the SQL functions of schema walltrack (so psql users get the same
rules) and takes an actor and a reason for the audit trail. PostgreSQL's errors are turned
into the ConfigError family here, once: see SQLSTATES and `translate`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, LiteralString
from uuid import UUID

from pydantic import ValidationError

from . import db
from .domains import DOMAINS, STATUSES, Status
from .errors import (
    AmbiguousRow,
    ApprovalRequired,
    ConcurrentChange,
    ConfigBusy,
    ConfigError,
    DatabaseUnavailable,
    FieldError,
    InvalidTransition,
    InvalidValue,
    NotFound,
    StaleVersion,
    UnexpectedReply,
    UnknownDomain,
    UnknownField,
    UnreadableRow,
)
from .models import MODELS, NAME_RULE, NAME_RULES, Settings, name_problem, plain

if TYPE_CHECKING:
    import psycopg

META = ("id", "name", "status", "version", "description", "created_at", "updated_at", "created_by", "updated_by")
LABELS = ("name", "description")  # editable on a draft besides the settings
PREFIX_LENGTH = 6  # the shortest id prefix accepted where a row is chosen


@dataclass(frozen=True)
class Activation:
    """One row of walltrack.config_activations: a row going live, in commit order (seq)."""

    seq: int
    config_id: UUID
    version: int
    performed_by: str
    db_user: str
    reason: str | None
    activated_at: datetime


@dataclass(frozen=True)
class ConfigRow:
    """One row of a config table: its lifecycle columns and its typed settings."""

    domain: str
    id: UUID
    name: str
    status: str
    version: int
    description: str | None
    created_at: datetime
    updated_at: datetime
    created_by: str | None
    updated_by: str | None
    settings: Settings
    #: why the models refuse the stored values (a NaN written before V11): empty for every readable row
    problems: tuple[FieldError, ...] = ()

    def readable(self) -> ConfigRow:
        """This row, or UnreadableRow naming the row and the fields a reader cannot use."""
        if self.problems:
            raise UnreadableRow(table_of(self.domain), self.id, self.name, list(self.problems))
        return self

    def columns(self) -> dict[str, object]:
        """Every column of the table under its own name, in the table's order (JSON-ready values)."""
        meta: dict[str, object] = {name: getattr(self, name) for name in META}
        meta.update(id=str(self.id), created_at=self.created_at.isoformat(), updated_at=self.updated_at.isoformat())
        head, tail = META[:4], META[4:]  # V8's layout: id, name, status, version, settings..., description, ...
        return {k: meta[k] for k in head} | plain(self.settings) | {k: meta[k] for k in tail}


def model_of(domain: str) -> type[Settings]:
    try:
        return MODELS[domain]
    except KeyError as exc:
        raise UnknownDomain(domain, DOMAINS) from exc


def table_of(domain: str) -> str:
    return f"walltrack.{model_of(domain).table}"


# -- reading -------------------------------------------------------------------


def active(conn: psycopg.Connection, domain: str) -> Settings:
    """The active settings of a domain, typed (UnreadableRow if the models refuse them)."""
    return active_row(conn, domain).readable().settings


def active_row(conn: psycopg.Connection, domain: str) -> ConfigRow:
    found = _select(conn, domain, "status = 'active'")
    if not found:
        raise NotFound(table_of(domain), message=f"{table_of(domain)} has no active row")
    return found[0]


def get(conn: psycopg.Connection, domain: str, row_id: UUID | str) -> ConfigRow:
    found = _select(conn, domain, "id = %s", [_uuid(domain, row_id)])
    if not found:
        raise NotFound(table_of(domain), row_id)
    return found[0]


def rows(conn: psycopg.Connection, domain: str, status: str | None = None) -> list[ConfigRow]:
    """Rows of a domain, newest first, optionally of one status."""
    if status is None:
        return _select(conn, domain, "true")
    if status not in STATUSES:
        raise InvalidValue(table_of(domain), [FieldError("status", f"one of {', '.join(STATUSES)}")])
    return _select(conn, domain, "status = %s", [str(status)])  # a Status is sent as its text


def drafts(conn: psycopg.Connection, domain: str) -> list[ConfigRow]:
    return rows(conn, domain, Status.DRAFT)


def only_draft(conn: psycopg.Connection, domain: str) -> ConfigRow:
    """The domain's draft when there is exactly one; otherwise say how to pick one."""
    found = drafts(conn, domain)
    if len(found) == 1:
        return found[0]
    if not found:
        raise NotFound(table_of(domain),
                       message=f"{domain} has no draft; create one with: walltrack-config draft {domain}")
    listed = ", ".join(f"{row.id} ({row.name})" for row in found)
    raise InvalidTransition(table_of(domain), f"{domain} has {len(found)} drafts: {listed}", "name one with --draft ID")


def resolve(conn: psycopg.Connection, domain: str, ref: UUID | str | None) -> ConfigRow:
    """A row by reference: 'active', 'default', 'draft' (the only one), 'archived' (the one a rollback
    brings back), an id, a unique id prefix of at least 6 characters, or an exact name."""
    if ref in (None, Status.DRAFT):
        return only_draft(conn, domain)
    if ref == Status.ARCHIVED:
        return rollback_target(conn, domain)
    if ref in (Status.ACTIVE, Status.DEFAULT):
        found = rows(conn, domain, str(ref))
        if not found:
            raise NotFound(table_of(domain), message=f"{domain} has no {ref} row")
        return found[0]
    if isinstance(ref, UUID):
        return get(conn, domain, ref)
    text = str(ref)
    prefix = text.strip().lower()
    by_prefix = len(prefix) >= PREFIX_LENGTH and all(ch in "0123456789abcdef-" for ch in prefix)
    found = _select(conn, domain, "(%s AND id::text LIKE %s) OR name = %s", [by_prefix, prefix + "%", text])
    if len(found) == 1:
        return found[0]
    if not found:
        raise NotFound(table_of(domain), text,
                       f"no row of {domain} is {text!r} (give active, default, draft, archived, "
                       f"an id, an id prefix of {PREFIX_LENGTH}+ characters, or a name)")
    raise AmbiguousRow(table_of(domain), text, [f"{r.id} {r.status} '{r.name}' v{r.version}" for r in found])


def rollback_target(conn: psycopg.Connection, domain: str) -> ConfigRow:
    """The archived row that was live most recently: what a rollback makes live again."""
    with translated(domain):
        target = db.scalar(conn, "SELECT walltrack.config_rollback_target(%s)", [domain], UUID, nullable=True)
    if target is None:
        raise InvalidTransition(table_of(domain), f"nothing to roll back to in {domain}",
                                "a rollback needs an earlier active config")
    return get(conn, domain, target)


def last_activation(conn: psycopg.Connection, domain: str, row_id: UUID) -> Activation | None:
    """When, by whom and why a row last went live, with its activation sequence."""
    from psycopg.rows import class_row

    query = ("SELECT seq, config_id, version, performed_by, db_user, reason, activated_at"
             " FROM walltrack.config_activations WHERE config_table = %s AND config_id = %s ORDER BY seq DESC LIMIT 1")
    with translated(domain), conn.cursor(row_factory=class_row(Activation)) as cur:
        return cur.execute(query, [model_of(domain).table, row_id]).fetchone()


def comments(conn: psycopg.Connection, domain: str) -> dict[str, str]:
    """Each column's comment: its meaning and unit, as the database documents them."""
    query = ("SELECT attname, col_description(attrelid, attnum) FROM pg_attribute"
             " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped")
    with translated(domain):
        return {name: text or "" for name, text in conn.execute(query, [table_of(domain)])}


def _select(conn: psycopg.Connection, domain: str, where: LiteralString,
            params: Sequence[object] | None = None) -> list[ConfigRow]:
    from psycopg import sql
    from psycopg.rows import dict_row

    query = sql.SQL("SELECT * FROM walltrack.{} WHERE {} ORDER BY created_at DESC, id").format(
        sql.Identifier(model_of(domain).table), sql.SQL(where))
    with translated(domain), conn.cursor(row_factory=dict_row) as cur:
        return [_row(domain, record) for record in cur.execute(query, params)]


def _row(domain: str, record: dict[str, Any]) -> ConfigRow:
    meta = {name: record.pop(name) for name in META}
    meta["status"] = str(meta["status"])
    model = model_of(domain)
    try:
        return ConfigRow(domain=domain, settings=model.model_validate(record), **meta)
    except ValidationError as exc:
        # A row stored before a rule existed: shown as it is, never handed to a bot (see ConfigRow.readable).
        return ConfigRow(domain=domain, settings=_as_stored(model, record), problems=tuple(field_errors(exc)), **meta)


def _as_stored(model: type[Settings], record: dict[str, Any]) -> Settings:
    """The settings as stored, each field typed where it can be (the drawdown tiers as tiers), raw where not."""
    from pydantic import TypeAdapter

    values: dict[str, Any] = {}  # typed where the field's type takes the value, raw (as the database gave it) where not
    for name, info in model.model_fields.items():
        try:
            values[name] = TypeAdapter(info.rebuild_annotation()).validate_python(record[name])
        except ValidationError:
            values[name] = record[name]
    return model.model_construct(**values)


# -- changing ------------------------------------------------------------------


def clone(conn: psycopg.Connection, domain: str, source: UUID | str = "active", *, actor: str,
          reason: str | None = None, name: str | None = None) -> ConfigRow:
    """A new draft copied from a row: 'active', 'default' or an id."""
    _check_name(domain, name)
    source_id = resolve(conn, domain, source).id if source in (Status.ACTIVE, Status.DEFAULT) else _uuid(domain, source)
    return get(conn, domain, _call_for_id(conn, domain, "clone_config", source_id, name, actor, reason))


def restore(conn: psycopg.Connection, domain: str, archived_id: UUID | str, *, actor: str,
            reason: str | None = None, name: str | None = None) -> ConfigRow:
    """A new draft with the settings of an archived row."""
    _check_name(domain, name)
    new_id = _call_for_id(conn, domain, "restore_config", _uuid(domain, archived_id), name, actor, reason)
    return get(conn, domain, new_id)


def edit(conn: psycopg.Connection, domain: str, draft_id: UUID | str, version: int,
         changes: Mapping[str, object], *, actor: str, reason: str | None = None) -> ConfigRow:
    """Change a draft's settings (and name or description); `version` is the one you read.

    Values are checked against the typed model before anything is written; a stale version is refused.
    """
    model, table = model_of(domain), table_of(domain)
    editable = tuple(model.model_fields) + LABELS
    for field in changes:
        if field not in editable:
            close = difflib.get_close_matches(field, editable, n=1)
            raise UnknownField(table, field, close[0] if close else None)
    current = get(conn, domain, draft_id)
    settings = {k: v for k, v in changes.items() if k not in LABELS}
    try:
        merged = model.model_validate(current.settings.model_dump() | settings)
    except ValidationError as exc:
        errors = field_errors(exc)
        stored = {e.field for e in current.problems}
        if current.problems and not stored & set(settings):
            # The draft itself holds what the models refuse (a NaN from before V11): say which row and field.
            raise UnreadableRow(table, current.id, current.name, list(current.problems)) from exc
        raise InvalidValue(table, errors) from exc
    if "name" in changes:
        _check_name(domain, changes["name"])
    payload = merged.model_dump(mode="json", include=set(settings)) | {k: changes[k] for k in LABELS if k in changes}
    from psycopg.types.json import Jsonb

    _call(conn, domain, "edit_config", current.id, version, Jsonb(payload), actor, reason)
    return get(conn, domain, current.id)


def activate(conn: psycopg.Connection, domain: str, draft_id: UUID | str, *, expected_version: int, actor: str,
             reason: str | None = None) -> ConfigRow:
    """The draft goes live at the version the caller reviewed; the active row is archived, in one transaction.

    A draft edited since it was reviewed (its version is no longer `expected_version`) is refused.
    """
    row_id = _uuid(domain, draft_id)
    return get(conn, domain, _call_for_id(conn, domain, "activate_config", row_id, expected_version, actor, reason))


def rollback(conn: psycopg.Connection, domain: str, *, actor: str, reason: str | None = None,
             expected_id: UUID | str | None = None) -> ConfigRow:
    """The archived row that was live most recently goes live again; the active row is archived.

    With `expected_id` (the target the caller reviewed), another target is refused.
    """
    expected = None if expected_id is None else _uuid(domain, expected_id)
    return get(conn, domain, _call_for_id(conn, domain, "rollback_config", actor, reason, expected))


def discard(conn: psycopg.Connection, domain: str, draft_id: UUID | str, *, actor: str,
            reason: str | None = None) -> None:
    """Delete a draft (its last state stays in the audit log)."""
    _call(conn, domain, "discard_config", _uuid(domain, draft_id), actor, reason)


def lock_writes(conn: psycopg.Connection) -> None:
    """Take the configuration's write lock (V11) for the rest of the caller's transaction.

    What a transaction reads after this stays as it is until it commits: no other change can slip in.
    """
    with translated("trading"):
        conn.execute("SELECT walltrack.lock_config_writes()")


def _call(conn: psycopg.Connection, domain: str, function: LiteralString, *args: object) -> object:
    """walltrack.<function>(domain, *args), in a transaction of its own (a savepoint in the caller's); its result."""
    from psycopg import sql

    query = sql.SQL("SELECT walltrack.{}({})").format(
        sql.Identifier(function), sql.SQL(", ").join([sql.Placeholder()] * (len(args) + 1)))
    model_of(domain)  # an unknown domain is refused before any SQL
    with translated(domain), conn.transaction():
        return db.scalar(conn, query, [domain, *args], object)


def _call_for_id(conn: psycopg.Connection, domain: str, function: LiteralString, *args: object) -> UUID:
    """_call, for the functions that return the id of the row they made or made live."""
    row_id = _call(conn, domain, function, *args)
    if not isinstance(row_id, UUID):
        raise UnexpectedReply(f"walltrack.{function}(...)", f"a row id (it returned {row_id!r})")
    return row_id


def _check_name(domain: str, name: object) -> None:
    if name is not None and (problem := name_problem(name)):
        raise InvalidValue(table_of(domain), [FieldError("name", problem)])


def _uuid(domain: str, value: UUID | str) -> UUID:
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError as exc:
        raise NotFound(table_of(domain), value, f"{value!r} is not a row id (a UUID)") from exc


def field_errors(exc: ValidationError) -> list[FieldError]:
    """A pydantic refusal as FieldErrors: a rule over several fields names them all (its ctx says which)."""
    found = []
    for error in exc.errors():
        fields = (error.get("ctx") or {}).get("fields") or [".".join(str(p) for p in error["loc"]) or "?"]
        found.append(FieldError(", ".join(fields), error["msg"]))
    return found


# -- PostgreSQL's refusals, as the ConfigError family ----------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """What PostgreSQL said when it refused a statement, as the SQLSTATE table's factories read it."""

    domain: str
    table: str  # walltrack.<domain>_config
    message: str
    hint: str | None
    constraint: str | None
    column: str | None


#: Makes the ConfigError a refusal means, or None when the refusal is not what the entry is about (then the
#: entry of its SQLSTATE class decides, see translate).
RefusalFactory = Callable[[Refusal], ConfigError | None]


def _check_violation(r: Refusal) -> ConfigError | None:
    if not r.constraint:
        return None
    if r.constraint in NAME_RULES:
        return InvalidValue(r.table, [FieldError("name", NAME_RULE)])
    fields = model_of(r.domain).fields_of(r.constraint) or (r.constraint,)
    rule = "must be a finite number, not NaN" if r.constraint.endswith("_finite") else f"breaks rule {r.constraint}"
    return InvalidValue(r.table, [FieldError(", ".join(fields), rule)])


def _unique_violation(r: Refusal) -> ConfigError | None:
    if r.constraint and r.constraint.endswith("_name_status"):
        return InvalidValue(r.table, [FieldError("name", "another live row of that status has this name")])
    if r.constraint and r.constraint.endswith("_single_active"):
        return ConcurrentChange(r.table, "another config became active at the same time")
    return None


def _bad_value(r: Refusal) -> ConfigError:
    return InvalidValue(r.table, [FieldError(r.column or "?", r.message)])


#: SQLSTATE -> the ConfigError it means. The WTnnn codes are V9's own (see V9__config_lifecycle.sql).
SQLSTATES: dict[str, RefusalFactory] = {
    "WT001": lambda r: InvalidTransition(r.table, r.message, r.hint),  # a lifecycle rule; the hint says what to do
    "WT002": lambda r: StaleVersion(r.table, r.message),  # not the version (or target) the caller reviewed
    "WT003": lambda r: NotFound(r.table, message=r.message),
    "WT004": lambda r: UnknownField(r.table, r.column or "?"),
    "WT005": lambda r: ApprovalRequired(r.table, r.message, r.hint),  # the domain's approvals are missing (V14)
    "40001": lambda r: ConcurrentChange(r.table, r.message),  # serialization_failure
    "40P01": lambda r: ConcurrentChange(r.table, r.message),  # deadlock_detected
    "55P03": lambda r: ConfigBusy(r.table),  # lock_not_available: another change held the write lock too long
    "23514": _check_violation,  # check_violation: chk_<field>, a cross-field rule, or a name rule
    "23505": _unique_violation,  # unique_violation: a name taken, or a second active row
}
#: By SQLSTATE class (its first two characters), for the codes SQLSTATES leaves.
SQLSTATE_CLASSES: dict[str, RefusalFactory] = {
    "22": _bad_value,  # data_exception: a value PostgreSQL cannot take (out of range, bad text)
    "23": _bad_value,  # integrity_constraint_violation
}


def translate(domain: str, exc: psycopg.Error) -> Exception:
    """The ConfigError a PostgreSQL refusal means (SQLSTATES, then SQLSTATE_CLASSES); a lost connection is
    DatabaseUnavailable; anything else is not a rule of ours and is returned as it is."""
    import psycopg

    table, diag = table_of(domain), exc.diag
    state = exc.sqlstate or ""
    refusal = Refusal(domain, table, diag.message_primary or str(exc), diag.message_hint, diag.constraint_name,
                      diag.column_name)
    for factory in (SQLSTATES.get(state), SQLSTATE_CLASSES.get(state[:2])):
        if factory is not None and (error := factory(refusal)) is not None:
            return error
    if isinstance(exc, psycopg.OperationalError):
        return DatabaseUnavailable(table, " ".join(str(exc).split()))
    return exc


@contextmanager
def translated(domain: str) -> Iterator[None]:
    """PostgreSQL's refusals inside the block, raised as the ConfigError family (the original as the cause)."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        error = translate(domain, exc)
        if error is exc:
            raise
        raise error from exc
