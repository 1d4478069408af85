"""The embed's contract, checked from the script's side: endpoints it calls exist, the keys it
sends are the documented beacon body, its served size stays in budget, and the build is current."""
import gzip
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from popup_mgr.web import public as embed

ROOT = Path(__file__).resolve().parent.parent
SOURCE = (ROOT / "embed" / "popup.js").read_text()
GZIP_BUDGET = 5 * 1024        # bytes, script + CSS, as served
DOCUMENTED_BEACON_KEYS = {"token", "event_id", "session_id", "view"}


def test_every_endpoint_the_script_calls_exists(app):
    paths = set(re.findall(r"'(/api/[a-z]+/?)'", SOURCE))
    assert paths == {"/api/offers/", "/api/impression"}
    # Variable parts compared by position only (<property_code>, <path:token> -> <>).
    rules = {re.sub(r"<[^>]+>", "<>", rule.rule) for rule in app.url_map.iter_rules()}
    assert "/api/offers/<>" in rules
    # /api/impression and /c/<token> (the CTA's target) must exist: the embed calls nothing else.
    assert {"/api/impression", "/c/<>"} <= rules


def test_beacon_body_keys_are_the_documented_ones():
    bodies = re.findall(r"beacon\('/api/impression', \{([^}]*)\}", SOURCE)
    assert bodies
    for body in bodies:
        assert set(re.findall(r"(\w+):", body)) == DOCUMENTED_BEACON_KEYS


def test_readme_documents_beacon_keys_and_size(client):
    readme = (ROOT / "embed" / "README.md").read_text()
    for key in DOCUMENTED_BEACON_KEYS:
        assert key in readme
    # The figure the README states ("5,105 B today") is the size actually served.
    stated = re.search(r"(\d[\d,]*) B today", readme)
    assert stated, "embed/README.md states the gzip size as 'N,NNN B today'"
    served = len(client.get("/popup.js", headers={"Accept-Encoding": "gzip"}).data)
    assert int(stated.group(1).replace(",", "")) == served, f"served {served} B gzipped"


def test_gzip_size_of_served_script_is_in_budget(client):
    served = client.get("/popup.js", headers={"Accept-Encoding": "gzip"}).data
    # The hard budget: what a visitor downloads (script + CSS) stays under 5 KB.
    assert len(served) <= GZIP_BUDGET, f"/popup.js is {len(served)} bytes gzipped"
    assert len(gzip.compress(gzip.decompress(served), 9)) <= GZIP_BUDGET


@pytest.mark.skipif(not (ROOT / "node_modules" / ".bin" / "terser").exists(), reason="terser not installed")
def test_committed_build_matches_source(tmp_path):
    """embed/popup.min.js is exactly what scripts/build-embed.sh makes from embed/popup.js."""
    out = tmp_path / "popup.min.js"
    subprocess.run([str(ROOT / "node_modules/.bin/terser"), str(ROOT / "embed/popup.js"),
                    "--compress", "passes=2", "--mangle", "--comments", "/^!/", "--ecma", "2017",
                    "--output", str(out)], check=True, cwd=ROOT)
    assert out.read_bytes() == embed.SCRIPT_PATH.read_bytes(), "run `make embed` and commit"


def test_build_script_uses_the_same_options():
    script = (ROOT / "scripts" / "build-embed.sh").read_text()
    assert "--compress passes=2 --mangle --comments '/^!/'" in script and "--ecma 2017" in script


def test_the_server_accepts_what_the_script_sends(app, client, db):
    """The beacon body the script builds is answered 204 by /api/impression (text/plain, as
    sendBeacon sends it)."""
    from popup_mgr.signals import notify_catalog_changed
    from tests.helpers import add_campaign
    add_campaign(db, tune_id=101)
    notify_catalog_changed(app)
    token = client.get("/api/offers/mff").json["offers"][0]["token"]
    body = {"token": token, "event_id": "0123456789abcdef0123456789abcdef", "session_id": "fedcba9876543210",
            "view": 1}
    assert set(body) == DOCUMENTED_BEACON_KEYS
    response = client.post("/api/impression", data=__import__("json").dumps(body),
                           content_type="text/plain;charset=UTF-8")
    assert response.status_code == 204
