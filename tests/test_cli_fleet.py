"""`walltrack-config fleet` and `activate`/`rollback --wait-applied`, on real PostgreSQL, with clients simulated by
threads that report through walltrack_config.fleet once they see the activation."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from conftest import run_cli
from test_cli import assert_one_line_error
from walltrack_config import fleet, lifecycle


@pytest.fixture
def wtc(migrated_db):
    def run(*args: str, input: str = ""):
        return run_cli("--database-url", migrated_db, "--actor", "ops", *args, input=input)

    run.url = migrated_db
    return run


def client(name: str, *, domains: tuple[str, ...] = ("risk",), heartbeat: float = 30.0) -> fleet.ClientInfo:
    return fleet.ClientInfo(uuid.uuid4(), name, "host-1", 4242, "0.1.0", "database", domains, heartbeat)


def report(url: str, who: fleet.ClientInfo, applied: dict[str, int]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        fleet.report(conn, who, applied)


def draft(url: str, domain: str = "risk") -> lifecycle.ConfigRow:
    with psycopg.connect(url, autocommit=True) as conn:
        return lifecycle.clone(conn, domain, actor="tests", name=f"cli-fleet-{uuid.uuid4().hex[:6]}")


@contextmanager
def bots(url: str, *clients: fleet.ClientInfo, domain: str = "risk") -> Iterator[None]:
    """Live clients that apply every new activation of `domain`, as a LiveConfig would: they see it, then report."""
    with psycopg.connect(url, autocommit=True) as conn:
        start = fleet.current(conn)[domain]
        for who in clients:
            fleet.report(conn, who, {domain: start})
    stop = threading.Event()

    def run() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            applied = start
            while not stop.is_set():
                now = fleet.current(conn)[domain]
                if now != applied:
                    time.sleep(0.1)  # their callbacks run
                    for who in clients:
                        fleet.report(conn, who, {domain: now})
                    applied = now
                stop.wait(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


# -- fleet ---------------------------------------------------------------------------------------------------------


def test_fleet_says_when_no_client_reported(wtc):
    done = wtc("fleet")
    assert done.returncode == 0 and "no live client has reported" in done.stdout
    assert json.loads(wtc("fleet", "--json").stdout)["clients"] == []


def test_fleet_lists_clients_what_they_applied_their_lag_and_who_is_stale(wtc):
    with psycopg.connect(wtc.url, autocommit=True) as conn:
        before = fleet.current(conn)["risk"]
        fleet.report(conn, client("bot-current", domains=("risk", "exit")), {"risk": before})
        fleet.report(conn, client("bot-gone", heartbeat=0.05), {"risk": before})
        row = lifecycle.clone(conn, "risk", actor="tests", name="newer")
        lifecycle.activate(conn, "risk", row.id, expected_version=row.version, actor="tests")
        now = fleet.current(conn)["risk"]
        fleet.report(conn, client("bot-new"), {"risk": now})
    time.sleep(0.2)
    done = wtc("fleet")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = lines[0].split()
    assert header[:5] == ["name", "transport", "host", "pid", "version"] and "risk" in header and "exit" in header
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert set(rows) == {"bot-current", "bot-gone", "bot-new"}
    assert f"{before} (1 behind)" in rows["bot-current"] and "?" in rows["bot-current"]  # exit: not reported
    assert rows["bot-gone"].rstrip().endswith("stale") and rows["bot-new"].rstrip().endswith("live")
    assert lines[-1].startswith("2 live, 1 stale; 1 live behind; current activations:")
    document = json.loads(wtc("--json", "fleet").stdout)
    assert document["current"]["risk"] == now
    listed = {c["name"]: c for c in document["clients"]}
    assert listed["bot-current"]["lag"] == {"risk": 1} and listed["bot-current"]["applied"] == {"risk": before}
    assert listed["bot-gone"]["stale"] is True and listed["bot-new"]["lag"] == {"risk": 0}
    assert set(listed["bot-new"]) >= {
        "id",
        "host",
        "pid",
        "version",
        "transport",
        "domains",
        "heartbeat",
        "started_at",
        "last_seen_at",
        "reported_by",
    }


# -- --wait-applied ---------------------------------------------------------------------------------------------------


def test_activate_wait_applied_exits_1_naming_the_client_that_never_applies(wtc):
    never = client("never-applies")
    row = draft(wtc.url)
    with bots(wtc.url, client("keeps-up")):
        report(wtc.url, never, {})
        started = time.monotonic()
        done = wtc("activate", "risk", "--draft", str(row.id), "--yes", "--wait-applied", "--timeout", "1.5")
    assert 1.5 <= time.monotonic() - started < 10
    assert done.returncode == 1, done.stderr
    assert f"activated '{row.name}'" in done.stdout  # said first: it is live, whatever the fleet does
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 of 2 live clients did not apply risk activation")
    assert "never-applies (host-1, pid 4242)" in last and "keeps-up" not in last and "within 1.5 s" in last
    assert "waiting up to 1.5 s for 2 live client(s)" in done.stderr and "1 of 2 applied" in done.stderr
    with psycopg.connect(wtc.url) as conn:
        assert lifecycle.active_row(conn, "risk").id == row.id  # committed all the same


def test_activate_wait_applied_returns_once_every_client_applied(wtc):
    row = draft(wtc.url)
    with bots(wtc.url, client("bot-1"), client("bot-2")), bots(wtc.url, client("bot-3")):
        report(wtc.url, client("follows-exit-only", domains=("exit",)), {})
        started = time.monotonic()
        done = wtc("activate", "risk", "--draft", str(row.id), "--yes", "--wait-applied")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 10
    assert "all 3 live client(s) applied risk activation" in done.stderr


def test_rollback_wait_applied_in_json_and_with_no_client(wtc):
    row = draft(wtc.url)
    assert wtc("activate", "risk", "--draft", str(row.id), "--yes").returncode == 0
    done = wtc("--json", "rollback", "risk", "--yes", "--wait-applied", "--timeout", "5")
    assert done.returncode == 0, done.stderr
    assert "no live client follows risk" in done.stderr
    applied = json.loads(done.stdout)["applied"]
    assert applied["complete"] is True and applied["live"] == 0 and applied["missing"] == []
    with bots(wtc.url, client("bot-1")):
        stale = client("stale-bot", heartbeat=0.05)
        report(wtc.url, stale, {})
        time.sleep(0.2)
        again = draft(wtc.url)
        done = wtc("--json", "activate", "risk", "--draft", str(again.id), "--yes", "--wait-applied")
    assert done.returncode == 0, done.stderr
    applied = json.loads(done.stdout)["applied"]
    assert applied["complete"] is True and applied["live"] == 1
    assert [c["name"] for c in applied["stale"]] == ["stale-bot"]
    assert "not waited for: 1 stale client(s) following risk: stale-bot (host-1, pid 4242)" in done.stderr


def test_wait_applied_json_names_the_missing_and_exits_1(wtc):
    row = draft(wtc.url)
    report(wtc.url, client("never"), {})
    done = wtc("--json", "activate", "risk", "--draft", str(row.id), "--yes", "--wait-applied", "--timeout", "0.3")
    assert done.returncode == 1
    document = json.loads(done.stdout)
    assert document["id"] == str(row.id) and document["status"] == "active"
    assert document["applied"]["complete"] is False and [c["name"] for c in document["applied"]["missing"]] == ["never"]
    assert done.stderr.strip().splitlines()[-1].startswith("error: 1 of 1 live clients did not apply")


def test_wait_applied_on_a_database_without_v13_changes_nothing(db_at):
    url = db_at(12)
    with psycopg.connect(url, autocommit=True) as conn:
        row = lifecycle.clone(conn, "risk", actor="tests", name="not yet")
        before = lifecycle.active_row(conn, "risk").id
    done = run_cli("--database-url", url, "activate", "risk", "--draft", str(row.id), "--yes", "--wait-applied")
    assert_one_line_error(done, 2, "database is at V12; this command needs V13")
    with psycopg.connect(url) as conn:
        assert lifecycle.active_row(conn, "risk").id == before
    done = run_cli("--database-url", url, "fleet")
    assert_one_line_error(done, 2, "needs V13")


def test_a_timeout_without_wait_applied_is_a_usage_error(wtc):
    row = draft(wtc.url)
    done = wtc("activate", "risk", "--draft", str(row.id), "--yes", "--timeout", "5")
    assert done.returncode == 2 and "give --wait-applied too" in done.stderr
    with psycopg.connect(wtc.url) as conn:
        assert lifecycle.get(conn, "risk", row.id).status == "draft"
