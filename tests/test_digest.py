"""digest: yesterday's figures per property against the same weekday a week before, the top
campaigns and the Tune gap, checked against figures computed here from the rows written; the
HTML escapes what Mike typed; the job mails it once a day through a real local SMTP server."""
import datetime as dt

import pytest

from tests.helpers import TZ, add_campaign, add_click, add_conversion, add_impression, ms, rebuild
from tests.mail_support import Inbox, parts, start_server
from popup_mgr import digest

NOW = dt.datetime(2026, 11, 28, 20, 0, tzinfo=dt.timezone.utc)     # Saturday 15:00 in New York
YESTERDAY = dt.date(2026, 11, 27)                                  # Friday
WEEK_BEFORE = dt.date(2026, 11, 20)                                # the Friday before


def local(text):
    return ms(text, TZ)


def traffic(db, campaign_id, prop, day, impressions, clicks, conversions, payout_cents=450):
    """Rows spread over the business day `day` (late evening too: still that day in New York); one
    impression in three opens a popup view."""
    for i in range(impressions):
        add_impression(db, local(f"{day} 23:{i % 60:02d}:00") - i * 1000, campaign_id, prop, is_view=int(i % 3 == 0))
    made = [add_click(db, local(f"{day} 10:{i % 60:02d}:00"), campaign_id, prop) for i in range(clicks)]
    for click in made[:conversions]:
        add_conversion(db, click, local(f"{day} 12:00:00"), payout_cents)


@pytest.fixture
def shop(db):
    """Walmart: mff, yesterday 200 / 10 / 2 ($9.00), the Friday before 100 / 4 / 1 ($4.50).
    Sweeps: mff yesterday 100 / 2 / 1 at $12.00. mmm: 3 clicks yesterday without impressions."""
    walmart = add_campaign(db, name="<b>Walmart</b> & Co")
    sweeps = add_campaign(db, name="Sweeps")
    traffic(db, walmart, "mff", YESTERDAY, 200, 10, 2)
    traffic(db, walmart, "mff", WEEK_BEFORE, 100, 4, 1)
    traffic(db, sweeps, "mff", YESTERDAY, 100, 2, 1, payout_cents=1200)
    traffic(db, sweeps, "mmm", YESTERDAY, 0, 3, 0)
    add_conversion(db, None, local(f"{YESTERDAY} 18:00:00"), 700)            # click unknown
    add_impression(db, local(f"{NOW.date()} 09:00:00"), walmart, "mff")     # today: not in the digest
    rebuild(db)
    return {"walmart": walmart, "sweeps": sweeps}


def test_yesterday_is_a_business_day():
    assert digest.yesterday(NOW, TZ) == YESTERDAY
    # 02:30 UTC on the 28th is still the 27th in New York.
    assert digest.yesterday(dt.datetime(2026, 11, 28, 2, 30, tzinfo=dt.timezone.utc), TZ) == dt.date(2026, 11, 26)
    # The night DST ends (2026-11-01 has 25 hours): 23:30 EST on the 1st.
    assert digest.yesterday(dt.datetime(2026, 11, 2, 4, 30, tzinfo=dt.timezone.utc), TZ) == dt.date(2026, 10, 31)


@pytest.mark.parametrize("clicks, impressions, expected", [
    (10, 200, 0.05), (0, 200, 0.0), (3, 0, None), (5, 4, None), (0, 0, None)])
def test_ctr_is_guarded(clicks, impressions, expected):
    assert digest.ctr(clicks, impressions) == expected


def test_property_figures_against_the_same_weekday(db, shop):
    rows = {r["property"]: r for r in digest.property_rows(db, YESTERDAY)}

    assert set(rows) == {"mff", "mmm", "mcad", "mmd", "all"}
    # mff yesterday: 300 impressions (67 + 34 views), 12 clicks, 3 conversions, 450 + 450 + 1200 cents;
    # $21.00 over 101 views is $207.92 per 1,000 views.
    assert rows["mff"]["now"] == {"impressions": 300, "clicks": 12, "ctr": 12 / 300, "conversions": 3,
                                  "revenue_cents": 2100, "rpm_cents": 7000, "views": 101, "view_rpm_cents": 20792}
    assert rows["mff"]["before"] == {"impressions": 100, "clicks": 4, "ctr": 0.04, "conversions": 1,
                                     "revenue_cents": 450, "rpm_cents": 4500, "views": 34, "view_rpm_cents": 13235}
    # mmm: clicks without impressions give no CTR and no RPM rather than a nonsense rate.
    assert rows["mmm"]["now"]["ctr"] is None and rows["mmm"]["now"]["rpm_cents"] is None
    assert rows["mmm"]["now"]["view_rpm_cents"] is None
    assert rows["mmm"]["now"]["clicks"] == 3
    # The total covers every property; the unattributed conversion is not in it (no property).
    assert rows["all"]["now"]["revenue_cents"] == 2100 and rows["all"]["now"]["clicks"] == 15


