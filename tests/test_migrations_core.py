"""The runner's pure core, without a database: names, checksums, statements, history, plans."""

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from walltrack_config.errors import (
    ChecksumMismatch,
    MalformedMigrations,
    MissingUndo,
    NothingToUndo,
    OutOfOrderMigrations,
    UnknownAppliedMigrations,
)
from walltrack_config.migrate import plan as core
from walltrack_config.migrate.plan import Applied, HistoryRow

HERE = Path("/m")


def found(*versions: int, undo: bool = True) -> list[core.Migration]:
    texts = {f"V{v}__step_{v}.sql": f"SELECT {v};" for v in versions}
    if undo:
        texts |= {f"U{v}__step_{v}.sql": f"SELECT -{v};" for v in versions}
    return core.parse(HERE, texts)


def applied(migs: list[core.Migration], *versions: int) -> dict[int, Applied]:
    by = {m.version: m for m in migs}
    return {v: Applied(v, by[v].apply.checksum if v in by else "x", "me", None) for v in versions}


def test_versions_sort_numerically_not_as_text():
    assert [m.version for m in found(10, 9, 2, 1)] == [1, 2, 9, 10]


def test_description_and_undo_are_paired():
    (m,) = core.parse(HERE, {"V8__config_centralization.sql": "a", "U8__config_centralization.sql": "b"})
    assert (m.version, m.description, m.undo.sql) == (8, "config centralization", "b")


@pytest.mark.parametrize(
    "names, reason",
    [
        (["V1__a.sql", "V1__b.sql"], "duplicate version 1"),
        (["V1__a.sql", "V01__a.sql"], "duplicate version 1"),
        (["V2_oops.sql"], "not named"),
        (["Vx__a.sql"], "not named"),
        (["V1__has-dash.sql"], "not named"),
        (["V0__zero.sql"], "version 0 is reserved"),
        (["U3__lonely.sql"], "undo without V3"),
        (["V4__a.sql", "U4__b.sql"], "description differs"),
    ],
)
def test_malformed_folders_are_refused_whole(names, reason):
    with pytest.raises(MalformedMigrations) as err:
        core.parse(HERE, {n: "SELECT 1;" for n in names} | {"V9__fine.sql": "SELECT 1;"})
    assert reason in str(err.value)
    assert err.value.problems and all(p.path.parent == HERE for p in err.value.problems)


def test_discover_refuses_a_missing_folder(tmp_path):
    with pytest.raises(MalformedMigrations, match="no such folder"):
        core.discover(tmp_path / "nowhere")


def test_discover_ignores_files_that_are_not_sql(tmp_path):
    (tmp_path / "README.md").write_text("notes")
    (tmp_path / "V1__a.sql").write_text("SELECT 1;")
    assert [m.name for m in core.discover(tmp_path)] == ["V1__a.sql"]


def test_checksum_ignores_line_endings_but_not_content():
    assert core.checksum("a\r\nb\n") == core.checksum("a\nb\n")
    assert core.checksum("a\nb\n") != core.checksum("a\nc\n")


def test_statements_carry_their_first_line():
    sql = (
        "-- header; with a semicolon\n"  # 1
        "CREATE TABLE a (x int);\n"  # 2
        "\n"  # 3
        "DO $$\n"  # 4
        "BEGIN RAISE NOTICE 'a;b'; END\n"  # 5
        "$$;\n"  # 6
        "/* block ; */ SELECT 'it''s;';\n"  # 7
        "-- trailing comment only\n"  # 8
    )
    got = core.statements(sql)
    assert [s.line for s in got] == [2, 4, 7]
    assert got[0].sql.startswith("CREATE TABLE a")
    assert "CREATE TABLE a" in got[0].sql and "RAISE NOTICE 'a;b'" in got[1].sql and got[2].sql.endswith("'it''s;';")


def test_a_statement_opening_with_a_parenthesis_keeps_it():
    (got,) = core.statements("-- c\n(SELECT 1) UNION (SELECT 2);")
    assert (got.line, got.sql) == (2, "(SELECT 1) UNION (SELECT 2);")


def test_statements_keep_begin_atomic_bodies_whole_and_count_lines_in_characters():
    sql = (
        "-- é, ü: multi-byte text before the code\n"
        "CREATE FUNCTION f(x int) RETURNS int LANGUAGE sql\n"
        "BEGIN ATOMIC\n"
        "  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n"
        "  SELECT 'ü;';\n"
        "END;\n"
        "SELECT f(1);\n"
    )
    got = core.statements(sql)
    assert [s.line for s in got] == [2, 7]
    assert got[0].sql.endswith("END;") and "SELECT 'ü;';" in got[0].sql and got[1].sql == "SELECT f(1);"


@pytest.mark.parametrize("broken, line", [("SELECT 1;\nSELECT 'abc", 2), ("\n\nDO $$ BEGIN", 3), ("SELECT /* open", 1)])
def test_an_unterminated_string_or_comment_makes_the_folder_malformed(broken, line):
    with pytest.raises(MalformedMigrations, match=f"V1__a.sql: line {line}: unterminated"):
        core.parse(HERE, {"V1__a.sql": broken})


