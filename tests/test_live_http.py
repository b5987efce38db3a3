"""LiveConfig over HTTP: a bot following a `walltrack-config serve` through its event stream instead of holding
a connection to PostgreSQL. The real app on a real socket, real PostgreSQL behind it, bots as real processes
or in-process LiveConfigs (no mocks): changes heard, a server restart caught up on, saved settings and
defaults at a start without the server, a refused token, the server's database going away."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import psycopg
import pytest

from conftest import activate, start_server, stop_server
from server_support import serving
from walltrack_config import lifecycle as lc
from walltrack_config.errors import AuthenticationFailed, LiveConfigUnavailable
from walltrack_config.live import LiveConfig
from walltrack_config.live.http import backoff
from walltrack_config.models import RiskConfig

# A bot: follows the server, prints one JSON line once started, then one per change of risk.
BOT = r"""
import json, sys
from pathlib import Path
from walltrack_config.live import LiveConfig

url, token, state = sys.argv[1:4]
live = LiveConfig(url, token=token, state_dir=Path(state), max_backoff=0.5)

def heard(old, new):
    print(json.dumps({"id": str(new.id), "version": new.version, "activation": new.activation, "actor": new.actor,
                      "reason": new.reason, "old": old.settings.max_order_attempts,
                      "new": new.settings.max_order_attempts}), flush=True)

live.subscribe("risk", heard)
live.start()
health = live.health()
print(json.dumps({"source": health.source, "connected": health.connected, "risk": live.risk.max_order_attempts}),
      flush=True)
