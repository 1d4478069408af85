"""With one property chosen, the dashboard's property widgets show that property only; the range
inputs are sent only for a custom range (no stale from/to in the URL)."""
import json
import re

from popup_mgr import demo
from tests.helpers import TZ


def _history(db):
    demo.generate(db, days=3, impressions=3000, seed=11, tz=TZ)


def _chart(html):
    return json.loads(re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html, re.S).group(1))


def test_one_property_shows_only_that_property(admin_client, db):
    _history(db)
    html = admin_client.get("/admin/dashboard?property=mmm&range=7d").get_data(as_text=True)
    assert _chart(html)["properties"] == ["mmm"]
    table = html.split("<h2>Properties</h2>")[1].split("</table>")[0]
    assert "mmm" in table and not any(code in table for code in (">mff<", ">mcad<", ">mmd<"))
    everything = admin_client.get("/admin/dashboard?property=all&range=7d").get_data(as_text=True)
    assert _chart(everything)["properties"] == ["mff", "mmm", "mcad", "mmd"]


def test_range_inputs_are_sent_only_for_a_custom_range(admin_client):
    preset = admin_client.get("/admin/dashboard?range=today").get_data(as_text=True)
    assert re.search(r'name="from" value="[\d-]+" disabled', preset) and re.search(r'name="to" value="[\d-]+" disabled', preset)
    custom = admin_client.get("/admin/dashboard?range=custom&from=2026-11-01&to=2026-11-03").get_data(as_text=True)
    assert 'name="from" value="2026-11-01">' in custom and 'name="to" value="2026-11-03">' in custom
