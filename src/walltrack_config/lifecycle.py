"""The configuration lifecycle, as a typed Python door to the rules V9 keeps in PostgreSQL.

Every change goes through the SQL functions of schema walltrack (so psql users get the same
rules) and takes an actor and a reason for the audit trail. PostgreSQL's errors are turned
into the ConfigError family here, once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import ValidationError

from .errors import (
    AmbiguousRow,
    ConcurrentChange,
    ConfigBusy,
    DatabaseUnavailable,
    FieldError,
    InvalidTransition,
    InvalidValue,
    NotFound,
    UnknownDomain,
    UnknownField,
    UnreadableRow,
)
from .models import DOMAINS, MODELS, NAME_RULE, NAME_RULES, Settings, name_problem, plain

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

    def columns(self) -> dict[str, Any]:
        """Every column of the table under its own name, in the table's order (JSON-ready values)."""
        meta = {name: getattr(self, name) for name in META}
        meta.update(id=str(self.id), created_at=self.created_at.isoformat(), updated_at=self.updated_at.isoformat())
        head, tail = META[:4], META[4:]  # V8's layout: id, name, status, version, settings..., description, ...
        return {k: meta[k] for k in head} | plain(self.settings) | {k: meta[k] for k in tail}


def model_of(domain: str) -> type[Settings]:
    try:
        return MODELS[domain]
    except KeyError:
        raise UnknownDomain(domain, DOMAINS) from None


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
    if status not in ("default", "draft", "active", "archived"):
        raise InvalidValue(table_of(domain), [FieldError("status", "one of default, draft, active, archived")])
    return _select(conn, domain, "status = %s", [status])


def drafts(conn: psycopg.Connection, domain: str) -> list[ConfigRow]:
    return rows(conn, domain, "draft")


def only_draft(conn: psycopg.Connection, domain: str) -> ConfigRow:
    """The domain's draft when there is exactly one; otherwise say how to pick one."""
    found = drafts(conn, domain)
    if len(found) == 1:
        return found[0]
    if not found:
        raise NotFound(table_of(domain), message=f"{domain} has no draft; create one with: walltrack-config draft {domain}")
    listed = ", ".join(f"{row.id} ({row.name})" for row in found)
    raise InvalidTransition(table_of(domain), f"{domain} has {len(found)} drafts: {listed}", "name one with --draft ID")


def resolve(conn: psycopg.Connection, domain: str, ref: UUID | str | None) -> ConfigRow:
    """A row by reference: 'active', 'default', 'draft' (the only one), 'archived' (the one a rollback
    brings back), an id, a unique id prefix of at least 6 characters, or an exact name."""
    if ref in (None, "draft"):
        return only_draft(conn, domain)
    if ref == "archived":
        return rollback_target(conn, domain)
    if ref in ("active", "default"):
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
        raise NotFound(table_of(domain), text, f"no row of {domain} is {text!r} (give active, default, draft, archived, "
                       f"an id, an id prefix of {PREFIX_LENGTH}+ characters, or a name)")
    raise AmbiguousRow(table_of(domain), text, [f"{r.id} {r.status} '{r.name}' v{r.version}" for r in found])


def rollback_target(conn: psycopg.Connection, domain: str) -> ConfigRow:
    """The archived row that was live most recently: what a rollback makes live again."""
    with _translated(domain):
        target = conn.execute("SELECT walltrack.config_rollback_target(%s)", [domain]).fetchone()
    if target is None or target[0] is None:
        raise InvalidTransition(table_of(domain), f"nothing to roll back to in {domain}",
                                "a rollback needs an earlier active config")
    return get(conn, domain, target[0])


def last_activation(conn: psycopg.Connection, domain: str, row_id: UUID) -> Activation | None:
    """When, by whom and why a row last went live, with its activation sequence."""
    from psycopg.rows import class_row

    query = ("SELECT seq, config_id, version, performed_by, db_user, reason, activated_at"
             " FROM walltrack.config_activations WHERE config_table = %s AND config_id = %s ORDER BY seq DESC LIMIT 1")
    with _translated(domain), conn.cursor(row_factory=class_row(Activation)) as cur:
        return cur.execute(query, [model_of(domain).table, row_id]).fetchone()


def comments(conn: psycopg.Connection, domain: str) -> dict[str, str]:
    """Each column's comment: its meaning and unit, as the database documents them."""
    query = ("SELECT attname, col_description(attrelid, attnum) FROM pg_attribute"
             " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped")
    with _translated(domain):
        return {name: text or "" for name, text in conn.execute(query, [table_of(domain)])}


def _select(conn: psycopg.Connection, domain: str, where: str, params: list | None = None) -> list[ConfigRow]:
    from psycopg import sql
    from psycopg.rows import dict_row

    query = sql.SQL("SELECT * FROM walltrack.{} WHERE {} ORDER BY created_at DESC, id").format(
        sql.Identifier(model_of(domain).table), sql.SQL(where))
    with _translated(domain), conn.cursor(row_factory=dict_row) as cur:
        return [_row(domain, record) for record in cur.execute(query, params)]


def _row(domain: str, record: dict[str, Any]) -> ConfigRow:
    meta = {name: record.pop(name) for name in META}
    meta["status"] = str(meta["status"])
    model = model_of(domain)
    try:
        return ConfigRow(domain=domain, settings=model.model_validate(record), **meta)
    except ValidationError as exc:
        # A row stored before a rule existed: shown as it is, never handed to a bot (see ConfigRow.readable).
        return ConfigRow(domain=domain, settings=_as_stored(model, record), problems=tuple(_field_errors(exc)), **meta)


