"""V11 under concurrency, on real connections and threads: commit-ordered rollback and history, no deadlocks."""

from __future__ import annotations

import contextlib
import random
import threading
import time

import psycopg
import pytest

from walltrack_config import audit, exchange
from walltrack_config import lifecycle as lc
from walltrack_config.errors import ConcurrentChange
from walltrack_config.migrate import plan as migrations
from walltrack_config.migrate import runner
from walltrack_config.models import DOMAINS

TABLES = [f"{d}_config" for d in DOMAINS]
# One integer setting per domain, with no upper bound in reach: each import gives it a value of its own.
FIELD = {
    "trading": "max_concurrent_positions",
    "scoring": "timing_decay_hours",
    "discovery": "run_interval_minutes",
    "cluster": "sync_time_window_minutes",
    "risk": "circuit_breaker_cooldown_minutes",
    "exit": "default_max_hold_hours",
    "api": "api_timeout_seconds",
}


def state(conn) -> tuple:
    """Every config row, the audit log and the activation log: what a refused call must leave as it was."""
    rows = {t: conn.execute(f"SELECT to_jsonb(t) FROM walltrack.{t} t ORDER BY id").fetchall() for t in TABLES}
    logs = conn.execute(
        "SELECT (SELECT count(*) FROM walltrack.config_audit_log), (SELECT count(*) FROM walltrack.config_activations)"
    ).fetchone()
    return rows, logs


def draft(conn, domain: str, **values) -> lc.ConfigRow:
    row = lc.clone(conn, domain, actor="setup")
    return lc.edit(conn, domain, row.id, row.version, values, actor="setup")


def activate_late(url: str) -> tuple[lc.ConfigRow, lc.ConfigRow, lc.ConfigRow]:
    """A live; T1 begins (its clock is fixed), T2 activates B and commits, then T1 activates C and commits.

    C's transaction started before B's, so C's row and B's archiving carry an earlier updated_at than
    B's activation: ordering by the transaction clock puts them in the wrong order. Returns A, B, C.
    """
    with psycopg.connect(url, autocommit=True) as conn, psycopg.connect(url) as t1:
        a = lc.active_row(conn, "risk")
        b = draft(conn, "risk", max_order_attempts=4)
        c = draft(conn, "risk", max_order_attempts=5)
        t1.execute("SELECT now()")  # T1 is in a transaction now; it has touched no config table yet
        time.sleep(0.01)
        lc.activate(conn, "risk", b.id, expected_version=b.version, actor="bob", reason="B")
        t1.execute("SELECT walltrack.activate_config('risk', %s, %s, 'carol', 'C')", [c.id, c.version])
        t1.commit()
        return a, lc.get(conn, "risk", b.id), lc.get(conn, "risk", c.id)


# -- rollback order (item 2) -------------------------------------------------------------------


def test_rollback_returns_to_the_row_live_just_before_even_when_the_later_activation_began_earlier(migrated_db):
    a, b, c = activate_late(migrated_db)
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        a = lc.get(conn, "risk", a.id)
        assert (a.status, b.status, c.status) == ("archived", "archived", "active")
        # The failure V9 had: by updated_at, A looks like the most recently archived row, and C older than B.
        assert c.updated_at < lc.last_activation(conn, "risk", b.id).activated_at
        assert max([a, b], key=lambda r: r.updated_at).id == a.id
        # By the activation sequence (commit order), B was live just before C.
        assert lc.last_activation(conn, "risk", b.id).seq < lc.last_activation(conn, "risk", c.id).seq
        assert lc.rollback_target(conn, "risk").id == b.id
        back = lc.rollback(conn, "risk", actor="dave", reason="undo C")
        assert back.id == b.id and back.status == "active"
        assert lc.active(conn, "risk").max_order_attempts == 4
        # And once more: C, the row live just before B came back, not A.
        assert lc.rollback(conn, "risk", actor="dave").id == c.id


def test_history_is_newest_first_in_commit_order_not_by_transaction_clock(migrated_db):
    a, b, c = activate_late(migrated_db)
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        entries = audit.history(conn, "risk", limit=4)
    assert [(e.action, e.config_id, e.performed_by) for e in entries] == [
        ("activate", c.id, "carol"),
        ("archive", b.id, "carol"),
        ("activate", b.id, "bob"),
        ("archive", a.id, "bob"),
    ]
    # C's entries come first although their performed_at (T1's clock) is earlier than B's.
    assert entries[0].performed_at < entries[2].performed_at
    assert entries[0].id > entries[2].id


