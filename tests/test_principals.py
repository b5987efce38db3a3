"""Users, API tokens and sessions against real PostgreSQL: hashes only, refusals that write nothing, sessions that
follow their user at once, and an audit row (and a NOTIFY) for every change but a last use."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta

import psycopg
import pytest

import test_v11_security as security
from walltrack_config import principals as p
from walltrack_config.domains import PRINCIPAL_ACTIONS, Role
from walltrack_config.errors import (
    AlreadyExists,
    AuthenticationFailed,
    ConfigError,
    InvalidTransition,
    InvalidValue,
    NotFound,
)

make_role = security.make_role  # the fixture, shared
PASSWORD = "correct horse battery"
TABLES = ("walltrack_auth.users", "walltrack_auth.api_tokens", "walltrack_auth.principal_audit_log")


def everything(conn: psycopg.Connection) -> dict[str, list]:
    """Every row of the principal tables, hashes included: what a refusal must leave as it was."""
    return {t: conn.execute(f"SELECT to_jsonb(x)::text FROM {t} x ORDER BY 1").fetchall() for t in TABLES}


def stored_text(conn: psycopg.Connection) -> str:
    return json.dumps(everything(conn))


def log(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("""SELECT principal_kind, principal_name, action, performed_by, changed_fields
                           FROM walltrack_auth.principal_audit_log ORDER BY id""").fetchall()


def refused(conn: psycopg.Connection, error: type[ConfigError], change: Callable[[], object], *needles: str) -> str:
    before = everything(conn)
    with pytest.raises(error) as err:
        change()
    assert everything(conn) == before
    for needle in needles:
        assert needle in str(err.value)
    return str(err.value)


@pytest.fixture
def alice(conn) -> p.User:
    return p.add_user(conn, "alice", Role.ADMIN, PASSWORD, actor="root")


# -- what is stored --------------------------------------------------------------------------------------------------


def test_passwords_and_secrets_are_stored_as_hashes_only_and_never_audited(conn, alice):
    p.add_user(conn, "bob", "editor", "bobs password 1", actor="alice")
    p.set_password(conn, "bob", "bobs password 2", actor="alice")
    _, session = p.login(conn, "bob", "bobs password 2")
    _, secret = p.create_token(conn, "deploy-bot", "editor", actor="alice")
    text = stored_text(conn)
    parts = [(p.parse_token(t) or ("", ""))[1] for t in (session, secret)]
    assert all(len(part) == 43 for part in parts)
    for clear in (PASSWORD, "bobs password 1", "bobs password 2", session, secret, *parts):  # nor a secret part alone
        assert clear not in text
    hashes = conn.execute("SELECT password_hash FROM walltrack_auth.users").fetchall()
    assert all(h.startswith("$argon2id$") for (h,) in hashes)
    for token in (session, secret):
        public_id, part = p.parse_token(token) or ("", "")
        stored = conn.execute("SELECT secret_hash FROM walltrack_auth.api_tokens WHERE public_id = %s", [public_id])
        assert stored.fetchone() == (p.digest(part),)
    logged = json.dumps(conn.execute("SELECT to_jsonb(l) FROM walltrack_auth.principal_audit_log l").fetchall())
    assert "$argon2id$" not in logged and 'password_hash":' not in logged and 'secret_hash":' not in logged
    for (h,) in hashes:
        assert h not in logged


#: What the README grants the server's role of its own in walltrack_auth (and USAGE on walltrack, whose
#: functions the triggers call).
SERVER_GRANTS = (
    "GRANT USAGE ON SCHEMA walltrack, walltrack_auth TO {role}",
    "GRANT SELECT, INSERT, UPDATE ON walltrack_auth.users TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON walltrack_auth.api_tokens TO {role}",
    "GRANT SELECT ON walltrack_auth.principal_audit_log TO {role}",
)


def test_the_servers_role_needs_only_the_readmes_grants(conn, migrated_db, make_role):
    from psycopg import sql

    role = make_role(migrated_db, prefix="wt_server")
    for grant in SERVER_GRANTS:
        conn.execute(sql.SQL(grant).format(role=sql.Identifier(role)))
    p.add_user(conn, "root", "admin", PASSWORD, actor="owner")
    with security.as_role(migrated_db, role) as server:
        p.add_user(server, "alice", "admin", PASSWORD, actor="root")
        who, bearer = p.login(server, "alice", PASSWORD)
        assert p.authenticate(server, bearer) == who
        p.touch(server, who.token_id)
        ended_session(conn, "alice", revoked="40 days")
        p.login(server, "alice", PASSWORD)  # deletes the session ended 40 days ago
        p.set_role(server, "root", "editor", actor="alice")
        p.set_password(server, "alice", "a brand new password", actor="alice")
        p.disable_user(server, "root", actor="alice")
        p.enable_user(server, "root", actor="alice")
        token, secret = p.create_token(server, "ci", "reader", actor="alice")
        assert p.authenticate(server, secret).id == token.id
        p.revoke_token(server, "ci", actor="alice")
        p.logout(server, p.login(server, "alice", "a brand new password")[0].token_id)
        assert [u.name for u in p.users(server)] == ["alice", "root"] and p.tokens(server) == []
        assert p.audit(server, 1)[0]["db_user"] == role
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the log stays the triggers' alone
            server.execute("DELETE FROM walltrack_auth.principal_audit_log")
    assert len(session_ids(conn)) == 3  # the one ended 40 days ago is gone


def test_only_the_owner_reads_users_and_tokens(conn, migrated_db, make_role):
    role = make_role(migrated_db, prefix="wt_reader")
    conn.execute(f'GRANT USAGE ON SCHEMA walltrack TO "{role}"')
    conn.execute(f'GRANT USAGE ON SCHEMA walltrack_auth TO "{role}"')  # the schema alone grants no table
    with security.as_role(migrated_db, role) as other:
        for table in TABLES:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                other.execute(f"SELECT * FROM {table}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            other.execute("SELECT walltrack.record_principal_change()")


def test_a_grant_on_every_walltrack_table_hands_out_no_hash(conn, migrated_db, make_role, alice):
    """The README's bot grant of old, run after V12: the hashes live in another schema, closed to the role."""
    p.create_token(conn, "ci", "reader", actor="alice")
    p.login(conn, "alice", PASSWORD)
    role = make_role(migrated_db, prefix="wt_bot")
    conn.execute(f'GRANT USAGE ON SCHEMA walltrack TO "{role}"')
    conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA walltrack TO "{role}"')
    conn.execute(f'GRANT SELECT ON ALL SEQUENCES IN SCHEMA walltrack TO "{role}"')
    hashed = conn.execute("""SELECT a.attrelid::regclass::text, a.attname FROM pg_attribute a
                             JOIN pg_class c ON c.oid = a.attrelid
                             WHERE a.attname IN ('password_hash', 'secret_hash') AND NOT a.attisdropped
                               AND c.relnamespace IN ('walltrack'::regnamespace, 'walltrack_auth'::regnamespace)
                             ORDER BY 1""").fetchall()
    assert hashed == [("walltrack_auth.api_tokens", "secret_hash"), ("walltrack_auth.users", "password_hash")]
    with security.as_role(migrated_db, role) as bot:
        assert bot.execute("SELECT count(*) FROM walltrack.risk_config").fetchone()[0] >= 1  # the grant works
        for table in TABLES:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="schema walltrack_auth"):
                bot.execute(f"SELECT * FROM {table}")
        for table in ("walltrack.users", "walltrack.api_tokens", "walltrack.principal_audit_log"):
            with pytest.raises(psycopg.errors.UndefinedTable):  # nothing of V12's is left in schema walltrack
                bot.execute(f"SELECT * FROM {table}")
        readable = bot.execute("""SELECT c.oid::regclass::text FROM pg_class c
                                  WHERE c.relnamespace = 'walltrack_auth'::regnamespace
                                    AND has_table_privilege(c.oid, 'SELECT')""").fetchall()
        assert readable == []


