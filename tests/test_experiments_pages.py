"""The admin's Experiments page: start from a property (campaigns or creatives), the card in plain
words with its per-arm table, stop with "apply the winner", the history, and the campaign list's
badge. Through the test client with a logged-in admin and the CSRF token."""
import re

import pytest

from popup_mgr import experiments
from tests.helpers import add_campaign, csrf_token


@pytest.fixture
def campaigns(db, app):
    return [add_campaign(db, name=f"Campaign {n}", title=f"Offer {n}", app=app) for n in range(3)]


def start_form(admin_client, **fields):
    token = csrf_token(admin_client, "/admin/experiments/new")
    return admin_client.post("/admin/experiments", data={"csrf_token": token, "property": "mff", **fields})


def count(db, table):
    return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def text(answer):
    return re.sub(r"\s+", " ", answer.get_data(as_text=True))


def test_pages_need_a_login(client):
    for path in ("/admin/experiments", "/admin/experiments/new", "/admin/experiments/1"):
        assert client.get(path).status_code in (302, 401)


def test_empty_page_and_the_start_form(admin_client, campaigns):
    page = text(admin_client.get("/admin/experiments"))
    assert "No experiment is running" in page and "Start an experiment" in page
    form = admin_client.get("/admin/experiments/new?property=mmm")
    assert form.status_code == 200
    html = text(form)
    assert 'name="property" value="mmm"' in html
    assert all(f"Arm {key}" in html for key in "ABCD")
    assert "Campaign 0 — Offer 0" in html                         # the property's campaigns to pick
    assert 'id="experiment-campaigns"' in html and "Offer 2" in html   # data for the live preview
    assert "experiments.js" in html


def test_start_a_campaign_test_from_the_form(admin_client, db, campaigns):
    answer = start_form(admin_client, name="Which offer", mode="campaigns", metric="ctr",
                        **{"arm-0-campaign_id": campaigns[0], "arm-0-weight": "40",
                           "arm-1-campaign_id": campaigns[1], "arm-1-weight": "60", "arm-2-campaign_id": ""})
    assert answer.status_code == 302
    [experiment] = experiments.list_experiments(db)
    assert answer.headers["Location"].endswith(f"/admin/experiments/{experiment['id']}")
    assert (experiment["name"], experiment["metric"]) == ("Which offer", "ctr")
    assert [(a["campaign_id"], a["weight"]) for a in experiment["arms"]] == [(campaigns[0], 40), (campaigns[1], 60)]
    card = text(admin_client.get(answer.headers["Location"]))
    assert "Which offer" in card and experiment["results"]["verdict"] in card
    assert "Campaign 0" in card and "Campaign 1" in card and "apply the winner: B" in card


def test_start_a_creative_test_with_even_weights(admin_client, db, campaigns):
    answer = start_form(admin_client, name="Titles", mode="creatives", campaign_id=campaigns[2],
                        **{"arm-0-campaign_id": campaigns[0],                 # ignored in this mode
                           "arm-1-display_title": "A shorter title", "arm-1-cta_text": "Get it",
                           "arm-2-display_title": "A third title", "arm-3-tagline": ""})
    assert answer.status_code == 302
    [experiment] = experiments.list_experiments(db)
    assert [(a["key"], a["campaign_id"], a["weight"], a["overrides"]) for a in experiment["arms"]] == [
        ("a", campaigns[2], 34, {}),
        ("b", campaigns[2], 33, {"display_title": "A shorter title", "cta_text": "Get it"}),
        ("c", campaigns[2], 33, {"display_title": "A third title"})]
    assert "creative: display title “A shorter title”" in text(admin_client.get(answer.headers["Location"]))


def test_an_invalid_form_is_shown_again_with_the_errors_and_nothing_stored(admin_client, db, campaigns):
    answer = start_form(admin_client, name="Bad", mode="campaigns",
                        **{"arm-0-campaign_id": campaigns[0], "arm-0-weight": "70",
                           "arm-1-campaign_id": campaigns[0], "arm-1-weight": "20"})
    assert answer.status_code == 422
    html = text(answer)
    assert "Weights must add up to 100" in html and "Same campaign and creative as arm A" in html
    assert 'value="Bad"' in html                                          # what Mike typed is kept
    assert count(db, "experiments") == 0 and count(db, "audit_log WHERE action LIKE 'experiment.%'") == 0


