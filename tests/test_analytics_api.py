"""GET /api/analytics/<property>: the public contract (shape, types, errors, auth, CSV)."""
import csv
import io
from datetime import date

import pytest

from tests.helpers import add_campaign, add_click, add_conversion, add_impression, ms, rebuild

URL = "/api/analytics/{}?from=2026-03-07&to=2026-03-09"


@pytest.fixture
def traffic(db):
    a = add_campaign(db, name="alpha", payout_cents=450)
    b = add_campaign(db, name="=cmd|' /C calc'!A0", payout_cents=125)   # a hostile name for the CSV
    for minute in range(3):
        add_impression(db, ms(f"2026-03-08 15:0{minute}:00"), a, "mff")
    add_impression(db, ms("2026-03-09 15:00:00"), b, "mmm")
    click = add_click(db, ms("2026-03-08 15:00:10"), a, "mff")
    add_click(db, ms("2026-03-09 15:00:10"), b, "mmm")
    add_conversion(db, click, ms("2026-03-08 19:00:00"), 450)
    rebuild(db)
    return {"alpha": a, "beta": b}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_json_shape_and_values(client, api_token, traffic):
    response = client.get(URL.format("all"), headers=bearer(api_token))
    assert response.status_code == 200
    body = response.json
    assert body["totals"] == {"impressions": 4, "clicks": 2, "ctr": 0.5, "conversions": 1, "revenue": "4.50",
                              "rpm": "1125.00", "epc": "2.25"}
    assert [c["campaign_id"] for c in body["campaigns"]] == [traffic["alpha"], traffic["beta"]]
    assert body["campaigns"][0] == {"campaign_id": traffic["alpha"], "name": "alpha", "impressions": 3,
                                    "clicks": 1, "ctr": 0.333333, "conversions": 1, "revenue": "4.50",
                                    "rpm": "1500.00", "epc": "4.50"}
    assert [(d["date"], d["impressions"], d["revenue"]) for d in body["days"]] == [
        ("2026-03-07", 0, "0.00"), ("2026-03-08", 3, "4.50"), ("2026-03-09", 1, "0.00")]
    assert isinstance(body["totals"]["ctr"], float) and isinstance(body["totals"]["clicks"], int)


def test_one_property(client, api_token, traffic):
    body = client.get(URL.format("mmm"), headers=bearer(api_token)).json
    assert body["totals"]["impressions"] == 1 and body["property"] == "mmm"
    assert [c["campaign_id"] for c in body["campaigns"]] == [traffic["beta"]]


def test_session_auth_works_too(admin_client, traffic):
    assert admin_client.get(URL.format("all")).status_code == 200


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer pm_not-a-real-token"}])
def test_unauthenticated_is_401_json(client, headers):
    response = client.get(URL.format("all"), headers=headers)
    assert response.status_code == 401 and "error" in response.json


def test_unknown_property_is_404_json(client, api_token):
    response = client.get(URL.format("nope"), headers=bearer(api_token))
    assert response.status_code == 404 and "nope" in response.json["error"]


@pytest.mark.parametrize("query, field", [
    ("from=2026-03-10&to=2026-03-09", "from"),
    ("from=2026-13-01&to=2026-03-09", "from"),
    ("from=2026-03-01&to=tomorrow", "to"),
    ("from=2026-03-01&to=2026-03-02&format=xml", "format"),
])
def test_bad_query_is_400_json(client, api_token, query, field):
    response = client.get(f"/api/analytics/all?{query}", headers=bearer(api_token))
    assert response.status_code == 400
    assert field in response.json["errors"]


def test_future_to_is_allowed(client, api_token, traffic):
    response = client.get("/api/analytics/all?from=2026-03-08&to=2099-01-01", headers=bearer(api_token))
    assert response.status_code == 200 and response.json["totals"]["impressions"] == 4
    # days stop at today: there is no data after it.
    assert response.json["days"][-1]["date"] <= date.today().isoformat()


def test_csv_rows_sum_to_json_totals(client, api_token, traffic):
    body = client.get(URL.format("all"), headers=bearer(api_token)).json
    response = client.get(URL.format("all") + "&format=csv", headers=bearer(api_token))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert list(rows[0]) == ["date", "property", "campaign_id", "campaign_name", "impressions", "clicks",
                             "conversions", "revenue"]
    assert len(rows) == 2       # one per day x property x campaign with data
    for key in ("impressions", "clicks", "conversions"):
        assert sum(int(r[key]) for r in rows) == body["totals"][key]
    assert f"{sum(float(r['revenue']) for r in rows):.2f}" == body["totals"]["revenue"]
    # A name starting with "=" must not become a spreadsheet formula.
    assert rows[1]["campaign_name"].startswith("'=")