# -- signing in --------------------------------------------------------------------------------------------------------


def test_tokens_and_sessions_authenticate_as_their_principal(conn, alice):
    token, secret = p.create_token(conn, "deploy-bot", "editor", actor="alice", expires=timedelta(days=90))
    who = p.authenticate(conn, secret)
    assert (who.kind, who.id, who.name, who.role, who.token_id, who.actor) == (
        "token",
        token.id,
        "deploy-bot",
        Role.EDITOR,
        token.id,
        "token:deploy-bot",
    )
    assert who.expires_at == token.expires_at
    session, bearer = p.login(conn, "ALICE", PASSWORD)  # names are matched whatever their case
    assert (session.kind, session.id, session.name, session.role, session.actor) == (
        "user",
        alice.id,
        "alice",
        Role.ADMIN,
        "alice",
    )
    assert p.authenticate(conn, bearer) == session
    assert p.get_user(conn, "alice").last_login_at is not None


def test_malformed_unknown_wrong_expired_and_revoked_tokens_are_refused_alike(conn, alice):
    _, good = p.create_token(conn, "ci", "reader", actor="alice")
    _, short_lived = p.create_token(conn, "brief", "reader", actor="alice", expires=timedelta(milliseconds=1))
    _, revoked = p.create_token(conn, "gone", "reader", actor="alice")
    p.revoke_token(conn, "gone", actor="alice")
    _, brief_session = p.login(conn, "alice", PASSWORD, ttl=timedelta(milliseconds=1))
    time.sleep(0.05)
    public_id, part = p.parse_token(good) or ("", "")
    wrong = f"wtc_{public_id}_{part[:-1]}{'A' if part[-1] != 'A' else 'B'}"
    unknown = p.new_secret()
    for bearer in ("", "garbage", good + "x", wrong, unknown, short_lived, revoked, brief_session, "wtc_" + "a" * 500):
        message = refused(conn, AuthenticationFailed, lambda b=bearer: p.authenticate(conn, b))
        assert message == "invalid token"
    assert p.authenticate(conn, good).name == "ci"


