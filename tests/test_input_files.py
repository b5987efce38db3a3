"""Input that used to change values silently or end in a traceback: repeated keys, import files with many
problems, text that is not UTF-8, deep nesting and oversized input. Each is refused in one place, with
a message naming what is wrong, and nothing is written."""

from __future__ import annotations

import codecs
import json
import os
import sys
from pathlib import Path

import psycopg
import pytest
import yaml

from conftest import run_cli
from test_cli import assert_one_line_error
from walltrack_config import exchange, models
from walltrack_config.cli import config as cli_config
from walltrack_config.errors import InvalidFile, InvalidImport, InvalidValue, RepeatedSetting

DEEP = 20_000


@pytest.fixture
def wtc(migrated_db, tmp_path):
    """walltrack-config against this test's database; kept edits land in tmp_path, not /tmp."""

    def run(*args: str, input: str = "", env: dict[str, str] | None = None):
        return run_cli(
            "--database-url",
            migrated_db,
            "--actor",
            "ops",
            *args,
            input=input,
            env={"TMPDIR": str(tmp_path)} | (env or {}),
        )

    run.url = migrated_db
    return run


def everything(url: str) -> tuple:
    """Every row of the seven config tables and the audit log's size: equal before and after = nothing written."""
    with psycopg.connect(url) as conn:
        rows = {
            d: conn.execute(f"SELECT to_jsonb(t) FROM walltrack.{m.table} t ORDER BY id").fetchall()
            for d, m in models.MODELS.items()
        }
        audit = conn.execute("SELECT count(*) FROM walltrack.config_audit_log").fetchone()[0]
    return rows, audit


def no_traceback(done) -> None:
    assert "Traceback" not in done.stdout + done.stderr