sys.stdin.read()  # until the test closes it
live.stop()
"""


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_a_bot_process_hears_an_activation_and_a_rollback(migrated_db, tmp_path):
    with serving(migrated_db) as api:
        bot = subprocess.Popen(
            [sys.executable, "-c", BOT, api.base, api.tokens["reader"], str(tmp_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [*map(lines.put, bot.stdout), lines.put("null")], daemon=True).start()
        try:
            assert json.loads(lines.get(timeout=30)) == {"source": "database", "connected": True, "risk": 3}
            row, seq = activate(migrated_db, actor="alice", reason="tighter", max_order_attempts=7)
            heard = json.loads(lines.get(timeout=10))
            assert heard == {
                "id": str(row.id),
                "version": row.version,
                "activation": seq,
                "actor": "alice",
                "reason": "tighter",
                "old": 3,
                "new": 7,
            }
            with psycopg.connect(migrated_db, autocommit=True) as conn:
                back = lc.rollback(conn, "risk", actor="bob", reason="undo")
            heard = json.loads(lines.get(timeout=10))
            assert (heard["id"], heard["actor"], heard["reason"], heard["old"], heard["new"]) == (
                str(back.id),
                "bob",
                "undo",
                7,
                3,
            )
            assert heard["activation"] > seq
            assert bot.poll() is None
        finally:
            bot.stdin.close()
            bot.wait(15)
        assert bot.returncode == 0
        assert list(tmp_path.glob("*.json")), "the bot saved the settings it ran on"


def test_a_restarted_server_is_found_again_and_what_changed_meanwhile_arrives(migrated_db, tmp_path):
    heard: list[tuple[int, int]] = []
    with serving(migrated_db) as api:
        port, token = int(api.base.rsplit(":", 1)[1]), api.tokens["reader"]
        live = LiveConfig(api.base, token=token, state_dir=tmp_path, max_backoff=0.5).start()
        live.subscribe(
            "risk", lambda old, new: heard.append((old.settings.max_order_attempts, new.settings.max_order_attempts))
        )
        before, _ = activate(migrated_db, max_order_attempts=5)
        assert live.wait_for("risk", before.id, timeout=10)
    try:
        assert wait_until(lambda: not live.health().connected, 10)  # the server ended the stream as it stopped
        assert live.risk.max_order_attempts == 5  # the last good settings, meanwhile
        during, _ = activate(migrated_db, max_order_attempts=6)  # nobody serves it yet
        time.sleep(0.3)  # a few attempts refused: the backoff goes on
        assert live.risk.max_order_attempts == 5
        with serving(migrated_db, roles=False, port=port):
            assert live.wait_for("risk", during.id, timeout=15)
            assert wait_until(lambda: live.health().connected, 5)
            after, _ = activate(migrated_db, max_order_attempts=8)
            assert live.wait_for("risk", after.id, timeout=10)
            health = live.health()
            assert (health.connected, health.source, health.last_error) == (True, "database", None)
    finally:
        live.stop()
    assert heard == [(3, 5), (5, 6), (6, 8)]


def test_saved_settings_defaults_or_nothing_when_the_server_is_unreachable_at_start(migrated_db, tmp_path):
    with serving(migrated_db) as api:
        base, token = api.base, api.tokens["reader"]
        row, _ = activate(migrated_db, max_order_attempts=5)
        with LiveConfig(base, token=token, state_dir=tmp_path) as live:
            assert live.wait_for("risk", row.id) and live.health().source == "database"
    # Nobody listens at that address any more.
    with LiveConfig(base, token=token, state_dir=tmp_path, max_backoff=0.5) as cold:
        health = cold.health()
        assert (health.source, health.connected, cold.risk.max_order_attempts) == ("saved", False, 5)
        assert health.last_error and health.age > 0 and health.ids["risk"] == row.id
    with pytest.raises(LiveConfigUnavailable, match="no saved settings"):
        LiveConfig(base, token=token, state_dir=tmp_path / "empty").start()
    with LiveConfig(base, token=token, state_dir=tmp_path / "empty", allow_defaults=True, max_backoff=0.5) as fallback:
        assert fallback.health().source == "defaults" and fallback.risk == RiskConfig()


def test_a_wrong_or_missing_token_is_refused_at_start(migrated_db, tmp_path):
    with serving(migrated_db) as api:
        for token in ("wtc_0123456789ab_not-a-real-secret", None):
            with pytest.raises(AuthenticationFailed, match="401"):
                LiveConfig(api.base, token=token, state_dir=tmp_path, allow_defaults=True).start()
        assert not list(tmp_path.glob("*.json"))  # nothing was saved for it


# -- the server's database going away ------------------------------------------------------------------------------


def test_health_says_stale_while_the_server_has_no_database(own_server, tmp_path):
    url = own_server.get_uri()
    states: list[bool] = []
    with (
        serving(url) as api,
        LiveConfig(api.base, token=api.tokens["reader"], state_dir=tmp_path / "a", max_backoff=0.5) as live,
    ):
        live.on_connection(lambda connected, error: states.append(connected))
        row, _ = activate(url, max_order_attempts=5)
        assert live.wait_for("risk", row.id, timeout=10)

        stop_server(own_server)
        assert wait_until(lambda: not live.health().connected, 10)
        health = live.health()
        assert "stale" in health.last_error and health.source == "database"
        assert live.risk.max_order_attempts == 5 and health.ids["risk"] == row.id  # values kept

        # A bot starting meanwhile gets the server's settings, and is told they may be stale.
        with LiveConfig(api.base, token=api.tokens["reader"], state_dir=tmp_path / "b", max_backoff=0.5) as late:
            assert late.risk.max_order_attempts == 5
            late_health = late.health()
            assert not late_health.connected and "stale" in late_health.last_error

        start_server(own_server)
        assert wait_until(lambda: live.health().connected, 15)
        assert live.health().last_error is None
        after, _ = activate(url, max_order_attempts=6)
        assert live.wait_for("risk", after.id, timeout=10)
    assert states[:2] == [False, True]


# -- backoff -----------------------------------------------------------------------------------------------------


def test_backoff_is_exponential_with_full_jitter():
    for attempt, ceiling in [(0, 0.1), (1, 0.2), (3, 0.8), (8, 25.6), (9, 30.0), (40, 30.0), (10_000, 30.0)]:
        samples = [backoff(attempt, 0.1, 30.0) for _ in range(2000)]
        assert all(0 <= s <= ceiling for s in samples), attempt
        # Full jitter: anywhere in [0, ceiling], not bunched near it (2000 draws: misses have odds of 0.9**2000).
        assert min(samples) < 0.1 * ceiling and max(samples) > 0.9 * ceiling, attempt
        assert 0.4 * ceiling < sum(samples) / len(samples) < 0.6 * ceiling
    assert backoff(5, 0.0, 30.0) == 0.0
