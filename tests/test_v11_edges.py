"""Edges a review found after the first cut of V11: owners with quoted names, hostile notifications, huge
numbers, imports racing activations, history from before V11, undo of revoked grants, stored NaNs, the write
lock held by a reader, the real client address, invisible names."""

from __future__ import annotations

import json
import os
import select
import subprocess
import threading
import time
import uuid

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from conftest import CLI, catalog, run_cli
from test_cli import assert_one_line_error
from walltrack_config import audit
from walltrack_config import lifecycle as lc
from walltrack_config.errors import ConfigBusy, InvalidValue
from walltrack_config.live import LiveConfig
from walltrack_config.migrate import plan as migrations
from walltrack_config.migrate import runner
from walltrack_config.models import NAME_RULE, RiskConfig, name_problem

V11 = next(m for m in migrations.discover() if m.version == 11)


def cli(url: str, *args: str, **kw):
    return run_cli("--database-url", url, "--actor", "ops", *args, **kw)


@pytest.fixture
def role(server):
    """A LOGIN role whose name needs quoting in SQL; dropped with what it owns."""
    name = f"Wt-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.admin_url, autocommit=True) as c:
        c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    yield name
    with psycopg.connect(server.admin_url, autocommit=True) as c:
        c.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_an_owner_whose_name_needs_quoting_can_still_change_settings(server, role):
    name = server.create()
    try:
        with psycopg.connect(server.url(name), autocommit=True) as admin:
            admin.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(name), sql.Identifier(role)))
            admin.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(role)))
        with psycopg.connect(make_conninfo(server.url(name), user=role), autocommit=True) as conn:
            runner.migrate(conn, migrations.discover(), "tests")
            draft = lc.clone(conn, "risk", actor="ann")
            lc.activate(conn, "risk", draft.id, expected_version=draft.version, actor="ann")
            assert audit.history(conn, "risk", limit=1)[0].db_user == role
    finally:
        server.drop(name)


@pytest.mark.parametrize(
    "payload",
    [
        '{"domain": []}',
        '{"domain": {"a": 1}}',
        "[" * 3000 + "]" * 3000,
        "[" * 450 + "]" * 450,
        '{"domain": "nope"}',
        "x" * 7000,
    ],
)
def test_a_hostile_notification_never_stops_the_listener(migrated_db, tmp_path, payload):
    with LiveConfig(migrated_db, state_dir=tmp_path) as live, psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("SELECT pg_notify('walltrack_config', %s)", [payload])
        draft = lc.clone(conn, "risk", actor="ann")
        draft = lc.edit(conn, "risk", draft.id, 1, {"max_order_attempts": 8}, actor="ann")
        lc.activate(conn, "risk", draft.id, expected_version=2, actor="ann")
        assert live.wait_for("risk", draft.id, timeout=5)
        assert live.health().connected and live.health().last_error is None


@pytest.mark.parametrize("value", ["1e400", "-1e400", "1e-400", "١٢"])
def test_huge_tiny_or_foreign_numbers_are_refused_in_one_line(migrated_db, tmp_path, value):
    with pytest.raises(Exception) as err:
        RiskConfig(max_drawdown_pct=value)
    assert "max_drawdown_pct" in str(err.value)
    cli(migrated_db, "draft", "risk")
    assert_one_line_error(cli(migrated_db, "set", "risk", f"max_drawdown_pct={value}"), 1, "max_drawdown_pct")
    document = tmp_path / "huge.yaml"
    document.write_text(f"domains:\n  risk:\n    settings:\n      max_drawdown_pct: '{value}'\n")
    assert_one_line_error(cli(migrated_db, "import", str(document)), 1, "max_drawdown_pct")


