"""The typed Python API over the lifecycle, on real PostgreSQL: transitions, errors, concurrency."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from walltrack_config import audit
from walltrack_config import lifecycle as lc
from walltrack_config.diff import Change, diff
from walltrack_config.errors import (
    ConcurrentChange,
    InvalidTransition,
    InvalidValue,
    NotFound,
    UnknownDomain,
    UnknownField,
)
from walltrack_config.models import DOMAINS, MODELS, RiskConfig, TradingConfig


def audit_count(conn) -> int:
    return conn.execute("SELECT count(*) FROM walltrack.config_audit_log").fetchone()[0]


@pytest.mark.parametrize("domain", DOMAINS)
def test_active_settings_come_typed_and_equal_the_defaults(conn, domain):
    assert lc.active(conn, domain) == MODELS[domain]()
    row = lc.active_row(conn, domain)
    assert (row.status, row.version, row.name) == ("active", 1, "Active Configuration")


def test_clone_edit_activate_then_rollback(conn):
    draft = lc.clone(conn, "risk", actor="ann", reason="tighten")
    assert (draft.status, draft.name, draft.created_by) == ("draft", "Active Configuration (draft)", "ann")
    draft = lc.edit(
        conn,
        "risk",
        draft.id,
        draft.version,
        {"max_drawdown_pct": "15", "max_order_attempts": 5},
        actor="ann",
        reason="tighten",
    )
    assert (draft.version, draft.settings.max_drawdown_pct, draft.updated_by) == (2, Decimal("15.00"), "ann")
    before = lc.active_row(conn, "risk")
    live = lc.activate(conn, "risk", draft.id, expected_version=draft.version, actor="ann", reason="go live")
    assert live.status == "active" and lc.active(conn, "risk").max_drawdown_pct == Decimal("15.00")
    assert lc.get(conn, "risk", before.id).status == "archived"
    back = lc.rollback(conn, "risk", actor="bob", reason="too tight")
    assert back.id == before.id and lc.active(conn, "risk") == RiskConfig()
    assert lc.get(conn, "risk", live.id).status == "archived"


def test_clone_names_do_not_collide(conn):
    first = lc.clone(conn, "api", "default", actor="ann")
    second = lc.clone(conn, "api", "default", actor="ann")
    named = lc.clone(conn, "api", first.id, actor="ann", name="Fast lane")
    assert [first.name, second.name, named.name] == [
        "System Defaults (draft)",
        "System Defaults (draft 2)",
        "Fast lane",
    ]
    with pytest.raises(InvalidValue) as err:
        lc.clone(conn, "api", "default", actor="ann", name="Fast lane")
    assert err.value.fields == ["name"]
    again = lc.clone(conn, "api", second.id, actor="ann")
    assert again.name == "System Defaults (draft 3)"  # not '... (draft 2) (draft)'
    lc.activate(conn, "api", again.id, expected_version=again.version, actor="ann")
    assert lc.clone(conn, "api", actor="ann").name == "System Defaults (draft 3)"  # free again once live


def test_restore_and_discard(conn):
    draft = lc.clone(conn, "exit", actor="ann")
    lc.activate(conn, "exit", draft.id, expected_version=draft.version, actor="ann")
    archived = lc.rows(conn, "exit", "archived")[0]
    restored = lc.restore(conn, "exit", archived.id, actor="ann", reason="bring back", name="Old one")
    assert (restored.status, restored.settings) == ("draft", archived.settings)
    assert audit.history(conn, "exit", limit=1)[0].action == "restore"
    lc.discard(conn, "exit", restored.id, actor="ann", reason="not needed")
    with pytest.raises(NotFound):
        lc.get(conn, "exit", restored.id)
    assert audit.history(conn, "exit", limit=1)[0].action == "delete"
    with pytest.raises(InvalidTransition, match="only archived rows are restored"):
        lc.restore(conn, "exit", lc.active_row(conn, "exit").id, actor="ann")


@pytest.mark.parametrize("status", ["default", "active"])
def test_refused_transitions_say_what_to_do_and_write_nothing(conn, status):
    row = lc.rows(conn, "cluster", status)[0]
    count = audit_count(conn)
    with pytest.raises(InvalidTransition) as err:
        lc.activate(conn, "cluster", row.id, expected_version=row.version, actor="ann")
    assert err.value.hint and "only a draft can be activated" in str(err.value)
    with pytest.raises(InvalidTransition, match="read-only"):
        lc.edit(conn, "cluster", row.id, row.version, {"max_cluster_size": 30}, actor="ann")
    with pytest.raises(InvalidTransition, match="cannot be discarded"):
        lc.discard(conn, "cluster", row.id, actor="ann")
    assert audit_count(conn) == count and lc.get(conn, "cluster", row.id) == row


def test_rollback_with_nothing_archived_is_refused(conn):
    with pytest.raises(InvalidTransition, match="nothing to roll back to"):
        lc.rollback(conn, "discovery", actor="ann")


def test_bad_values_name_the_fields_and_write_nothing(conn):
    draft = lc.clone(conn, "trading", actor="ann")
    count = audit_count(conn)
    cases = [
        ({"base_position_pct": 150}, ["base_position_pct"]),
        ({"min_position_sol": 5}, ["min_position_sol, max_position_sol"]),
        ({"sizing_mode": "yolo"}, ["sizing_mode"]),
        ({"drawdown_reduction_tiers": []}, ["drawdown_reduction_tiers"]),
        (
            {
                "drawdown_reduction_tiers": [
                    {"threshold_pct": 10, "size_reduction_pct": 50},
                    {"threshold_pct": 5, "size_reduction_pct": 60},
                ]
            },
            ["drawdown_reduction_tiers"],
        ),
        ({"max_concurrent_positions": "many"}, ["max_concurrent_positions"]),
        ({"name": "  "}, ["name"]),
    ]
    for changes, fields in cases:
        with pytest.raises(InvalidValue) as err:
            lc.edit(conn, "trading", draft.id, draft.version, changes, actor="ann")
        assert err.value.fields == fields, changes
    with pytest.raises(UnknownField) as err:
        lc.edit(conn, "trading", draft.id, draft.version, {"base_positon_pct": 3}, actor="ann")
    assert err.value.suggestion == "base_position_pct"
    assert audit_count(conn) == count and lc.get(conn, "trading", draft.id) == draft


def test_bad_ids_and_domains(conn):
    with pytest.raises(UnknownDomain, match="unknown domain 'tradin'"):
        lc.active(conn, "tradin")
    with pytest.raises(NotFound, match="not a row id"):
        lc.get(conn, "risk", "123")
    with pytest.raises(NotFound):
        lc.activate(conn, "risk", "00000000-0000-0000-0000-000000000000", expected_version=1, actor="ann")


def test_a_lost_update_is_refused(conn, migrated_db):
    draft = lc.clone(conn, "scoring", actor="ann")
    lc.edit(conn, "scoring", draft.id, draft.version, {"timing_decay_hours": 6}, actor="ann")
    with pytest.raises(ConcurrentChange, match="at version 2, not 1"):
        lc.edit(conn, "scoring", draft.id, draft.version, {"timing_decay_hours": 8}, actor="bob")
    assert lc.get(conn, "scoring", draft.id).settings.timing_decay_hours == 6


def test_two_editors_at_once_one_wins_one_is_told(migrated_db):
    with psycopg.connect(migrated_db, autocommit=True) as setup:
        draft = lc.clone(setup, "scoring", actor="ann")
    results: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def editor(who: str, hours: int) -> None:
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            barrier.wait()
            try:
                results[who] = lc.edit(conn, "scoring", draft.id, 1, {"timing_decay_hours": hours}, actor=who).version
            except ConcurrentChange as exc:
                results[who] = exc

    threads = [threading.Thread(target=editor, args=(w, h)) for w, h in (("ann", 6), ("bob", 8))]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    winners = [w for w, r in results.items() if r == 2]
    assert len(winners) == 1 and isinstance(results[{"ann", "bob"}.difference(winners).pop()], ConcurrentChange)
    with psycopg.connect(migrated_db) as conn:
        assert lc.get(conn, "scoring", draft.id).settings.timing_decay_hours == {"ann": 6, "bob": 8}[winners[0]]


def test_one_hundred_cycles_under_one_name(conn):
    for i in range(100):
        draft = lc.clone(conn, "api", actor="ann", name="Nightly")
        draft = lc.edit(conn, "api", draft.id, draft.version, {"api_retry_count": i % 7}, actor="ann")
        lc.activate(conn, "api", draft.id, expected_version=draft.version, actor="ann", reason=f"cycle {i}")
    assert lc.active_row(conn, "api").name == "Nightly" and lc.active(conn, "api").api_retry_count == 99 % 7
    counts = {s: len(lc.rows(conn, "api", s)) for s in ("default", "draft", "active", "archived")}
    assert counts == {"default": 1, "draft": 0, "active": 1, "archived": 100}


@pytest.mark.parametrize("activators", [2, 8])
def test_concurrent_activators_and_an_observer_who_never_sees_zero_or_two(migrated_db, activators):
    with psycopg.connect(migrated_db, autocommit=True) as setup:
        drafts = [lc.clone(setup, "trading", actor=f"op{i}", name=f"Candidate {i}").id for i in range(activators)]
        audit_before = audit_count(setup)
    stop, seen, outcomes = threading.Event(), set(), []
    barrier = threading.Barrier(activators)

    def observe() -> None:
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            while not stop.is_set():
                seen.add(
                    conn.execute("SELECT count(*) FROM walltrack.trading_config WHERE status = 'active'").fetchone()[0]
                )

    def activate(i: int) -> None:
        with psycopg.connect(migrated_db, autocommit=True) as conn:
            barrier.wait()
            try:
                lc.activate(conn, "trading", drafts[i], expected_version=1, actor=f"op{i}", reason="race")
                outcomes.append("activated")
            except (ConcurrentChange, InvalidTransition) as exc:
                outcomes.append(type(exc).__name__)

    observer = threading.Thread(target=observe)
    observer.start()
    workers = [threading.Thread(target=activate, args=(i,)) for i in range(activators)]
    [w.start() for w in workers]
    [w.join(60) for w in workers]
    time.sleep(0.05)
    stop.set()
    observer.join(10)
    assert seen == {1}
    # Transitions on one table take turns, so every activation lands, one after the other.
    assert outcomes == ["activated"] * activators
    with psycopg.connect(migrated_db) as conn:
        statuses = {r.status for r in lc.rows(conn, "trading") if r.id in drafts}
        assert len(lc.rows(conn, "trading", "active")) == 1 and statuses <= {"active", "archived"}
        assert audit_count(conn) - audit_before == 2 * activators  # an archive and an activate each


def test_history_is_newest_first_with_limit_and_since(conn):
    start = datetime.now(UTC) - timedelta(seconds=1)
    draft = lc.clone(conn, "risk", actor="ann", reason="r1")
    lc.edit(conn, "risk", draft.id, 1, {"max_order_attempts": 4}, actor="bob", reason="r2")
    entries = audit.history(conn, "risk")
    assert [(e.action, e.performed_by, e.reason) for e in entries] == [("update", "bob", "r2"), ("create", "ann", "r1")]
    assert entries[0].changed_fields == ["max_order_attempts"]
    assert len(audit.history(conn, "risk", limit=1)) == 1
    assert audit.history(conn, "risk", since=datetime.now(UTC) + timedelta(hours=1)) == []
    assert len(audit.history(conn, "risk", since=start)) == 2
    assert audit.history(conn, "trading") == []


def test_audit_records_the_callers_source_and_agent(conn):
    conn.execute(
        "SELECT set_config('walltrack.source_ip', '203.0.113.7', false),"
        " set_config('walltrack.user_agent', 'walltrack-web/1.0', false)"
    )
    lc.clone(conn, "risk", actor="ann")
    entry = audit.history(conn, "risk", limit=1)[0]
    assert (entry.source_ip, entry.user_agent) == ("203.0.113.7", "walltrack-web/1.0")
    conn.execute("RESET walltrack.user_agent; SET application_name = 'bot-7'")
    lc.clone(conn, "risk", actor="ann")
    assert audit.history(conn, "risk", limit=1)[0].user_agent == "bot-7"


def test_diff_lists_changed_fields_old_to_new():
    new = TradingConfig(base_position_pct=3, sizing_mode="fixed")
    assert diff(TradingConfig(), new) == [
        Change("base_position_pct", Decimal("2.00"), Decimal("3.00")),
        Change("sizing_mode", "risk_based", "fixed"),
    ]
    assert diff(new, new) == []
    with pytest.raises(TypeError):
        diff(TradingConfig(), RiskConfig())
