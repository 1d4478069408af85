"""/metrics content: per-app registries, hot-path counters and histograms, HTTP answers by route
template (fast path and Flask), and the gauges computed at scrape time from disk, the scheduler's
history, the last backup and the Tune sync."""
import math
import os

from prometheus_client.parser import text_string_to_metric_families

from popup_mgr import backup, metrics
from popup_mgr import db as database
from popup_mgr.scheduler import Scheduler


def samples(body):
    """{(sample name, frozenset(labels)): value} of a Prometheus text answer."""
    found = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found, name, **labels):
    return found.get((name, frozenset(labels.items())))


def test_hot_path_counters_and_histograms(tmp_path):
    m = metrics.Metrics(tmp_path / "popup.db")
    for _ in range(3):
        m.event("impression", "counted")
    m.event("impression", "duplicate")
    m.event("click", "rejected")
    m.batch(5, 0.004)
    m.batch(300, 0.2)
    m.response("/api/offers/<property>", 200)
    body, content_type = m.exposition()
    found = samples(body)

    assert content_type.startswith("text/plain; version=")
    assert value(found, "popup_events_total", kind="impression", outcome="counted") == 3
    assert value(found, "popup_events_total", kind="impression", outcome="duplicate") == 1
    assert value(found, "popup_events_total", kind="click", outcome="rejected") == 1
    assert value(found, "popup_events_total", kind="conversion", outcome="counted") == 0   # pre-made
    assert value(found, "popup_ingest_batch_size_count") == 2
    assert value(found, "popup_ingest_batch_size_sum") == 305
    assert value(found, "popup_ingest_batch_size_bucket", le="8.0") == 1
    assert value(found, "popup_ingest_commit_seconds_bucket", le="0.005") == 1
    assert value(found, "popup_ingest_commit_seconds_bucket", le="0.25") == 2
    assert value(found, "popup_http_responses_total", route="/api/offers/<property>", status="200") == 1


def test_each_app_has_its_own_registry(tmp_path):
    first, second = metrics.Metrics(tmp_path / "a.db"), metrics.Metrics(tmp_path / "b.db")
    first.event("click", "counted")
    assert value(samples(second.exposition()[0]), "popup_events_total", kind="click", outcome="counted") == 0


def test_queue_depth_is_read_at_scrape_time(tmp_path):
    depth = [7]
    m = metrics.Metrics(tmp_path / "popup.db", queue_depth=lambda: depth[0])
    assert value(samples(m.exposition()[0]), "popup_ingest_queue_depth") == 7
    depth[0] = 2
    assert value(samples(m.exposition()[0]), "popup_ingest_queue_depth") == 2
    m.set_queue_depth(lambda: 1 / 0)          # a broken source shows as NaN, the scrape still answers
    assert math.isnan(value(samples(m.exposition()[0]), "popup_ingest_queue_depth"))


def test_http_answers_are_counted_by_route_template(app):
    metrics.init_app(app)
    client = app.test_client()
    assert client.get("/api/offers/mff").status_code == 200         # answered by the fast path
    assert client.get("/api/offers/mff").status_code == 200
    assert client.get("/api/offers/nope").status_code == 404
    assert client.get("/api/health").status_code == 200              # answered by Flask
    assert client.get("/no/such/page/1").status_code == 404
    assert client.get("/no/such/page/2").status_code == 404
    assert client.post("/api/impression", data=b"{}").status_code == 400
    found = samples(metrics.exposition(app)[0])

    assert value(found, "popup_http_responses_total", route="/api/offers/<property>", status="200") == 2
    assert value(found, "popup_http_responses_total", route="/api/offers/<property>", status="404") == 1
    assert value(found, "popup_http_responses_total", route="/api/health", status="200") == 1
    # Arbitrary paths share one label: a scanner cannot grow the label set.
    assert value(found, "popup_http_responses_total", route="unmatched", status="404") == 2
    assert value(found, "popup_http_responses_total", route="/api/impression", status="400") == 1
    assert not any("/no/such" in labels_value for (_, labels) in found for _, labels_value in labels)


def test_state_gauges_are_computed_at_scrape_time(app, tmp_path):
    backups = tmp_path / "backups"
    tune = {"at": 1_800_000_000.0, "ok": False}
    scheduler = Scheduler(app.config["DATABASE"])
    scheduler.add("backup", 86400, lambda: backup.scheduled_backup({**app.config, "BACKUP_DIR": str(backups)}))
    scheduler.add("broken", 60, lambda: 1 / 0)
    m = metrics.init_app(app, backup_dir=backups, tune_status=lambda: tune,
                         job_status=metrics.database_job_status(app.config["DATABASE"]))

    found = samples(m.exposition()[0])
    assert value(found, "popup_backups") == 0 and value(found, "popup_last_backup_age_seconds") is None
    scheduler.run_pending()
    found = samples(m.exposition()[0])

    db_path = app.config["DATABASE"]
    assert value(found, "popup_database_bytes") == os.stat(db_path).st_size
    assert value(found, "popup_wal_bytes") == (os.stat(db_path + "-wal").st_size
                                               if os.path.exists(db_path + "-wal") else 0)
    assert value(found, "popup_backups") == 1
    assert 0 <= value(found, "popup_last_backup_age_seconds") < 60
    assert value(found, "popup_tune_last_sync_timestamp_seconds") == 1_800_000_000.0
    assert value(found, "popup_tune_last_sync_success") == 0
    assert value(found, "popup_job_last_success", job="backup") == 1
    assert value(found, "popup_job_last_success", job="broken") == 0
    assert 0 <= value(found, "popup_job_last_run_age_seconds", job="backup") < 60


def test_a_failing_source_leaves_only_its_own_metrics_out(tmp_path, caplog):
    def tune_down():
        raise ConnectionError("tune module broken")

    database.migrate(tmp_path / "popup.db")
    m = metrics.Metrics(tmp_path / "popup.db", tune_status=tune_down, backup_dir=tmp_path / "b")
    found = samples(m.exposition()[0])
    assert value(found, "popup_tune_last_sync_success") is None
    assert value(found, "popup_database_bytes") > 0 and value(found, "popup_backups") == 0
    assert "tune module broken" in caplog.text


def test_failing_and_refused_flask_requests_keep_their_route(app):
    metrics.init_app(app)

    @app.get("/api/explode")
    def explode():
        raise RuntimeError("boom")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    assert client.get("/api/explode").status_code == 500
    # Refused by the CSRF hook before any view runs (an admin route without a session or token).
    assert client.post("/api/campaigns", json={}).status_code in (400, 401)
    found = samples(metrics.exposition(app)[0])
    assert value(found, "popup_http_responses_total", route="/api/explode", status="500") == 1
    assert sum(v for (name, labels), v in found.items()
               if name == "popup_http_responses_total" and ("route", "/api/campaigns") in labels) == 1