def test_an_import_activates_only_what_it_showed(migrated_db, tmp_path):
    document = tmp_path / "partial.yaml"
    document.write_text("domains:\n  risk:\n    settings:\n      max_order_attempts: 9\n")
    asking = subprocess.Popen(
        [str(CLI), "--database-url", migrated_db, "import", str(document), "--activate"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    seen = b""
    while b"[y/N]" not in seen:
        assert select.select([asking.stderr], [], [], 30)[0], seen
        chunk = os.read(asking.stderr.fileno(), 4096)
        assert chunk, seen  # the command ended before asking
        seen += chunk
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        other = lc.clone(conn, "risk", actor="bob")
        other = lc.edit(conn, "risk", other.id, 1, {"max_drawdown_pct": 12}, actor="bob")
        lc.activate(conn, "risk", other.id, expected_version=2, actor="bob")
        audit_rows = conn.execute("SELECT count(*) FROM walltrack.config_audit_log").fetchone()[0]
        _, err = asking.communicate(b"y\n", timeout=30)
        assert asking.returncode == 1 and "changed since the import was reviewed" in err.decode()
        assert lc.active_row(conn, "risk").id == other.id  # bob's change stands, nothing of the file went live
        assert conn.execute("SELECT count(*) FROM walltrack.config_audit_log").fetchone()[0] == audit_rows


def test_history_from_before_v11_keeps_its_commit_order(db_at):
    """On V10, a transaction that began before another activation but committed after it."""
    url = db_at(10)
    with psycopg.connect(url) as early, psycopg.connect(url, autocommit=True) as other:
        first = lc.active_row(other, "risk").id
        b = other.execute("SELECT walltrack.clone_config('risk', %s, 'B')", [first]).fetchone()[0]
        c = other.execute("SELECT walltrack.clone_config('risk', %s, 'C')", [first]).fetchone()[0]
        early.execute("SELECT now()")  # its clock starts here
        time.sleep(0.05)
        other.execute("SELECT walltrack.activate_config('risk', %s)", [b])
        early.execute("SELECT walltrack.activate_config('risk', %s)", [c])
        early.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        runner.migrate(conn, migrations.discover(), "tests")
        assert lc.rollback(conn, "risk", actor="ops").id == b  # the row live just before C, not by clock


def test_undoing_v11_gives_back_the_grants_it_revoked(db_at, role):
    url = db_at(10)
    ident = sql.Identifier(role)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("GRANT INSERT ON walltrack.config_audit_log TO {}").format(ident))
        conn.execute(sql.SQL("GRANT USAGE ON SEQUENCE walltrack.config_audit_log_id_seq TO {}").format(ident))
    before = catalog(url)
    try:
        with psycopg.connect(url) as conn:
            conn.execute(V11.apply.sql)
        with psycopg.connect(url) as conn:
            assert not conn.execute(
                "SELECT has_table_privilege(%s, 'walltrack.config_audit_log', 'INSERT')", [role]
            ).fetchone()[0]
            conn.execute(V11.undo.sql)
        assert catalog(url) == before  # privileges included
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))


def test_a_stored_nan_row_warns_once_and_diffs_sensibly(db_at):
    url = db_at(10)
    with psycopg.connect(url, autocommit=True) as conn:
        draft = conn.execute(
            "SELECT walltrack.clone_config('trading', id, 'Broken') FROM walltrack.trading_config"
            " WHERE status = 'active'"
        ).fetchone()[0]
        conn.execute("UPDATE walltrack.trading_config SET max_position_sol = 'NaN' WHERE id = %s", [draft])
        runner.migrate(conn, migrations.discover(), "tests")
    same = cli(url, "diff", "trading", str(draft), str(draft))
    assert same.returncode == 0 and "no differences" in same.stdout
    assert len(same.stderr.splitlines()) == 1 and "Warning" not in same.stderr
    against = cli(url, "--json", "diff", "trading", "active", str(draft))
    assert [c["field"] for c in json.loads(against.stdout)["changes"]] == ["name", "max_position_sol"]
    refused = cli(url, "set", "trading", "--draft", str(draft), "max_concurrent_positions=4")
    assert refused.returncode == 1 and "Warning" not in refused.stderr
    assert f"row {draft} ('Broken')" in refused.stderr and "max_position_sol" in refused.stderr
    fixed = cli(url, "set", "trading", "--draft", str(draft), "max_position_sol=2")
    assert fixed.returncode == 0, fixed.stderr


def test_a_reader_cannot_hold_up_the_writers(migrated_db, server):
    reader = f"wt_reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(migrated_db, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(reader)))
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA walltrack TO {}").format(sql.Identifier(reader)))
        admin.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA walltrack TO {}").format(sql.Identifier(reader)))
    try:
        with psycopg.connect(make_conninfo(migrated_db, user=reader)) as bot:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                bot.execute("SELECT walltrack.lock_config_writes()")
            bot.rollback()
            bot.execute("SELECT pg_advisory_lock(24560118926624327)")  # the key of V11's first cut
            with psycopg.connect(migrated_db, autocommit=True) as conn:
                conn.execute("SET lock_timeout = '2s'")
                draft = lc.clone(conn, "risk", actor="ann")  # not held up
                assert draft.status == "draft"
    finally:
        with psycopg.connect(migrated_db, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(reader)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(reader)))


