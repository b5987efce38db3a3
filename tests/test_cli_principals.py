"""walltrack-config user … and token …: passwords from a terminal or stdin only, a token printed once and never
listed, refusals on one line that write nothing, --json documents."""

from __future__ import annotations

import json

import psycopg
import pytest

from conftest import run_cli
from test_cli import assert_one_line_error
from walltrack_config import principals
from walltrack_config.errors import AuthenticationFailed

PASSWORD = "correct horse battery"
TABLES = ("walltrack_auth.users", "walltrack_auth.api_tokens", "walltrack_auth.principal_audit_log")


@pytest.fixture
def wtc(migrated_db):
    """walltrack-config against this test's database, as the operator 'ops'."""

    def run(*args: str, input: str = ""):
        return run_cli("--database-url", migrated_db, "--actor", "ops", *args, input=input)

    run.url = migrated_db
    return run


def everything(url: str) -> dict[str, list]:
    with psycopg.connect(url) as conn:
        return {t: conn.execute(f"SELECT to_jsonb(x)::text FROM {t} x ORDER BY 1").fetchall() for t in TABLES}


def as_json(done) -> object:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def add(wtc, name: str = "alice", role: str = "admin", password: str = PASSWORD):
    done = wtc("user", "add", name, "--role", role, "--password-stdin", input=password + "\n")
    assert done.returncode == 0, done.stderr
    return done


def test_user_add_reads_one_line_of_stdin_and_stores_a_hash(wtc):
    done = add(wtc)
    assert done.stdout == "user alice added: role admin, enabled\n"
    with psycopg.connect(wtc.url, autocommit=True) as conn:
        stored = json.dumps(everything(wtc.url))
        assert PASSWORD not in stored and "$argon2id$" in stored
        assert conn.execute("SELECT performed_by FROM walltrack_auth.principal_audit_log").fetchall() == [("ops",)]
        assert principals.login(conn, "alice", PASSWORD)[0].name == "alice"  # the newline is not part of it


def test_without_a_terminal_or_password_stdin_nothing_is_asked_and_nothing_written(wtc):
    before = everything(wtc.url)
    done = wtc("user", "add", "alice", "--role", "admin", input=PASSWORD + "\n")
    assert_one_line_error(done, 1, "no terminal", "--password-stdin")
    assert everything(wtc.url) == before
    add(wtc)
    before = everything(wtc.url)
    assert_one_line_error(wtc("user", "set-password", "alice", input="another password\n"), 1, "no terminal")
    assert everything(wtc.url) == before


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("user", "add", "bad name", "--role", "admin", "--password-stdin"), 1, "name: 1 to 64"),
        (("user", "add", "bob", "--role", "admin", "--password-stdin"), 1, "password: must be 10"),
        (("user", "add", "alice", "--role", "reader", "--password-stdin"), 1, "exists already"),
        (("user", "set-role", "alice", "editor"), 1, "last enabled admin"),
        (("user", "disable", "alice"), 1, "last enabled admin"),
        (("user", "disable", "nobody"), 1, "no user named 'nobody'"),
        (("user", "set-password", "alice", "--password-stdin"), 1, "password: must be 10"),
        (("token", "create", "ci", "--role", "reader", "--expires", "90 days"), 1, "expires: a positive whole number"),
        (("token", "create", "ci", "--role", "reader", "--expires", "0d"), 1, "expires"),
        (("token", "create", "ci", "--role", "reader", "--expires", "500000w"), 1, "expires: must be at most 10 years"),
        (("token", "create", "token:ci", "--role", "reader"), 1, "name: 1 to 64"),
        (("token", "revoke", "nope"), 1, "no live API token named 'nope'"),
    ],
)
def test_refusals_are_one_line_and_write_nothing(wtc, args, code, needle):
    add(wtc)
    before = everything(wtc.url)
    password = "short" if "password" in needle else "a good long password"
    done = wtc(*args, input=password + "\n")
    assert_one_line_error(done, code, needle)
    assert password not in done.stderr
    assert everything(wtc.url) == before


@pytest.mark.parametrize(
    "args",
    [
        ("user", "add", "bob", "--role", "boss", "--password-stdin"),
        ("user", "set-role", "alice", "root"),
        ("token", "create", "ci", "--role", "god"),
        ("token", "create", "ci"),
    ],
)
def test_an_unknown_or_missing_role_is_a_usage_error_and_writes_nothing(wtc, args):
    add(wtc)
    before = everything(wtc.url)
    done = wtc(*args, input=PASSWORD + "\n")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--role" in done.stderr or "ROLE" in done.stderr
    assert everything(wtc.url) == before