FRAGMENTS = st.sampled_from(
    [
        "SELECT 1",
        "SELECT 'a;b'",
        "SELECT 'it''s; ok'",
        'SELECT "odd;name" FROM t',
        "DO $$ BEGIN PERFORM 1; END $$",
        "DO $body$ SELECT ';' $body$",
        "SELECT E'\\\\;'",
        "CREATE TABLE t (x INT) -- trailing; comment\n",
        "SELECT /* inner; */ 2",
    ]
)
SEPARATORS = st.sampled_from(["\n", "\n\n", " ", "\n-- between; statements\n", "\n/* block; */\n"])


@given(st.lists(st.tuples(SEPARATORS, FRAGMENTS), min_size=1, max_size=8))
def test_statements_recover_exactly_what_was_joined(parts):
    script, expected = "", []
    for separator, fragment in parts:
        script += separator
        expected.append((script.count("\n") + 1, fragment + ";"))
        script += fragment + ";"
    assert [(s.line, s.sql) for s in core.statements(script)] == expected


def test_shipped_migrations_parse_and_pair():
    shipped = core.discover()
    assert [(m.version, m.undo is not None) for m in shipped][:1] == [(8, True)]


def test_replay_follows_apply_undo_accept_and_skips_failures():
    rows = [
        HistoryRow(1, "apply", "c1"),
        HistoryRow(2, "apply", "c2"),
        HistoryRow(3, "apply", "bad", success=False),
        HistoryRow(2, "undo", "u2"),
        HistoryRow(1, "accept", "c1b"),
    ]
    assert {v: a.checksum for v, a in core.replay(rows).items()} == {1: "c1b"}


@given(st.lists(st.tuples(st.integers(1, 6), st.booleans()), max_size=40))
def test_replay_matches_a_set_model(ops):
    model: set[int] = set()
    rows = []
    for version, is_apply in ops:
        rows.append(HistoryRow(version, "apply" if is_apply else "undo", f"c{version}"))
        (model.add if is_apply else model.discard)(version)
    assert set(core.replay(rows)) == model


def test_plan_migrate_returns_pending_in_order():
    migs = found(1, 2, 10)
    assert [m.version for m in core.plan_migrate(migs, applied(migs, 1))] == [2, 10]
    assert core.plan_migrate(migs, applied(migs, 1, 2, 10)) == []


def test_plan_migrate_refuses_drift_unknown_and_out_of_order():
    migs = found(1, 2, 3)
    drift = applied(migs, 1) | {1: Applied(1, "other", "me", None)}
    with pytest.raises(ChecksumMismatch) as err:
        core.plan_migrate(migs, drift)
    assert err.value.versions == [1]
    with pytest.raises(UnknownAppliedMigrations) as err:
        core.plan_migrate(migs, applied(migs, 1, 7))
    assert err.value.versions == [7]
    with pytest.raises(OutOfOrderMigrations) as err:
        core.plan_migrate(migs, applied(migs, 1, 3))
    assert (err.value.versions, err.value.latest) == ([2], 3)


def test_plan_undo_latest_to_and_all():
    migs = found(1, 2, 10)
    done = applied(migs, 1, 2, 10)
    assert [m.version for m in core.plan_undo(migs, done)] == [10]
    assert [m.version for m in core.plan_undo(migs, done, to=1)] == [10, 2]
    assert [m.version for m in core.plan_undo(migs, done, to=0)] == [10, 2, 1]
    with pytest.raises(NothingToUndo):
        core.plan_undo(migs, {})
    with pytest.raises(NothingToUndo):
        core.plan_undo(migs, done, to=10)


def test_plan_undo_refuses_a_migration_without_undo_file():
    migs = found(1, undo=False)
    with pytest.raises(MissingUndo) as err:
        core.plan_undo(migs, applied(migs, 1))
    assert err.value.expected == "U1__step_1.sql"


def test_status_names_every_state():
    migs = found(1, 2, 3)
    done = applied(migs, 1, 2, 9) | {2: Applied(2, "old", "me", None)}
    assert [(r.version, r.state) for r in core.status(migs, done)] == [
        (1, "applied"),
        (2, "changed"),
        (3, "pending"),
        (9, "missing"),
    ]


TABLES = st.dictionaries(
    st.tuples(st.sampled_from(["public", "walltrack"]), st.sampled_from(["a", "b", "c", "d"])),
    st.sets(st.sampled_from(["id", "x", "y", "z"])),
    max_size=6,
)


@given(TABLES, st.data())
def test_vanished_lists_dropped_tables_then_dropped_columns_of_the_tables_that_stay(before, data):
    kept = {
        t: data.draw(st.sets(st.sampled_from(sorted(cols)))) if cols else set()
        for t, cols in before.items()
        if data.draw(st.booleans())
    }

    def relations(tables):
        return [(s, t, None) for s, t in tables] + [(s, t, c) for (s, t), cols in tables.items() for c in cols]

    tables, columns = core.vanished(relations(before), relations(kept))
    assert tables == sorted((s, t, None) for s, t in set(before) - set(kept))
    assert columns == sorted((s, t, c) for (s, t), cols in kept.items() for c in before[(s, t)] - cols)


def test_vanished_ignores_what_is_new():
    assert core.vanished([("p", "a", None)], [("p", "a", None), ("p", "a", "x"), ("p", "b", None)]) == ([], [])
