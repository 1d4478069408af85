"""Every template is rendered by some test: Flask's template_rendered signal (collected by
tests/conftest.py over the whole run) names each page or fragment rendered, and what those
include, extend or import is rendered with them. Named to run last; meaningful only for the
whole suite."""
import re
from pathlib import Path

import pytest

from tests.helpers import RENDERED_TEMPLATES

TEMPLATES = Path(__file__).resolve().parent.parent / "popup_mgr" / "templates"
_REFERENCE = re.compile(r"""{%-?\s*(?:include|extends|import|from)\s+["']([^"']+)["']""")


def with_what_they_pull_in(names):
    """names plus every template they include, extend or import, transitively."""
    found, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in found or not (TEMPLATES / name).is_file():
            continue
        found.add(name)
        todo.extend(_REFERENCE.findall((TEMPLATES / name).read_text()))
    return found


def test_every_template_is_rendered_by_some_test(request):
    config = request.config
    whole_suite = not config.option.keyword and not config.option.markexpr and \
        all(Path(arg).resolve() == Path(__file__).resolve().parent for arg in config.args)
    if not whole_suite:
        pytest.skip("needs the whole suite (run without -k/-m or file arguments)")
    every = {str(path.relative_to(TEMPLATES)) for path in TEMPLATES.rglob("*.html")}
    never = sorted(every - with_what_they_pull_in(RENDERED_TEMPLATES))
    assert not never, f"templates no test renders: {never}"
