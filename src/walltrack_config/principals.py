"""Who may do what (V12): users who sign in with a password, API tokens, and the sessions a sign-in gets.

V12's triggers audit and announce every change (NOTIFY walltrack_principals); here we say who acts
(walltrack.actor, for the audit row), keep the rules the database cannot (the last enabled admin stays), and
turn PostgreSQL's refusals into the ConfigError family once (SQLSTATES). Passwords and secrets travel as
bound parameters only and never reach a message. The pure half (token format, hashes) is `credentials`.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, LiteralString, TypeVar
from uuid import UUID

from psycopg import sql

from .credentials import (
    TOKEN_PREFIX,
    digest,
    dummy_hash,
    hash_password,
    lifetime_problems,
    name_problems,
    new_secret,
    parse_duration,
    parse_token,
    password_problems,
    role_of,
    verify_password,
)
from .domains import Role
from .errors import (
    AlreadyExists,
    AuthenticationFailed,
    ConcurrentChange,
    ConfigError,
    DatabaseUnavailable,
    FieldError,
    InvalidTransition,
    InvalidValue,
    NotFound,
)

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "SESSION_RETENTION",
    "TOKEN_PREFIX",
    "Candidate",
    "Principal",
    "Token",
    "User",
    "add_user",
    "any_principal",
    "audit",
    "authenticate",
    "check_password",
    "create_token",
    "digest",
    "disable_user",
    "enable_user",
    "find_login",
    "get_user",
    "hash_password",
    "login",
    "logout",
    "new_secret",
    "open_session",
    "parse_duration",
    "parse_token",
    "revoke_token",
    "set_password",
    "set_role",
    "tokens",
    "touch",
    "users",
    "verify_password",
]

T = TypeVar("T")
USERS, TOKENS = "walltrack_auth.users", "walltrack_auth.api_tokens"
_NO_MATCH = "0" * 64  # compared against when no token row is found, so every refusal does the same work
#: How long a user's ended (revoked or expired) sessions are kept; each sign-in of theirs deletes older ones.
SESSION_RETENTION = timedelta(days=30)


@dataclass(frozen=True)
class Principal:
    """Who a request runs as: a user (through a session) or an API token."""

    kind: Literal["user", "token"]
    id: UUID  # the user's id, or the API token's id
    name: str
    role: Role
    token_id: UUID  # the token (API token or session) that authenticated
    expires_at: datetime | None

    @property
    def actor(self) -> str:
        """What audit rows carry as performed_by. Names hold no ':', so no user can pass for a token."""
        return self.name if self.kind == "user" else f"token:{self.name}"

    def allows(self, needed: Role) -> bool:
        return self.role.allows(needed)


def _json_ready(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return value.value if isinstance(value, Role) else str(value) if isinstance(value, UUID) else value


@dataclass(frozen=True)
class User:
    """One row of walltrack_auth.users, without its password hash."""

    id: UUID
    name: str
    role: Role
    disabled: bool
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    last_login_at: datetime | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "role", Role(self.role))  # the database hands it over as text

    def columns(self) -> dict[str, object]:
        return {f.name: _json_ready(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class Token:
    """One row of walltrack_auth.api_tokens, without its secret's hash."""

    id: UUID
    name: str
    kind: Literal["api", "session"]
    role: Role | None  # None for a session: its user's role applies
    user_name: str | None  # a session's user
    public_id: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def __post_init__(self) -> None:
        if self.role is not None:
            object.__setattr__(self, "role", Role(self.role))

    @property
    def active(self) -> bool:
        """Neither revoked nor expired (by this machine's clock)."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > datetime.now(UTC))

    def columns(self) -> dict[str, object]:
        return {f.name: _json_ready(getattr(self, f.name)) for f in fields(self)} | {"active": self.active}


# -- PostgreSQL's refusals ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    kind: str  # 'user' or 'token'
    name: str | None
    message: str
    hint: str | None
    constraint: str | None


_CHECKS = {
    "chk_users_name": "name",
    "chk_api_tokens_name": "name",
    "chk_users_role": "role",
    "chk_api_tokens_role": "role",
    "chk_users_password_hash": "password",
}

SQLSTATES: dict[str, Callable[[Refusal], ConfigError | None]] = {
    "WT001": lambda r: InvalidTransition(USERS if r.kind == "user" else TOKENS, r.message, r.hint),  # a V12 rule
    # A taken name; a taken public id (uq_api_tokens_public_id) is left to _fresh_secret, which draws again.
    "23505": lambda r: (
        AlreadyExists(r.kind, r.name or "?") if r.constraint in ("uq_users_name", "uq_api_tokens_name") else None
    ),
    "23514": lambda r: InvalidValue(r.kind, [FieldError(_CHECKS.get(r.constraint or "", "?"), r.message)]),
    "40001": lambda r: ConcurrentChange(r.kind, r.message),  # serialization_failure
    "40P01": lambda r: ConcurrentChange(r.kind, r.message),  # deadlock_detected
    "55P03": lambda r: ConcurrentChange(r.kind, f"another change to this {r.kind} held its lock"),  # lock_timeout
}


@contextmanager
def translated(kind: str, name: str | None = None) -> Iterator[None]:
    """PostgreSQL's refusals inside the block as the ConfigError family (SQLSTATES; the original as the cause)."""
    import psycopg

    try:
        yield
    except psycopg.Error as exc:
        diag = exc.diag
        refusal = Refusal(kind, name, diag.message_primary or str(exc), diag.message_hint, diag.constraint_name)
        factory = SQLSTATES.get(exc.sqlstate or "")
        if factory is not None and (error := factory(refusal)) is not None:
            raise error from exc
        if isinstance(exc, psycopg.OperationalError):
            raise DatabaseUnavailable(kind, " ".join(str(exc).split())) from exc
        raise