def new_draft(wtc, domain: str = "risk") -> dict:
    done = wtc("--json", "draft", domain)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def deep_tiers(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


# -- reading text: pure functions ----------------------------------------------------------------


def test_loads_refuses_a_key_given_twice_with_its_line():
    text = "domains:\n  risk:\n    settings:\n      max_order_attempts: 4\n      max_order_attempts: 5\n"
    with pytest.raises(InvalidFile) as caught:
        exchange.loads(text, "f.yaml")
    assert (caught.value.line, caught.value.reason) == (5, "max_order_attempts given twice (first on line 4)")
    assert str(caught.value) == "f.yaml:5: max_order_attempts given twice (first on line 4)"
    with pytest.raises(InvalidFile, match=r"^f.json:3: risk given twice \(first on line 2\)$"):
        exchange.loads('{"domains": {\n "risk": {"settings": {}},\n "risk": {"settings": {}}}}', "f.json")
    # the same key in different mappings is no repetition
    assert exchange.loads("a: {x: 1}\nb: {x: 2}\n") == {"a": {"x": 1}, "b": {"x": 2}}


def test_loads_still_reads_json_including_tab_indented():
    document = {"domains": {"risk": {"settings": {"max_order_attempts": 5, "tiers": [{"a": 1.5}]}}}}
    assert exchange.loads(json.dumps(document, indent=2)) == document
    assert exchange.loads(json.dumps(document, indent="\t")) == document
    assert exchange.loads("\ufeff" + json.dumps(document)) == document


def test_loads_refuses_deep_nesting_and_aliases():
    for text in ("x: " + deep_tiers(), '{"x": ' + deep_tiers() + "}", "x: " + "{a: " * DEEP + "1" + "}" * DEEP):
        with pytest.raises(InvalidFile, match=rf"nested too deeply \(more than {exchange.MAX_DEPTH} levels\)"):
            exchange.loads(text, "deep.yaml")
    assert exchange.loads("x: " + deep_tiers(exchange.MAX_DEPTH - 1)) is not None  # the limit is not the norm
    # a chain of aliases can stand for far more, and far deeper, than the file holds
    with pytest.raises(InvalidFile, match=r"^a.yaml:2: uses an alias"):
        exchange.loads("a: &a [1, 2]\nb: [*a, *a]\n", "a.yaml")


def test_dumps_writes_shared_values_out_so_an_export_always_imports():
    shared = [{"threshold_pct": 5, "size_reduction_pct": 0}]
    text = exchange.dumps({"a": shared, "b": shared})
    assert "*" not in text and exchange.loads(text) == {"a": shared, "b": shared}


def test_loads_refuses_text_over_the_size_limit():
    with pytest.raises(InvalidFile, match=r"too large: 1,048,577 bytes, and the limit is 1 MiB"):
        exchange.loads("#" * (exchange.MAX_FILE_BYTES + 1), "big.yaml")


def test_read_text_takes_utf8_with_or_without_bom_and_nothing_else():
    assert exchange.read_text("a: é\n".encode(), "f") == "a: é\n"
    assert exchange.read_text(codecs.BOM_UTF8 + "a: é\n".encode(), "f") == "a: é\n"
    for encoding in ("utf-16", "utf-16-le", "utf-16-be"):
        with pytest.raises(InvalidFile) as caught:
            exchange.read_text("a: é\n".encode(encoding), "f.yaml")
        assert str(caught.value) == "f.yaml: not UTF-8 text (it looks like UTF-16; save it as UTF-8)"
    with pytest.raises(InvalidFile, match=r"it looks like UTF-32"):
        exchange.read_text("a: 1\n".encode("utf-32"), "f.yaml")
    with pytest.raises(InvalidFile) as caught:
        exchange.read_text("a: 1\nb: café\n".encode("latin-1"), "f.yaml")
    assert str(caught.value) == "f.yaml:2: not UTF-8 text (byte 0xe9 is not UTF-8; save it as UTF-8)"


def test_read_text_size_limit_is_exact():
    assert len(exchange.read_text(b"#" * exchange.MAX_FILE_BYTES, "f")) == exchange.MAX_FILE_BYTES
    with pytest.raises(InvalidFile, match=r"^f: too large: 1,048,577 bytes, and the limit is 1 MiB$"):
        exchange.read_text(b"#" * (exchange.MAX_FILE_BYTES + 1), "f")
    with pytest.raises(InvalidFile, match=r"too large: 5,000,000 bytes"):  # the real size, when the read stopped early
        exchange.read_text(b"#" * (exchange.MAX_FILE_BYTES + 1), "f", size=5_000_000)


def test_json_depth_counts_brackets_outside_strings():
    assert exchange.json_depth(deep_tiers()) == DEEP
    assert exchange.json_depth('[{"a": "[[[\\"{{", "b": [1]}]') == 3
    assert exchange.json_depth("5") == 0


# -- set: parsing the command line ---------------------------------------------------------------


def test_parse_assignments_refuses_a_key_given_twice():
    with pytest.raises(RepeatedSetting, match=r"^max_order_attempts given twice"):
        cli_config.parse_assignments(["max_order_attempts=4", "max_order_attempts=5"], models.RiskConfig)
    with pytest.raises(RepeatedSetting):  # spaces around the key do not make it another key
        cli_config.parse_assignments(["name=a", " name =b"], models.RiskConfig)


def test_parse_assignments_refuses_oversized_deep_or_undecodable_values():
    limit = exchange.MAX_VALUE_BYTES
    assert cli_config.parse_assignments([f"name={'n' * limit}"], models.RiskConfig)["name"] == "n" * limit
    with pytest.raises(InvalidValue, match=r"name: too large: 65,537 bytes, and the limit is 64 KiB"):
        cli_config.parse_assignments([f"name={'n' * (limit + 1)}"], models.RiskConfig)
    with pytest.raises(InvalidValue, match=r"drawdown_reduction_tiers: nested too deeply"):
        cli_config.parse_assignments([f"drawdown_reduction_tiers={deep_tiers()}"], models.TradingConfig)
    with pytest.raises(InvalidValue, match=r"name: not UTF-8 text"):
        cli_config.parse_assignments([os.fsdecode(b"name=caf\xe9")], models.RiskConfig)


# -- through the installed command line -----------------------------------------------------------


def test_set_refuses_a_key_given_twice_and_writes_nothing(wtc):
    new_draft(wtc)
    before = everything(wtc.url)
    done = wtc("set", "risk", "max_order_attempts=4", "max_order_attempts=5")
    assert_one_line_error(done, 1, "max_order_attempts given twice")
    assert everything(wtc.url) == before


def test_set_refuses_deep_oversized_and_undecodable_values_in_one_line(wtc):
    new_draft(wtc, "trading")
    before = everything(wtc.url)
    deep = wtc("set", "trading", f"drawdown_reduction_tiers={deep_tiers()}")
    assert_one_line_error(deep, 1, "drawdown_reduction_tiers", "nested too deeply")
    big = wtc("set", "trading", f"name={'n' * (exchange.MAX_VALUE_BYTES + 1)}")
    assert_one_line_error(big, 1, "name", "too large", "64 KiB")
    latin = wtc("set", "trading", os.fsdecode(b"name=caf\xe9"))
    assert_one_line_error(latin, 1, "name", "not UTF-8 text")
    for done in (deep, big, latin):
        no_traceback(done)
    assert everything(wtc.url) == before


def test_import_refuses_a_key_given_twice_in_yaml_or_json(wtc, tmp_path):
    before = everything(wtc.url)
    file = tmp_path / "twice.yaml"
    file.write_text("domains:\n  risk:\n    settings:\n      max_order_attempts: 4\n      max_order_attempts: 5\n")
    assert_one_line_error(wtc("import", str(file)), 1, f"{file}:5:", "max_order_attempts given twice")
    file = tmp_path / "twice.json"
    file.write_text('{"domains": {"risk": {"settings": {\n  "max_order_attempts": 4,\n  "max_order_attempts": 5}}}}')
    assert_one_line_error(wtc("import", str(file)), 1, f"{file}:3:", "max_order_attempts given twice")
    assert everything(wtc.url) == before


def test_import_reports_every_problem_at_once_and_writes_nothing(wtc, tmp_path):
    file = tmp_path / "many.yaml"
    file.write_text(
        "domains:\n"
        "  risk:\n"
        "    settings:\n"
        "      max_drawdown_pct: 150\n"  # out of range
        "      max_order_atempts: 5\n"  # misspelt
        "      retry_delay_base_seconds: soon\n"  # not a number
        "  scoring:\n"
        "    settings:\n"
        "      wallet_score_weight: 0.9\n"  # the weights no longer sum to 1
        "  riskk:\n"  # no such domain
        "    settings: {}\n"
        "  trading:\n"
        "    settings: [1, 2]\n"  # settings not a mapping
        "  exit:\n"
        "    name: No settings here\n"  # settings missing
        "  cluster:\n"
        "    settings:\n"
        "      min_cluster_size: 4\n"
    )  # valid: still not written
    before = everything(wtc.url)
    done = wtc("import", str(file), "--activate", "--yes")
    assert done.returncode == 1, done.stderr
    no_traceback(done)
    lines = done.stderr.strip().splitlines()
    assert lines[0] == f"error: {file}: 7 problems"
    expected = [  # each problem on its own line: how it starts, and what else it says
        ("risk.max_order_atempts: unknown field; did you mean max_order_attempts?",),
        ("risk.max_drawdown_pct: Input should be less than or equal to 100",),
        ("risk.retry_delay_base_seconds: Input should be a valid integer",),
        (
            "scoring.wallet_score_weight, timing_score_weight, market_score_weight, cluster_score_weight: "
            "must sum to 1 (±0.001), not 1.6",
            "(rule chk_score_weights_sum)",
        ),
        ("domains: unknown domain 'riskk'; did you mean risk?",),
        ("trading: needs a 'settings:' mapping of setting: value, not list [1, 2]",),
        ("exit: needs a 'settings:' mapping of setting: value",),
    ]
    for start, *rest in expected:
        found = [line.strip() for line in lines[1:] if line.strip().startswith(start)]
        assert len(found) == 1 and all(r in found[0] for r in rest), (start, lines)
    assert everything(wtc.url) == before


def test_plan_collects_problems_as_data(conn):
    document = {
        "domains": {
            "risk": {"settings": {"max_drawdown_pct": 150, "nope": 1}, "name": 7},
            "trading": {"settings": {"drawdown_reduction_tiers": [{"threshold_pct": -1, "size_reduction_pct": 0}]}},
        }
    }
    with pytest.raises(InvalidImport) as caught:
        exchange.plan(conn, document, "f.yaml")
    assert caught.value.fields == [
        "risk.name",
        "risk.nope",
        "risk.max_drawdown_pct",
        "trading.drawdown_reduction_tiers.0.threshold_pct",
    ]
    assert caught.value.exit_code == 1 and str(caught.value).startswith("f.yaml: 4 problems\n  risk.name: must be text")
    one = {"domains": {"risk": {"settings": {"max_drawdown_pct": 150}}}}
    with pytest.raises(InvalidImport, match=r"^f.yaml: risk.max_drawdown_pct: Input should be less"):
        exchange.plan(conn, one, "f.yaml")  # one problem: one line


def _write_import(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_import_refuses_unreadable_deep_or_huge_files_in_one_line(wtc, tmp_path):
    export = wtc("export", "risk")
    assert export.returncode == 0, export.stderr
    text = export.stdout.replace("max_order_attempts: 3", "max_order_attempts: 5")
    cases = {
        "utf16.yaml": (text.encode("utf-16"), "not UTF-8 text (it looks like UTF-16; save it as UTF-8)"),
        "utf16le.yaml": (text.encode("utf-16-le"), "not UTF-8 text (it looks like UTF-16; save it as UTF-8)"),
        "latin1.yaml": (
            text.replace("Active Configuration", "Configuración").encode("latin-1"),
            "not UTF-8 text (byte 0xf3 is not UTF-8; save it as UTF-8)",
        ),
        "deep.yaml": (
            f"domains:\n  trading:\n    settings:\n      drawdown_reduction_tiers: {deep_tiers()}\n".encode(),
            f"nested too deeply (more than {exchange.MAX_DEPTH} levels)",
        ),
        "deep.json": (
            json.dumps({"domains": {"trading": {"settings": {"drawdown_reduction_tiers": "X"}}}})
            .replace('"X"', deep_tiers())
            .encode(),
            "nested too deeply",
        ),
        "huge.yaml": (text.encode() + b"#" * exchange.MAX_FILE_BYTES, "too large"),
    }
    before = everything(wtc.url)
    for name, (data, reason) in cases.items():
        done = wtc("import", str(_write_import(tmp_path / name, data)), "--activate", "--yes")
        assert_one_line_error(done, 1, str(tmp_path / name), reason)
        no_traceback(done)
    huge = wtc("import", str(tmp_path / "huge.yaml"))
    assert f"{len(cases['huge.yaml'][0]):,} bytes, and the limit is 1 MiB" in huge.stderr
    assert everything(wtc.url) == before


def test_import_accepts_a_utf8_bom(wtc, tmp_path):
    text = wtc("export", "risk").stdout.replace("max_order_attempts: 3", "max_order_attempts: 5")
    file = _write_import(tmp_path / "bom.yaml", codecs.BOM_UTF8 + text.encode())
    done = wtc("--json", "import", str(file))
    assert done.returncode == 0, done.stderr
    assert [r["max_order_attempts"] for r in json.loads(done.stdout)] == [5]


def _editor_writing(tmp_path: Path, data: bytes) -> str:
    """A scripted $EDITOR that saves these bytes over whatever it was given, every time."""
    payload = tmp_path / "payload"
    payload.write_bytes(data)
    script = tmp_path / "write_editor.py"
    script.write_text(
        f"import sys, pathlib\npathlib.Path(sys.argv[1]).write_bytes(pathlib.Path({str(payload)!r}).read_bytes())\n"
    )
    return f"{sys.executable} {script}"


def _error_lines(done) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("error:")]


def test_edit_refuses_a_key_given_twice(wtc, tmp_path):
    new_draft(wtc)
    before = everything(wtc.url)
    editor = _editor_writing(tmp_path, b"max_order_attempts: 4\nmax_order_attempts: 5\n")
    done = wtc("edit", "risk", env={"EDITOR": editor})
    assert done.returncode == 1, done.stderr
    no_traceback(done)
    assert _error_lines(done) == ["error: the edited draft:2: max_order_attempts given twice (first on line 1)"]
    assert everything(wtc.url) == before


def test_edit_refuses_deep_or_non_utf8_saves_in_one_line(wtc, tmp_path):
    new_draft(wtc, "trading")
    before = everything(wtc.url)
    saves = {
        "deep": (f"drawdown_reduction_tiers: {deep_tiers()}\n".encode(), "nested too deeply"),
        "utf16": ("max_concurrent_positions: 6\n".encode("utf-16"), "not UTF-8 text (it looks like UTF-16"),
        "latin1": ("name: Configuración\n".encode("latin-1"), "not UTF-8 text (byte 0xf3"),
    }
    for name, (data, reason) in saves.items():
        folder = tmp_path / name
        folder.mkdir()
        done = wtc("edit", "trading", env={"EDITOR": _editor_writing(folder, data)})
        assert done.returncode == 1, (name, done.stderr)
        no_traceback(done)
        errors = _error_lines(done)
        assert len(errors) == 1 and "the edited draft" in errors[0] and reason in errors[0], (name, done.stderr)
    assert everything(wtc.url) == before


def test_an_exported_file_with_every_domain_still_imports(wtc, tmp_path):
    """The stricter reader takes what export writes, in both formats."""
    for fmt in ("yaml", "json"):
        file = tmp_path / f"all.{fmt}"
        assert wtc("export", "--format", fmt, "-o", str(file)).returncode == 0
        assert_one_line_error(wtc("import", str(file)), 1, "nothing to import")
        assert set(yaml.safe_load(file.read_text())["domains"]) == set(models.DOMAINS)


# -- names in import files: checked with every other problem, before anything is shown -------------


def test_plan_reports_every_bad_name_with_the_other_problems(conn):
    document = {
        "domains": {
            "risk": {"name": "   ", "settings": {"max_order_attempts": 5}},
            "trading": {"name": "Night\x1b[2J", "settings": {"max_concurrent_positions": 6}},
            "scoring": {"name": "n" * (models.NAME_LENGTH + 1), "settings": {"wallet_score_weight": 0.9}},
            "cluster": {"name": "", "settings": {"min_cluster_size": 4}},
            "exit": {"name": "Fine name", "description": "two\nlines\tare text", "settings": {}},
        }
    }
    with pytest.raises(InvalidImport) as caught:
        exchange.plan(conn, document, "f.yaml")
    weights = "scoring.wallet_score_weight, timing_score_weight, market_score_weight, cluster_score_weight"
    assert caught.value.fields == ["risk.name", "trading.name", "scoring.name", weights, "cluster.name"]
    messages = {p.field: p.message for p in caught.value.problems}
    assert messages["risk.name"] == messages["trading.name"] == messages["cluster.name"] == models.NAME_RULE
    assert messages["scoring.name"] == f"a name has at most {models.NAME_LENGTH} characters, not 101"


def test_import_lists_bad_names_among_all_problems_before_any_preview(wtc, tmp_path):
    file = tmp_path / "names.yaml"
    file.write_text(
        "domains:\n"
        "  risk:\n"
        "    name: '   '\n"  # blank
        "    settings: {max_order_attempts: 5}\n"
        "  trading:\n"
        '    name: "Night\\e[2J"\n'  # a control character (ESC)
        "    settings: {max_concurrent_positions: 6}\n"
        "  scoring:\n"
        f"    name: {'n' * 101}\n"  # too long
        "    settings: {wallet_score_weight: 0.9}\n"  # and a settings problem
        "  cluster:\n"
        "    name: 7\n"  # not text
        "    settings: {min_cluster_size: 4}\n"
    )
    before = everything(wtc.url)
    done = wtc("import", str(file), "--activate", "--yes")
    assert done.returncode == 1, done.stderr
    no_traceback(done)
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert lines[0] == f"error: {file}: 5 problems", done.stderr  # no preview before it
    listed = [line.strip() for line in lines[1:]]
    for start in (
        "risk.name: a name needs a visible character",
        "trading.name: a name needs a visible character",
        "scoring.name: a name has at most 100 characters, not 101",
        "scoring.wallet_score_weight, ",
        "cluster.name: must be text, not 7",
    ):
        assert sum(line.startswith(start) for line in listed) == 1, (start, listed)
    assert everything(wtc.url) == before


# -- set: a JSON value with a key given twice ------------------------------------------------------


def test_parse_assignments_refuses_a_key_given_twice_inside_a_json_value():
    twice = '[{"threshold_pct":5,"threshold_pct":6,"size_reduction_pct":0}]'
    with pytest.raises(InvalidValue) as caught:
        cli_config.parse_assignments([f"drawdown_reduction_tiers={twice}"], models.TradingConfig)
    assert caught.value.fields == ["drawdown_reduction_tiers"]
    assert str(caught.value) == (
        "invalid trading_config: drawdown_reduction_tiers: "
        "threshold_pct given twice in the JSON value; give each key once"
    )
    # the same key in two objects is no repetition
    tiers = '[{"threshold_pct":5,"size_reduction_pct":0},{"threshold_pct":10,"size_reduction_pct":50}]'
    assert cli_config.parse_assignments([f"drawdown_reduction_tiers={tiers}"], models.TradingConfig) == {
        "drawdown_reduction_tiers": [
            {"threshold_pct": 5, "size_reduction_pct": 0},
            {"threshold_pct": 10, "size_reduction_pct": 50},
        ]
    }


def test_set_refuses_a_key_given_twice_inside_a_json_value_and_writes_nothing(wtc):
    new_draft(wtc, "trading")
    before = everything(wtc.url)
    done = wtc(
        "set", "trading", 'drawdown_reduction_tiers=[{"threshold_pct":5,"threshold_pct":6,"size_reduction_pct":0}]'
    )
    assert_one_line_error(done, 1, "drawdown_reduction_tiers", "threshold_pct given twice")
    assert everything(wtc.url) == before