def test_stop_and_apply_the_winner_from_the_card(admin_client, db, app, campaigns):
    with app.app_context():
        experiment = experiments.create(db, {"name": "Titles", "property": "mff", "arms": [
            {"campaign_id": campaigns[0], "weight": 50},
            {"campaign_id": campaigns[0], "weight": 50, "overrides": {"display_title": "Winner title"}}]}, "mike")
    token = csrf_token(admin_client, f"/admin/experiments/{experiment['id']}")
    answer = admin_client.post(f"/admin/experiments/{experiment['id']}/stop",
                               data={"csrf_token": token, "winner": "b"})
    assert answer.status_code == 302
    assert db.execute("SELECT display_title FROM campaigns WHERE id = ?", (campaigns[0],)).fetchone()[0] == "Winner title"
    page = text(admin_client.get("/admin/experiments"))
    assert "No experiment is running" in page
    assert "Finished" in page and "Titles" in page and "<td>B</td>" in page.replace(" ", "")
    assert "A: Campaign 0 · B: Campaign 0 (own creative)" in page
    detail = text(admin_client.get(f"/admin/experiments/{experiment['id']}"))
    assert "Winner applied: <strong>B</strong>" in detail and "Stop experiment" not in detail


def test_stop_without_the_csrf_token_is_refused(admin_client, db, app, campaigns):
    with app.app_context():
        experiment = experiments.create(db, {"property": "mff", "arms": [
            {"campaign_id": campaigns[0], "weight": 50}, {"campaign_id": campaigns[1], "weight": 50}]}, "mike")
    assert admin_client.post(f"/admin/experiments/{experiment['id']}/stop", data={"winner": "a"}).status_code == 400
    assert experiments.get(db, experiment["id"])["status"] == "running"


def test_the_card_refreshes_itself_as_an_htmx_fragment(admin_client, db, app, campaigns):
    with app.app_context():
        experiment = experiments.create(db, {"property": "mff", "arms": [
            {"campaign_id": campaigns[0], "weight": 50}, {"campaign_id": campaigns[1], "weight": 50}]}, "mike")
    fragment = admin_client.get(f"/admin/experiments/{experiment['id']}", headers={"HX-Request": "true"})
    html = text(fragment)
    assert html.strip().startswith("<section") and "<html" not in html
    assert "HX-Request" in fragment.headers["Vary"]
    # Only the figures poll, so a winner being picked in the stop form is never swapped away.
    figures_url = f"/admin/experiments/{experiment['id']}/figures"
    assert html.count('hx-trigger="every 30s"') == 1 and f'hx-get="{figures_url}"' in html
    figures = text(admin_client.get(figures_url, headers={"HX-Request": "true"}))
    assert figures.strip().startswith('<div class="experiment-figures"') and "stop-form" not in figures
    assert "Not enough data yet" in figures
    assert admin_client.get("/admin/experiments/99/figures").status_code == 404
    # Opened in a plain browser, the fragment's URL leads to the whole page.
    plain = admin_client.get(figures_url)
    assert plain.status_code == 302 and plain.headers["Location"].endswith(f"/admin/experiments/{experiment['id']}")


def test_the_campaign_list_shows_which_campaigns_are_in_a_running_experiment(admin_client, db, app, campaigns):
    with app.app_context():
        experiment = experiments.create(db, {"name": "Offer duel", "property": "mff", "arms": [
            {"campaign_id": campaigns[0], "weight": 50}, {"campaign_id": campaigns[1], "weight": 50}]}, "mike")
    page = text(admin_client.get("/admin/campaigns"))
    assert page.count("In experiment on mff: Offer duel") == 2
    assert f'href="/admin/experiments/{experiment["id"]}"' in page
    with app.app_context():
        experiments.stop(db, experiment["id"], "mike")
    assert "In experiment" not in text(admin_client.get("/admin/campaigns"))


def test_unknown_experiment_page_is_404(admin_client):
    assert admin_client.get("/admin/experiments/99").status_code == 404


def test_the_nav_links_the_page(admin_client):
    assert 'href="/admin/experiments"' in admin_client.get("/admin/campaigns").get_data(as_text=True)


def test_the_campaign_analytics_page_says_the_campaign_is_in_an_experiment(admin_client, db, app, campaigns):
    assert "In experiment" not in text(admin_client.get(f"/admin/analytics/campaigns/{campaigns[0]}"))
    with app.app_context():
        experiments.create(db, {"name": "Offer duel", "property": "mff", "arms": [
            {"campaign_id": campaigns[0], "weight": 50}, {"campaign_id": campaigns[1], "weight": 50}]}, "mike")
    page = text(admin_client.get(f"/admin/analytics/campaigns/{campaigns[0]}"))
    assert "In experiment on mff: Offer duel" in page
    assert "In experiment" not in text(admin_client.get(f"/admin/analytics/campaigns/{campaigns[2]}"))
