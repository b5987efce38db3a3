"""The migrations ship inside the package and pass the squawk linter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import walltrack_config
from conftest import REPO
from walltrack_config.migrate import plan as migrations

SQUAWK = Path(sys.executable).with_name("squawk")


def squawk(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SQUAWK), "--no-error-on-unmatched-pattern", *map(str, files)], capture_output=True, text=True
    )


def test_shipped_migrations_are_the_repositorys():
    shipped = migrations.default_directory()
    repo_files = sorted(p.name for p in (REPO / "migrations").glob("*.sql"))
    assert sorted(p.name for p in shipped.glob("*.sql")) == repo_files
    for name in repo_files:
        assert (shipped / name).read_bytes() == (REPO / "migrations" / name).read_bytes()
    if REPO not in Path(walltrack_config.__file__).resolve().parents:
        # Installed the way users install it: the files come from the wheel, not the checkout.
        assert REPO not in shipped.resolve().parents


def test_squawk_finds_nothing_in_the_migrations():
    done = squawk(*sorted((REPO / "migrations").glob("*.sql")))
    assert done.returncode == 0, done.stdout + done.stderr


def test_squawk_does_flag_a_risky_migration(tmp_path):
    risky = tmp_path / "V99__risky.sql"
    risky.write_text("ALTER TABLE walltrack.trading_config ADD COLUMN x INTEGER NOT NULL;\n")
    done = squawk(risky)
    assert done.returncode != 0 and "adding-required-field" in done.stdout


def test_ci_runs_the_readmes_test_command():
    script = (REPO / ".ci" / "run").read_text()
    awk = script.split("test_command=$(", 1)[1].split(" README.md)", 1)[0]
    done = subprocess.run(["bash", "-c", f"{awk} README.md"], cwd=REPO, capture_output=True, text=True)
    command = done.stdout.strip()
    assert command.endswith("python -m pytest") and f"```sh\n{command}\n```" in (REPO / "README.md").read_text()