def test_a_session_follows_its_users_role_and_ends_when_they_are_disabled(conn, alice):
    p.add_user(conn, "bob", "editor", "bobs password", actor="alice")
    _, bearer = p.login(conn, "bob", "bobs password")
    assert p.authenticate(conn, bearer).role is Role.EDITOR
    p.set_role(conn, "bob", Role.OPERATOR, actor="alice")
    assert p.authenticate(conn, bearer).role is Role.OPERATOR
    p.disable_user(conn, "bob", actor="alice")
    refused(conn, AuthenticationFailed, lambda: p.authenticate(conn, bearer))
    p.enable_user(conn, "bob", actor="alice")
    refused(conn, AuthenticationFailed, lambda: p.authenticate(conn, bearer))  # disabling ended the session
    assert p.authenticate(conn, p.login(conn, "bob", "bobs password")[1]).role is Role.OPERATOR


def test_a_new_password_ends_the_sessions_and_the_old_one_stops_working(conn, alice):
    _, bearer = p.login(conn, "alice", PASSWORD)
    p.set_password(conn, "alice", "a brand new password", actor="alice")
    refused(conn, AuthenticationFailed, lambda: p.authenticate(conn, bearer))
    refused(conn, AuthenticationFailed, lambda: p.login(conn, "alice", PASSWORD), "invalid name or password")
    assert p.login(conn, "alice", "a brand new password")[0].name == "alice"


def test_sign_in_refusals_say_the_same_and_write_nothing(conn, alice):
    p.add_user(conn, "bob", "reader", "bobs password", actor="alice")
    p.disable_user(conn, "bob", actor="alice")
    for name, password in (
        ("nobody", PASSWORD),
        ("alice", PASSWORD + "!"),
        ("alice", ""),
        ("bob", "bobs password"),
        ("alice", "x" * 5000),
        ("", ""),
    ):
        message = refused(conn, AuthenticationFailed, lambda n=name, pw=password: p.login(conn, n, pw))
        assert message == "invalid name or password"
    refused(conn, InvalidValue, lambda: p.login(conn, "alice", PASSWORD, ttl=timedelta(0)), "ttl")