def test_a_change_waiting_on_the_write_lock_gives_up_with_a_clear_error(migrated_db):
    with psycopg.connect(migrated_db) as holder, psycopg.connect(migrated_db, autocommit=True) as conn:
        draft = lc.clone(conn, "risk", actor="ann")
        holder.execute("SELECT walltrack.lock_config_writes()")  # a transaction left open, holding the lock
        conn.execute("SET lock_timeout = '200ms'")
        with pytest.raises(ConfigBusy, match="held its write lock; nothing was written"):
            lc.edit(conn, "risk", draft.id, 1, {"max_order_attempts": 4}, actor="ann")
        holder.rollback()
        assert lc.edit(conn, "risk", draft.id, 1, {"max_order_attempts": 4}, actor="ann").version == 2


def test_the_audit_row_records_the_real_client_address_beside_the_declared_one(conn):
    real = conn.execute("SELECT host(inet_client_addr())").fetchone()[0]  # None over a Unix socket
    with conn.transaction():
        conn.execute("SELECT set_config('walltrack.source_ip', '8.8.8.8', true)")
        lc.clone(conn, "api", actor="ann")
    entry = audit.history(conn, "api", limit=1)[0]
    assert (entry.source_ip, entry.db_client_addr) == ("8.8.8.8", real)


@pytest.mark.parametrize("name", ["\u200b", "\ufeff", "\u00ad\u200b", "evil\u202etxt.exe", "a\u2066b", "\u200e"])
def test_invisible_or_direction_changing_names_are_refused(conn, name):
    assert name_problem(name) == NAME_RULE
    with pytest.raises(InvalidValue, match="visible character"):
        lc.clone(conn, "risk", actor="ann", name=name)
    with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
        conn.execute("INSERT INTO walltrack.risk_config (name, status) VALUES (%s, 'draft')", [name])


def test_watch_on_an_old_schema_says_to_migrate(db_at, tmp_path):
    url = db_at(10)
    done = run_cli("--database-url", url, "watch", env={"WALLTRACK_HOME": str(tmp_path)}, timeout=30)
    assert_one_line_error(done, 2, "database is at V10; this command needs V11")


def test_health_says_which_domains_run_on_saved_settings(migrated_db, tmp_path):
    with LiveConfig(migrated_db, state_dir=tmp_path) as live:
        assert live.health().source == "database" and set(live.health().sources.values()) == {"database"}
    stopped = threading.Event()
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE walltrack.risk_config DROP CONSTRAINT chk_retry_delay_multiplier_finite")
        draft = lc.clone(conn, "risk", actor="ops")
        conn.execute("UPDATE walltrack.risk_config SET retry_delay_multiplier = 'NaN' WHERE id = %s", [draft.id])
        lc.activate(conn, "risk", draft.id, expected_version=2, actor="ops")
    with LiveConfig(migrated_db, state_dir=tmp_path) as live:
        health = live.health()
        assert health.source == "mixed" and health.sources["risk"] == "saved" and health.sources["api"] == "database"
    stopped.set()


def test_an_error_quoting_hostile_text_is_shown_escaped(migrated_db):
    cli(migrated_db, "draft", "risk")
    done = cli(migrated_db, "set", "risk", "\x1b]0;pwned\x07=1")
    assert done.returncode == 1 and "\x1b" not in done.stderr and "\\x1b" in done.stderr


def test_importing_the_same_export_twice_changes_nothing_the_second_time(migrated_db, tmp_path):
    exported = tmp_path / "all.yaml"
    assert cli(migrated_db, "export", "-o", str(exported)).returncode == 0
    exported.write_text(exported.read_text().replace("max_order_attempts: 3", "max_order_attempts: 6"))
    assert cli(migrated_db, "import", str(exported)).returncode == 0
    bumped = exported.read_text().replace("max_order_attempts: 6", "max_order_attempts: 7")
    exported.write_text(bumped)
    assert cli(migrated_db, "import", str(exported)).returncode == 0  # a second draft, its name free
    assert cli(migrated_db, "import", str(exported), "--activate", "--yes").returncode == 0  # reuses it
    assert_one_line_error(cli(migrated_db, "import", str(exported), "--activate", "--yes"), 1, "nothing to import")
    with psycopg.connect(migrated_db) as conn:
        assert lc.active(conn, "risk").max_order_attempts == 7
        assert [d.settings.max_order_attempts for d in lc.drafts(conn, "risk")] == [6]
