"""Everything a user can call or set is documented: every command in the README, every public or
API endpoint in the README's endpoint tables, every setting in its configuration table."""
import re
from pathlib import Path

from popup_mgr import alert_settings, alerts, cli

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_command_is_documented():
    for command in cli.COMMANDS:
        assert f"popup-mgr {command.name}" in README, f"`popup-mgr {command.name}` is not in README.md"


def test_every_api_and_public_endpoint_is_documented(app):
    documented = {re.sub(r"<[^>]+>", "<>", path) for path in re.findall(r"`(?:[A-Z]+ )?(/[^`?\s]*)", README)}
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<[^>]+>", "<>", rule.rule)
        if path.startswith(("/api/", "/c/", "/popup.js", "/metrics")):
            assert path in documented, f"{rule.rule} is not documented in README.md"


def test_every_setting_is_documented():
    """Every POPUP_* variable any module reads (also those read outside config.py)."""
    package = Path(__file__).resolve().parent.parent / "popup_mgr"
    source = "".join(path.read_text() for path in package.rglob("*.py"))
    for variable in sorted(set(re.findall(r"\b(POPUP_[A-Z][A-Z_]*[A-Z])\b", source))):
        assert f"`{variable}`" in README, f"{variable} is not in README.md's configuration table"


def test_every_alert_setting_is_in_the_configuration_table():
    table = README.split("\n## Configuration\n")[1].split("\n## ")[0]
    for name in alert_settings.SETTINGS:
        variable = alert_settings.env_name(name)
        assert f"| `{variable}` |" in table, f"{variable} is not in README.md's configuration table"


def test_the_alerts_page_and_its_guide_are_documented():
    section = README.split("\n## Alerts and the daily digest\n")[1].split("\n## ")[0]
    assert f"`{alerts.ALERTS_PATH}`" in section and "(docs/alerts.md)" in section
    assert (Path(__file__).resolve().parent.parent / "docs" / "alerts.md").exists()