def test_user_list_set_role_disable_enable_and_history(wtc):
    add(wtc)
    add(wtc, "bob", "editor", "bobs password")
    assert wtc("user", "set-role", "bob", "operator").stdout == "user bob updated: role operator, enabled\n"
    assert wtc("user", "disable", "bob").stdout == "user bob disabled: role operator, disabled\n"
    listed = as_json(wtc("user", "list", "--json"))
    assert [(u["name"], u["role"], u["disabled"]) for u in listed] == [
        ("alice", "admin", False),
        ("bob", "operator", True),
    ]
    assert all("password_hash" not in u for u in listed)
    assert as_json(wtc("--json", "user", "enable", "bob"))["disabled"] is False
    text = wtc("user", "list").stdout.splitlines()
    assert text[0].split() == ["name", "role", "status", "last", "sign-in", "changed", "by"]
    assert text[2].split()[:3] == ["bob", "operator", "enabled"] and text[2].split()[-1] == "ops"
    history = as_json(wtc("user", "history", "--json", "--limit", "3"))
    assert [(e["action"], e["principal_name"], e["performed_by"]) for e in history] == [
        ("enable", "bob", "ops"),
        ("disable", "bob", "ops"),
        ("set-role", "bob", "ops"),
    ]
    lines = wtc("user", "history").stdout.splitlines()
    assert lines[1].split()[2:6] == ["ops", "enable", "user", "bob"]


def test_set_password_from_stdin_ends_the_sessions(wtc):
    add(wtc)
    with psycopg.connect(wtc.url, autocommit=True) as conn:
        _, bearer = principals.login(conn, "alice", PASSWORD)
        assert wtc("user", "set-password", "alice", "--password-stdin", input="a new password\r\n").returncode == 0
        with pytest.raises(AuthenticationFailed):
            principals.authenticate(conn, bearer)
        assert principals.login(conn, "alice", "a new password")[0].name == "alice"


def test_token_create_prints_the_token_once_and_list_never_shows_it(wtc):
    done = wtc("token", "create", "deploy-bot", "--role", "editor", "--expires", "90d")
    assert done.returncode == 0, done.stderr
    secret = done.stdout.strip()
    assert done.stdout == secret + "\n" and principals.parse_token(secret)
    assert "shown this once and never again" in done.stderr and secret not in done.stderr
    with psycopg.connect(wtc.url) as conn:
        who = principals.authenticate(conn, secret)
    assert (who.actor, who.role.value) == ("token:deploy-bot", "editor")
    public_id, part = principals.parse_token(secret) or ("", "")
    for listing in (wtc("token", "list"), wtc("token", "list", "--json"), wtc("token", "list", "--all", "--json")):
        assert listing.returncode == 0 and secret not in listing.stdout and part not in listing.stdout
        assert principals.digest(part) not in listing.stdout
    assert part not in json.dumps(everything(wtc.url))
    line = wtc("token", "list").stdout.splitlines()[1].split()
    assert line[:3] == ["deploy-bot", "editor", "active"] and line[-1] == f"wtc_{public_id}_"


def test_token_create_json_revoke_and_list_all(wtc):
    made = as_json(wtc("token", "create", "ci", "--role", "reader", "--json"))
    assert principals.parse_token(made["token"]) and made["name"] == "ci" and made["expires_at"] is None
    assert made["created_by"] == "ops" and made["active"] is True and "secret_hash" not in made
    revoked = as_json(wtc("--json", "token", "revoke", "ci"))
    assert revoked["revoked_at"] and revoked["active"] is False and "token" not in revoked
    assert as_json(wtc("token", "list", "--json")) == []
    assert [t["name"] for t in as_json(wtc("token", "list", "--all", "--json"))] == ["ci"]
    with psycopg.connect(wtc.url) as conn, pytest.raises(AuthenticationFailed):
        principals.authenticate(conn, made["token"])
    assert wtc("token", "revoke", "ci").returncode == 1


def test_the_commands_need_v12(db_at):
    url = db_at(11)
    done = run_cli("--database-url", url, "user", "list")
    assert_one_line_error(done, 2, "database is at V11; this command needs V12")
