"""Issue 8's defects, each reproduced: NaN rows, activation bound to the review, names, schema versions,
row choice by prefix or name, renames in diffs and history, kept edits, live rows with their activation."""

from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from conftest import CLI, run_cli, start_watch
from test_cli import assert_one_line_error
from walltrack_config import audit, schema
from walltrack_config import lifecycle as lc
from walltrack_config.errors import (
    AmbiguousRow,
    ConcurrentChange,
    InvalidValue,
    NotFound,
    SchemaOutdated,
)
from walltrack_config.live import LiveConfig, LiveConfigUnavailable
from walltrack_config.migrate import plan as migrations
from walltrack_config.migrate import runner
from walltrack_config.models import MODELS, NAME_RULE, name_problem

NUMERIC = [(m.table, f) for m in MODELS.values() for f, i in m.model_fields.items() if i.annotation is Decimal]


def audit_count(conn) -> int:
    return conn.execute("SELECT count(*) FROM walltrack.config_audit_log").fetchone()[0]


def cli(url: str, *args: str, **kw):
    return run_cli("--database-url", url, "--actor", "ops", *args, **kw)


# -- 1. NaN and infinities -------------------------------------------------------------------------------------


def test_no_numeric_setting_accepts_nan_from_plain_sql(conn):
    for table, field in NUMERIC:
        with pytest.raises(psycopg.errors.CheckViolation) as err, conn.transaction():
            conn.execute(
                sql.SQL("INSERT INTO walltrack.{} (name, status, {}) VALUES ('nan', 'draft', 'NaN')").format(
                    sql.Identifier(table), sql.Identifier(field)
                )
            )
        # An upper bound or a sum already refuses NaN (it sorts above every number); the rest: V11's finite rule.
        model = next(m for m in MODELS.values() if m.table == table)
        assert field in model.fields_of(err.value.diag.constraint_name), (table, field)
    with pytest.raises(psycopg.errors.NumericValueOutOfRange), conn.transaction():
        conn.execute(
            "INSERT INTO walltrack.risk_config (name, status, retry_delay_multiplier)"
            " VALUES ('inf', 'draft', 'Infinity')"
        )


def test_the_write_path_refuses_nan_and_infinity_naming_the_field(conn):
    draft = lc.clone(conn, "risk", actor="ann")
    before = audit_count(conn)
    for value in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(InvalidValue) as err:
            lc.edit(conn, "risk", draft.id, draft.version, {"retry_delay_multiplier": value}, actor="ann")
        assert err.value.fields == ["retry_delay_multiplier"]
        # and the SQL function alone, as psql calls it
        with pytest.raises(psycopg.Error) as raw, conn.transaction():
            conn.execute(
                "SELECT walltrack.edit_config('risk', %s, 1, jsonb_build_object('retry_delay_multiplier', %s::text))",
                [draft.id, value],
            )
        assert "retry_delay_multiplier" in (raw.value.diag.constraint_name or raw.value.diag.message_primary)
    assert audit_count(conn) == before and lc.get(conn, "risk", draft.id) == draft


@pytest.fixture
def nan_live(db_at):
    """A database whose active trading row holds a NaN, written before V11 and migrated since."""
    url = db_at(10)
    with psycopg.connect(url, autocommit=True) as conn:
        good = lc.active_row(conn, "trading")
        with conn.transaction():
            draft = conn.execute("SELECT walltrack.clone_config('trading', %s, 'Broken')", [good.id]).fetchone()[0]
            conn.execute("UPDATE walltrack.trading_config SET max_position_sol = 'NaN' WHERE id = %s", [draft])
        conn.execute("SELECT walltrack.activate_config('trading', %s)", [draft])
        runner.migrate(conn, migrations.discover(), "tests")
    return url, good, draft


