"""The ConfigError family: one HTTP status per refusal, PostgreSQL's SQLSTATEs mapped in one table, causes kept."""

from __future__ import annotations

import psycopg
import pytest

from walltrack_config import db, errors
from walltrack_config import lifecycle as lc

STATUSES = {400, 401, 403, 404, 409, 412, 413, 422, 428, 429, 503, 504}


def _family(cls: type[errors.ConfigError]) -> list[type[errors.ConfigError]]:
    return [cls] + [c for sub in cls.__subclasses__() for c in _family(sub)]


@pytest.mark.pure
def test_every_error_has_an_http_status_and_none_is_internal() -> None:
    family = _family(errors.ConfigError)
    assert len(family) > 25
    for cls in family:
        assert cls.http_status in STATUSES, cls.__name__


@pytest.mark.pure
@pytest.mark.parametrize(
    "cls, status",
    [
        (errors.InvalidFile, 400),
        (errors.InvalidImport, 400),
        (errors.UsageError, 400),
        (errors.RepeatedSetting, 400),
        (errors.NotFound, 404),
        (errors.UnknownDomain, 404),
        (errors.ConcurrentChange, 409),
        (errors.InvalidTransition, 409),
        (errors.AmbiguousRow, 409),
        (errors.NothingToDo, 409),
        (errors.StaleVersion, 412),
        (errors.InvalidValue, 422),
        (errors.UnknownField, 422),
        (errors.UnreadableRow, 422),
        (errors.DatabaseError, 503),
        (errors.DatabaseUnavailable, 503),
        (errors.SchemaOutdated, 503),
        (errors.ConfigBusy, 503),
        (errors.MigrationLockTimeout, 503),
        (errors.UnexpectedReply, 503),
        (errors.NotApplied, 504),
    ],
)
def test_http_statuses(cls, status) -> None:
    assert cls.http_status == status


@pytest.mark.pure
def test_a_failed_connection_hides_psycopgs_error_which_holds_the_password() -> None:
    with pytest.raises(errors.DatabaseUnavailable) as err:
        db.connect("postgresql://ann:s3cret-pw@127.0.0.1:1/walltrack")
    assert err.value.__cause__ is None and err.value.__context__ is None
    assert "s3cret-pw" not in str(err.value)


@pytest.mark.parametrize(
    "state, constraint, expected",
    [
        ("WT001", None, errors.InvalidTransition),
        ("WT002", None, errors.StaleVersion),
        ("WT003", None, errors.NotFound),
        ("WT004", None, errors.UnknownField),
        ("40001", None, errors.ConcurrentChange),
        ("40P01", None, errors.ConcurrentChange),
        ("55P03", None, errors.ConfigBusy),
        ("23514", "chk_max_order_attempts", errors.InvalidValue),
        ("23514", "chk_name_text", errors.InvalidValue),
        ("23505", "risk_config_single_active", errors.ConcurrentChange),
        ("23505", "risk_config_name_status", errors.InvalidValue),
        ("23505", None, errors.InvalidValue),  # by its class, 23
        ("22003", None, errors.InvalidValue),  # by its class, 22
    ],
)
def test_sqlstates_become_config_errors_with_the_database_error_as_cause(conn, state, constraint, expected) -> None:
    option = f", CONSTRAINT = '{constraint}'" if constraint else ""
    with pytest.raises(expected) as err, lc.translated("risk"), conn.transaction():
        conn.execute(f"DO $$ BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = '{state}'{option}; END $$")
    assert type(err.value) is expected
    assert isinstance(err.value.__cause__, psycopg.Error) and err.value.__cause__.sqlstate == state


def test_a_refusal_that_is_not_ours_surfaces_as_it_is(conn) -> None:
    with pytest.raises(psycopg.errors.UndefinedTable) as err, lc.translated("risk"), conn.transaction():
        conn.execute("SELECT * FROM no_such_table")
    assert err.value.__cause__ is None


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bob:hunter2@localhost:notaport/db",
        "host=localhost password=hunter2 port=notaport",
        "postgresql://localhost:notaport/db?password=hunter2&sslmode=disable",
    ],
)
def test_an_invalid_url_is_refused_without_showing_its_password(url):
    from conftest import run_cli

    done = run_cli("--database-url", url, "list", "risk")
    assert done.returncode == 2 and "invalid database URL" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout and "***" in done.stderr