def test_rollback_refuses_a_target_other_than_the_reviewed_one_and_writes_nothing(migrated_db):
    a, b, _ = activate_late(migrated_db)
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        before = state(conn)
        with pytest.raises(psycopg.Error) as err:
            conn.execute("SELECT walltrack.rollback_config('risk', 'dave', 'back to A', %s)", [a.id])
        assert err.value.sqlstate == "WT002", err.value
        assert "changed since you reviewed it" in str(err.value)
        assert state(conn) == before
        with pytest.raises(ConcurrentChange, match="changed since you reviewed it"):
            lc.rollback(conn, "risk", actor="dave", expected_id=a.id)
        assert state(conn) == before
        assert lc.rollback(conn, "risk", actor="dave", expected_id=b.id).id == b.id


def test_v11_records_the_activations_made_before_it_and_rollback_follows_them(db_at):
    url = db_at(10)
    with psycopg.connect(url, autocommit=True) as conn:
        a = conn.execute("SELECT id FROM walltrack.risk_config WHERE status = 'active'").fetchone()[0]
        made = []
        for attempts in (7, 8):  # two activations by plain SQL, each in its own transaction
            made.append(
                conn.execute(
                    "INSERT INTO walltrack.risk_config (name, max_order_attempts) VALUES (%s, %s) RETURNING id",
                    [f"v10 #{attempts}", attempts],
                ).fetchone()[0]
            )
            with conn.transaction():
                conn.execute("UPDATE walltrack.risk_config SET status = 'archived' WHERE status = 'active'")
                conn.execute("UPDATE walltrack.risk_config SET status = 'active' WHERE id = %s", [made[-1]])
        d1, d2 = made
        rows_before = {
            t: conn.execute(f"SELECT to_jsonb(t) FROM walltrack.{t} t ORDER BY id").fetchall() for t in TABLES
        }
        audit_before = conn.execute("SELECT count(*) FROM walltrack.config_audit_log").fetchone()[0]
        live = {
            t: dict(conn.execute(f"SELECT id, status::text FROM walltrack.{t} WHERE status IN ('active', 'archived')"))
            for t in TABLES
        }

        runner.migrate(conn, migrations.discover(), "tests")

        assert {
            t: conn.execute(f"SELECT to_jsonb(t) FROM walltrack.{t} t ORDER BY id").fetchall() for t in TABLES
        } == rows_before
        assert conn.execute("SELECT count(*) FROM walltrack.config_audit_log").fetchone()[0] == audit_before
        for table in TABLES:
            recorded = conn.execute(
                "SELECT config_id, seq FROM walltrack.config_activations WHERE config_table = %s ORDER BY seq", [table]
            ).fetchall()
            assert sorted(str(i) for i, _ in recorded) == sorted(str(i) for i in live[table]), table  # one row each
            assert live[table][recorded[-1][0]] == "active", table  # the active row has the highest seq
        order = [
            i
            for i, _ in conn.execute(
                "SELECT config_id, seq FROM walltrack.config_activations"
                " WHERE config_table = 'risk_config' ORDER BY seq"
            )
        ]
        assert order == [a, d1, d2]
        assert conn.execute("SELECT walltrack.rollback_config('risk', 'ops', 'after V11')").fetchone()[0] == d1
        assert conn.execute("SELECT walltrack.rollback_config('risk', 'ops', 'again')").fetchone()[0] == d2


# -- deadlocks (item 4) --------------------------------------------------------------------------


