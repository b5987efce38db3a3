"""domains.py, the one list of domains, statuses and audit actions, against the models and the database."""

from __future__ import annotations

import psycopg
import pytest

from walltrack_config import audit, models
from walltrack_config import lifecycle as lc
from walltrack_config.domains import (
    AUDIT_ACTIONS,
    DOMAINS,
    STATUSES,
    AuditAction,
    Domain,
    DomainName,
    Status,
    StatusName,
)
from walltrack_config.errors import InvalidValue

# -- without a database ------------------------------------------------------------------------------------------


@pytest.mark.pure
def test_the_tuples_are_the_enums_values() -> None:
    assert DOMAINS == tuple(d.value for d in Domain) == DomainName.__args__
    assert STATUSES == tuple(s.value for s in Status) == StatusName.__args__
    assert tuple(a.value for a in AuditAction) == AUDIT_ACTIONS
    assert all(type(value) is str for value in DOMAINS + STATUSES + AUDIT_ACTIONS)  # plain text, as PostgreSQL has it


@pytest.mark.pure
def test_the_models_are_keyed_by_the_domains() -> None:
    assert models.DOMAINS == DOMAINS == tuple(models.MODELS)
    assert {d: models.MODELS[d].table for d in DOMAINS} == {d.value: d.table for d in Domain}


@pytest.mark.pure
def test_an_unknown_status_is_refused_with_the_list_of_statuses() -> None:
    with pytest.raises(InvalidValue) as err:
        lc.rows(None, "risk", "live")  # type: ignore[arg-type]  # refused before any SQL: no connection needed
    assert ", ".join(STATUSES) in str(err.value)


# -- against the database ------------------------------------------------------------------------------------------


def test_the_status_enum_is_the_databases(conn: psycopg.Connection) -> None:
    labels = conn.execute("SELECT enum_range(NULL::walltrack.config_status)::text[]").fetchone()
    assert labels is not None and tuple(labels[0]) == STATUSES


def test_the_config_tables_are_the_domains_tables(conn: psycopg.Connection) -> None:
    audited = {
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE t.tgfoid = 'walltrack.audit_config_change()'::regprocedure AND NOT t.tgisinternal"
        )
    }
    suffixed = {
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'walltrack' AND c.relkind = 'r' AND c.relname LIKE '%\\_config'"
        )
    }
    assert audited == suffixed == {d.table for d in Domain}
    for domain in Domain:  # the database's own domain -> table mapping
        table = conn.execute("SELECT walltrack.config_table(%s)::text", [domain.value]).fetchone()
        assert table is not None and table[0] == f"walltrack.{domain.table}"


def test_the_audit_trigger_writes_only_the_known_actions(conn: psycopg.Connection) -> None:
    """Every action the trigger can write, by making each happen: create, update, activate and archive, delete,
    restore."""
    first = lc.clone(conn, "risk", actor="ann")  # create
    first = lc.edit(conn, "risk", first.id, first.version, {"max_order_attempts": 4}, actor="ann")  # update
    lc.activate(conn, "risk", first.id, expected_version=first.version, actor="ann")  # activate + archive
    second = lc.clone(conn, "risk", actor="ann")
    lc.activate(conn, "risk", second.id, expected_version=second.version, actor="ann")  # archives `first`
    lc.restore(conn, "risk", first.id, actor="ann")  # restore
    doomed = lc.clone(conn, "risk", actor="ann")
    lc.discard(conn, "risk", doomed.id, actor="ann")  # delete
    written = {r[0] for r in conn.execute("SELECT DISTINCT action FROM walltrack.config_audit_log")}
    assert written <= set(AUDIT_ACTIONS)
    assert written == set(AUDIT_ACTIONS), "every action was exercised"
    read = audit.history(conn, "risk", limit=100)
    assert {e.action for e in read} == set(AuditAction) and all(type(e.action) is AuditAction for e in read)


@pytest.mark.pure
def test_the_literal_names_are_the_enums():
    from typing import get_args

    from walltrack_config.domains import DOMAINS, STATUSES, DomainName, StatusName

    assert get_args(DomainName) == DOMAINS and get_args(StatusName) == STATUSES