def _act(conn: psycopg.Connection, actor: str) -> None:
    """Who acts, for the triggers' audit rows, until the transaction ends."""
    conn.execute("SELECT set_config('walltrack.actor', %s, true)", [actor])


def _rows(conn: psycopg.Connection, kind: type[T], query: sql.SQL | sql.Composed, params: Sequence[object]) -> list[T]:
    from psycopg.rows import class_row

    with conn.cursor(row_factory=class_row(kind)) as cur:
        return cur.execute(query, params).fetchall()


def _refuse(problems: list[FieldError], kind: str) -> None:
    if problems:
        raise InvalidValue(kind, problems)


# -- signing in -----------------------------------------------------------------------------------------------------

_AUTHENTICATE = """
    SELECT t.id, t.kind, t.secret_hash, t.expires_at, coalesce(t.role, u.role), coalesce(t.name, u.name), u.id
    FROM walltrack_auth.api_tokens AS t LEFT JOIN walltrack_auth.users AS u ON u.id = t.user_id
    WHERE t.public_id = %s AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
      AND (t.kind = 'api' OR (NOT u.disabled
           AND (%s::interval IS NULL OR coalesce(t.last_used_at, t.created_at) > now() - %s::interval)))"""


def authenticate(conn: psycopg.Connection, bearer: str, *, idle: timedelta | None = None) -> Principal:
    """The principal a bearer token stands for; AuthenticationFailed, saying no more, for anything else.

    With `idle`, a session not used for that long has ended (its last use is what `touch` recorded)."""
    parsed = parse_token(bearer)
    if parsed is None:
        raise AuthenticationFailed("invalid token")
    public_id, secret = parsed
    with translated("token"):
        row = conn.execute(_AUTHENTICATE, [public_id, idle, idle]).fetchone()
    matches = hmac.compare_digest(digest(secret), row[2] if row else _NO_MATCH)
    if row is None or not matches:
        raise AuthenticationFailed("invalid token")
    token_id, kind, _, expires_at, role, name, user_id = row
    if kind == "session":
        return Principal("user", user_id, name, Role(role), token_id, expires_at)
    return Principal("token", token_id, name, Role(role), token_id, expires_at)


