"""GET /metrics and the Jobs page, through the app."""
from popup_mgr.scheduler import Scheduler
from tests.helpers import BROWSER_UA, add_campaign, beacon_body, token_for


def test_metrics_need_a_token_or_a_session(client, admin_client, api_token):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": f"Bearer {api_token}"}).status_code == 200
    assert admin_client.get("/metrics").status_code == 200


def test_metrics_count_what_ingest_did(app, client, db, api_token):
    token = token_for(app, add_campaign(db, app=app))
    body = beacon_body(token)
    for sent in (body, body, "{", "x" * 5000):     # counted, a replay, then refused twice (400, 413)
        client.post("/api/impression", data=sent, headers={"User-Agent": BROWSER_UA})
    text = client.get("/metrics", headers={"Authorization": f"Bearer {api_token}"}).get_data(as_text=True)
    for line in ('popup_events_total{kind="impression",outcome="counted"} 1.0',
                 'popup_events_total{kind="impression",outcome="duplicate"} 1.0',
                 'popup_events_total{kind="impression",outcome="rejected"} 2.0',
                 'popup_http_responses_total{route="/api/impression",status="204"} 2.0',
                 "popup_ingest_batch_size_count 2.0"):       # the replay is committed too (as nothing)
        assert line in text, line
    assert "popup_database_bytes" in text and "popup_ingest_queue_depth 0.0" in text


def test_jobs_page_shows_each_jobs_last_run(app, admin_client):
    assert "No job has run yet" in admin_client.get("/admin/jobs").get_data(as_text=True)
    scheduler = Scheduler(app.config["DATABASE"])
    scheduler.add("nightly-check", 3600, lambda: "3 things checked")
    scheduler.add("flaky", 3600, lambda: 1 / 0)
    scheduler.run_pending()
    html = admin_client.get("/admin/jobs").get_data(as_text=True)
    assert "nightly-check" in html and "3 things checked" in html and "chip-ok" in html
    assert "flaky" in html and "ZeroDivisionError" in html and "chip-error" in html
    # Outside `popup-mgr serve` there is no scheduler to ask: no "run now", and a POST says why.
    assert "Run now" not in html
