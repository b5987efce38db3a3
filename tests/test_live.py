"""Live configuration on real PostgreSQL: pushed changes, outages, saved settings, concurrent readers."""

from __future__ import annotations

import json
import logging
import threading
import time

import psycopg
import pytest

from conftest import catalog, run_cli, start_server, start_watch, stop_server
from walltrack_config import lifecycle as lc
from walltrack_config.errors import UnknownDomain
from walltrack_config.live import LiveConfig, LiveConfigUnavailable
from walltrack_config.migrate import plan as migrations
from walltrack_config.models import RiskConfig

V10 = next(m for m in migrations.discover() if m.version == 10)


def change(url: str, domain: str = "risk", **values) -> lc.ConfigRow:
    """Draft, edit and activate: the new live row."""
    with psycopg.connect(url, autocommit=True) as conn:
        draft = lc.clone(conn, domain, actor="test")
        draft = lc.edit(conn, domain, draft.id, draft.version, values, actor="test")
        return lc.activate(conn, domain, draft.id, expected_version=draft.version, actor="test")


@pytest.fixture
def live(migrated_db, tmp_path):
    with LiveConfig(migrated_db, state_dir=tmp_path) as running:
        yield running


def test_u10_returns_the_database_to_v9(db_at):
    url = db_at(9)
    before = catalog(url)
    with psycopg.connect(url) as conn:
        conn.execute(V10.apply.sql)
    with psycopg.connect(url) as conn:
        conn.execute(V10.undo.sql)
    assert catalog(url) == before


def test_only_a_row_going_live_is_announced(migrated_db):
    with (
        psycopg.connect(migrated_db, autocommit=True) as listener,
        psycopg.connect(migrated_db, autocommit=True) as conn,
    ):
        listener.execute("LISTEN walltrack_config")
        draft = lc.clone(conn, "api", actor="t")
        lc.edit(conn, "api", draft.id, 1, {"api_retry_count": 5}, actor="t")
        assert list(listener.notifies(timeout=0.2)) == []
        live = lc.activate(conn, "api", draft.id, expected_version=2, actor="t")
        (note,) = list(listener.notifies(timeout=1, stop_after=1))
        payload = json.loads(note.payload)
        assert payload == {
            "domain": "api",
            "id": str(live.id),
            "version": live.version,
            "activation": lc.last_activation(conn, "api", live.id).seq,
        }
        with conn.transaction(force_rollback=True):
            conn.execute("SELECT walltrack.rollback_config('api', 't', 'never committed')")
        assert list(listener.notifies(timeout=0.2)) == []


def test_reads_come_typed_from_memory_and_health_says_connected(live):
    assert live.risk == RiskConfig() and live.get("trading").base_position_pct == live.trading.base_position_pct
    health = live.health()
    assert (health.connected, health.source, health.age, health.last_error) == (True, "database", 0.0, None)
    assert set(live.snapshot()) == {"trading", "scoring", "discovery", "cluster", "risk", "exit", "api"}


def test_an_activation_and_a_rollback_reach_another_process(migrated_db, tmp_path):
    watcher = start_watch(migrated_db, tmp_path, "--json", "watch", "risk")
    try:
        assert "watching risk" in watcher.stderr.readline()
        live = change(migrated_db, max_order_attempts=7)
        event = json.loads(watcher.stdout.readline())
        assert (event["domain"], event["id"], event["version"]) == ("risk", str(live.id), live.version)
        assert event["changes"] == [{"field": "max_order_attempts", "old": 3, "new": 7}]
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            back = lc.rollback(conn, "risk", actor="t")
        event = json.loads(watcher.stdout.readline())
        assert (event["id"], event["changes"][0]["new"]) == (str(back.id), 3)
    finally:
        watcher.terminate()
        watcher.wait(10)


def test_a_cut_connection_catches_up_on_what_it_missed(live, migrated_db):
    heard = []
    live.subscribe(
        "risk", lambda old, new: heard.append((old.settings.max_order_attempts, new.settings.max_order_attempts))
    )
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'walltrack-live' AND datname = current_database()"
        ).fetchone()[0]
    assert killed == 1
    fresh = change(migrated_db, max_order_attempts=6)  # committed before the listener is back
    assert live.risk.max_order_attempts in (3, 6)  # readers keep working meanwhile
    assert live.wait_for("risk", fresh.id, timeout=10)
    assert heard == [(3, 6)] and live.risk.max_order_attempts == 6
    deadline = time.monotonic() + 10
    while not live.health().connected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert live.health().connected


