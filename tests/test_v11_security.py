"""V11's guarantees against a real database role: the logs cannot be forged or jammed, search_path cannot be
hijacked, and V11/U11 round-trip, with psql too."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from conftest import Server, catalog, psql
from walltrack_config.migrate import plan as migrations
from walltrack_config.migrate import runner
from walltrack_config.models import DOMAINS

TABLES = [f"walltrack.{d}_config" for d in DOMAINS]
V11 = next(m for m in migrations.discover() if m.version == 11)
FAR = 9_000_000_000_000_000  # an id far ahead of the audit sequence


# -- roles ---------------------------------------------------------------------------------------


@pytest.fixture
def make_role(server: Server) -> Iterator[Callable[..., str]]:
    """New LOGIN roles (cluster-wide, so uniquely named); what they own or were granted goes with them."""
    made: list[tuple[str, list[str]]] = []

    def make(*db_urls: str, prefix: str = "wt_editor") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server.admin_url, autocommit=True) as c:
            c.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
        made.append((name, list(db_urls)))
        return name

    yield make
    for name, urls in made:
        role = sql.Identifier(name)
        for url in urls:
            for _ in range(20):
                try:
                    with psycopg.connect(url, autocommit=True) as c:
                        c.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(role))
                        c.execute(sql.SQL("DROP OWNED BY {}").format(role))
                    break
                except psycopg.OperationalError:
                    break  # the database is already gone, and the role's grants with it
                except psycopg.errors.InternalError_:
                    # A closed session's temporary objects are removed just after it ends: try again then.
                    time.sleep(0.05)
        with psycopg.connect(server.admin_url, autocommit=True) as c:
            c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(role))


def grant(conn, role: str, statement: str) -> None:
    conn.execute(sql.SQL(statement).format(role=sql.Identifier(role)))


def grant_editor(conn, role: str) -> None:
    """An editor of the config tables, and nothing else."""
    grant(conn, role, "GRANT USAGE ON SCHEMA walltrack TO {role}")
    grant(conn, role, f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(TABLES)} TO {{role}}")
    grant(conn, role, "GRANT SELECT ON walltrack.config_audit_log TO {role}")


def grant_too_much(conn, role: str) -> None:
    """What an administrator might grant by mistake, on the audit log and its id sequence."""
    grant(conn, role, "GRANT INSERT ON walltrack.config_audit_log TO {role}")
    grant(conn, role, "GRANT USAGE, UPDATE ON SEQUENCE walltrack.config_audit_log_id_seq TO {role}")


@pytest.fixture
def editor(migrated_db: str, make_role) -> str:
    """An editor role on the migrated database, granted too much on the audit log after V11."""
    role = make_role(migrated_db)
    with psycopg.connect(migrated_db, autocommit=True) as admin:
        grant_editor(admin, role)
        grant(admin, role, "GRANT SELECT ON walltrack.config_activations TO {role}")
        grant_too_much(admin, role)
    return role


def as_role(url: str, role: str) -> psycopg.Connection:
    return psycopg.connect(make_conninfo(url, user=role), autocommit=True)


def state(admin) -> tuple:
    """Every config row and both logs: what a refused statement must leave as it was.

    (Not the audit id sequence: a refused INSERT may use up an id, as any failed insert does; a gap, no row.)
    """
    rows = {t: admin.execute(f"SELECT to_jsonb(t) FROM {t} t ORDER BY id").fetchall() for t in TABLES}
    logs = admin.execute("SELECT to_jsonb(l) FROM walltrack.config_audit_log l ORDER BY id").fetchall()
    activations = admin.execute("SELECT to_jsonb(a) FROM walltrack.config_activations a ORDER BY seq").fetchall()
    return rows, logs, activations


def audit_sequence(admin) -> tuple:
    return admin.execute("SELECT last_value, is_called FROM walltrack.config_audit_log_id_seq").fetchone()


def refused(conn, admin, statement: str, params=None, sqlstate: str = "WT001", match: str = "") -> psycopg.Error:
    before = state(admin)
    with pytest.raises(psycopg.Error) as err, conn.transaction():
        conn.execute(statement, params)
    assert err.value.sqlstate == sqlstate, err.value
    assert match in str(err.value), err.value
    assert state(admin) == before
    return err.value


def owner_of_logs(admin) -> str:
    return admin.execute(
        "SELECT relowner::regrole::text FROM pg_class WHERE oid = 'walltrack.config_audit_log'::regclass"
    ).fetchone()[0]


FORGED_AUDIT = (
    "INSERT INTO walltrack.config_audit_log (config_table, config_id, action, performed_by)"
    " VALUES ('risk_config', gen_random_uuid(), 'activate', 'alice')"
)


# -- item 5: the audit log cannot be forged or jammed ------------------------------------------------


def test_an_editor_role_runs_the_lifecycle_and_each_log_row_names_the_actor_and_the_database_user(migrated_db, editor):
    with psycopg.connect(migrated_db, autocommit=True) as admin, as_role(migrated_db, editor) as ed:
        audit0 = admin.execute("SELECT coalesce(max(id), 0) FROM walltrack.config_audit_log").fetchone()[0]
        seq0 = admin.execute("SELECT coalesce(max(seq), 0) FROM walltrack.config_activations").fetchone()[0]
        a = ed.execute("SELECT id FROM walltrack.risk_config WHERE status = 'active'").fetchone()[0]
        with ed.transaction():  # plain SQL, the actor declared for the transaction
            ed.execute(
                "SELECT set_config('walltrack.actor', 'alice', true), set_config('walltrack.reason', 'by hand', true)"
            )
            d1 = ed.execute("INSERT INTO walltrack.risk_config (name) VALUES ('by alice') RETURNING id").fetchone()[0]
            ed.execute("UPDATE walltrack.risk_config SET max_order_attempts = 4 WHERE id = %s", [d1])
        d2 = ed.execute("SELECT walltrack.clone_config('risk', %s, NULL, 'bob', 'clone')", [a]).fetchone()[0]
        assert (
            ed.execute(
                "SELECT walltrack.edit_config('risk', %s, 1, %s, 'bob', 'edit')", [d2, Jsonb({"max_order_attempts": 6})]
            ).fetchone()[0]
            == 2
        )
        assert ed.execute("SELECT walltrack.activate_config('risk', %s, 2, 'bob', 'go')", [d2]).fetchone()[0] == d2
        with ed.transaction():
            ed.execute("SELECT set_config('walltrack.actor', 'alice', true)")
            ed.execute("UPDATE walltrack.risk_config SET status = 'archived' WHERE status = 'active'")
            ed.execute("UPDATE walltrack.risk_config SET status = 'active' WHERE id = %s", [d1])
        assert ed.execute("SELECT walltrack.rollback_config('risk', 'carol', 'undo')").fetchone()[0] == d2
        d3 = ed.execute("INSERT INTO walltrack.risk_config (name) VALUES ('nobody declared') RETURNING id").fetchone()[
            0
        ]
        ed.execute("DELETE FROM walltrack.risk_config WHERE id = %s", [d3])

        logged = admin.execute(
            "SELECT action, config_id, performed_by, db_user FROM walltrack.config_audit_log WHERE id > %s ORDER BY id",
            [audit0],
        ).fetchall()
        assert logged == [
            ("create", d1, "alice", editor),
            ("update", d1, "alice", editor),
            ("create", d2, "bob", editor),
            ("update", d2, "bob", editor),
            ("archive", a, "bob", editor),
            ("activate", d2, "bob", editor),
            ("archive", d2, "alice", editor),
            ("activate", d1, "alice", editor),
            ("archive", d1, "carol", editor),
            ("activate", d2, "carol", editor),
            ("create", d3, editor, editor),
            ("delete", d3, editor, editor),
        ]
        activations = admin.execute(
            "SELECT config_table, config_id, performed_by, db_user FROM walltrack.config_activations"
            " WHERE seq > %s ORDER BY seq",
            [seq0],
        ).fetchall()
        assert activations == [
            ("risk_config", d2, "bob", editor),
            ("risk_config", d1, "alice", editor),
            ("risk_config", d2, "carol", editor),
        ]


def test_nobody_inserts_into_the_audit_log_directly_not_even_with_a_grant_or_as_its_owner(migrated_db, editor):
    with psycopg.connect(migrated_db, autocommit=True) as admin, as_role(migrated_db, editor) as ed:
        assert admin.execute(
            "SELECT has_table_privilege(%s, 'walltrack.config_audit_log', 'INSERT')", [editor]
        ).fetchone()[0]
        refused(ed, admin, FORGED_AUDIT, match="written by the config tables' triggers only")
        refused(
            ed,
            admin,
            "SELECT set_config('walltrack.actor', 'alice', true);"
            f" {FORGED_AUDIT.replace('VALUES', 'SELECT * FROM (VALUES')}) AS v",
        )
        refused(admin, admin, FORGED_AUDIT, match="written by the config tables' triggers only")
        assert owner_of_logs(admin) == admin.execute("SELECT current_user").fetchone()[0]
        # nor from a trigger of the role's own (the depth is there, the log's owner is not)
        ed.execute("CREATE TEMP TABLE poke (x INT)")
        ed.execute(
            f"CREATE FUNCTION pg_temp.forge() RETURNS TRIGGER LANGUAGE plpgsql AS $$"
            f" BEGIN {FORGED_AUDIT}; RETURN NULL; END $$"
        )
        ed.execute("CREATE TRIGGER forge AFTER INSERT ON pg_temp.poke FOR EACH ROW EXECUTE FUNCTION pg_temp.forge()")
        refused(ed, admin, "INSERT INTO pg_temp.poke VALUES (1)", match="triggers only")


def test_a_forged_id_is_refused_and_the_log_keeps_its_numbering(migrated_db, editor):
    with psycopg.connect(migrated_db, autocommit=True) as admin, as_role(migrated_db, editor) as ed:
        forged = FORGED_AUDIT.replace("(config_table", "(id, config_table").replace("VALUES (", "VALUES (%s, ")
        nxt = admin.execute(
            "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM walltrack.config_audit_log_id_seq"
        ).fetchone()[0]
        for conn in (ed, admin):
            refused(conn, admin, forged, [FAR], match="triggers only")
            refused(conn, admin, forged, [nxt], match="triggers only")  # the very id the next change needs
        # no jam: the next change is recorded, with the id that was aimed at
        draft = ed.execute(
            "INSERT INTO walltrack.api_config (name) VALUES ('after the attempt') RETURNING id"
        ).fetchone()[0]
        assert admin.execute(
            "SELECT id, config_id, action FROM walltrack.config_audit_log ORDER BY id DESC LIMIT 1"
        ).fetchone() == (nxt, draft, "create")
        assert admin.execute("SELECT count(*) FROM walltrack.config_audit_log WHERE id >= %s", [FAR]).fetchone()[0] == 0


def test_v11_revokes_earlier_grants_to_write_the_log_or_move_its_sequence(db_at, make_role):
    url = db_at(10)
    role = make_role(url)
    with psycopg.connect(url, autocommit=True) as admin:
        grant_editor(admin, role)
        grant_too_much(admin, role)
        admin.execute("GRANT INSERT ON walltrack.config_audit_log TO PUBLIC")
        admin.execute("GRANT UPDATE ON SEQUENCE walltrack.config_audit_log_id_seq TO PUBLIC")
        privileges = (
            "SELECT has_table_privilege(%(r)s, 'walltrack.config_audit_log', 'INSERT'),"
            " has_sequence_privilege(%(r)s, 'walltrack.config_audit_log_id_seq', 'UPDATE'),"
            " has_sequence_privilege(%(r)s, 'walltrack.config_audit_log_id_seq', 'USAGE'),"
            " has_table_privilege(%(r)s, 'walltrack.config_audit_log', 'SELECT')"
        )
        assert admin.execute(privileges, {"r": role}).fetchone() == (True, True, True, True)

        runner.migrate(admin, migrations.discover(), "tests")

        assert admin.execute(privileges, {"r": role}).fetchone() == (False, False, False, True)
        assert admin.execute(privileges, {"r": "public"}).fetchone()[:3] == (False, False, False)
        with as_role(url, role) as ed:
            sequence = audit_sequence(admin)
            refused(ed, admin, "SELECT setval('walltrack.config_audit_log_id_seq', %s)", [FAR], sqlstate="42501")
            refused(ed, admin, "SELECT setval('walltrack.config_audit_log_id_seq', 1, false)", sqlstate="42501")
            refused(ed, admin, "SELECT nextval('walltrack.config_audit_log_id_seq')", sqlstate="42501")
            assert audit_sequence(admin) == sequence
            refused(ed, admin, FORGED_AUDIT, sqlstate="42501")
            # the editor still edits, and its change is logged
            ed.execute("INSERT INTO walltrack.exit_config (name) VALUES ('still works')")
        assert admin.execute(
            "SELECT action, db_user FROM walltrack.config_audit_log ORDER BY id DESC LIMIT 1"
        ).fetchone() == ("create", role)


def test_a_client_cannot_label_an_insert_a_restore_but_a_real_restore_is_one(migrated_db, editor):
    with psycopg.connect(migrated_db, autocommit=True) as admin, as_role(migrated_db, editor) as ed:

        def action_of_insert(values: str = "") -> str:
            with ed.transaction():
                ed.execute("SELECT set_config('walltrack.audit_action', 'restore', true)")
                row = ed.execute(
                    f"INSERT INTO walltrack.risk_config (name, status{values and ', max_order_attempts'})"
                    f" VALUES (%s, 'draft'{values and ', ' + values}) RETURNING id",
                    [f"x{uuid.uuid4().hex[:6]}"],
                ).fetchone()[0]
            return admin.execute(
                "SELECT action FROM walltrack.config_audit_log WHERE config_id = %s", [row]
            ).fetchone()[0]

        assert action_of_insert() == "create"
        old = admin.execute("SELECT id FROM walltrack.risk_config WHERE status = 'active'").fetchone()[0]
        new = ed.execute("SELECT walltrack.clone_config('risk', %s)", [old]).fetchone()[0]
        ed.execute("SELECT walltrack.edit_config('risk', %s, 1, '{\"max_order_attempts\": 7}')", [new])
        ed.execute("SELECT walltrack.activate_config('risk', %s, 2)", [new])
        assert action_of_insert("11") == "create"  # settings no archived row has
        restored = ed.execute(
            "SELECT walltrack.restore_config('risk', %s, 'Back again', 'alice', 'restore')", [old]
        ).fetchone()[0]
        assert admin.execute(
            "SELECT action, performed_by FROM walltrack.config_audit_log WHERE config_id = %s", [restored]
        ).fetchone() == ("restore", "alice")


def test_the_activation_log_is_append_only_and_written_by_its_trigger_only(migrated_db, editor):
    insert = (
        "INSERT INTO walltrack.config_activations (config_table, config_id, version, performed_by, db_user)"
        " SELECT 'risk_config', id, 1, 'mallory', 'mallory' FROM walltrack.risk_config WHERE status = 'default'"
    )
    with psycopg.connect(migrated_db, autocommit=True) as admin, as_role(migrated_db, editor) as ed:
        for statement, match in [
            (insert, "triggers only"),
            ("UPDATE walltrack.config_activations SET performed_by = 'mallory'", "append-only"),
            ("DELETE FROM walltrack.config_activations", "append-only"),
            ("TRUNCATE walltrack.config_activations", "append-only"),
        ]:
            refused(ed, admin, statement, sqlstate="42501")  # no privilege
            refused(admin, admin, statement, match=match)  # the owner: refused by the triggers
        grant(admin, editor, "GRANT INSERT, UPDATE, DELETE, TRUNCATE ON walltrack.config_activations TO {role}")
        refused(ed, admin, insert, match="triggers only")
        refused(ed, admin, "UPDATE walltrack.config_activations SET performed_by = 'mallory'", match="append-only")
        refused(ed, admin, "DELETE FROM walltrack.config_activations", match="append-only")
        refused(ed, admin, "TRUNCATE walltrack.config_activations", match="append-only")


def test_a_table_of_the_roles_own_cannot_borrow_the_log_writers(migrated_db, editor):
    """The log writers are SECURITY DEFINER and PUBLIC may EXECUTE them: a role must not hang them on a
    table of its own (a temp table is enough) to write log rows that no config change made."""
    with psycopg.connect(migrated_db, autocommit=True) as admin, as_role(migrated_db, editor) as ed:
        a = admin.execute("SELECT id FROM walltrack.risk_config WHERE status = 'active'").fetchone()[0]
        b = ed.execute("SELECT walltrack.clone_config('risk', %s, 'B')", [a]).fetchone()[0]
        ed.execute("SELECT walltrack.activate_config('risk', %s, 1)", [b])
        c = ed.execute("SELECT walltrack.clone_config('risk', %s, 'C')", [a]).fetchone()[0]
        ed.execute("SELECT walltrack.activate_config('risk', %s, 1)", [c])
        assert admin.execute("SELECT walltrack.config_rollback_target('risk')").fetchone()[0] == b
        before = state(admin)
        try:
            with ed.transaction():
                ed.execute("CREATE TEMP TABLE risk_config (id UUID, status TEXT, version INT, name TEXT)")
                ed.execute(
                    "CREATE TRIGGER a AFTER INSERT ON pg_temp.risk_config"
                    " FOR EACH ROW EXECUTE FUNCTION walltrack.audit_config_change()"
                )
                ed.execute(
                    "CREATE TRIGGER b AFTER UPDATE ON pg_temp.risk_config"
                    " FOR EACH ROW EXECUTE FUNCTION walltrack.record_config_activation()"
                )
                ed.execute("SELECT set_config('walltrack.actor', 'alice', true)")
                ed.execute("INSERT INTO pg_temp.risk_config VALUES (%s, 'active', 99, 'forged')", [a])
                ed.execute("UPDATE pg_temp.risk_config SET version = 100")
        except psycopg.Error:
            pass  # refused: what must happen, at any step
        forged_audit = admin.execute(
            "SELECT id, action, performed_by FROM walltrack.config_audit_log WHERE id > %s", [before[1][-1][0]["id"]]
        ).fetchall()
        forged_activations = admin.execute(
            "SELECT seq, config_id, version FROM walltrack.config_activations WHERE seq > %s", [before[2][-1][0]["seq"]]
        ).fetchall()
        assert forged_audit == [], "a role wrote audit rows through walltrack.audit_config_change on its own table"
        assert forged_activations == [], "a role wrote activations through walltrack.record_config_activation"
        assert admin.execute("SELECT walltrack.config_rollback_target('risk')").fetchone()[0] == b
        assert state(admin) == before


def test_the_restore_check_never_runs_a_roles_code_as_the_log_owner(migrated_db, editor):
    """audit_config_change runs as the log's owner and, for an insert labelled restore, queries the
    triggering relation: a role's own view there must not get its functions run with the owner's rights."""
    with psycopg.connect(migrated_db, autocommit=True) as admin, as_role(migrated_db, editor) as ed:
        owner = owner_of_logs(admin)
        before = state(admin)
        ed.execute("CREATE TEMP TABLE ran (run_as TEXT)")
        ed.execute("GRANT ALL ON pg_temp.ran TO PUBLIC")
        ed.execute(f"""CREATE FUNCTION pg_temp.payload() RETURNS TEXT LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO pg_temp.ran VALUES (current_user);
                INSERT INTO walltrack.config_audit_log (id, config_table, config_id, action, performed_by)
                VALUES ({FAR}, 'risk_config', gen_random_uuid(), 'activate', 'forged');
                RETURN 'archived';
            END $$""")
        ed.execute("CREATE TEMP VIEW risk_config AS SELECT NULL::uuid AS id, pg_temp.payload() AS status, 1 AS version")
        try:
            with ed.transaction():
                ed.execute(
                    "CREATE TRIGGER r INSTEAD OF INSERT ON pg_temp.risk_config"
                    " FOR EACH ROW EXECUTE FUNCTION walltrack.audit_config_change()"
                )
                ed.execute("SELECT set_config('walltrack.audit_action', 'restore', true)")
                ed.execute("INSERT INTO pg_temp.risk_config (id, status, version) VALUES (gen_random_uuid(), 'x', 1)")
        except psycopg.Error:
            pass  # refused: what must happen, at any step
        ran_as = [r for (r,) in ed.execute("SELECT run_as FROM pg_temp.ran")]
        assert owner not in ran_as, f"a role's function ran as the log owner {owner!r}"
        assert admin.execute("SELECT count(*) FROM walltrack.config_audit_log WHERE id >= %s", [FAR]).fetchone()[0] == 0
        assert state(admin) == before


# -- item 6: search_path -----------------------------------------------------------------------------


def test_every_walltrack_function_pins_its_search_path(conn):
    found = conn.execute("""SELECT p.oid::regprocedure::text,
                                   (SELECT c FROM unnest(p.proconfig) AS c WHERE c LIKE 'search_path=%%')
                            FROM pg_proc p WHERE p.pronamespace = 'walltrack'::regnamespace ORDER BY 1""").fetchall()
    assert len(found) > 20
    assert [name for name, setting in found if setting is None] == []
    assert {setting for _, setting in found} == {"search_path=pg_catalog, pg_temp"}


SHADOWS = {  # functions the transitions and triggers call unqualified, and a shadow of each
    "set_config": ("text, text, boolean", "text", "pg_catalog.set_config($1, $2, $3)"),
    "jsonb_typeof": ("jsonb", "text", "pg_catalog.jsonb_typeof($1)"),
    '"left"': ("text, integer", "text", 'pg_catalog."left"($1, $2)'),
    "now": ("", "timestamptz", "pg_catalog.now()"),
}


def test_a_shadowing_function_earlier_in_the_operators_search_path_never_runs(migrated_db, make_role):
    attacker = make_role(migrated_db, prefix="wt_evil")
    with psycopg.connect(migrated_db, autocommit=True) as op:
        grant(op, attacker, "CREATE SCHEMA evil AUTHORIZATION {role}")
        with as_role(migrated_db, attacker) as evil:
            evil.execute("CREATE TABLE evil.ran (fn TEXT, run_as TEXT)")
            evil.execute("GRANT USAGE ON SCHEMA evil TO PUBLIC; GRANT INSERT ON evil.ran TO PUBLIC")
            for name, (args, returns, call) in SHADOWS.items():
                evil.execute(f"""CREATE FUNCTION evil.{name}({args}) RETURNS {returns} LANGUAGE plpgsql AS $$
                    BEGIN INSERT INTO evil.ran VALUES ('{name}', current_user); RETURN {call}; END $$""")
        op.execute("SET search_path = evil, pg_catalog, public")
        # armed: in the operator's own statements the shadows win, and run as the operator
        op.execute("SELECT set_config('walltrack.probe', 'x', false), jsonb_typeof('{}'), left('abc', 1), now()")
        assert {fn for fn, _ in op.execute("SELECT * FROM evil.ran")} == set(SHADOWS)
        op.execute("DELETE FROM evil.ran")

        active = op.execute("SELECT id FROM walltrack.risk_config WHERE status = 'active'").fetchone()[0]
        draft = op.execute("SELECT walltrack.clone_config('risk', %s, NULL, 'op', 'why')", [active]).fetchone()[0]
        op.execute(
            "SELECT walltrack.edit_config('risk', %s, 1, %s, 'op', 'why')", [draft, Jsonb({"max_order_attempts": 9})]
        )
        op.execute("SELECT walltrack.activate_config('risk', %s, 2, 'op', 'why')", [draft])
        op.execute("SELECT walltrack.rollback_config('risk', 'op', 'why')")
        op.execute("SELECT walltrack.rollback_config('risk', 'op', 'why', %s)", [draft])
        again = op.execute("SELECT walltrack.restore_config('risk', %s, 'again', 'op', 'why')", [active]).fetchone()[0]
        op.execute("SELECT walltrack.discard_config('risk', %s, 'op', 'why')", [again])
        with op.transaction():
            plain = op.execute("INSERT INTO walltrack.exit_config (name) VALUES ('plain') RETURNING id").fetchone()[0]
            op.execute("UPDATE walltrack.exit_config SET stagnation_hours = 2 WHERE id = %s", [plain])
            op.execute("UPDATE walltrack.exit_config SET status = 'archived' WHERE status = 'active'")
            op.execute("UPDATE walltrack.exit_config SET status = 'active' WHERE id = %s", [plain])
        assert op.execute("SELECT status::text FROM walltrack.risk_config WHERE id = %s", [draft]).fetchone() == (
            "active",
        )
        assert op.execute("SELECT fn, run_as FROM evil.ran").fetchall() == []


# -- V11 / U11 -------------------------------------------------------------------------------------------


def config_rows(url: str) -> dict:
    with psycopg.connect(url) as conn:
        rows = {t: conn.execute(f"SELECT to_jsonb(t) FROM {t} t ORDER BY id").fetchall() for t in TABLES}
        rows["audit"] = conn.execute(
            "SELECT to_jsonb(l) - 'db_user' - 'db_client_addr' FROM walltrack.config_audit_log l ORDER BY id"
        ).fetchall()
        return rows


def test_u11_returns_the_database_to_v10_exactly_and_keeps_its_rows(db_at):
    url = db_at(10)
    with psycopg.connect(url, autocommit=True) as conn:
        draft = conn.execute("INSERT INTO walltrack.risk_config (name) VALUES ('before V11') RETURNING id").fetchone()[
            0
        ]
        with conn.transaction():
            conn.execute("UPDATE walltrack.risk_config SET status = 'archived' WHERE status = 'active'")
            conn.execute("UPDATE walltrack.risk_config SET status = 'active' WHERE id = %s", [draft])
    before, rows = catalog(url), config_rows(url)
    with psycopg.connect(url) as conn:
        conn.execute(V11.apply.sql)
    assert catalog(url) != before
    assert config_rows(url) == rows
    with psycopg.connect(url) as conn:
        conn.execute(V11.undo.sql)
    assert catalog(url) == before
    assert config_rows(url) == rows


def test_v11_and_u11_run_as_is_with_psql(db_at):
    binary = psql()
    if binary is None:
        pytest.skip("psql is not installed")
    url = db_at(10)
    before = catalog(url)
    for script in (V11.apply, V11.undo, V11.apply):
        done = subprocess.run(
            [binary, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(script.path), "-d", url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM walltrack.config_activations").fetchone()[0] == len(TABLES)
        assert conn.execute("SELECT proconfig FROM pg_proc WHERE oid = 'walltrack.config_actor'::regproc").fetchone()[
            0
        ] == ["search_path=pg_catalog, pg_temp"]
    done = subprocess.run(
        [binary, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(V11.undo.path), "-d", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert catalog(url) == before