def touch(conn: psycopg.Connection, token_id: UUID) -> None:
    """Record a token's use now (neither audited nor announced: V12 leaves last-use-only updates out)."""
    with translated("token"), conn.transaction():
        conn.execute("UPDATE walltrack_auth.api_tokens SET last_used_at = now() WHERE id = %s", [token_id])


def _fresh_secret(conn: psycopg.Connection, insert: Callable[[str, str], T]) -> tuple[T, str]:
    """insert(public id, digest of the secret) with a new secret, drawn again should its public id be taken."""
    import psycopg

    for attempt in range(3):
        secret = new_secret()
        public_id, part = parse_token(secret) or ("", "")
        try:
            with conn.transaction():  # a savepoint: a collision undoes this attempt only
                return insert(public_id, digest(part)), secret
        except psycopg.errors.UniqueViolation as exc:
            if exc.diag.constraint_name != "uq_api_tokens_public_id" or attempt == 2:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


_SIGN_IN = """
    WITH signed_in AS (
        UPDATE walltrack_auth.users SET last_login_at = now()
        WHERE id = %(user)s AND password_hash = %(hash)s AND NOT disabled RETURNING id, name, role),
    session AS (
        INSERT INTO walltrack_auth.api_tokens (public_id, kind, user_id, secret_hash, expires_at)
        SELECT %(public_id)s, 'session', id, %(digest)s, now() + %(ttl)s::interval FROM signed_in
        RETURNING id, user_id, expires_at)
    SELECT s.id, s.expires_at, u.id, u.name, u.role FROM session AS s JOIN signed_in AS u ON u.id = s.user_id"""


@dataclass(frozen=True)
class Candidate:
    """Who a sign-in names (find_login), and whether check_password has verified their password since.

    Holds the password hash (never shown in its repr), so that the session is bound to the very hash
    verified: a password changed or a user disabled between the check and the session wins."""

    user_id: UUID
    name: str  # as stored: 'ALICE' signing in is alice
    password_hash: str = field(repr=False)
    disabled: bool
    verified: bool = False


_REFUSED = "invalid name or password"


def _session_ttl(ttl: timedelta) -> None:
    _refuse(lifetime_problems(ttl, "ttl"), "session")


def find_login(conn: psycopg.Connection, name: str) -> Candidate | None:
    """The user a sign-in names (whatever the case of the name), or None: one quick read, no hashing."""
    with translated("user"):
        row = conn.execute(
            "SELECT id, name, password_hash, disabled FROM walltrack_auth.users WHERE lower(name) = lower(%s)",
            [name if isinstance(name, str) else ""],
        ).fetchone()
    return None if row is None else Candidate(*row)


def check_password(candidate: Candidate | None, password: str) -> Candidate:
    """The candidate, verified; AuthenticationFailed, saying no more, for an unknown name (None), a wrong
    password or a disabled user. No database: the slow argon2 check holds no connection.

    An unknown name is checked against a dummy hash, so a refusal takes as long whatever was wrong."""
    hashed = candidate.password_hash if candidate is not None else dummy_hash()
    if not verify_password(hashed, password) or candidate is None or candidate.disabled:
        raise AuthenticationFailed(_REFUSED)
    return replace(candidate, verified=True)


_PRUNE = """
    DELETE FROM walltrack_auth.api_tokens
    WHERE user_id = %(user)s AND kind = 'session'
      AND (revoked_at < now() - %(kept)s::interval OR expires_at < now() - %(kept)s::interval)"""