def test_an_unreadable_active_row_is_shown_named_and_never_a_traceback(nan_live):
    url, good, broken = nan_live
    for args in (("show", "trading"), ("list", "trading"), ("diff", "trading", "archived", "active"), ("show",)):
        done = cli(url, *args)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (args, done.stderr)
        (warning,) = done.stderr.splitlines()
        assert warning.startswith("warning: row ") and str(broken) in warning and "max_position_sol" in warning
    assert "NaN" in cli(url, "show", "trading").stdout
    assert_one_line_error(cli(url, "export"), 1, str(broken), "max_position_sol")
    # The operator can leave the bad row: a rollback archives it (it can never go live again).
    done = cli(url, "rollback", "trading", "--yes")
    assert done.returncode == 0, done.stderr
    with psycopg.connect(url, autocommit=True) as conn:
        assert lc.active_row(conn, "trading").id == good.id
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("SELECT walltrack.rollback_config('trading')")
        assert lc.active_row(conn, "trading").id == good.id


def test_a_new_live_config_falls_back_rather_than_crash(nan_live, tmp_path):
    url, good, broken = nan_live
    with pytest.raises(LiveConfigUnavailable, match="max_position_sol"):
        LiveConfig(url, state_dir=tmp_path / "none").start()
    with LiveConfig(url, state_dir=tmp_path / "defaults", allow_defaults=True) as live:
        assert live.trading == MODELS["trading"]() and live.row("trading").id is None
        assert "max_position_sol" in live.health().last_error and live.risk.max_drawdown_pct == Decimal("20.00")
    # Saved settings from a good day are used for the broken domain.
    saved = tmp_path / "saved"
    with psycopg.connect(url, autocommit=True) as conn:
        lc.rollback(conn, "trading", actor="ops")
    with LiveConfig(url, state_dir=saved) as live:
        assert live.row("trading").id == good.id
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE walltrack.trading_config DROP CONSTRAINT chk_max_position_sol_finite")
        lc.rollback(conn, "trading", actor="ops")  # the NaN row is live again, as a hostile superuser could make it
    with LiveConfig(url, state_dir=saved) as live:
        assert live.row("trading").id == good.id and live.trading.max_position_sol == good.settings.max_position_sol
        assert str(broken) in live.health().last_error


def test_a_running_live_config_keeps_the_last_good_settings(migrated_db, tmp_path, caplog):
    with psycopg.connect(migrated_db, autocommit=True) as conn, LiveConfig(migrated_db, state_dir=tmp_path) as live:
        conn.execute("ALTER TABLE walltrack.risk_config DROP CONSTRAINT chk_retry_delay_multiplier_finite")
        good = live.row("risk")
        draft = lc.clone(conn, "risk", actor="ops")
        conn.execute("UPDATE walltrack.risk_config SET retry_delay_multiplier = 'NaN' WHERE id = %s", [draft.id])
        with caplog.at_level(logging.ERROR, logger="walltrack_config.live"):
            lc.activate(conn, "risk", draft.id, expected_version=2, actor="ops")
            deadline = time.monotonic() + 5
            while live.health().last_error is None and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)  # a second notification or reload must not log it again
        assert live.row("risk") == good and "retry_delay_multiplier" in live.health().last_error
        assert live.health().connected and caplog.text.count(str(draft.id)) == 1
        fixed = lc.clone(conn, "risk", "default", actor="ops")
        lc.activate(conn, "risk", fixed.id, expected_version=1, actor="ops")
        assert live.wait_for("risk", fixed.id) and live.health().last_error is None


# -- 3. activation is what was previewed ------------------------------------------------------------------------


def test_activation_needs_the_reviewed_version(conn):
    draft = lc.clone(conn, "risk", actor="ann")
    edited = lc.edit(conn, "risk", draft.id, draft.version, {"max_order_attempts": 7}, actor="bob")
    before = audit_count(conn)
    with pytest.raises(ConcurrentChange, match=r"draft changed since you reviewed it \(v1 → v2\); review again$"):
        lc.activate(conn, "risk", draft.id, expected_version=draft.version, actor="ann")
    with pytest.raises(psycopg.Error, match="needs the version you reviewed"), conn.transaction():
        conn.execute("SELECT walltrack.activate_config('risk', %s, NULL)", [draft.id])
    assert audit_count(conn) == before and lc.get(conn, "risk", draft.id).status == "draft"
    assert lc.activate(conn, "risk", draft.id, expected_version=edited.version, actor="ann").status == "active"


