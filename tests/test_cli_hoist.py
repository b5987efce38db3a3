"""Global options after the command, without a database: `hoist_global_options` is pure."""

from __future__ import annotations

import typer
from hypothesis import given
from hypothesis import strategies as st

from walltrack_config.cli.app import app
from walltrack_config.cli.main import _value_options, hoist_global_options

# What the real command tree says takes a value, plus a two-value option to keep arity honest.
VALUED = {"--reason": 1, "--name": 1, "--output": 1, "-o": 1, "--migrations-dir": 1, "--pair": 2}


def hoist(*argv: str) -> list[str]:
    return hoist_global_options(list(argv), VALUED)


def test_global_options_after_the_command_move_before_it_in_order():
    assert hoist("show", "risk", "--json") == ["--json", "show", "risk"]
    assert hoist("db", "status", "--json", "--database-url", "u") == ["--json", "--database-url", "u", "db", "status"]
    assert hoist("--actor", "a", "set", "risk", "x=1", "--actor=b", "--reason", "r") == [
        "--actor",
        "a",
        "--actor=b",
        "set",
        "risk",
        "x=1",
        "--reason",
        "r",
    ]
    assert hoist("db", "--migrations-dir", "m", "migrate", "--database-url=postgresql://h/d") == [
        "--database-url=postgresql://h/d",
        "db",
        "--migrations-dir",
        "m",
        "migrate",
    ]


def test_values_of_other_options_arguments_and_what_follows_double_dash_stay():
    assert hoist("draft", "risk", "--name", "--json") == ["draft", "risk", "--name", "--json"]
    assert hoist("export", "-o", "--json", "--json") == ["--json", "export", "-o", "--json"]
    assert hoist("export", "-yo", "--json") == ["export", "-yo", "--json"]  # -o, last of a cluster, takes the next
    assert hoist("export", "-o--json") == ["export", "-o--json"]
    assert hoist("x", "--pair", "--json", "--actor", "--json") == ["--json", "x", "--pair", "--json", "--actor"]
    assert hoist("set", "risk", "name=--json", "description=--actor") == [
        "set",
        "risk",
        "name=--json",
        "description=--actor",
    ]
    assert hoist("set", "risk", "--", "--json") == ["set", "risk", "--", "--json"]
    assert hoist("show", "risk", "--reason=--json") == ["show", "risk", "--reason=--json"]


def test_nothing_moves_without_a_command_and_a_global_missing_its_value_stays_for_click_to_report():
    assert hoist() == []
    assert hoist("--json", "--actor", "a") == ["--json", "--actor", "a"]
    assert hoist("--", "show", "--json") == ["--", "show", "--json"]
    assert hoist("show", "risk", "--actor") == ["show", "risk", "--actor"]
    assert hoist("--database-url", "show", "--json") == ["--database-url", "show", "--json"]  # 'show' is the URL


def test_the_command_tree_names_its_valued_options():
    found = _value_options(typer.main.get_command(app))
    assert found["--database-url"] == found["--actor"] == found["--migrations-dir"] == found["--to"] == 1
    assert found["--lock-timeout"] == 1 and found["-o"] == 1
    assert not {"--json", "--yes", "-y", "--help", "--version", "--accept"} & set(found)


# A generated command line: (tokens, is it a global option?) items around a command word, then maybe `--`.
TEXT = st.text(alphabet=st.sampled_from(list("ab=-- jo")), max_size=8) | st.sampled_from(
    ["--json", "--actor", "--database-url", "--", "-", "-y", "--reason", "--actor=x", ""]
)
WORD = TEXT.filter(lambda t: not t.startswith("-"))
GLOBAL = st.one_of(
    st.just(["--json"]),
    st.tuples(st.sampled_from(["--actor", "--database-url"]), TEXT).map(list),
    st.tuples(st.sampled_from(["--actor=", "--database-url="]), TEXT).map(lambda p: [p[0] + p[1]]),
)
OTHER = st.one_of(
    st.tuples(st.sampled_from(["--reason", "--name", "-o", "-yo"]), TEXT).map(list),
    st.tuples(st.just("--pair"), TEXT, TEXT).map(list),
    st.sampled_from([["--yes"], ["-y"], ["--accept"], ["--reason=--json"]]),
    WORD.map(lambda w: [w]),
)
ITEM = st.one_of(GLOBAL.map(lambda t: (t, True)), OTHER.map(lambda t: (t, False)))


@given(
    before=st.lists(GLOBAL, max_size=3),
    command=st.sampled_from(["show", "db", "set", "export", "a=b"]),
    items=st.lists(ITEM, max_size=8),
    tail=st.none() | st.lists(TEXT, max_size=4),
)
def test_hoisting_moves_exactly_the_global_options_and_keeps_everything_else(before, command, items, tail):
    argv = [t for g in before for t in g] + [command] + [t for item, _ in items for t in item]
    argv += ["--", *tail] if tail is not None else []
    moved = [t for item, is_global in items if is_global for t in item]
    kept = [t for item, is_global in items if not is_global for t in item]
    expected = [t for g in before for t in g] + moved + [command] + kept + (["--", *tail] if tail is not None else [])
    assert hoist(*argv) == expected
    assert hoist(*expected) == expected  # once in front, they stay: hoisting twice changes nothing
