"""V12/U12: the principal tables come and go, in a schema of their own, leaving the catalog exactly as V11 had it,
config rows kept; both files run as-is with psql; the principals' log writer belongs to the log's owner and nobody
else runs it; nobody but the owner has any privilege in walltrack_auth, whatever the default privileges."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

import test_v11_security as security
from conftest import catalog, psql_file
from test_v11_security import as_role, config_rows
from walltrack_config import principals, schema
from walltrack_config.migrate import plan as migrations

make_role = security.make_role  # the fixture, shared
V12 = next(m for m in migrations.discover() if m.version == 12)


def with_config_rows(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        draft = conn.execute("INSERT INTO walltrack.risk_config (name) VALUES ('before V12') RETURNING id").fetchone()
        with conn.transaction():
            conn.execute("UPDATE walltrack.risk_config SET status = 'archived' WHERE status = 'active'")
            conn.execute("UPDATE walltrack.risk_config SET status = 'active' WHERE id = %s", [draft[0]])


def test_u12_returns_the_database_to_v11_exactly_and_keeps_its_rows(db_at):
    url = db_at(11)
    with_config_rows(url)
    before, rows = catalog(url), config_rows(url)
    with psycopg.connect(url) as conn:
        conn.execute(V12.apply.sql)
    with psycopg.connect(url, autocommit=True) as conn:
        assert schema.version(conn) == 12
        principals.add_user(conn, "alice", "admin", "correct horse battery", actor="root")
        principals.create_token(conn, "ci", "reader", actor="alice")
        principals.login(conn, "alice", "correct horse battery")
    assert catalog(url) != before
    assert config_rows(url) == rows
    with psycopg.connect(url) as conn:
        conn.execute(V12.undo.sql)
    assert catalog(url) == before
    assert config_rows(url) == rows


def test_v12_and_u12_run_as_is_with_psql(db_at):
    url = db_at(11)
    before = catalog(url)
    for script in (V12.apply, V12.undo, V12.apply, V12.undo):
        psql_file(url, script.path)
    assert catalog(url) == before


def test_the_log_writer_is_the_log_owners_and_not_for_everyone(conn):
    owner, definer, acl = conn.execute("""
        SELECT c.relowner = p.proowner, p.prosecdef, p.proacl::text[]
        FROM pg_proc p, pg_class c
        WHERE p.oid = 'walltrack.record_principal_change()'::regprocedure
          AND c.oid = 'walltrack_auth.principal_audit_log'::regclass""").fetchone()
    assert owner and definer
    assert not any(entry.startswith("=") for entry in acl)  # no grant to PUBLIC
    others = conn.execute("""SELECT c.relname FROM pg_class c, aclexplode(c.relacl) a
                             WHERE c.relnamespace = 'walltrack_auth'::regnamespace AND a.grantee <> c.relowner
                             UNION ALL
                             SELECT n.nspname FROM pg_namespace n, aclexplode(n.nspacl) a
                             WHERE n.nspname = 'walltrack_auth' AND a.grantee <> n.nspowner""")
    assert others.fetchall() == []
    inside = conn.execute(
        "SELECT relname FROM pg_class WHERE relnamespace = 'walltrack_auth'::regnamespace"
        " AND relkind IN ('r', 'S', 'v', 'm') ORDER BY 1"
    )
    # V14 keeps its webhooks (their signing secrets) here too, under the same rule.
    assert inside.fetchall() == [("api_tokens",), ("principal_audit_log",), ("principal_audit_log_id_seq",), ("users",),
                                 ("webhooks",)]


def test_default_privileges_hand_nothing_in_walltrack_auth_to_anyone(db_at, make_role):
    """An owner whose default privileges grant every new table, sequence and schema to a role (and to PUBLIC):
    V12 takes each back at once, and U12 still leaves the catalog as V11 had it."""
    url = db_at(11)
    role = make_role(url, prefix="wt_bot")
    with psycopg.connect(url, autocommit=True) as owner:
        for statement in (
            "ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO {role}, PUBLIC",
            "ALTER DEFAULT PRIVILEGES GRANT ALL ON SEQUENCES TO {role}, PUBLIC",
            "ALTER DEFAULT PRIVILEGES GRANT ALL ON SCHEMAS TO {role}, PUBLIC",
            "GRANT USAGE ON SCHEMA walltrack TO {role}",
            "GRANT SELECT ON ALL TABLES IN SCHEMA walltrack TO {role}",
        ):
            owner.execute(sql.SQL(statement).format(role=sql.Identifier(role)))
    before = catalog(url)
    with psycopg.connect(url) as conn:
        conn.execute(V12.apply.sql)
    with psycopg.connect(url, autocommit=True) as owner:
        principals.add_user(owner, "alice", "admin", "correct horse battery", actor="root")
        granted = owner.execute("""SELECT c.relname, a.privilege_type FROM pg_class c, aclexplode(c.relacl) a
                                   WHERE c.relnamespace = 'walltrack_auth'::regnamespace AND a.grantee <> c.relowner
                                   UNION ALL
                                   SELECT n.nspname, a.privilege_type FROM pg_namespace n, aclexplode(n.nspacl) a
                                   WHERE n.nspname = 'walltrack_auth' AND a.grantee <> n.nspowner""")
        assert granted.fetchall() == []
    with as_role(url, role) as bot:
        for table in ("walltrack_auth.users", "walltrack_auth.api_tokens", "walltrack_auth.principal_audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="schema walltrack_auth"):
                bot.execute(f"SELECT * FROM {table}")
    with psycopg.connect(url) as conn:
        conn.execute(V12.undo.sql)
    assert catalog(url) == before


def test_the_principals_marker_is_v12(conn, db_at):
    assert schema.version(conn) >= schema.PRINCIPALS == 12
    with psycopg.connect(db_at(11)) as older:
        assert schema.version(older) == 11