def test_a_failing_callback_is_logged_and_the_others_still_hear(live, migrated_db, caplog):
    heard = []

    def broken(old, new):
        raise RuntimeError("subscriber bug")

    live.subscribe("scoring", broken)
    live.subscribe("scoring", lambda old, new: heard.append(new.settings.timing_decay_hours))
    with caplog.at_level(logging.ERROR, logger="walltrack_config.live"):
        fresh = change(migrated_db, "scoring", timing_decay_hours=9)
        assert live.wait_for("scoring", fresh.id)
    assert heard == [9] and "a callback on scoring failed" in caplog.text and "subscriber bug" in caplog.text


def test_a_malformed_notification_is_ignored(live, migrated_db, caplog):
    with (
        caplog.at_level(logging.WARNING, logger="walltrack_config.live"),
        psycopg.connect(migrated_db, autocommit=True) as conn,
    ):
        conn.execute("SELECT pg_notify('walltrack_config', 'not json')")
        fresh = change(migrated_db, max_order_attempts=4)
        assert live.wait_for("risk", fresh.id)
    assert "malformed notification" in caplog.text and live.health().connected


def test_unknown_domains_are_refused(migrated_db):
    with pytest.raises(UnknownDomain):
        LiveConfig(migrated_db, domains=["trading", "nope"])


def test_readers_on_several_threads_never_block_or_see_half_a_change(live, migrated_db):
    first = change(migrated_db, max_order_attempts=1, retry_delay_base_seconds=1)
    assert live.wait_for("risk", first.id)
    stop, broken, reads, slowest = threading.Event(), [], [0] * 4, [0.0] * 4

    def reader(i: int) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            settings = live.risk
            pair = (settings.max_order_attempts, settings.retry_delay_base_seconds)
            slowest[i] = max(slowest[i], time.perf_counter() - started)
            if pair[0] != pair[1]:
                broken.append(pair)
            reads[i] += 1

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    [t.start() for t in threads]
    for k in range(2, 22):
        fresh = change(migrated_db, max_order_attempts=k, retry_delay_base_seconds=k)
        assert live.wait_for("risk", fresh.id)
    stop.set()
    [t.join(10) for t in threads]
    assert broken == [] and live.risk.max_order_attempts == 21
    assert min(reads) > 100 and max(slowest) < 1.0  # every reader kept reading through 20 swaps


def test_a_restarted_server_and_a_start_while_it_is_down(own_server, tmp_path):
    url = own_server.get_uri()
    with LiveConfig(url, state_dir=tmp_path) as live:
        before = change(url, max_order_attempts=5)
        assert live.wait_for("risk", before.id)
        stop_server(own_server)
        deadline = time.monotonic() + 10
        while live.health().connected and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not live.health().connected and live.risk.max_order_attempts == 5  # the last good settings

        # Down: a new process starts from the settings saved on disk, and says so.
        with LiveConfig(url, state_dir=tmp_path) as cold:
            health = cold.health()
            assert (health.source, health.connected, cold.risk.max_order_attempts) == ("saved", False, 5)
            assert health.last_error and health.age > 0
        with pytest.raises(LiveConfigUnavailable, match="no saved settings"):
            LiveConfig(url, state_dir=tmp_path / "empty").start()
        with LiveConfig(url, state_dir=tmp_path / "empty", allow_defaults=True) as fallback:
            assert fallback.health().source == "defaults" and fallback.risk == RiskConfig()

        start_server(own_server)
        after = change(url, max_order_attempts=8)
        assert live.wait_for("risk", after.id, timeout=10) and live.risk.max_order_attempts == 8


def test_watch_prints_changes_as_text(migrated_db, tmp_path):
    watcher = start_watch(migrated_db, tmp_path, "watch", "risk")
    try:
        watcher.stderr.readline()
        change(migrated_db, max_order_attempts=6)
        assert "risk" in (line := watcher.stdout.readline()) and "max_order_attempts 3 -> 6" in line
    finally:
        watcher.terminate()
        watcher.wait(10)
    assert run_cli("watch", "nope").returncode == 2