def test_lifetimes_stop_at_ten_years(conn, alice):
    too_long = timedelta(days=3651)
    refused(conn, InvalidValue, lambda: p.login(conn, "alice", PASSWORD, ttl=too_long), "ttl: must be at most 10 years")
    verified = p.check_password(p.find_login(conn, "alice"), PASSWORD)
    refused(conn, InvalidValue, lambda: p.open_session(conn, verified, ttl=too_long), "ttl", "10 years")
    refused(
        conn,
        InvalidValue,
        lambda: p.create_token(conn, "ci", "reader", actor="alice", expires=too_long),
        "expires: must be at most 10 years",
    )
    refused(
        conn,
        InvalidValue,
        lambda: p.create_token(conn, "ci", "reader", actor="alice", expires=p.parse_duration("9999w")),
    )
    # The longest lifetime fits PostgreSQL's timestamps with room to spare.
    token, _ = p.create_token(conn, "ci", "reader", actor="alice", expires=p.parse_duration("3650d"))
    session, _ = p.login(conn, "alice", PASSWORD, ttl=timedelta(days=3650))
    for expires_at in (token.expires_at, session.expires_at):
        assert expires_at is not None and expires_at.year >= 2030


# -- signing in, split: no connection is needed while the hash is checked ------------------------------------------


def test_find_login_finds_the_user_whatever_the_case_of_the_name(conn, alice):
    found = p.find_login(conn, "ALICE")
    assert found is not None
    assert (found.user_id, found.name, found.disabled, found.verified) == (alice.id, "alice", False, False)
    assert found.password_hash.startswith("$argon2id$") and found.password_hash not in repr(found)
    assert p.find_login(conn, "nobody") is None
    assert p.find_login(conn, None) is None  # type: ignore[arg-type]


def test_check_password_refuses_alike_and_needs_no_database(conn, alice):
    p.add_user(conn, "bob", "reader", "bobs password", actor="alice")
    p.disable_user(conn, "bob", actor="alice")
    found, bob = p.find_login(conn, "alice"), p.find_login(conn, "bob")
    assert found is not None and bob is not None
    conn.close()  # nothing below may use it
    for candidate, password in (
        (found, PASSWORD + "!"),
        (found, ""),
        (None, PASSWORD),
        (bob, "bobs password"),
        (found, "x" * 5000),
    ):
        with pytest.raises(AuthenticationFailed) as err:
            p.check_password(candidate, password)
        assert str(err.value) == "invalid name or password"
    verified = p.check_password(found, PASSWORD)
    assert verified.verified and (verified.user_id, verified.password_hash) == (found.user_id, found.password_hash)
    assert not found.verified  # a new candidate, the one found is unchanged


def test_open_session_needs_a_verified_candidate_and_the_hash_it_verified(conn, migrated_db, alice):
    found = p.find_login(conn, "alice")
    assert found is not None
    refused(conn, AuthenticationFailed, lambda: p.open_session(conn, found), "invalid name or password")
    verified = p.check_password(found, PASSWORD)
    # Between the check and the session: a new password, then a disable. Either wins over the old check.
    p.set_password(conn, "alice", "a brand new password", actor="root")
    refused(conn, AuthenticationFailed, lambda: p.open_session(conn, verified), "invalid name or password")
    renewed = p.check_password(p.find_login(conn, "alice"), "a brand new password")
    p.add_user(conn, "bob", "admin", "bobs password", actor="root")
    p.disable_user(conn, "alice", actor="bob")
    refused(conn, AuthenticationFailed, lambda: p.open_session(conn, renewed))
    p.enable_user(conn, "alice", actor="bob")
    # Found and opened on one pooled connection each, checked on none: as the server does it.
    with psycopg.connect(migrated_db, autocommit=True) as first:
        candidate = p.find_login(first, "Alice")
    verified = p.check_password(candidate, "a brand new password")
    with psycopg.connect(migrated_db, autocommit=True) as second:
        who, bearer = p.open_session(second, verified, ttl=timedelta(hours=1))
    assert (who.kind, who.id, who.name, who.role, who.actor) == ("user", alice.id, "alice", Role.ADMIN, "alice")
    assert p.authenticate(conn, bearer) == who
    assert log(conn)[-1] == ("session", "alice", "create", "alice", None)


