"""The operator's commands through the installed walltrack-config, on real PostgreSQL."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import psycopg
import pytest
import yaml

from conftest import run_cli
from test_cli import assert_one_line_error
from walltrack_config import models
from walltrack_config.cli import args as cli_args
from walltrack_config.cli import config as cli_config


@pytest.fixture
def wtc(migrated_db):
    """Run walltrack-config against this test's database, as the operator 'ops'."""

    def run(*args: str, input: str = "", env: dict[str, str] | None = None):
        return run_cli("--database-url", migrated_db, "--actor", "ops", *args, input=input, env=env)

    run.url = migrated_db
    return run


def as_json(done) -> object:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def snapshot(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT to_jsonb(t) FROM walltrack.risk_config t ORDER BY id").fetchall()
        audit = conn.execute("SELECT count(*) FROM walltrack.config_audit_log").fetchone()[0]
    return rows, audit


def new_draft(wtc, domain: str = "risk", *extra: str) -> dict:
    return as_json(wtc("--json", "draft", domain, *extra))


def test_domain_choices_are_the_models():
    assert tuple(d.value for d in cli_args.Domain) == models.DOMAINS


def test_parse_assignments_reads_by_column_type():
    parsed = cli_config.parse_assignments(
        [
            'drawdown_reduction_tiers=[{"threshold_pct": 5, "size_reduction_pct": 0}]',
            "sizing_mode=fixed",
            "base_position_pct=2.5",
            "name=My = name",
        ],
        models.TradingConfig,
    )
    assert parsed == {
        "drawdown_reduction_tiers": [{"threshold_pct": 5, "size_reduction_pct": 0}],
        "sizing_mode": "fixed",
        "base_position_pct": "2.5",
        "name": "My = name",
    }
    assert cli_config.parse_assignments(["default_strategy_standard_id=null"], models.ExitConfig) == {
        "default_strategy_standard_id": None
    }


def test_show_prints_every_setting_with_value_unit_and_meaning(wtc):
    done = wtc("show", "trading")
    assert done.returncode == 0 and "\x1b[" not in done.stdout  # piped: plain text
    line = next(text for text in done.stdout.splitlines() if text.strip().startswith("base_position_pct"))
    assert line.split()[:5] == ["base_position_pct", "2.00", "%", "of", "capital"] and "Standard position size" in line
    assert all(name in done.stdout for name in models.TradingConfig.model_fields)
    assert "status active, version 1" in done.stdout and "changed by system" in done.stdout


def test_show_json_is_one_row_with_every_column(wtc):
    row = as_json(wtc("--json", "show", "risk", "--status", "default"))
    with psycopg.connect(wtc.url) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE "
                "table_schema = 'walltrack' AND table_name = 'risk_config' ORDER BY ordinal_position"
            )
        ]
    assert list(row) == columns
    assert (row["status"], row["max_drawdown_pct"], row["circuit_breaker_enabled"]) == ("default", 20.0, True)
    assert as_json(wtc("--json", "show", "risk", "--id", row["id"]))["id"] == row["id"]


def test_show_errors(wtc):
    assert_one_line_error(wtc("show", "risk", "--status", "draft"), 1, "risk has no draft")
    assert_one_line_error(wtc("show", "risk", "--id", "not-a-uuid"), 1, "no row of risk is 'not-a-uuid'")
    assert wtc("show", "risk", "--id", "x", "--status", "active").returncode == 2
    assert wtc("show", "riks").returncode == 2


def test_list_is_newest_first(wtc):
    draft = new_draft(wtc)
    listed = as_json(wtc("--json", "list", "risk"))
    assert listed[0]["id"] == draft["id"] and {r["status"] for r in listed} == {"default", "active", "draft"}
    assert "draft" in wtc("list", "risk").stdout


