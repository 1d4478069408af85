"""First contact: `make run` and the demo data say what they are doing, `popup-mgr` shows only
the product's commands and version, and the demo offers look like real ones."""
import configparser
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from popup_mgr import cli, demo

ROOT = Path(__file__).resolve().parent.parent
TZ = "America/New_York"


def _invoke(args, tmp_path):
    return CliRunner().invoke(cli.main, args, env={"POPUP_DB": str(tmp_path / "popup.db")}, catch_exceptions=False)


def test_help_lists_only_the_products_commands(tmp_path):
    result = _invoke(["--help"], tmp_path)
    assert result.exit_code == 0
    listed = re.findall(r"^  ([a-z][a-z-]+)\s", result.output.split("Commands:")[1], re.M)
    assert sorted(listed) == sorted(command.name for command in cli.COMMANDS)
    for foreign in ("limiter", "--app", "--env-file", "--debug", "Flask"):
        assert foreign not in result.output, foreign


def test_version_is_the_products(tmp_path):
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    result = _invoke(["--version"], tmp_path)
    assert result.exit_code == 0
    assert result.output.strip() == f"popup-mgr {setup['metadata']['version']}"


def test_a_foreign_command_is_not_offered(tmp_path):
    result = CliRunner().invoke(cli.main, ["limiter", "limits"], env={"POPUP_DB": str(tmp_path / "popup.db")})
    assert result.exit_code == 2 and "No such command 'limiter'" in result.output


def test_the_products_commands_still_run(tmp_path):
    result = _invoke(["init-db"], tmp_path)
    assert result.exit_code == 0 and (tmp_path / "popup.db").exists()


def test_demo_data_prints_progress_while_it_writes(db, monkeypatch):
    monkeypatch.setattr(demo, "PROGRESS_EVERY_S", 0)
    lines = []
    demo.generate(db, days=30, impressions=3000, seed=2, tz=TZ, progress=lines.append)
    history = [line for line in lines if line.startswith("history:")]
    assert lines[0] == f"{len(demo.CAMPAIGNS)} demo campaigns created"
    assert history[-1].startswith("history: 30/30 days, 3,000 impressions")
    assert len(history) == 5                       # one per week written (7-day transactions)
    assert lines[-1].startswith("adding up")


def test_demo_data_command_shows_progress(tmp_path):
    result = _invoke(["demo-data", "--days", "3", "--impressions", "500"], tmp_path)
    assert result.exit_code == 0
    assert "... 20 demo campaigns created" in result.output and "... adding up" in result.output


def test_make_install_announces_each_step_and_pip_is_not_silent():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("$(VENV)/.installed: requirements.txt")[1].split("\n\n")[0]
    assert len(re.findall(r'@echo "==> \[\d/3\]', recipe)) == 3
    requirements_line = next(line for line in recipe.splitlines() if "-r requirements.txt" in line)
    assert "--quiet" not in requirements_line and "PIP_SHOWN" in requirements_line


# --- demo offers that look real ----------------------------------------------------------------

def test_demo_offers_have_their_own_images_and_descriptions(app, db, client):
    demo.generate(db, days=2, impressions=200, seed=4, tz=TZ, base_url="http://popup.test")
    rows = db.execute("SELECT name, display_title, tagline, description, image_url FROM campaigns").fetchall()
    assert len(rows) == len(demo.CAMPAIGNS)
    for row in rows:
        assert row["image_url"].startswith("http://popup.test/static/demo/"), row["name"]
        assert row["display_title"].lower() not in row["description"].lower()
        assert row["tagline"].lower() not in row["description"].lower()
        served = client.get(row["image_url"].removeprefix("http://popup.test"))
        assert served.status_code == 200 and served.mimetype == "image/svg+xml"
        assert b"<svg" in served.data and len(served.data) < 4096    # small files, committed


def test_demo_images_are_the_committed_files():
    slugs = {slug for _, slug in demo.DETAILS.values()}
    files = {path.stem for path in (ROOT / "popup_mgr/static/demo").glob("*.svg")}
    assert slugs == files
    assert set(demo.DETAILS) == {spec[0] for spec in demo.CAMPAIGNS}
