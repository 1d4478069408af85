"""The layout's rules, checked on the source: SQL only in the domain layer, imports that point
from HTTP to domain to SQLite and never back."""
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "popup_mgr"
HTTP_LAYER = sorted((PACKAGE / "web").glob("*.py")) + [PACKAGE / "cli.py"]
DOMAIN = [path for path in sorted(PACKAGE.rglob("*.py"))
          if path.parent != PACKAGE / "web" and path.name not in ("cli.py", "__init__.py")]


@pytest.mark.parametrize("path", HTTP_LAYER, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_sql_in_the_http_layer(path):
    source = path.read_text()
    assert ".execute(" not in source and ".executemany(" not in source, \
        f"{path.name} runs SQL: move the query into a domain module"


@pytest.mark.parametrize("path", DOMAIN, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_domain_modules_do_not_import_the_http_layer(path):
    assert not re.search(r"^\s*(from popup_mgr\.web\b|from popup_mgr import .*\bweb\b|import popup_mgr\.web)",
                         path.read_text(), re.M), f"{path.name} imports popup_mgr.web"


def test_the_layers_exist():
    assert len(HTTP_LAYER) >= 10 and len(DOMAIN) >= 20
