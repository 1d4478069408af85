"""Every template is rendered by some test (Flask's template_rendered signal, collected by
tests/conftest.py over the whole run). Named to run last; meaningful only for the whole suite."""
from pathlib import Path

import pytest

from tests.helpers import RENDERED_TEMPLATES

TEMPLATES = Path(__file__).resolve().parent.parent / "popup_mgr" / "templates"


def test_every_template_is_rendered_by_some_test(request):
    config = request.config
    whole_suite = not config.option.keyword and not config.option.markexpr and \
        all(Path(arg).resolve() == Path(__file__).resolve().parent for arg in config.args)
    if not whole_suite:
        pytest.skip("needs the whole suite (run without -k/-m or file arguments)")
    every = {str(path.relative_to(TEMPLATES)) for path in TEMPLATES.rglob("*.html")}
    never = sorted(every - RENDERED_TEMPLATES)
    assert not never, f"templates no test renders: {never}"