def open_session(
    conn: psycopg.Connection, candidate: Candidate, *, ttl: timedelta = timedelta(hours=12)
) -> tuple[Principal, str]:
    """A new session for a candidate check_password verified, and its token (shown once; only its digest is
    kept). One statement, bound to the hash verified: AuthenticationFailed if the password changed or the
    user was disabled (or removed) since, or if the candidate was never verified. The user's sessions that
    ended more than SESSION_RETENTION ago are deleted in the same transaction (V12 neither audits nor
    announces deleting an ended session)."""
    _session_ttl(ttl)
    if not candidate.verified:
        raise AuthenticationFailed(_REFUSED)

    def sign_in(public_id: str, secret_digest: str) -> Any:
        params = {
            "user": candidate.user_id,
            "hash": candidate.password_hash,
            "public_id": public_id,
            "digest": secret_digest,
            "ttl": ttl,
        }
        return conn.execute(_SIGN_IN, params).fetchone()

    with translated("user", candidate.name), conn.transaction():
        _act(conn, candidate.name)
        session, secret = _fresh_secret(conn, sign_in)
        if session is not None:
            conn.execute(_PRUNE, {"user": candidate.user_id, "kept": SESSION_RETENTION})
    if session is None:
        raise AuthenticationFailed(_REFUSED)
    token_id, expires_at, user_id, user_name, role = session
    return Principal("user", user_id, user_name, Role(role), token_id, expires_at), secret


def login(
    conn: psycopg.Connection, name: str, password: str, *, ttl: timedelta = timedelta(hours=12)
) -> tuple[Principal, str]:
    """find_login, check_password and open_session on one connection: a new session for a user's name and
    password, and its token. A server that pools connections calls the three itself, so that no
    connection is held while the password hash is checked."""
    _session_ttl(ttl)  # before the slow part
    return open_session(conn, check_password(find_login(conn, name), password), ttl=ttl)


def logout(conn: psycopg.Connection, token_id: UUID) -> None:
    """Revoke a session (its user is the actor); nothing for a token that is no live session."""
    with translated("session"), conn.transaction():
        conn.execute(
            """SELECT set_config('walltrack.actor', u.name, true) FROM walltrack_auth.api_tokens AS t
                        JOIN walltrack_auth.users AS u ON u.id = t.user_id WHERE t.id = %s""",
            [token_id],
        )
        conn.execute(
            """UPDATE walltrack_auth.api_tokens SET revoked_at = now()
                        WHERE id = %s AND kind = 'session' AND revoked_at IS NULL""",
            [token_id],
        )


def any_principal(conn: psycopg.Connection) -> bool:
    """Whether anyone at all could sign in: an enabled user, or an API token neither revoked nor expired."""
    with translated("user"):
        row = conn.execute("""SELECT EXISTS (SELECT FROM walltrack_auth.users WHERE NOT disabled)
                              OR EXISTS (SELECT FROM walltrack_auth.api_tokens WHERE kind = 'api' AND revoked_at IS NULL
                                         AND (expires_at IS NULL OR expires_at > now()))""").fetchone()
    return bool(row and row[0])


# -- users ----------------------------------------------------------------------------------------------------------


def _user_query(template: LiteralString, *args: sql.Composable) -> sql.Composed:
    """The template with {columns}: every column of a User, never the password hash."""
    columns = sql.SQL(", ").join(sql.Identifier(f.name) for f in fields(User))
    return sql.SQL(template).format(*args, columns=columns)


def _no_user(name: str) -> NotFound:
    return NotFound(USERS, message=f"no user named {name!r}")


def users(conn: psycopg.Connection) -> list[User]:
    with translated("user"):
        return _rows(conn, User, _user_query("SELECT {columns} FROM walltrack_auth.users ORDER BY lower(name)"), [])


def get_user(conn: psycopg.Connection, name: str) -> User:
    with translated("user", name):
        query = _user_query("SELECT {columns} FROM walltrack_auth.users WHERE lower(name) = lower(%s)")
        found = _rows(conn, User, query, [name])
    if not found:
        raise _no_user(name)
    return found[0]


def add_user(conn: psycopg.Connection, name: str, role: Role | str, password: str, *, actor: str) -> User:
    problems = name_problems(name)
    chosen = role_of(role, problems)
    _refuse(problems + password_problems(password), "user")
    hashed = hash_password(password)
    with translated("user", name), conn.transaction():
        _act(conn, actor)
        insert = _user_query(
            "INSERT INTO walltrack_auth.users (name, role, password_hash) VALUES (%s, %s, %s) RETURNING {columns}"
        )
        return _rows(conn, User, insert, [name, chosen.value, hashed])[0]


