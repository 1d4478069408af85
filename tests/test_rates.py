"""Rates are defined for every count: no impressions, no clicks, and more clicks than impressions
(a click whose impression beacon never arrived is real traffic). No view may fail on them."""
from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from popup_mgr import alerts, digest, reports
from tests.helpers import BROWSER_UA, add_campaign, beacon_body, token_for

counts = st.integers(min_value=0, max_value=10**9)


def reference_wilson(successes, trials, z=reports.WILSON_Z):
    """The Wilson bounds as the two roots of (p - p̂)² = z² p (1 - p) / n, solved as a quadratic
    in p with 50-digit decimals (a different route to the same interval as reports.wilson_interval,
    free of float cancellation)."""
    with localcontext() as ctx:
        ctx.prec = 50
        n, z = Decimal(trials), Decimal(repr(z))
        p_hat = Decimal(successes) / n
        a = 1 + z * z / n
        b = -(2 * p_hat + z * z / n)
        root = (b * b - 4 * a * p_hat * p_hat).sqrt()
        return max(0.0, float((-b - root) / (2 * a))), min(1.0, float((-b + root) / (2 * a)))


@settings(max_examples=400, deadline=None)
@given(successes=counts, trials=counts)
def test_wilson_interval_is_a_proportion_interval_for_any_counts(successes, trials):
    low, high = reports.wilson_interval(successes, trials)
    assert 0.0 <= low <= high <= 1.0
    if trials and successes <= trials:
        expected = reference_wilson(successes, trials)
        assert low == pytest.approx(expected[0], abs=1e-9) and high == pytest.approx(expected[1], abs=1e-9)
    elif trials:
        # More successes than trials: judged as every trial a success.
        assert (low, high) == reports.wilson_interval(trials, trials)


@settings(max_examples=400, deadline=None)
@given(impressions=counts, clicks=counts, conversions=counts, revenue_cents=st.integers(0, 10**12), views=counts)
def test_every_measure_is_defined_for_any_counts(impressions, clicks, conversions, revenue_cents, views):
    m = reports.measures({"impressions": impressions, "clicks": clicks, "conversions": conversions,
                          "revenue_cents": revenue_cents, "views": views})
    assert m["ctr"] == (clicks / impressions if impressions else 0.0)
    assert m["conversion_rate"] == (conversions / clicks if clicks else 0.0)
    assert m["rpm_cents"] == (round_half_up(revenue_cents * 1000, impressions) if impressions else 0)
    assert m["epc_cents"] == (round_half_up(revenue_cents, clicks) if clicks else 0)
    assert m["view_rpm_cents"] == (round_half_up(revenue_cents * 1000, views) if views else 0)
    reports.api_view_measures(m)
    assert 0.0 <= m["ctr_low"] <= m["ctr_high"] <= 1.0
    reports.api_measures(m)
    for kind, key in (("percent", "ctr"), ("percent", "conversion_rate"), ("money", "rpm_cents"),
                      ("money", "epc_cents"), ("count", "clicks")):
        reports.display(m[key], kind)
    figures = digest.row_figures(m)
    assert figures["ctr"] is None or 0.0 <= figures["ctr"] <= 1.0
    digest.show_rate(figures["ctr"])


def round_half_up(numerator, denominator):
    return int((Decimal(numerator) / Decimal(denominator)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@settings(max_examples=200, deadline=None)
@given(k=st.integers(-5, 5000), mean=st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_poisson_tail_of_the_ctr_alert_is_a_probability(k, mean):
    assert 0.0 <= alerts.poisson_cdf(k, mean) <= 1.0


# --- through HTTP: one impression and two clicks with the same token ---------------------------------

ANALYTICS_PAGES = [
    "/api/analytics/all", "/api/analytics/mff", "/api/analytics/mff?format=csv", "/api/analytics/all?format=csv",
    "/", "/admin/dashboard", "/admin/dashboard?property=mff&range=today", "/admin/analytics/properties",
    "/admin/analytics/campaigns/{campaign}", "/admin/live", "/admin/live/fragment", "/admin/live.csv",
    "/admin/analytics/export/days.csv", "/admin/analytics/export/campaigns.csv",
    "/admin/analytics/export/campaign-properties.csv", "/admin/analytics/export/properties.csv",
    "/admin/analytics/export/grid.csv", "/admin/analytics/export/campaigns.csv?campaign={campaign}",
    "/admin/analytics/report.pdf",
]


@pytest.fixture
def more_clicks_than_impressions(app, client, db):
    campaign = add_campaign(db, app=app)
    token = token_for(app, campaign)
    assert client.post("/api/impression", data=beacon_body(token),
                       headers={"User-Agent": BROWSER_UA, "Content-Type": "text/plain"}).status_code == 204
    for event in ("first-click-0001", "second-click-0002"):
        assert client.get(f"/c/{token}?e={event}", headers={"User-Agent": BROWSER_UA}).status_code == 302
    return campaign


@pytest.mark.parametrize("path", ANALYTICS_PAGES)
def test_every_analytics_view_answers_when_clicks_exceed_impressions(admin_client, more_clicks_than_impressions,
                                                                     path):
    response = admin_client.get(path.format(campaign=more_clicks_than_impressions), follow_redirects=True)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]


def test_the_api_reports_the_counts_as_they_are(admin_client, more_clicks_than_impressions):
    totals = admin_client.get("/api/analytics/all").get_json()["totals"]
    # ctr is clicks / impressions as counted (2 / 1); the interval on the page is clamped to 100 %.
    assert (totals["impressions"], totals["clicks"], totals["ctr"]) == (1, 2, 2.0)