def _as_stored(model: type[Settings], record: dict[str, Any]) -> Settings:
    """The settings as stored, each field typed where it can be (the drawdown tiers as tiers), raw where not."""
    from pydantic import TypeAdapter

    values = {}
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
    source_id = resolve(conn, domain, source).id if source in ("active", "default") else _uuid(domain, source)
    new_id = _call(conn, domain, "clone_config", source_id, name, actor, reason)
    return get(conn, domain, new_id)


def restore(conn: psycopg.Connection, domain: str, archived_id: UUID | str, *, actor: str,
            reason: str | None = None, name: str | None = None) -> ConfigRow:
    """A new draft with the settings of an archived row."""
    _check_name(domain, name)
    new_id = _call(conn, domain, "restore_config", _uuid(domain, archived_id), name, actor, reason)
    return get(conn, domain, new_id)


def edit(conn: psycopg.Connection, domain: str, draft_id: UUID | str, version: int,
         changes: Mapping[str, Any], *, actor: str, reason: str | None = None) -> ConfigRow:
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
        errors = _field_errors(exc)
        stored = {e.field for e in current.problems}
        if current.problems and not stored & set(settings):
            # The draft itself holds what the models refuse (a NaN from before V11): say which row and field.
            raise UnreadableRow(table, current.id, current.name, list(current.problems)) from None
        raise InvalidValue(table, errors) from None
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
    return get(conn, domain, _call(conn, domain, "activate_config", row_id, expected_version, actor, reason))


def rollback(conn: psycopg.Connection, domain: str, *, actor: str, reason: str | None = None,
             expected_id: UUID | str | None = None) -> ConfigRow:
    """The archived row that was live most recently goes live again; the active row is archived.

    With `expected_id` (the target the caller reviewed), another target is refused.
    """
    expected = None if expected_id is None else _uuid(domain, expected_id)
    return get(conn, domain, _call(conn, domain, "rollback_config", actor, reason, expected))


def discard(conn: psycopg.Connection, domain: str, draft_id: UUID | str, *, actor: str,
            reason: str | None = None) -> None:
    """Delete a draft (its last state stays in the audit log)."""
    _call(conn, domain, "discard_config", _uuid(domain, draft_id), actor, reason)


def lock_writes(conn: psycopg.Connection) -> None:
    """Take the configuration's write lock (V11) for the rest of the caller's transaction.

    What a transaction reads after this stays as it is until it commits: no other change can slip in.
    """
    with _translated("trading"):
        conn.execute("SELECT walltrack.lock_config_writes()")


def _call(conn: psycopg.Connection, domain: str, function: str, *args: Any) -> Any:
    from psycopg import sql

    query = sql.SQL("SELECT walltrack.{}({})").format(
        sql.Identifier(function), sql.SQL(", ").join([sql.Placeholder()] * (len(args) + 1)))
    model_of(domain)  # an unknown domain is refused before any SQL
    with _translated(domain), conn.transaction():
        return conn.execute(query, [domain, *args]).fetchone()[0]


def _check_name(domain: str, name: object) -> None:
    if name is not None and (problem := name_problem(name)):
        raise InvalidValue(table_of(domain), [FieldError("name", problem)])


def _uuid(domain: str, value: UUID | str) -> UUID:
    try:
        return value if isinstance(value, UUID) else UUID(str(value))
    except ValueError:
        raise NotFound(table_of(domain), value, f"{value!r} is not a row id (a UUID)") from None


def _field_errors(exc: ValidationError) -> list[FieldError]:
    found = []
    for error in exc.errors():
        fields = (error.get("ctx") or {}).get("fields") or [".".join(str(p) for p in error["loc"]) or "?"]
        found.append(FieldError(", ".join(fields), error["msg"]))
    return found


@contextmanager
def _translated(domain: str) -> Iterator[None]:
    """PostgreSQL's refusals, as the ConfigError family."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        raise _translate(domain, exc) from None


def _translate(domain: str, exc: Exception) -> Exception:
    import psycopg

    table, diag = table_of(domain), getattr(exc, "diag", None)
    state, message = getattr(exc, "sqlstate", None) or "", (diag.message_primary if diag else None) or str(exc)
    hint, constraint, column = (diag.message_hint, diag.constraint_name, diag.column_name) if diag else (None,) * 3
    if state == "WT001":
        return InvalidTransition(table, message, hint)
    if state in ("WT002", "40001", "40P01"):
        return ConcurrentChange(table, message)
    if state == "55P03":  # lock_timeout: another session's change held the write lock
        return ConfigBusy(table)
    if state == "WT003":
        return NotFound(table, message=message)
    if state == "WT004":
        return UnknownField(table, column or "?")
    if state == "23514" and constraint in NAME_RULES:
        return InvalidValue(table, [FieldError("name", NAME_RULE)])
    if state == "23514" and constraint:
        fields = model_of(domain).fields_of(constraint) or (constraint,)
        rule = "must be a finite number, not NaN" if constraint.endswith("_finite") else f"breaks rule {constraint}"
        return InvalidValue(table, [FieldError(", ".join(fields), rule)])
    if state == "23505" and constraint and constraint.endswith("_name_status"):
        return InvalidValue(table, [FieldError("name", "another live row of that status has this name")])
    if state == "23505" and constraint and constraint.endswith("_single_active"):
        return ConcurrentChange(table, "another config became active at the same time")
    if state.startswith(("22", "23")):
        return InvalidValue(table, [FieldError(column or "?", message)])
    if isinstance(exc, psycopg.OperationalError):
        return DatabaseUnavailable(table, " ".join(str(exc).split()))
    return exc  # not a rule of ours: let it surface as it is