def add_first_admin(conn: psycopg.Connection, name: str, password: str) -> User:
    """The first user, an admin, chosen on the setup page; AlreadyExists once any user exists.

    The users table is locked for the check and the insert, so two setups racing (two servers, two tabs)
    make one admin between them."""
    problems = name_problems(name)
    _refuse(problems + password_problems(password), "user")
    hashed = hash_password(password)
    with translated("user", name), conn.transaction():
        _act(conn, name)
        conn.execute("LOCK TABLE walltrack_auth.users IN SHARE ROW EXCLUSIVE MODE")
        if conn.execute("SELECT EXISTS (SELECT FROM walltrack_auth.users)").fetchone() != (False,):
            raise InvalidTransition("walltrack_auth.users", "setup is over: a user exists already",
                                    "sign in with that user, or ask an admin for one")
        insert = _user_query(
            "INSERT INTO walltrack_auth.users (name, role, password_hash) VALUES (%s, 'admin', %s) RETURNING {columns}"
        )
        return _rows(conn, User, insert, [name, hashed])[0]


def any_user(conn: psycopg.Connection) -> bool:
    """Whether any user exists (enabled or not): no user means the console offers its setup link."""
    with translated("user"):
        row = conn.execute("SELECT EXISTS (SELECT FROM walltrack_auth.users)").fetchone()
    return bool(row and row[0])


def _update_user(
    conn: psycopg.Connection,
    name: str,
    actor: str,
    column: str,
    value: object,
    *,
    keep_an_admin: bool = False,
    end_sessions: bool = False,
) -> User:
    """One column of the user named set to value; `keep_an_admin` refuses leaving no enabled admin user.

    The server would lose its last way to manage users and tokens (the command line keeps one)."""
    with translated("user", name), conn.transaction():
        _act(conn, actor)
        # Every enabled admin is locked first, in one order, so two admins demoting each other cannot both
        # succeed (the second sees the first's change) nor deadlock.
        admins = [
            r[0]
            for r in conn.execute("""SELECT name FROM walltrack_auth.users
                                                WHERE role = 'admin' AND NOT disabled ORDER BY id FOR UPDATE""")
        ]
        found = _rows(
            conn,
            User,
            _user_query("SELECT {columns} FROM walltrack_auth.users WHERE lower(name) = lower(%s) FOR UPDATE"),
            [name],
        )
        if not found:
            raise _no_user(name)
        if keep_an_admin and admins == [found[0].name]:
            raise InvalidTransition(
                USERS, f"{found[0].name} is the last enabled admin", "make another user admin first"
            )
        update = _user_query(
            "UPDATE walltrack_auth.users SET {} = %s WHERE id = %s RETURNING {columns}", sql.Identifier(column)
        )
        user = _rows(conn, User, update, [value, found[0].id])[0]
        if end_sessions:
            conn.execute(
                """UPDATE walltrack_auth.api_tokens SET revoked_at = now()
                            WHERE user_id = %s AND kind = 'session' AND revoked_at IS NULL""",
                [user.id],
            )
        return user


def set_role(conn: psycopg.Connection, name: str, role: Role | str, *, actor: str) -> User:
    problems: list[FieldError] = []
    chosen = role_of(role, problems)
    _refuse(problems, "user")
    return _update_user(conn, name, actor, "role", chosen.value, keep_an_admin=chosen is not Role.ADMIN)


def set_password(conn: psycopg.Connection, name: str, password: str, *, actor: str) -> User:
    """A new password; the user's sessions end (whoever knew the old one is signed out)."""
    hashed = hash_password(password)
    return _update_user(conn, name, actor, "password_hash", hashed, end_sessions=True)


def disable_user(conn: psycopg.Connection, name: str, *, actor: str) -> User:
    """The user can no longer sign in, and their sessions end at once."""
    return _update_user(conn, name, actor, "disabled", True, keep_an_admin=True, end_sessions=True)