# -- ended sessions do not pile up -------------------------------------------------------------------------------------


def ended_session(
    conn: psycopg.Connection, user: str, *, revoked: str | None = None, expired: str | None = None
) -> str:
    """A session of the user that was revoked, or expired, that long ago; its public id."""
    public_id = p.new_secret()[4:16]
    with conn.transaction():
        conn.execute("SELECT set_config('walltrack.actor', %s, true)", [user])
        conn.execute(
            """INSERT INTO walltrack_auth.api_tokens (public_id, kind, user_id, secret_hash, expires_at)
                        SELECT %s, 'session', id, %s, now() + coalesce(-%s::interval, interval '12 hours')
                        FROM walltrack_auth.users WHERE name = %s""",
            [public_id, "0" * 64, expired, user],
        )
        if revoked is not None:
            conn.execute(
                """UPDATE walltrack_auth.api_tokens SET revoked_at = now() - %s::interval
                            WHERE public_id = %s""",
                [revoked, public_id],
            )
    return public_id


def session_ids(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT public_id FROM walltrack_auth.api_tokens WHERE kind = 'session'")}


def test_a_sign_in_deletes_its_users_sessions_ended_over_30_days_ago_unaudited(conn, migrated_db, alice):
    assert timedelta(days=30) == p.SESSION_RETENTION
    p.add_user(conn, "bob", "reader", "bobs password", actor="alice")
    live = p.parse_token(p.login(conn, "alice", PASSWORD)[1])[0]  # type: ignore[index]
    old_revoked = ended_session(conn, "alice", revoked="31 days")
    old_expired = ended_session(conn, "alice", expired="31 days")
    recent_revoked = ended_session(conn, "alice", revoked="29 days")
    recent_expired = ended_session(conn, "alice", expired="1 day")
    bobs_old = ended_session(conn, "bob", revoked="90 days")
    assert {old_revoked, old_expired, recent_revoked, recent_expired, bobs_old, live} <= session_ids(conn)
    rows = len(log(conn))
    with psycopg.connect(migrated_db, autocommit=True) as listener:
        listener.execute("LISTEN walltrack_principals")
        _, bearer = p.login(conn, "alice", PASSWORD)
        assert list(listener.notifies(timeout=0.5)) == []  # neither the new session nor the deletions
    new = p.parse_token(bearer)[0]  # type: ignore[index]
    assert session_ids(conn) == {recent_revoked, recent_expired, bobs_old, live, new}
    assert log(conn)[rows:] == [("session", "alice", "create", "alice", None)]  # no 'delete' rows


def test_deleting_a_live_session_is_audited_and_announced_an_ended_one_is_not(conn, migrated_db, alice):
    live, _ = p.login(conn, "alice", PASSWORD)
    ended = ended_session(conn, "alice", revoked="1 minute")
    rows = len(log(conn))
    with psycopg.connect(migrated_db, autocommit=True) as listener:
        listener.execute("LISTEN walltrack_principals")
        conn.execute("DELETE FROM walltrack_auth.api_tokens WHERE public_id = %s", [ended])
        assert list(listener.notifies(timeout=0.3)) == []
        conn.execute("DELETE FROM walltrack_auth.api_tokens WHERE id = %s", [live.token_id])
        heard = [json.loads(n.payload) for n in listener.notifies(timeout=2, stop_after=1)]
    assert heard == [{"kind": "session", "id": str(live.token_id)}]
    assert log(conn)[rows:] == [("session", "alice", "delete", conn.execute("SELECT session_user").fetchone()[0], None)]


def test_logout_revokes_that_session_only(conn, alice):
    first, one = p.login(conn, "alice", PASSWORD)
    _, two = p.login(conn, "alice", PASSWORD)
    p.logout(conn, first.token_id)
    refused(conn, AuthenticationFailed, lambda: p.authenticate(conn, one))
    assert p.authenticate(conn, two).name == "alice"
    p.logout(conn, first.token_id)  # again: nothing to do
    assert log(conn)[-1] == ("session", "alice", "revoke", "alice", ["revoked_at", "revoked_by"])


def test_any_principal_is_an_enabled_user_or_a_live_api_token(conn):
    assert not p.any_principal(conn)
    p.create_token(conn, "ci", "reader", actor="root")
    assert p.any_principal(conn)
    p.revoke_token(conn, "ci", actor="root")
    assert not p.any_principal(conn)
    p.create_token(conn, "brief", "reader", actor="root", expires=timedelta(milliseconds=1))
    time.sleep(0.05)
    assert not p.any_principal(conn)
    p.add_user(conn, "alice", "admin", PASSWORD, actor="root")
    p.add_user(conn, "bob", "reader", "bobs password", actor="root")
    assert p.any_principal(conn)
    p.disable_user(conn, "bob", actor="root")
    assert p.any_principal(conn)


# -- managing users and tokens ---------------------------------------------------------------------------------------


def test_bad_names_roles_and_passwords_are_refused_together_and_nothing_is_written(conn, alice):
    secret = "short!"
    message = refused(conn, InvalidValue, lambda: p.add_user(conn, "-bad name", "boss", secret, actor="root"))
    assert secret not in message
    with pytest.raises(InvalidValue) as err:
        p.add_user(conn, "x:y", "boss", secret, actor="root")
    assert err.value.fields == ["name", "role", "password"]
    for name in ("", "a" * 65, "token:x", "bob smith", "ålice", ".hidden", "bob\n"):
        refused(conn, InvalidValue, lambda n=name: p.add_user(conn, n, "reader", PASSWORD, actor="root"), "name")
        refused(conn, InvalidValue, lambda n=name: p.create_token(conn, n, "reader", actor="root"), "name")
    refused(conn, InvalidValue, lambda: p.set_role(conn, "alice", "root", actor="root"), "role")
    refused(conn, InvalidValue, lambda: p.set_password(conn, "alice", "tiny", actor="root"), "password")
    for expires in (timedelta(0), -timedelta(days=1)):
        refused(
            conn, InvalidValue, lambda e=expires: p.create_token(conn, "ci", "reader", actor="r", expires=e), "expires"
        )
    assert len(p.add_user(conn, "a" * 64, "reader", PASSWORD, actor="root").name) == 64


def test_names_are_unique_whatever_their_case_and_a_revoked_token_frees_its_name(conn, alice):
    refused(conn, AlreadyExists, lambda: p.add_user(conn, "Alice", "reader", PASSWORD, actor="root"), "'Alice'")
    first, _ = p.create_token(conn, "ci", "reader", actor="root")
    refused(conn, AlreadyExists, lambda: p.create_token(conn, "CI", "admin", actor="root"))
    p.revoke_token(conn, "ci", actor="root")
    second, _ = p.create_token(conn, "ci", "admin", actor="root")
    assert [t.id for t in p.tokens(conn)] == [second.id]
    assert [t.id for t in p.tokens(conn, include_revoked=True)] == [first.id, second.id]
    refused(conn, NotFound, lambda: p.revoke_token(conn, "nope", actor="root"), "no live API token named 'nope'")
    for change in (p.disable_user, p.enable_user):
        refused(conn, NotFound, lambda c=change: c(conn, "nobody", actor="root"), "no user named 'nobody'")
    refused(conn, NotFound, lambda: p.get_user(conn, "nobody"))


def test_the_last_enabled_admin_is_neither_demoted_nor_disabled(conn, alice):
    p.add_user(conn, "bob", "operator", "bobs password", actor="alice")
    for change in (
        lambda: p.set_role(conn, "alice", "operator", actor="alice"),
        lambda: p.disable_user(conn, "alice", actor="alice"),
    ):
        refused(conn, InvalidTransition, change, "alice is the last enabled admin", "make another user admin first")
    p.set_role(conn, "bob", "admin", actor="alice")
    p.disable_user(conn, "alice", actor="bob")
    refused(conn, InvalidTransition, lambda: p.set_role(conn, "bob", "editor", actor="bob"), "last enabled admin")
    assert p.enable_user(conn, "alice", actor="bob").disabled is False
    assert p.set_role(conn, "bob", "editor", actor="alice").role is Role.EDITOR


def test_every_change_is_audited_with_its_actor_and_no_hash(conn):
    p.add_user(conn, "alice", "admin", PASSWORD, actor="root")
    p.add_user(conn, "bob", "editor", "bobs password", actor="alice")
    p.set_role(conn, "bob", "operator", actor="alice")
    p.set_role(conn, "bob", "operator", actor="alice")  # no change, no row
    p.login(conn, "bob", "bobs password")
    p.set_password(conn, "bob", "bobs new password", actor="bob")
    p.disable_user(conn, "bob", actor="alice")
    p.enable_user(conn, "bob", actor="alice")
    p.create_token(conn, "ci", "reader", actor="token:admin-bot")
    p.revoke_token(conn, "ci", actor="alice")
    assert log(conn) == [
        ("user", "alice", "create", "root", None),
        ("user", "bob", "create", "alice", None),
        ("user", "bob", "set-role", "alice", ["role"]),
        ("session", "bob", "create", "bob", None),
        ("user", "bob", "set-password", "bob", ["password_hash"]),
        ("session", "bob", "revoke", "bob", ["revoked_at", "revoked_by"]),
        ("user", "bob", "disable", "alice", ["disabled"]),
        ("user", "bob", "enable", "alice", ["disabled"]),
        ("token", "ci", "create", "token:admin-bot", None),
        ("token", "ci", "revoke", "alice", ["revoked_at", "revoked_by"]),
    ]
    entries = p.audit(conn, limit=3)
    assert [e["action"] for e in entries] == ["revoke", "create", "enable"]
    assert {e["action"] for e in p.audit(conn, 100)} <= set(PRINCIPAL_ACTIONS)
    newest = entries[0]
    assert newest["db_user"] == conn.execute("SELECT session_user").fetchone()[0]
    assert newest["new_values"]["revoked_by"] == "alice" and "secret_hash" not in newest["new_values"]
    assert json.dumps(entries)  # JSON-ready
    assert all("password_hash" not in (e["old_values"] or {}) | (e["new_values"] or {}) for e in p.audit(conn, 100))
    user = p.get_user(conn, "bob")
    assert (user.created_by, user.updated_by) == ("alice", "alice")
    refused(conn, InvalidValue, lambda: p.audit(conn, 0), "limit")


def test_a_last_use_or_sign_in_writes_no_audit_row_and_no_notify_but_changes_do(conn, migrated_db, alice):
    token, secret = p.create_token(conn, "ci", "reader", actor="alice")
    with psycopg.connect(migrated_db, autocommit=True) as listener:
        listener.execute("LISTEN walltrack_principals")
        rows = len(log(conn))
        p.touch(conn, token.id)
        p.authenticate(conn, secret)
        conn.execute("UPDATE walltrack_auth.users SET last_login_at = now()")
        assert len(log(conn)) == rows
        assert list(listener.notifies(timeout=0.5)) == []
        assert p.tokens(conn)[0].last_used_at is not None
        p.set_role(conn, "alice", "admin", actor="alice")  # no change at all: no row, no notice either
        assert list(listener.notifies(timeout=0.2)) == []


def test_only_what_could_make_a_remembered_credential_wrong_is_announced(conn, migrated_db, alice):
    """Not a new user, token or session (nothing remembered can be about it); every change and removal.
    The payload: {"kind", "id"}, the id the user's for a user, the api_tokens row's for a token or session."""
    with psycopg.connect(migrated_db, autocommit=True) as listener:
        listener.execute("LISTEN walltrack_principals")
        rows = len(log(conn))
        bob = p.add_user(conn, "bob", "reader", "bobs password", actor="alice")
        token, _ = p.create_token(conn, "ci", "reader", actor="alice")
        first, _ = p.login(conn, "bob", "bobs password")
        second, _ = p.login(conn, "bob", "bobs password")
        assert len(log(conn)) == rows + 4  # each creation is audited ...
        assert list(listener.notifies(timeout=0.5)) == []  # ... and none announced
        p.set_role(conn, "bob", "editor", actor="alice")
        p.logout(conn, first.token_id)
        p.revoke_token(conn, "ci", actor="alice")
        p.disable_user(conn, "bob", actor="alice")  # ends the second session too
        p.enable_user(conn, "bob", actor="alice")
        p.set_password(conn, "bob", "bobs new password", actor="alice")  # no live session left to end
        conn.execute("DELETE FROM walltrack_auth.users WHERE id = %s", [bob.id])
        expected = [
            ("user", bob.id),
            ("session", first.token_id),
            ("token", token.id),
            ("user", bob.id),
            ("session", second.token_id),
            ("user", bob.id),
            ("user", bob.id),
            ("user", bob.id),
        ]
        heard = [json.loads(n.payload) for n in listener.notifies(timeout=2, stop_after=len(expected))]
        assert heard == [{"kind": kind, "id": str(id)} for kind, id in expected]
        assert list(listener.notifies(timeout=0.2)) == []


# -- what the database itself refuses ---------------------------------------------------------------------------------


def sql_refused(conn, statement: str, match: str) -> None:
    before = everything(conn)
    with pytest.raises(psycopg.Error) as err, conn.transaction():
        conn.execute(statement)
    assert err.value.sqlstate == "WT001" and match in str(err.value), err.value
    assert everything(conn) == before


def test_the_audit_log_is_append_only_even_for_its_owner(conn, alice):
    sql_refused(conn, "UPDATE walltrack_auth.principal_audit_log SET performed_by = 'mallory'", "append-only")
    sql_refused(conn, "DELETE FROM walltrack_auth.principal_audit_log", "append-only")
    sql_refused(conn, "TRUNCATE walltrack_auth.principal_audit_log", "append-only")
    sql_refused(
        conn,
        """INSERT INTO walltrack_auth.principal_audit_log (principal_kind, principal_id, action, performed_by, db_user)
           VALUES ('user', gen_random_uuid(), 'create', 'mallory', 'x')""",
        "triggers only",
    )
    sql_refused(conn, "TRUNCATE walltrack_auth.api_tokens, walltrack_auth.users", "bypass the principal audit log")


def test_a_token_never_changes_but_for_its_last_use_and_revocation(conn, alice):
    p.create_token(conn, "ci", "reader", actor="alice")
    sql_refused(conn, "UPDATE walltrack_auth.api_tokens SET role = 'admin'", "never changes")
    sql_refused(conn, "UPDATE walltrack_auth.api_tokens SET expires_at = NULL, name = 'other'", "never changes")
    p.revoke_token(conn, "ci", actor="alice")
    sql_refused(conn, "UPDATE walltrack_auth.api_tokens SET revoked_at = NULL, revoked_by = NULL", "stays revoked")
    sql_refused(conn, "UPDATE walltrack_auth.users SET created_by = 'mallory'", "never change")


def test_a_session_unused_for_longer_than_idle_has_ended_and_an_api_token_never_idles(conn, alice):
    idle = timedelta(minutes=30)
    session, bearer = p.login(conn, "alice", PASSWORD)
    _, api_token = p.create_token(conn, "ci", "reader", actor="alice")
    assert p.authenticate(conn, bearer, idle=idle) == session  # created just now: fresh
    with conn.transaction():
        conn.execute("UPDATE walltrack_auth.api_tokens SET last_used_at = now() - interval '29 minutes'")
    assert p.authenticate(conn, bearer, idle=idle) == session
    with conn.transaction():
        conn.execute("UPDATE walltrack_auth.api_tokens SET last_used_at = now() - interval '31 minutes'")
    assert refused(conn, AuthenticationFailed, lambda: p.authenticate(conn, bearer, idle=idle)) == "invalid token"
    assert p.authenticate(conn, bearer) == session  # no idle limit asked for: only its expiry counts
    assert p.authenticate(conn, api_token, idle=idle).name == "ci"
    p.touch(conn, session.token_id)
    assert p.authenticate(conn, bearer, idle=idle) == session  # used again: fresh again