def test_draft_from_active_default_or_id(wtc):
    first = new_draft(wtc, "risk", "--from", "default", "--name", "From defaults")
    assert (first["name"], first["status"], first["created_by"]) == ("From defaults", "draft", "ops")
    second = new_draft(wtc, "risk", "--from", first["id"])
    assert second["name"] == "From defaults (draft)"
    assert_one_line_error(wtc("draft", "risk", "--name", "From defaults"), 1, "name")
    assert_one_line_error(wtc("draft", "risk", "--from", "00000000-0000-0000-0000-000000000000"), 1, "no row")


def test_set_parses_each_type_and_bumps_the_version(wtc):
    draft = new_draft(wtc, "trading")
    tiers = '[{"threshold_pct": 10, "size_reduction_pct": 50}]'
    row = as_json(
        wtc(
            "--json",
            "set",
            "trading",
            "base_position_pct=3.5",
            "max_concurrent_positions=7",
            "daily_loss_limit_enabled=no",
            "sizing_mode=fixed",
            f"drawdown_reduction_tiers={tiers}",
            "name=Aggressive",
            "--reason",
            "test",
        )
    )
    assert (row["id"], row["version"], row["name"]) == (draft["id"], 2, "Aggressive")
    assert (
        row["base_position_pct"],
        row["max_concurrent_positions"],
        row["daily_loss_limit_enabled"],
        row["sizing_mode"],
        row["drawdown_reduction_tiers"],
    ) == (3.5, 7, False, "fixed", json.loads(tiers))
    text = wtc("set", "trading", "base_position_pct=4")
    assert text.returncode == 0 and "3.50" in text.stdout and "4.00" in text.stdout


def test_set_refusals_name_the_problem_and_write_nothing(wtc):
    new_draft(wtc)
    before = snapshot(wtc.url)
    assert_one_line_error(wtc("set", "risk", "max_drawdwn_pct=10"), 1, "did you mean max_drawdown_pct")
    assert_one_line_error(
        wtc("set", "risk", "max_drawdown_pct=150"), 1, "max_drawdown_pct", "less than or equal to 100"
    )
    assert_one_line_error(wtc("set", "risk", "max_order_attempts=many"), 1, "max_order_attempts")
    assert_one_line_error(wtc("set", "risk", "max_drawdown_pct=20"), 1, "nothing to change")
    assert wtc("set", "risk", "max_drawdown_pct").returncode == 2
    assert snapshot(wtc.url) == before


def test_set_needs_one_draft_or_a_named_one(wtc):
    assert_one_line_error(wtc("set", "risk", "max_order_attempts=4"), 1, "no draft", "walltrack-config draft risk")
    one, two = new_draft(wtc), new_draft(wtc)
    assert_one_line_error(wtc("set", "risk", "max_order_attempts=4"), 1, "2 drafts", "--draft")
    assert as_json(wtc("--json", "set", "risk", "max_order_attempts=4", "--draft", two["id"]))["version"] == 2
    assert as_json(wtc("--json", "show", "risk", "--id", one["id"]))["version"] == 1


def _editor(tmp_path: Path, *replacements: tuple[str, str]) -> str:
    """A scripted $EDITOR: call N applies replacement N (the last one again after that), and logs what it saw."""
    script = tmp_path / "editor.py"
    script.write_text(
        "import sys, pathlib, json\n"
        f"state = pathlib.Path({str(tmp_path / 'calls')!r})\n"
        "calls = json.loads(state.read_text()) if state.exists() else []\n"
        "path = pathlib.Path(sys.argv[1]); text = path.read_text(); calls.append(text)\n"
        f"steps = {list(replacements)!r}\n"
        "old, new = steps[min(len(calls), len(steps)) - 1]\n"
        "path.write_text(text.replace(old, new)); state.write_text(json.dumps(calls))\n"
    )
    return f"{sys.executable} {script}"


def _calls(tmp_path: Path) -> list[str]:
    return json.loads((tmp_path / "calls").read_text())


