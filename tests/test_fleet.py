"""The fleet (V13): clients report what they applied through walltrack.fleet_report, which checks every argument
and is the only writer of walltrack.fleet_clients (a SELECT-only bot role can report, not write the table); a
client id is its first reporter's; stale after 3 heartbeats; housekeeping and a cap; waiting for every live
client to apply an activation; V13/U13 round-trip catalog-exact, with psql too. Refusals write nothing."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

import test_v11_security as security
from conftest import catalog, psql_file
from test_v11_security import as_role, config_rows
from walltrack_config import fleet, lifecycle, schema
from walltrack_config.domains import DOMAINS
from walltrack_config.errors import InvalidTransition, InvalidValue, NotFound, UnknownDomain
from walltrack_config.migrate import plan as migrations

make_role = security.make_role  # the fixture, shared
V13 = next(m for m in migrations.discover() if m.version == 13)
REPORT = "SELECT walltrack.fleet_report(%s, %s, %s, %s, %s, %s, %s, %s::real, %s)"


def info(
    name: str = "bot-a",
    *,
    domains: tuple[str, ...] = ("risk", "trading"),
    heartbeat: float = 5.0,
    transport: str = "database",
) -> fleet.ClientInfo:
    return fleet.ClientInfo(uuid.uuid4(), name, "host-1", 4242, "0.1.0", transport, domains, heartbeat)


def fleet_state(conn: psycopg.Connection) -> list[Any]:
    return conn.execute("SELECT to_jsonb(f) FROM walltrack.fleet_clients f ORDER BY id").fetchall()


def activate(conn: psycopg.Connection, domain: str = "risk") -> int:
    """A new row of `domain` made live; its activation sequence."""
    draft = lifecycle.clone(conn, domain, actor="tests", name=f"fleet-{uuid.uuid4().hex[:8]}")
    row = lifecycle.activate(conn, domain, draft.id, expected_version=draft.version, actor="tests")
    made = lifecycle.last_activation(conn, domain, row.id)
    assert made is not None
    return made.seq


def by_name(conn: psycopg.Connection) -> dict[str, fleet.FleetClient]:
    return {c.name: c for c in fleet.clients(conn)}


# -- reporting and reading ------------------------------------------------------------------------------------------


def test_clients_report_what_they_applied_and_the_lag_counts_activations_behind(conn):
    risk, trading = fleet.current(conn)["risk"], fleet.current(conn)["trading"]
    a, b = info("bot-a"), info("bot-b", domains=("risk",), transport="http")
    fleet.report(conn, a, {"risk": risk, "trading": trading})
    fleet.report(conn, b, {})
    found = by_name(conn)
    assert list(found) == ["bot-a", "bot-b"]
    first = found["bot-a"]
    assert (first.id, first.host, first.pid, first.version, first.transport, first.domains, first.heartbeat) == (
        a.id,
        "host-1",
        4242,
        "0.1.0",
        "database",
        ("risk", "trading"),
        5.0,
    )
    assert first.applied == {"risk": risk, "trading": trading} and first.lag == {"risk": 0, "trading": 0}
    assert not first.stale and first.started_at == first.last_seen_at
    assert first.reported_by == first.db_user  # no actor declared: the database user
    assert found["bot-b"].applied == {} and found["bot-b"].lag == {}
    # Two risk activations (and one of trading, which other domains do not count) later: 2 behind.
    activate(conn, "risk")
    activate(conn, "trading")
    newest = activate(conn, "risk")
    assert fleet.current(conn)["risk"] == newest
    assert by_name(conn)["bot-a"].lag == {"risk": 2, "trading": 1}
    time.sleep(0.01)
    fleet.report(conn, a, {"risk": newest, "trading": fleet.current(conn)["trading"]})  # a refresh, same id
    again = by_name(conn)["bot-a"]
    assert again.lag == {"risk": 0, "trading": 0}
    assert again.started_at == first.started_at and again.last_seen_at > first.last_seen_at
    assert len(fleet.clients(conn)) == 2


def test_info_for_describes_this_process():
    import os
    import socket

    import walltrack_config

    made = fleet.info_for()
    host = socket.gethostname()
    assert (made.name, made.host, made.pid, made.version) == (
        f"{host}:{os.getpid()}",
        host,
        os.getpid(),
        walltrack_config.__version__,
    )
    assert (made.transport, made.domains, made.heartbeat) == ("database", DOMAINS, fleet.HEARTBEAT)
    named = fleet.info_for("bot-7", "http", ["risk"], 2)
    assert (named.name, named.transport, named.domains, named.heartbeat) == ("bot-7", "http", ("risk",), 2.0)
    assert named.id != made.id


def test_the_reporter_reports_at_once_after_a_change_else_every_heartbeat():
    from walltrack_config.server.schemas import FleetReportIn

    reporter = fleet.Reporter(info(heartbeat=10))
    assert reporter.due(0)  # never reported
    reporter.applied({"risk": 3, "trading": 1, "exit": 9})  # exit is not followed: not reported
    body = reporter.body()
    assert body["applied"] == {"risk": 3, "trading": 1}
    FleetReportIn.model_validate(body)  # what the server takes
    reporter.sent(body, now=100)
    assert not reporter.due(105) and reporter.due(110)
    reporter.applied({"risk": 3, "trading": 1})
    assert not reporter.due(105)  # nothing new
    reporter.applied({"risk": 4, "trading": 1})
    assert reporter.due(101)
    reporter.sent(body, now=101)  # the body sent was the old one: still due
    assert reporter.due(101)


def test_the_reporter_reports_on_the_database(conn):
    reporter = fleet.Reporter(info())
    reporter.applied({"risk": 1})
    reporter.report(conn)
    assert by_name(conn)["bot-a"].applied == {"risk": 1} and not reporter.due()


# -- what V13 refuses ------------------------------------------------------------------------------------------------

GOOD: dict[str, Any] = {
    "name": "bot",
    "host": "h",
    "pid": 1,
    "version": "0.1.0",
    "transport": "http",
    "domains": ["risk"],
    "heartbeat": 1.0,
    "applied": {"risk": 3},
}
BAD = [
    ("name", {"name": ""}, "must be 1 to 200 characters"),
    ("name", {"name": "x" * 201}, "must be 1 to 200 characters"),
    ("name", {"name": None}, "must be 1 to 200 characters"),
    ("name", {"name": "bot\x1b[2J"}, "must be printable"),
    ("name", {"name": "bot\u202e"}, "must be printable"),
    ("name", {"name": " \u00a0 "}, "needs a visible character"),
    ("host", {"host": "h" * 256}, "must be 1 to 255 characters"),
    ("host", {"host": "a\nb"}, "must be printable"),
    ("version", {"version": "v" * 65}, "must be 1 to 64 characters"),
    ("pid", {"pid": 0}, "pid must be a positive integer"),
    ("pid", {"pid": -5}, "pid must be a positive integer"),
    ("pid", {"pid": None}, "pid must be a positive integer"),
    ("transport", {"transport": "carrier-pigeon"}, "transport must be http or database"),
    ("domains", {"domains": []}, "1 to 7 distinct domains"),
    ("domains", {"domains": ["risk", "risk"]}, "1 to 7 distinct domains"),
    ("domains", {"domains": [["risk"], ["exit"]]}, "1 to 7 distinct domains"),
    ("domains", {"domains": ["risk", "nope"]}, "unknown domain 'nope'"),
    ("domains", {"domains": ["risk", None]}, "unknown domain NULL"),
    ("heartbeat", {"heartbeat": 0.0}, "heartbeat must be from 0.01 to 3600 seconds"),
    ("heartbeat", {"heartbeat": 3601.0}, "heartbeat must be from 0.01 to 3600 seconds"),
    ("heartbeat", {"heartbeat": float("nan")}, "heartbeat must be from 0.01 to 3600 seconds"),
    ("heartbeat", {"heartbeat": float("inf")}, "heartbeat must be from 0.01 to 3600 seconds"),
    ("heartbeat", {"heartbeat": None}, "heartbeat must be from 0.01 to 3600 seconds"),
    ("applied", {"applied": [1, 2]}, "applied must be a JSON object"),
    ("applied", {"applied": None}, "applied must be a JSON object"),
    ("applied", {"applied": {"exit": 3}}, "not one of the client's domains"),
    ("applied", {"applied": {"risk": -1}}, "an integer from 0"),
    ("applied", {"applied": {"risk": 1.5}}, "an integer from 0"),
    ("applied", {"applied": {"risk": "3"}}, "an integer from 0"),
    ("applied", {"applied": {"risk": 2**63}}, "an integer from 0"),
]


@pytest.mark.parametrize("field, change, message", BAD, ids=[f"{f}-{n}" for n, (f, _, _) in enumerate(BAD)])
def test_fleet_report_refuses_each_bad_argument_naming_it_and_writes_nothing(conn, field, change, message):
    fleet.report(conn, info(), {"risk": 1})  # something there already, which must stay as it is
    before = fleet_state(conn)
    args = {**GOOD, **change}
    applied = None if args["applied"] is None else Jsonb(args["applied"])
    with pytest.raises(psycopg.Error) as err:
        conn.execute(
            REPORT,
            [
                uuid.uuid4(),
                args["name"],
                args["host"],
                args["pid"],
                args["version"],
                args["transport"],
                args["domains"],
                args["heartbeat"],
                applied,
            ],
        )
    assert err.value.sqlstate == "22023", err.value
    assert err.value.diag.column_name == field and message in str(err.value)
    assert fleet_state(conn) == before


def test_a_null_id_is_refused(conn):
    with pytest.raises(psycopg.Error) as err:
        conn.execute(REPORT, [None, "bot", "h", 1, "v", "http", ["risk"], 1.0, Jsonb({})])
    assert err.value.sqlstate == "22023" and err.value.diag.column_name == "id"
    assert fleet_state(conn) == []


def test_the_library_names_the_field_it_refuses(conn):
    with pytest.raises(InvalidValue) as err:
        fleet.report(conn, info(heartbeat=0.0001), {})
    assert err.value.fields == ["heartbeat"] and "0.01 to 3600" in str(err.value)
    with pytest.raises(InvalidValue) as err:
        fleet.report(conn, info(name="bot\x00"), {})
    assert err.value.fields == ["name"]
    with pytest.raises(InvalidValue) as err:
        fleet.report(conn, fleet.ClientInfo(uuid.uuid4(), "b", "h", 2**31, "v", "http", ("risk",), 1.0), {})
    assert err.value.fields == ["pid"]
    with pytest.raises(InvalidValue) as err:
        fleet.report(conn, info(domains=("risk", "moon")), {})
    assert err.value.fields == ["domains"] and "unknown domain 'moon'" in str(err.value)
    with pytest.raises(UnknownDomain):
        fleet.laggards(conn, "moon", 1)
    with pytest.raises(NotFound):
        fleet.leave(conn, "not-a-uuid")
    assert fleet_state(conn) == []


# -- whose a client is ----------------------------------------------------------------------------------------------


def test_a_client_id_is_its_first_reporters(conn):
    mine = info()
    fleet.report(conn, mine, {"risk": 1}, actor="token:bot-1")
    before = fleet_state(conn)
    with pytest.raises(InvalidTransition, match="is reported by token:bot-1") as err:
        fleet.report(conn, mine, {"risk": 2}, actor="token:bot-2")
    assert err.value.hint and "id of its own" in err.value.hint
    with pytest.raises(InvalidTransition, match="is reported by token:bot-1"):
        fleet.report(conn, mine, {"risk": 2})  # as the database user
    with pytest.raises(InvalidTransition, match="is reported by token:bot-1"):
        fleet.leave(conn, mine.id, actor="token:bot-2")
    assert fleet_state(conn) == before
    fleet.report(conn, mine, {"risk": 2}, actor="token:bot-1")
    assert by_name(conn)["bot-a"].reported_by == "token:bot-1"
    assert fleet.leave(conn, mine.id, actor="token:bot-1") is True
    assert fleet.leave(conn, mine.id, actor="token:bot-1") is False
    assert fleet_state(conn) == []


def test_a_select_only_bot_role_reports_but_cannot_write_the_table(migrated_db, make_role):
    bot = make_role(migrated_db, prefix="wt_bot")
    with psycopg.connect(migrated_db, autocommit=True) as owner:
        owner.execute(sql.SQL("GRANT USAGE ON SCHEMA walltrack TO {}").format(sql.Identifier(bot)))
        tables = sql.SQL(", ").join(sql.SQL(f"walltrack.{d}_config") for d in DOMAINS)
        owner.execute(
            sql.SQL("GRANT SELECT ON {}, walltrack.config_activations TO {}").format(tables, sql.Identifier(bot))
        )
    client = info("wt-bot")
    with as_role(migrated_db, bot) as conn:
        fleet.report(conn, client, {"risk": 1})
        listed = fleet.clients(conn)  # readable by every role with USAGE on walltrack
        assert [c.name for c in listed] == ["wt-bot"] and listed[0].db_user == bot
        before = fleet_state(conn)
        for statement in (
            "INSERT INTO walltrack.fleet_clients (id, name, host, pid, version, transport, domains, heartbeat_s,"
            " reported_by, db_user) VALUES (gen_random_uuid(), 'x', 'h', 1, 'v', 'http', '{risk}', 1, 'x', 'x')",
            "UPDATE walltrack.fleet_clients SET applied = '{\"risk\": 999}'",
            "DELETE FROM walltrack.fleet_clients",
            "TRUNCATE walltrack.fleet_clients",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        assert fleet_state(conn) == before
        assert fleet.leave(conn, client.id) is True


def test_default_privileges_grant_nothing_but_select_on_the_fleet(db_at, make_role):
    url = db_at(12)
    role = make_role(url, prefix="wt_bot")
    with psycopg.connect(url, autocommit=True) as owner:
        owner.execute(
            sql.SQL("ALTER DEFAULT PRIVILEGES GRANT ALL ON TABLES TO {}, PUBLIC").format(sql.Identifier(role))
        )
        owner.execute(sql.SQL("GRANT USAGE ON SCHEMA walltrack TO {}").format(sql.Identifier(role)))
    before = catalog(url)
    with psycopg.connect(url) as conn:
        conn.execute(V13.apply.sql)
    with psycopg.connect(url, autocommit=True) as owner:
        granted = owner.execute("""SELECT coalesce(a.grantee::regrole::text, '?'), a.privilege_type
                                   FROM pg_class c, aclexplode(c.relacl) a
                                   WHERE c.oid = 'walltrack.fleet_clients'::regclass AND a.grantee <> c.relowner""")
        assert [p for _, p in granted.fetchall()] == ["SELECT"]  # to PUBLIC, and only that
    with as_role(url, role) as bot:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            bot.execute("DELETE FROM walltrack.fleet_clients")
        fleet.report(bot, info(), {})
    with psycopg.connect(url) as conn:
        conn.execute(V13.undo.sql)
    assert catalog(url) == before


def test_the_writers_are_security_definers_with_a_fixed_search_path_and_for_everyone(conn):
    found = conn.execute("""SELECT p.proname, p.prosecdef, p.proconfig, p.proacl::text[]
                            FROM pg_proc p WHERE p.pronamespace = 'walltrack'::regnamespace
                              AND p.proname IN ('fleet_report', 'fleet_leave') ORDER BY 1""").fetchall()
    assert [name for name, *_ in found] == ["fleet_leave", "fleet_report"]
    for _, definer, config, acl in found:
        assert definer and config == ["search_path=pg_catalog, pg_temp"]
        assert any(entry.startswith("=X/") for entry in acl)  # EXECUTE to PUBLIC, said so


# -- stale, housekeeping, the cap ---------------------------------------------------------------------------------


def test_a_client_not_heard_from_for_3_heartbeats_is_stale_and_not_waited_for(conn):
    seq = activate(conn)
    quick, steady = info("quick", heartbeat=0.1), info("steady", heartbeat=60)
    fleet.report(conn, quick, {})
    fleet.report(conn, steady, {})
    assert not by_name(conn)["quick"].stale
    assert {c.name for c in fleet.laggards(conn, "risk", seq)} == {"quick", "steady"}
    time.sleep(0.35)
    found = by_name(conn)
    assert found["quick"].stale and not found["steady"].stale  # still listed, marked
    assert [c.name for c in fleet.laggards(conn, "risk", seq)] == ["steady"]
    assert [c.name for c in fleet.laggards(conn, "risk", seq, stale=True)] == ["quick"]
    assert fleet.live_count(conn, "risk") == 1
    fleet.report(conn, quick, {"risk": seq})  # heard from again: live, and applied
    assert not by_name(conn)["quick"].stale
    assert fleet.laggards(conn, "risk", seq, stale=True) == []


def test_reports_delete_clients_not_heard_from_for_a_day(conn):
    old, recent = info("old"), info("recent")
    fleet.report(conn, old, {})
    fleet.report(conn, recent, {})
    conn.execute(
        "UPDATE walltrack.fleet_clients SET last_seen_at = now() - interval '25 hours' WHERE id = %s", [old.id]
    )
    conn.execute(
        "UPDATE walltrack.fleet_clients SET last_seen_at = now() - interval '23 hours' WHERE id = %s", [recent.id]
    )
    assert set(by_name(conn)) == {"old", "recent"}  # reading deletes nothing
    fleet.report(conn, info("newcomer"), {})
    found = by_name(conn)
    assert set(found) == {"recent", "newcomer"} and found["recent"].stale


def test_the_fleet_is_capped_and_a_known_client_still_reports(conn):
    known = info("known")
    fleet.report(conn, known, {})
    conn.execute(
        """INSERT INTO walltrack.fleet_clients (id, name, host, pid, version, transport, domains, heartbeat_s,
                                                         reported_by, db_user)
                    SELECT gen_random_uuid(), 'filler-' || n, 'h', n, 'v', 'http', '{risk}', 60, 'x', 'x'
                    FROM generate_series(1, %s) AS n""",
        [fleet.MAX_CLIENTS - 1],
    )
    before = conn.execute("SELECT count(*), max(last_seen_at) FROM walltrack.fleet_clients").fetchone()
    with pytest.raises(InvalidTransition, match="10000 clients already") as err:
        fleet.report(conn, info("one-too-many"), {})
    assert err.value.hint and "24 h" in err.value.hint
    assert conn.execute("SELECT count(*), max(last_seen_at) FROM walltrack.fleet_clients").fetchone() == before
    fleet.report(conn, known, {"risk": 1})
    assert conn.execute("SELECT applied FROM walltrack.fleet_clients WHERE id = %s", [known.id]).fetchone() == (
        {"risk": 1},
    )


# -- waiting for the fleet ----------------------------------------------------------------------------------------


@contextmanager
def applying(url: str, client: fleet.ClientInfo, domain: str, activation: int, delay: float) -> Iterator[None]:
    """The client, on a connection of its own, reports `activation` applied after `delay` seconds."""

    def run() -> None:
        time.sleep(delay)
        with psycopg.connect(url, autocommit=True) as own:
            fleet.report(own, client, {domain: activation})

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield
    finally:
        thread.join(10)


def test_wait_applied_returns_once_every_live_client_applied(conn, migrated_db):
    first, second, other = info("first"), info("second"), info("other-domain", domains=("exit",))
    for client in (first, second, other):
        fleet.report(conn, client, {})
    seq = activate(conn)
    fleet.report(conn, first, {"risk": seq, "trading": 1})
    seen: list[list[str]] = []
    started = time.monotonic()
    with applying(migrated_db, second, "risk", seq, 0.3):
        missing = fleet.wait_applied(conn, "risk", seq, 10, progress=lambda m: seen.append([c.name for c in m]))
    assert missing == [] and time.monotonic() - started < 5
    assert seen[0] == ["second"] and seen[-1] == []  # the client following exit is not waited for


def test_wait_applied_names_the_clients_that_did_not_and_borrows_a_connection_per_look(conn, migrated_db):
    never, done = info("never"), info("done")
    for client in (never, done):
        fleet.report(conn, client, {})
    seq = activate(conn)
    fleet.report(conn, done, {"risk": seq + 5})  # a later activation counts too
    looks = []

    @contextmanager
    def lend() -> Iterator[psycopg.Connection]:
        looks.append(1)
        with psycopg.connect(migrated_db, autocommit=True) as borrowed:
            yield borrowed

    started = time.monotonic()
    missing = fleet.wait_applied(lend, "risk", seq, 0.3, poll=0.05)
    assert 0.3 <= time.monotonic() - started < 3
    assert [c.label() for c in missing] == ["never (host-1, pid 4242)"]
    assert len(looks) >= 3
    assert fleet.wait_applied(conn, "risk", seq, 0) == missing  # looks once, whatever the timeout


# -- the migration ----------------------------------------------------------------------------------------------------


def test_u13_returns_the_database_to_v12_exactly_and_keeps_its_rows(db_at):
    url = db_at(12)
    before, rows = catalog(url), config_rows(url)
    with psycopg.connect(url) as conn:
        conn.execute(V13.apply.sql)
    with psycopg.connect(url, autocommit=True) as conn:
        assert schema.version(conn) == schema.FLEET == 13
        fleet.report(conn, info(), {"risk": 1})
    assert catalog(url) != before
    with psycopg.connect(url) as conn:
        conn.execute(V13.undo.sql)
    assert catalog(url) == before
    assert config_rows(url) == rows
    with psycopg.connect(url) as conn:
        assert schema.version(conn) == 12


def test_v13_and_u13_run_as_is_with_psql(db_at):
    url = db_at(12)
    before = catalog(url)
    for script in (V13.apply, V13.undo, V13.apply, V13.undo):
        psql_file(url, script.path)
    assert catalog(url) == before


def test_the_domains_v13_knows_are_the_librarys(conn):
    for domain in DOMAINS:
        fleet.report(conn, info(domain, domains=(domain,)), {domain: 0})
    assert len(fleet.clients(conn)) == len(DOMAINS)
    checked = conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'chk_fleet_clients_domains'"
    ).fetchone()[0]
    assert all(f"'{d}'" in checked for d in DOMAINS)