def test_racing_imports_of_every_domain_in_shuffled_orders_all_succeed(migrated_db):
    threads, rounds = 8, 3
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        seq0 = conn.execute("SELECT coalesce(max(seq), 0) FROM walltrack.config_activations").fetchone()[0]
        audit0 = conn.execute("SELECT coalesce(max(id), 0) FROM walltrack.config_audit_log").fetchone()[0]
    start = threading.Barrier(threads)
    failures: list[tuple] = []
    done: list[tuple] = []

    def run(t: int) -> None:
        rng = random.Random(t)
        try:
            with psycopg.connect(migrated_db, autocommit=True) as c:
                for r in range(rounds):
                    order = list(DOMAINS)
                    rng.shuffle(order)
                    document = {"domains": {d: {"settings": {FIELD[d]: 1000 + 10 * t + r}} for d in order}}
                    start.wait(timeout=30)
                    try:
                        # As `import --activate --yes` does: plan and apply under the write lock, nothing between.
                        with c.transaction():
                            lc.lock_writes(c)
                            rows = exchange.apply(
                                c, exchange.plan(c, document), actor=f"importer-{t}-{r}", activate=True
                            )
                        done.append((t, r, order, [row.domain for row in rows]))
                    except Exception as exc:
                        failures.append((t, r, order, repr(exc)))
        except Exception as exc:
            failures.append((t, None, None, repr(exc)))
            start.abort()

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert not any(w.is_alive() for w in workers)
    assert failures == []
    assert len(done) == threads * rounds
    assert all(order == applied for _, _, order, applied in done)
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        for table in TABLES:
            active = conn.execute(f"SELECT id FROM walltrack.{table} WHERE status = 'active'").fetchall()
            last = conn.execute(
                "SELECT config_id FROM walltrack.config_activations WHERE config_table = %s ORDER BY seq DESC LIMIT 1",
                [table],
            ).fetchone()
            assert active == [last], table  # one active row, and it is the last one activated
        activations = conn.execute(
            "SELECT config_table, config_id, performed_by, seq FROM walltrack.config_activations"
            " WHERE seq > %s ORDER BY seq",
            [seq0],
        ).fetchall()
        assert len(activations) == threads * rounds * len(DOMAINS)
        audited = conn.execute(
            "SELECT config_table, config_id, performed_by FROM walltrack.config_audit_log"
            " WHERE id > %s AND action = 'activate' ORDER BY id",
            [audit0],
        ).fetchall()
        assert audited == [row[:3] for row in activations]  # the two logs agree on the (commit) order
        by_import: dict[str, list[int]] = {}
        for _, _, actor, seq in activations:
            by_import.setdefault(actor, []).append(seq)
        # each import's seven activations are consecutive: the imports ran one after the other
        assert all(seqs == list(range(seqs[0], seqs[0] + len(DOMAINS))) for seqs in by_import.values())
        assert len(by_import) == threads * rounds


def test_plain_sql_editing_two_domains_in_opposite_orders_waits_instead_of_deadlocking(migrated_db):
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        risk = conn.execute("INSERT INTO walltrack.risk_config (name) VALUES ('r') RETURNING id").fetchone()[0]
        exit_ = conn.execute("INSERT INTO walltrack.exit_config (name) VALUES ('e') RETURNING id").fetchone()[0]
    statements = {
        "risk": ("UPDATE walltrack.risk_config SET max_order_attempts = %s WHERE id = %s", risk),
        "exit": ("UPDATE walltrack.exit_config SET stagnation_hours = %s WHERE id = %s", exit_),
    }
    between = threading.Barrier(2, timeout=1.0)
    pids: dict[int, int] = {}
    errors: list[str] = []
    committed: list[int] = []

    def edit(value: int, first: str, second: str) -> None:
        try:
            with psycopg.connect(migrated_db, options="-c statement_timeout=10s") as c:
                pids[value] = c.info.backend_pid
                c.execute(statements[first][0], [value, statements[first][1]])  # BEGIN, first domain
                # The other transaction may be waiting on the lock: then it cannot reach the barrier.
                with contextlib.suppress(threading.BrokenBarrierError):
                    between.wait()
                c.execute(statements[second][0], [value, statements[second][1]])
                c.commit()
                committed.append(value)
        except psycopg.Error as exc:
            errors.append(f"{exc.sqlstate}: {exc}")

    workers = [
        threading.Thread(target=edit, args=(11, "risk", "exit")),
        threading.Thread(target=edit, args=(22, "exit", "risk")),
    ]
    for w in workers:
        w.start()
    waits = set()
    with psycopg.connect(migrated_db, autocommit=True) as watcher:
        while any(w.is_alive() for w in workers):
            waits |= {
                row
                for row in watcher.execute(
                    "SELECT wait_event_type, wait_event FROM pg_stat_activity"
                    " WHERE pid = ANY(%s) AND wait_event_type = 'Lock'",
                    [list(pids.values())],
                )
            }
            time.sleep(0.02)
    for w in workers:
        w.join()
    assert errors == []  # no 40P01
    assert sorted(committed) == [11, 22]
    assert between.broken  # the two first statements never both ran: one transaction waited for the other
    # On V11's one lock (the row lock of trading's default row, held until the holder's transaction ends).
    assert waits and waits <= {("Lock", "transactionid"), ("Lock", "tuple")}
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        final = (
            conn.execute(
                "SELECT max_order_attempts, version FROM walltrack.risk_config WHERE id = %s", [risk]
            ).fetchone(),
            conn.execute(
                "SELECT stagnation_hours, version FROM walltrack.exit_config WHERE id = %s", [exit_]
            ).fetchone(),
        )
    # serialised: the transaction that committed last wrote both rows. (Which one that was, the threads cannot
    # tell: each appends to `committed` after its COMMIT returned, in whatever order the scheduler runs them.)
    assert final in {((11, 3), (11, 3)), ((22, 3), (22, 3))}