@pytest.mark.installed
def test_edit_applies_what_was_saved(wtc, tmp_path):
    new_draft(wtc)
    done = wtc("edit", "risk", env={"EDITOR": _editor(tmp_path, ("max_order_attempts: 3", "max_order_attempts: 6"))})
    assert done.returncode == 0, done.stderr
    assert "Attempts per order before it is given up (attempts)" in _calls(tmp_path)[0]
    row = as_json(wtc("--json", "show", "risk", "--status", "draft"))
    assert (row["max_order_attempts"], row["version"], row["updated_by"]) == (6, 2, "ops")


def test_edit_reopens_with_the_error_until_it_is_fixed(wtc, tmp_path):
    new_draft(wtc)
    editor = _editor(
        tmp_path,
        ("max_order_attempts: 3", "max_order_attempts: -1"),
        ("max_order_attempts: -1", "max_order_attempts: 4"),
    )
    done = wtc("edit", "risk", env={"EDITOR": editor})
    assert done.returncode == 0, done.stderr
    first, second = _calls(tmp_path)
    assert "# ERROR" not in first and "# ERROR: invalid walltrack.risk_config: max_order_attempts" in second
    assert as_json(wtc("--json", "show", "risk", "--status", "draft"))["max_order_attempts"] == 4


def test_edit_given_up_or_broken_writes_nothing(wtc, tmp_path):
    new_draft(wtc)
    before = snapshot(wtc.url)
    stuck = wtc("edit", "risk", env={"EDITOR": _editor(tmp_path, ("max_order_attempts: 3", "max_order_attempts: -1"))})
    assert_one_line_error(stuck, 1, "max_order_attempts")
    assert len(_calls(tmp_path)) == 2
    assert_one_line_error(wtc("edit", "risk", env={"EDITOR": "false"}), 1, "edit abandoned")
    assert_one_line_error(wtc("edit", "risk", env={"EDITOR": "no-such-editor-here"}), 2, "cannot start the editor")
    assert snapshot(wtc.url) == before


def test_diff_defaults_to_draft_against_active(wtc):
    draft = new_draft(wtc)
    wtc("set", "risk", "max_order_attempts=9")
    changes = as_json(wtc("--json", "diff", "risk"))
    assert changes["to"] == draft["id"] and changes["changes"] == [
        {"field": "name", "old": "Active Configuration", "new": "Active Configuration (draft)"},
        {"field": "max_order_attempts", "old": 3, "new": 9},
    ]
    default = as_json(wtc("--json", "show", "risk", "--status", "default"))["id"]
    same_settings = as_json(wtc("--json", "diff", "risk", default, "active"))["changes"]
    assert [c["field"] for c in same_settings] == ["name", "description"]  # the rows' labels, no setting
    assert "max_order_attempts" in wtc("diff", "risk").stdout


@pytest.mark.installed
def test_activate_asks_first(wtc):
    draft = new_draft(wtc)
    wtc("set", "risk", "max_order_attempts=9")
    before = snapshot(wtc.url)
    for answer in ("n\n", ""):
        declined = wtc("activate", "risk", input=answer)
        assert declined.returncode == 1 and "not done" in declined.stderr and "max_order_attempts" in declined.stdout
    assert snapshot(wtc.url) == before
    accepted = wtc("activate", "risk", "--reason", "go", input="y\n")
    assert accepted.returncode == 0 and "activate" in accepted.stderr
    live = as_json(wtc("--json", "show", "risk"))
    assert (live["id"], live["max_order_attempts"]) == (draft["id"], 9)


def test_activate_yes_with_json_prints_only_the_row(wtc):
    new_draft(wtc)
    wtc("set", "risk", "max_order_attempts=9")
    done = wtc("--json", "activate", "risk", "--yes")
    assert as_json(done)["status"] == "active" and "max_order_attempts" in done.stderr