def test_an_edit_made_during_the_question_is_not_activated(migrated_db):
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        draft = lc.clone(conn, "risk", actor="ann")
        asking = subprocess.Popen(
            [str(CLI), "--database-url", migrated_db, "activate", "risk"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        seen = b""
        while b"[y/N]" not in seen:  # the question is on screen: the operator reads the diff
            assert select.select([asking.stderr], [], [], 30)[0], seen
            chunk = os.read(asking.stderr.fileno(), 4096)
            assert chunk, seen  # the command ended before asking
            seen += chunk
        lc.edit(conn, "risk", draft.id, draft.version, {"max_drawdown_pct": 99}, actor="mallory")
        _, err = asking.communicate(b"y\n", timeout=30)
        assert asking.returncode == 1 and "draft changed since you reviewed it (v1 → v2); review again" in err.decode()
        assert lc.get(conn, "risk", draft.id).status == "draft"


# -- 8. names ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["   ", "\t", "a\nb", "tab\there", "\u3000\u00a0", "bell\x07"])
def test_blank_or_control_names_are_refused_alike(conn, name):
    before = audit_count(conn)
    with pytest.raises(InvalidValue) as model:
        lc.clone(conn, "risk", actor="ann", name=name)
    draft = lc.clone(conn, "risk", actor="ann")
    with pytest.raises(psycopg.errors.CheckViolation, match="chk_name"), conn.transaction():
        conn.execute(
            "SELECT walltrack.edit_config('risk', %s, 1, jsonb_build_object('name', %s::text))", [draft.id, name]
        )
    assert lc.get(conn, "risk", draft.id).name == draft.name
    with pytest.raises(psycopg.errors.CheckViolation, match="chk_name"), conn.transaction():
        conn.execute("INSERT INTO walltrack.risk_config (name, status) VALUES (%s, 'draft')", [name])
    assert str(model.value) == f"invalid walltrack.risk_config: name: {NAME_RULE}"
    assert audit_count(conn) == before + 1  # only the clone of the good name


def test_translated_name_errors_match_the_model(conn):
    draft = lc.clone(conn, "risk", actor="ann")
    with pytest.raises(InvalidValue) as err:
        lc._call(conn, "risk", "edit_config", draft.id, draft.version, psycopg.types.json.Jsonb({"name": "\t"}))
    assert err.value.errors[0].message == NAME_RULE == name_problem("\t")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.text(
        alphabet=st.sampled_from(
            list(" \t\n\x1f\x7f\x85\xa0\xad\u2003\u3000\u200b\u200e\u202e\u2066\ufeffab\u00e9\u4e2d")
        ),
        max_size=6,
    )
)
def test_the_name_rule_is_the_same_in_python_and_postgresql(conn, name):
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("INSERT INTO walltrack.api_config (name, status) VALUES (%s, 'draft')", [name])
        accepted = True
    except psycopg.errors.CheckViolation:
        accepted = False
    assert (name_problem(name) is None) == accepted, repr(name)


# -- 10. schema versions -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 8, 10])
def test_commands_name_the_migration_they_need(db_at, empty_db, version):
    url = empty_db if version == 0 else db_at(version)
    with psycopg.connect(url) as conn:
        assert schema.version(conn) == version
        with pytest.raises(SchemaOutdated):
            schema.require(conn)
    at = "not migrated" if version == 0 else f"at V{version}"
    for args in (("show", "risk"), ("draft", "risk"), ("history", "risk")):
        assert_one_line_error(
            cli(url, *args), 2, f"database is {at}; this command needs V11: run `walltrack-config db migrate`"
        )


def test_the_migrated_database_is_at_the_needed_version(conn):
    # The highest version a command needs is the latest migration (config commands: NEEDED; users and tokens:
    # PRINCIPALS; the fleet and the server: FLEET), and the catalog markers reach it.
    needed = max(schema.NEEDED, schema.PRINCIPALS, schema.FLEET, schema.CHANGES)
    assert schema.version(conn) == needed == max(m.version for m in migrations.discover())
    assert schema.NEEDED <= schema.PRINCIPALS


# -- 11. discard, restore, rows by prefix or name, imports that reuse a draft -----------------------------------


def test_rows_by_id_prefix_or_name(conn):
    draft = lc.clone(conn, "exit", actor="ann", name="Night profile")
    assert lc.resolve(conn, "exit", str(draft.id)[:6]).id == draft.id
    assert lc.resolve(conn, "exit", str(draft.id)[:8].upper()).id == draft.id
    assert lc.resolve(conn, "exit", "Night profile").id == draft.id
    with pytest.raises(NotFound, match="id prefix of 6"):
        lc.resolve(conn, "exit", str(draft.id)[:5])
    lc.activate(conn, "exit", draft.id, expected_version=1, actor="ann")
    again = lc.clone(conn, "exit", "default", actor="ann", name="Night profile")
    lc.activate(conn, "exit", again.id, expected_version=1, actor="ann")
    with pytest.raises(AmbiguousRow) as err:  # one archived, one active, same name
        lc.resolve(conn, "exit", "Night profile")
    assert len(err.value.candidates) == 2 and all("Night profile" in c for c in err.value.candidates)


def test_discard_and_restore_from_the_command_line(migrated_db):
    draft = json.loads(cli(migrated_db, "--json", "draft", "api", "--name", "Spare").stdout)
    done = cli(migrated_db, "discard", "api", draft["id"][:6], "--reason", "not needed")
    assert done.returncode == 0 and "discarded draft 'Spare'" in done.stdout
    with psycopg.connect(migrated_db) as conn:
        assert lc.rows(conn, "api", "draft") == []
        assert audit.history(conn, "api", limit=1)[0].reason == "not needed"
        original = lc.active_row(conn, "api")
    new = json.loads(cli(migrated_db, "--json", "draft", "api").stdout)
    assert cli(migrated_db, "activate", "api", "--yes").returncode == 0
    restored = json.loads(cli(migrated_db, "--json", "restore", "api", str(original.id)[:10], "--name", "Back").stdout)
    assert (restored["status"], restored["name"]) == ("draft", "Back")
    with psycopg.connect(migrated_db) as conn:
        assert audit.history(conn, "api", limit=1)[0].action == "restore"
        assert lc.get(conn, "api", restored["id"]).settings == original.settings
    assert_one_line_error(cli(migrated_db, "discard", "api", new["id"]), 1, "cannot be discarded")


def test_an_import_equal_to_a_draft_reuses_it(migrated_db, tmp_path):
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        draft = lc.clone(conn, "risk", actor="ann", name="Prepared")
        draft = lc.edit(conn, "risk", draft.id, 1, {"max_order_attempts": 8}, actor="ann")
    settings_file = tmp_path / "s.yaml"
    settings_file.write_text("domains:\n  risk:\n    settings:\n      max_order_attempts: 8\n")
    done = cli(migrated_db, "--json", "import", str(settings_file), "--activate", "--yes")
    assert done.returncode == 0, done.stderr
    assert [r["id"] for r in json.loads(done.stdout)] == [str(draft.id)]
    with psycopg.connect(migrated_db) as conn:
        assert lc.active_row(conn, "risk").id == draft.id and lc.rows(conn, "risk", "draft") == []


# -- 13. renames ------------------------------------------------------------------------------------------


def test_a_rename_is_a_change_in_diffs_and_history(migrated_db):
    cli(migrated_db, "draft", "risk")
    done = cli(migrated_db, "set", "risk", "name=Foo", "description=for the night")
    assert done.returncode == 0 and "no differences" not in done.stdout
    assert "name" in done.stdout and "Foo" in done.stdout and "for the night" in done.stdout
    with psycopg.connect(migrated_db) as conn:
        assert audit.history(conn, "risk", limit=1)[0].changed_fields == ["description", "name"]
    assert "Foo" in cli(migrated_db, "diff", "risk").stdout


# -- 15. an edit that meets a conflict is kept and resumed ------------------------------------------------------


def _conflicting_editor(tmp_path: Path, url: str, draft_id: str) -> str:
    """An $EDITOR that, while the operator types, lets someone else change the draft; then saves its own change."""
    script = tmp_path / "editor.py"
    script.write_text(
        "import sys, pathlib, psycopg\n"
        "path = pathlib.Path(sys.argv[1]); text = path.read_text()\n"
        f"with psycopg.connect({url!r}, autocommit=True) as c:\n"
        "    c.execute(\"SELECT walltrack.edit_config('risk', %s, 1,\"\n"
        f'              " \'{{\\"circuit_breaker_cooldown_minutes\\": 99}}\')", [{draft_id!r}])\n'
        "path.write_text(text.replace('max_order_attempts: 3', 'max_order_attempts: 7'))\n"
    )
    return f"{sys.executable} {script}"


def test_an_edit_kept_after_a_conflict_resumes_without_reverting_the_other_change(migrated_db, tmp_path):
    draft = json.loads(cli(migrated_db, "--json", "draft", "risk").stdout)
    done = cli(migrated_db, "edit", "risk", env={"EDITOR": _conflicting_editor(tmp_path, migrated_db, draft["id"])})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    kept_line, error = done.stderr.splitlines()
    assert error.startswith("error: ") and "version" in error
    kept = Path(kept_line.split("kept in ")[1].split(";")[0])
    assert "max_order_attempts: 7" in kept.read_text() and f"--from {kept}" in kept_line
    resumed = cli(migrated_db, "edit", "risk", "--from", str(kept), env={"EDITOR": "true"})
    assert resumed.returncode == 0, resumed.stderr
    row = json.loads(cli(migrated_db, "--json", "show", "risk", "--id", draft["id"]).stdout)
    assert (row["max_order_attempts"], row["circuit_breaker_cooldown_minutes"], row["version"]) == (7, 99, 3)


# -- 19. live rows carry their row and activation ----------------------------------------------------------------


def test_callbacks_get_live_rows_and_health_counts_activations(migrated_db, tmp_path):
    heard = []
    with psycopg.connect(migrated_db, autocommit=True) as conn, LiveConfig(migrated_db, state_dir=tmp_path) as live:
        live.subscribe("api", lambda old, new: heard.append((old, new)))
        first = live.health()
        draft = lc.clone(conn, "api", actor="ann", name="Fast")
        draft = lc.edit(conn, "api", draft.id, 1, {"api_retry_count": 5}, actor="ann")
        lc.activate(conn, "api", draft.id, expected_version=2, actor="ann", reason="faster")
        assert live.wait_for("api", draft.id)
        back = lc.rollback(conn, "api", actor="bob", reason="undo")
        assert live.wait_for("api", back.id)
        forward = lc.rollback(conn, "api", actor="bob", reason="redo")  # the same row as before, live again
        deadline = time.monotonic() + 5
        while len(heard) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        old, new = heard[0]
        assert (old.id, new.id, new.name, new.actor, new.reason) == (
            first.ids["api"],
            draft.id,
            "Fast",
            "ann",
            "faster",
        )
        assert new.settings.api_retry_count == 5 and new.activated_at is not None
        assert [n.activation for _, n in heard] == sorted(n.activation for _, n in heard) and len(heard) == 3
        assert heard[2][1].id == forward.id == draft.id and heard[2][1].activation > heard[0][1].activation
        assert live.health().activations["api"] == heard[2][1].activation > first.activations["api"]
        assert live.health().ids["api"] == draft.id


def test_watch_prints_who_why_and_reconnects(migrated_db, tmp_path):
    watcher = start_watch(migrated_db, tmp_path, "watch", "api")
    try:
        assert "watching api" in watcher.stderr.readline()
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            draft = lc.clone(conn, "api", actor="ann", name="Calm")
            draft = lc.edit(conn, "api", draft.id, 1, {"api_retry_count": 4}, actor="ann")
            lc.activate(conn, "api", draft.id, expected_version=2, actor="ann", reason="quieter")
            line = watcher.stdout.readline()
            assert "'Calm'" in line and "by ann (quieter)" in line and "api_retry_count 3 -> 4" in line
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'walltrack-live' AND datname = current_database()"
            )
            assert "lost the database" in watcher.stderr.readline()
            assert "reconnected" in watcher.stderr.readline()
    finally:
        watcher.terminate()
        watcher.wait(10)


def test_watch_ends_quietly_when_its_output_is_closed(migrated_db, tmp_path):
    watcher = start_watch(migrated_db, tmp_path, "watch", "api")
    try:
        assert "watching api" in watcher.stderr.readline()
        watcher.stdout.close()  # `watch | head -0`
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            draft = lc.clone(conn, "api", actor="ann")
            lc.activate(conn, "api", draft.id, expected_version=1, actor="ann")
        assert watcher.wait(20) == 0
        assert watcher.stderr.read() == ""
    finally:
        watcher.kill()