def enable_user(conn: psycopg.Connection, name: str, *, actor: str) -> User:
    return _update_user(conn, name, actor, "disabled", False)


# -- API tokens -----------------------------------------------------------------------------------------------------


def _token_query(where: LiteralString) -> sql.Composed:
    """Tokens as Token rows (never their digest); a session is named after its user."""
    return sql.SQL("""SELECT t.id, coalesce(t.name, u.name) AS name, t.kind, t.role, u.name AS user_name, t.public_id,
                             t.created_at, t.created_by, t.expires_at, t.last_used_at, t.revoked_at
                      FROM walltrack_auth.api_tokens AS t
                      LEFT JOIN walltrack_auth.users AS u ON u.id = t.user_id {}""").format(sql.SQL(where))


def create_token(
    conn: psycopg.Connection, name: str, role: Role | str, *, actor: str, expires: timedelta | None = None
) -> tuple[Token, str]:
    """A new API token and its secret, which is shown this once: only its digest is kept."""
    problems = name_problems(name)
    chosen = role_of(role, problems)
    if expires is not None:
        problems += lifetime_problems(expires, "expires")
    _refuse(problems, "token")

    def insert(public_id: str, secret_digest: str) -> UUID:
        row = conn.execute(
            """INSERT INTO walltrack_auth.api_tokens
                                  (public_id, kind, name, role, secret_hash, expires_at)
                              VALUES (%s, 'api', %s, %s, %s, now() + %s::interval) RETURNING id""",
            [public_id, name, chosen.value, secret_digest, expires],
        ).fetchone()
        assert row is not None  # an INSERT … RETURNING returns its row
        return UUID(str(row[0]))

    with translated("token", name), conn.transaction():
        _act(conn, actor)
        token_id, secret = _fresh_secret(conn, insert)
        return _rows(conn, Token, _token_query("WHERE t.id = %s"), [token_id])[0], secret


def tokens(conn: psycopg.Connection, *, include_revoked: bool = False) -> list[Token]:
    """The API tokens (sessions are not listed), oldest first."""
    with translated("token"):
        return _rows(
            conn,
            Token,
            _token_query("WHERE t.kind = 'api' AND (%s OR t.revoked_at IS NULL) ORDER BY t.created_at, t.name"),
            [include_revoked],
        )


def revoke_token(conn: psycopg.Connection, name: str, *, actor: str) -> Token:
    with translated("token", name), conn.transaction():
        _act(conn, actor)
        row = conn.execute(
            """UPDATE walltrack_auth.api_tokens SET revoked_at = now()
                              WHERE kind = 'api' AND lower(name) = lower(%s) AND revoked_at IS NULL
                              RETURNING id""",
            [name],
        ).fetchone()
        if row is None:
            raise NotFound(TOKENS, message=f"no live API token named {name!r}")
        return _rows(conn, Token, _token_query("WHERE t.id = %s"), [row[0]])[0]


# -- the audit trail ------------------------------------------------------------------------------------------------


def audit(conn: psycopg.Connection, limit: int = 50) -> list[dict[str, object]]:
    """Principal audit rows, newest first, JSON-ready (no hash is ever in them: V12 leaves them out)."""
    from psycopg.rows import dict_row

    if not isinstance(limit, int) or limit < 1:
        raise InvalidValue("audit", [FieldError("limit", "a whole number from 1")])
    with translated("user"), conn.cursor(row_factory=dict_row) as cur:
        found = cur.execute(
            """SELECT id, principal_kind, principal_id, principal_name, action, old_values, new_values,
                                      changed_fields, performed_by, source_ip, user_agent, db_user,
                                      host(db_client_addr) AS db_client_addr, performed_at
                               FROM walltrack_auth.principal_audit_log ORDER BY id DESC LIMIT %s""",
            [limit],
        ).fetchall()
    return [{k: _json_ready(v) for k, v in row.items()} for row in found]