def test_rollback(wtc):
    assert_one_line_error(wtc("rollback", "risk", "--yes"), 1, "nothing to roll back to")
    draft = new_draft(wtc)
    wtc("set", "risk", "max_order_attempts=9")
    wtc("activate", "risk", "--yes")
    back = as_json(wtc("--json", "rollback", "risk", "--yes", "--reason", "bad idea"))
    assert back["max_order_attempts"] == 3 and back["id"] != draft["id"]


def test_history_shows_who_what_and_why(wtc):
    new_draft(wtc, "risk", "--reason", "start")
    wtc("set", "risk", "max_order_attempts=9", "--reason", "more tries")
    wtc("activate", "risk", "--yes", "--reason", "go")
    text = wtc("history", "risk").stdout
    assert "ops (as postgres)  update" in text and "max_order_attempts: 3 -> 9" in text and "(more tries)" in text
    assert "status: draft -> active" in text
    entries = as_json(wtc("--json", "history", "risk", "--limit", "2"))
    assert [e["action"] for e in entries] == ["activate", "archive"] and entries[0]["reason"] == "go"
    assert {"old_values", "new_values", "changed_fields", "performed_by", "source_ip", "user_agent"} <= set(entries[0])
    assert as_json(wtc("--json", "history", "risk", "--since", "2999-01-01")) == []
    assert wtc("history", "risk", "--since", "yesterday").returncode == 2


@pytest.mark.installed
def test_export_and_import_round_trip(wtc, tmp_path):
    exported = yaml.safe_load(wtc("export").stdout)
    assert set(exported["domains"]) == set(models.DOMAINS) and exported["format"] == "walltrack-config/1"
    file = tmp_path / "risk.yaml"
    assert wtc("export", "risk", "scoring", "-o", str(file)).returncode == 0
    assert (
        json.loads(wtc("export", "risk", "--format", "json").stdout)["domains"]["risk"]["settings"][
            "max_order_attempts"
        ]
        == 3
    )
    file.write_text(file.read_text().replace("max_order_attempts: 3", "max_order_attempts: 5"))
    drafts = as_json(wtc("--json", "import", str(file)))
    assert [(d["status"], d["max_order_attempts"]) for d in drafts] == [("draft", 5)]  # scoring did not differ
    wtc("--json", "show", "risk", "--status", "draft")
    live = as_json(wtc("--json", "import", str(file), "--activate", "--yes", "--reason", "from git"))
    assert live[0]["status"] == "active" and as_json(wtc("--json", "show", "risk"))["max_order_attempts"] == 5
    assert_one_line_error(wtc("import", str(file)), 1, "nothing to import")


def test_import_checks_everything_before_writing_anything(wtc, tmp_path):
    file = tmp_path / "mixed.yaml"
    file.write_text(
        yaml.safe_dump(
            {
                "domains": {
                    "risk": {"settings": {"max_order_attempts": 5}},
                    "scoring": {"settings": {"wallet_score_weight": 0.9}},
                }
            }
        )
    )
    before = snapshot(wtc.url)
    assert_one_line_error(wtc("import", str(file), "--activate", "--yes"), 1, "scoring.wallet_score_weight")
    file.write_text("domains:\n  risk:\n    settings: {max_order_attempts: 5\n")
    assert_one_line_error(wtc("import", str(file)), 1, str(file), "not valid YAML")
    file.write_text(yaml.safe_dump({"domains": {"risk": {"settings": {"max_order_atempts": 5}}}}))
    assert_one_line_error(wtc("import", str(file)), 1, "did you mean max_order_attempts")
    file.write_text(yaml.safe_dump({"domains": {"riskk": {"settings": {}}}}))
    assert_one_line_error(wtc("import", str(file)), 1, "unknown domain 'riskk'")
    assert wtc("import", str(tmp_path / "missing.yaml")).returncode == 2
    assert snapshot(wtc.url) == before


def test_a_config_command_without_a_server_is_one_line_and_exit_2():
    done = run_cli("--database-url", "postgresql://127.0.0.1:1/walltrack", "show", "risk")
    assert_one_line_error(done, 2, "cannot connect")