def test_text_digest(db, shop, app):
    built = digest.build(db, YESTERDAY, app.config)

    assert built.subject == "[popup_mgr] Fri 2026-11-27: $21.00 revenue (+367% vs Fri 11-20)"
    text = built.text
    assert text.startswith("popup_mgr digest for Friday 2026-11-27 (compared with Friday 2026-11-20)\n")
    mff = text.split("ModeFreeFinds (mff)\n")[1].split("\n\n")[0].splitlines()[:6]
    assert [line.split() for line in mff] == [
        ["Impressions", "300", "+200%", "vs", "last", "week"],
        ["Clicks", "12", "+200%", "vs", "last", "week"],
        ["CTR", "4.00%", "+0%", "vs", "last", "week"],
        ["Conversions", "3", "+200%", "vs", "last", "week"],
        ["Revenue", "$21.00", "+367%", "vs", "last", "week"],
        ["RPM", "$70.00", "+56%", "vs", "last", "week"]]
    mmm = text.split("ModeMarketMunchies (mmm)\n")[1].splitlines()
    assert mmm[2].split() == ["CTR", "n/a", "n/a", "vs", "last", "week"]
    assert mmm[1].split() == ["Clicks", "3", "new", "vs", "last", "week"]
    top = text.split("Top campaigns\n")[1].splitlines()
    # Sweeps over both properties: 100 impressions, 2 + 3 clicks.
    assert top[0] == f"  Sweeps (#{shop['sweeps']}): $12.00 revenue, 1 conversions, CTR 5.00%, RPM $120.00"
    assert top[1] == f"  <b>Walmart</b> & Co (#{shop['walmart']}): $9.00 revenue, 2 conversions, CTR 5.00%, RPM $45.00"
    assert "Unattributed conversions (click unknown): 1, $7.00" in text
    assert "Reconciliation" not in text


def test_html_digest_escapes_what_was_typed(db, shop, app):
    page = digest.build(db, YESTERDAY, app.config).html
    assert "<b>Walmart</b>" not in page
    assert "&lt;b&gt;Walmart&lt;/b&gt; &amp; Co" in page
    assert "<th>ModeFreeFinds</th><td>300<br><small>+200%</small></td>" in page


def test_top_campaigns_best_revenue_first(db, shop):
    assert [c["name"] for c in digest.top_campaigns(db, YESTERDAY)] == ["Sweeps", "<b>Walmart</b> & Co"]
    assert len(digest.top_campaigns(db, YESTERDAY, limit=1)) == 1


def test_reconciliation_gap(db, shop, app):
    asked = []

    def reconcile(first, last):
        asked.append((first, last))
        return {"totals": {"ours": {"clicks": 15, "conversions": 3, "revenue": "21.00"},
                           "tune": {"impressions": 0, "clicks": 15, "conversions": 4, "revenue": "25.50"}},
                "missing_in_ours": [{"transaction_id": "t1"}], "missing_in_tune": [], "status_mismatches": []}

    built = digest.build(db, YESTERDAY, app.config, reconciliation=reconcile)

    assert asked == [(YESTERDAY, YESTERDAY)]
    assert ("Revenue: ours $21.00, Tune $25.50 (gap -$4.50); conversions: ours 3, Tune 4." in built.text)
    assert "Missing here: 1; missing at Tune: 0; status differs: 0." in built.text
    assert "gap -$4.50" in built.html


def test_a_failing_reconciliation_does_not_stop_the_digest(db, shop, app):
    def broken(first, last):
        raise RuntimeError("Tune: <API key> rejected")
    built = digest.build(db, YESTERDAY, app.config, reconciliation=broken)
    assert "Reconciliation with Tune failed: Tune: <API key> rejected" in built.text
    assert "Tune: &lt;API key&gt; rejected" in built.html


def test_a_day_without_traffic(db, app):
    built = digest.build(db, YESTERDAY, app.config)
    assert built.subject == "[popup_mgr] Fri 2026-11-27: $0.00 revenue (= vs Fri 11-20)"
    assert "  no traffic" in built.text and "<p>No traffic.</p>" in built.html
    assert ["RPM", "n/a", "n/a", "vs", "last", "week"] in [line.split() for line in built.text.splitlines()]


def test_job_mails_yesterday_once(db, shop, app):
    inbox = Inbox()
    controller = start_server(inbox)
    config = {**app.config, "SMTP_URL": f"smtp://127.0.0.1:{controller.port}", "ALERT_TO": "mike@example.com"}
    try:
        assert digest.job(config, NOW) == "digest for 2026-11-27 sent to 1 recipient"
        assert digest.job(config, NOW + dt.timedelta(hours=1)) == "digest for 2026-11-27 already sent"
        assert digest.job(config, NOW + dt.timedelta(days=1)) == "digest for 2026-11-28 sent to 1 recipient"
    finally:
        controller.stop()
    assert [m["message"]["Subject"].split(":")[0] for m in inbox.messages] == \
        ["[popup_mgr] Fri 2026-11-27", "[popup_mgr] Sat 2026-11-28"]
    body = parts(inbox.messages[0]["message"])
    assert "ModeFreeFinds (mff)" in body["text/plain"]
    assert "&lt;b&gt;Walmart&lt;/b&gt;" in body["text/html"]


def test_job_without_mail_configured(app):
    assert digest.job(app.config, NOW) == "digest for 2026-11-27 not sent: e-mail is not configured"
